//! Name filters: `DeviceFilter`, node_exporter's `deviceFilter` (an exclude and an include
//! pattern, matched unanchored as Go's `MatchString`), and `MatchCache`, the remembered
//! answers of a filter per name.
//!
//! Filters run on the same names every scrape (about 170 `/proc/vmstat` fields, every mount
//! point, disk and interface), and regex-lite's matcher costs about a microsecond per name. A
//! filter's answer for a name never changes (the patterns are fixed at startup), so it is
//! remembered. Only the filter's answer is cached, never a value read from the host.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use regex_lite::Regex;

/// node_exporter's `deviceFilter`: a name is ignored when it matches `exclude` or does not
/// match `include`; an unset (or empty) pattern filters nothing. Answers are cached per name.
#[derive(Debug, Default)]
pub struct DeviceFilter {
    exclude: Option<Regex>,
    include: Option<Regex>,
    cache: MatchCache,
}

impl DeviceFilter {
    pub fn new(exclude: Option<Regex>, include: Option<Regex>) -> Self {
        Self {
            exclude,
            include,
            cache: MatchCache::new(),
        }
    }

    /// Whether `name` is filtered out.
    pub fn ignored(&self, name: &str) -> bool {
        if self.exclude.is_none() && self.include.is_none() {
            return false;
        }
        self.cache.get(name, |name| {
            self.exclude.as_ref().is_some_and(|re| re.is_match(name))
                || self.include.as_ref().is_some_and(|re| !re.is_match(name))
        })
    }
}

/// Names remembered at most; past it the cache is emptied, so churning names (pod mounts,
/// veth interfaces) cannot grow it without bound.
const MAX_NAMES: usize = 4096;

/// Remembered answers of one filter, by name.
#[derive(Debug, Default)]
pub struct MatchCache {
    seen: Mutex<HashMap<Box<str>, bool>>,
}

impl MatchCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// `filter(name)`, computed once per name.
    pub fn get(&self, name: &str, filter: impl FnOnce(&str) -> bool) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(&hit) = seen.get(name) {
            return hit;
        }
        let hit = filter(name);
        if seen.len() >= MAX_NAMES {
            seen.clear();
        }
        seen.insert(name.into(), hit);
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn computes_each_name_once_and_stays_bounded() {
        let cache = MatchCache::new();
        let calls = Cell::new(0);
        let filter = |n: &str| {
            calls.set(calls.get() + 1);
            n.starts_with('a')
        };
        assert!(cache.get("abc", filter));
        assert!(!cache.get("xyz", filter));
        assert!(cache.get("abc", filter));
        assert!(!cache.get("xyz", filter));
        assert_eq!(calls.get(), 2);
        for i in 0..2 * MAX_NAMES {
            assert!(!cache.get(&format!("n{i}"), |_| false));
        }
        assert!(cache.seen.lock().expect("lock").len() <= MAX_NAMES);
        assert!(cache.get("abc", |n| n == "abc"));
    }
}
