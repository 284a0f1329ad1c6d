//! The deployment files in `deploy/` work with the real programs that consume them:
//! - every kustomization renders with `kubectl kustomize`, and every rendered resource validates
//!   against the Kubernetes schemas (PyPI `kubernetes-validate`, strict: unknown fields are
//!   errors) for the oldest and newest Kubernetes versions checked; ServiceMonitors, a CRD
//!   without a schema there, are checked field by field against prometheus-operator's v1 API;
//! - the router's rendered `router.yaml` ConfigMaps pass `beacon-router check-config` with the
//!   Secret's keys written as files;
//! - the agent's DaemonSet args and the systemd unit's ExecStart are accepted by `beacon-agent`
//!   (one real collection with the host paths mapped back to `/`), and `systemd-analyze verify`
//!   accepts the unit;
//! - the Alertmanager snippet passes `amtool check-config` and points at the router's Service.
//!
//! Without kubectl the overlays cannot be rendered; the raw files are then validated one by one
//! instead (the test says so on stderr).

use std::path::{Path, PathBuf};
use std::process::Command;

use beacon_e2e::{repo_root, require_bin, tempdir, workspace_bin};
use serde_json::Value;

/// Kustomization directories under `deploy/`.
const KUSTOMIZATIONS: &[&str] = &[
    "deploy",
    "deploy/agent",
    "deploy/router/base",
    "deploy/router/overlays/ha",
];

/// Kubernetes versions validated against (an old one still in support, the newest known).
const KUBE_VERSIONS: &[&str] = &["1.29.0", "1.37.0"];

fn kubernetes_validate() -> PathBuf {
    if let Some(p) = std::env::var_os("BEACON_KUBERNETES_VALIDATE") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    let p = cache.join("beacon/venv/bin/kubernetes-validate");
    assert!(
        p.is_file(),
        "{} not found: run scripts/setup (it installs kubernetes-validate from PyPI)",
        p.display()
    );
    p
}

fn kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The YAML documents of a multi-document stream, as JSON values (empty documents dropped).
fn documents(yaml: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in yaml.lines().chain(std::iter::once("---")) {
        if line == "---" {
            if current.lines().any(|l| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with('#')
            }) {
                let v: Value = serde_saphyr::from_str(&current)
                    .unwrap_or_else(|e| panic!("parse YAML document: {e}\n{current}"));
                docs.push(v);
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs
}

/// Rendered resources of each kustomization (or, without kubectl, of each raw file).
fn rendered() -> Vec<(String, Vec<Value>)> {
    let root = repo_root();
    match kubectl() {
        Some(kubectl) => KUSTOMIZATIONS
            .iter()
            .map(|k| {
                let (ok, text) = run(Command::new(&kubectl).arg("kustomize").arg(root.join(k)));
                assert!(ok, "kubectl kustomize {k} failed:\n{text}");
                ((*k).to_owned(), documents(&text))
            })
            .collect(),
        None => {
            eprintln!(
                "kubectl not found: validating raw manifest files and overlay patches one by one; \
                 kustomizations are not rendered"
            );
            let mut out = Vec::new();
            for k in KUSTOMIZATIONS {
                for entry in std::fs::read_dir(root.join(k)).expect("read deploy dir") {
                    let p = entry.expect("dir entry").path();
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if name.ends_with(".yaml")
                        && name != "kustomization.yaml"
                        && name != "router.yaml"
                    {
                        let text = std::fs::read_to_string(&p).expect("read manifest");
                        out.push((p.display().to_string(), documents(&text)));
                    }
                }
            }
            out
        }
    }
}

/// Checks a ServiceMonitor against prometheus-operator's `monitoring.coreos.com/v1` fields that
/// Beacon uses; any other field is an error (as a strict schema would report it).
fn check_service_monitor(sm: &Value, errors: &mut Vec<String>) {
    let name = sm["metadata"]["name"].as_str().unwrap_or("?").to_owned();
    let only =
        |errors: &mut Vec<String>, v: &Value, path: &str, allowed: &[&str]| match v.as_object() {
            Some(map) => {
                for k in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
                    errors.push(format!("ServiceMonitor {name}: unknown field {path}.{k}"));
                }
            }
            None => errors.push(format!("ServiceMonitor {name}: {path} is not an object")),
        };
    only(errors, sm, "", &["apiVersion", "kind", "metadata", "spec"]);
    let spec = &sm["spec"];
    only(
        errors,
        spec,
        "spec",
        &["selector", "endpoints", "jobLabel", "namespaceSelector"],
    );
    only(
        errors,
        &spec["selector"],
        "spec.selector",
        &["matchLabels", "matchExpressions"],
    );
    let endpoints = spec["endpoints"].as_array().cloned().unwrap_or_default();
    if endpoints.is_empty() {
        errors.push(format!("ServiceMonitor {name}: no endpoints"));
    }
    for (i, ep) in endpoints.iter().enumerate() {
        let p = format!("spec.endpoints[{i}]");
        only(
            errors,
            ep,
            &p,
            &[
                "port",
                "path",
                "scheme",
                "interval",
                "scrapeTimeout",
                "relabelings",
                "metricRelabelings",
                "honorLabels",
            ],
        );
        if !ep["port"].is_string() {
            errors.push(format!(
                "ServiceMonitor {name}: {p}.port must name a Service port"
            ));
        }
        for (j, r) in ep["relabelings"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            only(
                errors,
                r,
                &format!("{p}.relabelings[{j}]"),
                &[
                    "action",
                    "sourceLabels",
                    "separator",
                    "regex",
                    "replacement",
                    "targetLabel",
                    "modulus",
                ],
            );
            let action = r["action"].as_str().unwrap_or("replace").to_lowercase();
            if ![
                "replace",
                "keep",
                "drop",
                "labelmap",
                "labeldrop",
                "labelkeep",
                "hashmod",
            ]
            .contains(&action.as_str())
            {
                errors.push(format!("ServiceMonitor {name}: relabeling action {action}"));
            }
        }
    }
}

#[test]
fn kustomizations_render_and_validate_against_kubernetes_schemas() {
    let validator = kubernetes_validate();
    let dir = tempdir();
    let mut errors = Vec::new();
    let mut files = Vec::new();
    let mut service_monitors = 0;
    for (name, docs) in rendered() {
        assert!(!docs.is_empty(), "{name}: no resources");
        for (i, doc) in docs.iter().enumerate() {
            if doc["kind"] == "ServiceMonitor" {
                assert_eq!(doc["apiVersion"], "monitoring.coreos.com/v1");
                check_service_monitor(doc, &mut errors);
                service_monitors += 1;
                continue;
            }
            let file = dir
                .path()
                .join(format!("{}-{i}.json", name.replace('/', "_")));
            std::fs::write(&file, doc.to_string()).expect("write resource");
            files.push(file);
        }
    }
    // One run per version over every file (the tool's start-up dominates its run time).
    for version in KUBE_VERSIONS {
        let (ok, out) = run(Command::new(&validator)
            .arg("--strict")
            .arg("--kubernetes-version")
            .arg(version)
            .args(&files));
        // kubernetes-validate exits 0 on some failures: its report is what counts. Every file
        // must have its "passed" line, and nothing may be an error or a warning (an unknown
        // kind is only a warning).
        let passed = out
            .lines()
            .filter(|l| l.contains(" passed for resource "))
            .count();
        let bad: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("ERROR") || l.starts_with("WARN"))
            .collect();
        if !ok || !bad.is_empty() || passed != files.len() {
            errors.push(format!(
                "kubernetes-validate against {version}: {passed} of {} passed:\n{}",
                files.len(),
                bad.join("\n")
            ));
        }
    }
    assert!(
        errors.is_empty(),
        "invalid manifests:\n{}",
        errors.join("\n")
    );
    assert!(
        service_monitors >= 2,
        "ServiceMonitors for the agent and the router"
    );
    assert!(
        files.len() >= 20,
        "only {} resources validated",
        files.len()
    );
}

