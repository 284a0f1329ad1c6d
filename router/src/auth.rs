//! Inbound authentication: Alertmanager's `http_config` credentials (bearer token, basic auth),
//! Sentry's `Sentry-Hook-Signature` (HMAC-SHA256 of the raw body) and the legacy plugin's URL
//! token. Every comparison is constant-time; every failure is a typed `AuthError` that the HTTP
//! layer answers with 401, and whose message never contains a credential.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// Why a request was not authenticated; the HTTP layer answers 401 with this text. Messages
/// say what was wrong, never what was received or expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials where some are required.
    #[error("missing {0}")]
    Missing(&'static str),
    /// Credentials that cannot be read (bad encoding, more than one header, ...).
    #[error("malformed {what}: {reason}")]
    Malformed {
        what: &'static str,
        reason: &'static str,
    },
    /// An `Authorization` scheme this endpoint is not configured for.
    #[error("unsupported authorization scheme")]
    UnsupportedScheme,
    /// Well-formed credentials that are wrong.
    #[error("{0} does not match")]
    Mismatch(&'static str),
}

/// Basic-auth credentials as configured (Alertmanager's `http_config.basic_auth`).
#[derive(Debug, Clone)]
pub struct BasicAuth {
    /// Not a secret: shown in `Debug`, compared in constant time all the same.
    pub username: String,
    pub password: Secret,
}

/// What the Alertmanager endpoint accepts: a bearer token, basic auth, or either of the two
/// (for example two Alertmanager clusters configured differently). With neither configured
/// the endpoint is open.
#[derive(Debug, Clone, Default)]
pub struct AlertmanagerAuth {
    /// Accepts `Authorization: Bearer <token>` (`http_config.authorization` or
    /// `bearer_token`).
    pub bearer_token: Option<Secret>,
    /// Accepts `Authorization: Basic <base64(user:password)>` (`http_config.basic_auth`).
    pub basic_auth: Option<BasicAuth>,
}

impl AlertmanagerAuth {
    /// Whether any credential is configured.
    pub fn is_enabled(&self) -> bool {
        self.bearer_token.is_some() || self.basic_auth.is_some()
    }
}

const AUTHORIZATION: &str = "authorization header";
const BEARER_TOKEN: &str = "bearer token";
const BASIC_CREDENTIALS: &str = "basic auth credentials";
const SIGNATURE: &str = "sentry-hook-signature header";
const TOKEN: &str = "token";

/// Standard base64, padding optional: Go pads, other clients may not.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Checks an Alertmanager request's `Authorization` header values (all of them, as bytes:
/// header values need not be UTF-8) against the configured credentials. More than one
/// `Authorization` header is refused rather than guessed at.
pub fn check_alertmanager<'a>(
    expected: &AlertmanagerAuth,
    authorization: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(), AuthError> {
    if !expected.is_enabled() {
        return Ok(());
    }
    let mut values = authorization.into_iter();
    let value = values.next().ok_or(AuthError::Missing(AUTHORIZATION))?;
    if values.next().is_some() {
        return Err(AuthError::Malformed {
            what: AUTHORIZATION,
            reason: "more than one header",
        });
    }
    let value = std::str::from_utf8(value).map_err(|_| AuthError::Malformed {
        what: AUTHORIZATION,
        reason: "not ascii text",
    })?;
    let value = value.trim();
    // RFC 9110: `scheme SP credentials`, scheme case-insensitive.
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    let credentials = credentials.trim_start();
    if scheme.eq_ignore_ascii_case("bearer") {
        let token = expected
            .bearer_token
            .as_ref()
            .ok_or(AuthError::UnsupportedScheme)?;
        if credentials.is_empty() {
            return Err(AuthError::Missing(BEARER_TOKEN));
        }
        if secret_eq(token.expose().as_bytes(), credentials.as_bytes()) {
            Ok(())
        } else {
            Err(AuthError::Mismatch(BEARER_TOKEN))
        }
    } else if scheme.eq_ignore_ascii_case("basic") {
        let basic = expected
            .basic_auth
            .as_ref()
            .ok_or(AuthError::UnsupportedScheme)?;
        check_basic(basic, credentials)
    } else {
        Err(AuthError::UnsupportedScheme)
    }
}

/// `base64(username ":" password)` against the configured pair, both compared in constant time
/// and combined without short-circuit, so timing says nothing about which part was wrong.
fn check_basic(expected: &BasicAuth, credentials: &str) -> Result<(), AuthError> {
    if credentials.is_empty() {
        return Err(AuthError::Missing(BASIC_CREDENTIALS));
    }
    let decoded = BASE64
        .decode(credentials)
        .map_err(|_| AuthError::Malformed {
            what: BASIC_CREDENTIALS,
            reason: "not base64",
        })?;
    // RFC 7617: the user-id cannot contain ':', the password can.
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or(AuthError::Malformed {
            what: BASIC_CREDENTIALS,
            reason: "no ':' between user name and password",
        })?;
    let (user, pass) = (&decoded[..colon], &decoded[colon + 1..]);
    let user_ok = digest(user).ct_eq(&digest(expected.username.as_bytes()));
    let pass_ok = digest(pass).ct_eq(&digest(expected.password.expose().as_bytes()));
    if bool::from(user_ok & pass_ok) {
        Ok(())
    } else {
        Err(AuthError::Mismatch(BASIC_CREDENTIALS))
    }
}

/// Verifies Sentry's `Sentry-Hook-Signature`: the lowercase hex HMAC-SHA256 of the raw body
/// bytes keyed with the integration's client secret. `body` must be the bytes as received
/// (never re-serialised JSON: any byte of difference fails); the comparison is `hmac`'s
/// constant-time `verify_slice`.
pub fn verify_sentry_signature(
    client_secret: &Secret,
    signature: Option<&[u8]>,
    body: &[u8],
) -> Result<(), AuthError> {
    let signature = signature.ok_or(AuthError::Missing(SIGNATURE))?;
    let signature = signature.trim_ascii();
    if signature.is_empty() {
        return Err(AuthError::Missing(SIGNATURE));
    }
    let tag = hex::decode(signature).map_err(|_| AuthError::Malformed {
        what: SIGNATURE,
        reason: "not hex",
    })?;
    if tag.len() != 32 {
        return Err(AuthError::Malformed {
            what: SIGNATURE,
            reason: "not 64 hex digits",
        });
    }
    // HMAC accepts keys of any length, so this cannot fail; mapped rather than unwrapped.
    let mut mac = Hmac::<Sha256>::new_from_slice(client_secret.expose().as_bytes())
        .map_err(|_| AuthError::Mismatch(SIGNATURE))?;
    mac.update(body);
    mac.verify_slice(&tag)
        .map_err(|_| AuthError::Mismatch(SIGNATURE))
}

/// Checks the legacy plugin's token from the request's raw query string (`token=...`,
/// percent-encoded like any query parameter). Exactly one `token` parameter is accepted.
pub fn check_token_query(expected: &Secret, query: Option<&str>) -> Result<(), AuthError> {
    let mut found: Option<Vec<u8>> = None;
    for pair in query.unwrap_or("").split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(name).as_deref() != Some(b"token".as_slice()) {
            continue;
        }
        if found.is_some() {
            return Err(AuthError::Malformed {
                what: TOKEN,
                reason: "more than one token parameter",
            });
        }
        found = Some(percent_decode(value).ok_or(AuthError::Malformed {
            what: TOKEN,
            reason: "bad percent-encoding",
        })?);
    }
    let provided = found.ok_or(AuthError::Missing(TOKEN))?;
    check_token(expected, &provided)
}

