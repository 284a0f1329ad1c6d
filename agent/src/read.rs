//! Small, allocation-light readers for procfs and sysfs files, with errors that name the path,
//! and `KeptFile`: a procfs/sysfs file held open across scrapes and re-read with pread(2).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::error::CollectError;

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
    fill_to_end(out, false, |buf, _offset| f.read(buf))
}

/// Appends to `out` what `read(buf, offset)` returns (offset counted from the first byte read)
/// until it returns 0, or, with `one_record`, a read shorter than asked. Interrupted reads are
/// retried; a non-UTF-8 content is an `InvalidData` error.
fn fill_to_end(
    out: &mut String,
    one_record: bool,
    mut read: impl FnMut(&mut [u8], u64) -> io::Result<usize>,
) -> io::Result<()> {
    let mut buf = std::mem::take(out).into_bytes();
    let base = buf.len();
    let result = loop {
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(buf.capacity().max(4096));
        }
        // Zeroing the spare capacity costs a memset of a few KiB, far less than a syscall.
        let start = buf.len();
        buf.resize(buf.capacity(), 0);
        let want = buf.len() - start;
        match read(&mut buf[start..], (start - base) as u64) {
            Ok(0) => {
                buf.truncate(start);
                break Ok(());
            }
            Ok(n) if one_record && n < want => {
                buf.truncate(start + n);
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

/// Appends all of `f` from byte offset 0 to `out` with pread(2) calls until EOF. Reading at
/// offset 0 makes procfs and sysfs generate the content afresh on every call (seq_file resets
/// its iterator at position 0; kernfs calls the attribute's `show` again), so one descriptor can
/// be re-read at every scrape. Later calls continue at the offset reached, which seq_file
/// serves without re-walking.
///
/// With `one_record`, the file is known to produce its whole content as one record (a
/// `single_open` seq_file such as `/proc/stat` or `/proc/meminfo`, a sysfs attribute, a sysctl):
/// such a read fills the buffer unless it reached the end, so a short read ends the loop without
/// the extra pread(2) that would return 0. Multi-record seq_files (`/proc/vmstat`,
/// `/proc/diskstats`) return at most a page per read and need that final read.
pub fn pread_to_end(f: &File, out: &mut String, one_record: bool) -> io::Result<()> {
    fill_to_end(out, one_record, |buf, offset| f.read_at(buf, offset))
}

/// Descriptors currently held by all `KeptFile`s of the process.
static KEPT: AtomicUsize = AtomicUsize::new(0);

/// How many descriptors `KeptFile`s may hold at once: half the soft RLIMIT_NOFILE (the other
/// half stays for connections and one-shot reads), at most 16384. Beyond it files are opened,
/// read and closed as before.
fn kept_cap() -> usize {
    static CAP: OnceLock<usize> = OnceLock::new();
    *CAP.get_or_init(|| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit into the struct we pass.
        let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            lim.rlim_cur
        } else {
            1024
        };
        usize::try_from(soft / 2).unwrap_or(usize::MAX).min(16384)
    })
}

/// One descriptor counted in `KEPT`; uncounted when dropped.
#[derive(Debug)]
struct Kept(File);

impl Kept {
    /// Counts `f` as kept, or gives it back when the cap is reached.
    fn new(f: File) -> Option<Self> {
        let cap = kept_cap();
        KEPT.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < cap).then_some(n + 1)
        })
        .ok()
        .map(|_| Kept(f))
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        KEPT.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether `f` lives on procfs or sysfs, whose files regenerate their content on a read at
/// offset 0. Regular files (fixture trees, textfiles) are never kept: a file replaced by
/// rename(2) would go on serving the old content through a kept descriptor.
fn regenerates(f: &File) -> bool {
    // SAFETY: statfs is plain data; fstatfs fills it for an open descriptor.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `f` is an open descriptor and `st` is a valid out-pointer.
    if unsafe { libc::fstatfs(f.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    // The field's and the constants' types differ between C libraries: compare as i64.
    #[allow(clippy::unnecessary_cast)]
    let (ty, proc, sys) = (
        st.f_type as i64,
        libc::PROC_SUPER_MAGIC as i64,
        libc::SYSFS_MAGIC as i64,
    );
    ty == proc || ty == sys
}

/// Whether a read through a kept descriptor failed because its file is gone (a sysfs
/// attribute of a removed device gives ENODEV, an unregistered sysctl ENOENT): the descriptor
/// is dropped and the path opened again, which decides whether the file still exists.
fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENODEV | libc::ENOENT | libc::ESTALE | libc::ESRCH | libc::EBADF)
    )
}

