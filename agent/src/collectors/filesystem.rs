//! `filesystem`: size, free space and inodes of every mounted filesystem, from statfs(2) on
//! each mount in `{procfs}/1/mountinfo`, as node_exporter reports them.
//!
//! # Mounts and labels
//! Mounts come from `{procfs}/1/mountinfo` (the host's mount namespace when the agent runs in
//! a container with the host's `/proc`), or `{procfs}/self/mountinfo` when PID 1 is hidden
//! (`hidepid`). The kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
//! backslash) are decoded in mount points and sources. `readonly` is 1 when the mount's or the
//! superblock's options contain `ro` (what `/proc/mounts`, which node_exporter 1.5 read,
//! reports). Mounts are filtered on the mount point label and the filesystem type; a label set
//! seen twice (e.g. a bind mount stacked on itself) is reported once, first one wins.
//!
//! # rootfs
//! As node_exporter's `--path.rootfs`: statfs is called on `rootfs` joined with the mount
//! point, and a leading `rootfs` is stripped from the `mountpoint` label (an empty result is
//! `/`). Two deliberate refinements over node_exporter's plain string `TrimPrefix`: trailing
//! slashes of `rootfs` are ignored, and the prefix is stripped only at a path-component
//! boundary (`/host/rootfs2` is not turned into `2` by rootfs `/host/root`).
//!
//! # Hung mounts
//! statfs on a dead NFS or FUSE mount blocks in the kernel and cannot be interrupted. Like
//! upstream node_exporter (stuck-mount tracking, `--collector.filesystem.mount-timeout`),
//! statfs runs off the scrape thread and a mount whose call takes longer than `mount_timeout`
//! is marked stuck; while its call has not returned, later scrapes report it as stuck without
//! calling statfs again. Unlike node_exporter (whose first scrape still waits for the hung
//! call), the scrape itself waits at most `mount_timeout` per mount.
//!
//! Only filesystems whose statfs can block go off the scrape thread. ext2/3/4, xfs, tmpfs and
//! ramfs answer statfs from the superblock counters the kernel keeps in memory, without I/O or a
//! server round trip, so their calls run on the scrape thread: handing them to another thread
//! cost two thread wake-ups per scrape, about 14% of the agent's CPU per scrape (a Kubernetes
//! node has dozens of tmpfs mounts for its pods' secrets). Every other type (nfs, cifs, fuse,
//! ceph, overlay, vfat, whose statfs may wait on a server, a daemon, a lower filesystem or a
//! device) goes to the worker with the timeout, as node_exporter does for every mount.
//!
//! The calls run on one long-lived worker thread that is handed the whole list of mounts per
//! scrape (no thread per mount or per scrape) and wakes the scrape only when it is done; the
//! scrape wakes itself when the call in flight reaches its deadline. When a call times out, the
//! worker is abandoned to its blocked call and a new worker takes over the remaining mounts; the
//! abandoned thread clears the mount's stuck mark and exits once its call returns. Results, the
//! batch's "abandoned" flag and the stuck mark are handled under the batch's lock, so a call
//! that returns just as it times out is either reported or marked stuck, never lost.
//!
//! # Cost per scrape
//! The parsed, filtered mount table is cached with the open procfs mountinfo file, which the
//! kernel marks with POLLPRI on every mount or unmount in its namespace: an unchanged table costs
//! one poll(2) instead of reading and parsing mountinfo (the most expensive file the agent
//! reads). It is reread anyway once a minute. `readonly` also honours statfs's `ST_RDONLY`, so
//! a filesystem the kernel flips to read-only without a mount-table event is still reported;
//! not under a rootfs prefix, though: there statfs answers for the agent's own read-only bind
//! mount of the host's `/` (the DaemonSet's `/host/root`), which says nothing about the host's.
//!
//! # `node_filesystem_device_error` labels
//! node_exporter 1.5 labels every family `{device, fstype, mountpoint}`; newer releases add a
//! `device_error` label (the statfs error text or `mountpoint timeout`, empty when healthy) to
//! all families. Beacon keeps 1.5's label sets for every family and sample of a healthy mount,
//! so output matches 1.5 byte for byte, and adds `device_error="<reason>"` only to the
//! `node_filesystem_device_error` sample of a mount that failed (`mountpoint timeout` for a
//! timeout, else the lowercase error text such as `permission denied`). Prometheus treats an
//! empty label as absent, so the series are the same as newer node_exporter's. As in 1.5, a
//! failed mount gets only `node_filesystem_device_error`; its size, inode and readonly samples
//! are omitted.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::collector::{CollectError, Collector, Context, Kind, Opt, Spec};
use crate::error::io_reason;
use crate::filter::DeviceFilter;
use crate::metrics::MetricWriter;

