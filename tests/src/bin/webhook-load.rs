//! webhook-load: an HTTP/1.1 keep-alive load generator that POSTs Alertmanager webhooks, used by
//! `scripts/bench-router` to measure webhook intake throughput and acknowledgement latency.
//!
//! Two modes, both for `--duration` seconds over `--concurrency` keep-alive connections (each
//! opened before the clock starts):
//! - closed loop (default): each connection sends its next webhook as soon as the previous one
//!   was answered; measures throughput. Latency runs from sending to the end of the answer.
//! - open loop (`--rate R`): webhook `i` is due at `start + i/R` whatever happened before, and its
//!   latency runs from that due time when every connection was still busy then, so a server
//!   stall is counted in full for every webhook it delayed (no coordinated omission). When a
//!   connection was idle and waiting for the due time, latency runs from when its timer fired:
//!   the timer's own lateness (tokio timers have 1 ms resolution) is the client's, and is
//!   reported separately as `send_lag`.
//!
//! Every webhook is distinct: its `groupKey` and each alert's `fingerprint` get a suffix unique to
//! this run and request, so a router's deduplication keeps (and stores) every one.
//!
//! Output is one JSON object: requests, ok, errors (non-2xx or transport), throughput (answered
//! 2xx per second), p50/p90/p99/max/mean latency in ms. The exit status is 1 when any request
//! failed, so a benchmark never reports figures from a broken run.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use beacon_e2e::loadgen::{self, percentile};
use clap::Parser;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "webhook-load",
    about = "HTTP/1.1 load generator POSTing Alertmanager webhooks"
)]
struct Args {
    /// Target (http:// only), e.g. http://127.0.0.1:9094/webhooks/alertmanager.
    #[arg(long)]
    url: String,
    /// An Alertmanager webhook body (JSON), or a fixture object with it in "body".
    #[arg(long, value_name = "FILE")]
    payload: String,
    /// Keep-alive connections: closed-loop senders, or the most webhooks in flight in open loop.
    #[arg(long, default_value = "8", value_parser = loadgen::positive_count)]
    concurrency: usize,
    /// How long to send, in seconds.
    #[arg(long, default_value = "10", value_parser = loadgen::positive_secs)]
    duration: Duration,
    /// Open loop: this many webhooks per second, due on a fixed schedule.
    #[arg(long, value_parser = loadgen::positive_number)]
    rate: Option<f64>,
    /// Client runtime threads (1 leaves the CPUs to the server).
    #[arg(long, default_value = "1", value_parser = loadgen::positive_count)]
    threads: usize,
    /// Connect and per-request timeout, in seconds.
    #[arg(long, default_value = "10", value_parser = loadgen::positive_secs)]
    timeout: Duration,
}

/// The text that marks where the per-request suffix goes in the payload template.
const MARK: &str = "@@webhook-load-seq@@";

/// Command-line options.
#[derive(Debug)]
struct Options {
    target: Target,
    payload: Template,
    concurrency: usize,
    duration: Duration,
    rate: Option<f64>,
    threads: usize,
    timeout: Duration,
}

/// Where to send: `host:port` to connect to and put in `Host`, and the request path.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    authority: String,
    path: String,
}

/// The payload split at each place a request's unique suffix goes.
#[derive(Debug, Clone, PartialEq)]
struct Template {
    parts: Vec<String>,
}

impl Template {
    /// Builds a template from a webhook body (or a fixture holding it in `body`): the
    /// `groupKey` and every `alerts[].fingerprint` get a suffix slot.
    fn from_json(text: &str) -> anyhow::Result<Self> {
        let mut v: serde_json::Value = serde_json::from_str(text).context("payload is not JSON")?;
        if let Some(body) = v.get_mut("body") {
            v = body.take();
        }
        let mut slots = 0;
        let mut mark = |s: &mut serde_json::Value, what: &str| -> anyhow::Result<()> {
            let text = s
                .as_str()
                .with_context(|| format!("payload {what} is not a string"))?;
            *s = serde_json::Value::String(format!("{text}-{MARK}"));
            slots += 1;
            Ok(())
        };
        mark(
            v.get_mut("groupKey")
                .context("payload has no groupKey: not an Alertmanager webhook")?,
            "groupKey",
        )?;
        if let Some(alerts) = v.get_mut("alerts").and_then(|a| a.as_array_mut()) {
            for a in alerts {
                if let Some(fp) = a.get_mut("fingerprint") {
                    mark(fp, "fingerprint")?;
                }
            }
        }
        let text = serde_json::to_string(&v)?;
        let parts: Vec<String> = text.split(MARK).map(str::to_owned).collect();
        if parts.len() != slots + 1 {
            bail!("payload already contains {MARK:?}");
        }
        Ok(Template { parts })
    }