/// A procfs or sysfs file read at every scrape. The first read opens it; if it is on procfs or
/// sysfs and the process-wide cap allows, the descriptor is kept and later reads are a single
/// pread(2) at offset 0 instead of openat(2) + read(2) + close(2) (on sysfs, 0.8 µs instead of
/// 8 µs of kernel time). Values are never cached: the kernel regenerates them on every read.
/// A descriptor whose file went away is dropped and the path opened again at once.
#[derive(Debug)]
pub struct KeptFile {
    path: PathBuf,
    file: Mutex<Option<Kept>>,
    /// The whole content is one record (see `pread_to_end`).
    one_record: bool,
}

impl KeptFile {
    /// A file at `path`, opened on first read.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: Mutex::new(None),
            one_record: false,
        }
    }

    /// A file whose kernel side produces its whole content as one record: a `single_open`
    /// procfs file (`stat`, `meminfo`, `loadavg`, `pressure/*`, `PID/stat`), a sysctl under
    /// `/proc/sys`, or a sysfs attribute. Reading it takes one pread(2) instead of two.
    pub fn one_record(path: PathBuf) -> Self {
        Self {
            one_record: true,
            ..Self::new(path)
        }
    }

    /// The path, for error messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a descriptor is currently held (for tests).
    pub fn is_kept(&self) -> bool {
        self.file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Runs `read` on the kept descriptor, or on a freshly opened one (kept afterwards when
    /// allowed). A stale kept descriptor is replaced once.
    fn with<T>(&self, mut read: impl FnMut(&File) -> io::Result<T>) -> io::Result<T> {
        let mut slot = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(kept) = slot.as_ref() {
            match read(&kept.0) {
                Err(e) if is_stale(&e) => *slot = None,
                res => return res,
            }
        }
        let f = File::open(&self.path)?;
        let res = read(&f);
        let stale = matches!(&res, Err(e) if is_stale(e));
        if !stale && regenerates(&f) {
            *slot = Kept::new(f);
        }
        res
    }

    /// Reads the whole file, like `read_string_io`.
    pub fn read_string_io(&self) -> io::Result<String> {
        self.with(|f| {
            let mut s = String::with_capacity(4096);
            pread_to_end(f, &mut s, self.one_record)?;
            Ok(s)
        })
    }

    /// Reads the whole file, naming the path on error.
    pub fn read_string(&self) -> Result<String, CollectError> {
        self.read_string_io()
            .map_err(|e| CollectError::io(&self.path, e))
    }

    /// One pread(2) at offset 0 of at most `buf.len()` bytes, as node_exporter reads sysfs
    /// attributes (a single read: some drivers answer EAGAIN forever).
    pub fn read_once(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.with(|f| f.read_at(buf, 0))
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
        for len in [0usize, 4097, 100_000] {
            let p = dir.path().join(format!("f{len}"));
            for one_record in [false, true] {
                let mut out = String::from("prefix:");
                pread_to_end(&File::open(&p).expect("open"), &mut out, one_record).expect("pread");
                assert_eq!(out.len(), "prefix:".len() + len, "one_record {one_record}");
            }
        }
    }

    #[test]
    fn one_record_files_read_whole_in_fewer_calls() {
        // /proc/stat is a single_open seq_file larger than the first 4 KiB buffer on most hosts;
        // /proc/self/stat and /proc/meminfo are smaller. Each read must be whole: its last line
        // complete and as many lines as a plain read gives.
        for path in [
            "/proc/stat",
            "/proc/self/stat",
            "/proc/meminfo",
            "/proc/sys/fs/file-nr",
        ] {
            let one = KeptFile::one_record(path.into());
            for _ in 0..2 {
                let text = one.read_string().expect("read");
                let plain = read_string(Path::new(path)).expect("read");
                assert!(text.ends_with('\n'), "{path}: {text:?}");
                assert_eq!(text.lines().count(), plain.lines().count(), "{path}");
            }
        }
    }

    /// The value after `key` in a `key value` line of `text`.
    fn field(text: &str, key: &str) -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {text}"))
    }

    /// Reads `f` twice through its kept descriptor with `between` in between.
    fn twice(f: &KeptFile, between: impl FnOnce()) -> (String, String) {
        let a = f.read_string().expect("first read");
        assert!(f.is_kept(), "{} not kept", f.path().display());
        between();
        let b = f.read_string().expect("second read");
        assert!(f.is_kept(), "{} no longer kept", f.path().display());
        (a, b)
    }

    #[test]
    fn kept_procfs_files_regenerate_at_offset_zero() {
        // single_open seq_file (/proc/uptime, like meminfo, loadavg, pressure/*).
        let f = KeptFile::new("/proc/uptime".into());
        let (a, b) = twice(&f, || {
            std::thread::sleep(std::time::Duration::from_millis(30))
        });
        assert_ne!(a, b, "uptime did not move");
        // single_open_size (/proc/stat): sleeping switches context.
        let f = KeptFile::new("/proc/stat".into());
        let (a, b) = twice(&f, || {
            std::thread::sleep(std::time::Duration::from_millis(5))
        });
        assert!(field(&b, "ctxt ") > field(&a, "ctxt "), "{a}\n{b}");
        // proc_sys handler (/proc/sys/*): a fresh UUID on every read.
        let f = KeptFile::new("/proc/sys/kernel/random/uuid".into());
        let (a, b) = twice(&f, || {});
        assert_ne!(a, b);
        assert_eq!(a.trim().len(), 36, "{a:?}");
    }

    #[test]
    fn kept_net_files_regenerate_at_offset_zero() {
        // Iterating seq_file in the network namespace (/proc/net/dev, like /proc/diskstats)
        // and a sysfs attribute (kernfs): loopback's transmit counters after one datagram.
        let lo_tx = |text: &str| -> u64 {
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with("lo:"))
                .unwrap_or_else(|| panic!("no lo in {text}"));
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields[10].parse().expect("tx packets")
        };
        let send = || {
            let rx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            let tx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            tx.send_to(b"x", rx.local_addr().expect("addr"))
                .expect("send");
            let mut b = [0u8; 4];
            rx.recv(&mut b).expect("recv");
        };
        let dev = KeptFile::new("/proc/net/dev".into());
        let (a, b) = twice(&dev, send);
        assert!(lo_tx(&b) > lo_tx(&a), "{a}\n{b}");
        let attr = KeptFile::new("/sys/class/net/lo/statistics/tx_packets".into());
        let read = || {
            let mut buf = [0u8; 128];
            let n = attr.read_once(&mut buf).expect("read");
            std::str::from_utf8(&buf[..n])
                .expect("utf-8")
                .trim()
                .parse::<u64>()
                .expect("number")
        };
        let before = read();
        assert!(attr.is_kept());
        send();
        assert!(read() > before);
        assert!(attr.is_kept());
    }

    #[test]
    fn vanished_kept_file_is_reopened_and_reports_its_absence() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let f = KeptFile::new(format!("/proc/{}/stat", child.id()).into());
        let first = f.read_string().expect("read while alive");
        assert!(first.contains("(sleep)"), "{first}");
        assert!(f.is_kept());
        child.kill().expect("kill");
        child.wait().expect("wait");
        // The kept descriptor now fails (ESRCH); reopening the path fails with ENOENT.
        let e = f.read_string_io().expect_err("process is gone");
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        assert!(!f.is_kept());
    }

    #[test]
    fn regular_files_are_never_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("stat");
        std::fs::write(&p, "one").expect("write");
        let f = KeptFile::new(p.clone());
        assert_eq!(f.read_string().expect("read"), "one");
        assert!(!f.is_kept());
        // Replaced by rename, as fixture writers and textfile tools do: the new content shows.
        std::fs::write(dir.path().join("tmp"), "two").expect("write");
        std::fs::rename(dir.path().join("tmp"), &p).expect("rename");
        assert_eq!(f.read_string().expect("read"), "two");
        std::fs::remove_file(&p).expect("remove");
        assert_eq!(
            f.read_string_io().expect_err("gone").kind(),
            io::ErrorKind::NotFound
        );
    }
}
