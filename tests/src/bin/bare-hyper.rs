//! bare-hyper: the ceiling for `scripts/bench-router`: a hyper 1.x HTTP/1.1 server that reads
//! each request's whole body and answers 200 with a small JSON body, and does nothing else.
//!
//! It runs on the same kind of runtime as beacon-router (tokio multi-threaded, 2 workers by
//! default), so the difference between the two is what the router does per webhook: parsing,
//! routing, the durable group commit and its answer. Once listening it prints
//! `listening on ADDR` on stdout (the benchmark waits for that line); it runs until killed.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

const USAGE: &str = "usage: bare-hyper [--listen ADDR] [--workers N]

  --listen ADDR   address to listen on (default 127.0.0.1:0: a free port, printed)
  --workers N     tokio worker threads (default 2, as beacon-router)";

/// The answer to every request; the router answers a similar JSON object.
const ANSWER: &[u8] = br#"{"status":"ok"}"#;

/// Command-line options.
#[derive(Debug, PartialEq)]
struct Options {
    listen: SocketAddr,
    workers: usize,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match parse_args(&args).and_then(|opts| serve(&opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare-hyper: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn parse_args(args: &[String]) -> anyhow::Result<Options> {
    let mut opts = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        workers: 2,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_owned())),
            None => (arg.as_str(), None),
        };
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .with_context(|| format!("{flag} needs a value"))?,
        };
        match flag {
            "--listen" => {
                opts.listen = value
                    .parse()
                    .with_context(|| format!("--listen: bad address {value:?}"))?
            }
            "--workers" => match value.parse::<usize>() {
                Ok(n) if n > 0 => opts.workers = n,
                _ => bail!("--workers must be a positive integer, got {value:?}"),
            },
            _ => bail!("unknown argument {arg:?}\n{USAGE}"),
        }
    }
    Ok(opts)
}

fn serve(opts: &Options) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.workers)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("listen on {}", opts.listen))?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // E.g. out of file descriptors: keep serving the connections we have.
                    eprintln!("bare-hyper: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            // As axum::serve does, so both servers answer small requests without Nagle delay.
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer));
                // A client closing its connection mid-request is not the server's problem.
                let _ = conn.await;
            });
        }
    })
}

/// Reads the whole body, then answers 200 (400 when the body could not be read).
async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let status = match req.into_body().collect().await {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::BAD_REQUEST,
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(ANSWER)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options() -> anyhow::Result<()> {
        let o = parse_args(&args(&["--listen=127.0.0.1:8080", "--workers", "4"]))?;
        assert_eq!(o.listen, "127.0.0.1:8080".parse::<SocketAddr>()?);
        assert_eq!(o.workers, 4);
        assert_eq!(parse_args(&[])?.workers, 2);
        for bad in [
            &["--workers", "0"][..],
            &["--listen", "nope"],
            &["--x"],
            &["--listen"],
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn answers_200_after_reading_the_body() -> anyhow::Result<()> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer));
            let _ = conn.await;
        });
        let mut c = tokio::net::TcpStream::connect(addr).await?;
        c.write_all(
            b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        )
        .await?;
        let mut out = String::new();
        c.read_to_string(&mut out).await?;
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with(r#"{"status":"ok"}"#), "{out}");
        Ok(())
    }
}