    /// The body of request `seq` of run `run`.
    fn render(&self, run: &str, seq: u64) -> String {
        let suffix = format!("{run}-{seq}");
        let len: usize = self.parts.iter().map(String::len).sum();
        let mut out = String::with_capacity(len + self.parts.len() * suffix.len());
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push_str(&suffix);
            }
            out.push_str(part);
        }
        out
    }
}

/// What one connection measured.
#[derive(Debug, Default)]
struct ConnResult {
    /// Latency of each 2xx answer, in nanoseconds.
    latencies: Vec<u64>,
    /// Open loop: how late each send started after its due time while the connection was idle
    /// (the client's timer), in nanoseconds.
    send_lags: Vec<u64>,
    errors: usize,
    first_error: Option<String>,
    /// When this connection's last answer arrived.
    last_done: Option<Instant>,
}

/// State all connections share.
#[derive(Debug)]
struct Shared {
    opts: Options,
    /// Unique to this invocation, so runs against one router never repeat a webhook.
    run: String,
    /// The next request number to claim.
    next: AtomicU64,
}

fn main() -> ExitCode {
    match options(Args::parse()).and_then(run) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("webhook-load: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn options(a: Args) -> anyhow::Result<Options> {
    let text = std::fs::read_to_string(&a.payload)
        .with_context(|| format!("read --payload {}", a.payload))?;
    Ok(Options {
        target: parse_url(&a.url)?,
        payload: Template::from_json(&text).with_context(|| format!("--payload {}", a.payload))?,
        concurrency: a.concurrency,
        duration: a.duration,
        rate: a.rate,
        threads: a.threads,
        timeout: a.timeout,
    })
}

/// Parses `http://host:port[/path]`.
fn parse_url(url: &str) -> anyhow::Result<Target> {
    let u = loadgen::parse_http_url(url)?;
    if !u.has_port {
        bail!("URL {url:?} needs a host and a port");
    }
    Ok(Target {
        authority: u.authority,
        path: u.path,
    })
}

fn run(opts: Options) -> anyhow::Result<bool> {
    let rt = if opts.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.threads)
            .enable_all()
            .build()
    }
    .context("start the async runtime")?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let shared = Arc::new(Shared {
        run: format!("{nanos:x}"),
        next: AtomicU64::new(0),
        opts,
    });
    rt.block_on(measure(shared))
}

