//! Listening sockets the way node_exporter's Go makes them: every `--web.listen-address` form
//! `net.Listen("tcp", addr)` accepts, several addresses at once, and systemd socket activation
//! (`--web.systemd-socket`).
//!
//! Go treats an unspecified host (`:9100`, `0.0.0.0:9100`, `[::]:9100`, `[0.0.0.0]:9100`) as
//! "every address": one IPv6 socket with `IPV6_V6ONLY` off, so IPv4 and IPv6 clients both
//! connect, falling back to IPv4 when the host has no IPv6. A host name is resolved once, at
//! start, and Go listens on its first IPv4 address (or its first address if it has none).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Deserializer};

/// The `listen:` key: one address or a list of them (each served).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen(pub Vec<String>);

impl Default for Listen {
    fn default() -> Self {
        Self(vec!["0.0.0.0:9100".to_owned()])
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => Listen(vec![s]),
            OneOrMany::Many(v) => Listen(v),
        })
    }
}

impl Listen {
    /// Every address's problem, with its key path (`listen` or `listen[1]`).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.0.is_empty() {
            out.push((
                "listen".to_owned(),
                "at least one address is needed".to_owned(),
            ));
        }
        for (i, a) in self.0.iter().enumerate() {
            if let Err(e) = parse(a) {
                let path = if self.0.len() == 1 {
                    "listen".to_owned()
                } else {
                    format!("listen[{i}]")
                };
                out.push((path, e));
            }
        }
        out
    }
}

/// A parsed listen address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// Every local address (an empty or unspecified host).
    Any(u16),
    /// One IP address.
    Ip(SocketAddr),
    /// A host name, resolved when the socket is bound.
    Host(String, u16),
}

/// Parses `addr` as Go's `net.SplitHostPort` + `net.Listen("tcp", ..)` would.
pub fn parse(addr: &str) -> Result<Addr, String> {
    let bad = |why: &str| format!("invalid listen address {addr:?}: {why}");
    if addr.starts_with("vsock://") {
        // exporter-toolkit also listens on virtio sockets; the agent serves TCP only.
        return Err(bad("vsock addresses are not supported"));
    }
    let (host, port) = split_host_port(addr).map_err(&bad)?;
    // Go also takes service names (`:http`) from /etc/services; a port number is what every
    // manifest writes, so only numbers are accepted.
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port must be a number from 0 to 65535"))?;
    if host.is_empty() {
        return Ok(Addr::Any(port));
    }
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => Ok(Addr::Any(port)),
        Ok(ip) => Ok(Addr::Ip(SocketAddr::new(ip, port))),
        Err(_) if host.contains(':') || host.contains('%') => {
            Err(bad("not an IP address (IPv6 zones are not supported)"))
        }
        Err(_) => Ok(Addr::Host(host.to_owned(), port)),
    }
}

/// Go's `net.SplitHostPort`: `host:port`, `[host]:port` (any host, IPv4 too), `:port`.
fn split_host_port(s: &str) -> Result<(&str, &str), &'static str> {
    let Some(colon) = s.rfind(':') else {
        return Err("missing port (want HOST:PORT, for example :9100)");
    };
    let (host, port) = (&s[..colon], &s[colon + 1..]);
    let host = if let Some(inner) = host.strip_prefix('[') {
        match inner.strip_suffix(']') {
            Some(h) if !h.contains('[') && !h.contains(']') => h,
            _ => return Err("missing ']' in address"),
        }
    } else {
        if host.contains(':') {
            return Err("too many colons (write an IPv6 address in brackets: [::1]:9100)");
        }
        if host.contains('[') || host.contains(']') {
            return Err("unexpected '[' or ']' in address");
        }
        host
    };
    Ok((host, port))
}

/// Binds one listen address, resolving a host name first.
pub async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context as _;
    let sock = match parse(addr).map_err(anyhow::Error::msg)? {
        Addr::Any(port) => return bind_any(port).with_context(|| format!("listen on {addr}")),
        Addr::Ip(sa) => sa,
        Addr::Host(host, port) => {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                .await
                .with_context(|| format!("resolve {host}"))?
                .collect();
            // Go's Listen takes the first IPv4 address, else the first one.
            found
                .iter()
                .find(|a| a.is_ipv4())
                .or(found.first())
                .copied()
                .with_context(|| format!("resolve {host}: no addresses"))?
        }
    };
    bind_socket(sock, false).with_context(|| format!("listen on {addr}"))
}

/// Every address, IPv4 and IPv6 on one socket when the host has IPv6, as Go listens.
fn bind_any(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    match bind_socket(
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        true,
    ) {
        Ok(l) => Ok(l),
        Err(e)
            if e.raw_os_error() == Some(libc::EAFNOSUPPORT)
                || e.raw_os_error() == Some(libc::EADDRNOTAVAIL) =>
        {
            bind_socket(
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
                false,
            )
        }
        Err(e) => Err(e),
    }
}

