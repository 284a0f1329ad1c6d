//! scrape-load: a small HTTP/1.1 keep-alive load generator for `/metrics` endpoints, used by
//! `scripts/bench-agent` to measure scrape latency and bytes served.
//!
//! Each of `--concurrency` scrapers opens one keep-alive connection (as Prometheus does per
//! target) and performs `--requests` sequential GETs on it; all scrapers start together behind a
//! barrier. Latency is measured per request, from writing the request to reading the last body
//! byte. Plain blocking `std::net` I/O: a thread per scraper is all 16 scrapers need, and it keeps
//! the client's own overhead small and easy to reason about.
//!
//! Output is one `key=value` line (or JSON with `--json`) with count, errors, p50, p99, max, and
//! body bytes per response. The exit status is 1 when any request failed, so a benchmark never
//! reports figures from a broken run.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::process::ExitCode;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use beacon_e2e::loadgen::{self, percentile};
use clap::Parser;

/// Longest status or header line accepted; real exporters send lines of a few dozen bytes.
const MAX_LINE: usize = 16 * 1024;
/// Most header lines accepted in one response.
const MAX_HEADERS: usize = 100;
/// Largest body accepted, so a broken length field cannot exhaust memory.
const MAX_BODY: usize = 256 * 1024 * 1024;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "scrape-load",
    about = "HTTP/1.1 keep-alive load generator for /metrics"
)]
struct Args {
    /// Target, `http://HOST[:PORT]/PATH` (http:// only).
    #[arg(long)]
    url: String,
    /// Parallel scrapers, each on its own keep-alive connection.
    #[arg(long, default_value = "1", value_parser = loadgen::positive_count)]
    concurrency: usize,
    /// Sequential requests per scraper.
    #[arg(long, default_value = "100", value_parser = loadgen::positive_count)]
    requests: usize,
    /// Send `Accept-Encoding: gzip`, as Prometheus does.
    #[arg(long)]
    gzip: bool,
    /// Connect/read/write timeout per request, in seconds.
    #[arg(long, default_value = "10", value_parser = loadgen::positive_secs)]
    timeout: Duration,
    /// Print a JSON object instead of a key=value line.
    #[arg(long)]
    json: bool,
}

/// Command-line options.
#[derive(Debug)]
struct Options {
    target: Target,
    concurrency: usize,
    requests: usize,
    gzip: bool,
    timeout: Duration,
    json: bool,
}

/// Where to send requests: resolved address plus what goes in the request line and `Host`.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    addr: SocketAddr,
    authority: String,
    path: String,
}

/// The parts of a response the benchmark needs (the body goes into a caller's buffer).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Response {
    status: u16,
    /// `Content-Encoding: gzip` was set.
    gzip: bool,
    /// The connection can carry another request.
    keep_alive: bool,
}

/// What one scraper thread measured.
#[derive(Debug, Default)]
struct WorkerResult {
    /// Latency of each successful (200) request.
    latencies: Vec<Duration>,
    /// Body bytes received over all successful requests (as sent: compressed if gzip).
    body_bytes: u64,
    /// Successful responses that were gzip-encoded.
    gzip_responses: usize,
    errors: usize,
    first_error: Option<String>,
    /// The first successful body and whether it was gzip-encoded, to count its samples.
    first_body: Option<(Vec<u8>, bool)>,
}

