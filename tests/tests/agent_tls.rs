//! beacon-agent's `--web.config.file` against real clients: a real Prometheus (Debian's
//! `prometheus`) scrapes the agent binary over TLS with a client certificate from a test CA and
//! basic auth; the same scrape with a wrong password, without a client certificate, or over
//! plain HTTP is refused (asserted from Prometheus's target health and with a direct client).
//! A certificate replaced on disk is served from the next connection on, without a restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use beacon_e2e::{free_port, require_bin, tempdir, wait_for, workspace_bin, Server, TestCa};

const USER: &str = "prometheus";
const PASSWORD: &str = "s3cret-scrape";

/// A bcrypt hash of `password`; cost 4 (bcrypt's least) keeps debug builds fast, and the agent
/// reads the cost from the hash like any other.
fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).expect("bcrypt hash")
}

/// Starts the agent binary on `port` with the web config `web_yml` and a few cheap collectors.
fn start_agent(dir: &Path, port: u16, web_yml: &Path, extra: &[&str]) -> Server {
    let textfile = dir.join("textfile");
    std::fs::create_dir_all(&textfile).expect("textfile dir");
    let cfg = dir.join("agent.yaml");
    std::fs::write(
        &cfg,
        beacon_e2e::collectors_yaml(&["loadavg", "meminfo", "cpu"], &textfile),
    )
    .expect("write agent.yaml");
    let mut cmd = Command::new(workspace_bin("beacon-agent", "beacon-agent"));
    cmd.arg("--config")
        .arg(&cfg)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--web.config.file={}", web_yml.display()))
        .args(extra);
    Server::start("beacon-agent", cmd, dir).expect("start agent")
}

/// A client trusting `ca`, with the client certificate when `identity` is set.
fn client(ca: &Path, identity: Option<(&Path, &Path)>) -> reqwest::blocking::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).expect("read CA"))
        .expect("CA certificate");
    let mut b = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .no_gzip();
    if let Some((cert, key)) = identity {
        let mut pem = std::fs::read(cert).expect("read client cert");
        pem.extend(std::fs::read(key).expect("read client key"));
        b = b.identity(reqwest::Identity::from_pem(&pem).expect("client identity"));
    }
    b.build().expect("client")
}

fn web_config(dir: &Path, ca: &TestCa) -> PathBuf {
    let path = dir.join("web.yml");
    std::fs::write(
        &path,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_ca_file: {}\n  client_auth_type: RequireAndVerifyClientCert\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  {USER}: {}\n  other: {}\n",
            ca.server_cert.display(),
            ca.server_key.display(),
            ca.ca.display(),
            hash(PASSWORD),
            hash("other-password"),
        ),
    )
    .expect("write web.yml");
    path
}

