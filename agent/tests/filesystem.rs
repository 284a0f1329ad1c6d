//! Integration tests of the filesystem collector over a fixture mount table whose mount points
//! are real directories in a temporary "rootfs": labels, filters, rootfs handling, sizes
//! against libc::statvfs, and the hung-mount (NFS) path with an injected statfs.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use beacon_agent::collector::Collector;
use beacon_agent::collectors::filesystem::{statfs, Filesystem, FsStats, TIMEOUT_ERROR};
use beacon_agent::metrics::MetricWriter;
use beacon_agent::Config;

/// A temporary host: `proc/1/mountinfo` and a `root` directory holding the mount points.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new(mountinfo: &str, dirs: &[&str]) -> Host {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("proc/1")).expect("mkdir proc");
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).expect("mkdir root");
        for d in dirs {
            std::fs::create_dir_all(root.join(d)).expect("mkdir mount point");
        }
        let text = mountinfo.replace("$ROOT", &root.display().to_string());
        std::fs::write(dir.path().join("proc/1/mountinfo"), text).expect("write mountinfo");
        Host { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn config(&self, timeout: Duration) -> Config {
        let mut cfg = Config::default();
        cfg.paths.procfs = self.dir.path().join("proc");
        cfg.paths.rootfs = self.root();
        let ms = format!("{}ms", timeout.as_millis());
        cfg.collectors
            .set_flag("collector.filesystem.mount-timeout", Some(&ms))
            .expect("valid timeout");
        cfg
    }
}

fn scrape(c: &Filesystem) -> String {
    let mut w = MetricWriter::new();
    c.collect(&mut w).expect("collect");
    w.render_to_string()
}

/// The value of the sample `series` (name and rendered labels), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        Some(rest.parse().expect("sample value"))
    })
}

/// The rendered label set of a healthy mount, as in node_exporter 1.12 (`device_error` empty).
fn labels(device: &str, fstype: &str, mountpoint: &str) -> String {
    format!(
        "{{device=\"{device}\",device_error=\"\",fstype=\"{fstype}\",mountpoint=\"{mountpoint}\"}}"
    )
}

/// Every `{...}` label set of family `name` in the output.
fn label_sets(text: &str, name: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix('{'))
        .map(|l| format!("{{{}", &l[..l.rfind(' ').expect("value")]))
        .collect()
}

/// statvfs(3) of `path`: (f_blocks, f_bfree, f_bavail, f_bsize, f_files, f_ffree).
fn statvfs(path: &Path) -> (f64, f64, f64, f64, f64, f64) {
    let c = CString::new(path.as_os_str().as_bytes()).expect("path");
    let mut buf = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: a valid C string and a writable statvfs buffer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), buf.as_mut_ptr()) };
    assert_eq!(rc, 0, "statvfs {}", path.display());
    // SAFETY: statvfs succeeded and filled the buffer.
    let s = unsafe { buf.assume_init() };
    (
        s.f_blocks as f64,
        s.f_bfree as f64,
        s.f_bavail as f64,
        s.f_bsize as f64,
        s.f_files as f64,
        s.f_ffree as f64,
    )
}

const FIXTURE: &str = "\
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda1 rw,discard,errors=remount-ro
28 27 254:0 /srv/media /srv/my\\040media rw,relatime shared:1 - ext4 /dev/vda1 rw
29 27 0:40 / /mnt/cdrom ro,nosuid,nodev,relatime - iso9660 /dev/sr0 ro,nojoliet
30 27 0:41 / /snap/core/17200 ro,nodev,relatime - squashfs /dev/loop3 ro
31 27 0:42 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw,lowerdir=/a
32 27 8:17 / /srv/archive ro,noatime - xfs /dev/sdb1 ro,attr2,inode64
33 27 0:43 / /run/user/1000 rw,nosuid,nodev - tmpfs tmpfs rw,size=1620560k,mode=700
34 27 254:0 / / ro,noatime - ext4 /dev/vda1 rw,discard
35 27 0:44 / $ROOT/extra rw - tmpfs scratch rw
36 27 0:45 / /mnt/tab\\011and\\134slash rw - tmpfs odd rw
";

