//! ethtool's generic netlink interface: one ETHTOOL_MSG_LINKMODES_GET dump, every interface's
//! speed and duplex, which node_exporter's `--collector.netclass.netlink` reads through
//! mdlayher/ethtool's `LinkModes` instead of sysfs' `speed` and `duplex` files. The
//! NETLINK_GENERIC socket and the resolved family id are kept across scrapes.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Mutex, PoisonError};

use crate::rtnetlink::{align, attributes, exchange, open_socket_of, NLMSG_HDRLEN};

// From linux/genetlink.h and linux/ethtool_netlink.h (stable kernel ABI).
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const GENL_HDRLEN: usize = 4;
const ETHTOOL_GENL_VERSION: u8 = 1;
const ETHTOOL_MSG_LINKMODES_GET: u8 = 4;
const ETHTOOL_A_LINKMODES_HEADER: u16 = 1;
const ETHTOOL_A_LINKMODES_SPEED: u16 = 5;
const ETHTOOL_A_LINKMODES_DUPLEX: u16 = 6;
const ETHTOOL_A_HEADER_DEV_NAME: u16 = 2;
const ETHTOOL_A_HEADER_FLAGS: u16 = 3;
const ETHTOOL_FLAG_COMPACT_BITSETS: u32 = 1;
const NLA_F_NESTED: u16 = 1 << 15;

/// One interface's link modes as mdlayher/ethtool decodes them: a missing attribute is 0.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LinkMode {
    pub name: String,
    /// ETHTOOL_A_LINKMODES_SPEED in Mb/s; SPEED_UNKNOWN is u32::MAX.
    pub speed: u32,
    /// ETHTOOL_A_LINKMODES_DUPLEX: DUPLEX_HALF 0, DUPLEX_FULL 1, DUPLEX_UNKNOWN 0xff.
    pub duplex: u8,
}

impl LinkMode {
    /// mdlayher/ethtool's `Duplex.String` (Go's stringer output, capitalised).
    pub fn duplex_string(&self) -> String {
        match self.duplex {
            0 => "Half".into(),
            1 => "Full".into(),
            0xff => "Unknown".into(),
            d => format!("Duplex({d})"),
        }
    }
}

/// The kept socket, the ethtool family id and the receive buffer.
#[derive(Debug)]
struct Conn {
    fd: OwnedFd,
    family: u16,
    seq: u32,
    buf: Vec<u8>,
}

/// ETHTOOL_MSG_LINKMODES_GET dumps over a kept NETLINK_GENERIC socket.
#[derive(Debug, Default)]
pub(crate) struct Ethtool {
    conn: Mutex<Option<Conn>>,
}

/// Appends one attribute (type, value, padding) to `msg`.
fn put(msg: &mut Vec<u8>, kind: u16, value: &[u8]) {
    msg.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(value);
    msg.resize(align(msg.len()), 0);
}

/// A generic netlink request: header, genlmsghdr (`cmd`, `version`), then `attrs`.
fn request(family: u16, flags: u16, seq: u32, cmd: u8, version: u8, attrs: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + GENL_HDRLEN + attrs.len();
    let mut msg = Vec::with_capacity(len);
    msg.extend_from_slice(&(len as u32).to_ne_bytes());
    msg.extend_from_slice(&family.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&[cmd, version, 0, 0]);
    msg.extend_from_slice(attrs);
    msg
}

