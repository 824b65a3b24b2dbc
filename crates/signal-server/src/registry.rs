//! Who is registered, and how to reach them: the server's only state.
//!
//! The registry maps each peer id to its connection's bounded outbox. It
//! holds no session state (the spec forbids it). This in-memory registry is
//! the embedded default; a shared backend for several instances would offer
//! the same operations.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use axum::extract::ws::Utf8Bytes;
use mpc_protocol::ServerMessage;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;

use crate::metrics::{ErrorKind, Metrics};

/// Unique per connection, so a stale connection never unregisters a newer
/// holder of the same peer id.
pub type ConnId = u64;

/// The sending half of one connection: its bounded outbox and the token
/// that disconnects it.
#[derive(Clone)]
pub struct Handle {
    pub conn: ConnId,
    pub outbox: mpsc::Sender<Utf8Bytes>,
    pub kick: CancellationToken,
}

impl Handle {
    /// Queues a message; a full outbox means the reader is too slow, and
    /// it is disconnected rather than buffered without bound.
    fn push(&self, text: Utf8Bytes, metrics: &Metrics) -> Delivery {
        match self.outbox.try_send(text) {
            Ok(()) => Delivery::Queued,
            Err(TrySendError::Full(_)) => {
                if !self.kick.is_cancelled() {
                    metrics.error(ErrorKind::SlowConsumer);
                    self.kick.cancel();
                }
                Delivery::TooSlow
            }
            Err(TrySendError::Closed(_)) => Delivery::Gone,
        }
    }
}

/// What happened to a message handed to the registry.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Queued,
    /// The recipient's outbox was full; it has been disconnected.
    TooSlow,
    /// No such peer (or it is disconnecting).
    Gone,
}

#[derive(Default)]
struct Inner {
    // BTreeMap keeps `list_peers` sorted without a sort per request.
    peers: BTreeMap<Box<str>, Handle>,
    watchers: HashMap<ConnId, Handle>,
}

/// The in-memory registry.
#[derive(Default)]
pub struct Registry {
    inner: RwLock<Inner>,
}

impl Registry {
    /// Claims `peer_id` for `handle`. Returns false if a live connection
    /// holds it already (the holder keeps it).
    pub fn register(&self, peer_id: &str, handle: Handle, metrics: &Metrics) -> bool {
        let mut inner = self.inner.write().expect("registry lock");
        if inner.peers.contains_key(peer_id) {
            return false;
        }
        inner.peers.insert(peer_id.into(), handle);
        let note = push_text(&ServerMessage::PeerJoined {
            peer_id: peer_id.to_string(),
        });
        for w in inner.watchers.values() {
            w.push(note.clone(), metrics);
        }
        true
    }

    /// Frees `peer_id` if `conn` still holds it, and tells the watchers.
    pub fn unregister(&self, peer_id: &str, conn: ConnId, metrics: &Metrics) {
        let mut inner = self.inner.write().expect("registry lock");
        inner.watchers.remove(&conn);
        if inner.peers.get(peer_id).map(|h| h.conn) != Some(conn) {
            return;
        }
        inner.peers.remove(peer_id);
        let note = push_text(&ServerMessage::PeerLeft {
            peer_id: peer_id.to_string(),
        });
        for w in inner.watchers.values() {
            w.push(note.clone(), metrics);
        }
    }

    /// The sorted list of registered ids, serialized as a `peers` message.
    /// With `watch`, `handle` also receives every later join and leave; the
    /// list and the subscription are taken under one lock so none is missed.
    pub fn list(&self, watch: Option<Handle>) -> Utf8Bytes {
        let render = |inner: &Inner| {
            let mut out = String::with_capacity(24 + inner.peers.len() * 12);
            out.push_str(r#"{"type":"peers","peers":["#);
            for (i, id) in inner.peers.keys().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                // Peer ids are validated to [A-Za-z0-9._-]: nothing to escape.
                out.push('"');
                out.push_str(id);
                out.push('"');
            }
            out.push_str("]}");
            Utf8Bytes::from(out)
        };
        match watch {
            None => render(&self.inner.read().expect("registry lock")),
            Some(h) => {
                let mut inner = self.inner.write().expect("registry lock");
                let text = render(&inner);
                inner.watchers.insert(h.conn, h);
                text
            }
        }
    }

    /// Queues `text` for `to`.
    pub fn deliver(&self, to: &str, text: Utf8Bytes, metrics: &Metrics) -> Delivery {
        let inner = self.inner.read().expect("registry lock");
        match inner.peers.get(to) {
            Some(h) => h.push(text, metrics),
            None => Delivery::Gone,
        }
    }

    pub fn len(&self) -> usize {
        self.inner.read().expect("registry lock").peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Serializes a server message for a WebSocket text frame.
pub fn push_text(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(msg.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(conn: ConnId, cap: usize) -> (Handle, mpsc::Receiver<Utf8Bytes>) {
        let (tx, rx) = mpsc::channel(cap);
        (
            Handle {
                conn,
                outbox: tx,
                kick: CancellationToken::new(),
            },
            rx,
        )
    }

    #[test]
    fn list_is_sorted_json_the_protocol_crate_reads() {
        let r = Registry::default();
        let m = Metrics::default();
        for (i, id) in ["cli2", "chrome1", "cli1"].iter().enumerate() {
            assert!(r.register(id, handle(i as u64, 4).0, &m));
        }
        let text = r.list(None);
        assert_eq!(
            ServerMessage::from_json(&text).unwrap(),
            ServerMessage::Peers {
                peers: vec!["chrome1".into(), "cli1".into(), "cli2".into()]
            }
        );
        assert_eq!(
            ServerMessage::from_json(&Registry::default().list(None)).unwrap(),
            ServerMessage::Peers { peers: vec![] }
        );
    }

    #[test]
    fn stale_connection_cannot_unregister_new_holder() {
        let r = Registry::default();
        let m = Metrics::default();
        assert!(r.register("a", handle(1, 4).0, &m));
        assert!(!r.register("a", handle(2, 4).0, &m));
        r.unregister("a", 2, &m);
        assert_eq!(r.len(), 1);
        r.unregister("a", 1, &m);
        assert!(r.is_empty());
    }

    #[test]
    fn full_outbox_kicks_the_reader() {
        let r = Registry::default();
        let m = Metrics::default();
        let (h, _rx) = handle(1, 1);
        let kick = h.kick.clone();
        assert!(r.register("slow", h, &m));
        assert_eq!(r.deliver("slow", "1".into(), &m), Delivery::Queued);
        assert_eq!(r.deliver("slow", "2".into(), &m), Delivery::TooSlow);
        assert!(kick.is_cancelled());
        assert_eq!(m.errors(ErrorKind::SlowConsumer), 1);
        assert_eq!(r.deliver("nobody", "3".into(), &m), Delivery::Gone);
    }
}
