//! `--web.config.file`: the web configuration file of prometheus/exporter-toolkit, which
//! node_exporter, Prometheus and Alertmanager share (`tls_server_config`,
//! `http_server_config`, `basic_auth_users`, `rate_limit`), with its key names, defaults and
//! validation (`web/tls_config.go`, `web/handler.go`).
//!
//! `load` parses and checks the whole file (the certificate, key and CA files included) and
//! reports every problem with its key path; `check-config` and the start run exactly it. Like
//! the toolkit, the running agent re-reads the file and the files it names when they change
//! (`Reloader`), so a rotated certificate or a new user needs no restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use beacon_common::secret::Secret;
use beacon_common::{io_reason, Problem};
use serde::Deserialize;

/// The file as written (exporter-toolkit's `Config`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct File {
    tls_server_config: TlsFile,
    http_server_config: HttpFile,
    rate_limit: RateLimitFile,
    basic_auth_users: BTreeMap<String, Secret>,
}

/// `tls_server_config` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TlsFile {
    cert: String,
    key: Option<Secret>,
    client_ca: String,
    cert_file: String,
    key_file: String,
    client_auth_type: String,
    client_ca_file: String,
    cipher_suites: Vec<String>,
    curve_preferences: Vec<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

/// `http_server_config` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct HttpFile {
    http2: Option<bool>,
    headers: BTreeMap<String, String>,
}

/// `rate_limit` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RateLimitFile {
    burst: u32,
    #[serde(deserialize_with = "go_duration")]
    interval: Duration,
}

/// exporter-toolkit's `client_auth_type` policies (Go's `tls.ClientAuthType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate is asked for.
    NoClientCert,
    /// A certificate is asked for but neither required nor verified.
    RequestClientCert,
    /// A certificate is required but not verified (`RequireClientCert` is its old spelling).
    RequireAnyClientCert,
    /// A certificate, if sent, must verify against the client CA.
    VerifyClientCertIfGiven,
    /// A certificate is required and must verify against the client CA.
    RequireAndVerifyClientCert,
}

/// A TLS protocol version as the toolkit names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

/// The TLS part, checked: what `tls.rs` turns into a rustls server config.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Certificate chain (PEM), from `cert_file` or inline `cert`.
    pub cert_pem: Vec<u8>,
    /// Private key (PEM), from `key_file` or inline `key`.
    pub key_pem: Secret,
    /// Client CA certificates (PEM), from `client_ca_file` or inline `client_ca`.
    pub client_ca_pem: Option<Vec<u8>>,
    pub client_auth: ClientAuth,
    /// Go cipher suite names for TLS 1.2 (TLS 1.3's are not configurable, as in Go).
    pub cipher_suites: Vec<String>,
    /// Go curve names, in preference order.
    pub curve_preferences: Vec<String>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    pub prefer_server_cipher_suites: bool,
    /// Client certificates must carry one of these subject alternative names.
    pub client_allowed_sans: Option<Vec<String>>,
}

/// A checked web config.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// `None` when no TLS key is set: plain HTTP, as in the toolkit.
    pub tls: Option<TlsSettings>,
    /// Headers added to every response.
    pub headers: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>,
    /// User name to bcrypt hash; empty means no basic auth.
    pub users: BTreeMap<String, Secret>,
    /// Token bucket: one request per `interval`, bursts of `burst`; `None` when `interval` is 0.
    pub rate_limit: Option<(Duration, u32)>,
}

/// Everything wrong with a web config file.
#[derive(Debug)]
pub struct WebConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl std::fmt::Display for WebConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid web config {}:", self.file.display())?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WebConfigError {}

/// The response headers the toolkit lets a file set, with their allowed values (any when
/// empty); the list is fixed there "to ensure consistency in the Prometheus ecosystem".
const EXTRA_HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

impl WebConfig {
    /// Reads and checks the file and every file it names; relative paths are relative to the
    /// file's directory, as in the toolkit.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let fail = |problems| WebConfigError {
            file: path.to_owned(),
            problems,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            fail(vec![Problem::new(
                "(file)",
                format!("read {}: {}", path.display(), io_reason(&e)),
            )])
        })?;
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            // Without the source snippet: the lines around an error may hold an inline key or
            // a password hash.
            serde_saphyr::from_str(&text).map_err(|e| {
                fail(vec![Problem::new(
                    "(yaml)",
                    e.without_snippet().to_string(),
                )])
            })?
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut problems = Vec::new();
        let cfg = check(file, dir, &mut problems);
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(fail(problems))
        }
    }
}

