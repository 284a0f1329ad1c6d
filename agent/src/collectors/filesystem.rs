//! `filesystem`: size, free space and inodes of every mounted filesystem, from statfs(2) on
//! each mount in `{procfs}/1/mountinfo`, as node_exporter 1.12.1 reports them. The mount table
//! and its cache live in `mountinfo.rs`, the statfs calls and their worker threads in
//! `statfs.rs`; this file turns mounts into labels and samples.
//!
//! # Mounts and labels
//! Mounts come from `{procfs}/1/mountinfo` (the host's mount namespace when the agent runs in
//! a container with the host's `/proc`), or `{procfs}/self/mountinfo` when PID 1 is hidden
//! (`hidepid`). As in node_exporter, the `mountpoint` label decodes only the kernel's `\040`
//! (space) and `\011` (tab) escapes, and `device` and `fstype` are verbatim; statfs gets the
//! mount point with every escape decoded (`\012` newline, `\134` backslash too). `readonly` is 1 when the mount's or the
//! superblock's options contain `ro`, or the superblock's contain ext4's `emergency_ro`.
//! Mounts are filtered on the mount point label and the filesystem type; a label set seen
//! twice (e.g. a bind mount stacked on itself) is reported once, first one wins.
//!
//! Every family is labelled `{device, device_error, fstype, mountpoint}`: `device_error` is
//! empty for a healthy mount, the statfs error text (`permission denied`, ...) or
//! `mountpoint timeout` otherwise. A failed mount gets `node_filesystem_device_error` 1 and its
//! `readonly` sample (0 for a timeout, as node_exporter reports a stuck mount), not the size
//! and inode families. `node_filesystem_mount_info{device, major, minor, mountpoint}` is 1 for
//! each healthy mount, with the device number of mountinfo's third field.
//!
//! # rootfs
//! As node_exporter's `--path.rootfs`: statfs is called on `rootfs` joined with the mount
//! point, and a leading `rootfs` is stripped from the `mountpoint` label (an empty result is
//! `/`). Two deliberate refinements over node_exporter's plain string `TrimPrefix`: trailing
//! slashes of `rootfs` are ignored, and the prefix is stripped only at a path-component
//! boundary (`/host/rootfs2` is not turned into `2` by rootfs `/host/root`).
//!
//! # Hung mounts
//! Like node_exporter (stuck-mount tracking, `--collector.filesystem.mount-timeout`), a mount
//! whose statfs takes longer than `mount_timeout` is marked stuck; while its call has not
//! returned, later scrapes report it as stuck without calling statfs again. Unlike
//! node_exporter (whose first scrape still waits for the hung call), the scrape itself waits at
//! most `mount_timeout` per call. Only filesystems whose statfs can block go to the worker
//! threads (`statfs::cannot_block`); `--collector.filesystem.stat-workers` is how many of
//! those run at once.
//!
//! # Cost per scrape
//! The parsed, filtered mount table is cached until the kernel signals a mount-table change
//! (`mountinfo::MountTable`). `readonly` also honours statfs's `ST_RDONLY`, so a filesystem the
//! kernel flips to read-only without a mount-table event is still reported while the table is
//! cached; not under a rootfs prefix, though: there statfs answers for the agent's own
//! read-only bind mount of the host's `/` (the DaemonSet's `/host/root`), which says nothing
//! about the host's.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::collector::{CollectError, Collector, Context, Kind, Opt, Spec};
use crate::error::io_reason;
use crate::filter::DeviceFilter;
use crate::metrics::MetricWriter;
use crate::mountinfo::{has_option, parse_line, unescape, MountTable};
use crate::statfs::{cannot_block, Outcome, StatFn, StatPool, Target};
pub use crate::statfs::{statfs, FsStats};

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
const MOUNT_INFO_HELP: &str = "Filesystem mount information.";

/// One mount to report, after decoding, rootfs stripping and filtering.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    device: String,
    fstype: String,
    mountpoint: String,
    /// The device number, decimal, as node_exporter's `strconv.Itoa` prints it.
    major: String,
    minor: String,
    /// Where statfs is called: rootfs joined with the mount point.
    path: PathBuf,
    readonly: bool,
}

impl Mount {
    fn key(&self) -> (&str, &str, &str) {
        (&self.device, &self.fstype, &self.mountpoint)
    }
}

