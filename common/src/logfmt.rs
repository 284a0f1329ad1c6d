//! Log lines in the two formats Prometheus exporters write (`--log.format`): `logfmt`
//! (`time=… level=INFO source=… msg="…" key=value`) and `json` (one object per line with the
//! same keys), as node_exporter's promslog does, so log pipelines parsing node_exporter's
//! output parse ours.

use std::fmt::{self, Write as _};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `--log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Logfmt,
    Json,
}

impl LogFormat {
    /// Parses `logfmt` or `json`.
    pub fn parse(s: &str) -> Result<LogFormat, String> {
        match s {
            "logfmt" => Ok(LogFormat::Logfmt),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("invalid log format {s:?}: want logfmt or json")),
        }
    }
}

impl<S, N> FormatEvent<S, N> for LogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let level = level_name(*meta.level());
        let mut line = String::with_capacity(128);
        let pairs = [
            ("time", time.as_str()),
            ("level", level),
            ("source", meta.target()),
            ("msg", fields.message.as_str()),
        ];
        let rest = fields.pairs.iter().map(|(k, v)| (*k, v.as_str()));
        match self {
            LogFormat::Logfmt => {
                for (i, (k, v)) in pairs.into_iter().chain(rest).enumerate() {
                    if i > 0 {
                        line.push(' ');
                    }
                    line.push_str(k);
                    line.push('=');
                    logfmt_value(&mut line, v);
                }
            }
            LogFormat::Json => {
                line.push('{');
                for (i, (k, v)) in pairs.into_iter().chain(rest).enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    json_string(&mut line, k);
                    line.push(':');
                    json_string(&mut line, v);
                }
                line.push('}');
            }
        }
        writeln!(w, "{line}")
    }
}

/// slog's level names.
fn level_name(l: Level) -> &'static str {
    match l {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        // slog has no trace level; both read as DEBUG there.
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

/// An event's message and other fields, in the order recorded.
#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.pairs.push((field.name(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.pairs.push((field.name(), text));
        }
    }
}

/// A logfmt value: bare when it needs no quoting, otherwise quoted like a JSON string
/// (go-logfmt's rules: `\"`, `\\`, `\n` escaped).
fn logfmt_value(out: &mut String, v: &str) {
    let needs_quotes = v.is_empty()
        || v.chars()
            .any(|c| c <= ' ' || c == '=' || c == '"' || c == '\u{7f}' || c == '\u{fffd}');
    if needs_quotes {
        json_string(out, v);
    } else {
        out.push_str(v);
    }
}

/// A JSON string literal.
fn json_string(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_quotes_only_what_needs_it() {
        let mut s = String::new();
        for v in ["plain", "", "two words", "a=b", "say \"hi\"\n"] {
            logfmt_value(&mut s, v);
            s.push('|');
        }
        assert_eq!(s, "plain|\"\"|\"two words\"|\"a=b\"|\"say \\\"hi\\\"\\n\"|");
    }

    #[test]
    fn json_escapes_controls() {
        let mut s = String::new();
        json_string(&mut s, "a\"b\\c\u{1}\n");
        assert_eq!(s, "\"a\\\"b\\\\c\\u0001\\n\"");
    }

    #[test]
    fn formats_parse() {
        assert_eq!(LogFormat::parse("json"), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse("logfmt"), Ok(LogFormat::Logfmt));
        assert!(LogFormat::parse("text").is_err());
    }
}
