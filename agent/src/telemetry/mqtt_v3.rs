//! MQTT 3.1.1 for the sink in `mqtt.rs`: rumqttc's (v4) client options (clean session, retained
//! `offline` Last Will) and the mapping of its events to [`Happened`]. A 3.1.1 PUBACK has no
//! reason code: it always acknowledges.

use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};

use super::mqtt::{CHANNEL, MAX_PACKET};
use super::mqtt_protocol::{Body, Conn, Connection, Happened, Protocol, Settings};

/// The MQTT 3.1.1 protocol: the client options of every connection.
pub struct V3 {
    options: MqttOptions,
}

impl std::fmt::Debug for V3 {
    // By hand: rumqttc's Debug prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V3")
            .field("client_id", &self.options.client_id())
            .field("broker", &self.options.broker_address())
            .finish()
    }
}

impl V3 {
    /// Client options from the shared settings.
    pub fn new(s: &Settings) -> V3 {
        let mut o = MqttOptions::new(&s.client_id, &s.host, s.port);
        o.set_keep_alive(s.keep_alive)
            .set_clean_session(true)
            .set_last_will(LastWill::new(
                &s.status_topic,
                "offline",
                QoS::AtLeastOnce,
                true,
            ))
            .set_max_packet_size(1 << 20, MAX_PACKET)
            .set_inflight(CHANNEL as u16)
            .set_request_channel_capacity(CHANNEL)
            .set_transport(s.transport.clone());
        if let Some((user, password)) = &s.credentials {
            o.set_credentials(user, password.expose());
        }
        V3 { options: o }
    }
}

impl Protocol for V3 {
    type Conn = Conn<AsyncClient, EventLoop>;

    fn connect(&self) -> Self::Conn {
        let (client, events) = AsyncClient::new(self.options.clone(), CHANNEL);
        // 3.1.1 has no content type property.
        Conn {
            client,
            events,
            content_type: "",
        }
    }
}

impl Connection for Conn<AsyncClient, EventLoop> {
    async fn poll(&mut self) -> Happened {
        match self.events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                if ack.code == rumqttc::ConnectReturnCode::Success {
                    Happened::Connected {
                        receive_max: None,
                        max_packet: None,
                    }
                } else {
                    Happened::Error(format!("broker refused the connection: {:?}", ack.code))
                }
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Happened::Published(pkid),
            Ok(Event::Incoming(Packet::PubAck(a))) => Happened::Acked {
                pkid: a.pkid,
                refused: None,
            },
            Ok(Event::Outgoing(Outgoing::Disconnect)) => Happened::Disconnected,
            Ok(_) => Happened::Other,
            Err(e) => Happened::Error(e.to_string()),
        }
    }

    fn publish(&self, topic: &str, payload: Vec<u8>, body: Body) -> Result<(), String> {
        self.client
            .try_publish(topic, QoS::AtLeastOnce, body == Body::Presence, payload)
            .map_err(|e| e.to_string())
    }

    fn disconnect(&self) {
        let _ = self.client.try_disconnect();
    }
}