#[test]
fn agent_service_monitor_labels_targets_like_kube_prometheus() {
    let text = std::fs::read_to_string(repo_root().join("deploy/agent/servicemonitor.yaml"))
        .expect("read servicemonitor");
    let sm = &documents(&text)[0];
    let relabel = sm["spec"]["endpoints"][0]["relabelings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        relabel.iter().any(|r| r["targetLabel"] == "job"
            && r["replacement"] == "node-exporter"
            && r["action"] == "replace"),
        "job=\"node-exporter\": {relabel:?}"
    );
    assert!(
        relabel.iter().any(|r| r["targetLabel"] == "instance"
            && r["sourceLabels"][0] == "__meta_kubernetes_pod_node_name"),
        "instance = node name: {relabel:?}"
    );
}

#[test]
fn daemonset_runs_unprivileged_on_the_host_namespaces() {
    let text = std::fs::read_to_string(repo_root().join("deploy/agent/daemonset.yaml"))
        .expect("read daemonset");
    let ds = &documents(&text)[0];
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["hostPID"], true);
    assert!(
        pod["tolerations"].as_array().is_some_and(|t| t
            .iter()
            .any(|t| t["operator"] == "Exists" && t.get("key").is_none())),
        "tolerates every taint"
    );
    assert_eq!(pod["securityContext"]["runAsUser"], 65534);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    for k in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(c["resources"][k][r].is_string(), "resources.{k}.{r}");
        }
    }
    let root = c["volumeMounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["mountPath"] == "/host/root"))
        .cloned()
        .expect("/host/root mount");
    assert_eq!(root["readOnly"], true);
    assert_eq!(root["mountPropagation"], "HostToContainer");
}

/// `args` with the container's host paths mapped back to this host's, for a real collection.
fn host_args(args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| {
            a.replace("=/host/root/", "=/")
                .replace("=/host/root", "=/")
                .replace("=/host/proc", "=/proc")
                .replace("=/host/sys", "=/sys")
        })
        .collect()
}