#[test]
fn reports_fixture_mounts_with_node_exporter_labels_and_statfs_sizes() {
    let host = Host::new(
        FIXTURE,
        &[
            "srv/my media",
            "srv/archive",
            "run/user/1000",
            "extra",
            "mnt/tab\tand\\slash",
        ],
    );
    let c = Filesystem::new(
        &host
            .config(Duration::from_secs(5))
            .context("filesystem")
            .expect("registered"),
    );
    let text = scrape(&c);

    // Excluded: /proc (mount point), iso9660, squashfs and overlay (fs types); the second
    // "/" mount has the same label set as the first and is reported once.
    let want = [
        labels("/dev/sdb1", "xfs", "/srv/archive"),
        labels("/dev/vda1", "ext4", "/"),
        labels("/dev/vda1", "ext4", "/srv/my media"),
        // node_exporter's label decodes \040 and \011 only: the backslash stays escaped.
        labels("odd", "tmpfs", "/mnt/tab\tand\\\\134slash"),
        labels("scratch", "tmpfs", "/extra"),
        labels("tmpfs", "tmpfs", "/run/user/1000"),
    ];
    for family in [
        "node_filesystem_size_bytes",
        "node_filesystem_free_bytes",
        "node_filesystem_avail_bytes",
        "node_filesystem_files",
        "node_filesystem_files_free",
        "node_filesystem_readonly",
        "node_filesystem_device_error",
    ] {
        assert_eq!(label_sets(&text, family), want, "{family}:\n{text}");
    }
    assert!(text.contains("# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.\n# TYPE node_filesystem_avail_bytes gauge\n"));
    // node_filesystem_mount_info: healthy mounts by device, major, minor, mount point.
    let info = |d: &str, maj: &str, min: &str, mp: &str| {
        format!("{{device=\"{d}\",major=\"{maj}\",minor=\"{min}\",mountpoint=\"{mp}\"}}")
    };
    assert_eq!(
        label_sets(&text, "node_filesystem_mount_info"),
        [
            info("/dev/sdb1", "8", "17", "/srv/archive"),
            info("/dev/vda1", "254", "0", "/"),
            info("/dev/vda1", "254", "0", "/srv/my media"),
            info("odd", "0", "45", "/mnt/tab\tand\\\\134slash"),
            info("scratch", "0", "44", "/extra"),
            info("tmpfs", "0", "43", "/run/user/1000"),
        ],
        "{text}"
    );

    let ro = |l: &str| value(&text, &format!("node_filesystem_readonly{l}"));
    assert_eq!(ro(&want[0]), Some(1.0), "ro mount");
    assert_eq!(ro(&want[1]), Some(0.0), "first of the duplicates wins");
    assert_eq!(ro(&want[2]), Some(0.0));

    // Every mount point is a directory on the tempdir's filesystem; statfs must have been
    // called on rootfs joined with the mount point and report what statvfs reports for it.
    // node_exporter multiplies by f_bsize (glibc's statvfs copies it from statfs).
    let (blocks, bfree, bavail, bsize, files, ffree) = statvfs(&host.root());
    for l in &want {
        let v = |f: &str| value(&text, &format!("node_filesystem_{f}{l}")).expect(f);
        assert_eq!(v("size_bytes"), blocks * bsize, "{l}");
        assert_eq!(v("files"), files, "{l}");
        assert_eq!(v("device_error"), 0.0, "{l}");
        // Free space moves while other processes write to the same disk.
        let near = |got: f64, want: f64| (got - want).abs() <= 1e9_f64.max(want * 0.01);
        assert!(near(v("free_bytes"), bfree * bsize), "{l}");
        assert!(near(v("avail_bytes"), bavail * bsize), "{l}");
        assert!((v("files_free") - ffree).abs() <= 100_000.0, "{l}");
    }
}