async fn measure(shared: Arc<Shared>) -> anyhow::Result<bool> {
    let opts = &shared.opts;
    // Connect everything first, so connection setup is not part of the measurement.
    let mut senders = Vec::with_capacity(opts.concurrency);
    for _ in 0..opts.concurrency {
        senders.push(connect(&opts.target, opts.timeout).await?);
    }
    let start = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|s| tokio::spawn(connection(shared.clone(), s, start)))
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        results.push(t.await.unwrap_or_else(|e| ConnResult {
            errors: 1,
            first_error: Some(format!("sender task failed: {e}")),
            ..ConnResult::default()
        }));
    }

    let mut latencies = Vec::new();
    let mut send_lags = Vec::new();
    let (mut errors, mut first_error, mut last_done) = (0usize, None, start);
    for r in results {
        latencies.extend(r.latencies);
        send_lags.extend(r.send_lags);
        errors += r.errors;
        first_error = first_error.or(r.first_error);
        last_done = last_done.max(r.last_done.unwrap_or(start));
    }
    latencies.sort_unstable();
    send_lags.sort_unstable();
    let ok = latencies.len();
    // Until the last answer: in open loop the schedule ends at `duration`, answers come later.
    let wall = last_done.duration_since(start).as_secs_f64();
    let ms = |ns: u64| ns as f64 / 1e6;
    let pct = |v: &[u64], p: f64| percentile(v, p).map_or(0.0, |n| ms(*n));
    let mean = if ok == 0 {
        0.0
    } else {
        latencies.iter().map(|&n| ms(n)).sum::<f64>() / ok as f64
    };
    let v = serde_json::json!({
        "mode": if opts.rate.is_some() { "open" } else { "closed" },
        "concurrency": opts.concurrency,
        "rate": opts.rate,
        "duration_s": opts.duration.as_secs_f64(),
        "wall_s": wall,
        "requests": ok + errors,
        "ok": ok,
        "errors": errors,
        "throughput": if wall > 0.0 { ok as f64 / wall } else { 0.0 },
        "p50_ms": pct(&latencies, 50.0),
        "p90_ms": pct(&latencies, 90.0),
        "p99_ms": pct(&latencies, 99.0),
        "max_ms": latencies.last().copied().map_or(0.0, ms),
        "mean_ms": mean,
        "send_lag_p99_ms": pct(&send_lags, 99.0),
        "send_lag_max_ms": send_lags.last().copied().map_or(0.0, ms),
    });
    println!("{v}");
    if let Some(e) = first_error {
        eprintln!("webhook-load: {errors} request(s) failed; first error: {e}");
    }
    Ok(errors == 0 && ok > 0)
}

/// Opens a keep-alive HTTP/1.1 connection; its I/O runs in a task of its own.
async fn connect(target: &Target, timeout: Duration) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::time::timeout(
        timeout,
        tokio::net::TcpStream::connect(target.authority.as_str()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("connect {}: timed out", target.authority))?
    .with_context(|| format!("connect {}", target.authority))?;
    // Requests are written in one piece; Nagle would only add delay.
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    tokio::spawn(async move {
        // Errors surface on the requests that were using the connection.
        let _ = conn.await;
    });
    Ok(sender)
}

/// One connection's loop: claim the next request, wait for its due time (open loop), send it,
/// record the outcome; until the schedule or the duration ends.
async fn connection(
    shared: Arc<Shared>,
    mut sender: SendRequest<Full<Bytes>>,
    start: Instant,
) -> ConnResult {
    let opts = &shared.opts;
    let end = start + opts.duration;
    let mut res = ConnResult::default();
    loop {
        let seq = shared.next.fetch_add(1, Ordering::Relaxed);
        // When this request's latency starts counting.
        let from = match opts.rate {
            Some(rate) => {
                let due = start + Duration::from_secs_f64(seq as f64 / rate);
                if due >= end {
                    break;
                }
                if Instant::now() < due {
                    // Idle until due: count from when the timer fired (see the module docs).
                    tokio::time::sleep_until(due.into()).await;
                    let woke = Instant::now();
                    res.send_lags.push(nanos(woke.duration_since(due)));
                    woke
                } else {
                    // Busy past the due time: the wait is the server's doing and counts.
                    due
                }
            }
            None => {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                now
            }
        };
        let body = shared.opts.payload.render(&shared.run, seq);
        let outcome = tokio::time::timeout(opts.timeout, exchange(&mut sender, &opts.target, body))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {:?}", opts.timeout)));
        let done = Instant::now();
        res.last_done = Some(done);
        let failure = match outcome {
            Ok(status) if (200..300).contains(&status) => {
                res.latencies.push(nanos(done.duration_since(from)));
                None
            }
            Ok(status) => Some(format!("HTTP status {status}")),
            Err(e) => Some(format!("{e:#}")),
        };
        if let Some(msg) = failure {
            res.errors += 1;
            res.first_error.get_or_insert(msg);
            if sender.is_closed() || !sender.is_ready() {
                // The connection's state is unknown after an error: start afresh.
                match connect(&opts.target, opts.timeout).await {
                    Ok(s) => sender = s,
                    Err(e) => {
                        res.errors += 1;
                        res.first_error.get_or_insert(format!("{e:#}"));
                        break;
                    }
                }
            }
        }
    }
    res
}

