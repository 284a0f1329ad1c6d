//! `LinkDump`: every network interface's rtnetlink attributes in one RTM_GETLINK dump over a
//! NETLINK_ROUTE socket kept open across scrapes (libc only; what node_exporter 1.7+'s
//! `--collector.netclass.netlink` reads). netclass uses it on the live host instead of 16 of the
//! 22 sysfs attribute files per interface; netdev uses a dump with statistics (IFLA_STATS64,
//! what node_exporter's default `--collector.netdev.netlink` reads) and, for
//! `--collector.netdev.address-info`, an RTM_GETADDR dump on the same socket.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Mutex, PoisonError};

// From linux/if_link.h and linux/rtnetlink.h (stable kernel ABI).
const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_STATS: u16 = 7;
const IFLA_TXQLEN: u16 = 13;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKMODE: u16 = 17;
const IFLA_IFALIAS: u16 = 20;
const IFLA_STATS64: u16 = 23;
const IFLA_GROUP: u16 = 27;
const IFLA_EXT_MASK: u16 = 29;
const IFLA_CARRIER: u16 = 33;
const IFLA_CARRIER_CHANGES: u16 = 35;
const IFLA_CARRIER_UP_COUNT: u16 = 47;
const IFLA_CARRIER_DOWN_COUNT: u16 = 48;
const IFLA_PROP_LIST: u16 = 52;
const IFLA_ALT_IFNAME: u16 = 53;
/// Leaves the per-family statistics (IFLA_AF_SPEC's inet6 counters) out of the dump: netclass does
/// not report them. The kernel still sends IFLA_STATS64 and IFLA_STATS.
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
pub(crate) const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
/// The counters of `struct rtnl_link_stats64` node_exporter reads, up to `rx_nohandler`.
pub(crate) const STATS: usize = 24;
/// `rtnl_link_stats64` before kernel 4.6 (no `rx_nohandler`): 23 counters.
const STATS_MIN: usize = 23;

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
    /// IFLA_STATS64 (or, without it, the 32-bit IFLA_STATS widened), in `rtnl_link_stats64`
    /// order up to `rx_nohandler` (0 on kernels before 4.6); only in a dump with statistics.
    pub stats: Option<[u64; STATS]>,
    /// Whether `stats` came from IFLA_STATS64 (netclass' RTNL mode reads only those).
    pub stats64: bool,
    /// IFLA_PROP_LIST's alternative names, in kernel order.
    pub altnames: Vec<String>,
}

/// One address as an RTM_GETADDR dump reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Addr {
    /// `ifa_index`: the interface's ifindex.
    pub index: u32,
    /// `ifa_family`: AF_INET or AF_INET6.
    pub family: u8,
    pub prefixlen: u8,
    /// The interface's own address: IFA_LOCAL when present (IPv4 always sends it; IPv6 only
    /// on a point-to-point link, where IFA_ADDRESS is the peer), else IFA_ADDRESS, as Go's
    /// `net.Interface.Addrs` picks it.
    pub ip: Vec<u8>,
}

/// A NETLINK_ROUTE socket, opened on first use and kept; dropped after any error so the next
/// dump starts on a fresh one.
#[derive(Debug, Default)]
pub(crate) struct LinkDump {
    socket: Mutex<Option<Socket>>,
    /// Whether link dumps carry statistics (netdev) or skip them (netclass).
    stats: bool,
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
    /// Link dumps without statistics (RTEXT_FILTER_SKIP_STATS keeps them small).
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Link dumps with IFLA_STATS64 and IFLA_STATS, as jsimonetti/rtnetlink's `Link.List`
    /// requests them (no extended mask).
    pub(crate) fn with_stats() -> Self {
        Self {
            stats: true,
            ..Self::default()
        }
    }

    /// Every interface of this process' network namespace, in kernel order.
    pub(crate) fn links(&self) -> io::Result<Vec<Link>> {
        let mut links = Vec::with_capacity(8);
        let mask = (!self.stats).then_some(RTEXT_FILTER_SKIP_STATS);
        self.dump(libc::RTM_GETLINK, IFINFOMSG_LEN, mask, |kind, body| {
            if kind == libc::RTM_NEWLINK {
                links.push(parse_link(body)?);
            }
            Some(())
        })?;
        Ok(links)
    }

