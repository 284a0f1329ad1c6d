//! `conntrack`: netfilter connection tracking table size and limit
//! (`/proc/sys/net/netfilter/nf_conntrack_{count,max}`) and the per-CPU statistics of
//! `/proc/net/stat/nf_conntrack`, summed (node_exporter's `collector/conntrack_linux.go`).

use std::io;
use std::path::Path;

use crate::collector::{CollectError, Collector, Context, Spec};
use crate::metrics::MetricWriter;
use crate::read;

/// The `/proc/net/stat/nf_conntrack` columns node_exporter reports: column index, metric name
/// and help text. Kernels since 5.x renamed some unused columns (`searched` became `clashres`,
/// `delete_list` became `chainlength`) but kept every position, so positions are stable; like
/// procfs, the header is not consulted.
const STAT_COLUMNS: [(usize, &str, &str); 8] = [
    (
        2,
        "node_nf_conntrack_stat_found",
        "Number of searched entries which were successful.",
    ),
    (
        4,
        "node_nf_conntrack_stat_invalid",
        "Number of packets seen which can not be tracked.",
    ),
    (
        5,
        "node_nf_conntrack_stat_ignore",
        "Number of packets seen which are already connected to a conntrack entry.",
    ),
    (
        8,
        "node_nf_conntrack_stat_insert",
        "Number of entries inserted into the list.",
    ),
    (
        9,
        "node_nf_conntrack_stat_insert_failed",
        "Number of entries for which list insertion was attempted but failed.",
    ),
    (
        10,
        "node_nf_conntrack_stat_drop",
        "Number of packets dropped due to conntrack failure.",
    ),
    (
        11,
        "node_nf_conntrack_stat_early_drop",
        "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.",
    ),
    (
        16,
        "node_nf_conntrack_stat_search_restart",
        "Number of conntrack table lookups which had to be restarted due to hashtable resizes.",
    ),
];

/// The `conntrack` collector: `/proc/sys/net/netfilter/nf_conntrack_*` and `/proc/net/stat/nf_conntrack`.
pub const SPEC: Spec = Spec {
    name: "conntrack",
    default_enabled: true,
    help: "/proc/sys/net/netfilter/nf_conntrack_* and /proc/net/stat/nf_conntrack",
    options: &[],
    filters: &[],
    build: |ctx| Box::new(Conntrack::new(ctx)),
};

/// Reads the conntrack files under `{procfs}`.
#[derive(Debug)]
pub struct Conntrack {
    count: read::KeptFile,
    max: read::KeptFile,
    stat: read::KeptFile,
}

impl Conntrack {
    pub fn new(ctx: &Context) -> Self {
        let procfs = &ctx.paths.procfs;
        Self {
            count: read::KeptFile::one_record(procfs.join("sys/net/netfilter/nf_conntrack_count")),
            max: read::KeptFile::one_record(procfs.join("sys/net/netfilter/nf_conntrack_max")),
            stat: read::KeptFile::new(procfs.join("net/stat/nf_conntrack")),
        }
    }
}

/// Reads a one-integer sysctl; a missing file means the conntrack module is not loaded.
fn read_sysctl(file: &read::KeptFile) -> Result<f64, CollectError> {
    let path = file.path();
    let text = match file.read_string_io() {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CollectError::NoData(format!(
                "{} not found: conntrack probably not loaded",
                path.display()
            )));
        }
        Err(e) => return Err(CollectError::io(path, e)),
    };
    let v = text.trim();
    v.parse::<u64>()
        .map(|v| v as f64)
        .map_err(|_| CollectError::parse(path, format!("not an unsigned integer: {v:?}")))
}

/// Sums the reported columns of `/proc/net/stat/nf_conntrack` over all CPU rows. Each row has
/// 17 hex columns (16 before Linux 2.6.35, which lacked `search_restart`).
fn parse_stat(path: &Path, text: &str) -> Result<[u64; STAT_COLUMNS.len()], CollectError> {
    let mut sums = [0u64; STAT_COLUMNS.len()];
    let mut row = [0u64; 17];
    for line in text.lines().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let mut n = 0;
        for field in line.split_ascii_whitespace() {
            // Go's strconv.ParseUint(field, 16, 64) takes no sign; Rust's parser takes `+`.
            let v = Some(field)
                .filter(|f| !f.starts_with('+'))
                .and_then(|f| u64::from_str_radix(f, 16).ok())
                .ok_or_else(|| CollectError::parse(path, format!("not a hex number: {field:?}")))?;
            if n < row.len() {
                row[n] = v;
            }
            n += 1;
        }
        if !(16..=17).contains(&n) {
            return Err(CollectError::parse(
                path,
                format!("invalid number of fields: {n} in {line:?}"),
            ));
        }
        if n == 16 {
            row[16] = 0;
        }
        for (sum, (col, _, _)) in sums.iter_mut().zip(STAT_COLUMNS) {
            *sum = sum.wrapping_add(row[col]);
        }
    }
    Ok(sums)
}