/// Sends one webhook and reads the whole answer; returns its status.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    body: String,
) -> anyhow::Result<u16> {
    sender.ready().await.context("connection")?;
    let req = Request::post(target.path.as_str())
        .header(hyper::header::HOST, target.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "Alertmanager/0.25.0")
        .body(Full::new(Bytes::from(body)))?;
    let resp = sender.send_request(req).await.context("send")?;
    let status = resp.status().as_u16();
    resp.into_body().collect().await.context("read answer")?;
    Ok(status)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = r#"{"path": "/webhooks/alertmanager", "body": {"version": "4",
        "groupKey": "{}:{alertname=\"A\"}", "status": "firing", "receiver": "r",
        "alerts": [{"fingerprint": "f1", "labels": {"alertname": "A"}},
                   {"fingerprint": "f2", "labels": {"alertname": "A"}}]}}"#;

    #[test]
    fn every_request_gets_its_own_group_key_and_fingerprints() -> anyhow::Result<()> {
        let t = Template::from_json(FIXTURE)?;
        let a: serde_json::Value = serde_json::from_str(&t.render("r1", 7))?;
        assert_eq!(a["groupKey"], "{}:{alertname=\"A\"}-r1-7");
        assert_eq!(a["alerts"][0]["fingerprint"], "f1-r1-7");
        assert_eq!(a["alerts"][1]["fingerprint"], "f2-r1-7");
        assert_eq!(a["alerts"][1]["labels"]["alertname"], "A");
        assert!(a.get("path").is_none(), "the fixture wrapper is gone");
        assert_ne!(t.render("r1", 7), t.render("r1", 8));
        assert_ne!(t.render("r1", 7), t.render("r2", 7));
        Ok(())
    }

    #[test]
    fn payload_must_be_an_alertmanager_webhook() {
        assert!(Template::from_json("not json").is_err());
        assert!(Template::from_json(r#"{"alerts": []}"#).is_err());
        assert!(Template::from_json(r#"{"groupKey": 3}"#).is_err());
        assert!(Template::from_json(&format!(r#"{{"groupKey": "{MARK}"}}"#)).is_err());
    }

    #[test]
    fn urls() -> anyhow::Result<()> {
        let t = parse_url("http://127.0.0.1:9094/webhooks/alertmanager")?;
        assert_eq!(t.authority, "127.0.0.1:9094");
        assert_eq!(t.path, "/webhooks/alertmanager");
        assert_eq!(parse_url("http://[::1]:80")?.path, "/");
        for bad in ["https://a:1/", "http://a/x", "http:///x", "http://[::1]/"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        Ok(())
    }

    /// A tiny server that answers `status` to every request on one connection.
    async fn server(status: u16) -> anyhow::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: Request<hyper::body::Incoming>| async move {
                            let _ = req.into_body().collect().await;
                            let mut r = hyper::Response::new(Full::new(Bytes::from_static(b"{}")));
                            *r.status_mut() = hyper::StatusCode::from_u16(status).expect("status");
                            Ok::<_, hyper::Error>(r)
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(format!("http://{addr}/webhooks/alertmanager"))
    }

    fn options(url: &str, rate: Option<f64>) -> anyhow::Result<Options> {
        Ok(Options {
            target: parse_url(url)?,
            payload: Template::from_json(FIXTURE)?,
            concurrency: 2,
            duration: Duration::from_millis(300),
            rate,
            threads: 1,
            timeout: Duration::from_secs(5),
        })
    }

    fn shared(opts: Options) -> Arc<Shared> {
        Arc::new(Shared {
            opts,
            run: "t".into(),
            next: AtomicU64::new(0),
        })
    }

    #[tokio::test]
    async fn open_loop_sends_on_schedule_and_closed_loop_counts_errors() -> anyhow::Result<()> {
        let url = server(200).await?;
        // 100/s for 0.3 s: exactly 30 webhooks are due.
        let s = shared(options(&url, Some(100.0))?);
        assert!(measure(s.clone()).await?, "all answered 200");
        // Every connection claims one number past the schedule before it stops.
        assert_eq!(s.next.load(Ordering::Relaxed), 30 + 2);

        let bad = server(503).await?;
        let s = shared(options(&bad, None)?);
        assert!(!measure(s).await?, "503 answers are failures");
        Ok(())
    }
}
