//! Parsing and printing of the small value languages used in fault specs:
//! durations (`50ms`), byte sizes (`4KiB`) and fractions (`0.01`, `1%`).
//!
//! Pure functions with `String` reasons, so the fault parser can wrap them in
//! a message that names the flag and the allowed form.

use std::time::Duration;

/// The longest duration accepted anywhere: a year is forever for a server
/// under test, and it keeps `Instant` arithmetic far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses `1.5s`, `50ms`, `250us`, `2m`, `0`. A unit is required except for 0.
///
/// The number is read as an exact decimal (no floating point), rounded to
/// the nearest nanosecond, so every [`format_duration`] output reads back to
/// the same `Duration`, also beyond the 2^53 ns that an `f64` holds exactly.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| c.is_ascii_alphabetic() || c == 'µ')
        .ok_or_else(|| format!("duration {text:?} has no unit (use ms, s, m, us)"))?;
    let (number, unit) = text.split_at(split);
    let number = number.trim();
    let (whole, fraction) =
        decimal_digits(number.strip_prefix('+').unwrap_or(number)).ok_or_else(|| {
            if number.starts_with('-') && decimal_digits(&number[1..]).is_some() {
                format!("duration {text:?} is negative")
            } else {
                format!("duration {text:?} does not start with a number")
            }
        })?;
    let unit_nanos: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => {
            return Err(format!(
                "duration {text:?} has unknown unit {unit:?} (use ns, us, ms, s, m, h)"
            ));
        }
    };
    let too_long = || format!("duration {text:?} is longer than a year");
    // More whole digits than this is far beyond a year in any unit, and
    // keeps the u128 arithmetic below from overflowing.
    if whole.len() > 24 {
        return Err(too_long());
    }
    let whole_value: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_long())?
    };
    // Digits past the 24th are worth under 1e-11 ns in any unit: dropped.
    let fraction = &fraction[..fraction.len().min(24)];
    let fraction_nanos = if fraction.is_empty() {
        0
    } else {
        let numerator: u128 = fraction.parse::<u128>().map_err(|_| too_long())? * unit_nanos;
        let denominator = 10u128.pow(fraction.len() as u32);
        // Round half up to the nearest nanosecond.
        (numerator + denominator / 2) / denominator
    };
    let nanos = whole_value
        .checked_mul(unit_nanos)
        .and_then(|n| n.checked_add(fraction_nanos))
        .ok_or_else(too_long)?;
    if nanos > MAX_DURATION.as_nanos() {
        return Err(too_long());
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    let subsec = u32::try_from(nanos % 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(secs, subsec))
}

/// Splits `12.5`, `12`, `.5` or `12.` into its whole and fraction digits;
/// `None` unless it is ASCII digits with at most one point and at least
/// one digit.
fn decimal_digits(number: &str) -> Option<(&str, &str)> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    Some((whole, fraction))
}

/// Prints a duration so that [`parse_duration`] reads it back exactly.
#[allow(clippy::manual_is_multiple_of)] // is_multiple_of needs Rust 1.87; rust-version is 1.85
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        "0s".to_string()
    } else if nanos % 1_000_000_000 == 0 {
        format!("{}s", nanos / 1_000_000_000)
    } else if nanos % 1_000_000 == 0 {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

/// Parses a fraction in [0, 1]: `0.01` or `1%`.
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, scale) = match text.strip_suffix('%') {
        Some(number) => (number, 0.01),
        None => (text, 1.0),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("fraction {text:?} is not a number (use 0.01 or 1%)"))?;
    let value = value * scale;
    if !value.is_finite() || !(0.0..=1.0).contains(&value) {
        return Err(format!("fraction {text:?} is outside [0, 1]"));
    }
    Ok(value)
}

/// Parses `4096`, `4KiB`, `1MiB`, `1GiB`, `10KB` (1000-based), `512B`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "size {text:?} does not start with a whole number of bytes"
        ));
    }
    let value: u64 = number
        .parse()
        .map_err(|_| format!("size {text:?} is too large"))?;
    let multiplier: u64 = match unit {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "size {text:?} has unknown unit {unit:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

/// Prints a byte count so that [`parse_bytes`] reads it back exactly.
#[allow(clippy::manual_is_multiple_of)] // is_multiple_of needs Rust 1.87; rust-version is 1.85
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_are_refused_with_a_reason() {
        for bad in [
            "-5ms", "50", "ms", "5parsecs", "NaNs", "infs", "", "400d", "1e30s",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("duration"), "{bad}: {err}");
        }
    }

    #[test]
    fn durations_round_trip() {
        for d in [
            Duration::ZERO,
            Duration::from_millis(50),
            Duration::from_secs(3),
            Duration::from_micros(1500),
            Duration::from_nanos(7),
            Duration::from_nanos(1_500_001),
            Duration::new(1, 1),
            // More nanoseconds than an f64 holds exactly (2^53 ns is ~104 days).
            Duration::new(31_000_000, 123_456_789),
            MAX_DURATION,
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
        }
    }

    #[test]
    fn decimal_durations_are_exact() {
        assert_eq!(parse_duration("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1.5us"), Ok(Duration::from_nanos(1500)));
        assert_eq!(parse_duration(".25ms"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("+2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.1h"), Ok(Duration::from_secs(360)));
        // Below a nanosecond: rounded half up.
        assert_eq!(parse_duration("1.5ns"), Ok(Duration::from_nanos(2)));
        assert_eq!(parse_duration("1.4ns"), Ok(Duration::from_nanos(1)));
        assert!(
            parse_duration("-5ms")
                .expect_err("negative")
                .contains("negative")
        );
        for bad in ["1..5s", "1.2.3s", ".s", "1,5s", "--5ms", "0x10s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fractions_accept_decimal_and_percent() {
        assert_eq!(parse_fraction("0.25"), Ok(0.25));
        assert_eq!(parse_fraction("1%"), Ok(0.01));
        assert_eq!(parse_fraction("1"), Ok(1.0));
        for bad in ["-0.1", "1.01", "101%", "x", "NaN", ""] {
            assert!(parse_fraction(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_parse_and_round_trip() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("4KiB"), Ok(4096));
        assert_eq!(parse_bytes("2MB"), Ok(2_000_000));
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("1.5MiB").is_err());
        assert!(parse_bytes("99999999999999999999").is_err());
        assert!(parse_bytes("99999999999GiB").is_err());
        for n in [0, 1, 1000, 4096, 3 << 20, 5 << 30] {
            assert_eq!(parse_bytes(&format_bytes(n)), Ok(n));
        }
    }
}
