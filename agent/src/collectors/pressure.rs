//! `pressure`: PLACEHOLDER, being written (scaffolding so the crate compiles).

use super::{CollectError, Collector};
use crate::config::Config;
use crate::metrics::MetricWriter;

pub struct Pressure;

impl Pressure {
    pub fn new(_cfg: &Config) -> Self {
        Self
    }
}

impl Collector for Pressure {
    fn name(&self) -> &'static str {
        "pressure"
    }

    fn collect(&self, _out: &mut MetricWriter) -> Result<(), CollectError> {
        Err(CollectError::NoData("not written yet".into()))
    }
}
