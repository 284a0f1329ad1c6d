//! Inbound authentication against the shared fixtures: every signed Sentry payload verifies
//! with the test client secret and fails with a wrong secret or any single flipped body byte;
//! the Alertmanager captures' `Authorization` headers (bearer `s3cret`, basic `am`/`hunter2`)
//! verify; secrets never print.

mod inbound_fixtures;

use beacon_router::auth::{
    check_alertmanager, check_token_query, verify_sentry_signature, AlertmanagerAuth, AuthError,
    BasicAuth,
};
use beacon_router::secret::Secret;
use inbound_fixtures as fx;

const CLIENT_SECRET: &str = "beacon-test-client-secret";

/// The signed cases: every Sentry fixture but the legacy plugin, which cannot sign.
fn signed() -> impl Iterator<Item = (&'static str, fx::SentryCase)> {
    fx::SENTRY
        .iter()
        .filter(|n| **n != "legacy-plugin")
        .map(|n| (*n, fx::sentry(n)))
}

#[test]
fn every_sentry_fixture_signature_verifies() {
    let secret = Secret::new(CLIENT_SECRET);
    let mut count = 0;
    for (name, c) in signed() {
        let sig = c.header("Sentry-Hook-Signature").map(str::as_bytes);
        assert!(sig.is_some(), "{name} has a signature");
        assert_eq!(
            verify_sentry_signature(&secret, sig, &c.body),
            Ok(()),
            "{name}"
        );
        count += 1;
    }
    assert_eq!(count, fx::SENTRY.len() - 1);
}

#[test]
fn sentry_signature_fails_with_a_wrong_secret() {
    for wrong in [
        "beacon-test-client-secreT",
        "",
        "beacon-test-client-secret ",
    ] {
        let secret = Secret::new(wrong);
        for (name, c) in signed() {
            let sig = c.header("Sentry-Hook-Signature").map(str::as_bytes);
            assert_eq!(
                verify_sentry_signature(&secret, sig, &c.body),
                Err(AuthError::Mismatch("sentry-hook-signature header")),
                "{name} with {wrong:?}"
            );
        }
    }
}

#[test]
fn sentry_signature_fails_for_any_flipped_byte() {
    let secret = Secret::new(CLIENT_SECRET);
    for (name, c) in signed() {
        let sig = c.header("Sentry-Hook-Signature").map(str::as_bytes);
        for i in 0..c.body.len() {
            let mut body = c.body.clone();
            body[i] ^= 0x01;
            assert!(
                verify_sentry_signature(&secret, sig, &body).is_err(),
                "{name}: byte {i} flipped still verifies"
            );
        }
        // Re-serialising the JSON (even to equal JSON) breaks the signature: the raw bytes are
        // what is signed.
        let v: serde_json::Value = serde_json::from_slice(&c.body).expect("json");
        let pretty = serde_json::to_vec_pretty(&v).expect("json");
        assert!(
            verify_sentry_signature(&secret, sig, &pretty).is_err(),
            "{name}"
        );
    }
}

#[test]
fn sentry_signature_header_problems() {
    let secret = Secret::new(CLIENT_SECRET);
    let c = fx::sentry("issue-created");
    assert_eq!(
        verify_sentry_signature(&secret, None, &c.body),
        Err(AuthError::Missing("sentry-hook-signature header"))
    );
    // The legacy plugin payload has no signature at all.
    let legacy = fx::sentry("legacy-plugin");
    assert_eq!(legacy.header("Sentry-Hook-Signature"), None);
    let e = verify_sentry_signature(&secret, Some(b"not-hex"), &c.body);
    assert_eq!(
        e.map_err(|e| e.to_string()),
        Err("malformed sentry-hook-signature header: not hex".to_owned())
    );
}

fn alertmanager_auth() -> AlertmanagerAuth {
    AlertmanagerAuth {
        bearer_token: Some(Secret::new("s3cret")),
        basic_auth: Some(BasicAuth {
            username: "am".into(),
            password: Secret::new("hunter2"),
        }),
    }
}

#[test]
fn alertmanager_fixture_credentials_verify() {
    let cfg = alertmanager_auth();
    let bearer_only = AlertmanagerAuth {
        basic_auth: None,
        ..cfg.clone()
    };
    let basic_only = AlertmanagerAuth {
        bearer_token: None,
        ..cfg.clone()
    };
    for name in fx::ALERTMANAGER {
        let c = fx::alertmanager(name);
        let auth = c
            .header("Authorization")
            .expect("fixture has Authorization");
        let values = [auth.as_bytes()];
        assert_eq!(check_alertmanager(&cfg, values), Ok(()), "{name}");
        let (right, wrong) = if auth.starts_with("Bearer ") {
            (&bearer_only, &basic_only)
        } else {
            assert!(auth.starts_with("Basic "), "{name}: {auth}");
            (&basic_only, &bearer_only)
        };
        assert_eq!(check_alertmanager(right, values), Ok(()), "{name}");
        assert_eq!(
            check_alertmanager(wrong, values),
            Err(AuthError::UnsupportedScheme),
            "{name}"
        );
    }
    let wrong_token = AlertmanagerAuth {
        bearer_token: Some(Secret::new("s3cret2")),
        basic_auth: None,
    };
    let c = fx::alertmanager("firing-3-alerts");
    let auth = c.header("Authorization").expect("Authorization");
    assert_eq!(
        check_alertmanager(&wrong_token, [auth.as_bytes()]),
        Err(AuthError::Mismatch("bearer token"))
    );
    let wrong_password = AlertmanagerAuth {
        bearer_token: None,
        basic_auth: Some(BasicAuth {
            username: "am".into(),
            password: Secret::new("hunter3"),
        }),
    };
    let c = fx::alertmanager("storage-firing-truncated");
    let auth = c.header("Authorization").expect("Authorization");
    assert_eq!(
        check_alertmanager(&wrong_password, [auth.as_bytes()]),
        Err(AuthError::Mismatch("basic auth credentials"))
    );
    assert_eq!(
        check_alertmanager(&cfg, std::iter::empty()),
        Err(AuthError::Missing("authorization header"))
    );
}

#[test]
fn legacy_token_in_the_query() {
    let token = Secret::new("legacy-t0ken");
    assert_eq!(
        check_token_query(&token, Some("token=legacy-t0ken")),
        Ok(())
    );
    assert_eq!(
        check_token_query(&token, Some("token=legacy-t0ke")),
        Err(AuthError::Mismatch("token"))
    );
    assert_eq!(
        check_token_query(&token, None),
        Err(AuthError::Missing("token"))
    );
}

#[test]
fn secrets_never_print() {
    let cfg = alertmanager_auth();
    let debug = format!("{cfg:?} {:#?}", Secret::new(CLIENT_SECRET));
    for value in ["s3cret", "hunter2", CLIENT_SECRET] {
        assert!(!debug.contains(value), "{value} in {debug}");
    }
    assert!(debug.contains("<redacted>"));
    // The username is configuration, not a secret.
    assert!(debug.contains("\"am\""));
    assert_eq!(Secret::new("x").to_string(), "<redacted>");
}