fn bind_socket(addr: SocketAddr, dual_stack: bool) -> std::io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if dual_stack {
        // Explicitly, not the `net.ipv6.bindv6only` sysctl's default: Go does the same.
        socket.set_only_v6(false)?;
    }
    // A restarted agent must rebind while old connections sit in TIME_WAIT (Go sets it too).
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// The listening sockets systemd passed (`LISTEN_PID`, `LISTEN_FDS`, file descriptors from 3),
/// as go-systemd's `activation.Listeners`: the variables are removed so children do not inherit
/// them, and the descriptors are made close-on-exec.
pub fn systemd_listeners() -> anyhow::Result<Vec<tokio::net::TcpListener>> {
    use std::os::fd::FromRawFd as _;
    const FIRST_FD: i32 = 3;
    let pid = std::env::var("LISTEN_PID").unwrap_or_default();
    let fds = std::env::var("LISTEN_FDS").unwrap_or_default();
    // Called before the agent starts threads of its own, so no other thread reads the
    // environment while it changes.
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    if pid != std::process::id().to_string() {
        anyhow::bail!(
            "no socket activation file descriptors found (LISTEN_PID is not this process)"
        );
    }
    let n: i32 = fds.parse().map_err(|_| {
        anyhow::anyhow!("no socket activation file descriptors found (LISTEN_FDS={fds:?})")
    })?;
    if n < 1 {
        anyhow::bail!("no socket activation file descriptors found");
    }
    let mut out = Vec::new();
    for fd in FIRST_FD..FIRST_FD + n {
        // Checked while only borrowed: taking ownership of a descriptor that is not open (or
        // not a socket) and dropping it would close something that is not ours.
        // SAFETY: the borrow lives only for these checks, and fd is not closed meanwhile.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&borrowed);
        if !sock.is_listener().unwrap_or(false)
            || !sock.local_addr().is_ok_and(|a| a.is_ipv4() || a.is_ipv6())
        {
            anyhow::bail!("socket activation file descriptor {fd} is not a listening TCP socket");
        }
        sock.set_cloexec(true)?;
        // SAFETY: with LISTEN_PID naming this process, systemd hands it descriptors 3..3+n;
        // nothing else in the process owns them, and each is taken exactly once.
        let std_listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        std_listener.set_nonblocking(true)?;
        out.push(tokio::net::TcpListener::from_std(std_listener)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_go_accepts() {
        assert_eq!(parse(":9100"), Ok(Addr::Any(9100)));
        assert_eq!(parse("0.0.0.0:9100"), Ok(Addr::Any(9100)));
        assert_eq!(parse("[::]:9100"), Ok(Addr::Any(9100)));
        // The prometheus-node-exporter Helm chart renders `[$(HOST_IP)]:9100`.
        assert_eq!(parse("[0.0.0.0]:9100"), Ok(Addr::Any(9100)));
        assert_eq!(
            parse("[10.1.2.3]:9100"),
            Ok(Addr::Ip("10.1.2.3:9100".parse().expect("addr")))
        );
        assert_eq!(
            parse("127.0.0.1:9100"),
            Ok(Addr::Ip("127.0.0.1:9100".parse().expect("addr")))
        );
        assert_eq!(
            parse("[::1]:0"),
            Ok(Addr::Ip("[::1]:0".parse().expect("addr")))
        );
        assert_eq!(
            parse("localhost:9100"),
            Ok(Addr::Host("localhost".into(), 9100))
        );
    }

    #[test]
    fn what_go_refuses() {
        for (addr, why) in [
            ("localhost", "missing port"),
            ("9100", "missing port"),
            ("::1:9100", "too many colons"),
            ("[::1:9100", "missing ']'"),
            ("::]:9100", "too many colons"),
            (":http", "must be a number"),
            (":65536", "must be a number"),
            ("[fe80::1%eth0]:9100", "zones"),
            ("vsock://:9100", "vsock addresses are not supported"),
        ] {
            let e = parse(addr).expect_err(addr);
            assert!(e.contains(why), "{addr}: {e}");
        }
    }

    #[test]
    fn listen_key_takes_a_string_or_a_list() {
        #[derive(Deserialize)]
        struct T {
            listen: Listen,
        }
        let one: T = serde_saphyr::from_str("listen: ':9100'").expect("string");
        assert_eq!(one.listen.0, [":9100"]);
        let two: T = serde_saphyr::from_str("listen: [':9100', 'localhost:9101']").expect("list");
        assert_eq!(two.listen.0, [":9100", "localhost:9101"]);
        let bad = Listen(vec![":1".into(), "x".into()]);
        let problems = bad.problems();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "listen[1]");
    }

    #[tokio::test]
    async fn wildcard_takes_ipv4_and_ipv6_on_one_socket() {
        let l = bind(":0").await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("IPv4 client");
        if std::net::TcpListener::bind("[::1]:0").is_ok() {
            tokio::net::TcpStream::connect(("::1", port))
                .await
                .expect("IPv6 client");
        }
    }
}
