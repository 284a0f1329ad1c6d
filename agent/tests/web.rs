//! The agent binary's `--web.*` flags over plain HTTP: every `--web.listen-address` form Go
//! accepts (repeated, each served), `--web.systemd-socket`, `--web.telemetry-path`,
//! `--web.disable-exporter-metrics`, and a bad `--web.config.file` refused at start and by
//! `check-config` with its key path.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_beacon-agent"))
}

/// The agent process, killed on drop.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(cmd: &mut Command) -> Agent {
    Agent(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start beacon-agent"),
    )
}

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One HTTP/1.0 GET; the status code and the whole answer (head and body).
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    get_with(addr, path, "")
}

/// `get` with extra header lines (each ending in `\r\n`).
fn get_with(addr: SocketAddr, path: &str, headers: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: agent\r\n{headers}\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {out:?}")))?;
    Ok((status, out))
}

/// Waits until `addr` answers `/healthz`.
fn wait_up(agent: &mut Agent, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = agent.0.try_wait() {
            panic!("agent exited with {status}");
        }
        if matches!(get(addr, "/healthz"), Ok((200, _))) {
            return;
        }
        assert!(Instant::now() < deadline, "agent not answering on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[test]
fn every_listen_address_form_is_served() {
    let ports: Vec<u16> = (0..7).map(|_| free_port()).collect();
    let forms = [
        format!(":{}", ports[0]),
        format!("0.0.0.0:{}", ports[1]),
        format!("[::]:{}", ports[2]),
        // The prometheus-node-exporter Helm chart's `[$(HOST_IP)]:9100`.
        format!("[0.0.0.0]:{}", ports[3]),
        format!("localhost:{}", ports[4]),
        format!("127.0.0.1:{}", ports[5]),
        format!("[127.0.0.1]:{}", ports[6]),
    ];
    let mut cmd = bin();
    for f in &forms {
        cmd.arg(format!("--web.listen-address={f}"));
    }
    let mut agent = start(&mut cmd);
    for (form, port) in forms.iter().zip(&ports) {
        let v4 = SocketAddr::from(([127, 0, 0, 1], *port));
        wait_up(&mut agent, v4);
        let (status, body) = get(v4, "/metrics").expect(form);
        assert_eq!(status, 200, "{form}");
        assert!(body.contains("\nnode_scrape_collector_success{"), "{form}");
    }
    // The unspecified forms listen on IPv6 too, on the same socket, as Go does.
    if ipv6_loopback() {
        for port in &ports[..4] {
            let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, *port));
            assert!(matches!(get(v6, "/healthz"), Ok((200, _))), "[::1]:{port}");
        }
    }
}

