//! `filefd`: allocated and maximum file handles from `/proc/sys/fs/file-nr`
//! (node_exporter's `collector/filefd_linux.go`).

use crate::collector::{CollectError, Collector, Context, Spec};
use crate::metrics::MetricWriter;
use crate::read;

/// The `filefd` collector: `/proc/sys/fs/file-nr`.
pub const SPEC: Spec = Spec {
    name: "filefd",
    default_enabled: true,
    help: "/proc/sys/fs/file-nr",
    options: &[],
    filters: &[],
    build: |ctx| Box::new(Filefd::new(ctx)),
};

/// Reads `{procfs}/sys/fs/file-nr`.
#[derive(Debug)]
pub struct Filefd {
    file: read::KeptFile,
}

impl Filefd {
    pub fn new(ctx: &Context) -> Self {
        Self {
            file: read::KeptFile::one_record(ctx.paths.procfs.join("sys/fs/file-nr")),
        }
    }

    /// Writes the two families from `text`, e.g. `"1024\t0\t2466183\n"`: allocated handles,
    /// allocated-but-unused handles (always 0 since Linux 2.6) and the maximum.
    fn write(&self, text: &str, out: &mut MetricWriter) -> Result<(), CollectError> {
        let mut f = text.split_ascii_whitespace();
        let (Some(allocated), Some(_unused), Some(maximum)) = (f.next(), f.next(), f.next()) else {
            return Err(CollectError::parse(
                self.file.path(),
                format!("unexpected number of file stats: {:?}", text.trim_end()),
            ));
        };
        let allocated = read::parse_f64(self.file.path(), allocated)?;
        let maximum = read::parse_f64(self.file.path(), maximum)?;
        out.gauge(
            "node_filefd_allocated",
            "File descriptor statistics: allocated.",
            &[],
            allocated,
        );
        out.gauge(
            "node_filefd_maximum",
            "File descriptor statistics: maximum.",
            &[],
            maximum,
        );
        Ok(())
    }
}

impl Collector for Filefd {
    fn name(&self) -> &'static str {
        "filefd"
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

    fn filefd() -> Filefd {
        let mut cfg = Config::default();
        cfg.paths.procfs = "/proc-test".into();
        Filefd::new(&cfg.context("filefd").expect("registered"))
    }

    #[test]
    fn parses_file_nr() {
        let mut w = MetricWriter::new();
        filefd()
            .write("502\t0\t2466183\n", &mut w)
            .expect("valid file-nr");
        assert_eq!(
            w.render_to_string(),
            "# HELP node_filefd_allocated File descriptor statistics: allocated.\n\
             # TYPE node_filefd_allocated gauge\nnode_filefd_allocated 502\n\
             # HELP node_filefd_maximum File descriptor statistics: maximum.\n\
             # TYPE node_filefd_maximum gauge\nnode_filefd_maximum 2.466183e+06\n"
        );
    }

    #[test]
    fn short_or_bad_content_is_a_parse_error() {
        let e = filefd()
            .write("502\t0\n", &mut MetricWriter::new())
            .expect_err("two fields");
        assert_eq!(
            e.to_string(),
            "parse /proc-test/sys/fs/file-nr: unexpected number of file stats: \"502\\t0\""
        );
        let e = filefd()
            .write("502\t0\tlots\n", &mut MetricWriter::new())
            .expect_err("bad maximum");
        assert_eq!(
            e.to_string(),
            "parse /proc-test/sys/fs/file-nr: not a number: \"lots\""
        );
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let e = filefd()
            .collect(&mut MetricWriter::new())
            .expect_err("no such file");
        assert_eq!(
            e.to_string(),
            "read /proc-test/sys/fs/file-nr: no such file or directory"
        );
    }
}