fn main() -> ExitCode {
    match options(Args::parse()).and_then(|opts| run(&opts)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("scrape-load: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn options(a: Args) -> anyhow::Result<Options> {
    Ok(Options {
        target: parse_url(&a.url)?,
        concurrency: a.concurrency,
        requests: a.requests,
        gzip: a.gzip,
        timeout: a.timeout,
        json: a.json,
    })
}

/// Options from flags (without the program name), as `main` gets them.
#[cfg(test)]
fn parse_args(args: &[String]) -> anyhow::Result<Options> {
    options(Args::try_parse_from(
        std::iter::once("scrape-load").chain(args.iter().map(String::as_str)),
    )?)
}

/// Parses `http://host[:port][/path]` and resolves the host.
fn parse_url(url: &str) -> anyhow::Result<Target> {
    let u = loadgen::parse_http_url(url)?;
    let with_port = if u.has_port {
        u.authority.clone()
    } else {
        format!("{}:80", u.authority)
    };
    let addr = with_port
        .to_socket_addrs()
        .with_context(|| format!("resolve {with_port}"))?
        .next()
        .with_context(|| format!("{with_port} resolves to no address"))?;
    Ok(Target {
        addr,
        authority: u.authority,
        path: u.path,
    })
}

/// The request every scraper sends, built once.
fn build_request(target: &Target, gzip: bool) -> Vec<u8> {
    // Ask for text format 0.0.4 explicitly: a Prometheus-style OpenMetrics Accept header would
    // make node_exporter switch format while beacon-agent serves 0.0.4, skewing the comparison.
    let encoding = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: scrape-load\r\n\
         Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1\r\n{encoding}\r\n",
        target.path, target.authority
    )
    .into_bytes()
}

/// Runs the load and prints the summary; `Ok(false)` when any request failed.
fn run(opts: &Options) -> anyhow::Result<bool> {
    let request = build_request(&opts.target, opts.gzip);
    // Every scraper plus this thread, so the wall clock starts when the scrapers do.
    let barrier = Barrier::new(opts.concurrency + 1);
    let (results, wall) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..opts.concurrency)
            .map(|_| s.spawn(|| scraper(opts, &request, &barrier)))
            .collect();
        barrier.wait();
        let start = Instant::now();
        let results: Vec<WorkerResult> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| panicked_worker()))
            .collect();
        (results, start.elapsed())
    });

    let mut latencies: Vec<Duration> = Vec::with_capacity(opts.concurrency * opts.requests);
    let (mut body_bytes, mut gzip_responses, mut errors) = (0u64, 0usize, 0usize);
    let mut first_error = None;
    let mut first_body = None;
    for r in results {
        latencies.extend(r.latencies);
        body_bytes += r.body_bytes;
        gzip_responses += r.gzip_responses;
        errors += r.errors;
        first_error = first_error.or(r.first_error);
        first_body = first_body.or(r.first_body);
    }
    latencies.sort_unstable();
    let count = latencies.len();
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let mean_ms = if count == 0 {
        0.0
    } else {
        latencies.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / count as f64
    };
    let bytes_per_response = if count == 0 {
        0
    } else {
        body_bytes / count as u64
    };
    // Count the samples of one response, to show both exporters served comparable content.
    let (samples, text_bytes) = match &first_body {
        Some((body, gz)) => {
            let text = decode(body, *gz)?;
            (count_samples(&text), text.len())
        }
        None => (0, 0),
    };
    let encoding = match gzip_responses {
        0 => "identity",
        n if n == count => "gzip",
        _ => "mixed",
    };

    let (p50, p99, max) = (
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last()),
    );
    let wall_s = wall.as_secs_f64();
    if opts.json {
        let v = serde_json::json!({
            "count": count, "errors": errors, "concurrency": opts.concurrency,
            "p50_ms": p50, "p99_ms": p99, "max_ms": max, "mean_ms": mean_ms,
            "bytes_per_response": bytes_per_response, "encoding": encoding,
            "samples": samples, "text_bytes": text_bytes, "wall_s": wall_s,
        });
        println!("{v}");
    } else {
        println!(
            "count={count} errors={errors} concurrency={} p50_ms={p50:.3} p99_ms={p99:.3} \
             max_ms={max:.3} mean_ms={mean_ms:.3} bytes_per_response={bytes_per_response} \
             encoding={encoding} samples={samples} text_bytes={text_bytes} wall_s={wall_s:.3}",
            opts.concurrency
        );
    }
    if let Some(e) = first_error {
        eprintln!("scrape-load: {errors} request(s) failed; first error: {e}");
    }
    Ok(errors == 0 && count > 0)
}

/// Stands in for a scraper thread that panicked (a bug here, not in the server).
fn panicked_worker() -> WorkerResult {
    WorkerResult {
        errors: 1,
        first_error: Some("scraper thread panicked".to_owned()),
        ..WorkerResult::default()
    }
}

