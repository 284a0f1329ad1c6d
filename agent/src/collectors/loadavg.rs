//! `loadavg`: the 1, 5 and 15 minute load averages from `/proc/loadavg`.

use crate::collector::{CollectError, Collector, Context, Spec};
use crate::metrics::MetricWriter;
use crate::read;

/// The `loadavg` collector: `/proc/loadavg`.
pub const SPEC: Spec = Spec {
    name: "loadavg",
    default_enabled: true,
    help: "/proc/loadavg",
    options: &[],
    filters: &[],
    build: |ctx| Box::new(Loadavg::new(ctx)),
};

pub struct Loadavg {
    file: read::KeptFile,
}

impl Loadavg {
    pub fn new(ctx: &Context) -> Self {
        Self {
            file: read::KeptFile::one_record(ctx.paths.procfs.join("loadavg")),
        }
    }
}

impl Collector for Loadavg {
    fn name(&self) -> &'static str {
        "loadavg"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let text = self.file.read_string()?;
        let mut f = text.split_ascii_whitespace();
        let (Some(l1), Some(l5), Some(l15)) = (f.next(), f.next(), f.next()) else {
            return Err(CollectError::parse(
                self.file.path(),
                format!("unexpected content: {:?}", text.trim_end()),
            ));
        };
        let (l1, l5, l15) = (
            read::parse_f64(self.file.path(), l1)?,
            read::parse_f64(self.file.path(), l5)?,
            read::parse_f64(self.file.path(), l15)?,
        );
        out.gauge("node_load1", "1m load average.", &[], l1);
        out.gauge("node_load5", "5m load average.", &[], l5);
        out.gauge("node_load15", "15m load average.", &[], l15);
        Ok(())
    }
}
