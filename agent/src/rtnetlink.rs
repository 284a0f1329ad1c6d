//! `LinkDump`: every network interface's rtnetlink attributes in one RTM_GETLINK dump over a
//! NETLINK_ROUTE socket kept open across scrapes (libc only; what node_exporter 1.7+'s
//! `--collector.netclass.netlink` reads). netclass uses it on the live host instead of 16 of the
//! 22 sysfs attribute files per interface.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Mutex, PoisonError};

// From linux/if_link.h and linux/rtnetlink.h (stable kernel ABI).
const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_TXQLEN: u16 = 13;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKMODE: u16 = 17;
const IFLA_IFALIAS: u16 = 20;
const IFLA_GROUP: u16 = 27;
const IFLA_EXT_MASK: u16 = 29;
const IFLA_CARRIER: u16 = 33;
const IFLA_CARRIER_CHANGES: u16 = 35;
const IFLA_CARRIER_UP_COUNT: u16 = 47;
const IFLA_CARRIER_DOWN_COUNT: u16 = 48;
/// Leaves the 64-bit and 32-bit statistics out of the dump: netclass does not report them.
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;

/// One interface as rtnetlink reports it. `None` where the kernel sent no such attribute.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Link {
    pub index: i32,
    /// `ifi_flags`: `dev_get_flags()`, which differs from sysfs' `flags` (`dev->flags`) in
    /// IFF_RUNNING, IFF_LOWER_UP, IFF_DORMANT, IFF_PROMISC and IFF_ALLMULTI.
    pub flags: u32,
    pub kind: u16,
    pub name: String,
    pub address: Option<Vec<u8>>,
    pub broadcast: Option<Vec<u8>>,
    pub mtu: Option<u32>,
    /// IFLA_LINK: present only when it differs from `index`.
    pub link: Option<i32>,
    pub txqlen: Option<u32>,
    pub operstate: Option<u8>,
    pub linkmode: Option<u8>,
    pub ifalias: Option<String>,
    pub group: Option<u32>,
    pub carrier: Option<u8>,
    pub carrier_changes: Option<u32>,
    pub carrier_up: Option<u32>,
    pub carrier_down: Option<u32>,
}

/// A NETLINK_ROUTE socket, opened on first use and kept; dropped after any error so the next
/// dump starts on a fresh one.
#[derive(Debug, Default)]
pub(crate) struct LinkDump {
    socket: Mutex<Option<Socket>>,
}

/// The kept socket, its last sequence number and its receive buffer.
#[derive(Debug)]
struct Socket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

/// The receive buffer: the kernel sizes dump datagrams to the largest read buffer it has seen,
/// capped at 32 KiB (`netlink_recvmsg`); MSG_TRUNC catches anything larger.
const RECV_BUF: usize = 32 * 1024;

impl LinkDump {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Every interface of this process' network namespace, in kernel order.
    pub(crate) fn links(&self) -> io::Result<Vec<Link>> {
        let mut slot = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(Socket {
                fd: open_socket()?,
                seq: 0,
                buf: vec![0; RECV_BUF],
            });
        }
        let Some(sock) = slot.as_mut() else {
            return Err(io::Error::other("netlink socket missing"));
        };
        sock.seq = sock.seq.wrapping_add(1);
        let res = dump(&sock.fd, sock.seq, &mut sock.buf);
        if res.is_err() {
            *slot = None;
        }
        res
    }
}

fn open_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socket(2) returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends one RTM_GETLINK dump request and parses the replies up to NLMSG_DONE.
fn dump(fd: &OwnedFd, seq: u32, buf: &mut [u8]) -> io::Result<Vec<Link>> {
    let mut req = [0u8; NLMSG_HDRLEN + IFINFOMSG_LEN + 8];
    let len = req.len() as u32;
    req[0..4].copy_from_slice(&len.to_ne_bytes());
    req[4..6].copy_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&seq.to_ne_bytes());
    // ifinfomsg: all zero (AF_UNSPEC, every interface).
    let attr = NLMSG_HDRLEN + IFINFOMSG_LEN;
    req[attr..attr + 2].copy_from_slice(&8u16.to_ne_bytes());
    req[attr + 2..attr + 4].copy_from_slice(&IFLA_EXT_MASK.to_ne_bytes());
    req[attr + 4..attr + 8].copy_from_slice(&RTEXT_FILTER_SKIP_STATS.to_ne_bytes());
    // SAFETY: `req` is a valid buffer of `req.len()` bytes; the kernel is the destination
    // (an unbound netlink socket sends to pid 0).
    let sent = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut links = Vec::with_capacity(8);
    loop {
        // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes. MSG_TRUNC makes the
        // kernel return the datagram's real length, so truncation is detected.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let n = n as usize;
        if n > buf.len() {
            return Err(io::Error::other("netlink reply truncated"));
        }
        if parse_messages(&buf[..n], seq, &mut links)? {
            return Ok(links);
        }
    }
}