/// One scraper: `opts.requests` sequential requests over a keep-alive connection, reconnecting
/// only after an error or when the server closes the connection.
fn scraper(opts: &Options, request: &[u8], barrier: &Barrier) -> WorkerResult {
    let mut res = WorkerResult {
        latencies: Vec::with_capacity(opts.requests),
        ..WorkerResult::default()
    };
    let mut conn: Option<BufReader<TcpStream>> = None;
    let mut body = Vec::new();
    barrier.wait();
    for _ in 0..opts.requests {
        let start = Instant::now();
        let outcome = exchange(&mut conn, opts, request, &mut body);
        let elapsed = start.elapsed();
        let failure = match outcome {
            Ok(r) if r.status == 200 => {
                res.latencies.push(elapsed);
                res.body_bytes += body.len() as u64;
                res.gzip_responses += usize::from(r.gzip);
                if res.first_body.is_none() {
                    res.first_body = Some((body.clone(), r.gzip));
                }
                None
            }
            Ok(r) => Some(format!("HTTP status {}", r.status)),
            Err(e) => {
                // The connection's state is unknown after an I/O or protocol error.
                conn = None;
                Some(format!("{e:#}"))
            }
        };
        if let Some(msg) = failure {
            res.errors += 1;
            res.first_error.get_or_insert(msg);
        }
    }
    res
}

/// Sends one request (connecting first if needed) and reads the response into `body`.
fn exchange(
    conn: &mut Option<BufReader<TcpStream>>,
    opts: &Options,
    request: &[u8],
    body: &mut Vec<u8>,
) -> anyhow::Result<Response> {
    let reader = match conn {
        Some(r) => r,
        None => conn.insert(connect(&opts.target, opts.timeout)?),
    };
    reader
        .get_mut()
        .write_all(request)
        .context("send request")?;
    let resp = read_response(reader, body)?;
    if !resp.keep_alive {
        *conn = None;
    }
    Ok(resp)
}

fn connect(target: &Target, timeout: Duration) -> anyhow::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect_timeout(&target.addr, timeout)
        .with_context(|| format!("connect {}", target.addr))?;
    // Requests are written in one piece; Nagle would only add delay.
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(BufReader::with_capacity(64 * 1024, stream))
}

/// Reads one HTTP/1.x response: status line, headers, and a body delimited by
/// `Transfer-Encoding: chunked`, `Content-Length`, or connection close. Interim 1xx responses
/// are skipped.
fn read_response<R: BufRead>(r: &mut R, body: &mut Vec<u8>) -> anyhow::Result<Response> {
    body.clear();
    let mut line = Vec::new();
    loop {
        if read_line(r, &mut line)? == 0 {
            bail!("connection closed before the response");
        }
        let status_line = std::str::from_utf8(&line).context("status line is not UTF-8")?;
        let mut parts = status_line.split_ascii_whitespace();
        let version = parts.next().unwrap_or("");
        let http10 = match version {
            "HTTP/1.1" => false,
            "HTTP/1.0" => true,
            _ => bail!("bad status line {:?}", status_line.trim_end()),
        };
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {:?}", status_line.trim_end()))?;

        let mut content_length: Option<usize> = None;
        let mut chunked = false;
        let mut gzip = false;
        // HTTP/1.1 connections persist unless closed; HTTP/1.0 ones only if asked to.
        let mut keep_alive = !http10;
        for n in 0.. {
            if n == MAX_HEADERS {
                bail!("more than {MAX_HEADERS} header lines");
            }
            if read_line(r, &mut line)? == 0 {
                bail!("connection closed in the headers");
            }
            let header = std::str::from_utf8(&line).context("header line is not UTF-8")?;
            let header = header.trim_end_matches(['\r', '\n']);
            if header.is_empty() {
                break;
            }
            let (name, value) = header
                .split_once(':')
                .with_context(|| format!("bad header line {header:?}"))?;
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                let len = value
                    .parse::<usize>()
                    .with_context(|| format!("bad Content-Length {value:?}"))?;
                content_length = Some(len);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Chunked is always the last coding when present (RFC 9112 6.1).
                let last = value.rsplit(',').next().unwrap_or("").trim();
                chunked = last.eq_ignore_ascii_case("chunked");
                if !chunked {
                    bail!("unsupported Transfer-Encoding {value:?}");
                }
            } else if name.eq_ignore_ascii_case("content-encoding") {
                gzip = value.eq_ignore_ascii_case("gzip");
            } else if name.eq_ignore_ascii_case("connection") {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        keep_alive = false;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        keep_alive = true;
                    }
                }
            }
        }
        if (100..200).contains(&status) {
            continue; // e.g. 100 Continue: the real response follows.
        }

        // 204 and 304 never have a body, whatever the headers say.
        if status == 204 || status == 304 {
            // Nothing to read.
        } else if chunked {
            read_chunked(r, body, &mut line)?;
        } else if let Some(len) = content_length {
            if len > MAX_BODY {
                bail!("Content-Length {len} exceeds the {MAX_BODY}-byte limit");
            }
            body.resize(len, 0);
            r.read_exact(body).context("read body")?;
        } else {
            // No length: the body runs until the server closes the connection.
            r.take(MAX_BODY as u64 + 1)
                .read_to_end(body)
                .context("read body")?;
            if body.len() > MAX_BODY {
                bail!("body exceeds the {MAX_BODY}-byte limit");
            }
            keep_alive = false;
        }
        return Ok(Response {
            status,
            gzip,
            keep_alive,
        });
    }
}