#[test]
fn a_mount_missing_under_rootfs_is_a_device_error() {
    let host = Host::new(
        "27 1 254:0 / / rw - ext4 /dev/vda1 rw\n50 27 0:50 / /data rw - ext4 /dev/vdb rw\n",
        &[],
    );
    let text = scrape(&Filesystem::new(
        &host
            .config(Duration::from_secs(5))
            .context("filesystem")
            .expect("registered"),
    ));
    assert_eq!(
        value(
            &text,
            "node_filesystem_device_error{device=\"/dev/vdb\",device_error=\"no such file or directory\",fstype=\"ext4\",mountpoint=\"/data\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        label_sets(&text, "node_filesystem_size_bytes"),
        [labels("/dev/vda1", "ext4", "/")]
    );
}

/// The threads statfs ran on for the `a` and `b` mounts over three scrapes, per scrape, with
/// `stat_workers` workers (None: the default, 4).
fn remote_threads(stat_workers: Option<&str>) -> Vec<HashSet<ThreadId>> {
    let host = Host::new(
        "27 1 254:0 / / rw - ext4 /dev/vda1 rw\n\
         28 27 0:50 / /a rw - nfs4 server:/a rw\n\
         29 27 0:51 / /b rw - fuse.sshfs me@host:/b rw\n",
        &["a", "b"],
    );
    let calls: Arc<Mutex<Vec<(PathBuf, ThreadId)>>> = Arc::default();
    let seen = Arc::clone(&calls);
    let mut cfg = host.config(Duration::from_secs(5));
    if let Some(n) = stat_workers {
        cfg.collectors
            .set_flag("collector.filesystem.stat-workers", Some(n))
            .expect("valid flag");
    }
    let c = Filesystem::with_statfs(&cfg.context("filesystem").expect("registered"), move |p| {
        seen.lock()
            .expect("lock")
            .push((p.to_path_buf(), std::thread::current().id()));
        statfs(p)
    });
    (0..3)
        .map(|_| {
            calls.lock().expect("lock").clear();
            scrape(&c);
            calls
                .lock()
                .expect("lock")
                .iter()
                .filter(|(p, _)| p.ends_with("a") || p.ends_with("b"))
                .map(|(_, t)| *t)
                .collect()
        })
        .collect()
}

#[test]
fn stat_workers_bounds_the_calls_that_run_at_once() {
    // Two mounts that can block, four workers: one worker each, the same two every scrape.
    let per_scrape = remote_threads(None);
    assert!(per_scrape.iter().all(|t| t.len() == 2), "{per_scrape:?}");
    assert!(
        per_scrape.windows(2).all(|w| w[0] == w[1]),
        "{per_scrape:?}"
    );
    // One worker: both calls on it.
    let per_scrape = remote_threads(Some("1"));
    assert!(per_scrape.iter().all(|t| t.len() == 1), "{per_scrape:?}");
    assert!(
        per_scrape.windows(2).all(|w| w[0] == w[1]),
        "{per_scrape:?}"
    );
}

#[test]
fn statfs_that_can_block_runs_on_long_lived_worker_threads() {
    let host = Host::new(
        "27 1 254:0 / / rw - ext4 /dev/vda1 rw\n\
         28 27 0:50 / /a rw - nfs4 server:/a rw\n\
         29 27 0:51 / /b rw - fuse.sshfs me@host:/b rw\n\
         30 27 0:52 / /c rw - tmpfs tmpfs rw\n",
        &["a", "b", "c"],
    );
    let calls: Arc<Mutex<Vec<(PathBuf, ThreadId)>>> = Arc::default();
    let seen = Arc::clone(&calls);
    let c = Filesystem::with_statfs(
        &host
            .config(Duration::from_secs(5))
            .context("filesystem")
            .expect("registered"),
        move |p| {
            seen.lock()
                .expect("lock")
                .push((p.to_path_buf(), std::thread::current().id()));
            statfs(p)
        },
    );
    for _ in 0..3 {
        let text = scrape(&c);
        assert_eq!(
            label_sets(&text, "node_filesystem_size_bytes").len(),
            4,
            "{text}"
        );
    }
    let calls = calls.lock().expect("lock");
    assert_eq!(calls.len(), 12, "one call per mount per scrape");
    let here = std::thread::current().id();
    let (remote, local): (Vec<_>, Vec<_>) = calls
        .iter()
        .partition(|(p, _)| p.ends_with("a") || p.ends_with("b"));
    // ext4 and tmpfs answer from memory: on the scrape thread, no hand-off.
    assert_eq!(local.len(), 6);
    assert!(local.iter().all(|(_, t)| *t == here), "{local:?}");
    // nfs and FUSE can hang: on the workers (one per mount here), never the scrape thread,
    // and the same threads every scrape.
    assert_eq!(remote.len(), 6);
    let distinct: HashSet<&ThreadId> = remote.iter().map(|(_, t)| t).collect();
    assert_eq!(distinct.len(), 2, "long-lived workers: {remote:?}");
    assert!(!distinct.contains(&here));
}

/// A statfs whose calls for the `nfs` mount block until released.
struct Gate {
    block: AtomicBool,
    hung_calls: AtomicUsize,
    release: Mutex<mpsc::Receiver<()>>,
}

#[test]
fn a_hung_mount_times_out_is_skipped_while_stuck_and_recovers() {
    let timeout = Duration::from_millis(200);
    let host = Host::new(
        "\
27 1 254:0 / / rw - ext4 /dev/sda1 rw
28 27 254:0 / /srv/a rw - ext4 /dev/sda2 rw
40 27 0:50 / /mnt/nfs rw - nfs4 fileserver:/export rw,vers=4.2
41 27 0:51 / /tmp rw - tmpfs tmpfs rw
",
        &["srv/a", "mnt/nfs", "tmp"],
    );
    let (release, rx) = mpsc::channel();
    let gate = Arc::new(Gate {
        block: AtomicBool::new(true),
        hung_calls: AtomicUsize::new(0),
        release: Mutex::new(rx),
    });
    let g = Arc::clone(&gate);
    let c = Arc::new(Filesystem::with_statfs(
        &host
            .config(timeout)
            .context("filesystem")
            .expect("registered"),
        move |p| {
            if p.ends_with("mnt/nfs") {
                g.hung_calls.fetch_add(1, Ordering::SeqCst);
                if g.block.load(Ordering::SeqCst) {
                    let _ = g.release.lock().expect("lock").recv();
                }
            }
            statfs(p)
        },
    ));
    let nfs = labels("fileserver:/export", "nfs4", "/mnt/nfs");
    let stuck = format!(
        "node_filesystem_device_error{{device=\"fileserver:/export\",device_error=\"{TIMEOUT_ERROR}\",fstype=\"nfs4\",mountpoint=\"/mnt/nfs\"}}"
    );
    let healthy = [
        labels("/dev/sda1", "ext4", "/"),
        labels("/dev/sda2", "ext4", "/srv/a"),
        labels("tmpfs", "tmpfs", "/tmp"),
    ];

    // Scrape 1 runs on its own thread so that a scrape that waits for the hung call fails
    // this test at the deadline instead of hanging it.
    let (done, finished) = mpsc::channel();
    let c1 = Arc::clone(&c);
    std::thread::spawn(move || {
        let start = Instant::now();
        let text = scrape(&c1);
        let _ = done.send((start.elapsed(), text));
    });
    let (elapsed, text) = finished
        .recv_timeout(Duration::from_secs(5))
        .expect("the first scrape must return while the mount is still hung");
    assert!(elapsed >= timeout, "waited {elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_secs(2),
        "waited {elapsed:?}"
    );
    assert_eq!(value(&text, &stuck), Some(1.0), "{text}");
    assert_eq!(
        value(&text, &format!("node_filesystem_size_bytes{nfs}")),
        None
    );
    // Mounts before and after the hung one (in label order) were measured, the later ones by
    // the worker that replaced the stuck one.
    assert_eq!(label_sets(&text, "node_filesystem_size_bytes"), healthy);
    assert_eq!(gate.hung_calls.load(Ordering::SeqCst), 1);

    // Scrape 2: the mount is still stuck, so it is reported without another call or wait.
    let start = Instant::now();
    let text = scrape(&c);
    let elapsed = start.elapsed();
    assert_eq!(gate.hung_calls.load(Ordering::SeqCst), 1, "no second call");
    assert!(elapsed < timeout, "second scrape waited {elapsed:?}");
    assert_eq!(value(&text, &stuck), Some(1.0), "{text}");
    assert_eq!(label_sets(&text, "node_filesystem_size_bytes"), healthy);

    // The hung call returns: once the stuck worker notices, the mount is measured again.
    gate.block.store(false, Ordering::SeqCst);
    release.send(()).expect("release the hung call");
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = scrape(&c);
        if value(&text, &format!("node_filesystem_size_bytes{nfs}")).is_some() {
            break text;
        }
        assert!(Instant::now() < deadline, "mount never recovered:\n{text}");
        std::thread::yield_now();
    };
    assert_eq!(
        value(&text, &format!("node_filesystem_device_error{nfs}")),
        Some(0.0)
    );
    assert!(!text.contains(TIMEOUT_ERROR), "{text}");
    assert!(gate.hung_calls.load(Ordering::SeqCst) >= 2);
    let mut all = healthy.to_vec();
    all.insert(0, nfs.clone());
    all.sort();
    assert_eq!(label_sets(&text, "node_filesystem_size_bytes"), all);
}

