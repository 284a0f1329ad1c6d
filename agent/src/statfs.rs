//! statfs(2) of mounts: the call itself (`statfs`, node_exporter's units) and `StatPool`, the
//! long-lived worker threads that make the calls that can hang, each waited for at most a
//! timeout, with the stuck-mount bookkeeping node_exporter keeps.
//!
//! statfs on a dead NFS or FUSE mount blocks in the kernel and cannot be interrupted. The pool
//! hands each worker a contiguous share of one scrape's mounts (no thread per mount or per
//! scrape); a worker wakes the scrape only when its share is done, and the scrape wakes itself
//! when the call in flight reaches its deadline. When a call times out, its worker is abandoned
//! to the blocked call and a new worker takes over the rest of that share; the abandoned thread
//! clears the mount's stuck mark and exits once its call returns. Results, the batch's
//! "abandoned" flag and the stuck mark are handled under the batch's lock, so a call that
//! returns just as it times out is either reported or marked stuck, never lost.
//!
//! The number of workers is node_exporter's `--collector.filesystem.stat-workers` (default 4,
//! at least 1): how many of these calls run at once. A scrape uses at most one worker per
//! mount, so a host with one network mount still wakes one thread per scrape.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{io_reason, CollectError};

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
pub type StatImpl = dyn Fn(&Path) -> io::Result<FsStats> + Send + Sync;

/// The statfs implementation, replaceable so tests can simulate a hung mount.
#[derive(Clone)]
pub struct StatFn(pub Arc<StatImpl>);

impl fmt::Debug for StatFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StatFn")
    }
}

/// Whether statfs(2) of `fstype` is answered from in-memory superblock counters, without I/O,
/// a server or a userspace daemon, so it cannot hang. ext2/3/4, xfs, tmpfs and ramfs: their
/// calls run on the scrape thread, because handing them to a worker cost two thread wake-ups
/// per scrape, about 14% of the agent's CPU per scrape (a Kubernetes node has dozens of tmpfs
/// mounts for its pods' secrets). Every other type (nfs, cifs, fuse, ceph, overlay, vfat,
/// whose statfs may wait on a server, a daemon, a lower filesystem or a device) goes to the
/// pool with the timeout, as node_exporter does for every mount.
pub fn cannot_block(fstype: &str) -> bool {
    matches!(fstype, "ext2" | "ext3" | "ext4" | "xfs" | "tmpfs" | "ramfs")
}

/// One call to make: where, and the mount point that names it in the stuck set.
#[derive(Debug, Clone)]
pub struct Target {
    pub path: PathBuf,
    pub mountpoint: String,
}

/// What one call produced.
#[derive(Debug)]
pub enum Outcome {
    Stats(FsStats),
    Failed(io::Error),
    /// The call took longer than the timeout (its mount is now stuck).
    TimedOut,
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
        self.stuck.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How far a worker got with one batch. Lock order: `Batch::progress`, then `Shared::stuck`.
#[derive(Debug)]
struct Progress {
    /// Results of `targets[start..start + results.len()]`, in order.
    results: Vec<io::Result<FsStats>>,
    /// When the call for `targets[start + results.len()]` started (or the batch was handed
    /// over).
    since: Instant,
    /// Every target of the batch has a result.
    finished: bool,
    /// The scrape gave up on the call in flight and replaced this worker.
    abandoned: bool,
}

/// One scrape's work for a worker: statfs of `targets[start..end]`.
#[derive(Debug)]
struct Batch {
    targets: Arc<Vec<Target>>,
    start: usize,
    end: usize,
    progress: Mutex<Progress>,
    done: Condvar,
}

impl Batch {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The handle of a worker thread; dropping it lets the thread exit.
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

/// Runs statfs for each batch until the pool drops its sender, or until a batch is abandoned
/// because a call hung: the thread then clears the stuck mark and exits as soon as that call
/// returns.
fn worker_loop(shared: &Shared, jobs: &Receiver<Arc<Batch>>) {
    for batch in jobs {
        let targets = &batch.targets[batch.start..batch.end];
        for (i, t) in targets.iter().enumerate() {
            let res =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (shared.stat.0)(&t.path)))
                    .unwrap_or_else(|_| Err(io::Error::other("statfs panicked")));
            let mut p = batch.lock();
            if p.abandoned {
                if shared.lock_stuck().remove(&t.mountpoint) {
                    tracing::info!(mountpoint = %t.mountpoint, "mount point has recovered, monitoring will resume");
                }
                return;
            }
            p.results.push(res);
            if i + 1 == targets.len() {
                p.finished = true;
                drop(p);
                batch.done.notify_one();
            } else {
                p.since = Instant::now();
            }
        }
    }
}

/// The workers and the stuck set.
#[derive(Debug)]
pub struct StatPool {
    shared: Arc<Shared>,
    timeout: Duration,
    /// One slot per worker, each started on first use. Held for a whole `stat_all`, which also
    /// serialises concurrent scrapes.
    workers: Mutex<Vec<Option<Worker>>>,
}

