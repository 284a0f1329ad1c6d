//! The agent's own `process_*` metrics, with the names, HELP texts and units of the process
//! collector of Prometheus' Go client, which node_exporter serves (so the usual "exporter
//! memory / CPU / file descriptors" panels and alerts work on the agent too).
//!
//! They are read at every scrape, so they are read cheaply: `/proc/self/stat` through a kept
//! descriptor (one pread(2)), the descriptor limits with getrlimit(2) instead of formatting and
//! parsing `/proc/self/limits`, and the open descriptors counted on a kept `/proc/self/fd`
//! directory: its `st_size` is the count since Linux 6.2, and on older kernels it is rewound
//! and listed. The `prometheus` crate's process collector opened `/proc/self`, its `stat`,
//! `limits` and `fd` afresh at every scrape (about 5% of the agent's CPU per scrape) and
//! truncated the CPU counter to whole seconds.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::metrics::MetricWriter;
use crate::read::KeptFile;

/// Reads the process' own figures; one per scraper.
#[derive(Debug)]
pub struct ProcessMetrics {
    stat: KeptFile,
    fd_dir: Mutex<Option<File>>,
    /// Boot time of the host (`btime` of `/proc/stat`), read once.
    boot_time: OnceLock<Option<f64>>,
}

/// The fields of `/proc/self/stat` the metrics use, in their units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    pub threads: u64,
    /// Since boot, in clock ticks.
    pub start_ticks: u64,
    pub vsize_bytes: u64,
    pub rss_pages: u64,
}

impl Default for ProcessMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessMetrics {
    /// Nothing is opened until the first scrape.
    pub fn new() -> Self {
        Self {
            stat: KeptFile::one_record("/proc/self/stat".into()),
            fd_dir: Mutex::new(None),
            boot_time: OnceLock::new(),
        }
    }

    /// Appends the `process_*` families to `out`. A figure that cannot be read is left out
    /// (and logged at debug level), as the Go client does; it never fails the scrape.
    pub fn collect(&self, out: &mut MetricWriter) {
        match self.stat.read_string_io().and_then(|s| parse_stat(&s)) {
            Ok(st) => {
                let tick = ticks_per_second();
                out.counter(
                    "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.",
                    &[],
                    st.cpu_ticks as f64 / tick,
                );
                out.gauge(
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes.",
                    &[],
                    st.vsize_bytes as f64,
                );
                out.gauge(
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes.",
                    &[],
                    (st.rss_pages * page_size()) as f64,
                );
                out.gauge(
                    "process_threads",
                    "Number of OS threads in the process.",
                    &[],
                    st.threads as f64,
                );
                if let Some(boot) = *self.boot_time.get_or_init(boot_time) {
                    out.gauge(
                        "process_start_time_seconds",
                        "Start time of the process since unix epoch in seconds.",
                        &[],
                        boot + st.start_ticks as f64 / tick,
                    );
                }
            }
            Err(e) => tracing::debug!(error = %e, "reading /proc/self/stat failed"),
        }
        match self.open_fds() {
            Ok(n) => out.gauge(
                "process_open_fds",
                "Number of open file descriptors.",
                &[],
                n as f64,
            ),
            Err(e) => tracing::debug!(error = %e, "counting /proc/self/fd failed"),
        }
        if let Some(max) = soft_limit(libc::RLIMIT_NOFILE) {
            out.gauge(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                &[],
                max,
            );
        }
        if let Some(max) = soft_limit(libc::RLIMIT_AS) {
            out.gauge(
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                &[],
                max,
            );
        }
    }

    /// Open descriptors of the process, the kept directory's own included (as a listing that
    /// opens the directory counts itself).
    fn open_fds(&self) -> io::Result<u64> {
        let mut slot = self.fd_dir.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(File::open("/proc/self/fd")?);
        }
        let Some(dir) = slot.as_ref() else {
            return Err(io::Error::other("no /proc/self/fd descriptor"));
        };
        let size = dir.metadata()?.len();
        if size > 0 {
            return Ok(size);
        }
        count_entries(dir)
    }
}

/// Parses `/proc/self/stat` (proc(5)). The command name, in parentheses, may hold spaces and
/// parentheses itself, so fields are counted from the last `)`.
pub fn parse_stat(s: &str) -> io::Result<Stat> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("stat: {what}"));
    let rest = s
        .rfind(')')
        .map(|i| &s[i + 1..])
        .ok_or_else(|| bad("no ')' after the command name"))?;
    // Field 3 (state) is index 0 here.
    let f: Vec<&str> = rest.split_ascii_whitespace().take(22).collect();
    let num = |i: usize, name: &str| -> io::Result<u64> {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad(&format!("field {name} missing or not a number")))
    };
    Ok(Stat {
        cpu_ticks: num(11, "utime")? + num(12, "stime")?,
        threads: num(17, "num_threads")?,
        start_ticks: num(19, "starttime")?,
        vsize_bytes: num(20, "vsize")?,
        rss_pages: num(21, "rss")?,
    })
}

