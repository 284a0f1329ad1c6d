//! `uname`: PLACEHOLDER, being written (scaffolding so the crate compiles).

use super::{CollectError, Collector};
use crate::config::Config;
use crate::metrics::MetricWriter;

pub struct Uname;

impl Uname {
    pub fn new(_cfg: &Config) -> Self {
        Self
    }
}

impl Collector for Uname {
    fn name(&self) -> &'static str {
        "uname"
    }

    fn collect(&self, _out: &mut MetricWriter) -> Result<(), CollectError> {
        Err(CollectError::NoData("not written yet".into()))
    }
}
