//! Reading Kayenta's JSON fast, with the same results and the same errors
//! as the plain serde types: a `MetricSetPairList` whose pairs' `scopes`
//! and `attributes` (Kayenta's records of the query, not part of a
//! judgment) are skipped instead of built into `serde_json::Value` trees,
//! and errors that name the JSON path, line and column. `canarylab judge`
//! and `canarylab serve`'s `/judge` read their input through it.
//!
//! The fast path is [`scan_pair_list`] and [`scan_remote_judge_request`]: a
//! scanner over the raw bytes (numbers read eight and four digits at a
//! time, exact as serde_json's `float_roundtrip`) that accepts a subset of
//! what serde accepts, with the same values (property tests compare them),
//! and leaves everything else to the serde types here, which give the
//! answer or the located error.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::InputError;

/// Parses JSON into `T`; an error names the JSON path, line and column.
pub fn parse_located<T: DeserializeOwned>(text: &[u8]) -> Result<T, InputError> {
    // Plain serde_json first: tracking the path of every value costs as
    // much as parsing; only a body that fails is parsed again for its path.
    if let Ok(value) = serde_json::from_slice(text) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let mut message = inner.to_string();
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
        InputError {
            path: if path == "." { String::new() } else { path },
            position: (inner.line() > 0).then(|| (inner.line(), inner.column())),
            message,
        }
    })
}

/// A `MetricSetPairList` as [`crate::parse_pairs`] reads it, the same
/// pairs and the same errors, without building each pair's `scopes` and
/// `attributes` (not part of a judgment) into `serde_json::Value` trees.
pub fn parse_pair_list(text: &[u8]) -> Result<Vec<crate::MetricSetPair>, InputError> {
    if let Some(pairs) = scan_pair_list(text) {
        return Ok(pairs);
    }
    let pairs: Vec<MetricSetPair> = parse_located(text)?;
    Ok(pairs.into_iter().map(crate::MetricSetPair::from).collect())
}

/// A `MetricSetPair` whose `scopes` and `attributes` are skipped.
#[derive(Debug, Deserialize)]
pub struct MetricSetPair {
    /// Metric name; must match a metric of the canary config.
    pub name: String,
    /// Kayenta's pair id.
    #[serde(default)]
    pub id: Option<String>,
    /// Tags (e.g. group-by label values).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The two series.
    pub values: PairValues,
    /// Skipped (any JSON), declared so that errors count the fields
    /// as `judge::MetricSetPair`'s do.
    #[allow(dead_code)]
    #[serde(default)]
    pub scopes: serde::de::IgnoredAny,
    /// Skipped (any JSON), like `scopes`.
    #[allow(dead_code)]
    #[serde(default)]
    pub attributes: serde::de::IgnoredAny,
}

/// `values`, read as [`PairValues`] is, into vectors sized for a typical
/// window instead of grown from empty (five reallocations for 60 points).
#[derive(Debug, Deserialize)]
pub struct PairValues {
    /// Baseline values; NaN where a point is missing.
    #[serde(deserialize_with = "nan_values")]
    pub control: Vec<f64>,
    /// Canary values; NaN where a point is missing.
    #[serde(deserialize_with = "nan_values")]
    pub experiment: Vec<f64>,
}

/// One value through [`crate::pairs::nan_f64`]: the same numbers, strings
/// and errors as `judge::parse_pairs`.
struct NanValue;

impl<'de> serde::de::DeserializeSeed<'de> for NanValue {
    type Value = f64;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        crate::pairs::nan_f64::deserialize(d)
    }
}

struct NanValues;

impl<'de> serde::de::Visitor<'de> for NanValues {
    type Value = Vec<f64>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // What serde's `Vec` visitor says, so errors read as before.
        f.write_str("a sequence")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f64>, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).clamp(64, 4096));
        while let Some(v) = seq.next_element_seed(NanValue)? {
            values.push(v);
        }
        Ok(values)
    }
}

fn nan_values<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    d.deserialize_seq(NanValues)
}

impl From<MetricSetPair> for crate::MetricSetPair {
    fn from(p: MetricSetPair) -> Self {
        crate::MetricSetPair {
            name: p.name,
            id: p.id,
            tags: p.tags,
            values: crate::pairs::PairValues {
                control: p.values.control,
                experiment: p.values.experiment,
            },
            scopes: None,
            attributes: None,
        }
    }
}

