//! `meminfo`: the `/proc/meminfo` keys node_exporter 1.12 reports, as `node_memory_<Key>_bytes`
//! (or `node_memory_HugePages_<Kind>` counts). Since 1.6 node_exporter reads the file through
//! procfs' `Meminfo` struct, so only the keys it maps are reported (newer kernels' keys such as
//! `KReclaimable` are not), while every line must still parse.

use crate::collector::{CollectError, Collector, Context, Spec};
use crate::gonum;
use crate::metrics::MetricWriter;
use crate::read;

/// The `meminfo` collector: `/proc/meminfo`.
pub const SPEC: Spec = Spec {
    name: "meminfo",
    default_enabled: true,
    help: "/proc/meminfo",
    options: &[],
    filters: &[],
    build: |ctx| Box::new(Meminfo::new(ctx)),
};

/// The keys node_exporter 1.12 reports (`collector/meminfo_linux.go`), each with its metric
/// name without the `node_memory_` prefix, sorted by key for binary search.
const KEYS: [(&str, &str); 51] = [
    ("Active", "Active_bytes"),
    ("Active(anon)", "Active_anon_bytes"),
    ("Active(file)", "Active_file_bytes"),
    ("AnonHugePages", "AnonHugePages_bytes"),
    ("AnonPages", "AnonPages_bytes"),
    ("Bounce", "Bounce_bytes"),
    ("Buffers", "Buffers_bytes"),
    ("Cached", "Cached_bytes"),
    ("CmaFree", "CmaFree_bytes"),
    ("CmaTotal", "CmaTotal_bytes"),
    ("CommitLimit", "CommitLimit_bytes"),
    ("Committed_AS", "Committed_AS_bytes"),
    ("DirectMap1G", "DirectMap1G_bytes"),
    ("DirectMap2M", "DirectMap2M_bytes"),
    ("DirectMap4k", "DirectMap4k_bytes"),
    ("Dirty", "Dirty_bytes"),
    ("HardwareCorrupted", "HardwareCorrupted_bytes"),
    // Counts of huge pages: procfs' unconverted value, and no `_bytes`.
    ("HugePages_Free", "HugePages_Free"),
    ("HugePages_Rsvd", "HugePages_Rsvd"),
    ("HugePages_Surp", "HugePages_Surp"),
    ("HugePages_Total", "HugePages_Total"),
    ("Hugepagesize", "Hugepagesize_bytes"),
    ("Inactive", "Inactive_bytes"),
    ("Inactive(anon)", "Inactive_anon_bytes"),
    ("Inactive(file)", "Inactive_file_bytes"),
    ("KernelStack", "KernelStack_bytes"),
    ("Mapped", "Mapped_bytes"),
    ("MemAvailable", "MemAvailable_bytes"),
    ("MemFree", "MemFree_bytes"),
    ("MemTotal", "MemTotal_bytes"),
    ("Mlocked", "Mlocked_bytes"),
    ("NFS_Unstable", "NFS_Unstable_bytes"),
    ("PageTables", "PageTables_bytes"),
    ("Percpu", "Percpu_bytes"),
    ("SReclaimable", "SReclaimable_bytes"),
    ("SUnreclaim", "SUnreclaim_bytes"),
    ("Shmem", "Shmem_bytes"),
    ("ShmemHugePages", "ShmemHugePages_bytes"),
    ("ShmemPmdMapped", "ShmemPmdMapped_bytes"),
    ("Slab", "Slab_bytes"),
    ("SwapCached", "SwapCached_bytes"),
    ("SwapFree", "SwapFree_bytes"),
    ("SwapTotal", "SwapTotal_bytes"),
    ("Unevictable", "Unevictable_bytes"),
    ("VmallocChunk", "VmallocChunk_bytes"),
    ("VmallocTotal", "VmallocTotal_bytes"),
    ("VmallocUsed", "VmallocUsed_bytes"),
    ("Writeback", "Writeback_bytes"),
    ("WritebackTmp", "WritebackTmp_bytes"),
    ("Zswap", "Zswap_bytes"),
    ("Zswapped", "Zswapped_bytes"),
];

