//! Who is registered, and how to reach them: the server's only state.
//!
//! The registry maps each peer id to its connection's bounded outbox, and
//! each peer id registered with an identity key to that key (for a while
//! after its holder leaves, so nobody else can take the id over). It holds
//! no session state (the spec forbids it). This in-memory registry is
//! the embedded default. In a cluster ([`crate::cluster`]) Redis holds the
//! shared view and this registry only the instance's own connections
//! (with ids held [pending](Registry::reserve) while Redis decides).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
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
    /// Queues a relay; a full outbox means the reader is behind, and the
    /// relay is dropped (the sender is told). The reader stays connected:
    /// only one that reads nothing at all is dropped, by its own task
    /// (`Config::stall_timeout`).
    fn push(&self, text: Utf8Bytes, metrics: &Metrics) -> Delivery {
        match self.outbox.try_send(text) {
            Ok(()) => Delivery::Queued,
            Err(TrySendError::Full) => {
                metrics.error(ErrorKind::RecipientBusy);
                Delivery::Busy
            }
            Err(TrySendError::Closed) => Delivery::Gone,
        }
    }
}

/// Room a watcher's outbox keeps for presence notes beyond its cap, so a
/// queue full of relays does not cost it joins and leaves.
const PRESENCE_RESERVE: usize = 64 * 1024;

/// Tells every watcher `note`. A watcher whose outbox has no room even in
/// the presence reserve is unsubscribed and told so (one error, queued
/// regardless of the cap), rather than left with a list silently wrong.
fn announce(watchers: &mut HashMap<ConnId, Handle>, note: &Utf8Bytes, metrics: &Metrics) {
    let mut lost = Vec::new();
    for (conn, w) in watchers.iter() {
        if let Err(TrySendError::Full) = w.outbox.try_send_beyond(note.clone(), PRESENCE_RESERVE) {
            lost.push(*conn);
        }
    }
    for conn in lost {
        if let Some(w) = watchers.remove(&conn) {
            metrics.error(ErrorKind::PresenceDropped);
            let text = push_text(&ServerMessage::error(PRESENCE_STOPPED));
            let _ = w.outbox.try_send_beyond(text, usize::MAX);
        }
    }
}

/// The error a watcher gets when its presence push stops.
pub const PRESENCE_STOPPED: &str = "presence push stopped: this connection fell too far behind; send list_peers with watch to resume";

/// What happened to a message handed to the registry.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Queued,
    /// The recipient's outbox was full: the message was dropped, and the
    /// recipient stays connected.
    Busy,
    /// No such peer (or it is disconnecting).
    Gone,
}

impl Delivery {
    /// The `error` text a sender gets for an undelivered relay to `to`.
    pub fn message(&self, to: &str) -> Option<String> {
        match self {
            Delivery::Queued => None,
            Delivery::Busy => Some(format!(
                "peer \"{to}\" is busy (not reading fast enough); message dropped, try again later"
            )),
            Delivery::Gone => Some(format!("unknown peer \"{to}\"")),
        }
    }
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
    /// A signed `register` would bind a new id, and the server holds as
    /// many bindings as it keeps (`--max-key-bindings`).
    BindingsFull,
    /// A signed `register` would bind a new id, and this source address
    /// bound as many new ids as it may this minute.
    BindingRateLimited,
}

impl Refusal {
    /// The `error` text the client gets.
    pub fn message(&self, peer_id: &str) -> String {
        match self {
            Refusal::Taken => "peer_id taken".into(),
            Refusal::BoundToOtherKey => {
                format!("peer_id {peer_id} is bound to another identity key")
            }
            Refusal::BoundNeedsSignature => {
                format!("peer_id {peer_id} is bound to an identity key; register with a signature")
            }
            Refusal::BindingsFull => format!(
                "register: peer_id {peer_id} cannot be bound to a key now: the server holds as many key bindings as it keeps; try again later"
            ),
            Refusal::BindingRateLimited => format!(
                "register: peer_id {peer_id} cannot be bound to a key now: too many new key bindings from this address; try again in a minute"
            ),
        }
    }
}

/// What a `list_peers` asks for.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    /// Each listed peer's identity key too.
    pub keys: bool,
    /// Only these (the ones online).
    pub ids: Option<Vec<String>>,
    /// Without `ids`: the page after this id.
    pub after: Option<String>,
}

/// The most peers one page of the full list holds (also within the frame
/// limit).
pub const PAGE_MAX_PEERS: usize = 1000;

