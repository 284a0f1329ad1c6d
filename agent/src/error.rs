//! `CollectError`: why a collector failed one scrape. Below both the framework and the reading
//! layer (`read.rs`), so readers can name the failing path without knowing collectors.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why a collector failed this scrape.
#[derive(Debug)]
pub enum CollectError {
    /// A file could not be read.
    Io { path: PathBuf, source: io::Error },
    /// A file's content could not be parsed.
    Parse { path: PathBuf, msg: String },
    /// The source does not exist on this host (node_exporter's `ErrNoData`): the collector
    /// reports `node_scrape_collector_success 0` and logs at debug level only.
    NoData(String),
    /// Anything else, already phrased for the log.
    Other(String),
}

impl CollectError {
    pub fn io(path: &Path, source: io::Error) -> Self {
        CollectError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub fn parse(path: &Path, msg: impl Into<String>) -> Self {
        CollectError::Parse {
            path: path.to_owned(),
            msg: msg.into(),
        }
    }

    /// Whether this is the "source absent on this host" case.
    pub fn is_no_data(&self) -> bool {
        matches!(self, CollectError::NoData(_))
    }
}

impl fmt::Display for CollectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CollectError::Io { path, source } => {
                write!(f, "read {}: {}", path.display(), io_reason(source))
            }
            CollectError::Parse { path, msg } => write!(f, "parse {}: {msg}", path.display()),
            CollectError::NoData(msg) => write!(f, "no data: {msg}"),
            CollectError::Other(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for CollectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CollectError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub use beacon_common::io_reason;
