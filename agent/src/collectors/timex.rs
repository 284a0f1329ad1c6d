//! `timex`: the kernel's clock discipline state from a read-only adjtimex(2) call
//! (node_exporter's `collector/timex.go`): NTP synchronisation, offsets, errors and PPS counters.

use std::io;

use crate::collector::{CollectError, Collector, Context, Spec};
use crate::metrics::{MetricType, MetricWriter};

/// adjtimex(2)'s return value when the clock is not synchronised (`TIME_ERROR`).
const TIME_ERROR: i32 = 5;
/// `status` bit: `offset` and `jitter` are in nanoseconds rather than microseconds.
const STA_NANO: i64 = 0x2000;
const NANOSECONDS: f64 = 1e9;
const MICROSECONDS: f64 = 1e6;
/// `freq`, `ppsfreq` and `stabil` are in ppm with a 16-bit fractional part (see adjtimex(2)).
const PPM16FRAC: f64 = 1_000_000.0 * 65536.0;

/// The `timex` collector: adjtimex(2): NTP synchronisation state.
pub const SPEC: Spec = Spec {
    name: "timex",
    default_enabled: true,
    help: "adjtimex(2): NTP synchronisation state",
    options: &[],
    filters: &[],
    build: |ctx| Box::new(Timex::new(ctx)),
};

/// Calls adjtimex(2) with `modes = 0`, which only reads.
#[derive(Debug)]
pub struct Timex;

impl Timex {
    pub fn new(_ctx: &Context) -> Self {
        Self
    }
}

/// The `struct timex` fields node_exporter reports, widened to i64 (their C types differ
/// between 32- and 64-bit targets).
#[derive(Debug, Default, Clone, Copy)]
struct Reading {
    /// adjtimex's return value: the clock state (`TIME_OK` .. `TIME_ERROR`).
    state: i32,
    offset: i64,
    freq: i64,
    maxerror: i64,
    esterror: i64,
    status: i64,
    constant: i64,
    tick: i64,
    ppsfreq: i64,
    jitter: i64,
    shift: i64,
    stabil: i64,
    jitcnt: i64,
    calcnt: i64,
    errcnt: i64,
    stbcnt: i64,
    tai: i64,
}

fn adjtimex() -> io::Result<Reading> {
    // SAFETY: `timex` is a plain C struct of integers, for which all zeroes is valid; zero
    // `modes` makes the call read-only.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid, writable `timex` that the kernel fills in.
    let state = unsafe { libc::adjtimex(&mut t) };
    if state == -1 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the casts widen on 32-bit targets
    Ok(Reading {
        state,
        offset: t.offset as i64,
        freq: t.freq as i64,
        maxerror: t.maxerror as i64,
        esterror: t.esterror as i64,
        status: t.status as i64,
        constant: t.constant as i64,
        tick: t.tick as i64,
        ppsfreq: t.ppsfreq as i64,
        jitter: t.jitter as i64,
        shift: t.shift as i64,
        stabil: t.stabil as i64,
        jitcnt: t.jitcnt as i64,
        calcnt: t.calcnt as i64,
        errcnt: t.errcnt as i64,
        stbcnt: t.stbcnt as i64,
        tai: t.tai as i64,
    })
}

/// Writes every family node_exporter 1.5 prints, with its unit conversions.
fn write(r: &Reading, out: &mut MetricWriter) {
    use MetricType::{Counter, Gauge};
    let sync = if r.state == TIME_ERROR { 0.0 } else { 1.0 };
    let divisor = if r.status & STA_NANO != 0 {
        NANOSECONDS
    } else {
        MICROSECONDS
    };
    let families: [(MetricType, &str, &str, f64); 17] = [
        (
            Gauge,
            "node_timex_sync_status",
            "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
            sync,
        ),
        (
            Gauge,
            "node_timex_offset_seconds",
            "Time offset in between local system and reference clock.",
            r.offset as f64 / divisor,
        ),
        (
            Gauge,
            "node_timex_frequency_adjustment_ratio",
            "Local clock frequency adjustment.",
            1.0 + r.freq as f64 / PPM16FRAC,
        ),
        (
            Gauge,
            "node_timex_maxerror_seconds",
            "Maximum error in seconds.",
            r.maxerror as f64 / MICROSECONDS,
        ),
        (
            Gauge,
            "node_timex_estimated_error_seconds",
            "Estimated error in seconds.",
            r.esterror as f64 / MICROSECONDS,
        ),
        (
            Gauge,
            "node_timex_status",
            "Value of the status array bits.",
            r.status as f64,
        ),
        (
            Gauge,
            "node_timex_loop_time_constant",
            "Phase-locked loop time constant.",
            r.constant as f64,
        ),
        (
            Gauge,
            "node_timex_tick_seconds",
            "Seconds between clock ticks.",
            r.tick as f64 / MICROSECONDS,
        ),
        (
            Gauge,
            "node_timex_pps_frequency_hertz",
            "Pulse per second frequency.",
            r.ppsfreq as f64 / PPM16FRAC,
        ),
        (
            Gauge,
            "node_timex_pps_jitter_seconds",
            "Pulse per second jitter.",
            r.jitter as f64 / divisor,
        ),
        (
            Gauge,
            "node_timex_pps_shift_seconds",
            "Pulse per second interval duration.",
            r.shift as f64,
        ),
        (
            Gauge,
            "node_timex_pps_stability_hertz",
            "Pulse per second stability, average of recent frequency changes.",
            r.stabil as f64 / PPM16FRAC,
        ),
        (
            Counter,
            "node_timex_pps_jitter_total",
            "Pulse per second count of jitter limit exceeded events.",
            r.jitcnt as f64,
        ),
        (
            Counter,
            "node_timex_pps_calibration_total",
            "Pulse per second count of calibration intervals.",
            r.calcnt as f64,
        ),
        (
            Counter,
            "node_timex_pps_error_total",
            "Pulse per second count of calibration errors.",
            r.errcnt as f64,
        ),
        (
            Counter,
            "node_timex_pps_stability_exceeded_total",
            "Pulse per second count of stability limit exceeded events.",
            r.stbcnt as f64,
        ),
        (
            Gauge,
            "node_timex_tai_offset_seconds",
            "International Atomic Time (TAI) offset.",
            r.tai as f64,
        ),
    ];
    for (ty, name, help, value) in families {
        out.sample(ty, name, help, &[], value);
    }
}

