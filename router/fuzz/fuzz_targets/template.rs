//! Fuzz target: arbitrary text as a receiver's custom template. The first byte picks which
//! template kinds (`slack_text`, `slack_blocks`, `google_chat_text`) get the rest as their
//! source; each is compiled and rendered against a fixed group, directly and through the Slack
//! and Google Chat renderers. Must never panic, hang (the fuel limit bounds every render) or
//! overflow the stack, and the rendered messages must stay within the integrations' limits.
#![no_main]

mod checks;

use std::sync::OnceLock;

use beacon_router::model::Group;
use beacon_router::render::template::MAX_OUTPUT_BYTES;
use beacon_router::render::{TemplateKind, TemplateSources, Templates, ELLIPSIS};
use libfuzzer_sys::fuzz_target;

/// A firing group with markup, entities, emoji and a resolved alert, as the templates' context.
fn group() -> &'static Group {
    static GROUP: OnceLock<Group> = OnceLock::new();
    GROUP.get_or_init(|| {
        let body = serde_json_body();
        beacon_router::sources::alertmanager::parse(body.as_bytes())
            .expect("fuzz harness: the fixed group parses")
    })
}

fn serde_json_body() -> String {
    let alert = |i: usize, status: &str| {
        serde_json::json!({
            "status": status,
            "labels": {"alertname": "DiskFull", "severity": "critical", "instance": format!("db-{i}"),
                       "cluster": "eks-prod", "job": "node"},
            "annotations": {"summary": "Disk <full> & \"hot\" 🚨",
                            "description": format!("{}{i}", "volume /data at 99% ".repeat(20)),
                            "runbook_url": "https://runbooks.example/disk?a=1&b=|"},
            "startsAt": "2026-11-24T03:24:54.787204094Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up&g0.tab=1",
            "fingerprint": format!("{i:016x}"),
        })
    };
    let mut alerts: Vec<_> = (0..11).map(|i| alert(i, "firing")).collect();
    alerts.push(alert(11, "resolved"));
    serde_json::json!({
        "version": "4",
        "groupKey": "{}/{severity=\"critical\"}:{alertname=\"DiskFull\"}",
        "truncatedAlerts": 3,
        "status": "firing",
        "receiver": "team\\.storage",
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull", "severity": "critical", "cluster": "eks-prod",
                         "job": "node"},
        "commonAnnotations": {"summary": "Disk <full> & \"hot\" 🚨"},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
        "notification_reason": "first <notification>",
    })
    .to_string()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(src) = std::str::from_utf8(rest) else {
        return;
    };
    // 1..=7: a non-empty subset of the three kinds.
    let mask = selector % 7 + 1;
    let pick = |bit: u8| (mask & bit != 0).then(|| src.to_string());
    let sources = TemplateSources {
        slack_text: pick(1),
        slack_blocks: pick(2),
        google_chat_text: pick(4),
    };
    checks::on_production_stack(|| {
        let templates = Templates::compile(&sources);
        let _ = Templates::check(&sources);
        for kind in TemplateKind::ALL {
            let configured = sources.get(kind).is_some();
            match templates.render(kind, group()) {
                None => assert!(!configured, "{kind} configured but not rendered"),
                Some(Ok(out)) => assert!(
                    out.len() <= MAX_OUTPUT_BYTES + ELLIPSIS.len(),
                    "{kind} output of {} bytes",
                    out.len()
                ),
                Some(Err(e)) => assert_eq!(e.kind(), kind, "error names another template"),
            }
        }
        checks::render_all(group(), Some(&templates));
    });
});
