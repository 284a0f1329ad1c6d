//! Code both Beacon daemons share: how an io::Error is phrased in messages, and how a config
//! file's problems are reported (every problem, each with the path of its key).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An io::Error as a lowercase phrase without Rust's "(os error N)" suffix, for messages like
/// `read /host/proc/stat: permission denied`.
pub fn io_reason(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => &s[..i],
        None => &s,
    };
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One configuration problem, with the path of the offending key
/// (`receivers[2].slack[0].channel`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path of the offending key.
    pub path: String,
    /// What is wrong, lowercase.
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Everything wrong with a configuration file.
#[derive(Debug, Clone)]
pub struct ConfigError {
    /// The file, when loaded from one.
    pub file: Option<PathBuf>,
    /// At least one problem.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(p) => write!(f, "invalid config {}:", p.display())?,
            None => write!(f, "invalid config:")?,
        }
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// Reads a config file's text; failing to read it is a `(file)` problem naming the path.
    pub fn read_file(path: &Path) -> Result<String, ConfigError> {
        std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: Some(path.to_owned()),
            problems: vec![Problem::new(
                "(file)",
                format!("read {}: {}", path.display(), io_reason(&e)),
            )],
        })
    }

    /// Names the file the problems were found in.
    pub fn in_file(mut self, path: &Path) -> Self {
        self.file = Some(path.to_owned());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_as_lowercase_phrases() {
        // ENOENT is 2 on every Linux ABI.
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(io_reason(&e), "no such file or directory");
        let e = io::Error::other("Custom Text");
        assert_eq!(io_reason(&e), "custom Text");
    }

    #[test]
    fn config_errors_list_every_problem() {
        let e = ConfigError {
            file: Some("a.yaml".into()),
            problems: vec![
                Problem::new("listen", "bad"),
                Problem::new("route.receiver", "missing"),
            ],
        };
        assert_eq!(
            e.to_string(),
            "invalid config a.yaml:\n  listen: bad\n  route.receiver: missing"
        );
    }
}