/// Checks an already extracted token in constant time.
pub fn check_token(expected: &Secret, provided: &[u8]) -> Result<(), AuthError> {
    if provided.is_empty() {
        return Err(AuthError::Missing(TOKEN));
    }
    if secret_eq(expected.expose().as_bytes(), provided) {
        Ok(())
    } else {
        Err(AuthError::Mismatch(TOKEN))
    }
}

/// Constant-time equality that also hides the expected length: `subtle`'s slice comparison
/// returns early on a length difference, so both sides are hashed to 32 bytes first.
fn secret_eq(expected: &[u8], provided: &[u8]) -> bool {
    bool::from(digest(expected).ct_eq(&digest(provided)))
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Decodes `application/x-www-form-urlencoded` text (`%XX` and `+` for space); `None` on a bad
/// escape.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex_val(*bytes.get(i + 1)?)?;
                let lo = hex_val(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn am(bearer: Option<&str>, basic: Option<(&str, &str)>) -> AlertmanagerAuth {
        AlertmanagerAuth {
            bearer_token: bearer.map(Secret::new),
            basic_auth: basic.map(|(u, p)| BasicAuth {
                username: u.into(),
                password: Secret::new(p),
            }),
        }
    }

    fn check(cfg: &AlertmanagerAuth, headers: &[&str]) -> Result<(), AuthError> {
        check_alertmanager(cfg, headers.iter().map(|h| h.as_bytes()))
    }

    #[test]
    fn bearer() {
        let cfg = am(Some("s3cret"), None);
        assert_eq!(check(&cfg, &["Bearer s3cret"]), Ok(()));
        assert_eq!(check(&cfg, &["bearer  s3cret "]), Ok(()));
        assert_eq!(
            check(&cfg, &["Bearer s3cre"]),
            Err(AuthError::Mismatch(BEARER_TOKEN))
        );
        assert_eq!(
            check(&cfg, &["Bearer"]),
            Err(AuthError::Missing(BEARER_TOKEN))
        );
        assert_eq!(check(&cfg, &[]), Err(AuthError::Missing(AUTHORIZATION)));
        assert_eq!(
            check(&cfg, &["Basic YW06aHVudGVyMg=="]),
            Err(AuthError::UnsupportedScheme)
        );
        assert_eq!(
            check(&cfg, &["Token s3cret"]),
            Err(AuthError::UnsupportedScheme)
        );
        assert!(matches!(
            check(&cfg, &["Bearer s3cret", "Bearer s3cret"]),
            Err(AuthError::Malformed { .. })
        ));
        assert!(matches!(
            check_alertmanager(&cfg, [b"Bearer \xff".as_slice()]),
            Err(AuthError::Malformed { .. })
        ));
    }

    #[test]
    fn basic() {
        let cfg = am(None, Some(("am", "hunter2")));
        assert_eq!(check(&cfg, &["Basic YW06aHVudGVyMg=="]), Ok(()));
        // Unpadded base64 of the same credentials.
        assert_eq!(check(&cfg, &["Basic YW06aHVudGVyMg"]), Ok(()));
        // am:hunter3, AM:hunter2
        assert_eq!(
            check(&cfg, &["Basic YW06aHVudGVyMw=="]),
            Err(AuthError::Mismatch(BASIC_CREDENTIALS))
        );
        assert_eq!(
            check(&cfg, &["Basic QU06aHVudGVyMg=="]),
            Err(AuthError::Mismatch(BASIC_CREDENTIALS))
        );
        assert!(matches!(
            check(&cfg, &["Basic !!!"]),
            Err(AuthError::Malformed { .. })
        ));
        // "amhunter2": no colon.
        assert!(matches!(
            check(&cfg, &["Basic YW1odW50ZXIy"]),
            Err(AuthError::Malformed { .. })
        ));
        assert_eq!(
            check(&cfg, &["Bearer x"]),
            Err(AuthError::UnsupportedScheme)
        );
    }

    #[test]
    fn either_method_when_both_configured_and_open_when_none() {
        let both = am(Some("s3cret"), Some(("am", "hunter2")));
        assert_eq!(check(&both, &["Bearer s3cret"]), Ok(()));
        assert_eq!(check(&both, &["Basic YW06aHVudGVyMg=="]), Ok(()));
        assert_eq!(check(&am(None, None), &[]), Ok(()));
    }

    #[test]
    fn sentry_signature() {
        let secret = Secret::new("k");
        let body = b"{\"a\":1}";
        let mut mac = match Hmac::<Sha256>::new_from_slice(b"k") {
            Ok(m) => m,
            Err(e) => panic!("hmac key: {e}"),
        };
        mac.update(body);
        let sig = hex::encode(mac.finalize().into_bytes());
        let verify =
            |s: Option<&str>, b: &[u8]| verify_sentry_signature(&secret, s.map(str::as_bytes), b);
        assert_eq!(verify(Some(&sig), body), Ok(()));
        assert_eq!(verify(Some(&sig.to_uppercase()), body), Ok(()));
        assert_eq!(
            verify(Some(&sig), b"{\"a\":2}"),
            Err(AuthError::Mismatch(SIGNATURE))
        );
        assert_eq!(verify(None, body), Err(AuthError::Missing(SIGNATURE)));
        assert_eq!(verify(Some(""), body), Err(AuthError::Missing(SIGNATURE)));
        assert!(matches!(
            verify(Some("zz"), body),
            Err(AuthError::Malformed { .. })
        ));
        assert!(matches!(
            verify(Some(&sig[..62]), body),
            Err(AuthError::Malformed { .. })
        ));
    }

    #[test]
    fn token_query() {
        let t = Secret::new("a b/c");
        assert_eq!(check_token_query(&t, Some("token=a+b%2Fc")), Ok(()));
        assert_eq!(check_token_query(&t, Some("x=1&token=a%20b/c&y")), Ok(()));
        assert_eq!(
            check_token_query(&t, Some("token=a+b")),
            Err(AuthError::Mismatch(TOKEN))
        );
        assert_eq!(check_token_query(&t, None), Err(AuthError::Missing(TOKEN)));
        assert_eq!(
            check_token_query(&t, Some("tok=1")),
            Err(AuthError::Missing(TOKEN))
        );
        assert_eq!(
            check_token_query(&t, Some("token=")),
            Err(AuthError::Missing(TOKEN))
        );
        assert!(matches!(
            check_token_query(&t, Some("token=%zz")),
            Err(AuthError::Malformed { .. })
        ));
        assert!(matches!(
            check_token_query(&t, Some("token=a&token=b")),
            Err(AuthError::Malformed { .. })
        ));
    }

    #[test]
    fn messages_never_echo_credentials() {
        let cfg = am(Some("s3cret"), None);
        for header in ["Bearer wrong-token", "Basic d3Jvbmc6dG9rZW4=", "Bearer"] {
            if let Err(e) = check(&cfg, &[header]) {
                let msg = e.to_string();
                assert!(!msg.contains("s3cret") && !msg.contains("wrong"), "{msg}");
                assert_eq!(msg, msg.to_lowercase());
            }
        }
    }
}
