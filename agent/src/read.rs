//! Small, allocation-light readers for procfs and sysfs files, with errors that name the path.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::collectors::CollectError;

/// Reads a whole (small) file. procfs files report size 0, so this reads until EOF into a
/// buffer sized for typical procfs files instead of trusting metadata.
pub fn read_string(path: &Path) -> Result<String, CollectError> {
    read_string_io(path).map_err(|e| CollectError::io(path, e))
}

/// Like `read_string`, but returns the raw `io::Error` so callers can branch on its kind.
pub fn read_string_io(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut s = String::with_capacity(4096);
    f.read_to_string(&mut s)?;
    Ok(s)
}

/// Reads a one-value sysfs/procfs attribute, without its trailing newline.
pub fn read_trimmed(path: &Path) -> Result<String, CollectError> {
    let mut s = read_string(path)?;
    let len = s.trim_end().len();
    s.truncate(len);
    Ok(s)
}

/// Reads an attribute holding one integer.
pub fn read_u64(path: &Path) -> Result<u64, CollectError> {
    let s = read_trimmed(path)?;
    s.parse()
        .map_err(|_| CollectError::parse(path, format!("not an unsigned integer: {s:?}")))
}

/// Reads an attribute holding one signed integer.
pub fn read_i64(path: &Path) -> Result<i64, CollectError> {
    let s = read_trimmed(path)?;
    s.parse()
        .map_err(|_| CollectError::parse(path, format!("not an integer: {s:?}")))
}

/// Reads an optional sysfs attribute: `None` when the file is absent or the kernel refuses to
/// produce a value (EINVAL, ENODEV, EOPNOTSUPP, EBUSY, EPERM/EACCES: e.g. `speed` of a down
/// link), which node_exporter also treats as "attribute not available".
pub fn read_attr(path: &Path) -> Option<String> {
    match read_string_io(path) {
        Ok(mut s) => {
            let len = s.trim_end().len();
            s.truncate(len);
            Some(s)
        }
        Err(_) => None,
    }
}

/// Parses a field as f64, naming the file on error.
pub fn parse_f64(path: &Path, field: &str) -> Result<f64, CollectError> {
    field
        .parse()
        .map_err(|_| CollectError::parse(path, format!("not a number: {field:?}")))
}

/// Parses a field as u64, naming the file on error.
pub fn parse_u64(path: &Path, field: &str) -> Result<u64, CollectError> {
    field
        .parse()
        .map_err(|_| CollectError::parse(path, format!("not an unsigned integer: {field:?}")))
}
