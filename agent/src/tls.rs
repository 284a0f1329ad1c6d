//! HTTPS for `--web.config.file`: the rustls server config made from a checked
//! `tls_server_config` (Go's names for versions, cipher suites, curves and client auth
//! policies mapped onto rustls with the ring provider), and `TlsListener`, which serves axum
//! over TLS with the certificate re-read when its files change.
//!
//! The handshake runs in the connection's own task (`LazyTls`), not in `accept`, so a client
//! that connects and never speaks holds only itself up, never the other clients.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::web_config::{ClientAuth, Reloader, TlsSettings, TlsVersion};

/// The names Go's `tls.CipherSuites()` returns, which the toolkit accepts.
pub const GO_CIPHER_SUITES: [&str; 13] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// The curve names the toolkit accepts.
pub const GO_CURVES: [&str; 4] = ["CurveP256", "CurveP384", "CurveP521", "X25519"];

/// A TLS problem with the key it is about.
#[derive(Debug)]
pub struct TlsProblem {
    pub path: &'static str,
    pub message: String,
}

fn problem(path: &'static str, message: impl Into<String>) -> TlsProblem {
    TlsProblem {
        path,
        message: message.into(),
    }
}

/// The rustls name of a Go TLS 1.2 cipher suite; `None` for the CBC suites Go still offers and
/// rustls never implemented, and for TLS 1.3 suites (not configurable in Go either).
fn rustls_suite(go: &str) -> Option<rustls::CipherSuite> {
    use rustls::CipherSuite as C;
    Some(match go {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        _ => return None,
    })
}

fn rustls_group(go: &str) -> Option<rustls::NamedGroup> {
    use rustls::NamedGroup as G;
    Some(match go {
        "CurveP256" => G::secp256r1,
        "CurveP384" => G::secp384r1,
        "X25519" => G::X25519,
        // ring has no P-521 key exchange.
        _ => return None,
    })
}

/// Builds the rustls server config; every error names the key at fault.
pub fn server_config(t: &TlsSettings) -> Result<rustls::ServerConfig, TlsProblem> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !t.cipher_suites.is_empty() {
        let wanted: Vec<rustls::CipherSuite> = t
            .cipher_suites
            .iter()
            .filter_map(|s| rustls_suite(s))
            .collect();
        // As in Go, the list orders and limits TLS 1.2 suites; TLS 1.3 keeps all of its own.
        let mut suites: Vec<rustls::SupportedCipherSuite> = wanted
            .iter()
            .filter_map(|w| {
                provider
                    .cipher_suites
                    .iter()
                    .find(|s| s.suite() == *w)
                    .copied()
            })
            .collect();
        if suites.is_empty() && t.min_version <= TlsVersion::Tls12 {
            return Err(problem(
                "tls_server_config.cipher_suites",
                "none of these TLS 1.2 suites is supported (rustls implements the ECDHE AES-GCM and ChaCha20-Poly1305 ones)",
            ));
        }
        suites.extend(
            provider
                .cipher_suites
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS13),
        );
        provider.cipher_suites = suites;
    }
    if !t.curve_preferences.is_empty() {
        let groups: Vec<_> = t
            .curve_preferences
            .iter()
            .filter_map(|c| rustls_group(c))
            .filter_map(|g| provider.kx_groups.iter().find(|k| k.name() == g).copied())
            .collect();
        if groups.is_empty() {
            return Err(problem(
                "tls_server_config.curve_preferences",
                "none of these curves is supported (X25519, CurveP256, CurveP384 are)",
            ));
        }
        provider.kx_groups = groups;
    }
    // rustls speaks TLS 1.2 and 1.3 only: a range reaching lower is clamped to 1.2.
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if t.min_version <= TlsVersion::Tls12 && t.max_version >= TlsVersion::Tls12 {
        versions.push(&rustls::version::TLS12);
    }
    if t.max_version >= TlsVersion::Tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if versions.is_empty() {
        return Err(problem(
            "tls_server_config.max_version",
            "no TLS version left between min_version and max_version (TLS 1.2 and 1.3 are supported)",
        ));
    }
    let provider = Arc::new(provider);

    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&t.cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            problem(
                "tls_server_config.cert_file",
                format!("invalid PEM certificate: {e}"),
            )
        })?;
    if certs.is_empty() {
        return Err(problem(
            "tls_server_config.cert_file",
            "no certificate found",
        ));
    }
    // The error never quotes the key: rustls-pki-types reports only what kind of problem it is.
    let key = PrivateKeyDer::from_pem_slice(t.key_pem.expose().as_bytes()).map_err(|e| {
        problem(
            "tls_server_config.key_file",
            format!("invalid PEM private key: {e}"),
        )
    })?;

    let verifier = client_verifier(t, &provider)?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| problem("tls_server_config", e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| {
            problem(
                "tls_server_config.key_file",
                format!("the key does not match the certificate, or is unusable: {e}"),
            )
        })?;
    cfg.ignore_client_order = t.prefer_server_cipher_suites;
    // The agent's HTTP server speaks HTTP/1.1; `http2: true` clients fall back to it.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

