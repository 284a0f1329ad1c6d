//! The MQTT sink (QoS 1), protocol-independent part: the worker, its session loop, reconnect
//! backoff and goodbye. It sends spooled messages and removes each one from the spool only when
//! its PUBACK arrives; `mqtt_v3.rs` and `mqtt_v5.rs` adapt rumqttc's two clients to it through
//! `mqtt_protocol.rs`.
//!
//! rumqttc's `publish` does not return the packet id, but its event loop reports
//! `Outgoing::Publish(pkid)` in request order; the session keeps its in-flight messages in send
//! order (`mqtt_window.rs`), gives each the next reported pkid, marks it on `PubAck(pkid)`, and
//! advances the spool's ack cursor over the acknowledged prefix. A PUBACK that refuses the message (MQTT 5
//! reason code >= 0x80) is not an acknowledgement: a permanent refusal drops the message and
//! counts it, any other ends the connection and the message is sent again after the reconnect.
//! Presence: a retained `offline` Last Will, a retained `online` after every connect, a retained
//! `offline` published before a clean disconnect on shutdown. rumqttc has no reconnect policy of
//! its own: on any connection error the worker drops the event loop (and with it rumqttc's own
//! in-flight state), waits a capped exponential backoff with jitter, and replays from the spool's
//! ack cursor.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rumqttc::{TlsConfiguration, Transport};
use tokio::sync::watch;
use tokio::time::Instant;

use super::mqtt_protocol::{Body, Connection, Happened, Protocol, Settings};
use super::mqtt_window::{Kind, Window};
use super::{backoff, mqtt_record, mqtt_v3, mqtt_v5, stopped, SinkShared};
use crate::config::telemetry::{parse_mqtt_url, MqttConfig};
use beacon_common::secret::Secret;

/// Data messages in flight at once (PUBACK pending); an MQTT 5 broker's smaller
/// `receive_maximum` lowers it.
const WINDOW: usize = 16;
/// Requests the adapters' rumqttc clients queue and keep in flight: the window plus presence.
pub(super) const CHANNEL: usize = WINDOW + 8;
/// Largest outgoing packet; bigger spooled messages are dropped as `too_large` (an MQTT 5
/// broker's smaller `maximum_packet_size` lowers it).
pub(super) const MAX_PACKET: usize = 16 << 20;
/// Bytes of a PUBLISH packet besides topic and payload: fixed header, lengths, packet id and the
/// MQTT 5 properties the adapter adds.
const HEADER_SLACK: usize = 64;
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// How long a clean shutdown waits for the broker to acknowledge `offline`.
const GOODBYE: Duration = Duration::from_secs(2);

/// The MQTT sink's worker.
#[derive(Debug)]
pub struct Worker {
    adapter: Adapter,
    sink: Sink,
}

/// The configured protocol's adapter (boxed: rumqttc's options are large, and unequal).
#[derive(Debug)]
enum Adapter {
    V3(Box<mqtt_v3::V3>),
    V5(Box<mqtt_v5::V5>),
}

/// The protocol-independent sink: sessions, window, backoff, goodbye.
#[derive(Debug)]
struct Sink {
    status_topic: String,
    min_gap: Duration,
    shared: Arc<SinkShared>,
}

impl Worker {
    /// Builds the configured protocol's client options; reads the password and TLS files.
    pub fn new(
        cfg: &MqttConfig,
        device_id: &str,
        hostname: &str,
        replay_rate: u32,
        shared: Arc<SinkShared>,
    ) -> anyhow::Result<Worker> {
        let (host, port, tls) = parse_mqtt_url(&cfg.url).map_err(anyhow::Error::msg)?;
        let expand = |t: &str| {
            t.replace("{device_id}", device_id)
                .replace("{hostname}", hostname)
        };
        let status_topic = expand(&cfg.status_topic);
        let client_id = cfg
            .client_id
            .as_deref()
            .map_or_else(|| format!("beacon-agent-{device_id}"), expand);
        let credentials = match &cfg.username {
            Some(user) => {
                let password = match &cfg.password_file {
                    Some(p) => Secret::from_file(p).context("telemetry.mqtt.password_file")?,
                    None => Secret::new(""),
                };
                Some((user.clone(), password))
            }
            None => None,
        };
        let transport = if tls {
            Transport::tls_with_config(tls_config(cfg)?)
        } else {
            Transport::tcp()
        };
        let settings = Settings {
            client_id,
            host,
            port,
            keep_alive: cfg.keep_alive,
            status_topic: status_topic.clone(),
            credentials,
            transport,
            format: cfg.format,
        };
        let adapter = if cfg.is_mqtt5() {
            Adapter::V5(Box::new(mqtt_v5::V5::new(&settings)))
        } else {
            Adapter::V3(Box::new(mqtt_v3::V3::new(&settings)))
        };
        Ok(Worker {
            adapter,
            sink: Sink {
                status_topic,
                min_gap: Duration::from_secs_f64(1.0 / f64::from(replay_rate.max(1))),
                shared,
            },
        })
    }

