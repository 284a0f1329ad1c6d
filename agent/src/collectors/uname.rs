//! `uname`: `node_uname_info` labelled with the fields of the uname(2) system call
//! (node_exporter's `collector/uname_linux.go`).

use std::io;

use crate::collector::{CollectError, Collector, Context, Spec};
use crate::metrics::MetricWriter;

/// The `uname` collector: the uname(2) system call.
pub const SPEC: Spec = Spec {
    name: "uname",
    default_enabled: true,
    help: "the uname(2) system call",
    options: &[],
    filters: &[],
    build: |ctx| Box::new(Uname::new(ctx)),
};

/// Calls uname(2) at every scrape: the host name can change while the agent runs.
#[derive(Debug)]
pub struct Uname;

impl Uname {
    pub fn new(_ctx: &Context) -> Self {
        Self
    }
}

/// The six uname fields, in label-name order.
#[derive(Debug, PartialEq)]
struct Utsname {
    domainname: String,
    machine: String,
    nodename: String,
    release: String,
    sysname: String,
    version: String,
}

/// A NUL-terminated `utsname` field as text; the kernel does not promise UTF-8 (a host name
/// could be set to anything), and label values must be valid UTF-8.
fn field(raw: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Utsname {
    /// The `node_uname_info` labels, sorted by name.
    fn labels(&self) -> [(&'static str, &str); 6] {
        [
            ("domainname", &self.domainname),
            ("machine", &self.machine),
            ("nodename", &self.nodename),
            ("release", &self.release),
            ("sysname", &self.sysname),
            ("version", &self.version),
        ]
    }
}

fn uname() -> io::Result<Utsname> {
    // SAFETY: `utsname` is a plain C struct of byte arrays, for which all zeroes is valid.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable `utsname` that the kernel fills in.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Utsname {
        domainname: field(&u.domainname),
        machine: field(&u.machine),
        nodename: field(&u.nodename),
        release: field(&u.release),
        sysname: field(&u.sysname),
        version: field(&u.version),
    })
}

impl Collector for Uname {
    fn name(&self) -> &'static str {
        "uname"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let u = uname()
            .map_err(|e| CollectError::Other(format!("uname: {}", crate::error::io_reason(&e))))?;
        out.gauge(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            &u.labels(),
            1.0,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn kernel_file(name: &str) -> String {
        let path = format!("/proc/sys/kernel/{name}");
        let s = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        s.trim_end_matches('\n').to_owned()
    }

    #[test]
    fn fields_agree_with_proc_sys_kernel() {
        // The kernel exposes the same strings under /proc/sys/kernel: an independent source.
        let u = uname().expect("uname");
        assert_eq!(u.sysname, kernel_file("ostype"));
        assert_eq!(u.release, kernel_file("osrelease"));
        assert_eq!(u.version, kernel_file("version"));
        assert_eq!(u.nodename, kernel_file("hostname"));
        assert_eq!(u.domainname, kernel_file("domainname"));
        assert_eq!(u.machine, std::env::consts::ARCH);
    }

    #[test]
    fn renders_one_info_sample_with_six_labels() {
        let mut w = MetricWriter::new();
        Uname::new(&Config::default().context("uname").expect("registered"))
            .collect(&mut w)
            .expect("uname");
        let got = w.render_to_string();
        let u = uname().expect("uname");
        let mut want = String::from(
            "# HELP node_uname_info Labeled system information as provided by the uname system call.\n\
             # TYPE node_uname_info gauge\nnode_uname_info{",
        );
        for (i, (k, v)) in u.labels().into_iter().enumerate() {
            if i > 0 {
                want.push(',');
            }
            want.push_str(k);
            want.push_str("=\"");
            crate::metrics::escape_label_value(&mut want, v);
            want.push('"');
        }
        want.push_str("} 1\n");
        assert_eq!(got, want);
    }

    #[test]
    fn fields_stop_at_nul_and_tolerate_bad_utf8() {
        let raw: Vec<libc::c_char> = [b'a', 0xff, b'b', 0, b'z']
            .iter()
            .map(|&b| b as libc::c_char)
            .collect();
        assert_eq!(field(&raw), "a\u{fffd}b");
        assert_eq!(field(&[0; 4]), "");
    }
}