impl Ethtool {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Every ethtool-capable interface's link modes; `Ok(None)` when the kernel has no
    /// ethtool netlink family (before 5.6), which node_exporter logs and skips.
    pub(crate) fn link_modes(&self) -> io::Result<Option<Vec<LinkMode>>> {
        let mut slot = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            let fd = open_socket_of(libc::NETLINK_GENERIC)?;
            let mut buf = vec![0; 32 * 1024];
            match resolve_family(&fd, &mut buf) {
                Ok(family) => {
                    *slot = Some(Conn {
                        fd,
                        family,
                        seq: 1,
                        buf,
                    })
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        let Some(c) = slot.as_mut() else {
            return Err(io::Error::other("ethtool socket missing"));
        };
        c.seq = c.seq.wrapping_add(1);
        let mut header = Vec::with_capacity(8);
        put(
            &mut header,
            ETHTOOL_A_HEADER_FLAGS,
            &ETHTOOL_FLAG_COMPACT_BITSETS.to_ne_bytes(),
        );
        let mut attrs = Vec::with_capacity(16);
        put(
            &mut attrs,
            ETHTOOL_A_LINKMODES_HEADER | NLA_F_NESTED,
            &header,
        );
        let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
        let req = request(
            c.family,
            flags,
            c.seq,
            ETHTOOL_MSG_LINKMODES_GET,
            ETHTOOL_GENL_VERSION,
            &attrs,
        );
        let family = c.family;
        let mut modes = Vec::with_capacity(8);
        let res = exchange(&c.fd, &req, c.seq, &mut c.buf, |kind, body| {
            if kind == family {
                modes.push(parse_link_mode(body)?);
            }
            Some(())
        });
        if let Err(e) = res {
            *slot = None;
            return Err(e);
        }
        Ok(Some(modes))
    }
}

/// CTRL_CMD_GETFAMILY "ethtool": the family id (ENOENT when the kernel has none).
fn resolve_family(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<u16> {
    let mut attrs = Vec::with_capacity(12);
    put(&mut attrs, CTRL_ATTR_FAMILY_NAME, b"ethtool\0");
    let req = request(
        GENL_ID_CTRL,
        libc::NLM_F_REQUEST as u16,
        1,
        CTRL_CMD_GETFAMILY,
        1,
        &attrs,
    );
    let mut family = None;
    exchange(fd, &req, 1, buf, |kind, body| {
        if kind == GENL_ID_CTRL {
            for attr in attributes(body.get(GENL_HDRLEN..)?) {
                if let (CTRL_ATTR_FAMILY_ID, v) = attr? {
                    family = Some(u16::from_ne_bytes([*v.first()?, *v.get(1)?]));
                }
            }
        }
        Some(())
    })?;
    family.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no ethtool family id"))
}

/// Parses one ETHTOOL_MSG_LINKMODES_GET reply: genlmsghdr, then attributes.
fn parse_link_mode(body: &[u8]) -> Option<LinkMode> {
    let mut lm = LinkMode {
        name: String::new(),
        speed: 0,
        duplex: 0,
    };
    for attr in attributes(body.get(GENL_HDRLEN..)?) {
        match attr? {
            (ETHTOOL_A_LINKMODES_HEADER, v) => {
                for h in attributes(v) {
                    if let (ETHTOOL_A_HEADER_DEV_NAME, name) = h? {
                        let name = name.split(|&b| b == 0).next().unwrap_or(name);
                        lm.name = String::from_utf8_lossy(name).into_owned();
                    }
                }
            }
            (ETHTOOL_A_LINKMODES_SPEED, v) => {
                lm.speed = u32::from_ne_bytes(v.get(..4)?.try_into().ok()?);
            }
            (ETHTOOL_A_LINKMODES_DUPLEX, v) => lm.duplex = *v.first()?,
            _ => {}
        }
    }
    Some(lm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_link_modes_reply() {
        let mut header = Vec::new();
        put(&mut header, 1, &7u32.to_ne_bytes());
        put(&mut header, ETHTOOL_A_HEADER_DEV_NAME, b"eth0\0");
        let mut body = vec![ETHTOOL_MSG_LINKMODES_GET, 1, 0, 0];
        put(
            &mut body,
            ETHTOOL_A_LINKMODES_HEADER | NLA_F_NESTED,
            &header,
        );
        put(
            &mut body,
            ETHTOOL_A_LINKMODES_SPEED,
            &u32::MAX.to_ne_bytes(),
        );
        put(&mut body, ETHTOOL_A_LINKMODES_DUPLEX, &[0xff]);
        let lm = parse_link_mode(&body).expect("valid");
        assert_eq!(lm.name, "eth0");
        assert_eq!(lm.speed, u32::MAX);
        assert_eq!(lm.duplex_string(), "Unknown");
        for (d, s) in [(0, "Half"), (1, "Full"), (7, "Duplex(7)")] {
            assert_eq!(
                LinkMode {
                    duplex: d,
                    ..lm.clone()
                }
                .duplex_string(),
                s
            );
        }
        // No speed or duplex attribute: zero, as Go's zero values.
        let mut body = vec![ETHTOOL_MSG_LINKMODES_GET, 1, 0, 0];
        put(
            &mut body,
            ETHTOOL_A_LINKMODES_HEADER | NLA_F_NESTED,
            &header,
        );
        let lm = parse_link_mode(&body).expect("valid");
        assert_eq!((lm.speed, lm.duplex_string().as_str()), (0, "Half"));
    }

    #[test]
    fn dumps_this_hosts_link_modes_or_reports_no_family() {
        // Virtual interfaces have no ethtool link modes; the dump itself must succeed.
        let e = Ethtool::new();
        let modes = e.link_modes().expect("ethtool dump");
        if let Some(modes) = modes {
            assert!(modes.iter().all(|m| !m.name.is_empty()), "{modes:?}");
            // The kept socket serves a second dump.
            assert!(e.link_modes().expect("second dump").is_some());
        }
    }
}