/// The `device_error` label value of a mount whose statfs timed out, as node_exporter's.
pub const TIMEOUT_ERROR: &str = "mountpoint timeout";

const SIZE_HELP: &str = "Filesystem size in bytes.";
const FREE_HELP: &str = "Filesystem free space in bytes.";
const AVAIL_HELP: &str = "Filesystem space available to non-root users in bytes.";
const FILES_HELP: &str = "Filesystem total file nodes.";
const FILES_FREE_HELP: &str = "Filesystem total free file nodes.";
const READONLY_HELP: &str = "Filesystem read-only status.";
const DEVICE_ERROR_HELP: &str =
    "Whether an error occurred while getting statistics for the given device.";

/// What statfs(2) says about one filesystem, in node_exporter's units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FsStats {
    /// Total blocks times the block size.
    pub size: f64,
    /// Free blocks (including those reserved for root) times the block size.
    pub free: f64,
    /// Blocks available to unprivileged users times the block size.
    pub avail: f64,
    /// Total inodes.
    pub files: f64,
    /// Free inodes.
    pub files_free: f64,
    /// `ST_RDONLY` in statvfs's `f_flag`: the mount or its superblock is read-only. Unlike
    /// the mount table's options it is always current, e.g. after ext4's `errors=remount-ro`.
    pub readonly: bool,
}

/// statfs(2) of `path`, with sizes computed as node_exporter does (`f_blocks * f_bsize`, ...).
///
/// It goes through statvfs(3), which libc implements with statfs(2) and copies `f_bsize` and
/// the counts unchanged, because only statvfs exposes the mount flags (`ST_RDONLY`).
pub fn statfs(path: &Path) -> io::Result<FsStats> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path contains a nul byte",
        ));
    }
    // Mount paths are short: build the C string on the stack instead of allocating.
    let mut stack = [0u8; 512];
    let heap: Vec<u8>;
    let cpath: &[u8] = if bytes.len() < stack.len() {
        stack[..bytes.len()].copy_from_slice(bytes);
        &stack[..=bytes.len()]
    } else {
        let mut v = Vec::with_capacity(bytes.len() + 1);
        v.extend_from_slice(bytes);
        v.push(0);
        heap = v;
        &heap
    };
    let mut buf = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `cpath` is NUL-terminated without interior NULs, and `buf` points to writable
    // memory of the type statvfs(3) fills in.
    let rc = unsafe { libc::statvfs(cpath.as_ptr().cast(), buf.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised the whole struct (which was zeroed anyway).
    let s = unsafe { buf.assume_init() };
    let bsize = s.f_bsize as f64;
    Ok(FsStats {
        size: s.f_blocks as f64 * bsize,
        free: s.f_bfree as f64 * bsize,
        avail: s.f_bavail as f64 * bsize,
        files: s.f_files as f64,
        files_free: s.f_ffree as f64,
        readonly: s.f_flag & libc::ST_RDONLY != 0,
    })
}

/// A statfs implementation.
type StatImpl = dyn Fn(&Path) -> io::Result<FsStats> + Send + Sync;

/// The statfs implementation, replaceable so tests can simulate a hung mount.
#[derive(Clone)]
struct StatFn(Arc<StatImpl>);

impl fmt::Debug for StatFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StatFn")
    }
}

/// One mount to report, after decoding, rootfs stripping and filtering.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    device: String,
    fstype: String,
    mountpoint: String,
    /// Where statfs is called: rootfs joined with the mount point.
    path: PathBuf,
    readonly: bool,
}

impl Mount {
    fn key(&self) -> (&str, &str, &str) {
        (&self.device, &self.fstype, &self.mountpoint)
    }
}

/// State shared with the worker threads.
#[derive(Debug)]
struct Shared {
    stat: StatFn,
    /// Mount points whose statfs timed out and has not returned yet.
    stuck: Mutex<HashSet<String>>,
}

