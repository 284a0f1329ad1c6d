//! `netclass`: PLACEHOLDER, being written (scaffolding so the crate compiles).

use super::{CollectError, Collector};
use crate::config::Config;
use crate::metrics::MetricWriter;

pub struct Netclass;

impl Netclass {
    pub fn new(_cfg: &Config) -> Self {
        Self
    }
}

impl Collector for Netclass {
    fn name(&self) -> &'static str {
        "netclass"
    }

    fn collect(&self, _out: &mut MetricWriter) -> Result<(), CollectError> {
        Err(CollectError::NoData("not written yet".into()))
    }
}