#[test]
fn listen_problems_are_reported_per_address() {
    let out = bin()
        .args([
            "check-config",
            "--web.listen-address=:9100",
            "--web.listen-address=localhost",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("listen[1]: invalid listen address \"localhost\": missing port"),
        "{stderr}"
    );
}

#[test]
fn systemd_socket_activation_serves_the_passed_socket() {
    use std::os::fd::AsRawFd as _;
    use std::os::unix::process::CommandExt as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fd = listener.as_raw_fd();
    // systemd's protocol: the socket as descriptor 3, LISTEN_FDS=1 and LISTEN_PID naming the
    // process; the shell sets the pid it keeps across exec.
    let mut cmd = Command::new("/bin/sh");
    cmd.args([
        "-c",
        "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --web.systemd-socket --web.listen-address=127.0.0.1:1",
        env!("CARGO_BIN_EXE_beacon-agent"),
    ]);
    // SAFETY: dup2 and fcntl are async-signal-safe and touch only the child's descriptors.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself keeps close-on-exec, so clear it explicitly for fd 3.
            if (fd != 3 && libc::dup2(fd, 3) < 0) || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut agent = start(&mut cmd);
    drop(listener);
    wait_up(&mut agent, addr);
    let (status, body) = get(addr, "/metrics").expect("scrape");
    assert_eq!(status, 200);
    assert!(body.contains("\nnode_scrape_collector_success{"));
}

#[test]
fn telemetry_path_moves_the_metrics_and_the_landing_page_follows() {
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut agent = start(bin().args([
        &format!("--web.listen-address=127.0.0.1:{port}"),
        "--web.telemetry-path=/node/metrics",
    ]));
    wait_up(&mut agent, addr);
    let (status, body) = get(addr, "/node/metrics").expect("scrape");
    assert_eq!(status, 200);
    assert!(body.contains("\nnode_scrape_collector_success{"));
    assert_eq!(get(addr, "/metrics").expect("old path").0, 404);
    let (status, page) = get(addr, "/").expect("landing");
    assert_eq!(status, 200);
    assert!(page.contains("href=\"/node/metrics\""), "{page}");
}

#[test]
fn disable_exporter_metrics_drops_process_metrics_only() {
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut with = start(bin().args([
        &format!("--web.listen-address=127.0.0.1:{port}"),
        "--web.disable-exporter-metrics=false",
    ]));
    wait_up(&mut with, addr);
    let (_, full) = get(addr, "/metrics").expect("scrape");
    assert!(full.contains("\nprocess_resident_memory_bytes "), "control");
    drop(with);

    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut without = start(bin().args([
        &format!("--web.listen-address=127.0.0.1:{port}"),
        "--web.disable-exporter-metrics",
    ]));
    wait_up(&mut without, addr);
    let (status, body) = get(addr, "/metrics").expect("scrape");
    assert_eq!(status, 200);
    assert!(!body.contains("process_"), "process_* still served");
    // What node_exporter keeps: the collectors' own metrics and build info.
    assert!(body.contains("\nnode_scrape_collector_success{"));
    assert!(body.contains("\nbeacon_agent_build_info{"));
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn a_bad_web_config_is_refused_with_its_path_and_keeps_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let web = write(
        dir.path(),
        "web.yml",
        "tls_server_config:\n  cert_file: missing.pem\n  key: INLINE-KEY-MATERIAL\n  client_auth_type: Foo\nbasic_auth_users:\n  alice: not-a-hash-SECRET\n",
    );
    let expect = [
        format!("invalid web config {}:", web.display()),
        "basic_auth_users.alice: not a bcrypt hash".to_owned(),
        "tls_server_config.client_auth_type: unknown value \"Foo\"".to_owned(),
        "tls_server_config.cert_file: read ".to_owned(),
    ];
    let port = free_port();
    for args in [
        vec!["check-config".to_owned()],
        vec![format!("--web.listen-address=127.0.0.1:{port}")],
    ] {
        let out = bin()
            .args(&args)
            .arg(format!("--web.config.file={}", web.display()))
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        for e in &expect {
            assert!(
                stderr.contains(e.as_str()),
                "{args:?}: missing {e:?} in {stderr}"
            );
        }
        assert!(
            !stderr.contains("SECRET") && !stderr.contains("INLINE-KEY"),
            "{stderr}"
        );
    }
    // A YAML error does not quote the file either.
    let web = write(
        dir.path(),
        "syntax.yml",
        "basic_auth_users:\n  alice: [SECRET\n",
    );
    let out = bin()
        .arg("check-config")
        .arg(format!("--web.config.file={}", web.display()))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("SECRET"), "{stderr}");
}