impl Collector for Timex {
    fn name(&self) -> &'static str {
        "timex"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let r = adjtimex().map_err(|e| {
            if e.kind() == io::ErrorKind::PermissionDenied {
                // e.g. a seccomp profile that refuses adjtimex even read-only.
                CollectError::NoData(format!("adjtimex: {}", crate::error::io_reason(&e)))
            } else {
                CollectError::Other(format!(
                    "failed to retrieve adjtimex stats: {}",
                    crate::error::io_reason(&e)
                ))
            }
        })?;
        write(&r, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn value(text: &str, name: &str) -> String {
        let prefix = format!("{name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .to_owned()
    }

    #[test]
    fn microsecond_mode_conversions() {
        let r = Reading {
            state: 0,
            offset: -1500, // µs
            freq: 7 << 16, // 7 ppm
            maxerror: 16_000,
            esterror: 250,
            status: 0x0001, // STA_PLL
            constant: 7,
            tick: 10_000,
            ppsfreq: -(3 << 16),
            jitter: 20,
            shift: 2,
            stabil: 1 << 15,
            jitcnt: 1,
            calcnt: 2,
            errcnt: 3,
            stbcnt: 4,
            tai: 37,
        };
        let mut w = MetricWriter::new();
        write(&r, &mut w);
        let got = w.render_to_string();
        for (name, want) in [
            ("node_timex_sync_status", "1"),
            ("node_timex_offset_seconds", "-0.0015"),
            ("node_timex_frequency_adjustment_ratio", "1.000007"),
            ("node_timex_maxerror_seconds", "0.016"),
            ("node_timex_estimated_error_seconds", "0.00025"),
            ("node_timex_status", "1"),
            ("node_timex_loop_time_constant", "7"),
            ("node_timex_tick_seconds", "0.01"),
            ("node_timex_pps_frequency_hertz", "-3e-06"),
            ("node_timex_pps_jitter_seconds", "2e-05"),
            ("node_timex_pps_shift_seconds", "2"),
            ("node_timex_pps_stability_hertz", "5e-07"),
            ("node_timex_pps_jitter_total", "1"),
            ("node_timex_pps_calibration_total", "2"),
            ("node_timex_pps_error_total", "3"),
            ("node_timex_pps_stability_exceeded_total", "4"),
            ("node_timex_tai_offset_seconds", "37"),
        ] {
            assert_eq!(value(&got, name), want, "{name}");
        }
        assert_eq!(w.sample_count(), 17);
        assert!(got.contains("# TYPE node_timex_pps_jitter_total counter\n"));
        assert!(got.contains("# TYPE node_timex_pps_jitter_seconds gauge\n"));
    }

    #[test]
    fn nanosecond_mode_and_unsynchronised_clock() {
        let r = Reading {
            state: TIME_ERROR,
            status: 0x2000 | 0x0040, // STA_NANO | STA_UNSYNC
            offset: 1_500_000,       // ns
            jitter: 250,
            ..Reading::default()
        };
        let mut w = MetricWriter::new();
        write(&r, &mut w);
        let got = w.render_to_string();
        assert_eq!(value(&got, "node_timex_sync_status"), "0");
        assert_eq!(value(&got, "node_timex_offset_seconds"), "0.0015");
        assert_eq!(value(&got, "node_timex_pps_jitter_seconds"), "2.5e-07");
        assert_eq!(value(&got, "node_timex_status"), "8256");
        assert_eq!(value(&got, "node_timex_frequency_adjustment_ratio"), "1");
    }

    #[test]
    fn live_reading_is_consistent() {
        let r = adjtimex().expect("read-only adjtimex");
        // The kernel reports TIME_ERROR whenever STA_UNSYNC is set.
        if r.status & i64::from(libc::STA_UNSYNC) != 0 {
            assert_eq!(r.state, TIME_ERROR);
        }
        assert!(r.tick > 0, "tick {}", r.tick);
        let mut w = MetricWriter::new();
        Timex::new(&Config::default().context("timex").expect("registered"))
            .collect(&mut w)
            .expect("timex");
        let got = w.render_to_string();
        assert_eq!(w.sample_count(), 17);
        let want_sync = if r.state == TIME_ERROR { "0" } else { "1" };
        assert_eq!(value(&got, "node_timex_sync_status"), want_sync);
        assert_eq!(value(&got, "node_timex_status"), r.status.to_string());
    }
}
