//! MQTT 5 for the sink in `mqtt.rs`: rumqttc's `v5` client options (clean start with session
//! expiry 0, retained `offline` Last Will), UTF-8 payload format indicator and content type on
//! every message, and the mapping of its events to [`Happened`]: the CONNACK's
//! `receive_maximum` and `maximum_packet_size` become the session's limits, and a PUBACK reason
//! code >= 0x80 is a [`Refusal`], permanent for "topic name invalid" and "payload format
//! invalid".

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, LastWill, LastWillProperties, Packet, PubAck, PubAckReason,
    PublishProperties,
};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::Outgoing;

use super::mqtt::CHANNEL;
use super::mqtt_protocol::{Body, Conn, Connection, Happened, Protocol, Refusal, Settings};
use crate::config::telemetry::Format;

/// The shortest keep-alive rumqttc's MQTT 5 client takes (it panics below; validation enforces
/// it, this only guards).
pub const MIN_KEEP_ALIVE: Duration = Duration::from_secs(5);
const TEXT: &str = "text/plain; charset=utf-8";

/// The MQTT 5 protocol: the client options of every connection and the data messages' content
/// type.
pub struct V5 {
    options: MqttOptions,
    content_type: &'static str,
}

impl std::fmt::Debug for V5 {
    // By hand: rumqttc's Debug prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V5")
            .field("client_id", &self.options.client_id())
            .field("broker", &self.options.broker_address())
            .field("content_type", &self.content_type)
            .finish()
    }
}

/// UTF-8 text of `content_type` (both formats and the presence messages are text).
fn properties(content_type: &str) -> PublishProperties {
    PublishProperties {
        payload_format_indicator: Some(1),
        content_type: Some(content_type.to_owned()),
        ..PublishProperties::default()
    }
}

impl V5 {
    /// Client options from the shared settings.
    pub fn new(s: &Settings) -> V5 {
        let mut o = MqttOptions::new(&s.client_id, &s.host, s.port);
        let will = LastWillProperties {
            delay_interval: None,
            payload_format_indicator: Some(1),
            message_expiry_interval: None,
            content_type: Some(TEXT.to_owned()),
            response_topic: None,
            correlation_data: None,
            user_properties: Vec::new(),
        };
        o.set_keep_alive(s.keep_alive.max(MIN_KEEP_ALIVE))
            // Like 3.1.1's clean session: no state kept on either side across connections
            // (the spool is the state).
            .set_clean_start(true)
            .set_session_expiry_interval(Some(0))
            .set_last_will(LastWill::new(
                &s.status_topic,
                "offline",
                QoS::AtLeastOnce,
                true,
                Some(will),
            ))
            // Bounds rumqttc's packet-id table; the broker's receive_maximum may lower it.
            .set_outgoing_inflight_upper_limit(CHANNEL as u16)
            .set_request_channel_capacity(CHANNEL)
            .set_transport(s.transport.clone());
        if let Some((user, password)) = &s.credentials {
            o.set_credentials(user, password.expose());
        }
        let content_type = match s.format {
            Format::Influx => TEXT,
            Format::Json => "application/json",
        };
        V5 {
            options: o,
            content_type,
        }
    }
}

impl Protocol for V5 {
    type Conn = Conn<AsyncClient, EventLoop>;

    fn connect(&self) -> Self::Conn {
        let (client, events) = AsyncClient::new(self.options.clone(), CHANNEL);
        let content_type = self.content_type;
        Conn {
            client,
            events,
            content_type,
        }
    }
}

impl Connection for Conn<AsyncClient, EventLoop> {
    async fn poll(&mut self) -> Happened {
        match self.events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                // rumqttc turns a refusal into an error already; this only guards.
                if ack.code != ConnectReturnCode::Success {
                    return Happened::Error(format!(
                        "broker refused the connection: {:?}",
                        ack.code
                    ));
                }
                let p = ack.properties.as_ref();
                Happened::Connected {
                    receive_max: p.and_then(|p| p.receive_max),
                    max_packet: p.and_then(|p| p.max_packet_size),
                }
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Happened::Published(pkid),
            Ok(Event::Incoming(Packet::PubAck(a))) => Happened::Acked {
                pkid: a.pkid,
                refused: refusal(&a),
            },
            Ok(Event::Outgoing(Outgoing::Disconnect)) => Happened::Disconnected,
            Ok(_) => Happened::Other,
            Err(e) => Happened::Error(e.to_string()),
        }
    }

    fn publish(&self, topic: &str, payload: Vec<u8>, body: Body) -> Result<(), String> {
        let (retain, content_type) = match body {
            Body::Presence => (true, TEXT),
            Body::Data => (false, self.content_type),
        };
        self.client
            .try_publish_with_properties(
                topic,
                QoS::AtLeastOnce,
                retain,
                payload,
                properties(content_type),
            )
            .map_err(|e| e.to_string())
    }

    fn disconnect(&self) {
        let _ = self.client.try_disconnect();
    }
}