/// Runs `beacon-agent <args> collect` and checks it collected the host's CPU and filesystems.
fn agent_accepts(agent: &Path, args: &[String], what: &str) {
    let (ok, out) = run(Command::new(agent).args(args).arg("collect"));
    assert!(ok, "{what}: beacon-agent {args:?} collect failed:\n{out}");
    assert!(
        out.contains("node_cpu_seconds_total{") && out.contains("node_filesystem_size_bytes{"),
        "{what}: collection misses CPU or filesystems:\n{}",
        &out[..out.len().min(2000)]
    );
}

#[test]
fn agent_accepts_the_daemonset_and_systemd_arguments() {
    let agent = workspace_bin("beacon-agent", "beacon-agent");

    let text = std::fs::read_to_string(repo_root().join("deploy/agent/daemonset.yaml"))
        .expect("read daemonset");
    let ds = &documents(&text)[0];
    let args: Vec<String> = ds["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("container args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_owned())
        .collect();
    for flag in [
        "--path.procfs=/host/proc",
        "--path.sysfs=/host/sys",
        "--path.rootfs=/host/root",
    ] {
        assert!(args.iter().any(|a| a == flag), "DaemonSet args lack {flag}");
    }
    agent_accepts(&agent, &host_args(&args), "DaemonSet");

    let unit_path = repo_root().join("deploy/systemd/beacon-agent.service");
    let unit = std::fs::read_to_string(&unit_path).expect("read unit");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/beacon-agent"));
    let unit_args: Vec<String> = words.map(str::to_owned).collect();
    agent_accepts(&agent, &unit_args, "systemd unit");

    // systemd-analyze checks the unit's directives; point ExecStart at a real binary.
    let dir = tempdir();
    let copy = dir.path().join("beacon-agent.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/beacon-agent", &agent.display().to_string()),
    )
    .expect("write unit copy");
    let analyze = require_bin("systemd-analyze", "systemd");
    let (ok, out) = run(Command::new(analyze).arg("verify").arg(&copy));
    assert!(
        ok && out.trim().is_empty(),
        "systemd-analyze verify:\n{out}"
    );
}

#[test]
fn router_configmaps_pass_check_config() {
    let router = workspace_bin("beacon-router", "beacon-router");
    let mut checked = 0;
    for (name, docs) in rendered() {
        let secrets: Vec<(String, String)> = docs
            .iter()
            .filter(|d| d["kind"] == "Secret")
            .flat_map(|d| {
                d["stringData"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
            })
            .collect();
        let configs: Vec<String> = docs
            .iter()
            .filter(|d| d["kind"] == "ConfigMap")
            .filter_map(|d| d["data"]["router.yaml"].as_str().map(str::to_owned))
            .collect();
        for config in configs {
            let dir = tempdir();
            let secret_dir = dir.path().join("secrets");
            std::fs::create_dir_all(&secret_dir).expect("secret dir");
            for (k, v) in &secrets {
                std::fs::write(secret_dir.join(k), v).expect("write secret file");
            }
            assert!(
                config.contains("/etc/beacon-router/secrets/"),
                "{name}: router.yaml reads its secrets from the mounted Secret"
            );
            let local = config
                .replace(
                    "/etc/beacon-router/secrets/",
                    &format!("{}/", secret_dir.display()),
                )
                .replace(
                    "/var/lib/beacon-router",
                    &dir.path().join("data").display().to_string(),
                );
            let file = dir.path().join("router.yaml");
            std::fs::write(&file, &local).expect("write router.yaml");
            let (ok, out) = run(Command::new(&router)
                .arg("check-config")
                .arg("--config")
                .arg(&file));
            assert!(
                ok,
                "{name}: beacon-router check-config failed:\n{out}\n{local}"
            );
            checked += 1;
        }
    }
    // The embedded-store base (in deploy and deploy/router/base) and the Redis overlay.
    if kubectl().is_some() {
        assert!(checked >= 3, "only {checked} router configs checked");
    }
}

#[test]
fn alertmanager_snippet_passes_amtool_and_targets_the_router() {
    let amtool = require_bin("amtool", "prometheus-alertmanager");
    let path = repo_root().join("deploy/alertmanager-webhook.yaml");
    let (ok, out) = run(Command::new(amtool).arg("check-config").arg(&path));
    assert!(ok, "amtool check-config:\n{out}");
    let text = std::fs::read_to_string(&path).expect("read snippet");
    let am = &documents(&text)[0];
    let hook = &am["receivers"][0]["webhook_configs"][0];
    assert_eq!(
        hook["url"],
        "http://beacon-router.monitoring.svc:9094/webhooks/alertmanager"
    );
    let file = hook["http_config"]["authorization"]["credentials_file"]
        .as_str()
        .expect("credentials_file");
    assert!(
        file.ends_with("/alertmanager-token"),
        "the router's alertmanager-token key: {file}"
    );
    // The router's Service and port match the URL.
    let svc = std::fs::read_to_string(repo_root().join("deploy/router/base/service.yaml"))
        .expect("read service");
    let svc = &documents(&svc)[0];
    assert_eq!(svc["metadata"]["name"], "beacon-router");
    assert_eq!(svc["spec"]["ports"][0]["port"], 9094);
}