impl StatPool {
    /// A pool of `workers` threads (at least one) calling `stat`, each call waited for at most
    /// `timeout`.
    pub fn new(stat: StatFn, timeout: Duration, workers: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                stat,
                stuck: Mutex::new(HashSet::new()),
            }),
            timeout,
            workers: Mutex::new((0..workers.max(1)).map(|_| None).collect()),
        }
    }

    /// Calls statfs on this thread (for filesystems that `cannot_block`).
    pub fn stat_here(&self, path: &Path) -> io::Result<FsStats> {
        (self.shared.stat.0)(path)
    }

    /// Whether any mount is stuck (a call that timed out has not returned).
    pub fn any_stuck(&self) -> bool {
        !self.shared.lock_stuck().is_empty()
    }

    /// Whether `mountpoint` is stuck.
    pub fn is_stuck(&self, mountpoint: &str) -> bool {
        self.shared.lock_stuck().contains(mountpoint)
    }

    /// Runs statfs for every target on the workers, waiting at most the timeout for each call,
    /// and returns one outcome per target in order.
    pub fn stat_all(&self, targets: Vec<Target>) -> Result<Vec<Outcome>, CollectError> {
        let n = targets.len();
        let mut outcomes = Vec::with_capacity(n);
        if n == 0 {
            return Ok(outcomes);
        }
        let targets = Arc::new(targets);
        let mut slots = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        let size = n.div_ceil(slots.len().min(n));
        // Hand every worker its share first, so the shares run at once.
        let mut batches = Vec::with_capacity(slots.len());
        for (slot, start) in slots.iter_mut().zip((0..n).step_by(size)) {
            let end = (start + size).min(n);
            batches.push((end, self.dispatch(slot, &targets, start, end)?));
        }
        for (slot, (end, batch)) in slots.iter_mut().zip(batches) {
            self.finish(slot, &targets, batch, end, &mut outcomes)?;
        }
        Ok(outcomes)
    }

    /// Waits for `batch` (which ends at `end`), appending its outcomes; a call past its
    /// deadline marks its mount stuck, and a new worker takes over the rest of the share.
    fn finish(
        &self,
        slot: &mut Option<Worker>,
        targets: &Arc<Vec<Target>>,
        mut batch: Arc<Batch>,
        end: usize,
        outcomes: &mut Vec<Outcome>,
    ) -> Result<(), CollectError> {
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
            outcomes.extend(p.results.drain(..).map(|r| match r {
                Ok(s) => Outcome::Stats(s),
                Err(e) => Outcome::Failed(e),
            }));
            if p.finished {
                return Ok(());
            }
            // The call in flight passed its deadline: mark the mount stuck and abandon the
            // worker, both under the batch lock the worker takes when the call returns.
            let t = &targets[outcomes.len()];
            self.shared.lock_stuck().insert(t.mountpoint.clone());
            p.abandoned = true;
            drop(p);
            *slot = None;
            tracing::warn!(mountpoint = %t.mountpoint, timeout = ?self.timeout, "statfs timed out, mount point is labeled as stuck and will not be monitored until it responds");
            outcomes.push(Outcome::TimedOut);
            if outcomes.len() == end {
                return Ok(());
            }
            batch = self.dispatch(slot, targets, outcomes.len(), end)?;
        }
    }

    /// Hands `targets[start..end]` to the worker in `slot`, starting a new one when there is
    /// none or it is gone.
    fn dispatch(
        &self,
        slot: &mut Option<Worker>,
        targets: &Arc<Vec<Target>>,
        start: usize,
        end: usize,
    ) -> Result<Arc<Batch>, CollectError> {
        let batch = Arc::new(Batch {
            targets: Arc::clone(targets),
            start,
            end,
            progress: Mutex::new(Progress {
                results: Vec::with_capacity(end - start),
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
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn shares_run_on_separate_workers_and_come_back_in_order() {
        use std::thread::ThreadId;
        let seen: Arc<Mutex<Vec<(PathBuf, ThreadId)>>> = Arc::default();
        let s = Arc::clone(&seen);
        let pool = StatPool::new(
            StatFn(Arc::new(move |p: &Path| {
                s.lock()
                    .expect("lock")
                    .push((p.to_path_buf(), std::thread::current().id()));
                Ok(FsStats {
                    size: p.as_os_str().len() as f64,
                    free: 0.0,
                    avail: 0.0,
                    files: 0.0,
                    files_free: 0.0,
                    readonly: false,
                })
            })),
            Duration::from_secs(5),
            3,
        );
        let targets: Vec<Target> = (0..7)
            .map(|i| Target {
                path: PathBuf::from("/m".repeat(i + 1)),
                mountpoint: format!("/m{i}"),
            })
            .collect();
        let got = pool.stat_all(targets).expect("stat_all");
        let sizes: Vec<f64> = got
            .iter()
            .map(|o| match o {
                Outcome::Stats(s) => s.size,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes, [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]);
        let threads: HashSet<ThreadId> =
            seen.lock().expect("lock").iter().map(|(_, t)| *t).collect();
        assert_eq!(threads.len(), 3, "7 mounts in 3 shares of at most 3");
        // Fewer mounts than workers: one worker per mount, not more.
        seen.lock().expect("lock").clear();
        let one = vec![Target {
            path: PathBuf::from("/x"),
            mountpoint: "/x".into(),
        }];
        assert_eq!(pool.stat_all(one).expect("stat_all").len(), 1);
        assert_eq!(seen.lock().expect("lock").len(), 1);
    }
}
