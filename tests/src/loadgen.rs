//! What the load generators (`src/bin/scrape-load.rs`, `src/bin/webhook-load.rs`) share: their
//! flag value parsers (for clap), the `http://` URL split, and nearest-rank percentiles.

use std::time::Duration;

use anyhow::{bail, Context as _};

/// A positive integer flag value.
pub fn positive_count(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("must be a positive integer, got {v:?}")),
    }
}

/// A positive, finite number flag value.
pub fn positive_number(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("must be a positive number, got {v:?}")),
    }
}

/// A positive number of seconds.
pub fn positive_secs(v: &str) -> Result<Duration, String> {
    positive_number(v).map(Duration::from_secs_f64)
}

/// `http://host[:port][/path]`, split.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpUrl {
    /// `host[:port]`, as it goes in `Host`.
    pub authority: String,
    /// The request path; `/` when the URL has none.
    pub path: String,
    /// Whether the authority names a port (the text after its last `:` is outside IPv6
    /// brackets).
    pub has_port: bool,
}

/// Splits an `http://` URL; other schemes and an empty host are errors.
pub fn parse_http_url(url: &str) -> anyhow::Result<HttpUrl> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("only http:// URLs are supported, got {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        bail!("no host in URL {url:?}");
    }
    Ok(HttpUrl {
        authority: authority.to_owned(),
        path: path.to_owned(),
        has_port: authority
            .rfind(':')
            .is_some_and(|i| !authority[i..].contains(']')),
    })
}

/// Nearest-rank percentile of sorted values; `None` when empty.
pub fn percentile<T>(sorted: &[T], p: f64) -> Option<&T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Some(&Duration::from_millis(50)));
        assert_eq!(percentile(&v, 99.0), Some(&Duration::from_millis(99)));
        assert_eq!(percentile(&v[..1], 99.0), Some(&Duration::from_millis(1)));
        assert_eq!(percentile::<Duration>(&[], 50.0), None);
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0).copied(), Some(50));
        assert_eq!(percentile(&v, 99.0).copied(), Some(99));
        assert_eq!(percentile(&v[..1], 99.0).copied(), Some(1));
    }

    #[test]
    fn flag_values() {
        assert_eq!(positive_count("16"), Ok(16));
        assert!(positive_count("0").is_err());
        assert_eq!(positive_secs("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["0", "-1", "inf", "NaN", "x"] {
            assert!(positive_number(bad).is_err(), "{bad}");
        }
    }
}