    /// Connects, sends, reconnects; until `shutdown`.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        match &self.adapter {
            Adapter::V3(p) => self.sink.run(p.as_ref(), shutdown).await,
            Adapter::V5(p) => self.sink.run(p.as_ref(), shutdown).await,
        }
    }
}

impl Sink {
    async fn run<P: Protocol>(&self, proto: &P, mut shutdown: watch::Receiver<bool>) {
        let mut attempt = 0u32;
        loop {
            match self.session(proto, &mut shutdown, &mut attempt).await {
                None => return,
                Some(why) => {
                    let wait = backoff(attempt, BACKOFF_BASE, BACKOFF_CAP);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(sink = self.shared.name, error = %why, retry_in = ?wait, "MQTT connection lost");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stopped(&mut shutdown) => return,
                    }
                }
            }
        }
    }

    /// One connection: `None` after a clean shutdown, else why it ended. `attempt` goes back to
    /// 0 once the connection proved useful (a data PUBACK, or caught up with nothing in flight),
    /// so a broker that accepts connections but refuses every message is retried ever slower.
    async fn session<P: Protocol>(
        &self,
        proto: &P,
        shutdown: &mut watch::Receiver<bool>,
        attempt: &mut u32,
    ) -> Option<String> {
        let name = self.shared.name;
        let m = &self.shared.metrics;
        let mut conn = proto.connect();
        self.shared.spool().rewind();
        let mut window = Window::default();
        // 0 until CONNACK: nothing is sent before the broker stated its limits.
        let mut limit = 0usize;
        let mut max_packet = MAX_PACKET;
        let mut idle = false;
        let mut next_send = Instant::now();
        let mut closing: Option<Instant> = None;
        let why = loop {
            let can_send = closing.is_none() && !idle && window.data_in_flight() < limit;
            let deadline = closing.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                ev = conn.poll() => match ev {
                    Happened::Connected { receive_max, max_packet: broker_max } => {
                        limit = receive_max.map_or(WINDOW, |r| WINDOW.min(usize::from(r))).max(1);
                        max_packet = broker_max.map_or(MAX_PACKET, |b| MAX_PACKET.min(b as usize));
                        idle = false;
                        m.connected.with_label_values(&[name]).set(1);
                        tracing::info!(sink = name, window = limit, max_packet, receive_max = ?receive_max, broker_max_packet = ?broker_max, "MQTT connected");
                        if let Err(e) = conn.publish(&self.status_topic, b"online".to_vec(), Body::Presence) {
                            break format!("publish online: {e}");
                        }
                        window.push(Kind::Online);
                        if closing.is_none() && stopped_now(shutdown) {
                            self.begin_goodbye(&conn, &mut window, &mut closing);
                        }
                    }
                    Happened::Published(pkid) => window.published(pkid),
                    Happened::Acked { pkid, refused } => {
                        let Some(e) = window.unacked(pkid) else { continue };
                        match (refused, &mut e.kind) {
                            (None, kind) => {
                                if matches!(kind, Kind::Data { .. }) {
                                    *attempt = 0;
                                }
                                e.acked = true;
                            }
                            (Some(r), Kind::Data { points, .. }) if r.permanent => {
                                tracing::error!(sink = name, reason = %r.reason, points = *points, "broker refused a message for good: dropped");
                                m.dropped.with_label_values(&[name, "rejected"]).inc_by(*points);
                                // Settled in order with the rest; counted as dropped, not sent.
                                *points = 0;
                                e.acked = true;
                            }
                            (Some(r), Kind::Data { .. }) => {
                                break format!("broker refused a message ({}); it is sent again", r.reason);
                            }
                            (Some(r), _) => {
                                // Presence is best effort: a refused one must not hold up data.
                                tracing::warn!(sink = name, reason = %r.reason, "broker refused a presence message");
                                e.acked = true;
                            }
                        }
                        if self.settle(&mut window) {
                            // `offline` acknowledged: say goodbye properly.
                            conn.disconnect();
                        }
                    }
                    Happened::Disconnected => {
                        m.connected.with_label_values(&[name]).set(0);
                        tracing::info!(sink = name, "MQTT disconnected cleanly");
                        return None;
                    }
                    Happened::Error(e) => break e,
                    Happened::Other => {}
                },
                _ = tokio::time::sleep_until(next_send), if can_send => {
                    let rec = self.shared.spool().next_record();
                    match rec {
                        Ok(Some(r)) => {
                            let points = u64::from(r.points);
                            match mqtt_record(&r.data) {
                                Some((topic, payload)) if topic.len() + payload.len() + HEADER_SLACK <= max_packet => {
                                    if topic.is_empty() || topic.contains(['+', '#']) {
                                        // A device_id with a wildcard: no broker takes it, ever.
                                        tracing::error!(sink = name, topic, "invalid topic name: message dropped");
                                        m.dropped.with_label_values(&[name, "rejected"]).inc_by(points);
                                        window.push_dropped(r.end);
                                        self.settle(&mut window);
                                    } else {
                                        if let Err(e) = conn.publish(topic, payload.to_vec(), Body::Data) {
                                            break format!("publish: {e}");
                                        }
                                        window.push(Kind::Data { end: r.end, points });
                                    }
                                }
                                _ => {
                                    tracing::error!(sink = name, bytes = r.data.len(), max_packet, "spooled message too large or corrupt: dropped");
                                    m.dropped.with_label_values(&[name, "too_large"]).inc_by(points);
                                    window.push_dropped(r.end);
                                    self.settle(&mut window);
                                }
                            }
                            // Bounded rate: a backlog replays at most replay_rate messages a second.
                            next_send = (next_send + self.min_gap).max(Instant::now() - self.min_gap);
                        }
                        Ok(None) => {
                            idle = true;
                            if window.data_in_flight() == 0 {
                                *attempt = 0;
                            }
                        }
                        Err(e) => {
                            tracing::error!(sink = name, error = %e, "spool: read failed");
                            idle = true;
                        }
                    }
                }
                _ = self.shared.notify.notified(), if idle => idle = false,
                _ = stopped(shutdown), if closing.is_none() => {
                    if limit == 0 {
                        return None;
                    }
                    self.begin_goodbye(&conn, &mut window, &mut closing);
                }
                _ = tokio::time::sleep_until(deadline), if closing.is_some() => {
                    tracing::warn!(sink = name, "MQTT goodbye timed out");
                    return None;
                }
            }
        };
        m.connected.with_label_values(&[name]).set(0);
        m.failed
            .with_label_values(&[name])
            .inc_by(window.unacked_points());
        if closing.is_some() {
            return None;
        }
        Some(why)
    }

    /// Publishes the retained `offline` and starts the shutdown deadline.
    fn begin_goodbye<C: Connection>(
        &self,
        conn: &C,
        window: &mut Window,
        closing: &mut Option<Instant>,
    ) {
        *closing = Some(Instant::now() + GOODBYE);
        match conn.publish(&self.status_topic, b"offline".to_vec(), Body::Presence) {
            Ok(()) => window.push(Kind::Offline),
            Err(e) => {
                tracing::warn!(sink = self.shared.name, error = %e, "publish offline failed");
                conn.disconnect();
            }
        }
    }

    /// Settles the window's acknowledged prefix in the spool. True if `offline` was acked.
    fn settle(&self, window: &mut Window) -> bool {
        let s = window.settle();
        if let Some(e) = s.end {
            self.shared.ack(e, s.points);
            self.shared.update_gauges();
        }
        s.offline
    }
}