#[test]
fn collect_and_exclude_query_parameters_filter_collectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write(
        dir.path(),
        "agent.yaml",
        "collectors:\n  hwmon: {enabled: false}\n",
    );
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut agent = start(bin().args([
        "--config",
        &cfg.display().to_string(),
        &format!("--web.listen-address=127.0.0.1:{port}"),
    ]));
    wait_up(&mut agent, addr);
    let successes = |body: &str| -> Vec<String> {
        body.lines()
            .filter_map(|l| l.strip_prefix("node_scrape_collector_success{collector=\""))
            .filter_map(|l| l.split('"').next())
            .map(str::to_owned)
            .collect()
    };

    let (status, body) =
        get(addr, "/metrics?collect[]=loadavg&collect%5B%5D=stat").expect("collect");
    assert_eq!(status, 200);
    assert_eq!(successes(&body), ["loadavg", "stat"]);
    assert!(body.contains("\nnode_load1 ") && body.contains("\nnode_boot_time_seconds "));
    assert!(!body.contains("node_cpu_seconds_total"));
    // What is not a collector's stays: the agent's own metrics.
    assert!(body.contains("\nprocess_resident_memory_bytes "));

    let (status, body) = get(addr, "/metrics?exclude[]=cpu").expect("exclude");
    assert_eq!(status, 200);
    let kept = successes(&body);
    assert!(
        !kept.contains(&"cpu".to_owned()) && kept.contains(&"loadavg".to_owned()),
        "{kept:?}"
    );
    assert!(!body.contains("node_cpu_seconds_total"));

    for (query, answer) in [
        (
            "collect[]=cpu&exclude[]=stat",
            "Combined collect and exclude queries are not allowed.",
        ),
        (
            "collect[]=nope",
            "Couldn't create filtered metrics handler: couldn't create collector: missing collector: nope",
        ),
        (
            "collect[]=hwmon",
            "Couldn't create filtered metrics handler: couldn't create collector: disabled collector: hwmon",
        ),
    ] {
        let (status, body) = get(addr, &format!("/metrics?{query}")).expect(query);
        assert_eq!(status, 400, "{query}");
        assert!(body.ends_with(answer), "{query}: {body}");
    }
    // Other query parameters change nothing.
    let (status, body) = get(addr, "/metrics?foo=bar").expect("unfiltered");
    assert_eq!(status, 200);
    assert!(successes(&body).len() > 5);
}

#[test]
fn basic_auth_headers_and_rate_limit_over_plain_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = bcrypt::hash("pw", 4).expect("hash");
    let web = write(
        dir.path(),
        "web.yml",
        &format!(
            "basic_auth_users:\n  alice: {hash}\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
        ),
    );
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut agent = start(bin().args([
        format!("--web.listen-address=127.0.0.1:{port}"),
        format!("--web.config.file={}", web.display()),
    ]));
    // "alice:pw" and "alice:wrong"
    let good = "Authorization: Basic YWxpY2U6cHc=\r\n";
    let bad = "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n";
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(get_with(addr, "/healthz", good), Ok((200, _))) {
        assert!(agent.0.try_wait().expect("wait").is_none(), "agent exited");
        assert!(Instant::now() < deadline, "agent not answering");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = get_with(addr, "/metrics", good).expect("scrape");
    assert_eq!(status, 200);
    assert!(body.contains("\nnode_scrape_collector_success{"));
    assert!(body
        .to_ascii_lowercase()
        .contains("\r\nx-content-type-options: nosniff\r\n"));
    for headers in [bad, ""] {
        let (status, answer) = get_with(addr, "/metrics", headers).expect("refused");
        assert_eq!(status, 401, "{headers}");
        assert!(answer
            .to_ascii_lowercase()
            .contains("\r\nwww-authenticate: basic\r\n"));
        assert!(answer.ends_with("\r\n\r\nUnauthorized\n"), "{answer}");
    }
    // A new user in the file works without a restart.
    let hash2 = bcrypt::hash("pw2", 4).expect("hash");
    std::fs::write(
        &web,
        format!("basic_auth_users:\n  alice: {hash}\n  bob: {hash2}\n"),
    )
    .expect("rewrite web.yml");
    // "bob:pw2"
    let (status, _) =
        get_with(addr, "/metrics", "Authorization: Basic Ym9iOnB3Mg==\r\n").expect("new user");
    assert_eq!(status, 200);
    drop(agent);

    // rate_limit: a full bucket of 3, refilled once an hour; the wait for the start takes one.
    let web = write(
        dir.path(),
        "rate.yml",
        "rate_limit:\n  interval: 1h\n  burst: 3\n",
    );
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut agent = start(bin().args([
        format!("--web.listen-address=127.0.0.1:{port}"),
        format!("--web.config.file={}", web.display()),
    ]));
    wait_up(&mut agent, addr);
    assert_eq!(get(addr, "/healthz").expect("2nd").0, 200);
    assert_eq!(get(addr, "/healthz").expect("3rd").0, 200);
    let (status, answer) = get(addr, "/healthz").expect("4th");
    assert_eq!(status, 429);
    assert!(answer.ends_with("Too Many Requests\n"), "{answer}");
}
