//! `netdev`: PLACEHOLDER, being written (scaffolding so the crate compiles).

use super::{CollectError, Collector};
use crate::config::Config;
use crate::metrics::MetricWriter;

pub struct Netdev;

impl Netdev {
    pub fn new(_cfg: &Config) -> Self {
        Self
    }
}

impl Collector for Netdev {
    fn name(&self) -> &'static str {
        "netdev"
    }

    fn collect(&self, _out: &mut MetricWriter) -> Result<(), CollectError> {
        Err(CollectError::NoData("not written yet".into()))
    }
}
