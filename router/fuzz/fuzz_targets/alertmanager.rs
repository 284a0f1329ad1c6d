//! Fuzz target: arbitrary bytes as an Alertmanager webhook body. Parsing must never panic;
//! whatever parses must render for every integration within Slack's and Google Chat's limits.
#![no_main]

mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    checks::on_production_stack(|| {
        if let Ok(group) = beacon_router::sources::alertmanager::parse(data) {
            checks::render_all(&group, None);
        }
    });
});