/// What one mount's statfs produced this scrape.
#[derive(Debug)]
enum Measured {
    Stats(FsStats),
    /// The `device_error` label; `timeout` when the mount is stuck.
    Error {
        reason: String,
        timeout: bool,
    },
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

/// How many statfs(2) calls of filesystems that can block run at once (see `statfs.rs`).
pub const STAT_WORKERS: Opt = Opt::new(
    "stat_workers",
    "collector.filesystem.stat-workers",
    Kind::Uint(4),
    "how many stat calls to process simultaneously",
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
        STAT_WORKERS,
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
    /// The parsed, filtered mount table, reused until the kernel signals a change.
    table: MountTable<Vec<Mount>>,
    /// `paths.rootfs` without trailing slashes; empty when it is `/`.
    rootfs: Vec<u8>,
    /// `--collector.filesystem.mount-points-exclude` / `mount-points-include`.
    mount_points: DeviceFilter,
    /// `--collector.filesystem.fs-types-exclude` / `fs-types-include`.
    fs_types: DeviceFilter,
    /// statfs on the scrape thread and on the workers (`--collector.filesystem.stat-workers`).
    pool: StatPool,
}

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
        // node_exporter runs max(stat-workers, 1) workers.
        let workers = usize::try_from(ctx.uint(&STAT_WORKERS)).unwrap_or(usize::MAX);
        Self {
            table: MountTable::new(&ctx.paths.procfs),
            rootfs,
            mount_points: ctx.filter(&MOUNT_POINTS_EXCLUDE, &MOUNT_POINTS_INCLUDE),
            fs_types: ctx.filter(&FS_TYPES_EXCLUDE, &FS_TYPES_INCLUDE),
            pool: StatPool::new(
                StatFn(Arc::new(stat)),
                ctx.duration(&MOUNT_TIMEOUT),
                workers.clamp(1, 64),
            ),
        }
    }

    /// The mounts to report: decoded, rootfs-stripped, filtered, sorted by label set and
    /// deduplicated.
    fn mounts(&self, path: &Path, text: &[u8]) -> Result<Vec<Mount>, CollectError> {
        let mut mounts = Vec::with_capacity(32);
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let malformed = || {
                CollectError::parse(
                    path,
                    format!(
                        "line {}: malformed mount: {:?}",
                        n + 1,
                        String::from_utf8_lossy(line)
                    ),
                )
            };
            let raw = parse_line(line).ok_or_else(malformed)?;
            // The label decodes only `\040` and `\011`, as node_exporter's; statfs gets the
            // path with every escape decoded, so a mount point with a backslash or newline
            // is measured (node_exporter's statfs of the half-decoded path fails).
            let label = label_escapes(raw.mount_point);
            let mountpoint = String::from_utf8_lossy(self.strip_rootfs(&label));
            let path = self.stat_path(self.strip_rootfs(&unescape(raw.mount_point)));
            if self.mount_points.ignored(&mountpoint) {
                continue;
            }
            // Device and type are labelled verbatim, escapes and all, as node_exporter does.
            let fstype = String::from_utf8_lossy(raw.fstype).into_owned();
            if self.fs_types.ignored(&fstype) {
                continue;
            }
            // Go's Sscanf("%d:%d") then Itoa: decimal without leading zeros.
            let number = |d: &[u8]| {
                std::str::from_utf8(d)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .map(|v| v.to_string())
                    .ok_or_else(malformed)
            };
            let readonly = has_option(raw.mount_options, b"ro")
                || has_option(raw.super_options, b"ro")
                || has_option(raw.super_options, b"emergency_ro");
            mounts.push(Mount {
                device: String::from_utf8_lossy(raw.source).into_owned(),
                fstype,
                major: number(raw.major)?,
                minor: number(raw.minor)?,
                path,
                mountpoint: mountpoint.into_owned(),
                readonly,
            });
        }
        // Stable: among equal label sets the first mount in the table is kept.
        mounts.sort_by(|a, b| a.key().cmp(&b.key()));
        mounts.dedup_by(|later, first| later.key() == first.key());
        Ok(mounts)
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

    /// One result per mount, in order: stuck mounts without a call, filesystems that cannot
    /// block on this thread, the others on the pool's workers.
    fn stat_all(&self, mounts: &[Mount]) -> Result<Vec<Measured>, CollectError> {
        let any_stuck = self.pool.any_stuck();
        let stuck = |m: &Mount| any_stuck && self.pool.is_stuck(&m.mountpoint);
        let remote: Vec<Target> = mounts
            .iter()
            .filter(|m| !cannot_block(&m.fstype) && !stuck(m))
            .map(|m| Target {
                path: m.path.clone(),
                mountpoint: m.mountpoint.clone(),
            })
            .collect();
        let mut remote = self.pool.stat_all(remote)?.into_iter();
        Ok(mounts
            .iter()
            .map(|m| {
                let outcome = if stuck(m) {
                    tracing::debug!(mountpoint = %m.mountpoint, "mount point is in an unresponsive state, skipping");
                    Outcome::TimedOut
                } else if cannot_block(&m.fstype) {
                    match self.pool.stat_here(&m.path) {
                        Ok(s) => Outcome::Stats(s),
                        Err(e) => Outcome::Failed(e),
                    }
                } else {
                    // stat_all returns exactly one outcome per target it was given.
                    remote.next().unwrap_or(Outcome::TimedOut)
                };
                match outcome {
                    Outcome::Stats(s) => Measured::Stats(s),
                    Outcome::TimedOut => Measured::Error {
                        reason: TIMEOUT_ERROR.to_owned(),
                        timeout: true,
                    },
                    Outcome::Failed(e) => {
                        tracing::debug!(mountpoint = %m.mountpoint, path = %m.path.display(), error = %e, "error on statfs() system call");
                        Measured::Error {
                            reason: go_errno_text(&e),
                            timeout: false,
                        }
                    }
                }
            })
            .collect())
    }
}

