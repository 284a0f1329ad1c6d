//! The MQTT sink (rumqttc, protocol 3.1.1, QoS 1): sends spooled messages and removes each one
//! from the spool only when its PUBACK arrives.
//!
//! rumqttc's `publish` does not return the packet id, but its event loop reports
//! `Outgoing::Publish(pkid)` in request order; the worker keeps its in-flight messages in send
//! order, gives each the next reported pkid, marks it on `PubAck(pkid)`, and advances the spool's
//! ack cursor over the acknowledged prefix. Presence: a retained `offline` Last Will, a retained
//! `online` after every connect, a retained `offline` published before a clean disconnect on
//! shutdown. rumqttc has no reconnect policy of its own: on any connection error the worker
//! drops the event loop (and with it rumqttc's own in-flight state), waits a capped exponential
//! backoff with jitter, and replays from the spool's ack cursor.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rumqttc::{
    AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport,
};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{backoff, mqtt_record, stopped, SinkShared};
use crate::config::telemetry::{parse_mqtt_url, MqttConfig};

/// Messages in flight at once (PUBACK pending).
const WINDOW: usize = 16;
/// Largest outgoing packet; bigger spooled messages are dropped as `too_large`.
const MAX_PACKET: usize = 16 << 20;
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// How long a clean shutdown waits for the broker to acknowledge `offline`.
const GOODBYE: Duration = Duration::from_secs(2);

/// The MQTT sink's worker.
#[derive(Debug)]
pub struct Worker {
    options: MqttOptions,
    status_topic: String,
    min_gap: Duration,
    shared: Arc<SinkShared>,
}

#[derive(Debug)]
enum Kind {
    /// A spooled message: acknowledging it moves the ack cursor to `end`.
    Data {
        end: super::spool::Cursor,
        points: u64,
    },
    /// The `online` presence message.
    Online,
    /// The `offline` presence message of a clean shutdown.
    Offline,
}

#[derive(Debug)]
struct Inflight {
    kind: Kind,
    pkid: Option<u16>,
    acked: bool,
}