fn stopped_now(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow()
}

fn tls_config(cfg: &MqttConfig) -> anyhow::Result<TlsConfiguration> {
    let t = cfg.tls.clone().unwrap_or_default();
    let read = |p: &std::path::Path, what: &str| {
        std::fs::read(p).with_context(|| format!("read telemetry.mqtt.tls.{what} {}", p.display()))
    };
    let client_auth = match (&t.cert_file, &t.key_file) {
        (Some(c), Some(k)) => Some((read(c, "cert_file")?, read(k, "key_file")?)),
        _ => None,
    };
    match &t.ca_file {
        Some(ca) => Ok(TlsConfiguration::Simple {
            ca: read(ca, "ca_file")?,
            alpn: None,
            client_auth,
        }),
        None if client_auth.is_some() => {
            anyhow::bail!("telemetry.mqtt.tls: a client certificate needs tls.ca_file too")
        }
        // rumqttc's default loads the system's roots and panics when there are none.
        None => std::panic::catch_unwind(TlsConfiguration::default).map_err(|_| {
            anyhow::anyhow!("telemetry.mqtt.tls: no system CA certificates; set tls.ca_file")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::mqtt_protocol::Refusal;
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use tokio::sync::mpsc;

    /// A scripted connection: `poll` first returns what `publish` and `disconnect` queued (the
    /// events rumqttc would report for them), then what the test sends.
    struct Fake {
        queued: Mutex<(VecDeque<Happened>, u16)>,
        script: mpsc::UnboundedReceiver<Happened>,
        sent: mpsc::UnboundedSender<(u16, String, Body)>,
    }

    impl Connection for Fake {
        async fn poll(&mut self) -> Happened {
            let next = self.queued.lock().expect("lock").0.pop_front();
            match next {
                Some(h) => h,
                None => self
                    .script
                    .recv()
                    .await
                    .unwrap_or_else(|| Happened::Error("script ended".into())),
            }
        }

        fn publish(&self, topic: &str, _payload: Vec<u8>, body: Body) -> Result<(), String> {
            let mut q = self.queued.lock().expect("lock");
            q.1 += 1;
            let pkid = q.1;
            q.0.push_back(Happened::Published(pkid));
            self.sent
                .send((pkid, topic.to_owned(), body))
                .map_err(|e| e.to_string())
        }

        fn disconnect(&self) {
            self.queued
                .lock()
                .expect("lock")
                .0
                .push_back(Happened::Disconnected);
        }
    }

    struct FakeProtocol(Mutex<Option<Fake>>);

    impl Protocol for FakeProtocol {
        type Conn = Fake;
        fn connect(&self) -> Fake {
            self.0.lock().expect("lock").take().expect("one session")
        }
    }

    /// A sink whose spool holds one 1-point message per `(topic, payload size)`.
    fn sink(dir: &std::path::Path, messages: &[(&str, usize)]) -> Sink {
        let mut spool = super::super::Spool::open(dir, 1 << 20).expect("spool");
        let recs: Vec<Vec<u8>> = messages
            .iter()
            .map(|(t, n)| {
                let mut d = (t.len() as u16).to_le_bytes().to_vec();
                d.extend_from_slice(t.as_bytes());
                d.extend(std::iter::repeat_n(b'x', *n));
                d
            })
            .collect();
        let refs: Vec<(u32, i64, &[u8])> = recs.iter().map(|d| (1, 5, d.as_slice())).collect();
        spool.append(&refs).expect("append");
        let registry = prometheus::Registry::new();
        Sink {
            status_topic: "s".into(),
            min_gap: Duration::from_millis(1),
            shared: Arc::new(SinkShared {
                name: "mqtt",
                spool: std::sync::Mutex::new(spool),
                notify: tokio::sync::Notify::new(),
                metrics: super::super::Metrics::register(&registry).expect("metrics"),
            }),
        }
    }

    type Script = (
        FakeProtocol,
        mpsc::UnboundedSender<Happened>,
        mpsc::UnboundedReceiver<(u16, String, Body)>,
    );

    fn script() -> Script {
        let (tx, rx) = mpsc::unbounded_channel();
        let (sent_tx, sent) = mpsc::unbounded_channel();
        let fake = Fake {
            queued: Mutex::new((VecDeque::new(), 0)),
            script: rx,
            sent: sent_tx,
        };
        (FakeProtocol(Mutex::new(Some(fake))), tx, sent)
    }

    /// The next `n` publishes, then proof that no other follows at once.
    async fn expect_sent(
        sent: &mut mpsc::UnboundedReceiver<(u16, String, Body)>,
        n: usize,
    ) -> Vec<(u16, String, Body)> {
        let mut out = Vec::new();
        for _ in 0..n {
            let s = tokio::time::timeout(Duration::from_secs(5), sent.recv())
                .await
                .expect("a publish in time")
                .expect("a publish");
            out.push(s);
        }
        let more = tokio::time::timeout(Duration::from_millis(100), sent.recv()).await;
        assert!(more.is_err(), "sent beyond the window: {more:?}");
        out
    }

    fn acked(pkid: u16, refused: Option<(&str, bool)>) -> Happened {
        Happened::Acked {
            pkid,
            refused: refused.map(|(r, permanent)| Refusal {
                reason: r.into(),
                permanent,
            }),
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn receive_maximum_caps_the_window_and_refusals_are_not_acks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = sink(
            dir.path(),
            &[("t/a", 3), ("t/b", 3), ("t/c", 3), ("t/d", 3)],
        );
        let (proto, tx, mut sent) = script();
        let (_stop, mut shutdown) = watch::channel(false);
        let mut attempt = 3;
        let driver = async {
            tx.send(Happened::Connected {
                receive_max: Some(2),
                max_packet: None,
            })
            .expect("send");
            let s = expect_sent(&mut sent, 3).await;
            let topics: Vec<(u16, &str, Body)> =
                s.iter().map(|(p, t, b)| (*p, t.as_str(), *b)).collect();
            assert_eq!(
                topics,
                [
                    (1, "s", Body::Presence),
                    (2, "t/a", Body::Data),
                    (3, "t/b", Body::Data)
                ],
                "online, then two data messages: the broker's receive maximum"
            );
            tx.send(acked(1, None)).expect("send");
            tx.send(acked(2, None)).expect("send");
            assert_eq!(expect_sent(&mut sent, 1).await[0].1, "t/c");
            // Permanent: dropped and counted; the window moves on.
            tx.send(acked(3, Some(("0x99 PayloadFormatInvalid", true))))
                .expect("send");
            assert_eq!(expect_sent(&mut sent, 1).await[0].1, "t/d");
            // Transient: not an ack; the connection ends and both stay spooled.
            tx.send(acked(4, Some(("0x87 NotAuthorized", false))))
                .expect("send");
        };
        let (why, ()) = rt().block_on(async {
            tokio::join!(sink.session(&proto, &mut shutdown, &mut attempt), driver)
        });
        let why = why.expect("the session ended with an error");
        assert!(why.contains("0x87 NotAuthorized"), "{why}");
        assert_eq!(attempt, 0, "a data PUBACK proved the connection useful");
        let m = &sink.shared.metrics;
        assert_eq!(m.sent.with_label_values(&["mqtt"]).get(), 1);
        assert_eq!(m.dropped.with_label_values(&["mqtt", "rejected"]).get(), 1);
        assert_eq!(m.failed.with_label_values(&["mqtt"]).get(), 2);
        let mut spool = sink.shared.spool();
        spool.rewind();
        let next = spool.next_record().expect("read").expect("c still spooled");
        assert_eq!(mqtt_record(&next.data).expect("record").0, "t/c");
    }

    #[test]
    fn maximum_packet_size_drops_what_cannot_fit_and_goodbye_is_clean() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = sink(dir.path(), &[("t/big", 200), ("t/small", 3)]);
        let (proto, tx, mut sent) = script();
        let (stop, mut shutdown) = watch::channel(false);
        let mut attempt = 2;
        let driver = async {
            tx.send(Happened::Connected {
                receive_max: None,
                max_packet: Some(150),
            })
            .expect("send");
            let s = expect_sent(&mut sent, 2).await;
            assert_eq!(s[1].1, "t/small", "the big one never goes out");
            tx.send(acked(1, None)).expect("send");
            tx.send(acked(2, None)).expect("send");
            stop.send(true).expect("stop");
            let s = expect_sent(&mut sent, 1).await;
            assert_eq!((s[0].1.as_str(), s[0].2), ("s", Body::Presence));
            tx.send(acked(s[0].0, None)).expect("send");
        };
        let (why, ()) = rt().block_on(async {
            tokio::join!(sink.session(&proto, &mut shutdown, &mut attempt), driver)
        });
        assert_eq!(why, None, "offline acknowledged, then DISCONNECT");
        let m = &sink.shared.metrics;
        assert_eq!(m.dropped.with_label_values(&["mqtt", "too_large"]).get(), 1);
        assert_eq!(m.sent.with_label_values(&["mqtt"]).get(), 1);
        assert_eq!(m.failed.with_label_values(&["mqtt"]).get(), 0);
        assert!(!sink.shared.spool().has_unread(), "both settled");
    }
}
