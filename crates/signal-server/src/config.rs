//! Operator settings: limits, origins, ICE servers and registration auth.

use std::time::Duration;

use mpc_protocol::IceServer;

/// Everything an operator can tune. [`Config::default`] is the documented
/// default set (see the README's server section).
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest accepted WebSocket message; a larger one closes with 1009.
    pub max_message_bytes: usize,
    /// Sustained messages per second per connection; 0 turns limiting off.
    pub rate_limit_per_sec: u32,
    /// Messages a connection may send at once before the rate applies.
    pub rate_limit_burst: u32,
    /// Open WebSocket connections; past it, upgrades get HTTP 503.
    pub max_connections: usize,
    /// A connection that sends nothing (not even a pong) for this long is
    /// dropped.
    pub idle_timeout: Duration,
    /// How often the server pings; at most a third of the idle timeout.
    pub ping_interval: Duration,
    /// Browser origins allowed to connect; empty allows all. Requests
    /// without an `Origin` header (CLI nodes) are always allowed.
    pub allowed_origins: Vec<String>,
    /// STUN/TURN servers handed to every node in `registered`.
    pub ice_servers: Vec<IceServer>,
    /// Messages waiting for one slow reader before it is disconnected.
    pub outgoing_queue: usize,
    /// Rate-limited messages in a row before the connection is closed.
    pub rate_limit_strikes: u32,
    /// Accept only signed registrations (`register` with `pubkey` and a
    /// `signature` over the connection's challenge).
    pub require_auth: bool,
    /// How long a peer id registered with an identity key stays bound to
    /// that key after its holder disconnects. Meanwhile only that key may
    /// register the id. Zero: the binding ends with the connection.
    pub key_binding: Duration,
    /// Bindings of disconnected holders kept at most (each at most ~300
    /// bytes, so the default caps them near 30 MB);
    /// past it the one closest to expiry is dropped early. Bindings of
    /// connected holders are bounded by `max_connections` instead.
    pub max_key_bindings: usize,
    /// Serve as one of several instances sharing a Redis registry; `None`:
    /// the in-memory registry of this process alone.
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_bytes: 64 * 1024,
            rate_limit_per_sec: 100,
            rate_limit_burst: 400,
            max_connections: 20_000,
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
            allowed_origins: Vec::new(),
            ice_servers: Vec::new(),
            outgoing_queue: 256,
            rate_limit_strikes: 50,
            require_auth: false,
            key_binding: Duration::from_secs(86_400),
            max_key_bindings: 100_000,
            cluster: None,
        }
    }
}

impl Config {
    /// The ping interval actually used: a silent client must have missed
    /// about three pings before the idle timeout drops it.
    pub fn effective_ping_interval(&self) -> Duration {
        self.ping_interval.min(self.idle_timeout / 3)
    }
}