impl Shared {
    fn lock_stuck(&self) -> MutexGuard<'_, HashSet<String>> {
        self.stuck.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How far a worker got with one batch. Lock order: `Batch::progress`, then `Shared::stuck`.
#[derive(Debug)]
struct Progress {
    /// Results of `mounts[start..start + results.len()]`, in order.
    results: Vec<io::Result<FsStats>>,
    /// When the call for `mounts[start + results.len()]` started (or the batch was handed over).
    since: Instant,
    /// Every mount of the batch has a result.
    finished: bool,
    /// The collector gave up on the call in flight and replaced this worker.
    abandoned: bool,
}

/// One scrape's work for a worker: statfs of `mounts[start..]`. The worker wakes the collector
/// only when the batch is finished; the collector wakes itself when the call in flight reaches
/// its deadline. So a scrape costs two thread wake-ups, not one per mount.
#[derive(Debug)]
struct Batch {
    mounts: Arc<Vec<Mount>>,
    start: usize,
    progress: Mutex<Progress>,
    done: Condvar,
}

impl Batch {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The handle of the current worker thread; dropping it lets the thread exit.
#[derive(Debug)]
struct Worker {
    jobs: Sender<Arc<Batch>>,
}

impl Worker {
    fn spawn(shared: &Arc<Shared>) -> io::Result<Worker> {
        let (jobs, rx) = mpsc::channel::<Arc<Batch>>();
        let shared = Arc::clone(shared);
        std::thread::Builder::new()
            .name("beacon-statfs".into())
            .spawn(move || worker_loop(&shared, &rx))?;
        Ok(Worker { jobs })
    }
}

/// Runs statfs for each batch until the collector drops its sender, or until a batch is
/// abandoned because a call hung: the thread then clears the stuck mark and exits as soon as
/// that call returns.
fn worker_loop(shared: &Shared, jobs: &Receiver<Arc<Batch>>) {
    for batch in jobs {
        let mounts = &batch.mounts[batch.start..];
        for (i, m) in mounts.iter().enumerate() {
            let res =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (shared.stat.0)(&m.path)))
                    .unwrap_or_else(|_| Err(io::Error::other("statfs panicked")));
            let mut p = batch.lock();
            if p.abandoned {
                if shared.lock_stuck().remove(&m.mountpoint) {
                    tracing::info!(mountpoint = %m.mountpoint, "mount point has recovered, monitoring will resume");
                }
                return;
            }
            p.results.push(res);
            if i + 1 == mounts.len() {
                p.finished = true;
                drop(p);
                batch.done.notify_one();
            } else {
                p.since = Instant::now();
            }
        }
    }
}

/// What one mount's statfs produced this scrape.
#[derive(Debug)]
enum Outcome {
    Stats(FsStats),
    Error(String),
}

const MOUNT_POINTS_EXCLUDE: Opt = Opt::new(
    "mount_points_exclude",
    "collector.filesystem.mount-points-exclude",
    Kind::Regex(Some(
        "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)",
    )),
    "Regexp of mount points to exclude for filesystem collector. (mutually exclusive to mount-points-include)",
)
.deprecated(&["collector.filesystem.ignored-mount-points"]);
const MOUNT_POINTS_INCLUDE: Opt = Opt::new(
    "mount_points_include",
    "collector.filesystem.mount-points-include",
    Kind::Regex(None),
    "Regexp of mount points to include for filesystem collector. (mutually exclusive to mount-points-exclude)",
);
const FS_TYPES_EXCLUDE: Opt = Opt::new(
    "fs_types_exclude",
    "collector.filesystem.fs-types-exclude",
    Kind::Regex(Some("^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$")),
    "Regexp of filesystem types to exclude for filesystem collector. (mutually exclusive to fs-types-include)",
)
.deprecated(&["collector.filesystem.ignored-fs-types"]);
const FS_TYPES_INCLUDE: Opt = Opt::new(
    "fs_types_include",
    "collector.filesystem.fs-types-include",
    Kind::Regex(None),
    "Regexp of filesystem types to include for filesystem collector. (mutually exclusive to fs-types-exclude)",
);
/// How long one statfs(2) may take before its mount is reported with
/// `device_error="mountpoint timeout"` and skipped until the call returns.
pub const MOUNT_TIMEOUT: Opt = Opt::new(
    "mount_timeout",
    "collector.filesystem.mount-timeout",
    Kind::Duration(Duration::from_secs(5)),
    "how long to wait for a mount to respond before marking it as stale",
);

/// The `filesystem` collector: statfs(2) of every mount in `/proc/1/mountinfo`.
pub const SPEC: Spec = Spec {
    name: "filesystem",
    default_enabled: true,
    help: "statfs(2) of each mount in /proc/1/mountinfo",
    options: &[
        MOUNT_POINTS_EXCLUDE,
        MOUNT_POINTS_INCLUDE,
        FS_TYPES_EXCLUDE,
        FS_TYPES_INCLUDE,
        MOUNT_TIMEOUT,
    ],
    filters: &[
        ("mount_points_exclude", "mount_points_include"),
        ("fs_types_exclude", "fs_types_include"),
    ],
    build: |ctx| Box::new(Filesystem::new(ctx)),
};

