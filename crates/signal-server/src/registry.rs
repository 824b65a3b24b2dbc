//! Who is registered, and how to reach them: the server's only state.
//!
//! The registry maps each peer id to its connection's bounded outbox, and
//! each peer id registered with an identity key to that key (for a while
//! after its holder leaves, so nobody else can take the id over). It holds
//! no session state (the spec forbids it). This in-memory registry is
//! the embedded default. In a cluster ([`crate::cluster`]) Redis holds the
//! shared view and this registry only the instance's own connections
//! (with ids held [pending](Registry::reserve) while Redis decides).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use crate::outbox::{self, TrySendError};
use axum::extract::ws::Utf8Bytes;
use mpc_identity::PublicKey;
use mpc_protocol::ServerMessage;
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
    pub outbox: outbox::Sender,
    pub kick: CancellationToken,
}

impl Handle {
    /// Queues a message; a full outbox means the reader is too slow, and
    /// it is disconnected rather than buffered without bound.
    fn push(&self, text: Utf8Bytes, metrics: &Metrics) -> Delivery {
        match self.outbox.try_send(text) {
            Ok(()) => Delivery::Queued,
            Err(TrySendError::Full) => {
                if !self.kick.is_cancelled() {
                    metrics.error(ErrorKind::SlowConsumer);
                    self.kick.cancel();
                }
                Delivery::TooSlow
            }
            Err(TrySendError::Closed) => Delivery::Gone,
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

/// An identity key as its 32 encoded bytes: compact (a parsed key holds
/// its decompressed point too), and equal exactly when the keys are.
type KeyBytes = [u8; 32];

/// A registered peer: how to reach it, and the identity key it proved.
struct Peer {
    handle: Handle,
    key: Option<KeyBytes>,
    /// Reserved by a cluster instance while Redis decides: only relays
    /// Redis routed here reach it (see [`Registry::reserve`]).
    pending: bool,
}

/// A peer id bound to the identity key that registered it.
struct Binding {
    key: KeyBytes,
    /// `None` while a connection holds the id; once the holder leaves, the
    /// binding's expiry and its slot in [`Inner::released`].
    released: Option<ReleaseSlot>,
}

/// (expiry, sequence number): orders released bindings by expiry, ties
/// broken by release order.
type ReleaseSlot = (Instant, u64);

#[derive(Default)]
struct Inner {
    // BTreeMap keeps `list_peers` sorted without a sort per request.
    peers: BTreeMap<Box<str>, Peer>,
    watchers: HashMap<ConnId, Handle>,
    /// Every live key binding: held (the id is registered with its key) or
    /// released and not yet expired (or not yet swept).
    bindings: HashMap<Box<str>, Binding>,
    /// The released bindings, soonest expiry first: the sweep pops expired
    /// ones from the front, and when there are too many the front one is
    /// evicted early.
    released: BTreeMap<ReleaseSlot, Box<str>>,
    next_release: u64,
}

impl Inner {
    /// Drops every released binding that has expired by `now`. Each
    /// binding is popped once, so the cost is amortized over the releases.
    fn sweep(&mut self, now: Instant) {
        while let Some(entry) = self.released.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let id = entry.remove();
            self.bindings.remove(&id);
        }
    }
}

/// Why a `register` was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A live connection holds the id.
    Taken,
    /// The id is bound to another identity key.
    BoundToOtherKey,
    /// The id is bound to an identity key and the register was unsigned.
    BoundNeedsSignature,
}

/// The in-memory registry.
///
/// Key bindings: a peer id registered with an identity key stays bound to
/// that key while its holder is connected, and for `key_binding` after it
/// leaves; meanwhile only the same key may register the id (which renews
/// the binding). Expired bindings are swept lazily, under the lock every
/// `register` and disconnect takes anyway; at most `max_released` bindings
/// of departed holders are kept (past that the soonest-expiring goes first).
pub struct Registry {
    inner: RwLock<Inner>,
    key_binding: Duration,
    max_released: usize,
}

impl Default for Registry {
    fn default() -> Self {
        let c = crate::Config::default();
        Registry::new(c.key_binding, c.max_key_bindings)
    }
}

/// Longer bindings are kept for this long (avoids `Instant` overflow).
const MAX_KEY_BINDING: Duration = Duration::from_secs(100 * 365 * 86_400);

impl Registry {
    pub fn new(key_binding: Duration, max_released: usize) -> Self {
        Registry {
            inner: RwLock::default(),
            key_binding: key_binding.min(MAX_KEY_BINDING),
            max_released,
        }
    }

