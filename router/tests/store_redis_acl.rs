//! The store conformance suite on Redis as the README's minimal ACL user (`username` beside
//! `password_file`): every store operation needs no more than the permissions the README
//! grants, and a wrong password fails at open without showing the password.

#[macro_use]
mod store_suite;
mod support;

use beacon_router::secret::Secret;
use beacon_router::store::{RedisConfig, RedisStore, Store};
use store_suite::StoreFactory;
use support::redis::Redis;

const USER: &str = "beacon-router";
const PASSWORD: &str = "acl-test-5e1f0c";

/// The README's ACL, verbatim but for the password (kept in step by `readme_acl`).
fn readme_acl() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let start = readme
        .find("ACL SETUSER beacon-router")
        .expect("the ACL in the README");
    let text = &readme[start..];
    let end = text.find("```").expect("end of the ACL block");
    text[..end]
        .replace("\\\n", " ")
        .split_whitespace()
        .skip(1)
        .map(|w| w.replace(">PASSWORD", &format!(">{PASSWORD}")))
        .collect()
}

fn store_as(redis: &Redis, password: &str) -> Result<RedisStore, beacon_router::store::StoreError> {
    let mut cfg = RedisConfig::new(redis.url());
    cfg.username = Some(USER.to_string());
    cfg.password = Some(Secret::new(password));
    // The suite's `reopen` waits this out so the new consumer takes over the old one's leases.
    cfg.idle_timeout = std::time::Duration::from_millis(200);
    RedisStore::open(cfg)
}

/// One redis-server per test with the README's user; stores log in as that user.
struct AclFactory {
    redis: Redis,
}

impl AclFactory {
    fn new() -> Self {
        let redis = Redis::new();
        let acl = readme_acl();
        let mut args: Vec<&str> = vec!["ACL"];
        args.extend(acl.iter().map(String::as_str));
        let ok: String = redis.cmd(&args).expect("ACL SETUSER");
        assert_eq!(ok, "OK");
        AclFactory { redis }
    }
}

impl StoreFactory for AclFactory {
    fn fresh(&self) -> Box<dyn Store> {
        Box::new(store_as(&self.redis, PASSWORD).expect("open as the ACL user"))
    }

    fn reopen(&self, store: Box<dyn Store>) -> Box<dyn Store> {
        drop(store);
        std::thread::sleep(std::time::Duration::from_millis(250));
        self.fresh()
    }
}

store_suite_tests!(AclFactory::new());

#[test]
fn a_wrong_password_fails_at_open_without_showing_it() {
    let f = AclFactory::new();
    let err = store_as(&f.redis, "not-the-password-77").expect_err("wrong password");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("not-the-password-77"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}
