//! `RedisStore`: the `Store` trait on Redis, so several router replicas share one queue, one set
//! of dedup claims, thread state and token buckets (issue 6).
//!
//! # Layout (every key starts with the configured prefix `P`, `beacon:` by default)
//! - `P next_id`: the id counter (`INCRBY`), never reset, so ids are monotonic across replicas
//!   and never reused.
//! - `P d:<id>`: one hash per delivery: `dest`, `group` (JSON), `gk` (the group key), `enq`,
//!   `att`, `nb` (ms), `err`, and `st`: a queued delivery has its stream `entry` id and is `q`
//!   (not yet read, or leased), `r` (waiting for its retry at `nb`) or `w` (read, but waiting
//!   behind an earlier delivery of its group); `x` is a dead letter (with `reason` and `at`).
//! - `P q:<dest>`: the destination's stream, consumer group `router`; an entry carries only the
//!   delivery id. Each `RedisStore` is one consumer (`RedisConfig::consumer`).
//! - `P ids:<dest>`: every queued id of the destination (read or not, leased or waiting),
//!   scored by id: `depth` and the oldest `enqueued_at` come from it. `P dests`: destinations
//!   with any.
//! - `P dead`: dead-letter ids (sorted set scored by id).
//! - `P dedup:<key>`: a dedup claim; the value is its expiry in the caller's clock (ms), so
//!   expiry follows the `now` the router passes (like the embedded store), and Redis drops the
//!   key itself after the ttl (`PX`) so claims never pile up.
//! - `P thread:<dest>`: hash of thread state by group key. `P pace:<key>`: a token bucket.
//!
//! # Queue semantics
//! Every write is one Lua script, which Redis runs atomically and writes to its AOF as one
//! `MULTI`/`EXEC` block, so a crash keeps all of it or none. Scripts read and check everything
//! before their first write (Redis does not roll a failing script back). `enqueue` returns after
//! Redis answered, which with `appendfsync always` is after the fsync: deployments that need
//! "acknowledged means durable" must configure Redis that way (the tests do).
//!
//! An entry stays in the stream from enqueue until `ack` or `dead_letter` (`XACK` + `XDEL`);
//! `retry` does not move it: it stays pending (in the group's PEL) in state `r`. Entries are
//! read (`XREADGROUP`) in stream order and removed only by `XACK` + `XDEL` together, so every
//! pending entry is older than every unread one, and stream order is id order (ids and stream
//! entries are made by one script).
//!
//! `lease` (one script) first walks the PEL in order (`XPENDING`, with `XRANGE` of the same
//! span for the delivery ids) and then reads new entries, offering each group's first queued
//! delivery only. A pending entry is claimable (`XCLAIM` to this consumer) if it is `q` and idle
//! longer than `idle_timeout` (on another consumer: a replica that died holding it; on this
//! one: a lease whose outcome could not be recorded, e.g. Redis went away between send and ack:
//! offered again rather than stuck), `r` with `nb <= now`, or `w`. An entry that is not
//! claimable (in flight on a live consumer, or a retry not due) blocks its group: later entries
//! of that group are passed over, and a new entry read for a blocked group is left pending in
//! state `w`, claimable by any replica once its group is unblocked. So within a destination a
//! group's deliveries go out one at a time in id order, across retries and takeovers, while
//! other groups pass. The idle timeout must exceed the longest time a replica holds a lease
//! (token wait plus send timeout), or a live replica's in-flight message is delivered a second
//! time by another one.
//!
//! Cost: one `lease` looks at most at `PEL_SCAN` pending entries (pages of `PEL_PAGE`, one
//! `XPENDING` and one `XRANGE` each) and reads at most `READ_CAP` new ones, one `HMGET` each.
//! New entries are read only when the whole PEL was walked (otherwise a new entry could pass an
//! unseen earlier one of its group): with more than `PEL_SCAN` deliveries in flight, retrying or
//! waiting behind their groups, newer deliveries wait until the PEL shrinks. Consumers holding
//! nothing and idle past the timeout (replicas gone) are deleted from the group by `lease`, so
//! restarts do not pile them up.
//!
//! # Pacing
//! `take_token`/`pause` run `crate::pace::Pacer`'s algorithm in Lua over `pace:<key>` with the
//! caller's `now` (µs), so all replicas share one bucket per destination.
//!
//! # Replicated acknowledgement
//! Redis replicates asynchronously: a primary that dies right after answering takes the write
//! with it, and Sentinel (or a managed service) promotes a replica that never saw it. So every
//! write that must survive a failover (enqueue with its dedup claims, `claim_dedup`,
//! `set_thread`, `ack`/`ack_many`, `dead_letter`, `replay`) is followed, on the same
//! connection, by `WAIT n timeout`: the call returns only once `n` replicas confirmed it, and
//! otherwise fails with `StoreError::NotReplicated` (the intake answers 503, Alertmanager
//! retries; an unconfirmed ack means at worst one repeated send, and `lease` waits too, so
//! nothing more is sent while acks cannot be confirmed). `n` is
//! `RedisConfig::replicas`: a fixed number, or `Auto`: one whenever the primary reports a
//! connected replica (`INFO replication`, read on every connect and again when a `WAIT` falls
//! short), none on a lone primary. Retries and pacing are not waited for: losing one in a
//! failover only hastens a send.
//!
//! # Connections and failover
//! A small pool of synchronous connections (the trait is sync and runs on the blocking pool),
//! each with connect, read and write timeouts. The primary is found anew on every connect:
//! through the Sentinels (`redis+sentinel://`, the redis crate's `Sentinel`), or by resolving
//! the URL's host again (a managed primary endpoint whose DNS moves on failover). A server
//! that says it is a replica (`INFO replication` at connect, or a `READONLY` answer later: a
//! demoted primary) is not the primary: the connection is dropped and the next one looks
//! again. An I/O error drops every pooled connection; the failing call returns
//! `StoreError::Backend` naming the address (never the password) and the operation, and later
//! calls reconnect, spaced by an exponential backoff. A call that certainly did not happen
//! (`READONLY`) or only reads is retried once on a fresh connection; a write cut off by an I/O
//! error is not (it may have happened): its caller decides (503 for the intake, a later step
//! for delivery).
//!
//! # Cluster mode
//! With `RedisConfig::cluster` the prefix carries a hash tag (`beacon:` becomes `{beacon}:`,
//! see [`cluster_prefix`]), so every key of one deployment hashes to one slot and every script
//! touches that slot only, as Redis Cluster requires. Each script declares one key of the slot
//! (`KEYS[1]`, the id counter), so a node that does not serve the slot answers `MOVED` instead
//! of running it: the store remembers the node it names and repeats the call there (`ASK`: once,
//! after `ASKING`; `TRYAGAIN`/`CLUSTERDOWN`: a moment later). A lost connection sends it back to
//! the URL's node, which redirects again. One slot means one primary: a cluster adds no
//! throughput to one router deployment, only lets it share a cluster with other users.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{
    Connection, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, RedisError,
    RedisResult, Script, TlsMode,
};

