//! `diskstats`: PLACEHOLDER, being written (scaffolding so the crate compiles).

use super::{CollectError, Collector};
use crate::config::Config;
use crate::metrics::MetricWriter;

pub struct Diskstats;

impl Diskstats {
    pub fn new(_cfg: &Config) -> Self {
        Self
    }
}

impl Collector for Diskstats {
    fn name(&self) -> &'static str {
        "diskstats"
    }

    fn collect(&self, _out: &mut MetricWriter) -> Result<(), CollectError> {
        Err(CollectError::NoData("not written yet".into()))
    }
}