/// Reads a chunked body (RFC 9112 7.1), ignoring chunk extensions and trailers.
fn read_chunked<R: BufRead>(
    r: &mut R,
    body: &mut Vec<u8>,
    line: &mut Vec<u8>,
) -> anyhow::Result<()> {
    loop {
        if read_line(r, line)? == 0 {
            bail!("connection closed in a chunked body");
        }
        let text = std::str::from_utf8(line).context("chunk size line is not UTF-8")?;
        let size_text = text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {:?}", text.trim_end()))?;
        if size == 0 {
            // Trailer fields, if any, end with an empty line.
            loop {
                if read_line(r, line)? == 0 {
                    bail!("connection closed in chunked trailers");
                }
                if line.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                    return Ok(());
                }
            }
        }
        let start = body.len();
        if size > MAX_BODY - start {
            bail!("chunked body exceeds the {MAX_BODY}-byte limit");
        }
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).context("read chunk")?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).context("read chunk end")?;
        if &crlf != b"\r\n" {
            bail!("chunk of {size} bytes not followed by CRLF");
        }
    }
}

/// Reads one line including its `\n` into `line`; returns its length, 0 at end of stream.
fn read_line<R: BufRead>(r: &mut R, line: &mut Vec<u8>) -> anyhow::Result<usize> {
    line.clear();
    let n = r
        .take(MAX_LINE as u64)
        .read_until(b'\n', line)
        .context("read line")?;
    if n > 0 && line.last() != Some(&b'\n') {
        if n == MAX_LINE {
            bail!("line longer than {MAX_LINE} bytes");
        }
        bail!("connection closed mid-line");
    }
    Ok(n)
}

/// The body as text, gunzipped if it was gzip-encoded.
fn decode(body: &[u8], gzip: bool) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    let raw: &[u8] = if gzip {
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut bytes)
            .context("gunzip body")?;
        &bytes
    } else {
        body
    };
    Ok(String::from_utf8_lossy(raw).into_owned())
}