/// The parts of Kayenta's `RemoteJudgeRequest` a judgment needs, read by
/// [`scan_remote_judge_request`]: the pairs, and the raw bytes of the
/// config and thresholds (for serde, which reads them in a few microseconds).
#[derive(Debug)]
pub struct RemoteJudgeParts<'a> {
    /// The `canaryConfig` value's bytes.
    pub canary_config: &'a [u8],
    /// The `scoreThresholds` value's bytes, when present.
    pub score_thresholds: Option<&'a [u8]>,
    /// `metricSetPairList`, as [`parse_pair_list`] reads it.
    pub pairs: Vec<crate::MetricSetPair>,
}

/// Reads a `RemoteJudgeRequest` body (`canaryConfig`, `scoreThresholds`,
/// `metricSetPairList`, any other field skipped) with a scanner over the
/// raw bytes instead of serde: most of a body is numbers, and serde_json's
/// exact float parsing costs about 200 instructions a value.
///
/// `None` means "not read here", never "invalid": the body has something
/// the scanner does not handle (an escaped key, a number it cannot round
/// exactly, a duplicate field, any error) and the caller reads it with
/// serde, which gives the answer or the located error. Whatever the scanner
/// accepts, serde accepts with the same values (a property test checks it).
pub fn scan_remote_judge_request(body: &[u8]) -> Option<RemoteJudgeParts<'_>> {
    let mut s = Scanner::new(body)?;
    let (mut config, mut thresholds, mut pairs) = (None, None, None);
    s.object(|s, key| match key? {
        b"canaryConfig" => once(&mut config, s.value_span()?),
        b"scoreThresholds" => once(&mut thresholds, s.value_span()?),
        b"metricSetPairList" => once(&mut pairs, s.pair_list()?),
        _ => s.skip_value(),
    })?;
    s.end()?;
    Some(RemoteJudgeParts {
        canary_config: config?,
        score_thresholds: thresholds,
        pairs: pairs?,
    })
}

/// Reads a `MetricSetPairList` as [`scan_remote_judge_request`] reads the
/// request's; `None` means "read it with serde".
pub fn scan_pair_list(text: &[u8]) -> Option<Vec<crate::MetricSetPair>> {
    let mut s = Scanner::new(text)?;
    let pairs = s.pair_list()?;
    s.end()?;
    Some(pairs)
}

/// Sets a field seen once; a second occurrence is serde's "duplicate
/// field" error, left to serde.
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

/// Nesting deeper than this is left to serde (whose limit is 128).
const MAX_DEPTH: usize = 100;

