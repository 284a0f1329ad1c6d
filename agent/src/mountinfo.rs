//! `{procfs}/1/mountinfo`: the line parser (proc(5)'s fields and the kernel's octal escapes)
//! and `MountTable`, the table built from it, cached with the open procfs file until the
//! kernel signals a mount or unmount.
//!
//! The kernel marks an open mountinfo with POLLPRI when its namespace mounts or unmounts
//! anything, so an unchanged table costs one poll(2) instead of reading and parsing mountinfo
//! (the most expensive file the agent reads). It is reread anyway once a minute, as a guard
//! against a change the kernel does not signal. Only a procfs file is cached: a regular file
//! (a fixture tree) never reports POLLPRI, so it is reread at every scrape.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::CollectError;

/// A cached table is reread after this long even without a change notification.
const MAX_TABLE_AGE: Duration = Duration::from_secs(60);

/// The mount table of `{procfs}/1/mountinfo` (or `{procfs}/self/mountinfo` when PID 1 is
/// hidden by `hidepid`), as built by the caller from the file's text.
#[derive(Debug)]
pub struct MountTable<T> {
    mountinfo: PathBuf,
    self_mountinfo: PathBuf,
    cached: Mutex<Option<Cached<T>>>,
}

/// A built table and the open procfs file that reports changes to it.
#[derive(Debug)]
struct Cached<T> {
    file: File,
    table: Arc<T>,
    read_at: Instant,
}

impl<T> MountTable<T> {
    pub fn new(procfs: &Path) -> Self {
        Self {
            mountinfo: procfs.join("1/mountinfo"),
            self_mountinfo: procfs.join("self/mountinfo"),
            cached: Mutex::new(None),
        }
    }

    /// The current table: the cached one while the kernel reports no change, else `build`
    /// run over the file's path and text.
    pub fn current(
        &self,
        build: impl FnOnce(&Path, &[u8]) -> Result<T, CollectError>,
    ) -> Result<Arc<T>, CollectError> {
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = cached.as_ref() {
            if c.read_at.elapsed() < MAX_TABLE_AGE && !mount_table_changed(&c.file) {
                return Ok(Arc::clone(&c.table));
            }
        }
        *cached = None;
        let (mut file, path) = self.open()?;
        let mut text = Vec::with_capacity(8192);
        file.read_to_end(&mut text)
            .map_err(|e| CollectError::io(path, e))?;
        let table = Arc::new(build(path, &text)?);
        if is_procfs(&file) {
            *cached = Some(Cached {
                file,
                table: Arc::clone(&table),
                read_at: Instant::now(),
            });
        }
        Ok(table)
    }

    /// Whether a table is cached (for tests).
    pub fn is_cached(&self) -> bool {
        self.cached
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Opens the mount table, falling back to `self/mountinfo` when PID 1 is hidden; a missing
    /// table is node_exporter's "no data".
    fn open(&self) -> Result<(File, &Path), CollectError> {
        for path in [&self.mountinfo, &self.self_mountinfo] {
            match File::open(path) {
                Ok(f) => return Ok((f, path)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    tracing::debug!(path = %path.display(), "mountinfo not found");
                }
                Err(e) => return Err(CollectError::io(path, e)),
            }
        }
        Err(CollectError::NoData(format!(
            "{} not found",
            self.self_mountinfo.display()
        )))
    }
}

/// Whether the kernel signalled a mount or unmount since `file` was opened (or on any error).
fn mount_table_changed(file: &File) -> bool {
    let mut pfd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    };
    // SAFETY: one valid pollfd for an fd that `file` keeps open; a zero timeout never blocks.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n != 0
}

/// Whether `file` lives on procfs (whose mountinfo supports change notification).
// `f_type` and the constant have different integer types on different architectures.
#[allow(clippy::unnecessary_cast)]
pub fn is_procfs(file: &File) -> bool {
    let mut buf = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: a valid fd and a writable statfs buffer.
    let rc = unsafe { libc::fstatfs(file.as_raw_fd(), buf.as_mut_ptr()) };
    // SAFETY: fstatfs returned 0, so it filled the (already zeroed) buffer.
    rc == 0 && unsafe { buf.assume_init() }.f_type as i64 == libc::PROC_SUPER_MAGIC as i64
}

/// The fields of one mountinfo line that the collector uses, still escaped.
#[derive(Debug, PartialEq)]
pub struct RawMount<'a> {
    /// The device number of the filesystem (`major:minor`, decimal digits only).
    pub major: &'a [u8],
    pub minor: &'a [u8],
    pub mount_point: &'a [u8],
    pub mount_options: &'a [u8],
    pub fstype: &'a [u8],
    pub source: &'a [u8],
    pub super_options: &'a [u8],
}