/// Validates a parsed file, pushing every problem; the result is meaningful only without any.
fn check(file: File, dir: &Path, problems: &mut Vec<Problem>) -> WebConfig {
    let mut bad = |path: &str, msg: String| problems.push(Problem::new(path, msg));

    let mut headers = Vec::new();
    for (name, value) in &file.http_server_config.headers {
        let path = format!("http_server_config.headers.{name}");
        let Some((canonical, allowed)) = EXTRA_HEADERS.iter().find(|(h, _)| h == name) else {
            bad(&path, "this HTTP header can not be configured".into());
            continue;
        };
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            bad(
                &path,
                format!("invalid value {value:?}, expected one of {allowed:?}"),
            );
            continue;
        }
        match axum::http::HeaderValue::from_str(value) {
            Ok(v) => headers.push((axum::http::HeaderName::from_static(lower(canonical)), v)),
            Err(_) => bad(&path, "not a valid header value".into()),
        }
    }

    for (user, hash) in &file.basic_auth_users {
        // bcrypt.Cost's check: the hash must parse (version, cost, salt and hash lengths).
        if hash.expose().parse::<bcrypt::HashParts>().is_err() {
            bad(
                &format!("basic_auth_users.{user}"),
                "not a bcrypt hash".into(),
            );
        }
    }

    let rate_limit = (!file.rate_limit.interval.is_zero())
        .then_some((file.rate_limit.interval, file.rate_limit.burst));

    let t = &file.tls_server_config;
    let client_auth = match t.client_auth_type.as_str() {
        "" | "NoClientCert" => ClientAuth::NoClientCert,
        "RequestClientCert" => ClientAuth::RequestClientCert,
        "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
        other => {
            bad(
                "tls_server_config.client_auth_type",
                format!("unknown value {other:?} (want NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"),
            );
            ClientAuth::NoClientCert
        }
    };
    let version = |key: &str,
                   v: &Option<String>,
                   default: TlsVersion,
                   bad: &mut dyn FnMut(&str, String)| {
        match v.as_deref() {
            None => default,
            Some("TLS13") => TlsVersion::Tls13,
            Some("TLS12") => TlsVersion::Tls12,
            Some("TLS11") => TlsVersion::Tls11,
            Some("TLS10") => TlsVersion::Tls10,
            Some(other) => {
                bad(
                    &format!("tls_server_config.{key}"),
                    format!("unknown TLS version {other:?} (want TLS10, TLS11, TLS12 or TLS13)"),
                );
                default
            }
        }
    };
    let min_version = version("min_version", &t.min_version, TlsVersion::Tls12, &mut bad);
    let max_version = version("max_version", &t.max_version, TlsVersion::Tls13, &mut bad);
    for (i, c) in t.cipher_suites.iter().enumerate() {
        if !crate::tls::GO_CIPHER_SUITES.contains(&c.as_str()) {
            bad(
                &format!("tls_server_config.cipher_suites[{i}]"),
                format!("unknown cipher {c:?}"),
            );
        }
    }
    for (i, c) in t.curve_preferences.iter().enumerate() {
        if !crate::tls::GO_CURVES.contains(&c.as_str()) {
            bad(
                &format!("tls_server_config.curve_preferences[{i}]"),
                format!("unknown curve {c:?} (want CurveP256, CurveP384, CurveP521 or X25519)"),
            );
        }
    }

    // The toolkit serves TLS as soon as any TLS key is set, and then needs both halves.
    let enabled = !(t.cert_file.is_empty()
        && t.cert.is_empty()
        && t.key_file.is_empty()
        && t.key.as_ref().is_none_or(|k| k.expose().is_empty())
        && t.client_ca_file.is_empty()
        && t.client_ca.is_empty()
        && t.client_auth_type.is_empty());
    let mut tls = None;
    if enabled {
        let read = |key: &str, name: &str, bad: &mut dyn FnMut(&str, String)| -> Option<Vec<u8>> {
            let p = dir.join(name);
            match std::fs::read(&p) {
                Ok(b) => Some(b),
                Err(e) => {
                    bad(
                        &format!("tls_server_config.{key}"),
                        format!("read {}: {}", p.display(), io_reason(&e)),
                    );
                    None
                }
            }
        };
        let cert = if !t.cert_file.is_empty() {
            read("cert_file", &t.cert_file, &mut bad)
        } else if !t.cert.is_empty() {
            Some(t.cert.clone().into_bytes())
        } else {
            bad(
                "tls_server_config",
                "missing one of cert or cert_file".into(),
            );
            None
        };
        let key = if !t.key_file.is_empty() {
            read("key_file", &t.key_file, &mut bad)
                .map(|k| Secret::new(String::from_utf8_lossy(&k).into_owned()))
        } else if let Some(k) = t.key.as_ref().filter(|k| !k.expose().is_empty()) {
            Some(k.clone())
        } else {
            bad("tls_server_config", "missing one of key or key_file".into());
            None
        };
        let client_ca = if !t.client_ca_file.is_empty() {
            read("client_ca_file", &t.client_ca_file, &mut bad)
        } else if !t.client_ca.is_empty() {
            Some(t.client_ca.clone().into_bytes())
        } else {
            None
        };
        if client_ca.is_some() && client_auth == ClientAuth::NoClientCert {
            bad(
                "tls_server_config.client_auth_type",
                "a client CA is configured without a client_auth_type that asks for client certificates".into(),
            );
        }
        if let (Some(cert_pem), Some(key_pem)) = (cert, key) {
            let settings = TlsSettings {
                cert_pem,
                key_pem,
                client_ca_pem: client_ca,
                client_auth,
                cipher_suites: t.cipher_suites.clone(),
                curve_preferences: t.curve_preferences.clone(),
                min_version,
                max_version,
                prefer_server_cipher_suites: t.prefer_server_cipher_suites.unwrap_or(true),
                client_allowed_sans: t.client_allowed_sans.clone(),
            };
            // Building the server config checks the key pair, the CA and the version range.
            if let Err(e) = crate::tls::server_config(&settings) {
                bad(e.path, e.message);
            } else {
                tls = Some(settings);
            }
        }
    }
    WebConfig {
        tls,
        headers,
        users: file.basic_auth_users,
        rate_limit,
    }
}

