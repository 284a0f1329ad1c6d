//! `meminfo`: every key of `/proc/meminfo` as `node_memory_<Key>[_bytes]`, named as
//! node_exporter names them (`Active(anon)` becomes `Active_anon`; keys in kB get `_bytes` and
//! are converted to bytes).

use crate::collector::{CollectError, Collector, Context, Spec};
use crate::metrics::{MetricType, MetricWriter};
use crate::read;

/// The `meminfo` collector: `/proc/meminfo`, every key.
pub const SPEC: Spec = Spec {
    name: "meminfo",
    default_enabled: true,
    help: "/proc/meminfo, every key",
    options: &[],
    filters: &[],
    build: |ctx| Box::new(Meminfo::new(ctx)),
};

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

impl Collector for Meminfo {
    fn name(&self) -> &'static str {
        "meminfo"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let text = self.file.read_string()?;
        let mut name = String::with_capacity(64);
        let mut help = String::with_capacity(64);
        for line in text.lines() {
            let mut parts = line.split_ascii_whitespace();
            let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
                continue; // empty lines occur on some kernels
            };
            let unit = parts.next();
            if parts.next().is_some() {
                return Err(CollectError::parse(
                    self.file.path(),
                    format!("invalid line: {line:?}"),
                ));
            }
            let mut v = read::parse_f64(self.file.path(), value)?;
            let key = key.strip_suffix(':').unwrap_or(key);
            name.clear();
            name.push_str("node_memory_");
            let field_start = name.len();
            // "Active(anon)" -> "Active_anon"
            match (key.find('('), key.rfind(')')) {
                (Some(open), Some(close)) if open < close => {
                    name.push_str(&key[..open]);
                    name.push('_');
                    name.push_str(&key[open + 1..close]);
                    name.push_str(&key[close + 1..]);
                }
                _ => name.push_str(key),
            }
            if unit.is_some() {
                v *= 1024.0;
                name.push_str("_bytes");
            }
            help.clear();
            help.push_str("Memory information field ");
            help.push_str(&name[field_start..]);
            help.push('.');
            let ty = if name.ends_with("_total") {
                MetricType::Counter
            } else {
                MetricType::Gauge
            };
            out.sample(ty, &name, &help, &[], v);
        }
        Ok(())
    }
}