/// Counts the entries of a directory other than `.` and `..`, from its start, with
/// getdents64(2) on the descriptor (rewound first, so it can be listed again at every scrape).
fn count_entries(dir: &File) -> io::Result<u64> {
    let fd = dir.as_raw_fd();
    // SAFETY: lseek on a descriptor we own.
    if unsafe { libc::lseek(fd, 0, libc::SEEK_SET) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = [0u8; 4096];
    let mut count = 0u64;
    loop {
        // SAFETY: getdents64 writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = usize::try_from(n).unwrap_or(0);
        if n == 0 {
            return Ok(count);
        }
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        let mut off = 0;
        while off + 19 < n {
            let reclen = usize::from(u16::from_ne_bytes([buf[off + 16], buf[off + 17]]));
            if reclen == 0 || off + reclen > n {
                break;
            }
            let name = &buf[off + 19..off + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if name != b"." && name != b".." {
                count += 1;
            }
            off += reclen;
        }
    }
}

/// getrlimit(2)'s resource type: glibc declares its own enum type, other C libraries an int.
#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

/// A soft resource limit as the Go client reports it (unlimited is 2^64 - 1).
fn soft_limit(resource: Resource) -> Option<f64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we pass.
    (unsafe { libc::getrlimit(resource, &mut lim) } == 0).then_some(lim.rlim_cur as f64)
}

fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *TICKS.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        t if t > 0 => t as f64,
        _ => 100.0,
    })
}

fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE
        .get_or_init(|| u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096))
}

/// `btime` of `/proc/stat`: the host's boot time in seconds since the epoch.
fn boot_time() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_and_parens_in_the_name() {
        let line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 \
                    123456 5120000 1017 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        let st = parse_stat(line).expect("parses");
        assert_eq!(
            st,
            Stat {
                cpu_ticks: 325,
                threads: 3,
                start_ticks: 123456,
                vsize_bytes: 5120000,
                rss_pages: 1017,
            }
        );
        assert!(parse_stat("4242 (x) S 1 2").is_err());
        assert!(parse_stat("no parenthesis").is_err());
    }

    #[test]
    fn counts_open_descriptors_as_they_change() {
        let p = ProcessMetrics::new();
        let before = p.open_fds().expect("count");
        // The listing fallback agrees with a fresh read_dir (the kept descriptor included).
        // Other test threads open and close files between the two listings, so they are
        // compared until a quiet moment lets them agree (read_dir holds one more descriptor of
        // its own while it lists).
        let mut seen = Vec::new();
        let agreed = (0..200).any(|_| {
            let dir = p.fd_dir.lock().expect("lock");
            let listed = count_entries(dir.as_ref().expect("kept")).expect("list");
            drop(dir);
            let fresh = std::fs::read_dir("/proc/self/fd")
                .expect("read_dir")
                .count() as u64;
            seen.push((fresh, listed));
            fresh == listed + 1 || fresh == listed
        });
        assert!(agreed, "read_dir vs listing never agreed: {seen:?}");
        let extra: Vec<File> = (0..5)
            .map(|_| File::open("/proc/self/stat").expect("open"))
            .collect();
        let after = p.open_fds().expect("count");
        // Other test threads open and close files too: at least the five more.
        assert!(after >= before + 5, "{before} then {after}");
        drop(extra);
    }

    #[test]
    fn writes_every_family_with_go_client_names() {
        let p = ProcessMetrics::new();
        let mut w = MetricWriter::new();
        p.collect(&mut w);
        let text = w.render_to_string();
        for name in [
            "process_cpu_seconds_total counter",
            "process_virtual_memory_bytes gauge",
            "process_virtual_memory_max_bytes gauge",
            "process_resident_memory_bytes gauge",
            "process_threads gauge",
            "process_start_time_seconds gauge",
            "process_open_fds gauge",
            "process_max_fds gauge",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name}\n")),
                "{name} in\n{text}"
            );
        }
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} in\n{text}"))
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        let start = value("process_start_time_seconds");
        assert!(start > now - 3600.0 && start <= now + 1.0, "start {start}");
        assert!(value("process_resident_memory_bytes") > 0.0);
        assert!(value("process_threads") >= 1.0);
    }
}
