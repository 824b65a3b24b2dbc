//! Counters behind `GET /metrics`, rendered as Prometheus text.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why the server answered with an error or dropped a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidJson,
    UnknownType,
    MissingField,
    BinaryFrame,
    NotRegistered,
    AlreadyRegistered,
    InvalidPeerId,
    PeerIdTaken,
    /// A `register` with a missing (under `require_auth`), incomplete or
    /// invalid identity proof.
    Auth,
    /// A `register` refused because the peer id is bound to another
    /// identity key (a takeover attempt, or a node that lost its key).
    PeerIdBound,
    UnknownPeer,
    RateLimited,
    MessageTooBig,
    /// A connection dropped because its client read nothing for the stall
    /// timeout.
    SlowConsumer,
    IdleTimeout,
    ConnectionLimit,
    OriginRejected,
    /// The cluster's shared registry (Redis) did not answer.
    RegistryUnavailable,
    /// A relay dropped because its recipient's outbox was full (the sender
    /// is told).
    RecipientBusy,
    /// A watcher unsubscribed because even its presence reserve was full.
    PresenceDropped,
    /// A connection closed for not registering in time.
    RegisterTimeout,
    /// An upgrade refused: its source address has as many connections as
    /// allowed.
    SourceConnectionLimit,
    /// A new key binding refused: the server holds as many as it keeps.
    BindingsFull,
    /// A new key binding refused: its source address made too many lately.
    BindingRateLimited,
    /// A `list_peers` naming more `ids` than allowed.
    TooManyIds,
}

impl ErrorKind {
    const ALL: [ErrorKind; 25] = [
        ErrorKind::InvalidJson,
        ErrorKind::UnknownType,
        ErrorKind::MissingField,
        ErrorKind::BinaryFrame,
        ErrorKind::NotRegistered,
        ErrorKind::AlreadyRegistered,
        ErrorKind::InvalidPeerId,
        ErrorKind::PeerIdTaken,
        ErrorKind::Auth,
        ErrorKind::PeerIdBound,
        ErrorKind::UnknownPeer,
        ErrorKind::RateLimited,
        ErrorKind::MessageTooBig,
        ErrorKind::SlowConsumer,
        ErrorKind::IdleTimeout,
        ErrorKind::ConnectionLimit,
        ErrorKind::OriginRejected,
        ErrorKind::RegistryUnavailable,
        ErrorKind::RecipientBusy,
        ErrorKind::PresenceDropped,
        ErrorKind::RegisterTimeout,
        ErrorKind::SourceConnectionLimit,
        ErrorKind::BindingsFull,
        ErrorKind::BindingRateLimited,
        ErrorKind::TooManyIds,
    ];

    fn label(self) -> &'static str {
        match self {
            ErrorKind::InvalidJson => "invalid_json",
            ErrorKind::UnknownType => "unknown_type",
            ErrorKind::MissingField => "missing_field",
            ErrorKind::BinaryFrame => "binary_frame",
            ErrorKind::NotRegistered => "not_registered",
            ErrorKind::AlreadyRegistered => "already_registered",
            ErrorKind::InvalidPeerId => "invalid_peer_id",
            ErrorKind::PeerIdTaken => "peer_id_taken",
            ErrorKind::Auth => "auth",
            ErrorKind::PeerIdBound => "peer_id_bound",
            ErrorKind::UnknownPeer => "unknown_peer",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::MessageTooBig => "message_too_big",
            ErrorKind::SlowConsumer => "slow_consumer",
            ErrorKind::IdleTimeout => "idle_timeout",
            ErrorKind::ConnectionLimit => "connection_limit",
            ErrorKind::OriginRejected => "origin_rejected",
            ErrorKind::RegistryUnavailable => "registry_unavailable",
            ErrorKind::RecipientBusy => "recipient_busy",
            ErrorKind::PresenceDropped => "presence_dropped",
            ErrorKind::RegisterTimeout => "register_timeout",
            ErrorKind::SourceConnectionLimit => "source_connection_limit",
            ErrorKind::BindingsFull => "bindings_full",
            ErrorKind::BindingRateLimited => "binding_rate_limited",
            ErrorKind::TooManyIds => "too_many_ids",
        }
    }
}

