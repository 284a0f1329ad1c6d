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
    let mut s = String::with_capacity(4096);
    read_to_end_into(&mut File::open(path)?, &mut s)?;
    Ok(s)
}

/// Appends the rest of `f` to `out`, with plain read(2) calls until EOF. std's
/// `read_to_string` first asks statx(2) and lseek(2) for a size hint: two wasted syscalls per
/// file on procfs and sysfs, which report sizes of 0 or 4096 whatever the content.
pub fn read_to_end_into(f: &mut File, out: &mut String) -> io::Result<()> {
    let mut buf = std::mem::take(out).into_bytes();
    let result = loop {
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(buf.capacity().max(4096));
        }
        // Zeroing the spare capacity costs a memset of a few KiB, far less than a syscall.
        let start = buf.len();
        buf.resize(buf.capacity(), 0);
        match f.read(&mut buf[start..]) {
            Ok(0) => {
                buf.truncate(start);
                break Ok(());
            }
            Ok(n) => buf.truncate(start + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(start),
            Err(e) => {
                buf.truncate(start);
                break Err(e);
            }
        }
    };
    match String::from_utf8(buf) {
        Ok(s) => {
            *out = s;
            result
        }
        Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e.utf8_error())),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_whole_files_of_any_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        for len in [0usize, 1, 511, 4096, 4097, 100_000] {
            let p = dir.path().join(format!("f{len}"));
            let content: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            std::fs::write(&p, &content).expect("write");
            assert_eq!(read_string_io(&p).expect("read"), content);
            let mut out = String::from("prefix:");
            read_to_end_into(&mut File::open(&p).expect("open"), &mut out).expect("read");
            assert_eq!(out, format!("prefix:{content}"));
        }
        std::fs::write(dir.path().join("bad"), [0xff, 0xfe]).expect("write");
        let e = read_string_io(&dir.path().join("bad")).expect_err("invalid utf-8");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