    /// Every address of this process' network namespace (both families), in kernel order.
    pub(crate) fn addrs(&self) -> io::Result<Vec<Addr>> {
        let mut addrs = Vec::with_capacity(8);
        self.dump(libc::RTM_GETADDR, IFADDRMSG_LEN, None, |kind, body| {
            if kind == libc::RTM_NEWADDR {
                if let Some(a) = parse_addr(body)? {
                    addrs.push(a);
                }
            }
            Some(())
        })?;
        Ok(addrs)
    }

    /// One dump request on the kept socket; `each` sees every reply message's type and body
    /// and returns `None` for a malformed one.
    fn dump(
        &self,
        request: u16,
        header_len: usize,
        ext_mask: Option<u32>,
        each: impl FnMut(u16, &[u8]) -> Option<()>,
    ) -> io::Result<()> {
        let mut slot = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(Socket {
                fd: open_socket_of(libc::NETLINK_ROUTE)?,
                seq: 0,
                buf: vec![0; RECV_BUF],
            });
        }
        let Some(sock) = slot.as_mut() else {
            return Err(io::Error::other("netlink socket missing"));
        };
        sock.seq = sock.seq.wrapping_add(1);
        let res = dump(
            &sock.fd,
            sock.seq,
            &mut sock.buf,
            request,
            header_len,
            ext_mask,
            each,
        );
        if res.is_err() {
            *slot = None;
        }
        res
    }
}

/// A netlink socket of `protocol` (NETLINK_ROUTE, NETLINK_GENERIC).
pub(crate) fn open_socket_of(protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socket(2) returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends one dump request (`request` with an all-zero family header of `header_len` bytes:
/// AF_UNSPEC, every interface; IFLA_EXT_MASK when `ext_mask` is set) and hands each reply
/// message to `each` up to NLMSG_DONE.
fn dump(
    fd: &OwnedFd,
    seq: u32,
    buf: &mut [u8],
    request: u16,
    header_len: usize,
    ext_mask: Option<u32>,
    each: impl FnMut(u16, &[u8]) -> Option<()>,
) -> io::Result<()> {
    let mut req = [0u8; NLMSG_HDRLEN + IFINFOMSG_LEN + 8];
    let len = NLMSG_HDRLEN + header_len + if ext_mask.is_some() { 8 } else { 0 };
    req[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&request.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&seq.to_ne_bytes());
    if let Some(mask) = ext_mask {
        let attr = NLMSG_HDRLEN + header_len;
        req[attr..attr + 2].copy_from_slice(&8u16.to_ne_bytes());
        req[attr + 2..attr + 4].copy_from_slice(&IFLA_EXT_MASK.to_ne_bytes());
        req[attr + 4..attr + 8].copy_from_slice(&mask.to_ne_bytes());
    }
    exchange(fd, &req[..len], seq, buf, each)
}

/// Sends one request (`req`, a whole netlink message carrying `seq`) and hands each reply
/// message of that sequence number to `each` up to NLMSG_DONE (a dump) or, for a request that
/// is not a dump, the first reply.
pub(crate) fn exchange(
    fd: &OwnedFd,
    req: &[u8],
    seq: u32,
    buf: &mut [u8],
    mut each: impl FnMut(u16, &[u8]) -> Option<()>,
) -> io::Result<()> {
    let dump = u16::from_ne_bytes([req[6], req[7]]) & libc::NLM_F_DUMP as u16 != 0;
    // SAFETY: `req` is a valid buffer of `req.len()` bytes; the kernel is the destination
    // (an unbound netlink socket sends to pid 0).
    let sent = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
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
        let mut replies = 0;
        let done = parse_messages(&buf[..n], seq, &mut |kind, body| {
            replies += 1;
            each(kind, body)
        })?;
        if done || (!dump && replies > 0) {
            return Ok(());
        }
    }
}

/// Parses one datagram of netlink messages, handing each reply to `each`; true once
/// NLMSG_DONE is seen.
fn parse_messages(
    mut data: &[u8],
    seq: u32,
    each: &mut impl FnMut(u16, &[u8]) -> Option<()>,
) -> io::Result<bool> {
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
            _ => each(kind, body).ok_or_else(bad)?,
        }
    }
    Ok(false)
}

/// The attributes after a fixed header: (type without the nesting/byte-order bits, value).
/// `None` for an attribute longer than the message.
pub(crate) fn attributes(mut attrs: &[u8]) -> impl Iterator<Item = Option<(u16, &[u8])>> {
    std::iter::from_fn(move || {
        if attrs.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            attrs = &[];
            return Some(None);
        }
        let v = &attrs[4..len];
        attrs = &attrs[align(len).min(attrs.len())..];
        Some(Some((kind, v)))
    })
}