/// The `device_error` label of a failed statfs: Go's `syscall.Errno.Error()` text, which is
/// glibc's message with a lowercase first letter except where Go's table kept an older
/// wording. ESTALE, a dead NFS server's usual answer, is the one statfs gives.
fn go_errno_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ESTALE) => "stale NFS file handle".to_owned(),
        _ => io_reason(e),
    }
}

/// node_exporter's mount point label: `\040` and `\011` replaced by a space and a tab, in
/// that order (fstab(5)'s escapes); every other escape stays as the kernel wrote it.
fn label_escapes(mp: &[u8]) -> Cow<'_, [u8]> {
    if !mp.windows(4).any(|w| w == b"\\040" || w == b"\\011") {
        return Cow::Borrowed(mp);
    }
    let replace = |s: &[u8], from: &[u8], to: u8| {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            if s[i..].starts_with(from) {
                out.push(to);
                i += from.len();
            } else {
                out.push(s[i]);
                i += 1;
            }
        }
        out
    };
    let spaces = replace(mp, b"\\040", b' ');
    Cow::Owned(replace(&spaces, b"\\011", b'\t'))
}

impl Collector for Filesystem {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let mounts = self.table.current(|path, text| self.mounts(path, text))?;
        let results = self.stat_all(&mounts)?;
        // The `device_error` label of each mount, empty when healthy.
        let mut report: Vec<(&Mount, String, Measured)> = mounts
            .iter()
            .zip(results)
            .map(|(m, r)| match &r {
                Measured::Stats(_) => (m, String::new(), r),
                Measured::Error { reason, .. } => (m, reason.clone(), r),
            })
            .collect();
        // The client library sorts a family's samples by label values in label-name order:
        // device, device_error, fstype, mountpoint. The table is sorted without device_error,
        // so only a failed mount can be out of place.
        if report.iter().any(|(_, e, _)| !e.is_empty()) {
            report.sort_by(|a, b| {
                (&a.0.device, &a.1, &a.0.fstype, &a.0.mountpoint).cmp(&(
                    &b.0.device,
                    &b.1,
                    &b.0.fstype,
                    &b.0.mountpoint,
                ))
            });
        }

