//! A small YAML emitter for JSON values: what `canarylab cluster render`
//! prints. Block style for maps and lists, plain scalars where YAML reads
//! them back as the same string, JSON-quoted strings otherwise (a JSON
//! string literal is a valid YAML double-quoted scalar).
//!
//! Not for: parsing YAML, or YAML beyond what Kubernetes manifests need
//! (no anchors, tags, multi-line block scalars).

use serde_json::Value;

/// Several documents, each introduced by `---`.
pub fn documents(values: &[Value]) -> String {
    let mut out = String::new();
    for v in values {
        out.push_str("---\n");
        emit(v, 0, &mut out);
    }
    out
}

fn indent(n: usize, out: &mut String) {
    for _ in 0..n {
        out.push(' ');
    }
}

/// Writes `value` as a block at `level` spaces; the caller has written the
/// key (or `- `) and the line break before a nested block.
fn emit(value: &Value, level: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                indent(level, out);
                out.push_str(&scalar_string(k));
                out.push(':');
                child(v, level, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for v in items {
                indent(level, out);
                out.push('-');
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        // The first key goes on the dash's line.
                        out.push(' ');
                        let mut first = true;
                        for (k, item) in m {
                            if !first {
                                indent(level + 2, out);
                            }
                            first = false;
                            out.push_str(&scalar_string(k));
                            out.push(':');
                            child(item, level + 2, out);
                        }
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push('\n');
                        emit(v, level + 2, out);
                    }
                    _ => {
                        out.push(' ');
                        out.push_str(&inline(v));
                        out.push('\n');
                    }
                }
            }
        }
        _ => {
            indent(level, out);
            out.push_str(&inline(value));
            out.push('\n');
        }
    }
}

/// After `key:`: a scalar on the same line, a nested block on the next.
fn child(v: &Value, level: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit(v, level + 2, out);
        }
        // Lists under a key at the key's indentation, as kubectl prints them.
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit(v, level, out);
        }
        _ => {
            out.push(' ');
            out.push_str(&inline(v));
            out.push('\n');
        }
    }
}

fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar_string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string as a plain scalar when that reads back as the same string,
/// else JSON-quoted.
fn scalar_string(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    // Only characters that cannot start a YAML construct inside a plain
    // scalar; `:` only when not followed by a space (nor last), since no
    // space is allowed at all.
    let chars_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '=' | ':'))
        && !s.ends_with(':');
    // A letter first keeps numbers, dates and sexagesimals out; `--flag`
    // is plain too (a dash followed by a non-space starts a plain scalar).
    let first_ok = first.is_ascii_alphabetic()
        || first == '/'
        || first == '_'
        || (s.starts_with("--") && s[2..].starts_with(|c: char| c.is_ascii_alphabetic()));
    // Words YAML 1.1 or 1.2 would read as booleans or null.
    let lower = s.to_ascii_lowercase();
    let special = matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
    );
    chars_ok && first_ok && !special
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_blocks_and_lists() {
        let v = json!({
            "a": {"b": 1, "c": ["x", {"d": "z", "e": [1, 2]}]},
            "f": [],
            "g": {},
            "h": "8080",
            "i": "yes",
            "j": "$(JOB_COMPLETION_INDEX)/4",
            "k": true
        });
        let text = documents(&[v]);
        assert_eq!(
            text,
            "---\na:\n  b: 1\n  c:\n  - x\n  - d: z\n    e:\n    - 1\n    - 2\nf: []\ng: {}\nh: \"8080\"\ni: \"yes\"\nj: \"$(JOB_COMPLETION_INDEX)/4\"\nk: true\n"
        );
    }

    #[test]
    fn plain_only_when_safe() {
        for s in [
            "goldengoose",
            "apps/v1",
            "app.kubernetes.io/name",
            "a=b",
            "--listen",
            "canarylab/goldengoose:latest",
            "http://x.y:8080/",
        ] {
            assert!(is_plain_safe(s), "{s}");
        }
        for s in [
            "", "8080", "1e3", "no", "Null", "-x", ":a", "a: b", "a#b", "x y",
        ] {
            assert!(!is_plain_safe(s), "{s}");
        }
    }
}