use super::{from_millis, to_millis, DeadLetter, Delivery, NewDelivery, Store, StoreError};
use crate::config::Rate;
use crate::model;
use crate::secret::Secret;

/// Default key prefix.
pub const DEFAULT_PREFIX: &str = "beacon:";
/// Default idle time after which another replica's pending deliveries are claimed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default connect, read and write timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time replicas get to confirm a write (`WAIT`).
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connections kept open for reuse.
const POOL_SIZE: usize = 8;
/// First and largest wait between reconnect attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Longest dedup claim: a longer ttl would make Redis reject the `PX` in the middle of a script
/// that already wrote (Redis does not roll scripts back), so it is clamped before the call.
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 86_400);
/// Largest lease batch: Lua passes numbers as doubles, and no caller needs more at once.
const MAX_LEASE: usize = 100_000;
/// Most pending entries one `lease` looks at: bounds its work when many deliveries are in
/// flight, retrying or waiting behind their groups.
const PEL_SCAN: usize = 1_000;
/// Pending entries per `XPENDING` page.
const PEL_PAGE: usize = 100;
/// Most new entries one `lease` reads; those of blocked groups stay pending (state `w`), so
/// this also bounds how fast waiting entries can fill the PEL.
const READ_CAP: usize = 1_000;

/// How to reach Redis and how this store appears there.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://host:port/db` or `rediss://host:port/db` (TLS), or Sentinels and the master
    /// name: `redis+sentinel://host:port[,host:port...]/master[/db]` (`rediss+sentinel://`:
    /// TLS to Sentinels and primary). A password in the URL works, but `password` (read from a
    /// file) is the way to keep it out of the config.
    pub url: String,
    /// `AUTH` password; overrides one in the URL.
    pub password: Option<Secret>,
    /// Prefix of every key, so several routers can share one Redis.
    pub prefix: String,
    /// This replica's consumer name in the stream groups; unique per process.
    pub consumer: String,
    /// Deliveries pending on another consumer for this long are taken over by `lease`.
    pub idle_timeout: Duration,
    /// Connect, read and write timeout of every call.
    pub timeout: Duration,
    /// ACL user (`AUTH username password`); overrides one in the URL.
    pub username: Option<String>,
    /// Replicas that must confirm a write before it counts as stored.
    pub replicas: Replicas,
    /// How long they get (`WAIT`'s timeout); must be more than zero (`WAIT` with 0 blocks).
    pub wait_timeout: Duration,
    /// Sentinel's own `requirepass` (Sentinels ask their own password, not the primary's).
    pub sentinel_password: Option<Secret>,
    /// Redis Cluster: `url` is any node; every key gets the hash tag of [`cluster_prefix`], so
    /// all of them live in one slot, and `MOVED`/`ASK` redirects are followed.
    pub cluster: bool,
}

/// The key prefix used in cluster mode: `prefix` itself if it already holds a hash tag
/// (`{...}`), else `{prefix}:` without its trailing `:` (`beacon:` becomes `{beacon}:`), so that
/// every key of one deployment hashes to one slot and each Lua script touches one slot only.
pub fn cluster_prefix(prefix: &str) -> String {
    let tagged = prefix
        .find('{')
        .is_some_and(|open| prefix[open + 1..].find('}').is_some_and(|len| len > 0));
    if tagged {
        prefix.to_string()
    } else {
        format!("{{{}}}:", prefix.trim_end_matches(':'))
    }
}

/// How many replicas must confirm a write (`WAIT`) before the store reports it done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicas {
    /// One while the primary reports a connected replica, none on a lone primary.
    Auto,
    /// Exactly this many; 0 never waits, more than the replicas there are fails every write.
    AtLeast(u32),
}

impl RedisConfig {
    /// `url` with the defaults: prefix `beacon:`, a fresh consumer name, idle timeout 60 s,
    /// timeout 2 s, no separate user or password, replicated acknowledgement `Auto` with 1 s.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            password: None,
            prefix: DEFAULT_PREFIX.to_string(),
            consumer: consumer_name(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            username: None,
            replicas: Replicas::Auto,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            sentinel_password: None,
            cluster: false,
        }
    }
}

/// A consumer name unique to this process: host name, pid and a random suffix (a restarted
/// pod keeps its host name and may get the same pid).
pub fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "router".to_string());
    // RandomState is seeded from the OS's randomness: enough for a unique suffix.
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{host}-{}-{:08x}", std::process::id(), h.finish() as u32)
}

/// Connection pool and reconnect backoff.
#[derive(Default)]
struct Pool {
    idle: Vec<Connection>,
    /// No connect attempt before this instant (after a failed one).
    retry_at: Option<Instant>,
    backoff: Duration,
    last_error: String,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `redis::Connection` has no `Debug`; its count is what matters.
        f.debug_struct("Pool")
            .field("idle", &self.idle.len())
            .field("retry_at", &self.retry_at)
            .field("backoff", &self.backoff)
            .field("last_error", &self.last_error)
            .finish()
    }
}

/// The Redis-backed store. Cheap to share: one per process, used from many threads.
pub struct RedisStore {
    target: Target,
    /// `redis://host:port/db`, without credentials: the name in every error.
    location: String,
    prefix: String,
    consumer: String,
    idle_ms: u64,
    timeout: Duration,
    pool: Mutex<Pool>,
    replicas: Replicas,
    wait_ms: u64,
    /// Connected replicas the primary reported when last asked (for `Replicas::Auto`).
    seen_replicas: AtomicU32,
    /// Writes not confirmed by enough replicas in time (each failed its caller).
    unreplicated: AtomicU64,
    /// A key of the deployment's slot, declared by every script so a cluster node that does
    /// not serve the slot answers `MOVED` instead of running it.
    slot_key: String,
    /// Cluster mode: the URL's node with its credentials and TLS, to build redirected ones.
    seed: Option<ConnectionInfo>,
    /// Cluster mode: the node that serves the slot (from the last `MOVED`).
    redirect: Mutex<Option<(String, u16)>>,
}

/// Where the primary is.
enum Target {
    /// One address, resolved again on every connect (a managed primary endpoint).
    Direct(redis::Client),
    /// Asked of the Sentinels on every connect.
    Sentinel {
        sentinel: Mutex<Sentinel>,
        master: String,
        node: SentinelNodeConnectionInfo,
    },
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the client: its connection info holds the password.
        f.debug_struct("RedisStore")
            .field("location", &self.location)
            .field("prefix", &self.prefix)
            .field("consumer", &self.consumer)
            .field("idle_ms", &self.idle_ms)
            .finish()
    }
}

