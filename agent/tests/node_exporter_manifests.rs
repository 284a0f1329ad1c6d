//! The argument lists of the manifests people run node_exporter with (kube-prometheus's
//! DaemonSet, the prometheus-node-exporter Helm chart plain and behind kube-rbac-proxy,
//! kube-prometheus-stack's extra arguments; `tests/fixtures/node-exporter/*.yaml`, each naming
//! its source), given verbatim to beacon-agent: it starts, serves on the address they name, and
//! applies their filters. Only the `/host` paths point into a fixture tree and the port is a
//! free one.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

#[derive(Deserialize)]
struct Manifest {
    #[allow(dead_code)]
    source: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    args: Vec<String>,
}

/// Mounts of the fixture host: the root, a data disk, a kubelet pod volume, a containerd task
/// rootfs and an erofs image.
const MOUNTINFO: &str = "\
21 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw
30 21 254:2 / /srv rw,relatime - ext4 /dev/vdb rw
40 21 0:50 / /var/lib/kubelet/pods/0f1e/volumes/kubernetes.io~empty-dir/cache rw,relatime - tmpfs tmpfs rw
41 21 0:51 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/ab12/rootfs rw,relatime - ext4 /dev/vdc rw
50 21 7:0 / /opt/image rw,relatime - erofs /dev/loop0 ro
";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture dir") {
        let e = e.expect("entry");
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ty = e.file_type().expect("file type");
        if ty.is_dir() {
            copy_dir(&src, &dst);
        } else if ty.is_symlink() {
            let target = std::fs::read_link(&src).expect("readlink");
            std::os::unix::fs::symlink(target, &dst).expect("symlink");
        } else {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// `/host` as the manifests mount it: `/host/proc` and `/host/root/proc` both the fixture
/// procfs (with the mounts above), `/host/sys` the fixture sysfs, `/host/root` holding the
/// mount points.
fn host_tree(dir: &Path) -> PathBuf {
    let host = dir.join("host");
    copy_dir(&fixtures().join("host/proc"), &host.join("proc"));
    copy_dir(&fixtures().join("host/sys"), &host.join("sys"));
    for pid in ["1", "self"] {
        let d = host.join("proc").join(pid);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("mountinfo"), MOUNTINFO).expect("write mountinfo");
    }
    let root = host.join("root");
    for line in MOUNTINFO.lines() {
        let mountpoint = line.split(' ').nth(4).expect("mount point");
        std::fs::create_dir_all(root.join(mountpoint.trim_start_matches('/'))).expect("mkdir");
    }
    std::os::unix::fs::symlink("../proc", root.join("proc")).expect("symlink proc");
    std::fs::create_dir_all(root.join("run/udev/data")).expect("mkdir udev");
    host
}

/// The manifest's arguments with `$(VAR)` expanded as Kubernetes does, `/host` moved into the
/// fixture tree and the listen port replaced; returns them and the address to scrape.
fn arguments(m: &Manifest, host: &Path, port: u16) -> (Vec<String>, String) {
    let mut scrape = String::new();
    let args = m
        .args
        .iter()
        .map(|a| {
            let mut a = a.clone();
            for (k, v) in &m.env {
                a = a.replace(&format!("$({k})"), v);
            }
            if let Some(addr) = a.strip_prefix("--web.listen-address=") {
                let (hostpart, _) = addr.rsplit_once(':').expect("host:port");
                let ip = hostpart.trim_start_matches('[').trim_end_matches(']');
                let ip = if ip == "0.0.0.0" || ip.is_empty() {
                    "127.0.0.1"
                } else {
                    ip
                };
                scrape = format!("{ip}:{port}");
                return format!("--web.listen-address={hostpart}:{port}");
            }
            if a.starts_with("--path.") {
                a = a.replace("=/host", &format!("={}", host.display()));
            }
            a
        })
        .collect();
    (args, scrape)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn scrape(addr: &str) -> Option<String> {
    use std::io::Write as _;
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.starts_with("HTTP/1.0 200").then_some(body)
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the agent with a manifest's arguments; returns one scrape and its log.
fn run_manifest(name: &str) -> (String, String) {
    let text = std::fs::read_to_string(fixtures().join("node-exporter").join(name)).expect("read");
    let m: Manifest = serde_saphyr::from_str(&text).expect("manifest fixture");
    let dir = tempfile::tempdir().expect("tempdir");
    let host = host_tree(dir.path());
    let (args, addr) = arguments(&m, &host, free_port());
    let log = dir.path().join("agent.log");
    let mut agent = Running(
        Command::new(env!("CARGO_BIN_EXE_beacon-agent"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start beacon-agent"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(body) = scrape(&addr) {
            return (body, std::fs::read_to_string(&log).unwrap_or_default());
        }
        if let Ok(Some(status)) = agent.0.try_wait() {
            panic!(
                "{name}: beacon-agent {args:?} exited with {status}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{name}: nothing served on {addr} within 10 s:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a sample line contains every needle (label order and extra labels do not matter).
fn has_all(body: &str, needles: &[&str]) -> bool {
    body.lines()
        .any(|l| !l.starts_with('#') && needles.iter().all(|n| l.contains(n)))
}

fn has(body: &str, needle: &str) -> bool {
    has_all(body, &[needle])
}

const KUBELET_MOUNT: &str =
    "mountpoint=\"/var/lib/kubelet/pods/0f1e/volumes/kubernetes.io~empty-dir/cache\"";

#[test]
fn kube_prometheus_daemonset() {
    let (body, log) = run_manifest("kube-prometheus.yaml");
    assert!(!log.contains("level=WARN"), "{log}");
    // The data disk and root are reported under their host paths, with the rootfs stripped.
    assert!(
        has_all(
            &body,
            &[
                "node_filesystem_size_bytes{",
                "device=\"/dev/vdb\"",
                "mountpoint=\"/srv\""
            ]
        ),
        "{body}"
    );
    assert!(has(&body, "mountpoint=\"/\"}"), "{body}");
    // --collector.filesystem.mount-points-exclude drops the kubelet pod volume.
    assert!(!has(&body, KUBELET_MOUNT), "{body}");
    // --collector.netdev.device-exclude and --collector.netclass.ignored-devices drop veth-a.
    assert!(
        has(&body, "node_network_receive_bytes_total{device=\"eth0\"}"),
        "{body}"
    );
    assert!(!has(&body, "device=\"veth-a\""), "{body}");
    assert!(has(&body, "node_network_up{device=\"eth0\"}"), "{body}");
    // --no-collector.hwmon.
    assert!(!body.contains("collector=\"hwmon\""), "{body}");
    assert!(
        has(&body, "node_scrape_collector_success{collector=\"cpu\"} 1"),
        "{body}"
    );
}

#[test]
fn helm_chart_default() {
    let (body, log) = run_manifest("helm-prometheus-node-exporter.yaml");
    assert!(!log.contains("level=WARN"), "{log}");
    // `[0.0.0.0]:PORT` serves every interface; no filters beyond node_exporter's defaults.
    assert!(has(&body, KUBELET_MOUNT), "{body}");
    assert!(
        has(&body, "node_network_receive_bytes_total{device=\"veth-a\"}"),
        "{body}"
    );
    assert!(
        !has(&body, "mountpoint=\"/opt/image\""),
        "erofs is in the default fs-types-exclude"
    );
    assert!(
        has(&body, "node_scrape_collector_success{collector=\"hwmon\"}"),
        "{body}"
    );
}

#[test]
fn helm_chart_behind_kube_rbac_proxy() {
    let (body, _) = run_manifest("helm-prometheus-node-exporter-kube-rbac-proxy.yaml");
    assert!(has(&body, "node_exporter_build_info{"), "{body}");
}

#[test]
fn kube_prometheus_stack() {
    let (body, log) = run_manifest("kube-prometheus-stack.yaml");
    assert!(!log.contains("level=WARN"), "{log}");
    assert!(!has(&body, KUBELET_MOUNT), "{body}");
    assert!(
        !has(&body, "io.containerd.runtime"),
        "run/containerd is excluded: {body}"
    );
    assert!(
        !has(&body, "mountpoint=\"/opt/image\""),
        "erofs is excluded: {body}"
    );
    assert!(has(&body, "mountpoint=\"/srv\""), "{body}");
}
