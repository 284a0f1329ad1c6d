//! The interface between the MQTT sink (`mqtt.rs`) and its protocol adapters (`mqtt_v3.rs`,
//! `mqtt_v5.rs`): each adapter builds rumqttc's client for its protocol and reports what its
//! event loop saw as [`Happened`] events; the one session loop in `mqtt.rs` consumes them.

use std::future::Future;
use std::time::Duration;

use rumqttc::Transport;

use crate::config::telemetry::Format;

/// What a protocol adapter's event loop reported, in the terms the session needs.
#[derive(Debug)]
pub enum Happened {
    /// The broker accepted the connection; MQTT 5 brokers may state their limits.
    Connected {
        /// PUBLISHes the broker takes in flight at once (CONNACK `receive_maximum`).
        receive_max: Option<u16>,
        /// Largest packet the broker takes (CONNACK `maximum_packet_size`).
        max_packet: Option<u32>,
    },
    /// A PUBLISH went out with this packet id (reported in request order).
    Published(u16),
    /// A PUBACK: `refused` is `None` for an acknowledgement.
    Acked {
        /// The packet id it answers.
        pkid: u16,
        /// Why the broker did not take the message (MQTT 5 reason code >= 0x80).
        refused: Option<Refusal>,
    },
    /// Our DISCONNECT went out (clean shutdown).
    Disconnected,
    /// The connection failed or the broker refused it.
    Error(String),
    /// Nothing the session acts on (pings, ...).
    Other,
}

/// A PUBACK that refuses its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reason code and the broker's reason string, for the log.
    pub reason: String,
    /// Sending it again can never succeed (e.g. payload format or topic name invalid): drop it.
    pub permanent: bool,
}

/// What a message is: the adapter picks retain and MQTT 5 properties by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `online` / `offline` on the status topic (retained).
    Presence,
    /// A spooled message in the configured format.
    Data,
}

/// One connection attempt of a protocol: rumqttc's client and its event loop.
pub trait Connection: Send {
    /// The next event of the connection (connects on the first call).
    fn poll(&mut self) -> impl Future<Output = Happened> + Send;
    /// Queues a QoS 1 PUBLISH; an error means the connection is unusable.
    fn publish(&self, topic: &str, payload: Vec<u8>, body: Body) -> Result<(), String>;
    /// Queues a DISCONNECT.
    fn disconnect(&self);
}

/// One connection as the adapters keep it: rumqttc's client, its event loop, and the content
/// type of data messages (only MQTT 5 has a place for it).
pub struct Conn<C, E> {
    /// The client half (publish, disconnect).
    pub client: C,
    /// The event loop (rumqttc's has no `Debug`).
    pub events: E,
    /// Content type of data messages.
    pub content_type: &'static str,
}

impl<C: std::fmt::Debug, E> std::fmt::Debug for Conn<C, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("client", &self.client)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// An MQTT protocol version: builds a fresh connection (no state carried over) per session.
pub trait Protocol: Sync {
    /// The connection type.
    type Conn: Connection;
    /// A new client and event loop.
    fn connect(&self) -> Self::Conn;
}

/// What both protocols' client options are built from.
pub struct Settings {
    /// MQTT client id.
    pub client_id: String,
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// Topic of the presence messages (and the Last Will).
    pub status_topic: String,
    /// User name and password.
    pub credentials: Option<(String, beacon_common::secret::Secret)>,
    /// TCP or TLS.
    pub transport: Transport,
    /// Encoding of the data messages.
    pub format: Format,
}

impl std::fmt::Debug for Settings {
    // By hand: the password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("client_id", &self.client_id)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("keep_alive", &self.keep_alive)
            .field("status_topic", &self.status_topic)
            .field("username", &self.credentials.as_ref().map(|c| &c.0))
            .field("tls", &matches!(self.transport, Transport::Tls(_)))
            .finish()
    }
}
