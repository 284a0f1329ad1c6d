//! `time`: PLACEHOLDER, being written (scaffolding so the crate compiles).

use super::{CollectError, Collector};
use crate::config::Config;
use crate::metrics::MetricWriter;

pub struct Time;

impl Time {
    pub fn new(_cfg: &Config) -> Self {
        Self
    }
}

impl Collector for Time {
    fn name(&self) -> &'static str {
        "time"
    }

    fn collect(&self, _out: &mut MetricWriter) -> Result<(), CollectError> {
        Err(CollectError::NoData("not written yet".into()))
    }
}
