//! `vmstat`: the `/proc/vmstat` fields selected by `collectors.vmstat.fields`, as untyped
//! `node_vmstat_<field>` samples (node_exporter's `collector/vmstat_linux.go`).

use regex_lite::Regex;

use crate::collector::{CollectError, Collector, Context, Kind, Opt, Spec};
use crate::config::matches_all;
use crate::filter::MatchCache;
use crate::metrics::{MetricType, MetricWriter};
use crate::read;

const FIELDS: Opt = Opt::new(
    "fields",
    "collector.vmstat.fields",
    Kind::Regex(Some("^(oom_kill|pgpg|pswp|pg.*fault).*")),
    "Regexp of fields to return for vmstat collector.",
);

/// The `vmstat` collector: the selected fields of `/proc/vmstat`.
pub const SPEC: Spec = Spec {
    name: "vmstat",
    default_enabled: true,
    help: "/proc/vmstat",
    options: &[FIELDS],
    filters: &[],
    build: |ctx| Box::new(Vmstat::new(ctx)),
};

/// Reads `{procfs}/vmstat`.
#[derive(Debug)]
pub struct Vmstat {
    file: read::KeptFile,
    /// Fields whose name matches are reported (`--collector.vmstat.fields`).
    fields: Regex,
    /// `fields`' answer per field name.
    selected: MatchCache,
}

impl Vmstat {
    pub fn new(ctx: &Context) -> Self {
        Self {
            file: read::KeptFile::new(ctx.paths.procfs.join("vmstat")),
            // An empty pattern selects every field, as Go's empty regexp matches everything.
            fields: ctx.regex(&FIELDS).unwrap_or_else(matches_all),
            selected: MatchCache::new(),
        }
    }

    /// Writes the selected fields of `text`, the content of `/proc/vmstat`.
    fn write(&self, text: &str, out: &mut MetricWriter) -> Result<(), CollectError> {
        const PREFIX: &str = "node_vmstat_";
        const HELP_PREFIX: &str = "/proc/vmstat information field ";
        let mut name = String::with_capacity(64);
        let mut help = String::with_capacity(80);
        for line in text.lines() {
            let mut parts = line.split_ascii_whitespace();
            let Some(field) = parts.next() else {
                continue;
            };
            let Some(value) = parts.next() else {
                return Err(CollectError::parse(
                    self.file.path(),
                    format!("invalid line: {line:?}"),
                ));
            };
            // Matching first skips parsing the ~150 fields the default pattern drops.
            if !self.selected.get(field, |f| self.fields.is_match(f)) {
                continue;
            }
            let value = read::parse_f64(self.file.path(), value)?;
            name.clear();
            name.push_str(PREFIX);
            name.push_str(field);
            help.clear();
            help.push_str(HELP_PREFIX);
            help.push_str(field);
            help.push('.');
            out.sample(MetricType::Untyped, &name, &help, &[], value);
        }
        Ok(())
    }
}

impl Collector for Vmstat {
    fn name(&self) -> &'static str {
        "vmstat"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let text = self.file.read_string()?;
        self.write(&text, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn vmstat(fields: &str) -> Vmstat {
        let mut cfg = Config::default();
        cfg.paths.procfs = "/proc-test".into();
        cfg.collectors
            .set_flag("collector.vmstat.fields", Some(fields))
            .expect("valid flag");
        Vmstat::new(&cfg.context("vmstat").expect("registered"))
    }

    #[test]
    fn default_pattern_selects_node_exporter_fields() {
        let text = "nr_free_pages 1000\npgpgin 3327425\npgpgout 12\npswpin 0\npgfault 8107069\n\
                    pgmajfault 2106\npgfree 5\noom_kill 1\nthp_fault_alloc 3\n";
        let mut w = MetricWriter::new();
        vmstat("^(oom_kill|pgpg|pswp|pg.*fault).*")
            .write(text, &mut w)
            .expect("valid vmstat");
        let got = w.render_to_string();
        for want in [
            "node_vmstat_pgpgin 3.327425e+06\n",
            "node_vmstat_pgpgout 12\n",
            "node_vmstat_pswpin 0\n",
            "node_vmstat_pgfault 8.107069e+06\n",
            "node_vmstat_pgmajfault 2106\n",
            "node_vmstat_oom_kill 1\n",
            "# HELP node_vmstat_oom_kill /proc/vmstat information field oom_kill.\n\
             # TYPE node_vmstat_oom_kill untyped\n",
        ] {
            assert!(got.contains(want), "missing {want:?} in\n{got}");
        }
        // thp_fault_alloc contains "fault" but does not start with "pg".
        assert!(!got.contains("thp_fault_alloc"), "{got}");
        assert!(!got.contains("nr_free_pages"), "{got}");
        assert_eq!(w.sample_count(), 6);
    }

    #[test]
    fn custom_pattern_is_honoured() {
        let mut w = MetricWriter::new();
        vmstat("^nr_")
            .write("nr_free_pages 7\npgfault 1\n", &mut w)
            .expect("valid vmstat");
        assert_eq!(
            w.render_to_string(),
            "# HELP node_vmstat_nr_free_pages /proc/vmstat information field nr_free_pages.\n\
             # TYPE node_vmstat_nr_free_pages untyped\nnode_vmstat_nr_free_pages 7\n"
        );
    }

    #[test]
    fn malformed_lines_are_parse_errors() {
        let v = vmstat("^(oom_kill|pgpg|pswp|pg.*fault).*");
        let e = v
            .write("pgfault\n", &mut MetricWriter::new())
            .expect_err("missing value");
        assert_eq!(
            e.to_string(),
            "parse /proc-test/vmstat: invalid line: \"pgfault\""
        );
        let e = v
            .write("pgfault x1\n", &mut MetricWriter::new())
            .expect_err("bad value");
        assert_eq!(
            e.to_string(),
            "parse /proc-test/vmstat: not a number: \"x1\""
        );
        // A bad value in a field that is not selected is never parsed.
        v.write("nr_bogus x1\n\n", &mut MetricWriter::new())
            .expect("unselected field");
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let e = vmstat("^(oom_kill|pgpg|pswp|pg.*fault).*")
            .collect(&mut MetricWriter::new())
            .expect_err("no such file");
        assert_eq!(
            e.to_string(),
            "read /proc-test/vmstat: no such file or directory"
        );
    }
}