/// Lua shared by every script: key names, the stream entry of a delivery and the queue index.
/// `ARGV[1]` is always the key prefix.
const LUA_COMMON: &str = r#"
local P = ARGV[1]
local G = 'router'
local function stream(d) return P .. 'q:' .. d end
local function ids(d) return P .. 'ids:' .. d end
local function rec(id) return P .. 'd:' .. id end
local function push(d, id)
  if redis.call('EXISTS', stream(d)) == 0 then
    redis.call('XGROUP', 'CREATE', stream(d), G, '0', 'MKSTREAM')
  end
  local e = redis.call('XADD', stream(d), '*', 'id', id)
  redis.call('HSET', rec(id), 'st', 'q', 'entry', e)
end
local function queued(st) return st == 'q' or st == 'r' or st == 'w' end
local function unlink(d, e)
  redis.call('XACK', stream(d), G, e)
  redis.call('XDEL', stream(d), e)
end
local function forget(d, id)
  redis.call('ZREM', ids(d), id)
  if redis.call('ZCARD', ids(d)) == 0 then redis.call('SREM', P .. 'dests', d) end
end
"#;

/// ARGV: prefix, now ms, item count, then per item: destination, group JSON, has dedup
/// (`1`/`0`), dedup key, ttl ms, group key. Returns one id per item, 0 for a duplicate.
const LUA_ENQUEUE: &str = r#"
local now = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local fresh, claimed, kept = {}, {}, 0
for i = 0, n - 1 do
  local b = 4 + i * 6
  local ok = true
  if ARGV[b + 2] == '1' then
    local k = P .. 'dedup:' .. ARGV[b + 3]
    if claimed[k] then
      ok = false
    else
      local v = tonumber(redis.call('GET', k) or '')
      if v and v > now then ok = false end
    end
    if ok then claimed[k] = true end
  end
  fresh[i + 1] = ok
  if ok then kept = kept + 1 end
end
local out = {}
if kept == 0 then
  for i = 1, n do out[i] = 0 end
  return out
end
local next_id = redis.call('INCRBY', P .. 'next_id', kept) - kept + 1
for i = 0, n - 1 do
  local b = 4 + i * 6
  if fresh[i + 1] then
    local id = string.format('%d', next_id)
    next_id = next_id + 1
    if ARGV[b + 2] == '1' then
      local ttl = tonumber(ARGV[b + 4])
      redis.call('SET', P .. 'dedup:' .. ARGV[b + 3], string.format('%d', now + ttl),
        'PX', math.max(ttl, 1))
    end
    local d = ARGV[b]
    redis.call('HSET', rec(id), 'dest', d, 'group', ARGV[b + 1], 'gk', ARGV[b + 5], 'enq',
      ARGV[2], 'att', '0', 'nb', ARGV[2])
    push(d, id)
    redis.call('ZADD', ids(d), id, id)
    redis.call('SADD', P .. 'dests', d)
    out[i + 1] = tonumber(id)
  else
    out[i + 1] = 0
  end
end
return out
"#;