/// Reports statfs(2) for each mount.
#[derive(Debug)]
pub struct Filesystem {
    mountinfo: PathBuf,
    self_mountinfo: PathBuf,
    /// `paths.rootfs` without trailing slashes; empty when it is `/`.
    rootfs: Vec<u8>,
    /// `--collector.filesystem.mount-points-exclude` / `mount-points-include`.
    mount_points: DeviceFilter,
    /// `--collector.filesystem.fs-types-exclude` / `fs-types-include`.
    fs_types: DeviceFilter,
    timeout: Duration,
    shared: Arc<Shared>,
    /// The current worker, started on first use. Held for a whole collect, which also
    /// serialises concurrent scrapes of this collector.
    worker: Mutex<Option<Worker>>,
    /// The parsed mount table, reused until the kernel signals a mount or unmount.
    table: Mutex<Option<MountTable>>,
}

/// A parsed mount table and the open procfs file that reports changes to it: the kernel marks
/// an open mountinfo with POLLPRI when its namespace mounts or unmounts anything, so a scrape
/// costs one poll(2) instead of rereading and parsing the file.
#[derive(Debug)]
struct MountTable {
    file: File,
    mounts: Arc<Vec<Mount>>,
    read_at: Instant,
}

/// A cached mount table is reread after this long even without a change notification, as a
/// guard against a change the kernel does not signal.
const MAX_TABLE_AGE: Duration = Duration::from_secs(60);

impl Filesystem {
    pub fn new(ctx: &Context) -> Self {
        Self::with_statfs(ctx, statfs)
    }

    /// A collector calling `stat` instead of statfs(2) (tests use it to simulate hung mounts).
    pub fn with_statfs(
        ctx: &Context,
        stat: impl Fn(&Path) -> io::Result<FsStats> + Send + Sync + 'static,
    ) -> Self {
        let mut rootfs = ctx.paths.rootfs.as_os_str().as_bytes().to_vec();
        while rootfs.last() == Some(&b'/') {
            rootfs.pop();
        }
        Self {
            mountinfo: ctx.paths.procfs.join("1/mountinfo"),
            self_mountinfo: ctx.paths.procfs.join("self/mountinfo"),
            rootfs,
            mount_points: ctx.filter(&MOUNT_POINTS_EXCLUDE, &MOUNT_POINTS_INCLUDE),
            fs_types: ctx.filter(&FS_TYPES_EXCLUDE, &FS_TYPES_INCLUDE),
            timeout: ctx.duration(&MOUNT_TIMEOUT),
            shared: Arc::new(Shared {
                stat: StatFn(Arc::new(stat)),
                stuck: Mutex::new(HashSet::new()),
            }),
            worker: Mutex::new(None),
            table: Mutex::new(None),
        }
    }

    /// Opens the mount table, falling back to `self/mountinfo` when PID 1 is hidden.
    fn open_mountinfo(&self) -> Result<(File, &Path), CollectError> {
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

    /// The mounts to report, from the cached table while the kernel reports no change.
    fn current_mounts(&self) -> Result<Arc<Vec<Mount>>, CollectError> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = table.as_ref() {
            if t.read_at.elapsed() < MAX_TABLE_AGE && !mount_table_changed(&t.file) {
                return Ok(Arc::clone(&t.mounts));
            }
        }
        *table = None;
        let (mut file, path) = self.open_mountinfo()?;
        let mut text = Vec::with_capacity(8192);
        file.read_to_end(&mut text)
            .map_err(|e| CollectError::io(path, e))?;
        let mounts = Arc::new(self.mounts(path, &text)?);
        // Only procfs reports changes; anything else (a test fixture) is reread every scrape.
        if is_procfs(&file) {
            *table = Some(MountTable {
                file,
                mounts: Arc::clone(&mounts),
                read_at: Instant::now(),
            });
        }
        Ok(mounts)
    }

