//! `hwmon`: PLACEHOLDER, being written (scaffolding so the crate compiles).

use super::{CollectError, Collector};
use crate::config::Config;
use crate::metrics::MetricWriter;

pub struct Hwmon;

impl Hwmon {
    pub fn new(_cfg: &Config) -> Self {
        Self
    }
}

impl Collector for Hwmon {
    fn name(&self) -> &'static str {
        "hwmon"
    }

    fn collect(&self, _out: &mut MetricWriter) -> Result<(), CollectError> {
        Err(CollectError::NoData("not written yet".into()))
    }
}