fn targets(base: &str) -> Vec<serde_json::Value> {
    let r: serde_json::Value = beacon_e2e::http_client()
        .get(format!("{base}/api/v1/targets"))
        .send()
        .and_then(|r| r.json())
        .unwrap_or_default();
    r["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn prometheus_scrapes_over_mutual_tls_with_basic_auth_and_the_rest_is_refused() {
    let prometheus = require_bin("prometheus", "prometheus");
    let dir = tempdir();
    let ca = TestCa::create(dir.path());
    let web_yml = web_config(dir.path(), &ca);
    let port = free_port();
    let mut agent = start_agent(
        dir.path(),
        port,
        &web_yml,
        &["--web.telemetry-path=/node/metrics"],
    );
    let good = client(&ca.ca, Some((&ca.client_cert, &ca.client_key)));
    let url = format!("https://127.0.0.1:{port}/node/metrics");
    wait_for("the agent over TLS", Duration::from_secs(30), || {
        agent.check_running().ok()?;
        let r = good
            .get(&url)
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .ok()?;
        r.status().is_success().then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\nagent log:\n{}", agent.log()));

    // Direct client: the right credentials get metrics and the configured header.
    let r = good
        .get(&url)
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .expect("scrape");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "deny");
    assert!(r.text().expect("body").contains("\nnode_load1 "));
    // A wrong password, another user's password, an unknown user and no credentials: 401 with
    // the challenge (and the configured header: the toolkit sets headers before auth).
    for (user, pass) in [
        (Some(USER), "wrong"),
        (Some(USER), "other-password"),
        (Some("nobody"), PASSWORD),
        (None, ""),
    ] {
        let mut req = good.get(&url);
        if let Some(u) = user {
            req = req.basic_auth(u, Some(pass));
        }
        let r = req.send().expect("request");
        assert_eq!(r.status(), 401, "{user:?}:{pass}");
        assert_eq!(r.headers()["www-authenticate"], "Basic");
        assert_eq!(r.headers()["x-frame-options"], "deny");
        assert_eq!(r.text().expect("body"), "Unauthorized\n");
    }
    // Basic auth guards every path, as in the toolkit.
    let r = good
        .get(format!("https://127.0.0.1:{port}/"))
        .send()
        .expect("landing");
    assert_eq!(r.status(), 401);
    // Without a client certificate the handshake is refused: no answer at all.
    let no_cert = client(&ca.ca, None);
    let refused = no_cert.get(&url).basic_auth(USER, Some(PASSWORD)).send();
    assert!(
        refused.is_err(),
        "served without a client certificate: {refused:?}"
    );
    // A client certificate from another CA is refused too.
    let other_dir = dir.path().join("other-ca");
    std::fs::create_dir_all(&other_dir).expect("other CA dir");
    let other = TestCa::create(&other_dir);
    let foreign = client(&ca.ca, Some((&other.client_cert, &other.client_key)));
    let refused = foreign.get(&url).basic_auth(USER, Some(PASSWORD)).send();
    assert!(
        refused.is_err(),
        "served a foreign client certificate: {refused:?}"
    );
    // Plain HTTP on the TLS port gets no metrics, but Go's hint.
    let plain = beacon_e2e::http_client()
        .get(format!("http://127.0.0.1:{port}/node/metrics"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .expect("plain HTTP answered");
    assert_eq!(plain.status(), 400);
    assert_eq!(
        plain.text().expect("body"),
        "Client sent an HTTP request to an HTTPS server.\n"
    );
    // The metrics path moved: the default one is gone.
    let r = good
        .get(format!("https://127.0.0.1:{port}/metrics"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .expect("old path");
    assert_eq!(r.status(), 404);

    // A real Prometheus: one job as an operator configures it, and one per refusal.
    let prom_port = free_port();
    let job = |name: &str, scheme: &str, password: &str, cert: bool| {
        let certs = if cert {
            format!(
                ", cert_file: {}, key_file: {}",
                ca.client_cert.display(),
                ca.client_key.display()
            )
        } else {
            String::new()
        };
        format!(
            "  - job_name: {name}\n    scheme: {scheme}\n    metrics_path: /node/metrics\n    tls_config: {{ca_file: {}{certs}}}\n    basic_auth: {{username: {USER}, password: {password}}}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
            ca.ca.display()
        )
    };
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}{}{}",
            job("good", "https", PASSWORD, true),
            job("wrong-password", "https", "wrong", true),
            job("no-client-cert", "https", PASSWORD, false),
            job("plain-http", "http", PASSWORD, true),
        ),
    )
    .expect("write prometheus.yml");
    let mut cmd = Command::new(prometheus);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"));
    let mut prom = Server::start("prometheus", cmd, dir.path()).expect("start prometheus");
    let base = format!("http://127.0.0.1:{prom_port}");
    prom.wait_ready(&format!("{base}/-/ready"))
        .expect("prometheus ready");

    // Every job has been scraped (health is "unknown" until then).
    let health = wait_for("every job scraped", Duration::from_secs(30), || {
        let t = targets(&base);
        let scraped: Vec<(String, String, String)> = t
            .iter()
            .filter(|t| t["health"] != "unknown")
            .map(|t| {
                (
                    t["labels"]["job"].as_str().unwrap_or("").to_owned(),
                    t["health"].as_str().unwrap_or("").to_owned(),
                    t["lastError"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        (scraped.len() == 4).then_some(scraped)
    })
    .unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{}", prom.log()));
    for (job, h, err) in &health {
        match job.as_str() {
            "good" => assert_eq!(h, "up", "good job: {err}"),
            "wrong-password" => {
                assert_eq!(h, "down");
                assert!(err.contains("401"), "wrong-password: {err}");
            }
            "no-client-cert" => assert_eq!(h, "down", "{job}: {err}"),
            "plain-http" => {
                assert_eq!(h, "down");
                assert!(err.contains("400"), "plain-http: {err}");
            }
            other => panic!("unexpected job {other}"),
        }
    }
    // And the good job's samples are in the TSDB.
    let r: serde_json::Value = beacon_e2e::http_client()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", "node_load1{job=\"good\"}")])
        .send()
        .and_then(|r| r.json())
        .expect("query");
    assert_eq!(r["data"]["result"].as_array().map(Vec::len), Some(1), "{r}");
    agent.check_running().expect("agent still running");
}

#[test]
fn a_replaced_certificate_is_served_without_a_restart() {
    let dir = tempdir();
    let first_dir = dir.path().join("first");
    let second_dir = dir.path().join("second");
    for d in [&first_dir, &second_dir] {
        std::fs::create_dir_all(d).expect("CA dir");
    }
    let first = TestCa::create(&first_dir);
    let second = TestCa::create(&second_dir);
    // The served files start as the first CA's server certificate and key.
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::copy(&first.server_cert, &cert).expect("copy cert");
    std::fs::copy(&first.server_key, &key).expect("copy key");
    let web_yml = dir.path().join("web.yml");
    // Relative paths are relative to the web config's directory, as in the toolkit.
    std::fs::write(
        &web_yml,
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n",
    )
    .expect("write web.yml");
    let port = free_port();
    let mut agent = start_agent(dir.path(), port, &web_yml, &[]);
    let url = format!("https://127.0.0.1:{port}/metrics");
    let trusts_first = client(&first.ca, None);
    let trusts_second = client(&second.ca, None);
    wait_for("the agent over TLS", Duration::from_secs(30), || {
        agent.check_running().ok()?;
        trusts_first
            .get(&url)
            .send()
            .ok()?
            .status()
            .is_success()
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\nagent log:\n{}", agent.log()));
    assert!(
        trusts_second.get(&url).send().is_err(),
        "second CA trusted too early"
    );

    // Rotate as cert-manager does: a new key pair written in place.
    std::fs::copy(&second.server_key, &key).expect("rotate key");
    std::fs::copy(&second.server_cert, &cert).expect("rotate cert");
    wait_for("the new certificate", Duration::from_secs(10), || {
        let fresh = client(&second.ca, None);
        fresh
            .get(&url)
            .send()
            .ok()?
            .status()
            .is_success()
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\nagent log:\n{}", agent.log()));
    let stale = client(&first.ca, None);
    assert!(
        stale.get(&url).send().is_err(),
        "old certificate still served"
    );
    agent.check_running().expect("agent still running");
}

#[test]
fn client_allowed_sans_admits_only_certificates_naming_them() {
    let dir = tempdir();
    let ca = TestCa::create(dir.path());
    // A second client certificate from the same CA, with a DNS subject alternative name.
    let openssl = |args: &str| {
        let out = Command::new(require_bin("openssl", "openssl"))
            .args(args.split_whitespace())
            .current_dir(dir.path())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.path().join("named.ext"),
        "subjectAltName=DNS:scraper.example\nextendedKeyUsage=clientAuth\n",
    )
    .expect("write named.ext");
    openssl("req -newkey rsa:2048 -nodes -keyout named.key -out named.csr -subj /CN=named");
    openssl("x509 -req -in named.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out named.pem -days 2 -extfile named.ext");
    let web_yml = dir.path().join("web.yml");
    std::fs::write(
        &web_yml,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_ca_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  client_allowed_sans: [scraper.example]\n",
            ca.server_cert.display(),
            ca.server_key.display(),
            ca.ca.display(),
        ),
    )
    .expect("write web.yml");
    let port = free_port();
    let mut agent = start_agent(dir.path(), port, &web_yml, &[]);
    let url = format!("https://127.0.0.1:{port}/metrics");
    let named = client(
        &ca.ca,
        Some((&dir.path().join("named.pem"), &dir.path().join("named.key"))),
    );
    wait_for("the agent over TLS", Duration::from_secs(30), || {
        agent.check_running().ok()?;
        named
            .get(&url)
            .send()
            .ok()?
            .status()
            .is_success()
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\nagent log:\n{}", agent.log()));
    // Same CA, but no allowed name: refused.
    let unnamed = client(&ca.ca, Some((&ca.client_cert, &ca.client_key)));
    let refused = unnamed.get(&url).send();
    assert!(
        refused.is_err(),
        "served a certificate without an allowed SAN: {refused:?}"
    );
}