/// ARGV: prefix, consumer, destination, now ms, max, idle ms, PEL scan cap, PEL page, read
/// cap. Returns `{id, group, enq, att, nb, err}` per leased delivery.
const LUA_LEASE: &str = r#"
local me, d = ARGV[2], ARGV[3]
local now, max, idle = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local scan_cap, page, read_cap = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
if max <= 0 or redis.call('EXISTS', stream(d)) == 0 then return {} end
local s = stream(d)
-- Group keys with an earlier queued delivery seen by this call; leased ids.
local blocked, got = {}, {}
-- Entry `e` of delivery `id`, pending for `pidle` ms, or just read by this call (`pidle` nil).
local function offer(e, id, pidle)
  local f = redis.call('HMGET', rec(id), 'st', 'entry', 'gk', 'nb')
  if not queued(f[1]) or f[2] ~= e then
    -- An entry whose delivery moved on: drop it.
    unlink(d, e)
    return
  end
  -- Deliveries enqueued before group keys were stored count as groups of their own.
  local gk = f[3] or ('\0id:' .. id)
  if blocked[gk] then
    if pidle == nil and f[1] == 'q' then redis.call('HSET', rec(id), 'st', 'w') end
    return
  end
  blocked[gk] = true
  local ready
  if f[1] == 'q' then
    ready = pidle == nil or pidle >= idle
  elseif f[1] == 'r' then
    ready = (tonumber(f[4]) or 0) <= now
  else
    ready = true
  end
  if not ready then return end
  if pidle ~= nil then redis.call('XCLAIM', s, G, me, 0, e) end
  if f[1] ~= 'q' then redis.call('HSET', rec(id), 'st', 'q') end
  got[#got + 1] = id
end
-- The PEL, oldest first.
local scanned, start, complete = 0, '-', false
while #got < max and scanned < scan_cap do
  local pend = redis.call('XPENDING', s, G, start, '+', math.min(page, scan_cap - scanned))
  if #pend == 0 then
    complete = true
    break
  end
  local id_of = {}
  for _, x in ipairs(redis.call('XRANGE', s, pend[1][1], pend[#pend][1], 'COUNT', #pend)) do
    id_of[x[1]] = x[2][2]
  end
  for _, p in ipairs(pend) do
    if #got >= max then break end
    scanned = scanned + 1
    local id = id_of[p[1]]
    if not id then
      local x = redis.call('XRANGE', s, p[1], p[1])
      if #x > 0 then id = x[1][2][2] end
    end
    if id then
      offer(p[1], id, tonumber(p[3]))
    else
      -- Pending but gone from the stream: nothing to deliver.
      redis.call('XACK', s, G, p[1])
    end
  end
  start = '(' .. pend[#pend][1]
end
if #got < max and not complete then
  -- The cap was reached: complete only if nothing is left after it.
  complete = #redis.call('XPENDING', s, G, start, '+', 1) == 0
end
-- New entries, only after the whole PEL: they are all later than every pending one.
if complete then
  local read = 0
  while #got < max and read < read_cap do
    local r = redis.call('XREADGROUP', 'GROUP', G, me, 'COUNT',
      math.min(max - #got, read_cap - read), 'STREAMS', s, '>')
    if not r or #r[1][2] == 0 then break end
    for _, x in ipairs(r[1][2]) do
      read = read + 1
      offer(x[1], x[2][2], nil)
    end
  end
end
-- Forget consumers (replicas gone long ago) that hold nothing: every restart adds one.
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', s, G)) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['name'] ~= me and info['pending'] == 0 and info['idle'] > idle then
    redis.call('XGROUP', 'DELCONSUMER', s, G, info['name'])
  end
end
local out = {}
for _, id in ipairs(got) do
  local f = redis.call('HMGET', rec(id), 'group', 'enq', 'att', 'nb', 'err')
  out[#out + 1] = {id, f[1], f[2], f[3], f[4], f[5]}
end
return out
"#;

/// ARGV: prefix, id. Returns 1, or 0 if no such queued delivery.
const LUA_ACK: &str = r#"
local id = ARGV[2]
local f = redis.call('HMGET', rec(id), 'st', 'dest', 'entry')
if not queued(f[1]) then return 0 end
unlink(f[2], f[3])
redis.call('DEL', rec(id))
forget(f[2], id)
return 1
"#;

/// ARGV: prefix, id, not_before ms, error. Returns 1, or 0 if no such queued delivery. The
/// entry keeps its place (pending, or not yet read): `lease` offers it again once due.
const LUA_RETRY: &str = r#"
local id = ARGV[2]
local st = redis.call('HGET', rec(id), 'st')
if not queued(st) then return 0 end
redis.call('HINCRBY', rec(id), 'att', 1)
redis.call('HSET', rec(id), 'st', 'r', 'nb', ARGV[3], 'err', ARGV[4])
return 1
"#;

/// ARGV: prefix, id, reason, at ms, attempted (`1` counts the attempt that just failed).
/// Returns 1, or 0 if no such queued delivery.
const LUA_DEAD_LETTER: &str = r#"
local id = ARGV[2]
local f = redis.call('HMGET', rec(id), 'st', 'dest', 'entry')
if not queued(f[1]) then return 0 end
if ARGV[5] == '1' then redis.call('HINCRBY', rec(id), 'att', 1) end
unlink(f[2], f[3])
forget(f[2], id)
redis.call('HSET', rec(id), 'st', 'x', 'reason', ARGV[3], 'at', ARGV[4])
redis.call('HDEL', rec(id), 'entry')
redis.call('ZADD', P .. 'dead', id, id)
return 1
"#;

/// ARGV: prefix. Returns `{id, dest, group, enq, att, nb, err, reason, at}` per dead letter,
/// by id.
const LUA_DEAD_LETTERS: &str = r#"
local out = {}
for _, id in ipairs(redis.call('ZRANGE', P .. 'dead', 0, -1)) do
  local f = redis.call('HMGET', rec(id), 'dest', 'group', 'enq', 'att', 'nb', 'err', 'reason', 'at')
  out[#out + 1] = {id, f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8]}
end
return out
"#;

/// ARGV: prefix, id, now ms. Returns the new id, or 0 if no such dead letter.
const LUA_REPLAY: &str = r#"
local id = ARGV[2]
local f = redis.call('HMGET', rec(id), 'st', 'dest', 'group', 'gk')
if f[1] ~= 'x' then return 0 end
local new = string.format('%d', redis.call('INCR', P .. 'next_id'))
redis.call('HSET', rec(new), 'dest', f[2], 'group', f[3], 'enq', ARGV[3], 'att', '0',
  'nb', ARGV[3])
if f[4] then redis.call('HSET', rec(new), 'gk', f[4]) end
push(f[2], new)
redis.call('ZADD', ids(f[2]), new, new)
redis.call('SADD', P .. 'dests', f[2])
redis.call('DEL', rec(id))
redis.call('ZREM', P .. 'dead', id)
return tonumber(new)
"#;

/// ARGV: prefix, destination. Returns `{count, enqueued_at of the lowest id}`.
const LUA_DEPTH: &str = r#"
local d = ARGV[2]
local n = redis.call('ZCARD', ids(d))
if n == 0 then return {0, false} end
local first = redis.call('ZRANGE', ids(d), 0, 0)
return {n, redis.call('HGET', rec(first[1]), 'enq')}
"#;

/// ARGV: prefix, key, now ms, ttl ms. Returns 1 if claimed, 0 if a live claim exists.
const LUA_CLAIM: &str = r#"
local k = P .. 'dedup:' .. ARGV[2]
local now, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local v = tonumber(redis.call('GET', k) or '')
if v and v > now then return 0 end
redis.call('SET', k, string.format('%d', now + ttl), 'PX', math.max(ttl, 1))
return 1
"#;

/// ARGV: prefix, key, per_second, burst, now µs. Returns the wait in seconds (a string, as Lua
/// numbers would be truncated to integers). `crate::pace::Pacer::try_take`, step for step.
const LUA_TAKE_TOKEN: &str = r#"
local k = P .. 'pace:' .. ARGV[2]
local ps, burst, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local b = redis.call('HMGET', k, 'tokens', 'last', 'paused')
local tokens, last = tonumber(b[1] or ''), tonumber(b[2] or '')
local paused = tonumber(b[3] or '')
if not tokens or not last then
  tokens, last, paused = 1, now, nil
end
if paused then
  if paused > now then return string.format('%.17g', (paused - now) / 1e6) end
  redis.call('HDEL', k, 'paused')
  tokens = math.min(tokens, 1)
  last = paused
end
local elapsed = math.max(now - last, 0) / 1e6
tokens = math.min(tokens + elapsed * ps, burst)
last = now
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.min((1 - tokens) / ps, 3600)
end
redis.call('HSET', k, 'tokens', string.format('%.17g', tokens), 'last', string.format('%d', last))
redis.call('PEXPIRE', k, 604800000)
return string.format('%.17g', wait)
"#;

/// ARGV: prefix, key, until µs. `crate::pace::Pacer::pause`.
const LUA_PAUSE: &str = r#"
local k = P .. 'pace:' .. ARGV[2]
local until_us = tonumber(ARGV[3])
local b = redis.call('HMGET', k, 'tokens', 'last', 'paused')
local last = tonumber(b[2] or '') or until_us
local paused = tonumber(b[3] or '')
if paused then paused = math.max(paused, until_us) else paused = until_us end
redis.call('HSET', k, 'tokens', '0', 'last', string.format('%d', last), 'paused',
  string.format('%d', paused))
redis.call('PEXPIRE', k, 604800000)
return 1
"#;

/// The compiled scripts (each `LUA_COMMON` followed by its body).
#[derive(Debug)]
struct Scripts {
    enqueue: Script,
    lease: Script,
    ack: Script,
    retry: Script,
    dead_letter: Script,
    dead_letters: Script,
    replay: Script,
    depth: Script,
    claim: Script,
    take_token: Script,
    pause: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| {
        let s = |body: &str| Script::new(&format!("{LUA_COMMON}{body}"));
        Scripts {
            enqueue: s(LUA_ENQUEUE),
            lease: s(LUA_LEASE),
            ack: s(LUA_ACK),
            retry: s(LUA_RETRY),
            dead_letter: s(LUA_DEAD_LETTER),
            dead_letters: s(LUA_DEAD_LETTERS),
            replay: s(LUA_REPLAY),
            depth: s(LUA_DEPTH),
            claim: s(LUA_CLAIM),
            take_token: s(LUA_TAKE_TOKEN),
            pause: s(LUA_PAUSE),
        }
    })
}

/// A leased delivery as the lease script returns it.
type LeaseRow = (u64, String, u64, u32, u64, Option<String>);
/// A dead letter as the dead-letters script returns it.
type DeadRow = (
    u64,
    String,
    String,
    u64,
    u32,
    u64,
    Option<String>,
    String,
    u64,
);

/// `url` without credentials, for messages: scheme, host, port and database only.
fn describe(info: &redis::ConnectionInfo) -> String {
    let db = info.redis_settings().db();
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}/{db}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}/{db}"),
        ConnectionAddr::Unix(path) => format!("redis+unix://{}", path.display()),
        // The enum is non-exhaustive; later variants still get a credential-free name.
        #[allow(unreachable_patterns)]
        _ => "redis".to_string(),
    }
}

/// Most cluster redirects one call follows.
const MAX_REDIRECTS: u32 = 5;

/// A cluster's answer that the command belongs elsewhere (or later).
#[derive(Debug, PartialEq)]
enum Redirect {
    Moved,
    Ask,
    TryAgain,
}

/// `MOVED slot host:port`, `ASK slot host:port`, or `TRYAGAIN`/`CLUSTERDOWN` (then the
/// address is empty).
fn redirect_of(e: &RedisError) -> Option<(Redirect, String, u16)> {
    let kind = match e.code()? {
        "MOVED" => Redirect::Moved,
        "ASK" => Redirect::Ask,
        "TRYAGAIN" | "CLUSTERDOWN" => return Some((Redirect::TryAgain, String::new(), 0)),
        _ => return None,
    };
    // The detail is `<slot> <host>:<port>`.
    let addr = e.detail()?.split_whitespace().nth(1)?;
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((kind, host.to_string(), port.parse().ok()?))
}

/// A client for cluster node `host:port` with `seed`'s credentials, database and TLS.
fn node_client(seed: &ConnectionInfo, host: String, port: u16) -> RedisResult<redis::Client> {
    let addr = match seed.addr() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host,
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(host, port),
    };
    redis::Client::open(seed.clone().set_addr(addr))
}

/// Operations that only read: repeated once after a lost connection.
const READ_ONLY_OPS: &[&str] = &[
    "open",
    "healthy",
    "destinations",
    "depth",
    "thread",
    "dead_letters",
    "replication info",
];

/// Whether `e` is a `READONLY` answer (from a command or from a script's write): the server
/// is a replica now, and nothing was written.
fn is_readonly(e: &RedisError) -> bool {
    e.code() == Some("READONLY") || e.to_string().contains("READONLY")
}

/// From `INFO replication`: whether the server is a primary, and its connected replicas.
fn parse_replication(info: &str) -> (bool, u32) {
    let mut primary = false;
    let mut replicas = 0;
    for line in info.lines() {
        match line.trim().split_once(':') {
            Some(("role", role)) => primary = role == "master",
            Some(("connected_slaves", n)) => replicas = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    (primary, replicas)
}

/// A `redis+sentinel://` URL, parsed.
#[derive(Debug, PartialEq)]
struct SentinelUrl {
    tls: bool,
    /// `host:port` of each Sentinel (port 26379 when left out).
    nodes: Vec<String>,
    master: String,
    db: i64,
}

/// `Some` for a `redis+sentinel://` or `rediss+sentinel://` URL: the Sentinels, the master
/// name and the database, or why the URL is wrong (without quoting it).
fn parse_sentinel_url(url: &str) -> Option<Result<SentinelUrl, String>> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("redis+sentinel://") {
        (false, r)
    } else {
        (true, url.strip_prefix("rediss+sentinel://")?)
    };
    let shape = "expected redis+sentinel://host:port[,host:port...]/master[/db]";
    let mut parts = rest.splitn(3, '/');
    let hosts = parts.next().unwrap_or("");
    if hosts.contains('@') {
        return Some(Err(format!(
            "credentials in a Sentinel URL are not supported (use username and password_file); {shape}"
        )));
    }
    let nodes: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                h.to_string()
            } else {
                format!("{h}:26379")
            }
        })
        .collect();
    let master = parts.next().unwrap_or("").to_string();
    if nodes.is_empty() || master.is_empty() {
        return Some(Err(format!("no Sentinel address or master name: {shape}")));
    }
    let db = match parts.next().filter(|d| !d.is_empty()) {
        None => 0,
        Some(d) => match d.parse() {
            Ok(db) => db,
            Err(_) => return Some(Err(format!("invalid database number: {shape}"))),
        },
    };
    Some(Ok(SentinelUrl {
        tls,
        nodes,
        master,
        db,
    }))
}

/// Microseconds since the epoch (pacing keeps sub-millisecond waits).
fn to_micros(t: SystemTime) -> u64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
        Err(_) => 0,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RedisStore {
    /// Connects to Redis per `config` and checks the connection (`AUTH`, `INFO`): a wrong
    /// address or password fails here with `StoreError::Open`, naming the address only.
    pub fn open(config: RedisConfig) -> Result<Self, StoreError> {
        let redacted = || {
            // Before parsing succeeds there is no safe way to show the URL (it may hold a
            // password): show its scheme only.
            config
                .url
                .split("://")
                .next()
                .unwrap_or("redis")
                .to_string()
                + "://..."
        };
        let open_err = |location: String, detail: String| StoreError::Open { location, detail };
        let credentials = |settings: redis::RedisConnectionInfo| {
            let settings = match &config.username {
                Some(u) => settings.set_username(u),
                None => settings,
            };
            match &config.password {
                Some(pw) => settings.set_password(pw.expose()),
                None => settings,
            }
        };
        let mut seed = None;
        let (target, location) = match parse_sentinel_url(&config.url) {
            Some(_) if config.cluster => return Err(open_err(
                redacted(),
                "Sentinel and cluster mode exclude each other: a cluster elects its own primaries"
                    .into(),
            )),
            Some(parsed) => {
                let s = parsed.map_err(|e| open_err(redacted(), e))?;
                let location = format!(
                    "{}://{}/{}/{}",
                    if s.tls {
                        "rediss+sentinel"
                    } else {
                        "redis+sentinel"
                    },
                    s.nodes.join(","),
                    s.master,
                    s.db
                );
                let scheme = if s.tls { "rediss" } else { "redis" };
                let mut nodes = Vec::with_capacity(s.nodes.len());
                for n in &s.nodes {
                    let info = format!("{scheme}://{n}")
                        .into_connection_info()
                        .map_err(|e| {
                            open_err(
                                location.clone(),
                                format!("Sentinel address: {:?}", e.kind()),
                            )
                        })?;
                    nodes.push(match &config.sentinel_password {
                        Some(pw) => {
                            let settings = info.redis_settings().clone().set_password(pw.expose());
                            info.set_redis_settings(settings)
                        }
                        None => info,
                    });
                }
                let sentinel = Sentinel::build(nodes)
                    .map_err(|e| open_err(location.clone(), e.to_string()))?;
                let mut node = SentinelNodeConnectionInfo::default().set_redis_connection_info(
                    credentials(redis::RedisConnectionInfo::default().set_db(s.db)),
                );
                if s.tls {
                    node = node.set_tls_mode(TlsMode::Secure);
                }
                let target = Target::Sentinel {
                    sentinel: Mutex::new(sentinel),
                    master: s.master,
                    node,
                };
                (target, location)
            }
            None => {
                let info = config.url.as_str().into_connection_info().map_err(|e| {
                    open_err(
                        redacted(),
                        format!(
                            "invalid Redis URL ({:?}): expected redis://[user@]host[:port][/db], rediss://... or redis+sentinel://host:port[,...]/master[/db]",
                            e.kind()
                        ),
                    )
                })?;
                let settings = credentials(info.redis_settings().clone());
                let info: ConnectionInfo = info.set_redis_settings(settings);
                let location = describe(&info);
                seed = config.cluster.then(|| info.clone());
                let client = redis::Client::open(info)
                    .map_err(|e| open_err(location.clone(), e.to_string()))?;
                (Target::Direct(client), location)
            }
        };
        let prefix = if config.cluster {
            cluster_prefix(&config.prefix)
        } else {
            config.prefix
        };
        let store = RedisStore {
            target,
            location,
            slot_key: format!("{prefix}next_id"),
            seed,
            redirect: Mutex::new(None),
            prefix,
            consumer: config.consumer,
            idle_ms: millis(config.idle_timeout),
            timeout: config.timeout,
            pool: Mutex::new(Pool::default()),
            replicas: config.replicas,
            // `WAIT` with 0 blocks for ever: never send it.
            wait_ms: millis(config.wait_timeout).max(1),
            seen_replicas: AtomicU32::new(0),
            unreplicated: AtomicU64::new(0),
        };
        store
            .with_conn("open", |c| redis::cmd("PING").query::<String>(c))
            .map_err(|e| StoreError::Open {
                location: store.location.clone(),
                detail: match e {
                    StoreError::Backend { detail, .. } => detail,
                    other => other.to_string(),
                },
            })?;
        Ok(store)
    }

    /// Replicas the next write waits for.
    fn wanted_replicas(&self) -> u32 {
        match self.replicas {
            Replicas::AtLeast(n) => n,
            Replicas::Auto => self.seen_replicas.load(Ordering::Relaxed).min(1),
        }
    }

    /// The address this store talks to (no credentials).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// This store's consumer name in the stream groups.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    fn backend(&self, op: &'static str, detail: impl fmt::Display) -> StoreError {
        StoreError::Backend {
            location: self.location.clone(),
            op,
            detail: detail.to_string(),
        }
    }

    fn not_found(&self, op: &'static str, what: &'static str, id: u64) -> StoreError {
        StoreError::NotFound {
            location: self.location.clone(),
            op,
            what,
            id,
        }
    }

    fn corrupt(&self, op: &'static str, key: String, detail: impl fmt::Display) -> StoreError {
        StoreError::Corrupt {
            location: self.location.clone(),
            op,
            key,
            detail: detail.to_string(),
        }
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        // Every mutation of the pool is a single push/pop/assignment: a poisoned lock still
        // guards a consistent pool.
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A pooled connection, or a new one unless a reconnect backoff is running.
    fn connection(&self, op: &'static str) -> Result<Connection, StoreError> {
        {
            let mut pool = self.pool();
            if let Some(c) = pool.idle.pop() {
                return Ok(c);
            }
            if let Some(at) = pool.retry_at {
                let now = Instant::now();
                if at > now {
                    return Err(self.backend(
                        op,
                        format!(
                            "not connected, next attempt in {} ms (last error: {})",
                            (at - now).as_millis(),
                            pool.last_error
                        ),
                    ));
                }
            }
        }
        match self.connect() {
            Ok(c) => {
                let mut pool = self.pool();
                pool.retry_at = None;
                pool.backoff = Duration::ZERO;
                Ok(c)
            }
            Err(e) => {
                let detail = format!("connect: {e}");
                let mut pool = self.pool();
                pool.backoff = (pool.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                pool.retry_at = Some(Instant::now() + pool.backoff);
                pool.last_error = detail.clone();
                Err(self.backend(op, detail))
            }
        }
    }

    /// A new connection to the primary: found through the Sentinels or by resolving the URL's
    /// host again, and checked to be a primary (a managed endpoint's DNS may still name the
    /// demoted one). Records how many replicas it has, for `Replicas::Auto`.
    fn connect(&self) -> RedisResult<Connection> {
        let redirect = self
            .redirect
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let client = match (&self.target, &self.seed, redirect) {
            (Target::Direct(_), Some(seed), Some((host, port))) => node_client(seed, host, port)?,
            (Target::Direct(client), _, _) => client.clone(),
            (
                Target::Sentinel {
                    sentinel,
                    master,
                    node,
                },
                _,
                _,
            ) => {
                // A panic while asking left only the Sentinel connection cache behind.
                let mut s = sentinel.lock().unwrap_or_else(|p| p.into_inner());
                s.master_for(master, Some(node))?
            }
        };
        let mut c = client.get_connection_with_timeout(self.timeout)?;
        // A read waits for `WAIT` too.
        c.set_read_timeout(Some(self.timeout + Duration::from_millis(self.wait_ms)))?;
        c.set_write_timeout(Some(self.timeout))?;
        let info: String = redis::cmd("INFO").arg("replication").query(&mut c)?;
        let (primary, replicas) = parse_replication(&info);
        if !primary {
            return Err(RedisError::from((
                ErrorKind::Io,
                "not the primary",
                "the server is a replica (failover in progress?)".to_string(),
            )));
        }
        self.seen_replicas.store(replicas, Ordering::Relaxed);
        Ok(c)
    }

    /// Runs `f` on a connection. A connection that failed by I/O or answered `READONLY` (a
    /// demoted primary) is dropped with every pooled one (they all lead to the same server);
    /// one that got another Redis error answer is reused. `f` runs a second time, on a fresh
    /// connection, when the first run certainly had no effect (`READONLY`) or `op` only reads.
    fn with_conn<T>(
        &self,
        op: &'static str,
        mut f: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut attempt = 0;
        let mut redirects = 0;
        let mut ask: Option<(String, u16)> = None;
        loop {
            attempt += 1;
            let asked = ask.take();
            let mut kept: Option<Connection> = None;
            let result = match &asked {
                // `ASK`: this one command goes to the node importing the slot, after `ASKING`.
                Some((host, port)) => {
                    let seed = self
                        .seed
                        .as_ref()
                        .ok_or_else(|| self.backend(op, "ASK without cluster mode"))?;
                    node_client(seed, host.clone(), *port)
                        .and_then(|c| c.get_connection_with_timeout(self.timeout))
                        .and_then(|mut c| {
                            redis::cmd("ASKING").query::<()>(&mut c)?;
                            f(&mut c)
                        })
                }
                None => {
                    let mut con = self.connection(op)?;
                    let r = f(&mut con);
                    kept = Some(con);
                    r
                }
            };
            let e = match result {
                Ok(v) => {
                    let mut pool = self.pool();
                    if let Some(con) = kept.filter(|_| pool.idle.len() < POOL_SIZE) {
                        pool.idle.push(con);
                    }
                    return Ok(v);
                }
                Err(e) => e,
            };
            // Cluster redirects: the command did not run; repeat it where the slot is.
            if self.seed.is_some() && redirects < MAX_REDIRECTS {
                if let Some((kind, host, port)) = redirect_of(&e) {
                    redirects += 1;
                    attempt -= 1;
                    match kind {
                        Redirect::Moved => {
                            *self.redirect.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some((host, port));
                            self.pool().idle.clear();
                        }
                        Redirect::Ask => ask = Some((host, port)),
                        // A slot in migration with the script's keys split, or the cluster
                        // electing: a moment later it is whole again.
                        Redirect::TryAgain => std::thread::sleep(BACKOFF_MIN),
                    }
                    continue;
                }
            }
            let readonly = is_readonly(&e);
            let lost = readonly
                || e.is_io_error()
                || e.is_connection_dropped()
                || e.is_timeout()
                || e.is_unrecoverable_error()
                || e.is_connection_refusal();
            {
                if lost && self.seed.is_some() {
                    // The slot's node may be gone (a cluster failover): ask the URL's node.
                    *self.redirect.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                let mut pool = self.pool();
                if lost {
                    pool.idle.clear();
                } else if let Some(con) = kept.filter(|_| pool.idle.len() < POOL_SIZE) {
                    pool.idle.push(con);
                }
            }
            if readonly {
                tracing::warn!(store = %self.location, op, "redis answered READONLY: the primary was demoted; reconnecting");
            }
            let repeatable = readonly || READ_ONLY_OPS.contains(&op);
            if !(lost && repeatable && attempt < 2) {
                return Err(self.backend(op, e));
            }
        }
    }

    /// `with_conn` for a write that must survive a failover: `f`, then `WAIT` on the same
    /// connection for the replicas `RedisConfig::replicas` asks for. Too few in time fails
    /// with `NotReplicated` (the write stays on the primary: a retry of it must be harmless).
    fn with_replicated<T>(
        &self,
        op: &'static str,
        mut f: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        let wanted = self.wanted_replicas();
        let (v, acked) = self.with_conn(op, |c| {
            let v = f(c)?;
            if wanted == 0 {
                return Ok((v, 0));
            }
            let acked: u32 = redis::cmd("WAIT").arg(wanted).arg(self.wait_ms).query(c)?;
            Ok((v, acked))
        })?;
        if acked >= wanted {
            return Ok(v);
        }
        if self.replicas == Replicas::Auto {
            // The replica may have gone (or been promoted): ask again for the next write.
            let _ = self.with_conn("replication info", |c| {
                let info: String = redis::cmd("INFO").arg("replication").query(c)?;
                self.seen_replicas
                    .store(parse_replication(&info).1, Ordering::Relaxed);
                Ok(())
            });
        }
        self.unreplicated.fetch_add(1, Ordering::Relaxed);
        Err(StoreError::NotReplicated {
            location: self.location.clone(),
            op,
            acked,
            wanted,
            waited_ms: self.wait_ms,
        })
    }

    fn decode_group(
        &self,
        op: &'static str,
        id: u64,
        json: &str,
    ) -> Result<model::Group, StoreError> {
        serde_json::from_str(json).map_err(|e| self.corrupt(op, format!("d:{id}"), e))
    }
}

impl Store for RedisStore {
    fn enqueue(
        &self,
        items: Vec<NewDelivery>,
        now: SystemTime,
    ) -> Result<Vec<Option<u64>>, StoreError> {
        const OP: &str = "enqueue";
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = scripts().enqueue.prepare_invoke();
        inv.key(&self.slot_key);
        inv.arg(&self.prefix).arg(to_millis(now)).arg(items.len());
        for item in &items {
            let group = serde_json::to_string(&item.group)
                .map_err(|e| self.corrupt(OP, item.destination.clone(), e))?;
            inv.arg(&item.destination).arg(group);
            match &item.dedup {
                Some(d) => inv.arg("1").arg(&d.key).arg(millis(d.ttl.min(MAX_TTL))),
                None => inv.arg("0").arg("").arg(0),
            };
            inv.arg(&item.group.key);
        }
        let ids: Vec<u64> = self.with_replicated(OP, |c| inv.invoke(c))?;
        if ids.len() != items.len() {
            return Err(self.backend(OP, format!("{} ids for {} items", ids.len(), items.len())));
        }
        Ok(ids.into_iter().map(|id| (id != 0).then_some(id)).collect())
    }

    fn lease(
        &self,
        destination: &str,
        now: SystemTime,
        max: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        const OP: &str = "lease";
        // Waited for like the writes that must survive a failover: while replicas do not
        // confirm, nothing new is sent whose ack could not be confirmed either, so a failover
        // repeats at most the send in flight.
        let rows: Vec<LeaseRow> = self.with_replicated(OP, |c| {
            scripts()
                .lease
                .prepare_invoke()
                .key(&self.slot_key)
                .arg(&self.prefix)
                .arg(&self.consumer)
                .arg(destination)
                .arg(to_millis(now))
                .arg(max.min(MAX_LEASE))
                .arg(self.idle_ms)
                .arg(PEL_SCAN)
                .arg(PEL_PAGE)
                .arg(READ_CAP)
                .invoke(c)
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, group, enq, attempts, nb, err) in rows {
            out.push(Delivery {
                id,
                destination: destination.to_string(),
                group: self.decode_group(OP, id, &group)?,
                enqueued_at: from_millis(enq),
                attempts,
                not_before: from_millis(nb),
                last_error: err,
            });
        }
        out.sort_by_key(|d| d.id);
        Ok(out)
    }

    fn ack(&self, id: u64) -> Result<(), StoreError> {
        const OP: &str = "ack";
        let done: u8 = self.with_replicated(OP, |c| {
            scripts()
                .ack
                .prepare_invoke()
                .key(&self.slot_key)
                .arg(&self.prefix)
                .arg(id)
                .invoke(c)
        })?;
        if done == 0 {
            return Err(self.not_found(OP, "queued delivery", id));
        }
        Ok(())
    }

    fn retry(&self, id: u64, not_before: SystemTime, error: &str) -> Result<(), StoreError> {
        const OP: &str = "retry";
        let done: u8 = self.with_conn(OP, |c| {
            scripts()
                .retry
                .prepare_invoke()
                .key(&self.slot_key)
                .arg(&self.prefix)
                .arg(id)
                .arg(to_millis(not_before))
                .arg(error)
                .invoke(c)
        })?;
        if done == 0 {
            return Err(self.not_found(OP, "queued delivery", id));
        }
        Ok(())
    }

    fn dead_letter(
        &self,
        id: u64,
        reason: &str,
        attempted: bool,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        const OP: &str = "dead_letter";
        let done: u8 = self.with_replicated(OP, |c| {
            scripts()
                .dead_letter
                .prepare_invoke()
                .key(&self.slot_key)
                .arg(&self.prefix)
                .arg(id)
                .arg(reason)
                .arg(to_millis(now))
                .arg(u8::from(attempted))
                .invoke(c)
        })?;
        if done == 0 {
            return Err(self.not_found(OP, "queued delivery", id));
        }
        Ok(())
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        const OP: &str = "dead_letters";
        let rows: Vec<DeadRow> = self.with_conn(OP, |c| {
            scripts()
                .dead_letters
                .prepare_invoke()
                .key(&self.slot_key)
                .arg(&self.prefix)
                .invoke(c)
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, dest, group, enq, attempts, nb, err, reason, at) in rows {
            out.push(DeadLetter {
                delivery: Delivery {
                    id,
                    destination: dest,
                    group: self.decode_group(OP, id, &group)?,
                    enqueued_at: from_millis(enq),
                    attempts,
                    not_before: from_millis(nb),
                    last_error: err,
                },
                reason,
                at: from_millis(at),
            });
        }
        Ok(out)
    }

    fn replay(&self, id: u64, now: SystemTime) -> Result<u64, StoreError> {
        const OP: &str = "replay";
        let new_id: u64 = self.with_replicated(OP, |c| {
            scripts()
                .replay
                .prepare_invoke()
                .key(&self.slot_key)
                .arg(&self.prefix)
                .arg(id)
                .arg(to_millis(now))
                .invoke(c)
        })?;
        if new_id == 0 {
            return Err(self.not_found(OP, "dead letter", id));
        }
        Ok(new_id)
    }

    fn destinations(&self) -> Result<Vec<String>, StoreError> {
        let key = format!("{}dests", self.prefix);
        let mut out: Vec<String> = self.with_conn("destinations", |c| {
            redis::cmd("SMEMBERS").arg(&key).query(c)
        })?;
        out.sort();
        Ok(out)
    }

    fn depth(&self, destination: &str) -> Result<(usize, Option<SystemTime>), StoreError> {
        let (n, oldest): (usize, Option<u64>) = self.with_conn("depth", |c| {
            scripts()
                .depth
                .prepare_invoke()
                .key(&self.slot_key)
                .arg(&self.prefix)
                .arg(destination)
                .invoke(c)
        })?;
        Ok((n, oldest.map(from_millis)))
    }

    fn claim_dedup(&self, key: &str, ttl: Duration, now: SystemTime) -> Result<bool, StoreError> {
        let claimed: u8 = self.with_replicated("claim_dedup", |c| {
            scripts()
                .claim
                .prepare_invoke()
                .key(&self.slot_key)
                .arg(&self.prefix)
                .arg(key)
                .arg(to_millis(now))
                .arg(millis(ttl.min(MAX_TTL)))
                .invoke(c)
        })?;
        Ok(claimed == 1)
    }

    fn thread(&self, destination: &str, group_key: &str) -> Result<Option<String>, StoreError> {
        let key = format!("{}thread:{destination}", self.prefix);
        self.with_conn("thread", |c| {
            redis::cmd("HGET").arg(&key).arg(group_key).query(c)
        })
    }

    fn set_thread(
        &self,
        destination: &str,
        group_key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        let key = format!("{}thread:{destination}", self.prefix);
        self.with_replicated("set_thread", |c| {
            redis::cmd("HSET")
                .arg(&key)
                .arg(group_key)
                .arg(value)
                .query::<()>(c)
        })
    }

    fn unreplicated_writes(&self) -> u64 {
        self.unreplicated.load(Ordering::Relaxed)
    }

    fn healthy(&self) -> bool {
        self.with_conn("healthy", |c| redis::cmd("PING").query::<String>(c))
            .is_ok_and(|pong| pong == "PONG")
    }

    fn take_token(&self, key: &str, rate: Rate, now: SystemTime) -> Result<Duration, StoreError> {
        const OP: &str = "take_token";
        // The same clamps as `Pacer::try_take`; f64's Display is exact and never exponential.
        let per_second = rate.per_second.max(f64::MIN_POSITIVE);
        let burst = rate.burst.max(1);
        let wait: String = self.with_conn(OP, |c| {
            scripts()
                .take_token
                .prepare_invoke()
                .key(&self.slot_key)
                .arg(&self.prefix)
                .arg(key)
                .arg(per_second.to_string())
                .arg(burst)
                .arg(to_micros(now))
                .invoke(c)
        })?;
        let secs: f64 = wait
            .parse()
            .map_err(|e| self.corrupt(OP, format!("pace:{key}"), e))?;
        Duration::try_from_secs_f64(secs).map_err(|e| self.corrupt(OP, format!("pace:{key}"), e))
    }

    fn pause(&self, key: &str, until: SystemTime) -> Result<(), StoreError> {
        self.with_conn("pause", |c| {
            scripts()
                .pause
                .prepare_invoke()
                .key(&self.slot_key)
                .arg(&self.prefix)
                .arg(key)
                .arg(to_micros(until))
                .invoke::<()>(c)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_are_unique_per_store() {
        let a = consumer_name();
        let b = consumer_name();
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a}");
    }

    #[test]
    fn locations_never_carry_credentials() {
        let info = "rediss://user:hunter2@cache.internal:6380/3"
            .into_connection_info()
            .expect("valid url");
        assert_eq!(describe(&info), "rediss://cache.internal:6380/3");
        let info = "redis://:pw@127.0.0.1"
            .into_connection_info()
            .expect("valid url");
        assert_eq!(describe(&info), "redis://127.0.0.1:6379/0");
    }

    #[test]
    fn sentinel_urls_name_sentinels_master_and_db() {
        assert_eq!(
            parse_sentinel_url("redis+sentinel://s0:26380,s1/beacon/2"),
            Some(Ok(SentinelUrl {
                tls: false,
                nodes: vec!["s0:26380".into(), "s1:26379".into()],
                master: "beacon".into(),
                db: 2,
            }))
        );
        let tls = parse_sentinel_url("rediss+sentinel://s0:26379/m").expect("sentinel");
        assert!(tls.expect("valid").tls);
        assert_eq!(parse_sentinel_url("redis://cache:6379/0"), None);
        for bad in [
            "redis+sentinel://s0:26379",
            "redis+sentinel:///beacon",
            "redis+sentinel://s0/beacon/x",
            "redis+sentinel://user:hunter2@s0/beacon",
        ] {
            let err = parse_sentinel_url(bad)
                .expect("sentinel")
                .expect_err("invalid");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn replication_info_tells_role_and_replicas() {
        let primary = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=10.0.0.2,port=6379,state=online\r\n";
        assert_eq!(parse_replication(primary), (true, 2));
        let replica =
            "# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\nconnected_slaves:0\r\n";
        assert_eq!(parse_replication(replica), (false, 0));
    }

    #[test]
    fn readonly_answers_are_recognised() {
        let e = RedisError::from((
            ErrorKind::Extension,
            "script error",
            "READONLY You can't write against a read only replica. script: 1234".to_string(),
        ));
        assert!(is_readonly(&e));
        let other = RedisError::from((ErrorKind::Io, "io", "connection reset".to_string()));
        assert!(!is_readonly(&other));
    }

    #[test]
    fn an_invalid_url_is_an_open_error_without_the_url() {
        let err = RedisStore::open(RedisConfig::new("redis://user:hunter2@[::1"))
            .expect_err("invalid url");
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
