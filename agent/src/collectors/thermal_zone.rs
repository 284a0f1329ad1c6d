//! `thermal_zone`: PLACEHOLDER, being written (scaffolding so the crate compiles).

use super::{CollectError, Collector};
use crate::config::Config;
use crate::metrics::MetricWriter;

pub struct ThermalZone;

impl ThermalZone {
    pub fn new(_cfg: &Config) -> Self {
        Self
    }
}

impl Collector for ThermalZone {
    fn name(&self) -> &'static str {
        "thermal_zone"
    }

    fn collect(&self, _out: &mut MetricWriter) -> Result<(), CollectError> {
        Err(CollectError::NoData("not written yet".into()))
    }
}
