//! `timex`: PLACEHOLDER, being written (scaffolding so the crate compiles).

use super::{CollectError, Collector};
use crate::config::Config;
use crate::metrics::MetricWriter;

pub struct Timex;

impl Timex {
    pub fn new(_cfg: &Config) -> Self {
        Self
    }
}

impl Collector for Timex {
    fn name(&self) -> &'static str {
        "timex"
    }

    fn collect(&self, _out: &mut MetricWriter) -> Result<(), CollectError> {
        Err(CollectError::NoData("not written yet".into()))
    }
}
