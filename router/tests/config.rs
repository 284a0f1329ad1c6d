//! Router config end to end: every bad-config fixture is rejected with the problems its
//! `# expect:` lines name, `config/router.example.yaml` validates and loads (with its secret
//! files created in a temp dir), routes the shared Sentry fixtures where its comments say, and
//! secret loading reports missing files and `${ENV}` references by path, never by content.

mod inbound_fixtures;

use std::path::{Path, PathBuf};

use beacon_router::config::{Config, ConfigError, Integration, Loaded, SlackTarget};
use beacon_router::model::Group;
use beacon_router::sources::sentry;
use inbound_fixtures as fx;

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/router.example.yaml")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A fresh directory for one test (tests run in parallel, so each has its own).
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "beacon-router-config-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir
}

/// The example with `/etc/beacon-router/` pointed at `dir`, and every `*_file` it names
/// created there holding `secret-<file name>`, except those in `skip`.
fn example_in(dir: &Path, skip: &[&str]) -> PathBuf {
    let text = read(&example_path()).replace("/etc/beacon-router/", &format!("{}/", dir.display()));
    let mut referenced = 0;
    for line in text.lines() {
        let Some((key, value)) = line.trim().trim_start_matches("- ").split_once(": ") else {
            continue;
        };
        if !key.ends_with("_file") {
            continue;
        }
        let path = PathBuf::from(value.trim());
        assert!(
            path.starts_with(dir),
            "example secret outside /etc/beacon-router: {value}"
        );
        referenced += 1;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        // URL files hold a URL (they are checked as one); its secret part is what must never
        // show up in a message.
        let content = if key.contains("url") {
            format!("https://hooks.example.test/services/secret-{name}\n")
        } else {
            format!("secret-{name}\n")
        };
        if !skip.contains(&name) {
            std::fs::write(&path, content)
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
    }
    assert!(
        referenced >= 10,
        "expected the example's secret files, found {referenced}"
    );
    let path = dir.join("router.yaml");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

fn load(path: &Path) -> Loaded {
    Config::load(path).unwrap_or_else(|e| panic!("{e}"))
}

fn load_err(path: &Path) -> ConfigError {
    match Config::load(path) {
        Ok(_) => panic!("{} should not load", path.display()),
        Err(e) => e,
    }
}

#[test]
fn every_bad_config_fixture_is_rejected_with_its_paths() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-config");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("dir entry: {e}")).path();
        let text = read(&path);
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no '# expect:' line",
            path.display()
        );
        // Validation only: no fixture's secret file exists, and none needs to.
        let err = match Config::load_parsed(&path) {
            Ok(_) => panic!("{} should fail validation", path.display()),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(&path.display().to_string()),
            "error names the file: {err}"
        );
        for e in expected {
            assert!(
                err.contains(e),
                "{}: expected {e:?} in:\n{err}",
                path.display()
            );
        }
        n += 1;
    }
    assert!(n >= 25, "expected the bad-config fixtures, found {n}");
}

#[test]
fn example_validates_as_shipped() {
    let cfg = Config::load_parsed(&example_path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.receivers.len(), 5);
}

