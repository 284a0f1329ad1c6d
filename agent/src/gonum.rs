//! Go's number syntax, for values node_exporter parses with `strconv`: sysfs attributes
//! (netclass, hwmon) and textfile samples must be accepted and rejected exactly as there.

/// A sample value or `le`/`quantile` label as Go's `expfmt` parses it: `strconv.ParseFloat`
/// (decimal, `Inf`/`Infinity`/`NaN` in any case, with sign) without hex floats or underscores,
/// and with overflow (`1e400`) an error rather than infinity.
pub fn parse_float(s: &str) -> Option<f64> {
    if s.bytes()
        .any(|b| matches!(b, b'p' | b'P' | b'_' | b'x' | b'X'))
    {
        return None;
    }
    // Go takes a sign before `Inf` but not before `NaN`.
    if matches!(s.as_bytes(), [b'+' | b'-', b'n' | b'N', ..]) {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    if v.is_infinite() {
        let unsigned = s.trim_start_matches(['+', '-']);
        if !unsigned.get(..3)?.eq_ignore_ascii_case("inf") {
            return None;
        }
    }
    Some(v)
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign, then decimal, `0x` hex, `0o`/leading-zero
/// octal or `0b` binary, with `_` digit separators. `None` on syntax or range errors.
pub fn parse_int(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let mag = parse_uint(digits)?;
    const LIMIT: u64 = 1 << 63;
    match (neg, mag) {
        (false, m) if m < LIMIT => Some(m as i64),
        // -2^63 is representable: `as` maps it to i64::MIN.
        (true, m) if m <= LIMIT => Some((m as i64).wrapping_neg()),
        _ => None,
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`.
pub fn parse_uint(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let (base, digits) = if b[0] == b'0' {
        match b.get(1).map(|c| c | 0x20) {
            Some(b'b') if b.len() >= 3 => (2, &b[2..]),
            Some(b'o') if b.len() >= 3 => (8, &b[2..]),
            Some(b'x') if b.len() >= 3 => (16, &b[2..]),
            _ => (8, &b[1..]),
        }
    } else {
        (10, b)
    };
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in digits {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' | b'A'..=b'Z' => (c | 0x20) - b'a' + 10,
            _ => return None,
        };
        if u64::from(d) >= base {
            return None;
        }
        n = n.checked_mul(base)?.checked_add(u64::from(d))?;
    }
    if underscores && !underscore_ok(b) {
        return None;
    }
    Some(n)
}

/// Go's `strconv.underscoreOK`: underscores may only separate digits (or follow a base prefix).
fn underscore_ok(s: &[u8]) -> bool {
    // The class of the previous character: b'^' start, b'0' digit or prefix, b'_', b'!' other.
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1] | 0x20, b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = s[1] | 0x20 == b'x';
    }
    for &c in &s[i..] {
        if c.is_ascii_digit() || (hex && (c | 0x20).is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_int_parsing_matches_strconv_base_zero() {
        let cases: &[(&str, Option<i64>)] = &[
            ("0", Some(0)),
            ("1500", Some(1500)),
            ("-1", Some(-1)),
            ("+5", Some(5)),
            ("0x1003", Some(4099)),
            ("0X1f", Some(31)),
            ("-0x10", Some(-16)),
            ("010", Some(8)),
            ("08", None),
            ("0b101", Some(5)),
            ("0o17", Some(15)),
            ("0x", None),
            ("1_000", Some(1000)),
            ("0x_1f", Some(31)),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("", None),
            ("-", None),
            ("abc", None),
            (" 1", None),
            ("9223372036854775807", Some(i64::MAX)),
            ("9223372036854775808", None),
            ("-9223372036854775808", Some(i64::MIN)),
            ("-9223372036854775809", None),
            ("18446744073709551616", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_int(s), *want, "parsing {s:?}");
        }
    }

    #[test]
    fn floats_parse_like_go() {
        assert_eq!(parse_float("45000"), Some(45000.0));
        assert_eq!(parse_float("-273150"), Some(-273150.0));
        assert_eq!(parse_float(" 12 "), None);
        assert_eq!(parse_float("not a number"), None);
        assert_eq!(parse_float(""), None);
        assert_eq!(parse_float("1e400"), None);
        assert_eq!(parse_float("+Inf"), Some(f64::INFINITY));
    }
}