/// A `peers` message's fixed part: `{"type":"peers","peers":[` `]`
/// `,"keys":{` `}` `,"next":"` + the longest id + `"` `}`.
const PAGE_FIXED: usize = 26 + 1 + 9 + 1 + 9 + mpc_protocol::MAX_PEER_ID_LEN + 1 + 1;

/// The most a listed peer adds: its id in `peers` and, with its key, in
/// `keys` (quotes, colon, commas included).
const PAGE_ENTRY_MAX: usize = (mpc_protocol::MAX_PEER_ID_LEN + 3) * 2 + 64 + 4;

/// The most `ids` one `list_peers` may name with frames of `limit` bytes:
/// [`mpc_protocol::MAX_LIST_IDS`], or fewer if their answer would not fit.
pub fn max_list_ids(limit: usize) -> usize {
    let fit = limit.saturating_sub(PAGE_FIXED) / PAGE_ENTRY_MAX;
    mpc_protocol::MAX_LIST_IDS.min(fit).max(1)
}

/// The in-memory registry.
///
/// Key bindings: a peer id registered with an identity key stays bound to
/// that key while its holder is connected, and for `key_binding` after it
/// leaves; meanwhile only the same key may register the id (which renews
/// the binding). Expired bindings are swept lazily, under the lock every
/// `register` and disconnect takes anyway. At most `max_bindings` are kept,
/// held and released together: when full, a new binding is refused
/// ([`Refusal::BindingsFull`]), and no live binding is ever dropped early.
pub struct Registry {
    inner: RwLock<Inner>,
    key_binding: Duration,
    max_bindings: usize,
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
    pub fn new(key_binding: Duration, max_bindings: usize) -> Self {
        Registry {
            inner: RwLock::default(),
            key_binding: key_binding.min(MAX_KEY_BINDING),
            max_bindings,
        }
    }

    /// Claims `peer_id` for `handle`. `key` is the identity key the
    /// connection proved (its signature is already checked), if any.
    /// Refused if a live connection holds the id (the holder keeps it), if
    /// the id is bound to another key, or if it would need a new binding
    /// and `may_bind` is false or the bindings are full. `Ok(true)`: a new
    /// binding was made.
    pub fn register(
        &self,
        peer_id: &str,
        handle: Handle,
        key: Option<PublicKey>,
        may_bind: bool,
        metrics: &Metrics,
    ) -> Result<bool, Refusal> {
        self.register_at(
            peer_id,
            handle,
            key,
            may_bind,
            Some(metrics),
            Instant::now(),
        )
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
        // Redis decides about bindings; this one holds the held ones only.
        self.register_at(peer_id, handle, key, true, None, Instant::now())
            .map(|_| ())
    }

    /// Completes a [`Registry::reserve`] the cluster agreed to, and tells
    /// the watchers that `peer_id` joined.
    pub fn confirm(&self, peer_id: &str, conn: ConnId, metrics: &Metrics) {
        let mut guard = self.inner.write().expect("registry lock");
        let inner = &mut *guard;
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
        announce(&mut inner.watchers, &note, metrics);
    }

    /// Undoes a [`Registry::reserve`] that the cluster refused, silently.
    pub fn unreserve(&self, peer_id: &str, conn: ConnId) {
        self.remove_at(peer_id, conn, Instant::now());
    }

