//! Fuzz target: a Sentry webhook. The first byte picks the `Sentry-Hook-Resource` header (one
//! of the known resources, an unknown one, an empty one, or none: the legacy plugin); the rest
//! is the body. Parsing must never panic; whatever parses must render within the limits.
#![no_main]

mod checks;

use libfuzzer_sys::fuzz_target;

/// Header values the first byte chooses from (`None`: no header, a legacy plugin payload).
const RESOURCES: &[Option<&str>] = &[
    Some("issue"),
    Some("event_alert"),
    Some("metric_alert"),
    Some("error"),
    Some("comment"),
    Some("installation"),
    Some("future_resource"),
    Some(" "),
    None,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let resource = RESOURCES[usize::from(selector) % RESOURCES.len()];
    checks::on_production_stack(|| {
        if let Ok(group) = beacon_router::sources::sentry::parse(resource, body) {
            checks::render_all(&group, None);
        }
        if resource.is_none() {
            // The plugin's own entry point, as the legacy route calls it.
            let _ = beacon_router::sources::sentry::parse_legacy(body);
        }
    });
});