/// Splits one line of mountinfo (proc(5)):
/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
/// Fields are separated by single spaces; a source may be empty, giving two spaces in a row.
pub fn parse_line(line: &[u8]) -> Option<RawMount<'_>> {
    let mut f = line.split(|&b| b == b' ');
    let _id = f.next()?;
    let _parent = f.next()?;
    let (major, minor) = split_once(f.next()?, b':')?;
    if !all_digits(major) || !all_digits(minor) {
        return None;
    }
    let _root = f.next()?;
    let mount_point = f.next()?;
    let mount_options = f.next()?;
    // Zero or more optional fields ("shared:1", "master:2", ...) end at a lone "-".
    while f.next()? != b"-" {}
    let m = RawMount {
        major,
        minor,
        mount_point,
        mount_options,
        fstype: f.next()?,
        source: f.next()?,
        super_options: f.next()?,
    };
    if f.next().is_some() || m.mount_point.is_empty() {
        return None;
    }
    Some(m)
}

fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

fn all_digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

/// Whether a comma-separated option list contains `opt` exactly.
pub fn has_option(options: &[u8], opt: &[u8]) -> bool {
    options.split(|&b| b == b',').any(|o| o == opt)
}

/// Decodes the kernel's `\ooo` octal escapes (it escapes space, tab, newline and backslash in
/// mountinfo). A backslash not followed by three octal digits is kept as is.
pub fn unescape(s: &[u8]) -> Cow<'_, [u8]> {
    if !s.contains(&b'\\') {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' {
            if let Some(&[a, b, c]) = s.get(i + 1..i + 4) {
                if (b'0'..=b'3').contains(&a)
                    && (b'0'..=b'7').contains(&b)
                    && (b'0'..=b'7').contains(&c)
                {
                    out.push(((a - b'0') << 6) | ((b - b'0') << 3) | (c - b'0'));
                    i += 4;
                    continue;
                }
            }
        }
        out.push(s[i]);
        i += 1;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let line = b"36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 shared:2 - ext3 /dev/root ro,errors=continue";
        let m = parse_line(line).expect("valid line");
        assert_eq!((m.major, m.minor), (&b"98"[..], &b"0"[..]));
        assert_eq!(m.mount_point, b"/mnt/my\\040disk");
        assert_eq!(m.mount_options, b"rw,noatime");
        assert_eq!(m.fstype, b"ext3");
        assert_eq!(m.source, b"/dev/root");
        assert_eq!(m.super_options, b"ro,errors=continue");
        // No optional fields, and an empty source.
        let m = parse_line(b"22 27 0:21 / /proc rw,relatime - proc  rw").expect("empty source");
        assert_eq!(m.source, b"");
        assert_eq!(m.fstype, b"proc");
    }

    #[test]
    fn malformed_lines_are_rejected() {
        for bad in [
            &b"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw"[..],
            b"36 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root",
            b"36 35 980 / /mnt2 rw - ext3 /dev/root rw",
            b"36 35 98:x / /mnt2 rw - ext3 /dev/root rw",
            b"36 35 98:0 / /mnt2 rw - ext3 /dev/root rw extra",
            b"36 35",
        ] {
            assert_eq!(parse_line(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn octal_escapes_are_decoded() {
        assert_eq!(
            &*unescape(b"/mnt/a\\040b\\011c\\012d\\134e"),
            b"/mnt/a b\tc\nd\\e"
        );
        assert!(matches!(unescape(b"/plain"), Cow::Borrowed(_)));
        // Not an escape: kept verbatim.
        assert_eq!(&*unescape(b"/x\\9ab\\04"), b"/x\\9ab\\04");
    }

    #[test]
    fn options_match_whole_words() {
        assert!(has_option(b"rw,ro", b"ro"));
        assert!(has_option(b"emergency_ro", b"emergency_ro"));
        assert!(!has_option(b"rw,errors=remount-ro", b"ro"));
    }

    #[test]
    fn only_procfs_tables_are_cached() {
        let table: MountTable<usize> = MountTable::new(Path::new("/proc"));
        let n = table.current(|_, text| Ok(text.len())).expect("read /proc");
        assert!(*n > 0);
        assert!(table.is_cached());
        // Unchanged: the cached table, `build` is not run.
        let again = table
            .current(|_, _| panic!("the cached table is reused"))
            .expect("cached");
        assert_eq!(again, n);

        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("1")).expect("mkdir");
        std::fs::write(
            dir.path().join("1/mountinfo"),
            "27 1 254:0 / / rw - ext4 /dev/vda rw\n",
        )
        .expect("write");
        let table: MountTable<usize> = MountTable::new(dir.path());
        table.current(|_, text| Ok(text.len())).expect("fixture");
        assert!(!table.is_cached(), "a fixture is reread");
        // A regular file never reports POLLPRI, which is why it must not be cached.
        let f = File::open(dir.path().join("1/mountinfo")).expect("open");
        assert!(!is_procfs(&f));
    }

    #[test]
    fn missing_tables_fall_back_to_self_then_are_no_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("self")).expect("mkdir");
        std::fs::write(dir.path().join("self/mountinfo"), "x").expect("write");
        let table: MountTable<PathBuf> = MountTable::new(dir.path());
        let p = table.current(|p, _| Ok(p.to_owned())).expect("self");
        assert!(p.ends_with("self/mountinfo"));
        std::fs::remove_file(dir.path().join("self/mountinfo")).expect("rm");
        let err = table.current(|p, _| Ok(p.to_owned())).expect_err("none");
        assert!(err.is_no_data(), "{err:?}");
    }
}