    /// With `announce` (the metrics to count in), the watchers hear of the
    /// join under the same lock, so a watcher subscribing meanwhile sees
    /// the id exactly once: in its list or as a join.
    fn register_at(
        &self,
        peer_id: &str,
        handle: Handle,
        key: Option<PublicKey>,
        may_bind: bool,
        announce_to: Option<&Metrics>,
        now: Instant,
    ) -> Result<bool, Refusal> {
        let mut guard = self.inner.write().expect("registry lock");
        let inner = &mut *guard;
        let key = key.map(|k| k.to_bytes());
        inner.sweep(now);
        if inner.peers.contains_key(peer_id) {
            return Err(Refusal::Taken);
        }
        // After the sweep, any binding left is alive.
        let mut new_binding = false;
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
            if !may_bind {
                return Err(Refusal::BindingRateLimited);
            }
            if inner.bindings.len() >= self.max_bindings {
                return Err(Refusal::BindingsFull);
            }
            inner.bindings.insert(
                peer_id.into(),
                Binding {
                    key: k,
                    released: None,
                },
            );
            new_binding = true;
        }
        let pending = announce_to.is_none();
        inner.peers.insert(
            peer_id.into(),
            Peer {
                handle,
                key,
                pending,
            },
        );
        if let Some(metrics) = announce_to {
            let note = push_text(&ServerMessage::PeerJoined {
                peer_id: peer_id.to_string(),
                pubkey: key.map(hex::encode),
            });
            announce(&mut inner.watchers, &note, metrics);
        }
        Ok(new_binding)
    }

    /// Frees `peer_id` if `conn` still holds it, starts its key binding's
    /// countdown, and tells the watchers.
    pub fn unregister(&self, peer_id: &str, conn: ConnId, metrics: &Metrics) {
        self.unregister_at(peer_id, conn, metrics, Instant::now())
    }

    fn unregister_at(&self, peer_id: &str, conn: ConnId, metrics: &Metrics, now: Instant) {
        if self.remove_at(peer_id, conn, now) {
            let note = push_text(&ServerMessage::PeerLeft {
                peer_id: peer_id.to_string(),
            });
            self.notify_watchers(note, metrics);
        }
    }

    /// Removes `conn`'s hold on `peer_id` (and its watch); true if it held it.
    fn remove_at(&self, peer_id: &str, conn: ConnId, now: Instant) -> bool {
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
            }
        }
        true
    }

    /// The registered ids `query` asks for, sorted, as a `peers` message
    /// of at most `limit` bytes: those of `query.ids` that are online, or
    /// one page of everyone (after `query.after`; `next` set when more
    /// follow). With `query.keys`, also the identity key of each that
    /// registered with one. With `watch`, `handle` also receives every
    /// later join and leave; the list and the subscription are taken under
    /// one lock so none is missed.
    pub fn list(&self, watch: Option<Handle>, query: &ListQuery, limit: usize) -> Utf8Bytes {
        #[allow(clippy::borrowed_box)] // what the map's iterators yield
        fn entry<'a>((id, p): (&'a Box<str>, &Peer)) -> (&'a str, Option<String>) {
            (id, p.key.map(hex::encode))
        }
        let render = |inner: &Inner| match (&query.ids, &query.after) {
            (Some(ids), _) => {
                let wanted: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
                let found = wanted
                    .into_iter()
                    .filter_map(|id| inner.peers.get_key_value(id).map(entry));
                render_page(found, query.keys, limit, None)
            }
            (None, after) => {
                let from = match after {
                    Some(a) => Bound::Excluded(a.as_str()),
                    None => Bound::Unbounded,
                };
                let page = inner.peers.range::<str, _>((from, Bound::Unbounded));
                render_page(page.map(entry), query.keys, limit, None)
            }
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
        let mut inner = self.inner.write().expect("registry lock");
        announce(&mut inner.watchers, &note, metrics);
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

/// A `peers` message of at most `limit` bytes and [`PAGE_MAX_PEERS`]
/// peers: `entries` (id, hex key) in order, as many as fit, and with
/// `keys`, the `keys` map of those that registered with an identity key.
/// If not every entry fits, `next` is the last one listed; if all do,
/// `next` is `tail` (a cluster's page that may not be the last). Always at
/// least one entry when there is one (`limit` is at least 512, more than
/// [`PAGE_FIXED`] and one [`PAGE_ENTRY_MAX`]). Written by hand: with 10k
/// peers, this is most of a `list_peers`'s cost.
pub fn render_page<'a, K: AsRef<str>>(
    entries: impl IntoIterator<Item = (&'a str, Option<K>)>,
    keys: bool,
    limit: usize,
    tail: Option<&'a str>,
) -> Utf8Bytes {
    let mut ids = String::new();
    let mut keyed = String::new();
    let mut last = None;
    let mut cut = false;
    let budget = limit.saturating_sub(PAGE_FIXED);
    for (count, (id, key)) in entries.into_iter().enumerate() {
        // Peer ids are validated to [A-Za-z0-9._-] and keys are hex:
        // nothing to escape.
        let key = key.filter(|_| keys);
        let cost = id.len() + 3 + key.as_ref().map_or(0, |k| id.len() + k.as_ref().len() + 6);
        if count == PAGE_MAX_PEERS || (count > 0 && ids.len() + keyed.len() + cost > budget) {
            cut = true;
            break;
        }
        if count > 0 {
            ids.push(',');
        }
        ids.push('"');
        ids.push_str(id);
        ids.push('"');
        if let Some(k) = key {
            if !keyed.is_empty() {
                keyed.push(',');
            }
            keyed.push('"');
            keyed.push_str(id);
            keyed.push_str(r#"":""#);
            keyed.push_str(k.as_ref());
            keyed.push('"');
        }
        last = Some(id);
    }
    let next = if cut { last } else { tail };
    let mut out = String::with_capacity(PAGE_FIXED + ids.len() + keyed.len());
    out.push_str(r#"{"type":"peers","peers":["#);
    out.push_str(&ids);
    out.push(']');
    if keys {
        out.push_str(r#","keys":{"#);
        out.push_str(&keyed);
        out.push('}');
    }
    if let Some(next) = next {
        out.push_str(r#","next":""#);
        out.push_str(next);
        out.push('"');
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

    const LIMIT: usize = 64 * 1024;

    fn keyed() -> ListQuery {
        ListQuery {
            keys: true,
            ..ListQuery::default()
        }
    }

    /// A handle whose outbox holds `cap` frames of up to 64 bytes.
    fn handle(conn: ConnId, cap: usize) -> (Handle, outbox::Receiver) {
        let (tx, rx) = outbox::channel(cap * 2 * outbox::FRAME_OVERHEAD);
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
            assert!(r
                .register(id, handle(i as u64, 4).0, None, true, &m)
                .is_ok());
        }
        let text = r.list(None, &ListQuery::default(), LIMIT);
        assert_eq!(
            ServerMessage::from_json(&text).unwrap(),
            ServerMessage::Peers {
                peers: vec!["chrome1".into(), "cli1".into(), "cli2".into()],
                keys: None
            }
        );
        assert_eq!(
            ServerMessage::from_json(&Registry::default().list(None, &ListQuery::default(), LIMIT))
                .unwrap(),
            ServerMessage::Peers {
                peers: vec![],
                keys: None
            }
        );
        assert_eq!(
            &*Registry::default().list(None, &keyed(), LIMIT),
            r#"{"type":"peers","peers":[],"keys":{}}"#
        );
    }

    #[test]
    fn stale_connection_cannot_unregister_new_holder() {
        let r = Registry::default();
        let m = Metrics::default();
        assert!(r.register("a", handle(1, 4).0, None, true, &m).is_ok());
        assert_eq!(
            r.register("a", handle(2, 4).0, None, true, &m),
            Err(Refusal::Taken)
        );
        r.unregister("a", 2, &m);
        assert_eq!(r.len(), 1);
        r.unregister("a", 1, &m);
        assert!(r.is_empty());
    }

    #[test]
    fn a_full_outbox_drops_the_relay_and_keeps_the_reader() {
        let r = Registry::default();
        let m = Metrics::default();
        let (h, mut rx) = handle(1, 1);
        let kick = h.kick.clone();
        assert!(r.register("slow", h, None, true, &m).is_ok());
        assert_eq!(r.deliver("slow", "1".into(), &m), Delivery::Queued);
        assert_eq!(r.deliver("slow", "2".into(), &m), Delivery::Busy);
        assert!(!kick.is_cancelled());
        assert_eq!(m.errors(ErrorKind::RecipientBusy), 1);
        assert_eq!(m.errors(ErrorKind::SlowConsumer), 0);
        // Room again once it reads.
        assert_eq!(rx.try_recv().as_deref(), Some("1"));
        assert_eq!(r.deliver("slow", "3".into(), &m), Delivery::Queued);
        assert_eq!(r.deliver("nobody", "4".into(), &m), Delivery::Gone);
    }

    #[test]
    fn a_watcher_too_far_behind_is_unsubscribed_and_told() {
        let r = Registry::default();
        let m = Metrics::default();
        let (w, mut rx) = handle(1, 1);
        r.register("w", w.clone(), None, true, &m).unwrap();
        r.list(Some(w), &ListQuery::default(), LIMIT);
        // Its outbox is full of relays; presence notes use the reserve.
        let blob: String = "x".repeat(PRESENCE_RESERVE / 2);
        assert_eq!(r.deliver("w", blob.as_str().into(), &m), Delivery::Queued);
        assert_eq!(r.deliver("w", "more".into(), &m), Delivery::Busy);
        let mut joined = 0;
        for i in 0..2000u64 {
            r.register(&format!("p{i}"), handle(10 + i, 1).0, None, true, &m)
                .unwrap();
            if m.errors(ErrorKind::PresenceDropped) == 0 {
                joined += 1;
            }
        }
        assert_eq!(m.errors(ErrorKind::PresenceDropped), 1);
        assert!(joined > 100, "{joined}");
        let mut frames = Vec::new();
        while let Some(f) = rx.try_recv() {
            frames.push(f);
        }
        assert_eq!(frames.len(), 1 + joined + 1);
        assert_eq!(
            ServerMessage::from_json(frames.last().unwrap()).unwrap(),
            ServerMessage::error(PRESENCE_STOPPED)
        );
        // Unsubscribed: no more notes.
        r.register("late", handle(9999, 1).0, None, true, &m)
            .unwrap();
        assert!(rx.try_recv().is_none());
    }

    #[test]
    fn pages_fit_the_limit_and_chain_by_next() {
        let r = Registry::default();
        let m = Metrics::default();
        let ids: Vec<String> = (0..3000).map(|i| format!("{i:0>64}")).collect();
        for (i, id) in ids.iter().enumerate() {
            let k = mpc_identity::IdentityKey::from_seed([(i % 251) as u8; 32]).public_key();
            r.register(id, handle(i as u64, 1).0, Some(k), true, &m)
                .unwrap();
        }
        for (keys, limit) in [(true, 512), (true, LIMIT), (false, LIMIT), (false, 4096)] {
            let mut query = ListQuery {
                keys,
                ..ListQuery::default()
            };
            let mut seen = Vec::new();
            let mut pages = 0;
            loop {
                let text = r.list(None, &query, limit);
                assert!(text.len() <= limit, "{} > {limit}", text.len());
                let page = mpc_protocol::PeersPage::from_json(&text).unwrap();
                assert!(!page.peers.is_empty());
                assert_eq!(
                    page.keys.as_ref().map(|k| k.len()),
                    keys.then_some(page.peers.len())
                );
                // Byte for byte what serde writes.
                assert_eq!(&*text, page.to_json());
                seen.extend(page.peers);
                pages += 1;
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => break,
                }
            }
            assert_eq!(seen, ids, "keys {keys}, limit {limit}");
            assert!(pages >= 3000 / PAGE_MAX_PEERS, "{pages}");
        }
        // A filtered list names only the online ones it asked for.
        let query = ListQuery {
            keys: true,
            ids: Some(vec![
                ids[7].clone(),
                "offline".into(),
                ids[3].clone(),
                ids[7].clone(),
            ]),
            after: None,
        };
        let page = mpc_protocol::PeersPage::from_json(&r.list(None, &query, LIMIT)).unwrap();
        assert_eq!(page.peers, [ids[3].clone(), ids[7].clone()]);
        assert_eq!(page.keys.unwrap().len(), 2);
        assert_eq!(page.next, None);
        let most = max_list_ids(LIMIT);
        assert_eq!(most, mpc_protocol::MAX_LIST_IDS);
        let query = ListQuery {
            keys: true,
            ids: Some(ids[..most].to_vec()),
            after: None,
        };
        let text = r.list(None, &query, LIMIT);
        assert!(text.len() <= LIMIT);
        assert_eq!(
            mpc_protocol::PeersPage::from_json(&text)
                .unwrap()
                .peers
                .len(),
            most
        );
        assert_eq!(max_list_ids(512), 1);
    }

    fn key(seed: u8) -> PublicKey {
        mpc_identity::IdentityKey::from_seed([seed; 32]).public_key()
    }

    #[test]
    fn keys_are_listed_in_the_serde_shape() {
        let r = Registry::default();
        let m = Metrics::default();
        r.register("b", handle(1, 4).0, Some(key(1)), true, &m)
            .unwrap();
        r.register("a", handle(2, 4).0, None, true, &m).unwrap();
        r.register("c", handle(3, 4).0, Some(key(2)), true, &m)
            .unwrap();
        let text = r.list(None, &keyed(), LIMIT);
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
        r.register_at("x", handle(1, 4).0, Some(k1), true, Some(&m), t0)
            .unwrap();
        assert_eq!(
            r.register_at("x", handle(2, 4).0, Some(k2), true, Some(&m), t0),
            Err(Refusal::Taken)
        );
        r.unregister_at("x", 1, &m, t0);
        assert!(r.is_empty());
        let t1 = t0 + Duration::from_secs(59);
        assert_eq!(
            r.register_at("x", handle(3, 4).0, Some(k2), true, Some(&m), t1),
            Err(Refusal::BoundToOtherKey)
        );
        assert_eq!(
            r.register_at("x", handle(4, 4).0, None, true, Some(&m), t1),
            Err(Refusal::BoundNeedsSignature)
        );
        // The same key comes back: held again, the countdown stops.
        r.register_at("x", handle(5, 4).0, Some(k1), true, Some(&m), t1)
            .unwrap();
        let t2 = t0 + Duration::from_secs(1000);
        r.register_at("y", handle(6, 4).0, None, true, Some(&m), t2)
            .unwrap();
        assert_eq!(r.key_bindings(), 1);
        r.unregister_at("x", 5, &m, t2);
        assert_eq!(
            r.register_at(
                "x",
                handle(7, 4).0,
                Some(k2),
                true,
                Some(&m),
                t2 + Duration::from_secs(59)
            ),
            Err(Refusal::BoundToOtherKey)
        );
        // Expired: anyone may take the id, signed or not.
        let t3 = t2 + Duration::from_secs(60);
        r.register_at("x", handle(8, 4).0, None, true, Some(&m), t3)
            .unwrap();
        r.unregister_at("x", 8, &m, t3);
        r.register_at("x", handle(9, 4).0, Some(k2), true, Some(&m), t3)
            .unwrap();
        assert_eq!(r.inner.read().unwrap().released.len(), 0);
    }

    #[test]
    fn full_bindings_refuse_new_ones_and_keep_every_live_one() {
        let r = Registry::new(Duration::from_secs(10), 3);
        let m = Metrics::default();
        let t0 = Instant::now();
        for i in 0..3u8 {
            let id = format!("p{i}");
            let t = t0 + Duration::from_secs(i.into());
            r.register_at(&id, handle(i.into(), 4).0, Some(key(i)), true, Some(&m), t)
                .unwrap();
            r.unregister_at(&id, i.into(), &m, t);
        }
        // Full: a new binding is refused, every live one stays.
        let t = t0 + Duration::from_secs(3);
        assert_eq!(
            r.register_at("p3", handle(3, 4).0, Some(key(3)), true, Some(&m), t),
            Err(Refusal::BindingsFull)
        );
        assert_eq!(
            r.register_at("p0", handle(4, 4).0, Some(key(9)), true, Some(&m), t),
            Err(Refusal::BoundToOtherKey)
        );
        // Unsigned registrations of free ids, and renewals, still work.
        r.register_at("q", handle(5, 4).0, None, true, Some(&m), t)
            .unwrap();
        assert_eq!(
            r.register_at("p1", handle(6, 4).0, Some(key(1)), false, Some(&m), t),
            Ok(false)
        );
        // Without a token, no new binding even with room.
        let r2 = Registry::new(Duration::from_secs(10), 3);
        assert_eq!(
            r2.register_at("n", handle(7, 4).0, Some(key(1)), false, Some(&m), t),
            Err(Refusal::BindingRateLimited)
        );
        // p0 released at t0 expires at t0+10; the next register sweeps it
        // and makes room.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            r.register_at("p3", handle(8, 4).0, Some(key(3)), true, Some(&m), later),
            Ok(true)
        );
        let inner = r.inner.read().unwrap();
        assert!(!inner.bindings.contains_key("p0"));
        assert_eq!(inner.bindings.len(), 3); // p1 (held), p2, p3 (held)
    }

    #[test]
    fn zero_binding_time_ends_with_the_connection() {
        let r = Registry::new(Duration::ZERO, 10);
        let m = Metrics::default();
        r.register("x", handle(1, 4).0, Some(key(1)), true, &m)
            .unwrap();
        r.unregister("x", 1, &m);
        r.register("x", handle(2, 4).0, Some(key(2)), true, &m)
            .unwrap();
        assert_eq!(r.key_bindings(), 1);
    }

    #[test]
    fn watchers_hear_the_joiners_key() {
        let r = Registry::default();
        let m = Metrics::default();
        let (w, mut rx) = handle(1, 4);
        r.register("w", w.clone(), None, true, &m).unwrap();
        r.list(Some(w), &ListQuery::default(), LIMIT);
        r.register("k", handle(2, 4).0, Some(key(1)), true, &m)
            .unwrap();
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
        r.register("w", w.clone(), None, true, &m).unwrap();
        r.list(Some(w), &ListQuery::default(), LIMIT);
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
        r.unreserve("y", 3);
        assert_eq!(r.deliver_routed("y", "gone".into(), &m), Delivery::Gone);
        assert!(watcher.try_recv().is_none());
    }
}