/// Parses an RTM_NEWADDR body: ifaddrmsg, then attributes. `Ok(None)` for a family other
/// than IPv4/IPv6 or an address without IFA_LOCAL/IFA_ADDRESS (Go's `newAddr` gives nil).
fn parse_addr(body: &[u8]) -> Option<Option<Addr>> {
    let hdr = body.get(..IFADDRMSG_LEN)?;
    let family = hdr[0];
    let prefixlen = hdr[1];
    let index = u32::from_ne_bytes(hdr[4..8].try_into().ok()?);
    let (mut local, mut address) = (None, None);
    for attr in attributes(&body[IFADDRMSG_LEN..]) {
        match attr? {
            (IFA_LOCAL, v) => local = Some(v),
            (IFA_ADDRESS, v) => address = Some(v),
            _ => {}
        }
    }
    let want = match i32::from(family) {
        libc::AF_INET => 4,
        libc::AF_INET6 => 16,
        _ => return Some(None),
    };
    let Some(ip) = local.or(address) else {
        return Some(None);
    };
    let ip = ip.get(..want)?.to_vec();
    Some(Some(Addr {
        index,
        family,
        prefixlen,
        ip,
    }))
}

/// A netlink string attribute (NUL-terminated), invalid UTF-8 replaced by U+FFFD as Go's
/// `strings.ToValidUTF8` does.
fn nul_terminated(v: &[u8]) -> String {
    String::from_utf8_lossy(v.split(|&b| b == 0).next().unwrap_or(v)).into_owned()
}

/// Reads counter `i` of a statistics struct of `width`-byte counters.
fn counter(v: &[u8], width: usize, i: usize) -> u64 {
    let b = &v[i * width..(i + 1) * width];
    if width == 8 {
        u64::from_ne_bytes(b.try_into().unwrap_or_default())
    } else {
        u64::from(u32::from_ne_bytes(b.try_into().unwrap_or_default()))
    }
}

/// Parses `rtnl_link_stats64` (`width` 8) or `rtnl_link_stats` (`width` 4): 23 counters
/// before kernel 4.6, then `rx_nohandler` and later additions, which are ignored.
/// jsimonetti/rtnetlink accepts only the sizes it knows (and fails the whole dump on any
/// other); a longer struct from a newer kernel is read here rather than refused.
fn parse_stats(v: &[u8], width: usize) -> Option<[u64; STATS]> {
    let n = v.len() / width;
    if n < STATS_MIN {
        return None;
    }
    let mut out = [0u64; STATS];
    for (i, c) in out.iter_mut().enumerate().take(n) {
        *c = counter(v, width, i);
    }
    Some(out)
}

