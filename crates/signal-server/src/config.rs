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
    /// Bytes of frames waiting for one reader (each frame's text plus
    /// [`crate::outbox::FRAME_OVERHEAD`]). A relay that does not fit is
    /// dropped and its sender told that the recipient is busy; the
    /// recipient stays connected.
    pub outbox_bytes: usize,
    /// A connection whose socket accepts nothing for this long (its client
    /// reads nothing at all) is dropped with 1008.
    pub stall_timeout: Duration,
    /// A connection that has not registered this long after connecting is
    /// closed with 1008.
    pub register_timeout: Duration,
    /// Open connections from one source address (an IPv4 address, or an
    /// IPv6 /64); past it, upgrades get HTTP 429. 0 turns it off.
    pub max_connections_per_ip: usize,
    /// New key bindings one source address may create a minute (the
    /// bucket holds as many); a signed `register` past it is refused for a
    /// new id and still works for an id already bound to its key. 0 turns
    /// it off.
    pub new_bindings_per_ip_per_min: u32,
    /// Rate-limited messages in a row before the connection is closed.
    pub rate_limit_strikes: u32,
    /// Accept only signed registrations (`register` with `pubkey` and a
    /// `signature` over the connection's challenge).
    pub require_auth: bool,
    /// The host names (with port, as clients write them in the URL) a
    /// signed `register` may name. Empty: the `Host` the client sent.
    /// Set it behind a proxy that rewrites `Host`.
    pub public_hosts: Vec<String>,
    /// Also accept the older signed `register` that names no server
    /// (`statement::register`). It can be replayed from another server
    /// (review finding 16), so it is off unless old clients need it.
    pub accept_unbound_register: bool,
    /// How long a peer id registered with an identity key stays bound to
    /// that key after its holder disconnects. Meanwhile only that key may
    /// register the id. Zero: the binding ends with the connection.
    pub key_binding: Duration,
    /// Key bindings kept at most, held and released together (each at
    /// most ~300 bytes, so the default caps them near 30 MB). When full, a
    /// `register` that would bind a new id is refused; no live binding is
    /// ever dropped to make room.
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
            outbox_bytes: 256 * 1024,
            stall_timeout: Duration::from_secs(20),
            register_timeout: Duration::from_secs(10),
            max_connections_per_ip: 64,
            new_bindings_per_ip_per_min: 10,
            rate_limit_strikes: 50,
            require_auth: false,
            public_hosts: Vec::new(),
            accept_unbound_register: false,
            key_binding: Duration::from_secs(86_400),
            max_key_bindings: 100_000,
            cluster: None,
        }
    }
}

impl Config {
    /// The outbox cap actually used: at least one largest relay frame.
    pub fn effective_outbox_bytes(&self) -> usize {
        self.outbox_bytes.max(self.max_message_bytes + 256)
    }

    /// The ping interval actually used: a silent client must have missed
    /// about three pings before the idle timeout drops it.
    pub fn effective_ping_interval(&self) -> Duration {
        self.ping_interval.min(self.idle_timeout / 3)
    }
}
