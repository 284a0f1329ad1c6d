//! The MQTT sink's in-flight window: messages handed to rumqttc, in send order, each given the
//! packet id rumqttc reports next and marked when its PUBACK arrives; only the acknowledged
//! prefix settles, so the spool's ack cursor never passes a message still waiting.

use std::collections::VecDeque;

use super::spool::Cursor;

/// What an in-flight message is.
#[derive(Debug)]
pub enum Kind {
    /// A spooled message.
    Data {
        /// Where the spool's ack cursor moves once it is settled.
        end: Cursor,
        /// Points it carries (0 once dropped: they are counted as dropped, not sent).
        points: u64,
    },
    /// The `online` presence message.
    Online,
    /// The `offline` presence message of a clean shutdown.
    Offline,
}

/// One message sent and not yet settled.
#[derive(Debug)]
pub struct Inflight {
    /// What it is.
    pub kind: Kind,
    /// Its packet id, once rumqttc reported it.
    pub pkid: Option<u16>,
    /// Acknowledged (or given up on), waiting for the older ones.
    pub acked: bool,
}

/// Messages sent and not yet settled, in send order.
#[derive(Debug, Default)]
pub struct Window {
    entries: VecDeque<Inflight>,
}

/// The acknowledged prefix popped off a [`Window`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// The spool cursor after the last settled data message.
    pub end: Option<Cursor>,
    /// Points acknowledged (dropped messages count 0).
    pub points: u64,
    /// The `offline` message was acknowledged.
    pub offline: bool,
}

impl Window {
    /// A message just handed to rumqttc (its packet id follows).
    pub fn push(&mut self, kind: Kind) {
        self.entries.push_back(Inflight {
            kind,
            pkid: None,
            acked: false,
        });
    }

    /// A data message that was never sent (dropped): settled in order with the rest.
    pub fn push_dropped(&mut self, end: Cursor) {
        self.entries.push_back(Inflight {
            kind: Kind::Data { end, points: 0 },
            pkid: Some(0),
            acked: true,
        });
    }

    /// Gives the oldest message without one the packet id rumqttc reported.
    pub fn published(&mut self, pkid: u16) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.pkid.is_none()) {
            e.pkid = Some(pkid);
        }
    }

    /// The unacknowledged message with packet id `pkid`.
    pub fn unacked(&mut self, pkid: u16) -> Option<&mut Inflight> {
        self.entries
            .iter_mut()
            .find(|e| !e.acked && e.pkid == Some(pkid))
    }

    /// Data messages in flight (presence does not count against the window).
    pub fn data_in_flight(&self) -> usize {
        self.entries
            .iter()
            .filter(|i| matches!(i.kind, Kind::Data { .. }))
            .count()
    }

    /// Points of data messages not acknowledged (counted as failed when a connection ends).
    pub fn unacked_points(&self) -> u64 {
        self.entries
            .iter()
            .map(|i| match i.kind {
                Kind::Data { points, .. } if !i.acked => points,
                _ => 0,
            })
            .sum()
    }

    /// Pops the acknowledged prefix: the spool is acked only up to the oldest message still
    /// waiting, so a restart never skips one.
    pub fn settle(&mut self) -> Settled {
        let mut s = Settled::default();
        while self.entries.front().is_some_and(|i| i.acked) {
            let Some(i) = self.entries.pop_front() else {
                break;
            };
            match i.kind {
                Kind::Data { end, points } => {
                    s.end = Some(end);
                    s.points += points;
                }
                Kind::Online => {}
                Kind::Offline => s.offline = true,
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: u64) -> Cursor {
        Cursor { segment: 1, offset }
    }

    #[test]
    fn only_the_acknowledged_prefix_settles() {
        let mut w = Window::default();
        w.push(Kind::Online);
        w.push(Kind::Data {
            end: at(10),
            points: 2,
        });
        w.push_dropped(at(20));
        w.push(Kind::Data {
            end: at(30),
            points: 3,
        });
        for pkid in [1, 2, 3] {
            w.published(pkid);
        }
        assert_eq!(w.data_in_flight(), 3);
        // Acked out of order: nothing settles before the oldest is in.
        if let Some(e) = w.unacked(3) {
            e.acked = true;
        }
        assert_eq!(w.settle(), Settled::default());
        assert_eq!(w.unacked_points(), 2);
        for pkid in [1, 2] {
            if let Some(e) = w.unacked(pkid) {
                e.acked = true;
            }
        }
        let s = w.settle();
        assert_eq!((s.end, s.points, s.offline), (Some(at(30)), 5, false));
        assert_eq!(w.data_in_flight(), 0);
        w.push(Kind::Offline);
        w.published(4);
        assert!(w.unacked(9).is_none(), "an unknown pkid");
        if let Some(e) = w.unacked(4) {
            e.acked = true;
        }
        assert!(w.settle().offline);
    }
}