fn client_verifier(
    t: &TlsSettings,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsProblem> {
    let verify = |optional: bool| -> Result<Arc<dyn ClientCertVerifier>, TlsProblem> {
        let Some(pem) = &t.client_ca_pem else {
            return Err(problem(
                "tls_server_config.client_ca_file",
                "client_auth_type verifies client certificates, so a client CA is needed (client_ca_file or client_ca)",
            ));
        };
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(pem) {
            let c = c.map_err(|e| {
                problem(
                    "tls_server_config.client_ca_file",
                    format!("invalid PEM certificate: {e}"),
                )
            })?;
            roots.add(c).map_err(|e| {
                problem(
                    "tls_server_config.client_ca_file",
                    format!("unusable CA certificate: {e}"),
                )
            })?;
        }
        let mut b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        if optional {
            b = b.allow_unauthenticated();
        }
        b.build()
            .map_err(|e| problem("tls_server_config.client_ca_file", e.to_string()))
    };
    let inner: Arc<dyn ClientCertVerifier> = match t.client_auth {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::RequestClientCert => Arc::new(AnyClientCert {
            mandatory: false,
            provider: provider.clone(),
        }),
        ClientAuth::RequireAnyClientCert => Arc::new(AnyClientCert {
            mandatory: true,
            provider: provider.clone(),
        }),
        ClientAuth::VerifyClientCertIfGiven => verify(true)?,
        ClientAuth::RequireAndVerifyClientCert => verify(false)?,
    };
    match &t.client_allowed_sans {
        None => Ok(inner),
        Some(sans) => {
            let mut names = Vec::new();
            for s in sans {
                match ServerName::try_from(s.as_str()) {
                    Ok(n) => names.push(n.to_owned()),
                    Err(_) => {
                        return Err(problem(
                            "tls_server_config.client_allowed_sans",
                            format!("{s:?}: only DNS names and IP addresses are supported"),
                        ))
                    }
                }
            }
            Ok(Arc::new(AllowedSans { inner, names }))
        }
    }
}

/// Go's `RequestClientCert` and `RequireAnyClientCert`: a certificate is asked for (and
/// required by the latter) but not checked against any CA; its handshake signature still is.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `client_allowed_sans`: after the policy's own checks, the client certificate must name one
/// of these DNS names or IP addresses among its subject alternative names.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    names: Vec<ServerName<'static>>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        if self
            .names
            .iter()
            .any(|n| cert.verify_is_valid_for_subject_name(n).is_ok())
        {
            Ok(ok)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A TCP listener whose connections speak TLS with the web config's current certificate.
#[derive(Debug)]
pub struct TlsListener {
    pub tcp: TcpListener,
    pub web: Arc<Reloader>,
}

impl axum::serve::Listener for TlsListener {
    type Io = LazyTls;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = axum::serve::Listener::accept(&mut self.tcp).await;
            // Like the toolkit's GetConfigForClient: each connection gets the config as the
            // files are now, so a rotated certificate is served from the next handshake on.
            match self.web.current() {
                Ok(c) => match &c.tls {
                    Some(cfg) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(cfg.clone());
                        return (LazyTls::Start(Some((stream, acceptor))), addr);
                    }
                    None => {
                        tracing::warn!(client = %addr, "TLS connection refused: the web config no longer configures TLS")
                    }
                },
                Err(e) => {
                    tracing::warn!(client = %addr, error = %e, "TLS connection refused: web config unusable")
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A server-side TLS stream whose handshake runs on first use, in the connection's task.
pub enum LazyTls {
    /// Nothing read yet: is it TLS at all?
    Start(Option<(TcpStream, tokio_rustls::TlsAcceptor)>),
    Handshaking(Box<tokio_rustls::Accept<TcpStream>>),
    Ready(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Failed,
}

impl LazyTls {
    /// Drives the handshake; ready once the stream can carry data.
    fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<&mut tokio_rustls::server::TlsStream<TcpStream>>> {
        if let LazyTls::Start(start) = self {
            let Some((stream, _)) = start.as_ref() else {
                return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
            };
            let mut head = [0u8; 5];
            let mut buf = ReadBuf::new(&mut head);
            if stream.poll_peek(cx, &mut buf)?.is_pending() {
                return Poll::Pending;
            }
            if looks_like_http(buf.filled()) {
                // What Go's net/http answers, so an operator who forgot `https://` is told.
                // The request is read first: closing a socket with unread data resets the
                // connection, and the reset can discard the answer before the client reads it.
                let mut sink = [0u8; 4096];
                for _ in 0..16 {
                    match stream.try_read(&mut sink) {
                        Ok(n) if n > 0 => {}
                        _ => break,
                    }
                }
                let _ = stream.try_write(
                    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
                );
                *self = LazyTls::Failed;
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "plain HTTP request on the TLS port",
                )));
            }
            if let Some((stream, acceptor)) = start.take() {
                *self = LazyTls::Handshaking(Box::new(acceptor.accept(stream)));
            }
        }
        if let LazyTls::Handshaking(accept) = self {
            match Pin::new(&mut **accept).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(s)) => *self = LazyTls::Ready(Box::new(s)),
                Poll::Ready(Err(e)) => {
                    // Plain HTTP, no or a bad client certificate: the client's problem, so
                    // debug level (Go's http.Server logs these lines as well, to its error log).
                    tracing::debug!(error = %e, "TLS handshake failed");
                    *self = LazyTls::Failed;
                    return Poll::Ready(Err(e));
                }
            }
        }
        match self {
            LazyTls::Ready(s) => Poll::Ready(Ok(s)),
            _ => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "TLS handshake failed",
            ))),
        }
    }
}

/// Go's `tlsRecordHeaderLooksLikeHTTP`: the first five bytes of an HTTP request, not a TLS record.
fn looks_like_http(head: &[u8]) -> bool {
    matches!(head, b"GET /" | b"HEAD " | b"POST " | b"PUT /" | b"OPTIO")
}

impl AsyncRead for LazyTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().poll_ready(cx) {
            Poll::Ready(Ok(s)) => Pin::new(s).poll_read(cx, buf),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for LazyTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().poll_ready(cx) {
            Poll::Ready(Ok(s)) => Pin::new(s).poll_write(cx, buf),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().poll_ready(cx) {
            Poll::Ready(Ok(s)) => Pin::new(s).poll_flush(cx),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().poll_ready(cx) {
            Poll::Ready(Ok(s)) => Pin::new(s).poll_shutdown(cx),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}