fn lower(canonical: &'static str) -> &'static str {
    match canonical {
        "Strict-Transport-Security" => "strict-transport-security",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-Frame-Options" => "x-frame-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "content-security-policy",
    }
}

/// A Go duration as prometheus/common writes it (`1s`, `500ms`, `1m30s`, `0`).
fn go_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(&s)
        .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
}

/// The web config of a running agent, re-read when the file or a file it names changes:
/// exporter-toolkit reads it afresh for every request and TLS handshake, so a rotated
/// certificate, a new user or a new header takes effect without a restart. Here a change is
/// noticed by comparing the files' metadata (`stat`, cheap) before each handshake and request.
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    /// The config file and the files it named when last read, and their stamps then.
    files: Vec<PathBuf>,
    stamp: Vec<Stamp>,
    current: Result<Arc<Current>, String>,
}

/// A loaded config and what TLS made of it.
#[derive(Debug)]
pub struct Current {
    pub config: WebConfig,
    /// The rustls config when `config.tls` is set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

type LoadResult = Result<Arc<Current>, WebConfigError>;

/// What identifies a file's version: modification and change times, size, inode.
type Stamp = Option<(std::time::SystemTime, u64, u64, i64, i64)>;

fn stamp(p: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(p).ok()?;
    Some((
        m.modified().ok()?,
        m.len(),
        m.ino(),
        m.ctime(),
        m.ctime_nsec(),
    ))
}

impl Reloader {
    /// Loads the file; an error here stops the agent from starting.
    pub fn new(path: &Path) -> Result<Reloader, WebConfigError> {
        let (files, stamp, current) = Self::load(path);
        let current = current?;
        Ok(Reloader {
            path: path.to_owned(),
            state: Mutex::new(Loaded {
                files,
                stamp,
                current: Ok(current),
            }),
        })
    }

    fn load(path: &Path) -> (Vec<PathBuf>, Vec<Stamp>, LoadResult) {
        // Stamp before reading, so a write during the load is seen again next time.
        let mut files = vec![path.to_owned()];
        files.extend(named_files(path));
        let stamps = files.iter().map(|p| stamp(p)).collect();
        let config = match WebConfig::load(path) {
            Ok(c) => c,
            Err(e) => return (files, stamps, Err(e)),
        };
        let tls = match &config.tls {
            Some(t) => match crate::tls::server_config(t) {
                Ok(sc) => Some(Arc::new(sc)),
                Err(e) => {
                    return (
                        files,
                        stamps,
                        Err(WebConfigError {
                            file: path.to_owned(),
                            problems: vec![Problem::new(e.path, e.message)],
                        }),
                    )
                }
            },
            None => None,
        };
        (files, stamps, Ok(Arc::new(Current { config, tls })))
    }

    /// The config as the files are now; an error (a half-written file) while it is broken, as
    /// the toolkit fails the request or handshake then.
    pub fn current(&self) -> Result<Arc<Current>, String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // A few stat(2) calls; the files are read again only when one changed (a changed
        // config file can name other files: its own stamp catches that).
        let changed = state
            .files
            .iter()
            .zip(&state.stamp)
            .any(|(p, s)| stamp(p) != *s);
        if changed {
            let (files, stamp, loaded) = Self::load(&self.path);
            match &loaded {
                Ok(_) => tracing::info!(file = %self.path.display(), "web config reloaded"),
                Err(e) => tracing::error!(error = %e, "web config reload failed"),
            }
            state.files = files;
            state.stamp = stamp;
            state.current = loaded.map_err(|e| e.to_string());
        }
        state.current.clone()
    }
}