/// Parses one datagram of netlink messages into `links`; true once NLMSG_DONE is seen.
fn parse_messages(mut data: &[u8], seq: u32, links: &mut Vec<Link>) -> io::Result<bool> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed netlink message");
    while data.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(data[0..4].try_into().map_err(|_| bad())?) as usize;
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        let msg_seq = u32::from_ne_bytes(data[8..12].try_into().map_err(|_| bad())?);
        if len < NLMSG_HDRLEN || len > data.len() {
            return Err(bad());
        }
        let body = &data[NLMSG_HDRLEN..len];
        data = &data[align(len).min(data.len())..];
        if msg_seq != seq {
            // A late reply to an earlier, abandoned request.
            continue;
        }
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = body
                    .get(0..4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or_else(bad)?;
                return Err(io::Error::from_raw_os_error(-errno));
            }
            libc::RTM_NEWLINK => links.push(parse_link(body).ok_or_else(bad)?),
            _ => {}
        }
    }
    Ok(false)
}

/// Netlink's 4-byte alignment.
fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// Parses an RTM_NEWLINK body: ifinfomsg, then attributes.
fn parse_link(body: &[u8]) -> Option<Link> {
    let hdr = body.get(..IFINFOMSG_LEN)?;
    let mut link = Link {
        kind: u16::from_ne_bytes([hdr[2], hdr[3]]),
        index: i32::from_ne_bytes(hdr[4..8].try_into().ok()?),
        flags: u32::from_ne_bytes(hdr[8..12].try_into().ok()?),
        ..Link::default()
    };
    let mut attrs = &body[IFINFOMSG_LEN..];
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        // The top bits flag nesting and byte order; none of ours use them.
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        let v = &attrs[4..len];
        let u32v = || {
            v.get(..4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        };
        let u8v = || v.first().copied();
        // Strings are NUL-terminated.
        let text =
            || String::from_utf8_lossy(v.split(|&b| b == 0).next().unwrap_or(v)).into_owned();
        match kind {
            IFLA_IFNAME => link.name = text(),
            IFLA_ADDRESS => link.address = Some(v.to_vec()),
            IFLA_BROADCAST => link.broadcast = Some(v.to_vec()),
            IFLA_MTU => link.mtu = u32v(),
            IFLA_LINK => link.link = u32v().map(|l| l as i32),
            IFLA_TXQLEN => link.txqlen = u32v(),
            IFLA_OPERSTATE => link.operstate = u8v(),
            IFLA_LINKMODE => link.linkmode = u8v(),
            IFLA_IFALIAS => link.ifalias = Some(text()),
            IFLA_GROUP => link.group = u32v(),
            IFLA_CARRIER => link.carrier = u8v(),
            IFLA_CARRIER_CHANGES => link.carrier_changes = u32v(),
            IFLA_CARRIER_UP_COUNT => link.carrier_up = u32v(),
            IFLA_CARRIER_DOWN_COUNT => link.carrier_down = u32v(),
            _ => {}
        }
        attrs = &attrs[align(len).min(attrs.len())..];
    }
    Some(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_the_loopback_interface() {
        let dump = LinkDump::new();
        for _ in 0..2 {
            let links = dump.links().expect("RTM_GETLINK dump");
            let lo = links
                .iter()
                .find(|l| l.name == "lo")
                .unwrap_or_else(|| panic!("no lo in {links:?}"));
            assert_eq!(lo.index, 1, "{lo:?}");
            assert_eq!(lo.kind, 772, "ARPHRD_LOOPBACK: {lo:?}");
            assert_eq!(lo.address.as_deref(), Some(&[0u8; 6][..]), "{lo:?}");
            assert!(lo.mtu.is_some_and(|m| m > 0), "{lo:?}");
            assert!(lo.carrier_changes.is_some(), "{lo:?}");
        }
    }

    #[test]
    fn rejects_malformed_messages() {
        let mut links = Vec::new();
        // Header claims 64 bytes, only 16 present.
        let mut msg = vec![0u8; 16];
        msg[0..4].copy_from_slice(&64u32.to_ne_bytes());
        assert!(parse_messages(&msg, 0, &mut links).is_err());
        // An NLMSG_ERROR carrying -EPERM.
        let mut msg = vec![0u8; 20];
        msg[0..4].copy_from_slice(&20u32.to_ne_bytes());
        msg[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        msg[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        let e = parse_messages(&msg, 0, &mut links).expect_err("error reply");
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        // An attribute longer than the message.
        let mut body = vec![0u8; IFINFOMSG_LEN + 4];
        body[IFINFOMSG_LEN..IFINFOMSG_LEN + 2].copy_from_slice(&40u16.to_ne_bytes());
        assert_eq!(parse_link(&body), None);
    }
}