    /// Claims `peer_id` for `handle`. `key` is the identity key the
    /// connection proved (its signature is already checked), if any.
    /// Refused if a live connection holds the id (the holder keeps it) or
    /// if the id is bound to another key.
    pub fn register(
        &self,
        peer_id: &str,
        handle: Handle,
        key: Option<PublicKey>,
        metrics: &Metrics,
    ) -> Result<(), Refusal> {
        self.register_at(peer_id, handle, key, Some(metrics), Instant::now())
    }

    /// [`Registry::register`], pending: a cluster instance holds the id
    /// locally while Redis decides, then calls [`Registry::confirm`] or
    /// [`Registry::unreserve`]. Meanwhile the watchers hear nothing, and
    /// only [`Registry::deliver_routed`] reaches it: a relay Redis routed
    /// here was sent after the claim succeeded, but a local sender's relay
    /// might be meant for another instance's holder of the same id.
    pub fn reserve(
        &self,
        peer_id: &str,
        handle: Handle,
        key: Option<PublicKey>,
    ) -> Result<(), Refusal> {
        self.register_at(peer_id, handle, key, None, Instant::now())
    }

    /// Completes a [`Registry::reserve`] the cluster agreed to, and tells
    /// the watchers that `peer_id` joined.
    pub fn confirm(&self, peer_id: &str, conn: ConnId, metrics: &Metrics) {
        let mut inner = self.inner.write().expect("registry lock");
        let Some(p) = inner
            .peers
            .get_mut(peer_id)
            .filter(|p| p.handle.conn == conn)
        else {
            return;
        };
        p.pending = false;
        let note = push_text(&ServerMessage::PeerJoined {
            peer_id: peer_id.to_string(),
            pubkey: p.key.map(hex::encode),
        });
        for w in inner.watchers.values() {
            w.push(note.clone(), metrics);
        }
    }

    /// Undoes a [`Registry::reserve`] that the cluster refused, silently.
    pub fn unreserve(&self, peer_id: &str, conn: ConnId, metrics: &Metrics) {
        self.remove_at(peer_id, conn, metrics, Instant::now());
    }

    /// With `announce` (the metrics to count in), the watchers hear of the
    /// join under the same lock, so a watcher subscribing meanwhile sees
    /// the id exactly once: in its list or as a join.
    fn register_at(
        &self,
        peer_id: &str,
        handle: Handle,
        key: Option<PublicKey>,
        announce: Option<&Metrics>,
        now: Instant,
    ) -> Result<(), Refusal> {
        let mut guard = self.inner.write().expect("registry lock");
        let inner = &mut *guard;
        let key = key.map(|k| k.to_bytes());
        inner.sweep(now);
        if inner.peers.contains_key(peer_id) {
            return Err(Refusal::Taken);
        }
        // After the sweep, any binding left is alive.
        if let Some(b) = inner.bindings.get_mut(peer_id) {
            match key {
                Some(k) if k == b.key => {
                    if let Some(slot) = b.released.take() {
                        inner.released.remove(&slot);
                    }
                }
                Some(_) => return Err(Refusal::BoundToOtherKey),
                None => return Err(Refusal::BoundNeedsSignature),
            }
        } else if let Some(k) = key {
            inner.bindings.insert(
                peer_id.into(),
                Binding {
                    key: k,
                    released: None,
                },
            );
        }
        let pending = announce.is_none();
        inner.peers.insert(
            peer_id.into(),
            Peer {
                handle,
                key,
                pending,
            },
        );
        if let Some(metrics) = announce {
            let note = push_text(&ServerMessage::PeerJoined {
                peer_id: peer_id.to_string(),
                pubkey: key.map(hex::encode),
            });
            for w in inner.watchers.values() {
                w.push(note.clone(), metrics);
            }
        }
        Ok(())
    }

    /// Frees `peer_id` if `conn` still holds it, starts its key binding's
    /// countdown, and tells the watchers.
    pub fn unregister(&self, peer_id: &str, conn: ConnId, metrics: &Metrics) {
        self.unregister_at(peer_id, conn, metrics, Instant::now())
    }

    fn unregister_at(&self, peer_id: &str, conn: ConnId, metrics: &Metrics, now: Instant) {
        if self.remove_at(peer_id, conn, metrics, now) {
            let note = push_text(&ServerMessage::PeerLeft {
                peer_id: peer_id.to_string(),
            });
            self.notify_watchers(note, metrics);
        }
    }