impl Worker {
    /// Builds the client options; reads the password and TLS files.
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
        let mut o = MqttOptions::new(client_id, host, port);
        o.set_keep_alive(cfg.keep_alive)
            .set_clean_session(true)
            .set_last_will(LastWill::new(
                &status_topic,
                "offline",
                QoS::AtLeastOnce,
                true,
            ))
            .set_max_packet_size(1 << 20, MAX_PACKET)
            .set_inflight((WINDOW + 8) as u16)
            .set_request_channel_capacity(WINDOW + 8);
        if let Some(user) = &cfg.username {
            let password = match &cfg.password_file {
                Some(p) => std::fs::read_to_string(p)
                    .with_context(|| format!("read telemetry.mqtt.password_file {}", p.display()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
                None => String::new(),
            };
            o.set_credentials(user, password);
        }
        if tls {
            o.set_transport(Transport::tls_with_config(tls_config(cfg)?));
        }
        Ok(Worker {
            options: o,
            status_topic,
            min_gap: Duration::from_secs_f64(1.0 / f64::from(replay_rate.max(1))),
            shared,
        })
    }

    /// Connects, sends, reconnects; until `shutdown`.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut attempt = 0u32;
        loop {
            match self.session(&mut shutdown, &mut attempt).await {
                None => return,
                Some(why) => {
                    let wait = backoff(attempt, BACKOFF_BASE, BACKOFF_CAP);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(sink = "mqtt", error = %why, retry_in = ?wait, "MQTT connection lost");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stopped(&mut shutdown) => return,
                    }
                }
            }
        }
    }

    /// One connection: `None` after a clean shutdown, else why it ended.
    async fn session(
        &self,
        shutdown: &mut watch::Receiver<bool>,
        attempt: &mut u32,
    ) -> Option<String> {
        let name = self.shared.name;
        let m = &self.shared.metrics;
        let (client, mut el) = AsyncClient::new(self.options.clone(), WINDOW + 8);
        self.shared.spool().rewind();
        let mut inflight: VecDeque<Inflight> = VecDeque::new();
        let mut connected = false;
        let mut idle = false;
        let mut next_send = Instant::now();
        let mut closing: Option<Instant> = None;
        let why = loop {
            let data_inflight = inflight
                .iter()
                .filter(|i| matches!(i.kind, Kind::Data { .. }))
                .count();
            let can_send = connected && closing.is_none() && !idle && data_inflight < WINDOW;
            let deadline = closing.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                ev = el.poll() => match ev {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        if ack.code != rumqttc::ConnectReturnCode::Success {
                            break format!("broker refused the connection: {:?}", ack.code);
                        }
                        connected = true;
                        *attempt = 0;
                        idle = false;
                        m.connected.with_label_values(&[name]).set(1);
                        tracing::info!(sink = name, "MQTT connected");
                        if let Err(e) = client.try_publish(&self.status_topic, QoS::AtLeastOnce, true, "online") {
                            break format!("publish online: {e}");
                        }
                        inflight.push_back(Inflight { kind: Kind::Online, pkid: None, acked: false });
                        if closing.is_none() && stopped_now(shutdown) {
                            self.begin_goodbye(&client, &mut inflight, &mut closing);
                        }
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        if let Some(e) = inflight.iter_mut().find(|e| e.pkid.is_none()) {
                            e.pkid = Some(pkid);
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(a))) => {
                        if let Some(e) = inflight.iter_mut().find(|e| !e.acked && e.pkid == Some(a.pkid)) {
                            e.acked = true;
                        }
                        if self.settle(&mut inflight) {
                            // `offline` acknowledged: say goodbye properly.
                            let _ = client.try_disconnect();
                        }
                    }
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                        m.connected.with_label_values(&[name]).set(0);
                        tracing::info!(sink = name, "MQTT disconnected cleanly");
                        return None;
                    }
                    Ok(_) => {}
                    Err(e) => break e.to_string(),
                },
                _ = tokio::time::sleep_until(next_send), if can_send => {
                    let rec = self.shared.spool().next_record();
                    match rec {
                        Ok(Some(r)) => {
                            let points = u64::from(r.points);
                            match mqtt_record(&r.data) {
                                Some((topic, payload)) if topic.len() + payload.len() + 16 <= MAX_PACKET => {
                                    if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, payload.to_vec()) {
                                        break format!("publish: {e}");
                                    }
                                    inflight.push_back(Inflight { kind: Kind::Data { end: r.end, points }, pkid: None, acked: false });
                                }
                                _ => {
                                    tracing::error!(sink = name, bytes = r.data.len(), "spooled message too large or corrupt: dropped");
                                    m.dropped.with_label_values(&[name, "too_large"]).inc_by(points);
                                    // Acknowledged in order with the rest; counted as dropped, not sent.
                                    inflight.push_back(Inflight { kind: Kind::Data { end: r.end, points: 0 }, pkid: Some(0), acked: true });
                                    self.settle(&mut inflight);
                                }
                            }
                            // Bounded rate: a backlog replays at most replay_rate messages a second.
                            next_send = (next_send + self.min_gap).max(Instant::now() - self.min_gap);
                        }
                        Ok(None) => idle = true,
                        Err(e) => {
                            tracing::error!(sink = name, error = %e, "spool: read failed");
                            idle = true;
                        }
                    }
                }
                _ = self.shared.notify.notified(), if idle => idle = false,
                _ = stopped(shutdown), if closing.is_none() => {
                    if !connected {
                        return None;
                    }
                    self.begin_goodbye(&client, &mut inflight, &mut closing);
                }
                _ = tokio::time::sleep_until(deadline), if closing.is_some() => {
                    tracing::warn!(sink = name, "MQTT goodbye timed out");
                    return None;
                }
            }
        };
        m.connected.with_label_values(&[name]).set(0);
        let unacked: u64 = inflight
            .iter()
            .map(|i| match i.kind {
                Kind::Data { points, .. } if !i.acked => points,
                _ => 0,
            })
            .sum();
        m.failed.with_label_values(&[name]).inc_by(unacked);
        if closing.is_some() {
            return None;
        }
        Some(why)
    }

    /// Publishes the retained `offline` and starts the shutdown deadline.
    fn begin_goodbye(
        &self,
        client: &AsyncClient,
        inflight: &mut VecDeque<Inflight>,
        closing: &mut Option<Instant>,
    ) {
        *closing = Some(Instant::now() + GOODBYE);
        match client.try_publish(&self.status_topic, QoS::AtLeastOnce, true, "offline") {
            Ok(()) => inflight.push_back(Inflight {
                kind: Kind::Offline,
                pkid: None,
                acked: false,
            }),
            Err(e) => {
                tracing::warn!(sink = self.shared.name, error = %e, "publish offline failed");
                let _ = client.try_disconnect();
            }
        }
    }

    /// Pops the acknowledged prefix, acking its data in the spool. True if `offline` was acked.
    fn settle(&self, inflight: &mut VecDeque<Inflight>) -> bool {
        let mut end = None;
        let mut points = 0;
        let mut offline = false;
        while inflight.front().is_some_and(|i| i.acked) {
            let Some(i) = inflight.pop_front() else { break };
            match i.kind {
                Kind::Data { end: e, points: p } => {
                    end = Some(e);
                    points += p;
                }
                Kind::Online => {}
                Kind::Offline => offline = true,
            }
        }
        if let Some(e) = end {
            self.shared.ack(e, points);
            self.shared.update_gauges();
        }
        offline
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