        for (m, device_error, r) in &report {
            let labels = [
                ("device", m.device.as_str()),
                ("device_error", device_error.as_str()),
                ("fstype", m.fstype.as_str()),
                ("mountpoint", m.mountpoint.as_str()),
            ];
            let s = match r {
                Measured::Stats(s) => s,
                Measured::Error { timeout, .. } => {
                    out.gauge(
                        "node_filesystem_device_error",
                        DEVICE_ERROR_HELP,
                        &labels,
                        1.0,
                    );
                    // node_exporter computes readonly before statfs; a stuck mount gets 0.
                    let ro = !timeout && m.readonly;
                    out.gauge(
                        "node_filesystem_readonly",
                        READONLY_HELP,
                        &labels,
                        if ro { 1.0 } else { 0.0 },
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
        }

        // node_filesystem_mount_info sorts by device, major, minor, mountpoint (as strings).
        let mut info: Vec<&Mount> = report
            .iter()
            .filter(|(_, _, r)| matches!(r, Measured::Stats(_)))
            .map(|(m, _, _)| *m)
            .collect();
        fn info_key<'a>(m: &&'a Mount) -> (&'a str, &'a str, &'a str, &'a str) {
            (&m.device, &m.major, &m.minor, &m.mountpoint)
        }
        if !info.is_sorted_by_key(info_key) {
            info.sort_by(|a, b| info_key(a).cmp(&info_key(b)));
        }
        for m in info {
            out.gauge(
                "node_filesystem_mount_info",
                MOUNT_INFO_HELP,
                &[
                    ("device", m.device.as_str()),
                    ("major", m.major.as_str()),
                    ("minor", m.minor.as_str()),
                    ("mountpoint", m.mountpoint.as_str()),
                ],
                1.0,
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
    fn malformed_lines_are_parse_errors_naming_the_line() {
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
    fn statfs_errors_read_as_go_prints_them() {
        let text = |errno| go_errno_text(&io::Error::from_raw_os_error(errno));
        assert_eq!(text(libc::ESTALE), "stale NFS file handle");
        assert_eq!(text(libc::EACCES), "permission denied");
        assert_eq!(text(libc::EIO), "input/output error");
        assert_eq!(text(libc::ENOTCONN), "transport endpoint is not connected");
    }

    #[test]
    fn labels_decode_space_and_tab_only_as_node_exporter_does() {
        assert_eq!(&*label_escapes(b"/mnt/a\\040b\\011c"), b"/mnt/a b\tc");
        assert_eq!(
            &*label_escapes(b"/mnt/n\\012l\\134b"),
            b"/mnt/n\\012l\\134b"
        );
        assert!(matches!(label_escapes(b"/plain"), Cow::Borrowed(_)));
        let c = collector("/");
        let ms = c
            .mounts(
                Path::new("mountinfo"),
                b"41 27 0:44 / /srv/a\\040b\\134c rw - tmpfs my\\040tmp rw\n",
            )
            .expect("mounts");
        assert_eq!(ms[0].mountpoint, "/srv/a b\\134c");
        assert_eq!(ms[0].device, "my\\040tmp");
        assert_eq!(ms[0].path, Path::new("/srv/a b\\c"));
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
46 27 254:16 / /srv/emergency rw - ext4 /dev/vdb rw,emergency_ro
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
                ("/dev/vdb", "ext4", "/srv/emergency", true),
                ("tmpfs", "tmpfs", "/run/user/1000", false),
            ]
        );
        assert_eq!(ms[1].path, Path::new("/srv/a b"));
        let dev = |m: &Mount| (m.major.clone(), m.minor.clone());
        assert_eq!(dev(&ms[0]), ("254".into(), "0".into()));
        assert_eq!(dev(&ms[3]), ("254".into(), "16".into()));

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
            text.contains("node_filesystem_files_free{device=\"/dev/vda\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 5\n"),
            "{text}"
        );

        std::fs::remove_file(dir.path().join("self/mountinfo")).expect("rm");
        let err = c
            .collect(&mut MetricWriter::new())
            .expect_err("no mountinfo");
        assert!(err.is_no_data(), "{err:?}");
    }

    #[test]
    fn failed_mounts_sort_by_device_error_and_healthy_ones_get_mount_info() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("1")).expect("mkdir");
        // Same device and fstype: /a fails, /b is healthy. node_exporter sorts by
        // device_error before mountpoint, so /b ("") comes first.
        std::fs::write(
            dir.path().join("1/mountinfo"),
            "50 27 0:50 / /a rw - tmpfs tmpfs rw\n51 27 0:9 / /b rw - tmpfs tmpfs ro\n",
        )
        .expect("write");
        let mut cfg = Config::default();
        cfg.paths.procfs = dir.path().to_owned();
        let c = Filesystem::with_statfs(&cfg.context("filesystem").expect("registered"), |p| {
            if p.ends_with("a") {
                return Err(io::Error::from_raw_os_error(libc::EACCES));
            }
            Ok(FsStats {
                size: 1.0,
                free: 1.0,
                avail: 1.0,
                files: 1.0,
                files_free: 1.0,
                readonly: false,
            })
        });
        let mut w = MetricWriter::new();
        c.collect(&mut w).expect("collect");
        let text = w.render_to_string();
        let ro: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("node_filesystem_readonly{"))
            .collect();
        assert_eq!(
            ro,
            [
                "node_filesystem_readonly{device=\"tmpfs\",device_error=\"\",fstype=\"tmpfs\",mountpoint=\"/b\"} 1",
                "node_filesystem_readonly{device=\"tmpfs\",device_error=\"permission denied\",fstype=\"tmpfs\",mountpoint=\"/a\"} 0",
            ]
        );
        assert!(
            text.contains("# HELP node_filesystem_mount_info Filesystem mount information.\n# TYPE node_filesystem_mount_info gauge\nnode_filesystem_mount_info{device=\"tmpfs\",major=\"0\",minor=\"9\",mountpoint=\"/b\"} 1\n#"),
            "{text}"
        );
        assert!(!text.contains("minor=\"50\""), "{text}");
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
            format!("# HELP node_filesystem_device_error {DEVICE_ERROR_HELP}\n# TYPE node_filesystem_device_error gauge\nnode_filesystem_device_error{{device=\"srv:/export\",device_error=\"no such file or directory\",fstype=\"nfs4\",mountpoint=\"/gone\"}} 1\n# HELP node_filesystem_readonly {READONLY_HELP}\n# TYPE node_filesystem_readonly gauge\nnode_filesystem_readonly{{device=\"srv:/export\",device_error=\"no such file or directory\",fstype=\"nfs4\",mountpoint=\"/gone\"}} 0\n")
        );
    }
}
