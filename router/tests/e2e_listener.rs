//! The webhook listener against slow and hostile clients, with the real binary: thousands of
//! connections that never finish their request header are all closed (made room for at the
//! connection cap, or timed out, and counted) while real webhooks keep being answered; a
//! kept-alive connection is closed once idle.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::{am_payload, Router, A};

/// Far beyond the cap below, and beyond the listen backlog.
const HOSTILE: usize = 3_000;
const MAX_CONNECTIONS: usize = 64;

fn config() -> String {
    format!(
        "inbound:\n  header_read_timeout: 2s\n  idle_timeout: 3s\n  max_connections: {MAX_CONNECTIONS}\n"
    )
}

/// Whether the server has closed `s` (EOF or reset) within `within`.
fn closed_within(mut s: &TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        if s.set_read_timeout(Some(left)).is_err() {
            return true;
        }
        match s.read(&mut buf) {
            Ok(0) => return true,
            // A response (408 or 400 on a timed-out header): the close follows.
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn connections_that_never_finish_their_header_are_closed_while_webhooks_are_served() {
    let r = Router::start(&config());
    let addr: SocketAddr = format!("127.0.0.1:{}", r.port).parse().expect("addr");
    let mut hostile = Vec::with_capacity(HOSTILE);
    let mut answered = 0;
    for i in 0..HOSTILE {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            // Half a header, never finished.
            if s.write_all(b"POST /webhooks/alertmanager HTTP/1.1\r\nHost: beacon\r\nContent-Len")
                .is_ok()
            {
                hostile.push(s);
            }
        }
        // Real webhooks, in the middle of the flood.
        if i % 500 == 499 {
            let (code, body) = r.alertmanager(&am_payload(
                &format!("DuringFlood{i}"),
                &[A {
                    name: "a",
                    firing: true,
                }],
                &[],
            ));
            assert_eq!(code, 200, "webhook {i} during the flood: {body}");
            answered += 1;
        }
    }
    assert_eq!(answered, HOSTILE / 500);
    assert!(
        hostile.len() > 4 * MAX_CONNECTIONS,
        "only {} hostile connections opened",
        hostile.len()
    );
    // Every one of them is closed: evicted to make room, or at the header-read timeout. One
    // deadline for all, so a listener that closes none fails in 30 s, not 3,000 times that.
    let deadline = Instant::now() + Duration::from_secs(30);
    let still_open = hostile
        .iter()
        .filter(|s| !closed_within(s, deadline.saturating_duration_since(Instant::now())))
        .count();
    assert_eq!(
        still_open,
        0,
        "{still_open} of {} connections still open\n{}",
        hostile.len(),
        r.server.log()
    );
    // The router says what it did, and holds (almost) nothing now: the harness's own client
    // may keep one connection alive.
    let closed = |reason: &str| {
        r.metric_sum(
            "beacon_router_connections_closed_total",
            &[&format!("reason=\"{reason}\"")],
        )
    };
    assert!(closed("evicted") > 0.0, "{}", r.metrics());
    assert!(closed("header_timeout") > 0.0, "{}", r.metrics());
    r.wait("connections released", Duration::from_secs(30), || {
        r.metric_sum("beacon_router_connections_open", &[]) <= 1.0
    });
    // And the router still serves.
    let (code, body) = r.alertmanager(&am_payload(
        "AfterFlood",
        &[A {
            name: "a",
            firing: true,
        }],
        &[],
    ));
    assert_eq!(code, 200, "{body}");
}

#[test]
fn a_kept_alive_connection_is_closed_once_idle() {
    let r = Router::start(&config());
    let mut s = TcpStream::connect(("127.0.0.1", r.port)).expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: beacon\r\n\r\n")
        .expect("request");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).expect("response");
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Kept alive, then nothing: the router closes it.
    assert!(
        closed_within(&s, Duration::from_secs(30)),
        "an idle connection stayed open"
    );
}

#[test]
fn listener_limits_must_be_positive() {
    let bad = beacon_router::config::Config::from_yaml(
        "inbound:\n  header_read_timeout: 0s\n  idle_timeout: 0s\n  max_connections: 0\n",
    );
    let err = match bad {
        Ok(_) => panic!("zero limits must be refused"),
        Err(e) => e.to_string(),
    };
    for want in [
        "inbound.header_read_timeout: must be greater than 0",
        "inbound.idle_timeout: must be greater than 0",
        "inbound.max_connections: must be at least 1",
    ] {
        assert!(err.contains(want), "{want} in {err}");
    }
}