/// The files a web config names (certificate, key, client CA), from a quick re-parse; empty
/// when the file does not parse (its own stamp then tells a fix apart).
fn named_files(path: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(file) = serde_saphyr::from_str::<File>(&text) else {
        return Vec::new();
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let t = file.tls_server_config;
    [t.cert_file, t.key_file, t.client_ca_file]
        .into_iter()
        .filter(|f| !f.is_empty())
        .map(|f| dir.join(f))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<WebConfig, WebConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("web.yml");
        std::fs::write(&p, yaml).expect("write");
        WebConfig::load(&p)
    }

    fn paths(e: &WebConfigError) -> Vec<&str> {
        e.problems.iter().map(|p| p.path.as_str()).collect()
    }

    #[test]
    fn empty_file_is_plain_http_without_auth() {
        let c = load("").expect("empty");
        assert!(c.tls.is_none() && c.users.is_empty() && c.headers.is_empty());
        assert!(c.rate_limit.is_none());
    }

    #[test]
    fn every_problem_has_its_path() {
        let e = load(
            "tls_server_config:\n  client_auth_type: Foo\n  min_version: TLS14\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n  curve_preferences: [P256]\nhttp_server_config:\n  headers:\n    X-Frame-Options: allow\n    Server: beacon\nbasic_auth_users:\n  alice: plaintext\n",
        )
        .expect_err("bad");
        assert_eq!(
            paths(&e),
            [
                "http_server_config.headers.Server",
                "http_server_config.headers.X-Frame-Options",
                "basic_auth_users.alice",
                "tls_server_config.client_auth_type",
                "tls_server_config.min_version",
                "tls_server_config.cipher_suites[0]",
                "tls_server_config.curve_preferences[0]",
                "tls_server_config",
                "tls_server_config",
            ],
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("tls_server_config.client_auth_type: unknown value \"Foo\""),
            "{msg}"
        );
        assert!(!msg.contains("plaintext"), "a password hash leaked: {msg}");
    }

    #[test]
    fn unknown_keys_are_errors_and_secrets_stay_out() {
        let e = load("tls_server_config:\n  key: SECRETKEY\n  bogus: 1\n").expect_err("bad");
        let msg = e.to_string();
        assert!(msg.contains("bogus"), "{msg}");
        assert!(!msg.contains("SECRETKEY"), "{msg}");
    }

    #[test]
    fn missing_files_are_named() {
        let e = load("tls_server_config:\n  cert_file: nope.pem\n  key_file: nope.key\n")
            .expect_err("bad");
        assert_eq!(
            paths(&e),
            ["tls_server_config.cert_file", "tls_server_config.key_file"]
        );
        assert!(
            e.to_string()
                .contains("nope.pem: no such file or directory"),
            "{e}"
        );
    }

    #[test]
    fn users_headers_and_rate_limit() {
        let c = load(
            "basic_auth_users:\n  alice: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\nrate_limit:\n  interval: 1s\n  burst: 5\n",
        )
        .expect("good");
        assert_eq!(c.users.len(), 1);
        assert_eq!(format!("{:?}", c.users), "{\"alice\": <redacted>}");
        assert_eq!(c.headers.len(), 2);
        assert_eq!(c.rate_limit, Some((Duration::from_secs(1), 5)));
    }

    #[test]
    fn reloader_follows_the_file_and_reports_a_broken_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("web.yml");
        let hash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
        std::fs::write(&p, format!("basic_auth_users:\n  alice: {hash}\n")).expect("write");
        let r = Reloader::new(&p).expect("load");
        let users = |r: &Reloader| -> Vec<String> {
            r.current()
                .expect("current")
                .config
                .users
                .keys()
                .cloned()
                .collect()
        };
        assert_eq!(users(&r), ["alice"]);
        // A different size is a different stamp, whatever the clock's resolution.
        std::fs::write(
            &p,
            format!("basic_auth_users:\n  bob: {hash}\n  carol: {hash}\n"),
        )
        .expect("write");
        assert_eq!(users(&r), ["bob", "carol"]);
        std::fs::write(&p, "basic_auth_users: [").expect("write");
        let e = r.current().expect_err("broken file");
        assert!(e.contains("(yaml)"), "{e}");
        std::fs::write(&p, format!("basic_auth_users:\n  dave: {hash}\n")).expect("write");
        assert_eq!(users(&r), ["dave"]);
    }
}