/// Samples in a text-format exposition: non-empty lines that are not comments.
fn count_samples(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse(raw: &[u8]) -> anyhow::Result<(Response, Vec<u8>)> {
        let mut body = Vec::new();
        let resp = read_response(&mut Cursor::new(raw), &mut body)?;
        Ok((resp, body))
    }

    #[test]
    fn content_length_body() -> anyhow::Result<()> {
        let (resp, body) = parse(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\n\r\nhelloEXTRA",
        )?;
        assert_eq!(
            resp,
            Response {
                status: 200,
                gzip: false,
                keep_alive: true
            }
        );
        assert_eq!(body, b"hello");
        Ok(())
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() -> anyhow::Result<()> {
        let raw =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n\
            4;name=value\r\nWiki\r\nA\r\npedia in\r\n\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let (resp, body) = parse(raw)?;
        assert!(resp.gzip && resp.keep_alive);
        assert_eq!(body, b"Wikipedia in\r\n");
        Ok(())
    }

    #[test]
    fn two_responses_on_one_connection() -> anyhow::Result<()> {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na\
            HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n";
        let mut r = Cursor::new(&raw[..]);
        let mut body = Vec::new();
        read_response(&mut r, &mut body)?;
        assert_eq!(body, b"a");
        read_response(&mut r, &mut body)?;
        assert_eq!(body, b"b");
        Ok(())
    }

    #[test]
    fn interim_response_is_skipped() -> anyhow::Result<()> {
        let (resp, body) =
            parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")?;
        assert_eq!(resp.status, 200);
        assert_eq!(body, b"ok");
        Ok(())
    }

    #[test]
    fn body_until_close_ends_keep_alive() -> anyhow::Result<()> {
        let (resp, body) = parse(b"HTTP/1.0 200 OK\r\n\r\nall of it")?;
        assert!(!resp.keep_alive);
        assert_eq!(body, b"all of it");
        let (resp, _) =
            parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")?;
        assert!(!resp.keep_alive);
        Ok(())
    }

    #[test]
    fn malformed_responses_are_errors() {
        let bad: [&[u8]; 9] = [
            b"",
            b"SPDY/3 200 OK\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
        ];
        for raw in bad {
            assert!(parse(raw).is_err(), "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn oversized_lengths_are_errors() {
        let huge = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(parse(huge.as_bytes()).is_err());
        let chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n";
        assert!(parse(chunk).is_err());
        let long_header = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(MAX_LINE));
        assert!(parse(long_header.as_bytes()).is_err());
    }

    #[test]
    fn url_parsing() -> anyhow::Result<()> {
        let t = parse_url("http://127.0.0.1:9100/metrics")?;
        assert_eq!(t.addr, "127.0.0.1:9100".parse::<SocketAddr>()?);
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("127.0.0.1:9100", "/metrics")
        );
        let t = parse_url("http://[::1]")?;
        assert_eq!(t.addr, "[::1]:80".parse::<SocketAddr>()?);
        assert_eq!(t.path, "/");
        assert!(parse_url("https://127.0.0.1/").is_err());
        assert!(parse_url("http:///metrics").is_err());
        Ok(())
    }

    #[test]
    fn args() -> anyhow::Result<()> {
        let args: Vec<String> = [
            "--url=http://127.0.0.1:1/m",
            "--concurrency",
            "16",
            "--gzip",
        ]
        .map(String::from)
        .to_vec();
        let o = parse_args(&args)?;
        assert_eq!(
            (o.concurrency, o.requests, o.gzip, o.json),
            (16, 100, true, false)
        );
        for bad in [&["--concurrency", "0"][..], &["--url"], &["--bogus"], &[]] {
            let bad: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            assert!(parse_args(&bad).is_err(), "{bad:?}");
        }
        Ok(())
    }

    #[test]
    fn request_asks_for_gzip_only_when_told() -> anyhow::Result<()> {
        let t = parse_url("http://127.0.0.1:9/metrics")?;
        let plain = String::from_utf8(build_request(&t, false))?;
        let gz = String::from_utf8(build_request(&t, true))?;
        assert!(plain.starts_with("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(!plain.contains("gzip") && gz.contains("\r\nAccept-Encoding: gzip\r\n"));
        assert!(gz.ends_with("\r\n\r\n"));
        Ok(())
    }

    #[test]
    fn samples_counted_through_gzip() -> anyhow::Result<()> {
        let text = "# HELP a x\n# TYPE a gauge\na 1\nb{l=\"v\"} 2\n\n";
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes())?;
        let gz = enc.finish()?;
        assert_eq!(count_samples(&decode(&gz, true)?), 2);
        assert_eq!(count_samples(&decode(text.as_bytes(), false)?), 2);
        assert!(decode(b"not gzip", true).is_err());
        Ok(())
    }
}
