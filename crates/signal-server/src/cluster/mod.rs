//! The Redis backend: several `mpc-signal` instances that serve as one.
//!
//! Redis holds what must be shared, each write an atomic Lua script:
//! - `<prefix>:peers`, a hash of peer id → `"<instance> <conn> <key hex>"`
//!   (the key empty when the register was unsigned);
//! - `<prefix>:ids`, a sorted set of the same ids (score 0, so ordered by
//!   bytes), which pages of the full list walk (`ZRANGEBYLEX … LIMIT`), so
//!   no `list_peers` reads the whole registry; a filtered one reads just its
//!   ids (`HMGET`);
//! - `<prefix>:binding:<id>`, the identity key an id is bound to. It has no
//!   expiry while held; Redis expires it `key_binding` after the holder
//!   leaves;
//! - `<prefix>:bindings`, a sorted set of bound id → expiry (ms, `+inf`
//!   while held), which counts the bindings against `max_key_bindings`:
//!   when full, a claim that would bind a new id is refused, and no live
//!   binding is dropped to make room;
//! - `<prefix>:instances`, a sorted set of instance → deadline (ms, Redis
//!   clock), renewed by each instance's heartbeat, and
//!   `<prefix>:members:<instance>`, the ids each instance holds, so the
//!   ids of an instance that died can be freed.
//!
//! A relay to a peer on another instance is published on that instance's
//! channel `<prefix>:to:<instance>`. Joins and leaves are published on
//! `<prefix>:presence`, and every instance forwards the others' to its own
//! watchers. Each instance still keeps its own connections in the
//! in-memory [`Registry`](crate::registry::Registry): a relay between two
//! peers of one instance never touches Redis.
//!
//! Semantics that differ from one instance, all documented in the README:
//! a relay to a peer on another instance is only known to have reached
//! that instance (a slow reader there is disconnected, but the sender is
//! not told); watchers may hear a join twice (once in the list they get
//! and once pushed).
//! An instance that cannot renew its heartbeat for `instance_ttl`
//! disconnects its clients, so that they register again elsewhere rather
//! than look registered to nobody.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use mpc_identity::PublicKey;
use mpc_protocol::ServerMessage;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tracing::warn;

use crate::registry::{ConnId, Refusal};

mod scripts;
mod tasks;

use scripts::Scripts;
pub use tasks::run;

/// Every Redis call gives up after this long.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a cluster operation could not be done.
#[derive(Debug, thiserror::Error)]
#[error("the shared registry (Redis) is unavailable: {0}")]
pub struct Unavailable(String);

impl From<redis::RedisError> for Unavailable {
    fn from(e: redis::RedisError) -> Self {
        Unavailable(e.to_string())
    }
}

/// Where the cluster lives and how it behaves. `Debug` hides a password
/// in the URL.
#[derive(Clone)]
pub struct ClusterConfig {
    /// `redis://host:port/db` or `unix:///path/to/redis.sock`.
    pub url: String,
    /// Prefix of every Redis key and channel, so clusters can share a Redis.
    pub prefix: String,
    /// An instance that has not renewed its heartbeat for this long is
    /// dead, and its peer ids are freed.
    pub instance_ttl: Duration,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("url", &redacted(&self.url))
            .field("prefix", &self.prefix)
            .field("instance_ttl", &self.instance_ttl)
            .finish()
    }
}

/// `url` with any credentials (`redis://user:PASSWORD@host`) replaced, for
/// logs and errors.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

impl ClusterConfig {
    pub fn new(url: impl Into<String>) -> Self {
        ClusterConfig {
            url: url.into(),
            prefix: "mpc-signal".into(),
            instance_ttl: Duration::from_secs(10),
        }
    }
}

/// This instance's handle on the shared registry.
pub struct Cluster {
    client: redis::Client,
    redis: ConnectionManager,
    scripts: Scripts,
    me: String,
    config: ClusterConfig,
    key_binding: Duration,
    /// The most key bindings the cluster keeps.
    max_bindings: usize,
    /// Releases that failed while Redis was away; the heartbeat retries.
    unreleased: Mutex<Vec<(String, ConnId)>>,
    /// How many times this instance dropped its clients for losing its
    /// place in the cluster, so a kicked connection can tell why.
    resets: AtomicU64,
    /// False once Redis has been unreachable for the instance TTL, until a
    /// heartbeat succeeds again: `/healthz` answers 503 meanwhile.
    healthy: AtomicBool,
}