    /// The mounts to report: decoded, rootfs-stripped, filtered, sorted by label set and
    /// deduplicated.
    fn mounts(&self, path: &Path, text: &[u8]) -> Result<Vec<Mount>, CollectError> {
        let mut mounts = Vec::with_capacity(32);
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let raw = parse_line(line).ok_or_else(|| {
                CollectError::parse(
                    path,
                    format!(
                        "line {}: malformed mount: {:?}",
                        n + 1,
                        String::from_utf8_lossy(line)
                    ),
                )
            })?;
            let mp = unescape(raw.mount_point);
            let label_bytes = self.strip_rootfs(&mp);
            let mountpoint = String::from_utf8_lossy(label_bytes);
            if self.mount_point_ignored(&mountpoint) {
                continue;
            }
            let fstype = String::from_utf8_lossy(&unescape(raw.fstype)).into_owned();
            if self.fs_type_ignored(&fstype) {
                continue;
            }
            let readonly =
                has_option(raw.mount_options, b"ro") || has_option(raw.super_options, b"ro");
            mounts.push(Mount {
                device: String::from_utf8_lossy(&unescape(raw.source)).into_owned(),
                fstype,
                path: self.stat_path(label_bytes),
                mountpoint: mountpoint.into_owned(),
                readonly,
            });
        }
        // Stable: among equal label sets the first mount in the table is kept.
        mounts.sort_by(|a, b| a.key().cmp(&b.key()));
        mounts.dedup_by(|later, first| later.key() == first.key());
        Ok(mounts)
    }

    fn mount_point_ignored(&self, mp: &str) -> bool {
        self.mount_points.ignored(mp)
    }

    fn fs_type_ignored(&self, fstype: &str) -> bool {
        self.fs_types.ignored(fstype)
    }

    /// The `mountpoint` label: the mount point without a leading rootfs ("" becomes "/").
    fn strip_rootfs<'a>(&self, mp: &'a [u8]) -> &'a [u8] {
        if self.rootfs.is_empty() {
            return mp;
        }
        match mp.strip_prefix(self.rootfs.as_slice()) {
            Some([]) => b"/",
            Some(rest) if rest.starts_with(b"/") => rest,
            _ => mp,
        }
    }

    /// Where statfs is called for a mount point label: rootfs joined with it.
    fn stat_path(&self, label: &[u8]) -> PathBuf {
        if self.rootfs.is_empty() {
            return PathBuf::from(OsStr::from_bytes(label));
        }
        let mut p = Vec::with_capacity(self.rootfs.len() + label.len() + 1);
        p.extend_from_slice(&self.rootfs);
        if label != b"/" {
            if !label.starts_with(b"/") {
                p.push(b'/');
            }
            p.extend_from_slice(label);
        }
        PathBuf::from(OsStr::from_bytes(&p))
    }

    /// Hands `mounts[start..]` to the current worker, starting a new one when there is none
    /// or the current one is gone.
    fn dispatch(
        &self,
        slot: &mut Option<Worker>,
        mounts: &Arc<Vec<Mount>>,
        start: usize,
    ) -> Result<Arc<Batch>, CollectError> {
        let batch = Arc::new(Batch {
            mounts: Arc::clone(mounts),
            start,
            progress: Mutex::new(Progress {
                results: Vec::with_capacity(mounts.len() - start),
                since: Instant::now(),
                finished: false,
                abandoned: false,
            }),
            done: Condvar::new(),
        });
        if let Some(w) = slot.as_ref() {
            if w.jobs.send(Arc::clone(&batch)).is_ok() {
                return Ok(batch);
            }
        }
        let w = Worker::spawn(&self.shared)
            .map_err(|e| CollectError::Other(format!("start statfs worker: {}", io_reason(&e))))?;
        w.jobs
            .send(Arc::clone(&batch))
            .map_err(|_| CollectError::Other("statfs worker exited at start".into()))?;
        *slot = Some(w);
        Ok(batch)
    }

    /// Runs statfs for every mount and returns one outcome per mount in order: on this thread
    /// for the filesystems whose statfs cannot block, on the worker for the others.
    fn stat_all(&self, mounts: &Arc<Vec<Mount>>) -> Result<Vec<Outcome>, CollectError> {
        let remote: Vec<Mount> = mounts
            .iter()
            .filter(|m| !statfs_from_memory(&m.fstype))
            .cloned()
            .collect();
        let mut remote = if remote.is_empty() {
            Vec::new()
        } else {
            self.stat_on_worker(&Arc::new(remote))?
        }
        .into_iter();
        Ok(mounts
            .iter()
            .map(|m| {
                if statfs_from_memory(&m.fstype) {
                    self.outcome(m, (self.shared.stat.0)(&m.path))
                } else {
                    // stat_on_worker returns exactly one outcome per mount it was given.
                    remote
                        .next()
                        .unwrap_or_else(|| Outcome::Error(TIMEOUT_ERROR.to_owned()))
                }
            })
            .collect())
    }

    /// Runs statfs for every mount on the worker, waiting at most `timeout` for each, and
    /// returns one outcome per mount in order.
    fn stat_on_worker(&self, mounts: &Arc<Vec<Mount>>) -> Result<Vec<Outcome>, CollectError> {
        let n = mounts.len();
        let mut outcomes = Vec::with_capacity(n);
        if n == 0 {
            return Ok(outcomes);
        }
        let mut slot = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = self.dispatch(&mut slot, mounts, 0)?;
        loop {
            let mut p = batch.lock();
            while !p.finished {
                let deadline = p.since + self.timeout;
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                p = batch
                    .done
                    .wait_timeout(p, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            for res in p.results.drain(..) {
                let o = self.outcome(&mounts[outcomes.len()], res);
                outcomes.push(o);
            }
            if p.finished {
                return Ok(outcomes);
            }
            // The call in flight passed its deadline: mark the mount stuck and abandon the
            // worker, both under the batch lock the worker takes when the call returns.
            let m = &mounts[outcomes.len()];
            self.shared.lock_stuck().insert(m.mountpoint.clone());
            p.abandoned = true;
            drop(p);
            *slot = None;
            tracing::warn!(mountpoint = %m.mountpoint, timeout = ?self.timeout, "statfs timed out, mount point is labeled as stuck and will not be monitored until it responds");
            outcomes.push(Outcome::Error(TIMEOUT_ERROR.to_owned()));
            if outcomes.len() == n {
                return Ok(outcomes);
            }
            batch = self.dispatch(&mut slot, mounts, outcomes.len())?;
        }
    }

    fn outcome(&self, m: &Mount, res: io::Result<FsStats>) -> Outcome {
        match res {
            Ok(s) => Outcome::Stats(s),
            Err(e) => {
                tracing::debug!(mountpoint = %m.mountpoint, path = %m.path.display(), error = %e, "error on statfs() system call");
                Outcome::Error(io_reason(&e))
            }
        }
    }
}

/// Whether statfs(2) of `fstype` is answered from in-memory superblock counters, without I/O,
/// a server or a userspace daemon, so it cannot hang (see "Hung mounts" above).
fn statfs_from_memory(fstype: &str) -> bool {
    matches!(fstype, "ext2" | "ext3" | "ext4" | "xfs" | "tmpfs" | "ramfs")
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
fn is_procfs(file: &File) -> bool {
    let mut buf = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: a valid fd and a writable statfs buffer.
    let rc = unsafe { libc::fstatfs(file.as_raw_fd(), buf.as_mut_ptr()) };
    // SAFETY: fstatfs returned 0, so it filled the (already zeroed) buffer.
    rc == 0 && unsafe { buf.assume_init() }.f_type as i64 == libc::PROC_SUPER_MAGIC as i64
}

/// The fields of one mountinfo line that the collector uses, still escaped.
#[derive(Debug, PartialEq)]
struct RawMount<'a> {
    mount_point: &'a [u8],
    mount_options: &'a [u8],
    fstype: &'a [u8],
    source: &'a [u8],
    super_options: &'a [u8],
}

/// Splits one line of mountinfo (proc(5)):
/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
/// Fields are separated by single spaces; a source may be empty, giving two spaces in a row.
fn parse_line(line: &[u8]) -> Option<RawMount<'_>> {
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
fn has_option(options: &[u8], opt: &[u8]) -> bool {
    options.split(|&b| b == b',').any(|o| o == opt)
}

/// Decodes the kernel's `\ooo` octal escapes (it escapes space, tab, newline and backslash in
/// mountinfo). A backslash not followed by three octal digits is kept as is.
fn unescape(s: &[u8]) -> Cow<'_, [u8]> {
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

impl Collector for Filesystem {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let all = self.current_mounts()?;

        // Mounts still stuck from an earlier scrape are reported without calling statfs.
        let (live, stuck) = {
            let set = self.shared.lock_stuck();
            if set.is_empty() {
                (all, Vec::new())
            } else {
                let (stuck, live): (Vec<&Mount>, Vec<&Mount>) =
                    all.iter().partition(|m| set.contains(&m.mountpoint));
                for m in &stuck {
                    tracing::debug!(mountpoint = %m.mountpoint, "mount point is in an unresponsive state, skipping");
                }
                let live: Vec<Mount> = live.into_iter().cloned().collect();
                let stuck: Vec<Mount> = stuck.into_iter().cloned().collect();
                (Arc::new(live), stuck)
            }
        };
        let outcomes = self.stat_all(&live)?;

        let mut report: Vec<(&Mount, Outcome)> = live.iter().zip(outcomes).collect();
        if !stuck.is_empty() {
            report.extend(
                stuck
                    .iter()
                    .map(|m| (m, Outcome::Error(TIMEOUT_ERROR.to_owned()))),
            );
            // node_exporter's client library sorts a family's samples by label values.
            report.sort_by(|a, b| a.0.key().cmp(&b.0.key()));
        }

        for (m, outcome) in &report {
            let labels = [
                ("device", m.device.as_str()),
                ("fstype", m.fstype.as_str()),
                ("mountpoint", m.mountpoint.as_str()),
            ];
            let s = match outcome {
                Outcome::Stats(s) => s,
                Outcome::Error(reason) => {
                    out.gauge(
                        "node_filesystem_device_error",
                        DEVICE_ERROR_HELP,
                        &[
                            ("device", &m.device),
                            ("device_error", reason),
                            ("fstype", &m.fstype),
                            ("mountpoint", &m.mountpoint),
                        ],
                        1.0,
                    );
                    continue;
                }
            };
            out.gauge(
                "node_filesystem_device_error",
                DEVICE_ERROR_HELP,
                &labels,
                0.0,
            );
            out.gauge("node_filesystem_size_bytes", SIZE_HELP, &labels, s.size);
            out.gauge("node_filesystem_free_bytes", FREE_HELP, &labels, s.free);
            out.gauge("node_filesystem_avail_bytes", AVAIL_HELP, &labels, s.avail);
            out.gauge("node_filesystem_files", FILES_HELP, &labels, s.files);
            out.gauge(
                "node_filesystem_files_free",
                FILES_FREE_HELP,
                &labels,
                s.files_free,
            );
            out.gauge(
                "node_filesystem_readonly",
                READONLY_HELP,
                &labels,
                // Through a rootfs prefix, statfs sees the agent's own (usually read-only) bind
                // mount of the host's `/`, not the host's mount: only mountinfo counts then.
                if m.readonly || (s.readonly && self.rootfs.is_empty()) {
                    1.0
                } else {
                    0.0
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn collector(rootfs: &str) -> Filesystem {
        let mut cfg = Config::default();
        cfg.paths.rootfs = rootfs.into();
        Filesystem::new(&cfg.context("filesystem").expect("registered"))
    }

    #[test]
    fn parses_mountinfo_lines() {
        let line = b"36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 shared:2 - ext3 /dev/root ro,errors=continue";
        let m = parse_line(line).expect("valid line");
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
            b"36 35 98:0 / /mnt2 rw - ext3 /dev/root rw extra",
            b"36 35",
        ] {
            assert_eq!(parse_line(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        let c = collector("/");
        let err = c
            .mounts(
                Path::new("/proc/1/mountinfo"),
                b"27 1 254:0 / / rw - ext4 /dev/vda rw\n36 35\n",
            )
            .expect_err("malformed");
        assert_eq!(
            err.to_string(),
            "parse /proc/1/mountinfo: line 2: malformed mount: \"36 35\""
        );
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
    fn rootfs_is_stripped_from_labels_and_joined_for_statfs() {
        let c = collector("/host/root/");
        assert_eq!(c.strip_rootfs(b"/host/root"), b"/");
        assert_eq!(c.strip_rootfs(b"/host/root/boot"), b"/boot");
        assert_eq!(c.strip_rootfs(b"/host/rootfs2"), b"/host/rootfs2");
        assert_eq!(c.strip_rootfs(b"/boot"), b"/boot");
        assert_eq!(c.stat_path(b"/"), Path::new("/host/root"));
        assert_eq!(c.stat_path(b"/boot"), Path::new("/host/root/boot"));
        let c = collector("/");
        assert_eq!(c.strip_rootfs(b"/"), b"/");
        assert_eq!(c.stat_path(b"/boot"), Path::new("/boot"));
    }

    #[test]
    fn filters_dedup_and_readonly() {
        let c = collector("/");
        let text = b"\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
40 27 0:40 / /run/user/1000 rw,nosuid - tmpfs tmpfs rw,size=1k
41 27 254:0 /data /srv/a\\040b ro,relatime - ext4 /dev/vda rw
42 27 254:0 /data /srv/ro-sb rw,relatime - ext4 /dev/vda ro
43 27 0:41 / /var/lib/docker/overlay2/x rw - overlay overlay rw
44 27 0:42 / /mnt/cd ro - iso9660 /dev/sr0 ro
45 27 254:0 / / ro,noatime - ext4 /dev/vda rw,discard
";
        let ms = c.mounts(Path::new("mountinfo"), text).expect("mounts");
        let got: Vec<(&str, &str, &str, bool)> = ms
            .iter()
            .map(|m| {
                (
                    m.device.as_str(),
                    m.fstype.as_str(),
                    m.mountpoint.as_str(),
                    m.readonly,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("/dev/vda", "ext4", "/", false),
                ("/dev/vda", "ext4", "/srv/a b", true),
                ("/dev/vda", "ext4", "/srv/ro-sb", true),
                ("tmpfs", "tmpfs", "/run/user/1000", false),
            ]
        );
        assert_eq!(ms[1].path, Path::new("/srv/a b"));

        let mut cfg = Config::default();
        cfg.collectors
            .set_flag("collector.filesystem.fs-types-include", Some("^tmpfs$"))
            .expect("valid flag");
        cfg.collectors
            .set_flag("collector.filesystem.mount-points-include", Some("^/run/"))
            .expect("valid flag");
        let c = Filesystem::new(&cfg.context("filesystem").expect("registered"));
        let ms = c.mounts(Path::new("mountinfo"), text).expect("mounts");
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].mountpoint, "/run/user/1000");
    }

    #[test]
    fn missing_mountinfo_falls_back_then_is_no_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("self")).expect("mkdir");
        std::fs::write(
            dir.path().join("self/mountinfo"),
            "27 1 254:0 / / rw - ext4 /dev/vda rw\n",
        )
        .expect("write");
        let mut cfg = Config::default();
        cfg.paths.procfs = dir.path().to_owned();
        let c = Filesystem::with_statfs(&cfg.context("filesystem").expect("registered"), |_| {
            Ok(FsStats {
                size: 1.0,
                free: 2.0,
                avail: 3.0,
                files: 4.0,
                files_free: 5.0,
                readonly: false,
            })
        });
        let mut w = MetricWriter::new();
        c.collect(&mut w).expect("collect from self/mountinfo");
        let text = w.render_to_string();
        assert!(
            text.contains("node_filesystem_files_free{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 5\n"),
            "{text}"
        );

        std::fs::remove_file(dir.path().join("self/mountinfo")).expect("rm");
        let err = c
            .collect(&mut MetricWriter::new())
            .expect_err("no mountinfo");
        assert!(err.is_no_data(), "{err:?}");
    }

    #[test]
    fn only_procfs_mount_tables_are_cached() {
        let c = Filesystem::new(&Config::default().context("filesystem").expect("registered"));
        c.collect(&mut MetricWriter::new()).expect("collect /proc");
        let table = c.table.lock().expect("lock");
        let t = table.as_ref().expect("procfs table is cached");
        assert!(is_procfs(&t.file));

        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("1")).expect("mkdir");
        std::fs::write(
            dir.path().join("1/mountinfo"),
            "27 1 254:0 / / rw - ext4 /dev/vda rw\n",
        )
        .expect("write");
        let mut cfg = Config::default();
        cfg.paths.procfs = dir.path().to_owned();
        let c = Filesystem::new(&cfg.context("filesystem").expect("registered"));
        c.collect(&mut MetricWriter::new())
            .expect("collect fixture");
        assert!(c.table.lock().expect("lock").is_none(), "fixture is reread");
        // A regular file never reports POLLPRI, which is why it must not be cached.
        let f = File::open(dir.path().join("1/mountinfo")).expect("open");
        assert!(!is_procfs(&f));
    }

    #[test]
    fn statfs_errors_carry_their_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("1")).expect("mkdir");
        std::fs::write(
            dir.path().join("1/mountinfo"),
            "50 27 0:50 / /gone rw - nfs4 srv:/export rw\n",
        )
        .expect("write");
        let mut cfg = Config::default();
        cfg.paths.procfs = dir.path().to_owned();
        cfg.paths.rootfs = dir.path().join("root");
        let c = Filesystem::new(&cfg.context("filesystem").expect("registered"));
        let mut w = MetricWriter::new();
        c.collect(&mut w).expect("collect");
        assert_eq!(
            w.render_to_string(),
            format!("# HELP node_filesystem_device_error {DEVICE_ERROR_HELP}\n# TYPE node_filesystem_device_error gauge\nnode_filesystem_device_error{{device=\"srv:/export\",device_error=\"no such file or directory\",fstype=\"nfs4\",mountpoint=\"/gone\"}} 1\n")
        );
    }

    #[test]
    fn real_statfs_of_root() {
        let s = statfs(Path::new("/")).expect("statfs /");
        assert!(
            s.size > 0.0 && s.free <= s.size && s.avail <= s.free,
            "{s:?}"
        );
        let e = statfs(Path::new("/nonexistent/beacon")).expect_err("missing path");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let long = format!("/{}", "x".repeat(600));
        assert!(statfs(Path::new(&long)).is_err());
    }
}