/// Exact powers of ten as `f64` (10^22 is the largest).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A JSON reader over bytes that accepts a subset of what serde_json
/// accepts: every method returns `None` where it is not sure.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl<'a> Scanner<'a> {
    /// `None` unless the text is UTF-8 (serde_json checks strings it reads
    /// but not those it skips: invalid bytes anywhere go to serde).
    fn new(b: &'a [u8]) -> Option<Self> {
        std::str::from_utf8(b).ok()?;
        Some(Scanner { b, i: 0, depth: 0 })
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Only whitespace is left.
    fn end(&mut self) -> Option<()> {
        self.ws();
        (self.i == self.b.len()).then_some(())
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// An object, `field` called with each key (`None` for a key with an
    /// escape, which only a skipped object takes) and the scanner at its
    /// value.
    fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, Option<&'a [u8]>) -> Option<()>,
    ) -> Option<()> {
        self.ws();
        if !self.eat(b'{') {
            return None;
        }
        self.enter()?;
        self.ws();
        if !self.eat(b'}') {
            loop {
                self.ws();
                let start = self.i;
                let key = match self.plain_string() {
                    Some(key) => Some(key),
                    None => {
                        self.i = start;
                        self.skip_string()?;
                        None
                    }
                };
                self.ws();
                if !self.eat(b':') {
                    return None;
                }
                self.ws();
                field(self, key)?;
                self.ws();
                if self.eat(b',') {
                    continue;
                }
                if self.eat(b'}') {
                    break;
                }
                return None;
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// An array, `item` called with the scanner at each element.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.ws();
        if !self.eat(b'[') {
            return None;
        }
        self.enter()?;
        self.ws();
        if !self.eat(b']') {
            loop {
                self.ws();
                item(self)?;
                self.ws();
                if self.eat(b',') {
                    continue;
                }
                if self.eat(b']') {
                    break;
                }
                return None;
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// A string's bytes between its quotes, if it has no escape (and no
    /// control character, which serde refuses).
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        let s = &self.b[start..self.i];
        self.i += 1;
        Some(s)
    }

    /// A string, unescaped (escaped ones through serde_json, which decodes
    /// `\u` surrogates as it does everywhere).
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        if let Some(s) = self.plain_string() {
            // The body was checked to be UTF-8 and `"` is ASCII.
            return std::str::from_utf8(s).ok().map(str::to_owned);
        }
        self.i = start;
        self.skip_string()?;
        serde_json::from_slice(&self.b[start..self.i]).ok()
    }

    /// A string skipped as serde_json skips it: escapes checked, control
    /// characters refused.
    fn skip_string(&mut self) -> Option<()> {
        if !self.eat(b'"') {
            return None;
        }
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => {
                    self.i += 1;
                    match *self.b.get(self.i)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            let hex = self.b.get(self.i + 1..self.i + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 5;
                        }
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
    }

    /// Any JSON value, checked and skipped.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.object(|s, _| s.skip_value()),
            b'[' => self.array(Self::skip_value),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number_token().map(|_| ()),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// The bytes of any value, checked.
    fn value_span(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        self.skip_value()?;
        Some(&self.b[start..self.i])
    }

    /// A number in JSON's grammar: its token, significand digits (up to
    /// 19, else `None` for "too many"), and decimal exponent.
    #[inline]
    fn number_token(&mut self) -> Option<Number<'a>> {
        // One pass over a local slice and index: this is most of a body.
        let b = self.b;
        let start = self.i;
        let mut i = start;
        let negative = b.get(i) == Some(&b'-');
        i += usize::from(negative);
        let mut significand: u64 = 0;
        let int_start = i;
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = digits(b, i, &mut significand),
            _ => return None,
        }
        // Up to 19 digits (leading zeros included) always fit in a u64;
        // longer numbers go to the standard library's parser.
        let mut count = i - int_start;
        let mut exponent: i64 = 0;
        if b.get(i) == Some(&b'.') {
            let first = i + 1;
            i = digits(b, first, &mut significand);
            if i == first {
                return None;
            }
            count += i - first;
            exponent = -((i - first) as i64);
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            let negative_exponent = b.get(i) == Some(&b'-');
            if negative_exponent || b.get(i) == Some(&b'+') {
                i += 1;
            }
            let first = i;
            let mut e: i64 = 0;
            while let Some(&c) = b.get(i) {
                let d = c.wrapping_sub(b'0');
                if d > 9 {
                    break;
                }
                e = e.saturating_mul(10).saturating_add(i64::from(d));
                i += 1;
            }
            if i == first {
                return None;
            }
            exponent = exponent.saturating_add(if negative_exponent { -e } else { e });
        }
        self.i = i;
        Some(Number {
            token: &b[start..i],
            negative,
            significand: (count <= 19).then_some(significand),
            exponent,
        })
    }

    /// A number as serde_json (`float_roundtrip`) reads it: correctly
    /// rounded, `-0` negative; out of range (serde's error) is `None`.
    #[inline]
    fn number(&mut self) -> Option<f64> {
        let n = self.number_token()?;
        let magnitude = match n.significand {
            // Clinger's fast path: both operands exact, so the one
            // rounding of the product or quotient is the correct one.
            Some(m) if m <= 1 << 53 && (-22..=22).contains(&n.exponent) => {
                let e = n.exponent.unsigned_abs() as usize;
                if n.exponent >= 0 {
                    m as f64 * POW10[e]
                } else {
                    m as f64 / POW10[e]
                }
            }
            // The standard library's parser is correctly rounded too.
            _ => {
                let token = std::str::from_utf8(n.token).ok()?;
                token.trim_start_matches('-').parse::<f64>().ok()?
            }
        };
        if !magnitude.is_finite() {
            return None;
        }
        Some(if n.negative { -magnitude } else { magnitude })
    }

    /// One value of a series, as [`crate::pairs::nan_f64`] reads it.
    #[inline]
    fn series_value(&mut self) -> Option<f64> {
        match self.peek()? {
            b'"' => crate::pairs::nan_f64::from_str(&self.string()?),
            b'n' => self.literal(b"null").map(|()| f64::NAN),
            _ => self.number(),
        }
    }

    /// A series: the common spelling of a value (`-`, digits, a fraction,
    /// no exponent, at most 19 digits that fit in 2^53) read in one loop
    /// here, anything else through [`Scanner::series_value`].
    fn series(&mut self) -> Option<Vec<f64>> {
        self.ws();
        if !self.eat(b'[') {
            return None;
        }
        self.enter()?;
        let mut values = Vec::with_capacity(64);
        self.ws();
        if !self.eat(b']') {
            let b = self.b;
            loop {
                self.ws();
                let start = self.i;
                let mut i = start;
                let negative = b.get(i) == Some(&b'-');
                i += usize::from(negative);
                let mut m: u64 = 0;
                let int_start = i;
                let simple = match b.get(i) {
                    Some(b'0') => {
                        i += 1;
                        true
                    }
                    Some(b'1'..=b'9') => {
                        i = digits(b, i, &mut m);
                        true
                    }
                    _ => false,
                };
                let mut count = i - int_start;
                let mut scale = 0;
                let mut value = None;
                if simple {
                    let mut fraction_ok = true;
                    if b.get(i) == Some(&b'.') {
                        let first = i + 1;
                        i = digits(b, first, &mut m);
                        fraction_ok = i > first;
                        scale = i - first;
                        count += scale;
                    }
                    let exponent = matches!(b.get(i), Some(b'e' | b'E'));
                    if fraction_ok && !exponent && count <= 19 && m <= 1 << 53 && scale <= 22 {
                        // Clinger's fast path, as in `number`.
                        let v = m as f64 / POW10[scale];
                        value = Some(if negative { -v } else { v });
                    }
                }
                let v = match value {
                    Some(v) => {
                        self.i = i;
                        v
                    }
                    None => {
                        self.i = start;
                        self.series_value()?
                    }
                };
                values.push(v);
                self.ws();
                match b.get(self.i) {
                    Some(b',') => self.i += 1,
                    Some(b']') => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(values)
    }

    fn pair_list(&mut self) -> Option<Vec<crate::MetricSetPair>> {
        let mut pairs = Vec::new();
        self.array(|s| {
            pairs.push(s.pair()?);
            Some(())
        })?;
        Some(pairs)
    }

    /// One `MetricSetPair`: `name`, `id`, `tags` and `values` read,
    /// `scopes`, `attributes` and unknown fields skipped.
    fn pair(&mut self) -> Option<crate::MetricSetPair> {
        let (mut name, mut id, mut tags, mut values) = (None, None, None, None);
        let (mut scopes, mut attributes) = (None, None);
        self.object(|s, key| match key? {
            b"name" => once(&mut name, s.string()?),
            b"id" => {
                let value = if s.peek()? == b'n' {
                    s.literal(b"null")?;
                    None
                } else {
                    Some(s.string()?)
                };
                once(&mut id, value)
            }
            b"tags" => once(&mut tags, s.tags()?),
            b"values" => once(&mut values, s.values()?),
            b"scopes" => once(&mut scopes, ()).and_then(|()| s.skip_value()),
            b"attributes" => once(&mut attributes, ()).and_then(|()| s.skip_value()),
            _ => s.skip_value(),
        })?;
        let (control, experiment) = values?;
        Some(crate::MetricSetPair {
            name: name?,
            id: id.flatten(),
            tags: tags.unwrap_or_default(),
            values: crate::pairs::PairValues {
                control,
                experiment,
            },
            scopes: None,
            attributes: None,
        })
    }

    fn tags(&mut self) -> Option<BTreeMap<String, String>> {
        let mut tags = BTreeMap::new();
        self.object(|s, key| {
            let key = std::str::from_utf8(key?).ok()?.to_owned();
            let value = s.string()?;
            // serde's map keeps the last of duplicate keys.
            tags.insert(key, value);
            Some(())
        })?;
        Some(tags)
    }

    fn values(&mut self) -> Option<(Vec<f64>, Vec<f64>)> {
        let (mut control, mut experiment) = (None, None);
        self.object(|s, key| match key? {
            b"control" => once(&mut control, s.series()?),
            b"experiment" => once(&mut experiment, s.series()?),
            _ => s.skip_value(),
        })?;
        Some((control?, experiment?))
    }
}

/// Reads the decimal digits from `b[i..]` into `m` (wrapping: the caller
/// counts the digits, and more than 19 may not fit); returns the index
/// after them. Eight and four digits at a time where it can (SWAR, as
/// simdjson and fast_float do): a digit-at-a-time loop was most of the
/// cost of a body.
#[inline]
fn digits(b: &[u8], mut i: usize, m: &mut u64) -> usize {
    while let Some(&chunk) = b.get(i..).and_then(|r| r.first_chunk::<8>()) {
        let v = u64::from_le_bytes(chunk);
        if !eight_digits(v) {
            break;
        }
        *m = m.wrapping_mul(100_000_000).wrapping_add(parse_eight(v));
        i += 8;
    }
    if let Some(&chunk) = b.get(i..).and_then(|r| r.first_chunk::<4>()) {
        let v = u32::from_le_bytes(chunk);
        if four_digits(v) {
            *m = m
                .wrapping_mul(10_000)
                .wrapping_add(u64::from(parse_four(v)));
            i += 4;
        }
    }
    while let Some(&c) = b.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        *m = m.wrapping_mul(10).wrapping_add(u64::from(d));
        i += 1;
    }
    i
}

/// All eight bytes are ASCII digits. A byte's high nibble must be 3 and
/// stay 3 when 6 is added (so it is at most '9'); a carry out of a byte
/// happens only for bytes that already fail.
#[inline]
fn eight_digits(v: u64) -> bool {
    (v & 0xF0F0_F0F0_F0F0_F0F0)
        | ((v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4)
        == 0x3333_3333_3333_3333
}

#[inline]
fn four_digits(v: u32) -> bool {
    (v & 0xF0F0_F0F0) | ((v.wrapping_add(0x0606_0606) & 0xF0F0_F0F0) >> 4) == 0x3333_3333
}

/// The value of eight ASCII digits, the first in the lowest byte.
#[inline]
fn parse_eight(v: u64) -> u64 {
    let v = v.wrapping_sub(0x3030_3030_3030_3030);
    // Pairs of digits, then fours, then the eight.
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let mask = 0x0000_00FF_0000_00FF;
    (((v & mask).wrapping_mul(100 + (1_000_000 << 32)))
        .wrapping_add(((v >> 16) & mask).wrapping_mul(1 + (10_000 << 32))))
        >> 32
}

/// The value of four ASCII digits, the first in the lowest byte.
#[inline]
fn parse_four(v: u32) -> u32 {
    let v = v.wrapping_sub(0x3030_3030);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    (v & 0xFF).wrapping_mul(100) + ((v >> 16) & 0xFF)
}

/// A number's token and parts, from [`Scanner::number_token`].
struct Number<'a> {
    token: &'a [u8],
    negative: bool,
    /// The digits as an integer, if there are at most 19.
    significand: Option<u64>,
    /// Power of ten the significand is scaled by.
    exponent: i64,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// serde's reading, the reference.
    fn serde_pairs(text: &[u8]) -> Result<Vec<crate::MetricSetPair>, InputError> {
        let pairs: Vec<MetricSetPair> = parse_located(text)?;
        Ok(pairs.into_iter().map(crate::MetricSetPair::from).collect())
    }

    /// Equal, with NaN equal to NaN and 0.0 unequal to -0.0.
    fn same(a: &[crate::MetricSetPair], b: &[crate::MetricSetPair]) -> bool {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        a.len() == b.len()
            && a.iter().zip(b).all(|(a, b)| {
                a.name == b.name
                    && a.id == b.id
                    && a.tags == b.tags
                    && a.scopes.is_none()
                    && a.attributes.is_none()
                    && bits(&a.values.control) == bits(&b.values.control)
                    && bits(&a.values.experiment) == bits(&b.values.experiment)
            })
    }

    /// Whatever the scanner reads, serde reads the same.
    fn agree(text: &[u8]) -> Result<bool, TestCaseError> {
        let Some(fast) = scan_pair_list(text) else {
            return Ok(false);
        };
        match serde_pairs(text) {
            Ok(slow) => prop_assert!(same(&fast, &slow), "{}", String::from_utf8_lossy(text)),
            Err(e) => prop_assert!(
                false,
                "scanner read what serde refuses ({e}): {}",
                String::from_utf8_lossy(text)
            ),
        }
        Ok(true)
    }

    #[test]
    fn digits_eight_and_four_at_a_time() {
        for n in [
            0u64, 1, 9, 10, 1234, 9999, 10_000_000, 12_345_678, 99_999_999,
        ] {
            let text = format!("{n:08}");
            let v = u64::from_le_bytes(*text.as_bytes().first_chunk::<8>().expect("8"));
            assert!(eight_digits(v), "{text}");
            assert_eq!(parse_eight(v), n, "{text}");
            let four = format!("{:04}", n % 10_000);
            let v = u32::from_le_bytes(*four.as_bytes().first_chunk::<4>().expect("4"));
            assert!(four_digits(v), "{four}");
            assert_eq!(u64::from(parse_four(v)), n % 10_000, "{four}");
        }
        for bad in [
            *b"1234567/",
            *b"1234567:",
            *b"12.45678",
            *b"\xff2345678",
            *b"1234 678",
            *b"e2345678",
        ] {
            assert!(!eight_digits(u64::from_le_bytes(bad)), "{bad:?}");
        }
        for bad in [*b"123/", *b"12:4", *b"-123", *b"\xf9\xf9\xf9\xf9"] {
            assert!(!four_digits(u32::from_le_bytes(bad)), "{bad:?}");
        }
        let mut m = 0;
        assert_eq!(digits(b"0000000000001234567890123x", 0, &mut m), 25);
        assert_eq!(m, 1_234_567_890_123, "leading zeros");
        let mut m = 7;
        assert_eq!(digits(b"12345", 0, &mut m), 5);
        assert_eq!(m, 712_345);
    }

    #[test]
    fn numbers_as_serde_reads_them() {
        for n in [
            "0",
            "-0",
            "-0.0",
            "0.0e5",
            "-0e-7",
            "1",
            "-1",
            "123456789",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999999",
            "0.1",
            "0.30000000000000004",
            "1.7976931348623157e308",
            "2.2250738585072014e-308",
            "4.9e-324",
            "2e-324",
            "1e-400",
            "123.456e-2",
            "9007199254740993",
            "9007199254740992.5",
            "0.000000000000000000000000001",
            "1E22",
            "1e23",
            "1E+2",
            "8.98846567431158e307",
            "1.0000000000000000000000001",
            "0.1234567890123456789",
            "-12.5e-3",
            "1e0000000000000000000000001",
        ] {
            let text =
                format!(r#"[{{"name":"m","values":{{"control":[{n}],"experiment":["{n}"]}}}}]"#);
            assert!(
                agree(text.as_bytes()).expect("agree"),
                "{n} not read by the scanner"
            );
        }
        // serde refuses these (out of range, grammar); the scanner leaves them to it.
        for n in [
            "1e400", "-1e309", "01", "1.", ".5", "-", "+1", "1e", "1e+", "0x1", "1.e3", "--1",
            "true",
        ] {
            let text = format!(r#"[{{"name":"m","values":{{"control":[{n}],"experiment":[]}}}}]"#);
            assert!(scan_pair_list(text.as_bytes()).is_none(), "{n}");
            assert!(serde_pairs(text.as_bytes()).is_err(), "{n}");
        }
    }

    #[test]
    fn kayentas_shape_is_read_by_the_scanner() {
        let text = br#" [ {"name":"lat\u00e9ncy","id":"a","tags":{"pod":"x\"y","k":"v"},
            "values":{"control":[1, "NaN", null, "Infinity", "-Infinity", "2.5"],"experiment":[]},
            "scopes":{"control":{"scope":"baseline","startTimeMillis":1767225600000,"step":60,
                "extendedScopeParams":{"a":["b",null,1.5e3,true,false,{}]}}},
            "attributes":{"control":{"query":"sum(rate(x{a=\"\\u00e9\"}[1m]))"}},"unknown":[[[]]]},
            {"name":"b","id":null,"values":{"experiment":[-0],"control":[],"other":1}} ] "#;
        assert!(agree(text).expect("agree"));
        let pairs = scan_pair_list(text).expect("read");
        assert_eq!(pairs[0].name, "laténcy");
        assert_eq!(pairs[0].tags["pod"], "x\"y");
        assert_eq!(pairs[1].id, None);
    }

    #[test]
    fn what_serde_refuses_is_left_to_it() {
        for text in [
            r#"[{"name":"m","name":"n","values":{"control":[],"experiment":[]}}]"#,
            r#"[{"name":"m","values":{"control":[],"control":[],"experiment":[]}}]"#,
            r#"[{"name":"m","values":{"control":[]}}]"#,
            r#"[{"values":{"control":[],"experiment":[]}}]"#,
            r#"[{"name":"m","tags":null,"values":{"control":[],"experiment":[]}}]"#,
            r#"[{"name":"m","scopes":1,"scopes":2,"values":{"control":[],"experiment":[]}}]"#,
            r#"[{"name":"m","values":{"control":["x"],"experiment":[]}}]"#,
            r#"[{"name":"m","values":{"control":[],"experiment":[]},"x":"\q"}]"#,
            r#"[{"name":"m","values":{"control":[],"experiment":[]},"x":"\u12"}]"#,
            r#"[{"name":"m","values":{"control":[],"experiment":[]}}] x"#,
            r#"[{"name":"m","values":{"control":[],"experiment":[]},}]"#,
            r#"[{"name":"m","values":{"control":[1,],"experiment":[]}}]"#,
            "[{\"name\":\"m\u{1}\",\"values\":{\"control\":[],\"experiment\":[]}}]",
            r#"[["m",null,{},{"control":[],"experiment":[]}]]"#,
        ] {
            assert!(scan_pair_list(text.as_bytes()).is_none(), "{text}");
        }
        let deep = format!(
            "[{{\"name\":\"m\",\"values\":{{\"control\":[],\"experiment\":[]}},\"x\":{}1{}}}]",
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(scan_pair_list(deep.as_bytes()).is_none());
        assert!(parse_pair_list(deep.as_bytes()).is_ok(), "serde reads it");
    }

    /// The scanner's cost on ten pairs of 60 vs 60 values shaped as
    /// Kayenta writes them (six decimals, a "NaN", scopes, attributes):
    /// `valgrind --tool=callgrind target/debug/deps/judge-HASH
    /// wire::tests::scan_cost --ignored --exact`, then `callgrind_annotate
    /// --inclusive=yes` for `scan_pair_list` (100 scans).
    #[test]
    #[ignore = "a measurement for callgrind; checks only that the scan agrees with serde"]
    fn scan_cost() {
        let mut pairs = Vec::new();
        for m in 0..10 {
            let series = |k: u64| -> String {
                let v: Vec<String> = (0..60u64)
                    .map(|i| match (i, k) {
                        (3, 0) => "\"NaN\"".to_string(),
                        _ => format!("0.1{:05}", (i * 7919 + k * 104_729 + m * 31) % 100_000),
                    })
                    .collect();
                v.join(",")
            };
            pairs.push(format!(
                r#"{{"name":"metric_{m}","id":"id-{m}","tags":{{}},"values":{{"control":[{}],"experiment":[{}]}},"scopes":{{"control":{{"startTimeIso":"2025-12-06T00:00:00Z","startTimeMillis":1764979200000,"stepMillis":60000}}}},"attributes":{{"control":{{"query":"q"}}}}}}"#,
                series(0),
                series(1)
            ));
        }
        let text = format!("[{}]", pairs.join(","));
        assert!(agree(text.as_bytes()).expect("agree"));
        for _ in 0..100 {
            std::hint::black_box(scan_pair_list(std::hint::black_box(text.as_bytes())));
        }
    }

    /// A number as JSON text, in the many ways writers spell one.
    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f}")),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            (
                any::<f64>().prop_filter("finite", |f| f.is_finite()),
                0usize..30
            )
                .prop_map(|(f, p)| format!("{f:.p$}")),
            (-1e6..1e6f64, 0usize..12).prop_map(|(f, p)| format!("{f:.p$}")),
            any::<i64>().prop_map(|i| i.to_string()),
            any::<u64>().prop_map(|i| i.to_string()),
            "-?(0|[1-9][0-9]{0,30})(\\.[0-9]{1,30})?([eE][+-]?[0-9]{1,3})?",
        ]
    }

    /// A series value: a number, a string Kayenta or Prometheus writes, null.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => number(),
            1 => prop_oneof![
                Just("\"NaN\""), Just("\"Infinity\""), Just("\"-Infinity\""), Just("null"),
                Just("\"+Inf\""), Just("\"nan\""), Just("\"1.5\""), Just("\"x\""), Just("\"N\\u0061N\""),
            ].prop_map(str::to_string),
        ]
    }

    /// A string as JSON text, sometimes with escapes.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_]{1,8}".prop_map(|s| format!("\"{s}\"")),
            ".{0,6}".prop_map(|s| serde_json::Value::String(s).to_string()),
            Just("\"a\\\"b\\u00e9\\n\"".to_string()),
        ]
    }

    /// Skipped JSON: what Kayenta's `scopes` and `attributes` hold, and more.
    fn skipped() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
            number(),
            text(),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((text(), inner), 0..4).prop_map(|v| {
                    let fields: Vec<String> =
                        v.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    fn series() -> impl Strategy<Value = String> {
        prop::collection::vec(value(), 0..8).prop_map(|v| format!("[{}]", v.join(",")))
    }

    /// A pair, its fields in any order, some optional, some unknown.
    fn pair() -> impl Strategy<Value = String> {
        (
            text(),
            prop::option::of(prop_oneof![text(), Just("null".to_string())]),
            prop::option::of(prop::collection::vec(("[a-z_]{1,8}", text()), 0..3)),
            series(),
            series(),
            prop::option::of(skipped()),
            prop::option::of(skipped()),
            prop::option::of(skipped()),
            any::<prop::sample::Index>(),
        )
            .prop_map(
                |(name, id, tags, control, experiment, scopes, attributes, unknown, order)| {
                    let mut fields = vec![
                        format!("\"name\":{name}"),
                        format!("\"values\":{{\"control\":{control},\"experiment\":{experiment}}}"),
                    ];
                    if let Some(id) = id {
                        fields.push(format!("\"id\":{id}"));
                    }
                    if let Some(tags) = tags {
                        let t: Vec<String> = tags
                            .into_iter()
                            .map(|(k, v)| format!("\"{k}\":{v}"))
                            .collect();
                        fields.push(format!("\"tags\":{{{}}}", t.join(",")));
                    }
                    for (key, v) in [
                        ("scopes", scopes),
                        ("attributes", attributes),
                        ("extra", unknown),
                    ] {
                        if let Some(v) = v {
                            fields.push(format!("\"{key}\":{v}"));
                        }
                    }
                    let n = fields.len();
                    fields.rotate_left(order.index(n));
                    format!("{{{}}}", fields.join(" , "))
                },
            )
    }

    fn pair_list() -> impl Strategy<Value = String> {
        prop::collection::vec(pair(), 0..4).prop_map(|p| format!("[\n{}\n]", p.join(",\n")))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        /// Pair lists as Kayenta and others write them: the scanner reads
        /// every one serde reads, with the same values.
        #[test]
        fn the_scanner_and_serde_agree(text in pair_list()) {
            let read = agree(text.as_bytes())?;
            prop_assert!(read || serde_pairs(text.as_bytes()).is_err(), "not read: {text}");
        }

        /// Numbers alone: the scanner's value is serde's, bit for bit.
        #[test]
        fn numbers_agree(n in number()) {
            let text = format!(r#"[{{"name":"m","values":{{"control":[{n}],"experiment":[]}}}}]"#);
            let read = agree(text.as_bytes())?;
            prop_assert!(read || serde_pairs(text.as_bytes()).is_err(), "{n}");
        }

        /// Bytes cut or changed: the scanner refuses or agrees with serde.
        #[test]
        fn damaged_lists_never_disagree(
            text in pair_list(),
            cut in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            byte in prop_oneof![Just(b'"'), Just(b','), Just(b'\\'), Just(b'}'), Just(b']'), Just(b'0'), Just(b'e'), Just(b'-'), Just(b'.'), any::<u8>()],
        ) {
            let bytes = text.into_bytes();
            agree(&bytes[..cut.index(bytes.len() + 1)])?;
            let mut changed = bytes.clone();
            let i = at.index(changed.len());
            changed[i] = byte;
            agree(&changed)?;
        }
    }
}
