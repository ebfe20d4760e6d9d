//! A small well-formedness reader for the markup we emit (XHTML-compatible
//! HTML, SVG, JUnit XML): tags balance, attributes are quoted, every `&`
//! starts an entity. Not a general XML parser, and it needs to be none.

/// Check `doc`; on success return the element names in document order.
pub fn check(doc: &str) -> Result<Vec<String>, String> {
    let mut stack: Vec<String> = Vec::new();
    let mut seen = Vec::new();
    let mut rest = doc;
    let mut offset = 0;
    while let Some(lt) = rest.find('<') {
        check_text(&rest[..lt], offset)?;
        let tail = &rest[lt..];
        let (skip, what) = if tail.starts_with("<!--") {
            (tail.find("-->").ok_or("unclosed comment")? + 3, None)
        } else if tail.starts_with("<!") || tail.starts_with("<?") {
            (tail.find('>').ok_or("unclosed declaration")? + 1, None)
        } else {
            let end =
                tag_end(tail).ok_or_else(|| format!("unclosed tag at byte {}", offset + lt))?;
            (end + 1, Some(&tail[1..end]))
        };
        if let Some(tag) = what {
            if let Some(name) = tag.strip_prefix('/') {
                let name = name.trim();
                match stack.pop() {
                    Some(open) if open == name => {}
                    other => {
                        return Err(format!(
                            "</{name}> at byte {} closes {:?}",
                            offset + lt,
                            other
                        ));
                    }
                }
            } else {
                let self_closing = tag.ends_with('/');
                let body = tag.trim_end_matches('/');
                let name: String = body.chars().take_while(|c| !c.is_whitespace()).collect();
                if name.is_empty() {
                    return Err(format!("empty tag at byte {}", offset + lt));
                }
                check_attributes(&body[name.len()..])
                    .map_err(|e| format!("<{name}> at byte {}: {e}", offset + lt))?;
                seen.push(name.clone());
                if !self_closing {
                    stack.push(name);
                }
            }
        }
        offset += lt + skip;
        rest = &rest[lt + skip..];
    }
    check_text(rest, offset)?;
    if let Some(open) = stack.pop() {
        return Err(format!("<{open}> never closed"));
    }
    Ok(seen)
}

/// The `>` ending a tag, skipping quoted attribute values.
fn tag_end(tail: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in tail.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

fn check_attributes(attrs: &str) -> Result<(), String> {
    let mut rest = attrs.trim();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("attribute without value: {rest:?}"))?;
        let name = rest[..eq].trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("bad attribute name {name:?}"));
        }
        let value = &rest[eq + 1..];
        let q = value
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or_else(|| format!("unquoted value of {name}"))?;
        let close = value[1..]
            .find(q)
            .ok_or_else(|| format!("unterminated value of {name}"))?;
        check_text(&value[1..=close], 0)?;
        rest = value[close + 2..].trim_start();
    }
    Ok(())
}

fn check_text(text: &str, offset: usize) -> Result<(), String> {
    for (i, _) in text.match_indices('&') {
        let entity = &text[i..];
        let end = entity
            .find(';')
            .filter(|e| *e <= 10)
            .ok_or_else(|| format!("bare & at byte {}", offset + i))?;
        let name = &entity[1..end];
        let ok = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
            || name
                .strip_prefix('#')
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()) || n.starts_with('x'));
        if !ok {
            return Err(format!("unknown entity &{name}; at byte {}", offset + i));
        }
    }
    Ok(())
}

#[test]
fn checker_catches_mistakes() {
    assert!(check("<a><b /></a>").is_ok());
    assert!(check("<a><b></a>").is_err());
    assert!(check("<a x=1></a>").is_err());
    assert!(check("<a>fish & chips</a>").is_err());
    assert!(check("<a>").is_err());
    assert_eq!(
        check("<!DOCTYPE html><a t=\"x>y\">&amp;</a>").unwrap(),
        vec!["a".to_string()]
    );
}