impl Cluster {
    /// Connects to Redis and announces this instance (a fresh random id).
    pub async fn connect(
        config: ClusterConfig,
        key_binding: Duration,
        max_bindings: usize,
    ) -> Result<Self, Unavailable> {
        if config.prefix.is_empty() || config.prefix.contains(char::is_whitespace) {
            return Err(Unavailable(
                "the key prefix must be non-empty without spaces".into(),
            ));
        }
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| Unavailable(format!("bad Redis URL {:?}: {e}", redacted(&config.url))))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let redis = timed(client.get_connection_manager_with_config(manager)).await?;
        let mut id = [0u8; 8];
        getrandom::getrandom(&mut id).map_err(|e| Unavailable(format!("no randomness: {e}")))?;
        let cluster = Cluster {
            client,
            redis,
            scripts: Scripts::new(),
            me: hex::encode(id),
            config,
            key_binding,
            max_bindings,
            unreleased: Mutex::new(Vec::new()),
            resets: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
        };
        cluster.heartbeat().await?;
        Ok(cluster)
    }

    /// This instance's id in the cluster.
    pub fn instance(&self) -> &str {
        &self.me
    }

    /// Whether this instance is in the cluster: false after Redis was
    /// unreachable for the instance TTL, until it answers again.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Times this instance dropped its clients after losing its place in
    /// the cluster (see [`run`]).
    pub fn resets(&self) -> u64 {
        self.resets.load(Ordering::SeqCst)
    }

    fn reset(&self, registry: &crate::registry::Registry) {
        self.resets.fetch_add(1, Ordering::SeqCst);
        registry.kick_all();
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.config.prefix.clone();
        for p in parts {
            k.push(':');
            k.push_str(p);
        }
        k
    }

    fn ttl_ms(&self) -> u64 {
        self.config.instance_ttl.as_millis().max(1) as u64
    }

    fn binding_ms(&self) -> u64 {
        self.key_binding.as_millis().min(u64::MAX as u128) as u64
    }

    /// Claims `peer_id` for this instance's connection `conn`, checking the
    /// key binding: the same rules as [`Registry::register`], cluster-wide
    /// (`Ok(Ok(true))`: a new binding was made).
    ///
    /// [`Registry::register`]: crate::registry::Registry::register
    pub async fn claim(
        &self,
        peer_id: &str,
        conn: ConnId,
        key: Option<&PublicKey>,
        may_bind: bool,
    ) -> Result<Result<bool, Refusal>, Unavailable> {
        let key_hex = key.map(PublicKey::to_hex).unwrap_or_default();
        let note = ServerMessage::PeerJoined {
            peer_id: peer_id.to_string(),
            pubkey: key.map(PublicKey::to_hex),
        }
        .to_json();
        let mut call = self.scripts.claim.prepare_invoke();
        call.key(self.key(&["peers"]))
            .key(self.key(&["binding", peer_id]))
            .key(self.key(&["instances"]))
            .key(self.key(&["members", &self.me]))
            .key(self.key(&["ids"]))
            .key(self.key(&["bindings"]))
            .arg(peer_id)
            .arg(&self.me)
            .arg(conn)
            .arg(key_hex)
            .arg(self.key(&["presence"]))
            .arg(note)
            .arg(if may_bind { "1" } else { "0" })
            .arg(self.max_bindings);
        let answer: String = timed(call.invoke_async(&mut self.redis.clone())).await?;
        match answer.as_str() {
            "ok" => Ok(Ok(false)),
            "ok_new" => Ok(Ok(true)),
            "taken" => Ok(Err(Refusal::Taken)),
            "other_key" => Ok(Err(Refusal::BoundToOtherKey)),
            "needs_signature" => Ok(Err(Refusal::BoundNeedsSignature)),
            "rate_limited" => Ok(Err(Refusal::BindingRateLimited)),
            "full" => Ok(Err(Refusal::BindingsFull)),
            "not_alive" => Err(Unavailable(
                "this instance's heartbeat lapsed (it rejoins within a second)".into(),
            )),
            other => Err(Unavailable(format!("unexpected answer {other:?}"))),
        }
    }

    /// Frees `peer_id` if `conn` of this instance still holds it. If Redis
    /// is away, the heartbeat retries until it is done.
    pub async fn release(&self, peer_id: &str, conn: ConnId) {
        if let Err(e) = self.try_release(peer_id, conn).await {
            warn!(%peer_id, "cannot free the peer id in Redis yet: {e}");
            self.unreleased
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((peer_id.to_string(), conn));
        }
    }

    async fn try_release(&self, peer_id: &str, conn: ConnId) -> Result<(), Unavailable> {
        let note = ServerMessage::PeerLeft {
            peer_id: peer_id.to_string(),
        }
        .to_json();
        let mut call = self.scripts.release.prepare_invoke();
        call.key(self.key(&["peers"]))
            .key(self.key(&["binding", peer_id]))
            .key(self.key(&["members", &self.me]))
            .key(self.key(&["ids"]))
            .key(self.key(&["bindings"]))
            .arg(peer_id)
            .arg(&self.me)
            .arg(conn)
            .arg(self.binding_ms())
            .arg(self.key(&["presence"]))
            .arg(note);
        let _: i64 = timed(call.invoke_async(&mut self.redis.clone())).await?;
        Ok(())
    }

    /// Hands a relay frame for `to` to the instance that holds it.
    /// `Ok(false)`: nobody alive holds `to`.
    pub async fn relay(&self, to: &str, frame: &str) -> Result<bool, Unavailable> {
        let mut call = self.scripts.relay.prepare_invoke();
        call.key(self.key(&["peers"]))
            .key(self.key(&["instances"]))
            .arg(to)
            .arg(self.key(&["to", ""]))
            .arg(frame);
        let receivers: i64 = timed(call.invoke_async(&mut self.redis.clone())).await?;
        Ok(receivers > 0)
    }

    /// The `peers` answer to `query` from the cluster-wide registry, at
    /// most `limit` bytes: the same as [`Registry::list`], reading only
    /// the ids asked for, or one page.
    ///
    /// [`Registry::list`]: crate::registry::Registry::list
    pub async fn list(
        &self,
        query: &crate::registry::ListQuery,
        limit: usize,
    ) -> Result<axum::extract::ws::Utf8Bytes, Unavailable> {
        let mut call = self.scripts.list.prepare_invoke();
        call.key(self.key(&["peers"]))
            .key(self.key(&["instances"]))
            .key(self.key(&["ids"]));
        match &query.ids {
            Some(ids) => {
                let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                ids.sort_unstable();
                ids.dedup();
                call.arg("1").arg(ids);
            }
            None => {
                let after = query.after.as_deref().unwrap_or_default();
                call.arg("0")
                    .arg(after)
                    .arg(crate::registry::PAGE_MAX_PEERS);
            }
        }
        let flat: Vec<String> = timed(call.invoke_async(&mut self.redis.clone())).await?;
        let (tail, pairs) = flat.split_first().map_or(("", &[][..]), |(t, p)| (t, p));
        let entries = pairs
            .chunks_exact(2)
            .map(|p| (p[0].as_str(), Some(p[1].as_str()).filter(|k| !k.is_empty())));
        Ok(crate::registry::render_page(
            entries,
            query.keys,
            limit,
            Some(tail).filter(|t| !t.is_empty()),
        ))
    }

    /// Renews this instance's deadline. `Ok(false)`: it had lapsed.
    async fn heartbeat(&self) -> Result<bool, Unavailable> {
        let mut call = self.scripts.heartbeat.prepare_invoke();
        call.key(self.key(&["instances"]))
            .arg(&self.me)
            .arg(self.ttl_ms());
        let was: i64 = timed(call.invoke_async(&mut self.redis.clone())).await?;
        Ok(was == 1)
    }

    /// Frees the ids of dead instances (any instance may do it; the script
    /// is atomic, so each id is freed once).
    async fn sweep(&self) -> Result<Vec<String>, Unavailable> {
        let mut call = self.scripts.sweep.prepare_invoke();
        call.key(self.key(&["instances"]))
            .key(self.key(&["peers"]))
            .key(self.key(&["ids"]))
            .key(self.key(&["bindings"]))
            .arg(&self.config.prefix)
            .arg(self.binding_ms())
            .arg(self.key(&["presence"]));
        timed(call.invoke_async(&mut self.redis.clone())).await
    }

    /// Leaves the cluster at a clean shutdown.
    pub async fn leave(&self) {
        let mut call = self.scripts.leave.prepare_invoke();
        call.key(self.key(&["instances"]))
            .key(self.key(&["members", &self.me]))
            .arg(&self.me);
        let left: Result<i64, _> = timed(call.invoke_async(&mut self.redis.clone())).await;
        if let Err(e) = left {
            warn!("cannot leave the cluster cleanly (others will sweep): {e}");
        }
    }

    async fn retry_releases(&self) {
        let pending =
            std::mem::take(&mut *self.unreleased.lock().unwrap_or_else(|e| e.into_inner()));
        for (peer_id, conn) in pending {
            self.release(&peer_id, conn).await;
        }
    }
}

async fn timed<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, Unavailable> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(Unavailable(format!(
            "no answer within {} s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_the_url_stay_out_of_logs() {
        assert_eq!(
            redacted("redis://:s3cret@db:6379/0"),
            "redis://***@db:6379/0"
        );
        assert_eq!(redacted("redis://u:p@ss@db"), "redis://***@db");
        assert_eq!(redacted("unix:///run/redis.sock"), "unix:///run/redis.sock");
        let mut c = ClusterConfig::new("redis://:s3cret@db");
        c.prefix = "p".into();
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