impl Collector for Conntrack {
    fn name(&self) -> &'static str {
        "conntrack"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        // Written as soon as read, like node_exporter: a failure further on keeps these.
        out.gauge(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
            &[],
            read_sysctl(&self.count)?,
        );
        out.gauge(
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table.",
            &[],
            read_sysctl(&self.max)?,
        );
        let text = self.stat.read_string()?;
        let sums = parse_stat(self.stat.path(), &text)?;
        for (sum, (_, name, help)) in sums.into_iter().zip(STAT_COLUMNS) {
            out.gauge(name, help, &[], sum as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    const HEADER: &str = "entries  clashres found new invalid ignore delete chainlength insert \
                          insert_failed drop early_drop icmp_error  expect_new expect_create \
                          expect_delete search_restart\n";

    #[test]
    fn sums_rows_of_every_cpu() {
        let text = format!(
            "{HEADER}\
             00000010  00000000 00000001 00000000 0000000a 00000100 00000000 00000000 00000002 00000003 00000004 00000005 00000000  00000000 00000000 00000000 0000000f\n\
             00000010  00000000 00000001 00000000 0000000a 00000100 00000000 00000000 00000002 00000003 00000004 00000005 00000000  00000000 00000000 00000000 ffffffff\n"
        );
        let sums = parse_stat(Path::new("/x"), &text).expect("valid stat");
        assert_eq!(sums, [2, 20, 512, 4, 6, 8, 10, 0xf + 0xffff_ffff]);
    }

    #[test]
    fn old_kernels_without_search_restart() {
        // 16 columns before Linux 2.6.35: search_restart is reported as 0.
        let text = "entries searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error expect_new expect_create expect_delete\n\
                    00000001 00000002 00000003 00000004 00000005 00000006 00000007 00000008 00000009 0000000a 0000000b 0000000c 0000000d 0000000e 0000000f 00000010\n";
        let sums = parse_stat(Path::new("/x"), text).expect("valid stat");
        assert_eq!(sums, [3, 5, 6, 9, 10, 11, 12, 0]);
    }

    #[test]
    fn bad_rows_are_parse_errors() {
        let e = parse_stat(Path::new("/x"), &format!("{HEADER}00000001 00000002\n"))
            .expect_err("short row");
        assert_eq!(
            e.to_string(),
            "parse /x: invalid number of fields: 2 in \"00000001 00000002\""
        );
        let e = parse_stat(Path::new("/x"), &format!("{HEADER}0000000g\n")).expect_err("not hex");
        assert_eq!(e.to_string(), "parse /x: not a hex number: \"0000000g\"");
        let e = parse_stat(Path::new("/x"), &format!("{HEADER}+1\n")).expect_err("signed");
        assert_eq!(e.to_string(), "parse /x: not a hex number: \"+1\"");
        // The header alone (no CPU rows) sums to zero.
        assert_eq!(
            parse_stat(Path::new("/x"), HEADER).expect("header only"),
            [0; 8]
        );
    }

    #[test]
    fn missing_count_is_no_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = Config::default();
        cfg.paths.procfs = dir.path().to_owned();
        let mut w = MetricWriter::new();
        let e = Conntrack::new(&cfg.context("conntrack").expect("registered"))
            .collect(&mut w)
            .expect_err("no conntrack");
        assert!(e.is_no_data(), "{e}");
        assert_eq!(w.sample_count(), 0);
    }

    #[test]
    fn missing_stat_file_fails_after_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nf = dir.path().join("sys/net/netfilter");
        std::fs::create_dir_all(&nf).expect("mkdir");
        std::fs::write(nf.join("nf_conntrack_count"), "5\n").expect("write");
        std::fs::write(nf.join("nf_conntrack_max"), "65536\n").expect("write");
        let mut cfg = Config::default();
        cfg.paths.procfs = dir.path().to_owned();
        let mut w = MetricWriter::new();
        let e = Conntrack::new(&cfg.context("conntrack").expect("registered"))
            .collect(&mut w)
            .expect_err("no stat file");
        assert!(!e.is_no_data(), "{e}");
        assert!(e
            .to_string()
            .ends_with("net/stat/nf_conntrack: no such file or directory"));
        let got = w.render_to_string();
        assert!(got.contains("node_nf_conntrack_entries 5\n"), "{got}");
        assert!(
            got.contains("node_nf_conntrack_entries_limit 65536\n"),
            "{got}"
        );
    }

    #[test]
    fn bad_count_is_a_parse_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("count");
        std::fs::write(&path, "many\n").expect("write");
        let e = read_sysctl(&read::KeptFile::new(path)).expect_err("not a number");
        assert!(matches!(e, CollectError::Parse { .. }), "{e}");
        assert!(
            e.to_string().ends_with("not an unsigned integer: \"many\""),
            "{e}"
        );
    }
}
