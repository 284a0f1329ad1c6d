//! beacon-e2e: helpers for end-to-end tests that run Beacon's daemons against real servers.
//!
//! Every server a test needs (Prometheus, node_exporter, ...) comes from a Debian package that
//! `scripts/setup` installs; tests start their own instances on free loopback ports and stop
//! them on drop. A missing binary fails the test with the command that installs it: the suite
//! never skips silently.

pub mod expo;
pub mod loadgen;
pub mod pacing;
pub mod standin;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// A free TCP port on 127.0.0.1 (bound and released; the kernel does not reuse it at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// The path of a program from a Debian package, or a failure naming the package to install.
pub fn require_bin(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in
        std::env::split_paths(&path).chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
    {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} not found: install Debian package {package} (scripts/setup does it)");
}

/// Polls `f` until it returns `Some`, or fails after `timeout` with `what` in the message.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process that is killed when dropped; its output goes to a log file shown on failure.
pub struct Server {
    name: String,
    child: std::process::Child,
    log: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .field("pid", &self.child.id())
            .finish()
    }
}

impl Server {
    /// Starts `cmd` with stdout and stderr going to `<log_dir>/<name>.log`.
    pub fn start(name: &str, mut cmd: Command, log_dir: &Path) -> anyhow::Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let out =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("start {name}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
            _dir: None,
        })
    }

    /// Keeps `dir` alive as long as the server (its data directory).
    pub fn with_dir(mut self, dir: tempfile::TempDir) -> Self {
        self._dir = Some(dir);
        self
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails if the process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited with {status}; log:\n{}", self.name, self.log());
        }
        Ok(())
    }

    /// Waits until `url` answers 200, or fails with the server's log.
    pub fn wait_ready(&mut self, url: &str) -> anyhow::Result<()> {
        let client = http_client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.check_running()?;
            if let Ok(r) = client.get(url).send() {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} not ready at {url} after 30s; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Prometheus (Debian's `prometheus`) on a free loopback port, with `config` as its
/// `prometheus.yml` and its TSDB under `dir`; ready when `start` returns, stopped on drop.
pub struct Prometheus {
    pub server: Server,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Prometheus {
    pub fn start(dir: &Path, config: &str) -> anyhow::Result<Self> {
        let prometheus = require_bin("prometheus", "prometheus");
        let port = free_port();
        let path = dir.join("prometheus.yml");
        std::fs::write(&path, config).context("write prometheus.yml")?;
        let mut cmd = std::process::Command::new(prometheus);
        cmd.arg(format!("--config.file={}", path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let mut server = Server::start("prometheus", cmd, dir)?;
        let base = format!("http://127.0.0.1:{port}");
        server.wait_ready(&format!("{base}/-/ready"))?;
        Ok(Prometheus { server, base })
    }

    /// An instant query's result vector; an error names what Prometheus answered.
    pub fn query(&self, q: &str) -> Result<Vec<serde_json::Value>, String> {
        let r: serde_json::Value = http_client()
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", q)])
            .send()
            .and_then(|r| r.json())
            .map_err(|e| format!("query {q}: request failed: {e}"))?;
        if r["status"] != "success" {
            return Err(format!("query {q}: {}: {}", r["errorType"], r["error"]));
        }
        Ok(r["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// Every rule group's rules as `/api/v1/rules` lists them.
    pub fn rules(&self) -> Vec<serde_json::Value> {
        let api: serde_json::Value = http_client()
            .get(format!("{}/api/v1/rules", self.base))
            .send()
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("rules api: {e}"));
        api["data"]["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Prometheus's log so far.
    pub fn log(&self) -> String {
        self.server.log()
    }
}

/// A blocking HTTP client for tests, with timeouts.
pub fn http_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_gzip()
        .build()
        .unwrap_or_else(|e| panic!("build http client: {e}"))
}

/// GETs `url` and returns the body as text, failing on a non-2xx status.
pub fn get_text(url: &str) -> anyhow::Result<String> {
    let r = http_client()
        .get(url)
        .send()
        .with_context(|| format!("GET {url}"))?;
    let status = r.status();
    let body = r.text()?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {body}");
    }
    Ok(body)
}

/// beacon-agent running in-process on a loopback port, stopped on drop.
pub struct Agent {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("addr", &self.addr).finish()
    }
}

impl Agent {
    /// Starts the agent with `cfg` on 127.0.0.1 (the config's `listen` is ignored).
    pub fn start(cfg: beacon_agent::Config) -> anyhow::Result<Self> {
        let std_listener = TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => panic!("agent runtime: {e}"),
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => panic!("agent listener: {e}"),
                };
                let shutdown = async move {
                    let _ = stopped.await;
                };
                if let Err(e) = beacon_agent::run(cfg, listener, shutdown).await {
                    panic!("agent failed: {e:#}");
                }
            });
        });
        let agent = Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        };
        wait_for("agent /healthz", Duration::from_secs(10), || {
            get_text(&agent.url("/healthz")).ok()
        })?;
        Ok(agent)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A fresh temporary directory for a test's servers.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("beacon-e2e-")
        .tempdir()
        .unwrap_or_else(|e| panic!("create temp dir: {e}"))
}

/// The repository root (for fixtures and configs).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The path of workspace binary `bin` of package `package`, built now (debug profile) with the
/// cargo that runs the tests: another package's binaries are not built for this crate's tests.
pub fn workspace_bin(package: &str, bin: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--package", package, "--bin", bin])
        .current_dir(repo_root())
        .status()
        .unwrap_or_else(|e| panic!("run cargo build -p {package}: {e}"));
    assert!(
        status.success(),
        "cargo build -p {package} --bin {bin} failed"
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let path = target.join("debug").join(bin);
    assert!(path.is_file(), "{} not built", path.display());
    path
}

/// A child process killed (SIGKILL) on drop unless stopped first.
pub struct Proc(std::process::Child, PathBuf);

impl Proc {
    /// Starts `cmd` with stdout and stderr going to the file `log`.
    pub fn start(mut cmd: Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn");
        Proc(child, log)
    }

    /// The process's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }

    /// The process id (to send it a signal, e.g. SIGHUP to reload).
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGTERM, then wait for the exit (at most `within`).
    pub fn terminate(&mut self, within: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "process did not exit within {within:?}; log:\n{}",
            self.log()
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The agent's `collectors:` YAML (two-space indented under it) with every collector off except
/// `keep` and the textfile collector, which reads `textfile_dir`.
pub fn collectors_yaml(keep: &[&str], textfile_dir: &Path) -> String {
    let mut out = String::from("collectors:\n");
    for c in beacon_agent::collectors::names() {
        if c != "textfile" && !keep.contains(&c) {
            out.push_str(&format!("  {c}: {{enabled: false}}\n"));
        }
    }
    out.push_str(&format!(
        "  textfile: {{directory: {}}}\n",
        textfile_dir.display()
    ));
    out
}

/// A throwaway certificate authority made with `openssl` (Debian package openssl) in a
/// directory: `ca.pem`, a server certificate for 127.0.0.1 (`server.pem`, `server.key`) and a
/// client certificate (`client.pem`, `client.key`), valid for two days. The files are world
/// readable: a broker started as root may read them after dropping to its own user.
#[derive(Debug, Clone)]
pub struct TestCa {
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    /// The server certificate (PEM), subjectAltName IP:127.0.0.1 and DNS:localhost.
    pub server_cert: PathBuf,
    /// The server certificate's key.
    pub server_key: PathBuf,
    /// The client certificate (PEM), extendedKeyUsage clientAuth.
    pub client_cert: PathBuf,
    /// The client certificate's key.
    pub client_key: PathBuf,
}

impl TestCa {
    /// Creates the CA and both certificates in `dir` (which must exist).
    pub fn create(dir: &Path) -> TestCa {
        use std::os::unix::fs::PermissionsExt as _;
        let openssl = |args: &str| {
            let out = Command::new(require_bin("openssl", "openssl"))
                .args(args.split_whitespace())
                .current_dir(dir)
                .output()
                .unwrap_or_else(|e| panic!("run openssl: {e}"));
            assert!(
                out.status.success(),
                "openssl {args}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let key = "-newkey rsa:2048 -nodes";
        openssl(&format!(
            "req -x509 {key} -keyout ca.key -out ca.pem -days 2 -subj /CN=beacon-e2e-ca"
        ));
        for (name, ext) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
            ),
            ("client", "extendedKeyUsage=clientAuth\n"),
        ] {
            std::fs::write(dir.join(format!("{name}.ext")), ext)
                .unwrap_or_else(|e| panic!("write {name}.ext: {e}"));
            openssl(&format!(
                "req {key} -keyout {name}.key -out {name}.csr -subj /CN=beacon-e2e-{name}"
            ));
            openssl(&format!(
                "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {name}.pem -days 2 -extfile {name}.ext"
            ));
        }
        let ca = TestCa {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        };
        for p in [&ca.server_key, &ca.client_key] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644))
                .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
        }
        ca
    }
}

/// The value of the first line of the agent's `/metrics` on `port` that starts with `needle`
/// (series name and labels, then a space); NaN if there is none.
pub fn agent_metric(port: u16, needle: &str) -> f64 {
    let text = http_client()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(needle))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// Fails if consecutive timestamps of `ts` within `[from, to]`, or its edges, are further apart
/// than `max_gap` (any one unit throughout): a lost point leaves a gap.
pub fn assert_no_gaps(
    ts: &std::collections::BTreeSet<i64>,
    from: i64,
    to: i64,
    max_gap: i64,
    what: &str,
) {
    let inside: Vec<i64> = ts.range(from..=to).copied().collect();
    assert!(!inside.is_empty(), "{what}: no points in [{from}, {to}]");
    assert!(
        inside[0] - from <= max_gap && to - inside[inside.len() - 1] <= max_gap,
        "{what}: points missing at an edge of [{from}, {to}]: {inside:?}"
    );
    for w in inside.windows(2) {
        assert!(
            w[1] - w[0] <= max_gap,
            "{what}: gap of {} between {} and {}: a point was lost ({inside:?})",
            w[1] - w[0],
            w[0],
            w[1]
        );
    }
}
