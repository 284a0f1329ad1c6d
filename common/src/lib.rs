//! Code both Beacon daemons share: how an io::Error is phrased in messages, and how a config
//! file's problems are reported (every problem, each with the path of its key).

pub mod logfmt;
pub mod secret;
pub mod units;

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

/// Folds a multi-line message (a regex parser's, say) into one line for a config problem.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
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

/// Keeps glibc's allocator from holding on to memory a daemon no longer uses:
/// - at most `arenas` arenas: glibc otherwise gives each new thread its own (64 MiB of address
///   space, and resident pages that are rarely returned), while these daemons do little in
///   parallel;
/// - a fixed mmap threshold: by default glibc raises it after the first large buffer is freed,
///   so later large buffers (gzip state, a rendered body) come from the heap, whose top is then
///   rarely trimmed; fixed at 128 KiB they are mapped and returned each time;
/// - a trim threshold of 256 KiB, so freed space at the top of the heap goes back promptly.
///
/// Call once at start-up, before any other thread exists. A no-op off glibc.
pub fn tune_malloc(arenas: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; the caller guarantees no other thread
    // exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 * 1024);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
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