/// Netlink's 4-byte alignment.
pub(crate) fn align(n: usize) -> usize {
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
    let mut stats32 = None;
    for attr in attributes(&body[IFINFOMSG_LEN..]) {
        let (kind, v) = attr?;
        let u32v = || {
            v.get(..4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        };
        let u8v = || v.first().copied();
        let text = || nul_terminated(v);
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
            IFLA_STATS64 => link.stats = Some(parse_stats(v, 8)?),
            IFLA_STATS => stats32 = Some(parse_stats(v, 4)?),
            IFLA_PROP_LIST => {
                for prop in attributes(v) {
                    if let (IFLA_ALT_IFNAME, name) = prop? {
                        link.altnames.push(nul_terminated(name));
                    }
                }
            }
            _ => {}
        }
    }
    // node_exporter widens the 32-bit counters when a driver sends no 64-bit ones.
    link.stats64 = link.stats.is_some();
    if link.stats.is_none() {
        link.stats = stats32;
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
    fn dumps_statistics_and_addresses_when_asked() {
        let dump = LinkDump::with_stats();
        let links = dump.links().expect("RTM_GETLINK dump with stats");
        let lo = links
            .iter()
            .find(|l| l.name == "lo")
            .unwrap_or_else(|| panic!("no lo in {links:?}"));
        assert!(lo.stats.is_some(), "{lo:?}");
        // The same socket serves an address dump; lo carries 127.0.0.1/8 in any namespace
        // where it is up.
        let addrs = dump.addrs().expect("RTM_GETADDR dump");
        if lo.flags & libc::IFF_UP as u32 != 0 {
            assert!(
                addrs.iter().any(|a| a.index == 1
                    && a.ip == [127, 0, 0, 1]
                    && a.prefixlen == 8
                    && i32::from(a.family) == libc::AF_INET),
                "{addrs:?}"
            );
        }
    }

    /// An attribute: length, type, value, padding.
    fn attr(kind: u16, v: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(v);
        a.resize(align(a.len()), 0);
        a
    }

    fn counters<const W: usize>(n: usize) -> Vec<u8> {
        (1..=n as u64)
            .flat_map(|i| {
                if W == 8 {
                    i.to_ne_bytes().to_vec()
                } else {
                    (i as u32).to_ne_bytes().to_vec()
                }
            })
            .collect()
    }

    #[test]
    fn link_statistics_64_bit_first_then_32_bit_and_old_kernels() {
        let mut body = vec![0u8; IFINFOMSG_LEN];
        body.extend(attr(IFLA_IFNAME, b"eth0\0"));
        body.extend(attr(IFLA_STATS, &counters::<4>(24)));
        // Kernel 5.19+: 25 counters (rx_otherhost_dropped), ignored.
        let mut s64 = counters::<8>(25);
        s64[..8].copy_from_slice(&u64::MAX.to_ne_bytes());
        body.extend(attr(IFLA_STATS64, &s64));
        let l = parse_link(&body).expect("valid");
        let st = l.stats.expect("stats");
        assert_eq!(st[0], u64::MAX);
        assert_eq!(st[23], 24, "rx_nohandler");

        // Only 32-bit statistics, of a kernel before 4.6 (23 counters): widened, nohandler 0.
        let mut body = vec![0u8; IFINFOMSG_LEN];
        body.extend(attr(IFLA_STATS, &counters::<4>(23)));
        let st = parse_link(&body).expect("valid").stats.expect("stats");
        assert_eq!(st[22], 23);
        assert_eq!(st[23], 0);

        // Too short to be either struct: malformed.
        let mut body = vec![0u8; IFINFOMSG_LEN];
        body.extend(attr(IFLA_STATS64, &counters::<8>(10)));
        assert_eq!(parse_link(&body), None);
    }

    #[test]
    fn addresses_prefer_the_local_address() {
        // IPv4: IFA_ADDRESS (the peer on a point-to-point link) then IFA_LOCAL.
        let mut body = vec![libc::AF_INET as u8, 32, 0, 0];
        body.extend_from_slice(&7u32.to_ne_bytes());
        body.extend(attr(IFA_ADDRESS, &[10, 0, 0, 2]));
        body.extend(attr(IFA_LOCAL, &[10, 0, 0, 1]));
        let a = parse_addr(&body).expect("valid").expect("an address");
        assert_eq!(
            (a.index, a.prefixlen, a.ip.as_slice()),
            (7, 32, &[10, 0, 0, 1][..])
        );
        // IPv6 without a peer: IFA_ADDRESS only.
        let mut body = vec![libc::AF_INET6 as u8, 64, 0, 0];
        body.extend_from_slice(&2u32.to_ne_bytes());
        let mut ip = [0u8; 16];
        ip[0] = 0xfe;
        ip[1] = 0x80;
        ip[15] = 1;
        body.extend(attr(IFA_ADDRESS, &ip));
        let a = parse_addr(&body).expect("valid").expect("an address");
        assert_eq!(a.ip, ip);
        // Another family: skipped, not an error.
        let mut body = vec![libc::AF_PACKET as u8, 0, 0, 0];
        body.extend_from_slice(&2u32.to_ne_bytes());
        assert_eq!(parse_addr(&body), Some(None));
    }

    #[test]
    fn rejects_malformed_messages() {
        let mut each = |_: u16, _: &[u8]| Some(());
        // Header claims 64 bytes, only 16 present.
        let mut msg = vec![0u8; 16];
        msg[0..4].copy_from_slice(&64u32.to_ne_bytes());
        assert!(parse_messages(&msg, 0, &mut each).is_err());
        // An NLMSG_ERROR carrying -EPERM.
        let mut msg = vec![0u8; 20];
        msg[0..4].copy_from_slice(&20u32.to_ne_bytes());
        msg[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        msg[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        let e = parse_messages(&msg, 0, &mut each).expect_err("error reply");
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        // An attribute longer than the message.
        let mut body = vec![0u8; IFINFOMSG_LEN + 4];
        body[IFINFOMSG_LEN..IFINFOMSG_LEN + 2].copy_from_slice(&40u16.to_ne_bytes());
        assert_eq!(parse_link(&body), None);
    }
}