/// Process-wide counters. All updates are relaxed atomics: the numbers are
/// for dashboards, not for synchronisation.
#[derive(Default)]
pub struct Metrics {
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_relayed: AtomicU64,
    pub bytes_relayed: AtomicU64,
    /// Relays handed to another instance of the cluster.
    pub cluster_relays_out: AtomicU64,
    /// Relays another instance handed to this one.
    pub cluster_relays_in: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
}

impl Metrics {
    pub fn error(&self, kind: ErrorKind) {
        self.errors[kind as usize].fetch_add(1, Relaxed);
    }

    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.errors[kind as usize].load(Relaxed)
    }

    /// Prometheus text exposition format.
    /// `cluster_healthy`: `None` when not a cluster instance.
    pub fn render(
        &self,
        registered_peers: usize,
        key_bindings: usize,
        cluster_healthy: Option<bool>,
    ) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "mpc_signal_connections",
            "gauge",
            "Open WebSocket connections.",
            self.connections_open.load(Relaxed),
        );
        metric(
            "mpc_signal_connections_total",
            "counter",
            "WebSocket connections accepted since start.",
            self.connections_total.load(Relaxed),
        );
        metric(
            "mpc_signal_registered_peers",
            "gauge",
            "Peer ids currently registered (on this instance, in a cluster).",
            registered_peers as u64,
        );
        metric(
            "mpc_signal_key_bindings",
            "gauge",
            "Peer ids bound to an identity key (holder connected, or left less than the binding time ago).",
            key_bindings as u64,
        );
        metric(
            "mpc_signal_messages_received_total",
            "counter",
            "Text messages received from clients.",
            self.messages_received.load(Relaxed),
        );
        metric(
            "mpc_signal_messages_relayed_total",
            "counter",
            "Relay messages delivered to a recipient's queue.",
            self.messages_relayed.load(Relaxed),
        );
        metric(
            "mpc_signal_bytes_relayed_total",
            "counter",
            "Bytes of relay data delivered to recipients' queues.",
            self.bytes_relayed.load(Relaxed),
        );
        if let Some(up) = cluster_healthy {
            metric(
                "mpc_signal_cluster_healthy",
                "gauge",
                "1 while this instance reaches the cluster's Redis (0: /healthz answers 503).",
                up as u64,
            );
        }
        metric(
            "mpc_signal_cluster_relays_out_total",
            "counter",
            "Relays handed to another instance of the cluster (Redis backend).",
            self.cluster_relays_out.load(Relaxed),
        );
        metric(
            "mpc_signal_cluster_relays_in_total",
            "counter",
            "Relays another instance of the cluster handed to this one (Redis backend).",
            self.cluster_relays_in.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP mpc_signal_errors_total Errors sent to clients and connections dropped, by kind.\n# TYPE mpc_signal_errors_total counter"
        );
        for kind in ErrorKind::ALL {
            let _ = writeln!(
                out,
                "mpc_signal_errors_total{{kind=\"{}\"}} {}",
                kind.label(),
                self.errors(kind)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_index_their_own_slot() {
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
        let m = Metrics::default();
        m.error(ErrorKind::UnknownPeer);
        let text = m.render(2, 1, None);
        assert!(!text.contains("cluster_healthy"));
        assert!(m
            .render(0, 0, Some(false))
            .contains("mpc_signal_cluster_healthy 0"));
        assert!(text.contains("mpc_signal_errors_total{kind=\"unknown_peer\"} 1"));
        assert!(text.contains("mpc_signal_registered_peers 2"));
        assert!(text.contains("mpc_signal_key_bindings 1"));
    }
}
