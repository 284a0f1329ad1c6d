//! Durations and byte sizes in config files, written as people write them: `30s`, `1m30s`,
//! `250ms`; `64MiB`, `1.5GB`, `512KiB` or a plain byte count. Both daemons deserialize
//! through these, so a value means the same in either file.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Deserializes a duration written as `5s`, `250ms`, `1m30s`.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!("invalid duration {s:?}: {e} (want e.g. \"30s\")"))
    })
}

/// Deserializes a byte size: a whole number of bytes, or a number with a unit (`64MiB`,
/// `1.5GB`, `512 KiB`; see `parse_size`).
pub fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bytes(n) => Ok(n),
        Raw::Text(s) => parse_size(&s).map_err(serde::de::Error::custom),
    }
}

/// Parses `64MiB`, `1.5 GB`, `4096` or `4096B`. Units are case-insensitive: `B`; decimal
/// `KB`, `MB`, `GB`, `TB` (powers of 1000); binary `KiB`, `MiB`, `GiB`, `TiB` (powers of
/// 1024), also written `K`, `M`, `G`, `T`, as Kubernetes and most tools read them for memory.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size {s:?}: want bytes or a number with a unit, e.g. \"64MiB\"");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(bad());
    }
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(factor).ok_or_else(bad);
    }
    let f: f64 = num.parse().map_err(|_| bad())?;
    let bytes = f * factor as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 || bytes.fract() != 0.0 {
        return Err(format!("invalid size {s:?}: not a whole number of bytes"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_people_write_them() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64 mib"), Ok(64 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("10B"), Ok(10));
        for bad in ["", "MiB", "12 parsecs", "-1", "0.3B", "99999999999TiB"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert!(parse_size("12 parsecs")
            .expect_err("no such unit")
            .contains("\"12 parsecs\""));
    }
}