#[test]
fn example_loads_with_its_secrets() {
    let dir = temp_dir("example");
    let loaded = load(&example_in(&dir, &[]));
    assert_eq!(loaded.listen.to_string(), "0.0.0.0:9094");
    assert_eq!(loaded.max_body_bytes, 1 << 20);
    assert_eq!(
        loaded
            .alertmanager_auth
            .bearer_token
            .as_ref()
            .map(|s| s.expose()),
        Some("secret-alertmanager-token")
    );
    assert_eq!(
        loaded
            .alertmanager_auth
            .basic_auth
            .as_ref()
            .map(|b| (b.username.as_str(), b.password.expose())),
        Some(("alertmanager", "secret-alertmanager-password"))
    );
    assert_eq!(
        loaded.sentry_client_secret.as_ref().map(|s| s.expose()),
        Some("secret-sentry-client-secret")
    );
    assert!(loaded.sentry_legacy_token.is_some());

    let names: Vec<&str> = loaded.receivers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["console", "blackhole", "payments", "lending", "oncall"]
    );
    let blackhole = loaded.receiver("blackhole").map(|r| r.integrations.len());
    assert_eq!(blackhole, Some(0));
    let payments = loaded
        .receiver("payments")
        .map(|r| r.integrations.as_slice());
    match payments {
        Some([Integration::Slack(s), Integration::GoogleChat(g)]) => {
            match &s.target {
                SlackTarget::WebApi {
                    token,
                    channel,
                    api_url,
                } => {
                    assert_eq!(token.expose(), "secret-slack-bot-token");
                    assert_eq!(channel, "C0123PAYMENTS");
                    assert_eq!(api_url, "https://slack.com/api");
                }
                other => panic!("payments slack should use the web api: {other:?}"),
            }
            assert_eq!((s.rate.per_second, s.rate.burst), (1.0, 3));
            assert_eq!(
                g.url.expose(),
                "https://hooks.example.test/services/secret-payments-chat-webhook-url"
            );
            assert_eq!((g.rate.per_second, g.rate.burst), (1.0, 1));
        }
        other => panic!("payments integrations: {other:?}"),
    }
    let oncall = loaded.receiver("oncall").map(|r| r.integrations.as_slice());
    match oncall {
        Some([Integration::Slack(s), Integration::Webhook(w)]) => {
            assert!(matches!(s.target, SlackTarget::IncomingWebhook { .. }));
            assert_eq!(
                w.url.expose(),
                "https://hooks.example.test/services/secret-pager-bridge-url"
            );
            assert_eq!(
                w.bearer_token.as_ref().map(|t| t.expose()),
                Some("secret-pager-bridge-token")
            );
        }
        other => panic!("oncall integrations: {other:?}"),
    }
    // Secrets never reach Debug output.
    let debug = format!("{loaded:?}");
    assert!(!debug.contains("secret-"), "{debug}");
    std::fs::remove_dir_all(&dir).ok();
}