#[test]
fn sizes_and_readonly_are_what_the_injected_statfs_returns() {
    // The collector reports exactly the injected numbers, unrounded, and a filesystem statfs
    // calls read-only is read-only even when its mount options say "rw", unless statfs went
    // through a rootfs prefix.
    let host = Host::new("27 1 254:0 / / rw - ext4 /dev/vda1 rw\n", &[]);
    let stats = |_: &std::path::Path| {
        Ok(FsStats {
            size: 1_234_567_890_123.0,
            free: 0.5,
            avail: 0.0,
            files: 42.0,
            files_free: 7.0,
            readonly: true,
        })
    };
    // Under a rootfs prefix (the DaemonSet's read-only bind mount of the host's `/`), statfs
    // answers for the agent's own mount: the host's "rw" stands.
    let prefixed = scrape(&Filesystem::with_statfs(
        &host
            .config(Duration::from_secs(1))
            .context("filesystem")
            .expect("registered"),
        stats,
    ));
    let l = labels("/dev/vda1", "ext4", "/");
    assert!(
        prefixed.contains(&format!("node_filesystem_readonly{l} 0\n")),
        "{prefixed}"
    );
    // Without one, statfs is about the host's own mount, and counts.
    let mut cfg = host.config(Duration::from_secs(1));
    cfg.paths.rootfs = "/".into();
    let c = Filesystem::with_statfs(&cfg.context("filesystem").expect("registered"), stats);
    let text = scrape(&c);
    assert!(text.contains(&format!(
        "node_filesystem_size_bytes{l} 1.234567890123e+12\n"
    )));
    assert!(text.contains(&format!("node_filesystem_free_bytes{l} 0.5\n")));
    assert!(text.contains(&format!("node_filesystem_files{l} 42\n")));
    assert!(text.contains(&format!("node_filesystem_readonly{l} 1\n")));
}