    /// Removes `conn`'s hold on `peer_id` (and its watch); true if it held it.
    fn remove_at(&self, peer_id: &str, conn: ConnId, metrics: &Metrics, now: Instant) -> bool {
        let mut guard = self.inner.write().expect("registry lock");
        let inner = &mut *guard;
        inner.watchers.remove(&conn);
        if inner.peers.get(peer_id).map(|p| p.handle.conn) != Some(conn) {
            return false;
        }
        let Some((id, peer)) = inner.peers.remove_entry(peer_id) else {
            return false;
        };
        inner.sweep(now);
        if peer.key.is_some() {
            if self.key_binding.is_zero() {
                inner.bindings.remove(peer_id);
            } else if let Some(b) = inner.bindings.get_mut(peer_id) {
                let slot = (now + self.key_binding, inner.next_release);
                inner.next_release += 1;
                b.released = Some(slot);
                inner.released.insert(slot, id);
                while inner.released.len() > self.max_released {
                    let Some((_, old)) = inner.released.pop_first() else {
                        break;
                    };
                    inner.bindings.remove(&old);
                    metrics.key_bindings_evicted.fetch_add(1, Relaxed);
                }
            }
        }
        true
    }

    /// The sorted list of registered ids, serialized as a `peers` message;
    /// with `keys`, also the identity key of each that registered with one.
    /// With `watch`, `handle` also receives every later join and leave; the
    /// list and the subscription are taken under one lock so none is missed.
    pub fn list(&self, watch: Option<Handle>, keys: bool) -> Utf8Bytes {
        let render = |inner: &Inner| {
            render_peers(
                inner.peers.keys().map(|id| &**id),
                keys.then(|| {
                    inner
                        .peers
                        .iter()
                        .filter_map(|(id, p)| p.key.map(|k| (&**id, hex::encode(k))))
                }),
            )
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

    /// Subscribes `handle` to later joins and leaves (the cluster lists
    /// the peers itself).
    pub fn watch(&self, handle: Handle) {
        let mut inner = self.inner.write().expect("registry lock");
        inner.watchers.insert(handle.conn, handle);
    }

    /// Pushes a `peer_joined` or `peer_left` from another instance to this
    /// instance's watchers.
    pub fn notify_watchers(&self, note: Utf8Bytes, metrics: &Metrics) {
        let inner = self.inner.read().expect("registry lock");
        for w in inner.watchers.values() {
            w.push(note.clone(), metrics);
        }
    }

    /// Disconnects every registered connection (they may register again).
    pub fn kick_all(&self) {
        let inner = self.inner.read().expect("registry lock");
        for p in inner.peers.values() {
            p.handle.kick.cancel();
        }
    }

    /// Queues `text` for `to`.
    pub fn deliver(&self, to: &str, text: Utf8Bytes, metrics: &Metrics) -> Delivery {
        self.deliver_to(to, text, metrics, false)
    }

    /// Queues `text` for `to`, also if its registration is pending: for a
    /// relay another cluster instance sent here on Redis's word.
    pub fn deliver_routed(&self, to: &str, text: Utf8Bytes, metrics: &Metrics) -> Delivery {
        self.deliver_to(to, text, metrics, true)
    }

    fn deliver_to(&self, to: &str, text: Utf8Bytes, metrics: &Metrics, pending: bool) -> Delivery {
        let inner = self.inner.read().expect("registry lock");
        match inner.peers.get(to) {
            Some(p) if pending || !p.pending => p.handle.push(text, metrics),
            _ => Delivery::Gone,
        }
    }

    pub fn len(&self) -> usize {
        self.inner.read().expect("registry lock").peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live key bindings: held ones, and released ones not yet expired.
    pub fn key_bindings(&self) -> usize {
        let inner = self.inner.read().expect("registry lock");
        let expired = inner.released.range(..=(Instant::now(), u64::MAX)).count();
        inner.bindings.len() - expired
    }
}

/// A `peers` message: `ids` in order, and with `keyed`, the `keys` map of
/// those that registered with an identity key (hex). Written by hand:
/// with 10k peers, this is most of a `list_peers`'s cost.
pub fn render_peers<'a, K: AsRef<str>>(
    ids: impl ExactSizeIterator<Item = &'a str>,
    keyed: Option<impl Iterator<Item = (&'a str, K)>>,
) -> Utf8Bytes {
    let per_peer = if keyed.is_some() { 80 } else { 12 };
    let mut out = String::with_capacity(32 + ids.len() * per_peer);
    out.push_str(r#"{"type":"peers","peers":["#);
    for (i, id) in ids.enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Peer ids are validated to [A-Za-z0-9._-]: nothing to escape.
        out.push('"');
        out.push_str(id);
        out.push('"');
    }
    out.push(']');
    if let Some(keyed) = keyed {
        out.push_str(r#","keys":{"#);
        for (i, (id, key)) in keyed.enumerate() {
            if i > 0 {
                out.push(',');
            }
            // Hex: nothing to escape either.
            out.push('"');
            out.push_str(id);
            out.push_str(r#"":""#);
            out.push_str(key.as_ref());
            out.push('"');
        }
        out.push('}');
    }
    out.push('}');
    Utf8Bytes::from(out)
}

/// Serializes a server message for a WebSocket text frame.
pub fn push_text(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(msg.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(conn: ConnId, cap: usize) -> (Handle, outbox::Receiver) {
        let (tx, rx) = outbox::channel(cap);
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
            assert!(r.register(id, handle(i as u64, 4).0, None, &m).is_ok());
        }
        let text = r.list(None, false);
        assert_eq!(
            ServerMessage::from_json(&text).unwrap(),
            ServerMessage::Peers {
                peers: vec!["chrome1".into(), "cli1".into(), "cli2".into()],
                keys: None
            }
        );
        assert_eq!(
            ServerMessage::from_json(&Registry::default().list(None, false)).unwrap(),
            ServerMessage::Peers {
                peers: vec![],
                keys: None
            }
        );
        assert_eq!(
            &*Registry::default().list(None, true),
            r#"{"type":"peers","peers":[],"keys":{}}"#
        );
    }

    #[test]
    fn stale_connection_cannot_unregister_new_holder() {
        let r = Registry::default();
        let m = Metrics::default();
        assert!(r.register("a", handle(1, 4).0, None, &m).is_ok());
        assert_eq!(
            r.register("a", handle(2, 4).0, None, &m),
            Err(Refusal::Taken)
        );
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
        assert!(r.register("slow", h, None, &m).is_ok());
        assert_eq!(r.deliver("slow", "1".into(), &m), Delivery::Queued);
        assert_eq!(r.deliver("slow", "2".into(), &m), Delivery::TooSlow);
        assert!(kick.is_cancelled());
        assert_eq!(m.errors(ErrorKind::SlowConsumer), 1);
        assert_eq!(r.deliver("nobody", "3".into(), &m), Delivery::Gone);
    }

    fn key(seed: u8) -> PublicKey {
        mpc_identity::IdentityKey::from_seed([seed; 32]).public_key()
    }

    #[test]
    fn keys_are_listed_in_the_serde_shape() {
        let r = Registry::default();
        let m = Metrics::default();
        r.register("b", handle(1, 4).0, Some(key(1)), &m).unwrap();
        r.register("a", handle(2, 4).0, None, &m).unwrap();
        r.register("c", handle(3, 4).0, Some(key(2)), &m).unwrap();
        let text = r.list(None, true);
        let expected = ServerMessage::Peers {
            peers: vec!["a".into(), "b".into(), "c".into()],
            keys: Some(
                [("b", key(1)), ("c", key(2))]
                    .into_iter()
                    .map(|(id, k)| (id.to_string(), k.to_hex()))
                    .collect(),
            ),
        };
        assert_eq!(ServerMessage::from_json(&text).unwrap(), expected);
        // Byte for byte what serde would write.
        assert_eq!(&*text, expected.to_json());
        assert_eq!(r.key_bindings(), 2);
    }

    #[test]
    fn binding_outlives_the_holder_until_it_expires() {
        let r = Registry::new(Duration::from_secs(60), 10);
        let m = Metrics::default();
        let t0 = Instant::now();
        let (k1, k2) = (key(1), key(2));
        r.register_at("x", handle(1, 4).0, Some(k1), Some(&m), t0)
            .unwrap();
        assert_eq!(
            r.register_at("x", handle(2, 4).0, Some(k2), Some(&m), t0),
            Err(Refusal::Taken)
        );
        r.unregister_at("x", 1, &m, t0);
        assert!(r.is_empty());
        let t1 = t0 + Duration::from_secs(59);
        assert_eq!(
            r.register_at("x", handle(3, 4).0, Some(k2), Some(&m), t1),
            Err(Refusal::BoundToOtherKey)
        );
        assert_eq!(
            r.register_at("x", handle(4, 4).0, None, Some(&m), t1),
            Err(Refusal::BoundNeedsSignature)
        );
        // The same key comes back: held again, the countdown stops.
        r.register_at("x", handle(5, 4).0, Some(k1), Some(&m), t1)
            .unwrap();
        let t2 = t0 + Duration::from_secs(1000);
        r.register_at("y", handle(6, 4).0, None, Some(&m), t2)
            .unwrap();
        assert_eq!(r.key_bindings(), 1);
        r.unregister_at("x", 5, &m, t2);
        assert_eq!(
            r.register_at(
                "x",
                handle(7, 4).0,
                Some(k2),
                Some(&m),
                t2 + Duration::from_secs(59)
            ),
            Err(Refusal::BoundToOtherKey)
        );
        // Expired: anyone may take the id, signed or not.
        let t3 = t2 + Duration::from_secs(60);
        r.register_at("x", handle(8, 4).0, None, Some(&m), t3)
            .unwrap();
        r.unregister_at("x", 8, &m, t3);
        r.register_at("x", handle(9, 4).0, Some(k2), Some(&m), t3)
            .unwrap();
        assert_eq!(r.inner.read().unwrap().released.len(), 0);
    }

    #[test]
    fn released_bindings_are_swept_and_capped() {
        let r = Registry::new(Duration::from_secs(10), 3);
        let m = Metrics::default();
        let t0 = Instant::now();
        for i in 0..5u8 {
            let id = format!("p{i}");
            let t = t0 + Duration::from_secs(i.into());
            r.register_at(&id, handle(i.into(), 4).0, Some(key(i)), Some(&m), t)
                .unwrap();
            r.unregister_at(&id, i.into(), &m, t);
        }
        // Five released, three kept: the two closest to expiry went early.
        assert_eq!(m.key_bindings_evicted.load(Relaxed), 2);
        {
            let inner = r.inner.read().unwrap();
            assert_eq!(inner.bindings.len(), 3);
            assert_eq!(inner.released.len(), 3);
            assert!(!inner.bindings.contains_key("p0"));
            assert!(!inner.bindings.contains_key("p1"));
        }
        r.register_at("p0", handle(10, 4).0, Some(key(9)), Some(&m), t0)
            .unwrap();
        // p2 released at t0+2 expires at t0+12; the next register sweeps it.
        let later = t0 + Duration::from_secs(12);
        r.register_at("q", handle(11, 4).0, None, Some(&m), later)
            .unwrap();
        let inner = r.inner.read().unwrap();
        assert!(!inner.bindings.contains_key("p2"));
        assert_eq!(inner.released.len(), 2);
        assert_eq!(inner.bindings.len(), 3); // p0 (held), p3, p4
    }

    #[test]
    fn zero_binding_time_ends_with_the_connection() {
        let r = Registry::new(Duration::ZERO, 10);
        let m = Metrics::default();
        r.register("x", handle(1, 4).0, Some(key(1)), &m).unwrap();
        r.unregister("x", 1, &m);
        r.register("x", handle(2, 4).0, Some(key(2)), &m).unwrap();
        assert_eq!(r.key_bindings(), 1);
    }

    #[test]
    fn watchers_hear_the_joiners_key() {
        let r = Registry::default();
        let m = Metrics::default();
        let (w, mut rx) = handle(1, 4);
        r.register("w", w.clone(), None, &m).unwrap();
        r.list(Some(w), false);
        r.register("k", handle(2, 4).0, Some(key(1)), &m).unwrap();
        assert_eq!(
            ServerMessage::from_json(&rx.try_recv().unwrap()).unwrap(),
            ServerMessage::PeerJoined {
                peer_id: "k".into(),
                pubkey: Some(key(1).to_hex())
            }
        );
    }

    #[test]
    fn a_reserved_id_is_reached_only_by_routed_relays_until_confirmed() {
        let r = Registry::default();
        let m = Metrics::default();
        let (w, mut watcher) = handle(1, 8);
        r.register("w", w.clone(), None, &m).unwrap();
        r.list(Some(w), false);
        let (h, mut rx) = handle(2, 8);
        r.reserve("x", h, Some(key(3))).unwrap();
        // A local sender's relay might be for another instance's "x".
        assert_eq!(r.deliver("x", "local".into(), &m), Delivery::Gone);
        assert_eq!(r.deliver_routed("x", "routed".into(), &m), Delivery::Queued);
        assert_eq!(rx.try_recv().as_deref(), Some("routed"));
        assert!(
            watcher.try_recv().is_none(),
            "announced before Redis agreed"
        );
        r.confirm("x", 2, &m);
        assert_eq!(
            ServerMessage::from_json(&watcher.try_recv().unwrap()).unwrap(),
            ServerMessage::PeerJoined {
                peer_id: "x".into(),
                pubkey: Some(key(3).to_hex())
            }
        );
        assert_eq!(r.deliver("x", "now".into(), &m), Delivery::Queued);
        // A refused reservation goes without a word.
        r.reserve("y", handle(3, 8).0, None).unwrap();
        r.unreserve("y", 3, &m);
        assert_eq!(r.deliver_routed("y", "gone".into(), &m), Delivery::Gone);
        assert!(watcher.try_recv().is_none());
    }
}