/// `None` for a PUBACK that acknowledges (0x00, or 0x10 "no matching subscribers": the broker
/// took the message), else why not and whether sending it again could ever succeed.
fn refusal(a: &PubAck) -> Option<Refusal> {
    let (code, permanent) = match a.reason {
        PubAckReason::Success | PubAckReason::NoMatchingSubscribers => return None,
        PubAckReason::UnspecifiedError => (0x80, false),
        PubAckReason::ImplementationSpecificError => (0x83, false),
        // An ACL can be fixed on the broker: keep the points and retry.
        PubAckReason::NotAuthorized => (0x87, false),
        PubAckReason::TopicNameInvalid => (0x90, true),
        PubAckReason::PacketIdentifierInUse => (0x91, false),
        PubAckReason::QuotaExceeded => (0x97, false),
        PubAckReason::PayloadFormatInvalid => (0x99, true),
    };
    let text = a
        .properties
        .as_ref()
        .and_then(|p| p.reason_string.as_deref())
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    Some(Refusal {
        reason: format!("PUBACK reason code {code:#04x} {:?}{text}", a.reason),
        permanent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::v5::mqttbytes::v5::PubAckProperties;

    fn ack(reason: PubAckReason, text: Option<&str>) -> PubAck {
        PubAck {
            pkid: 7,
            reason,
            properties: text.map(|t| PubAckProperties {
                reason_string: Some(t.into()),
                user_properties: Vec::new(),
            }),
        }
    }

    #[test]
    fn puback_reason_codes_below_0x80_acknowledge() {
        assert_eq!(refusal(&ack(PubAckReason::Success, None)), None);
        assert_eq!(
            refusal(&ack(PubAckReason::NoMatchingSubscribers, None)),
            None
        );
    }

    #[test]
    fn puback_refusals_are_permanent_only_when_a_retry_cannot_help() {
        let r =
            refusal(&ack(PubAckReason::PayloadFormatInvalid, Some("not utf-8"))).expect("refused");
        assert!(r.permanent);
        assert_eq!(
            r.reason,
            "PUBACK reason code 0x99 PayloadFormatInvalid: not utf-8"
        );
        assert!(
            refusal(&ack(PubAckReason::TopicNameInvalid, None))
                .expect("refused")
                .permanent
        );
        for transient in [
            PubAckReason::UnspecifiedError,
            PubAckReason::ImplementationSpecificError,
            PubAckReason::NotAuthorized,
            PubAckReason::PacketIdentifierInUse,
            PubAckReason::QuotaExceeded,
        ] {
            let r = refusal(&ack(transient, None)).expect("refused");
            assert!(!r.permanent, "{transient:?} is worth a retry");
        }
        assert_eq!(
            refusal(&ack(PubAckReason::NotAuthorized, None))
                .expect("refused")
                .reason,
            "PUBACK reason code 0x87 NotAuthorized"
        );
    }

    #[test]
    fn data_messages_carry_utf8_and_their_content_type() {
        let s = Settings {
            client_id: "c".into(),
            host: "127.0.0.1".into(),
            port: 1883,
            keep_alive: Duration::from_secs(1),
            status_topic: "s".into(),
            credentials: None,
            transport: rumqttc::Transport::tcp(),
            format: Format::Json,
        };
        let v = V5::new(&s);
        assert_eq!(v.content_type, "application/json");
        assert_eq!(v.options.keep_alive(), MIN_KEEP_ALIVE, "no panic below 5s");
        assert_eq!(v.options.session_expiry_interval(), Some(0));
        assert!(v.options.clean_start());
        let will = v.options.last_will().expect("last will");
        assert!(will.retain);
        assert_eq!(&will.message[..], b"offline");
        let p = properties(v.content_type);
        assert_eq!(p.payload_format_indicator, Some(1));
        assert_eq!(p.content_type.as_deref(), Some("application/json"));
    }
}