pub struct Meminfo {
    file: read::KeptFile,
}

impl Meminfo {
    pub fn new(ctx: &Context) -> Self {
        Self {
            file: read::KeptFile::one_record(ctx.paths.procfs.join("meminfo")),
        }
    }
}

/// Parses `/proc/meminfo` as procfs does and returns (metric name, value) of the reported
/// keys, sorted by name; a key given twice keeps its last value.
fn parse(path: &std::path::Path, text: &str) -> Result<Vec<(&'static str, f64)>, CollectError> {
    let mut values: Vec<(&'static str, f64)> = Vec::with_capacity(KEYS.len());
    for line in text.lines() {
        let bad = || CollectError::parse(path, format!("invalid line: {line:?}"));
        let mut parts = line.split_ascii_whitespace();
        // procfs indexes the value of every line, so node_exporter 1.12 panics on a line
        // without one. Empty lines (seen on CentOS 6 kernels; 1.5 skipped them) are skipped,
        // any other short line fails the collector.
        let Some(key) = parts.next() else {
            continue;
        };
        let Some(value) = parts.next() else {
            return Err(bad());
        };
        // strconv.ParseUint(value, 0, 64).
        let val = gonum::parse_uint(value).ok_or_else(bad)?;
        let bytes = match (parts.next(), parts.next()) {
            (None, _) => val,
            (Some("kB"), None) => val.wrapping_mul(1024),
            (Some(unit), None) => {
                return Err(CollectError::parse(
                    path,
                    format!("unsupported unit {unit:?} in line {line:?}"),
                ))
            }
            _ => return Err(bad()),
        };
        let Some(key) = key.strip_suffix(':') else {
            continue;
        };
        let Ok(i) = KEYS.binary_search_by(|(k, _)| (*k).cmp(key)) else {
            continue;
        };
        let name = KEYS[i].1;
        let v = if key.starts_with("HugePages_") {
            val
        } else {
            bytes
        };
        match values.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = v as f64,
            None => values.push((name, v as f64)),
        }
    }
    values.sort_unstable_by(|a, b| a.0.cmp(b.0));
    Ok(values)
}

impl Collector for Meminfo {
    fn name(&self) -> &'static str {
        "meminfo"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let text = self.file.read_string()?;
        let values = parse(self.file.path(), &text)?;
        let mut name = String::with_capacity(64);
        let mut help = String::with_capacity(64);
        for (field, v) in values {
            name.clear();
            name.push_str("node_memory_");
            name.push_str(field);
            help.clear();
            help.push_str("Memory information field ");
            help.push_str(field);
            help.push('.');
            // node_exporter types a name ending in `_total` as a counter; none of these does.
            out.gauge(&name, &help, &[], v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn keys_are_sorted_for_binary_search() {
        assert!(KEYS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn only_procfs_keys_are_reported_and_every_line_must_parse() {
        let p = Path::new("/proc/meminfo");
        let text =
            "MemTotal:       16303416 kB\nKReclaimable:     123 kB\nHugePages_Total:       2\n\
                    Active(anon):    10 kB\nMemTotal:  1 kB\n\nDirectMap2M: 010 kB\n";
        let got = parse(p, text).expect("valid meminfo");
        assert_eq!(
            got,
            [
                ("Active_anon_bytes", 10240.0),
                // Base 0: a leading zero is octal, as strconv.ParseUint(s, 0, 64) reads it.
                ("DirectMap2M_bytes", 8192.0),
                ("HugePages_Total", 2.0),
                ("MemTotal_bytes", 1024.0),
            ]
        );
        for bad in [
            "MemTotal: 1 MB\n",
            "MemTotal: x kB\n",
            "MemTotal: -1 kB\n",
            "MemTotal: 1 kB extra\n",
            "MemTotal:\n",
            "Unknown: nope\n",
        ] {
            assert!(parse(p, bad).is_err(), "{bad:?}");
        }
    }
}