fn sentry_group(name: &str) -> Group {
    let c = fx::sentry(name);
    sentry::parse(c.resource(), &c.body).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn example_routes_the_sentry_fixtures_as_documented() {
    let dir = temp_dir("example-routes");
    let loaded = load(&example_in(&dir, &[]));
    let cases: [(&str, &[&str]); 9] = [
        ("installation-created", &["blackhole"]),
        ("comment-created", &["blackhole"]),
        ("issue-created", &["oncall", "lending"]),
        ("issue-resolved", &["oncall", "lending"]),
        ("error-created", &["oncall", "lending"]),
        ("event-alert-triggered", &["oncall", "lending"]),
        ("legacy-plugin", &["oncall", "lending"]),
        ("metric-alert-critical", &["oncall", "payments"]),
        ("metric-alert-resolved", &["oncall", "payments"]),
    ];
    for (name, want) in cases {
        let group = sentry_group(name);
        let got: Vec<String> = loaded
            .route
            .route_group(&group)
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert_eq!(got, want, "{name}");
    }
    // A Sentry project nobody claims falls back to the default.
    let mut other = sentry_group("issue-created");
    other
        .common_labels
        .insert("project".into(), "website".into());
    other
        .common_labels
        .insert("severity".into(), "warning".into());
    other.alerts[0].labels = other.common_labels.clone();
    let got: Vec<String> = loaded
        .route
        .route_group(&other)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(got, ["console"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn missing_and_empty_secret_files_are_reported_by_path_not_content() {
    let dir = temp_dir("missing");
    let path = example_in(&dir, &["slack-bot-token", "sentry-client-secret"]);
    std::fs::write(dir.join("sentry-client-secret"), "\n\n").unwrap_or_else(|e| panic!("{e}"));
    let err = load_err(&path);
    let text = err.to_string();
    let d = dir.display();
    assert!(text.contains(&path.display().to_string()), "{text}");
    for want in [
        format!("receivers[2].slack[0].token_file: read secret file {d}/slack-bot-token: no such file or directory"),
        format!("receivers[3].slack[0].token_file: read secret file {d}/slack-bot-token: no such file or directory"),
        format!("inbound.sentry.client_secret_file: secret file {d}/sentry-client-secret is empty"),
    ] {
        assert!(text.contains(&want), "expected {want:?} in:\n{text}");
    }
    assert_eq!(err.problems.len(), 3, "{text}");
    assert!(
        !text.contains("secret-"),
        "a secret's content leaked: {text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn inline_secrets_resolve_env_references_at_build() {
    // PATH is set in every environment the tests run in; reading it avoids mutating the
    // process environment, which other test threads read.
    let path_value = std::env::var("PATH").unwrap_or_else(|e| panic!("PATH: {e}"));
    let cfg = Config::from_yaml(
        "receivers:\n\
         - name: chat\n\
         \x20 google_chat: [{webhook_url: '${PATH}'}]\n\
         \x20 webhook: [{url: 'https://example.test/hook'}, {url: '${BEACON_TEST_UNSET_VARIABLE_X}'}]\n\
         route: {receiver: chat}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = match cfg.build() {
        Ok(_) => panic!("an unset variable must fail the build"),
        Err(e) => e,
    };
    let problems: Vec<String> = err.problems.iter().map(|p| p.to_string()).collect();
    // PATH resolves, and its value is then checked as the URL it should be (without quoting it).
    assert_eq!(
        problems,
        [
            "receivers[0].google_chat[0].webhook_url: must be a url starting with http:// or https://",
            "receivers[0].webhook[1].url: environment variable BEACON_TEST_UNSET_VARIABLE_X is not set",
        ]
    );
    assert!(!err.to_string().contains(&path_value), "{err}");
}

/// Every webhook URL, however it is given (inline, `${ENV}`, file), is checked when the config
/// loads; the problem names the field and never quotes the URL.
#[test]
fn webhook_urls_are_checked_and_never_quoted() {
    let dir = temp_dir("urls");
    let file = |name: &str, content: &str| {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap_or_else(|e| panic!("{e}"));
        p.display().to_string()
    };
    let space = file(
        "space",
        "https://chat.googleapis.com/v1/spaces/S/messages?key=k&token=SECRET1 x\n",
    );
    let control = file(
        "control",
        "https://hooks.slack.com/services/T/B/SECRET2\u{1b}\n",
    );
    let no_host = file("nohost", "https://:443/services/SECRET3\n");
    let good = file("good", "https://hooks.slack.com/services/T/B/SECRET4\n");
    let cfg = format!(
        "receivers:\n\
         - name: a\n\
         \x20 google_chat: [{{webhook_url_file: {space}}}]\n\
         \x20 slack: [{{webhook_url_file: {control}}}, {{webhook_url_file: {good}}}]\n\
         \x20 webhook: [{{url_file: {no_host}}}, {{url: 'http://hook.example/SECRET5 x'}}]\n\
         route: {{receiver: a}}\n"
    );
    let path = dir.join("router.yaml");
    std::fs::write(&path, &cfg).unwrap_or_else(|e| panic!("{e}"));
    // The inline URL is checked by validation, before any file is read.
    let text = load_err(&path).to_string();
    assert!(
        text.contains("receivers[0].webhook[1].url: url must not contain whitespace or control characters (found whitespace, U+0020, at character 28)"),
        "{text}"
    );
    std::fs::write(&path, cfg.replace("SECRET5 x", "SECRET5")).unwrap_or_else(|e| panic!("{e}"));
    let err = load_err(&path);
    let text = err.to_string();
    for want in [
        "receivers[0].google_chat[0].webhook_url_file: url must not contain whitespace or control characters (found whitespace, U+0020, at character 69)",
        "receivers[0].slack[0].webhook_url_file: url must not contain whitespace or control characters (found a control character, U+001B, at character 45)",
        "receivers[0].webhook[0].url_file: url has no host",
    ] {
        assert!(text.contains(want), "expected {want:?} in:\n{text}");
    }
    assert_eq!(err.problems.len(), 3, "{text}");
    assert!(
        !text.contains("SECRET"),
        "a url's secret part leaked: {text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let err = load_err(Path::new("/nonexistent/router.yaml")).to_string();
    assert!(
        err.contains("(file): read /nonexistent/router.yaml: no such file or directory"),
        "{err}"
    );
}

#[test]
fn receivers_without_any_config_default_to_console() {
    let loaded = Config::from_yaml("listen: 127.0.0.1:9999\n")
        .and_then(|c| c.build())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.receivers.len(), 1);
    assert!(matches!(
        loaded.receivers[0].integrations.as_slice(),
        [Integration::Console(_)]
    ));
    let group = sentry_group("issue-created");
    let routed = loaded.route.route_group(&group);
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].0, "console");
}

/// Every key of every section of the config, found from the parser itself: a section's keys are
/// the "expected one of" list `deny_unknown_fields` gives for an unknown key placed there, and
/// a key whose value accepts a map (or a list of maps) with an unknown key is a section too.
fn config_keys() -> Vec<(String, Vec<String>)> {
    fn probe(value: &serde_json::Value) -> Option<Vec<String>> {
        let err = match Config::from_yaml(&value.to_string()) {
            Ok(_) => return None,
            Err(e) => e.to_string(),
        };
        let list = err
            .split("unknown field `zzz_probe`, expected one of ")
            .nth(1)?;
        let list = list.split(" at line ").next()?;
        Some(
            list.split(", ")
                .map(|k| k.trim_matches('`').to_string())
                .collect(),
        )
    }
    /// `{zzz_probe: 1}` at the end of `path`, each step a key or (`[]`) a list item.
    fn nest(path: &[String]) -> serde_json::Value {
        let mut v = serde_json::json!({"zzz_probe": 1});
        for step in path.iter().rev() {
            v = if step == "[]" {
                serde_json::json!([v])
            } else {
                serde_json::json!({ step.as_str(): v })
            };
        }
        v
    }
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    let mut seen: Vec<Vec<String>> = Vec::new();
    while let Some(path) = todo.pop() {
        let Some(keys) = probe(&nest(&path)) else {
            continue;
        };
        // A section seen before (the route tree nests itself).
        if seen.contains(&keys) {
            continue;
        }
        seen.push(keys.clone());
        for k in &keys {
            let mut map = path.clone();
            map.push(k.clone());
            let mut list = map.clone();
            list.push("[]".into());
            todo.push(map);
            todo.push(list);
        }
        let name: Vec<&str> = path.iter().map(String::as_str).collect();
        found.push((name.join(".").replace(".[]", "[]"), keys));
    }
    found
}

#[test]
fn the_example_documents_every_config_key() {
    let sections = config_keys();
    let names: Vec<&str> = sections.iter().map(|(n, _)| n.as_str()).collect();
    // The probe found the nested sections, not just the top level.
    for want in [
        "",
        "inbound",
        "storage.redis",
        "receivers[]",
        "receivers[].slack[]",
        "route",
    ] {
        assert!(
            names.contains(&want),
            "section {want:?} not found in {names:?}"
        );
    }
    let example = read(&example_path());
    let mut missing = Vec::new();
    for (section, keys) in &sections {
        for key in keys {
            let documented = example.match_indices(&format!("{key}:")).any(|(i, _)| {
                example[..i]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
            });
            if !documented {
                missing.push(format!("{section}: {key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "config/router.example.yaml claims to document every key; missing: {missing:?}"
    );
}
