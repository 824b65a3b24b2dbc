//! The simulated network: the event queue and clock, the one seeded RNG
//! every random choice draws from, node addresses, the relay's delays,
//! duplication and loss, FIFO data-channel links, the fake WebRTC
//! (offer/answer, then `ChannelOpen` at both ends), the traffic [`Stats`]
//! and the message [`Log`]. Also `mallory`'s noise ([`garbage`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use mpc_protocol::relay::WebRtcSignal;
use mpc_protocol::signal::{RawJson, ServerMessage};
use mpc_protocol::{PeerMessage, SignedMessage};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::config::{NetConfig, SimConfig};
use super::node_ids;
use super::report::{Log, LogEntry, Path, Stats};
use crate::node::Event;

/// Something queued for a node.
#[derive(Debug)]
pub(super) enum Item {
    Event(Event),
    /// A data-channel message, delivered as text and parsed on arrival.
    PeerText {
        from: String,
        text: String,
    },
    TickAll,
    /// Turned into a random garbage event when it falls due.
    Noise,
}

pub(super) struct Network {
    cfg: NetConfig,
    rng: ChaCha20Rng,
    ids: Vec<String>,
    index: BTreeMap<String, usize>,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    items: BTreeMap<u64, Item>,
    /// Queued items other than ticks.
    busy: usize,
    /// Directed links (a, b) where a has seen ChannelOpen(b).
    open: BTreeSet<(usize, usize)>,
    /// Last delivery time per directed link, to keep channels FIFO.
    link_clock: BTreeMap<(usize, usize), u64>,
    /// (node, peer) pairs the core asked to connect, and as what.
    connects: BTreeMap<(usize, usize), bool>,
    /// Pairs whose ChannelOpen is already scheduled.
    opening: BTreeSet<(usize, usize)>,
    stats: Stats,
    log: Log,
}

impl Network {
    pub(super) fn new(cfg: &SimConfig) -> Self {
        let ids = node_ids(cfg.participants);
        Network {
            cfg: cfg.net.clone(),
            rng: ChaCha20Rng::seed_from_u64(cfg.seed),
            index: ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect(),
            ids,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            items: BTreeMap::new(),
            busy: 0,
            open: BTreeSet::new(),
            link_clock: BTreeMap::new(),
            connects: BTreeMap::new(),
            opening: BTreeSet::new(),
            stats: Stats::default(),
            log: Log::new(cfg.record),
        }
    }

    /// The run's only source of randomness.
    pub(super) fn rng(&mut self) -> &mut ChaCha20Rng {
        &mut self.rng
    }

    pub(super) fn ids(&self) -> &[String] {
        &self.ids
    }

    pub(super) fn id(&self, i: usize) -> &str {
        &self.ids[i]
    }

    pub(super) fn lookup(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub(super) fn now(&self) -> u64 {
        self.now
    }

    /// Whether anything but ticks is still queued.
    pub(super) fn busy(&self) -> bool {
        self.busy > 0
    }

    pub(super) fn schedule(&mut self, at: u64, node: usize, item: Item) {
        if !matches!(item, Item::TickAll) {
            self.busy += 1;
        }
        self.seq += 1;
        self.items.insert(self.seq, item);
        self.queue.push(Reverse((at, self.seq, node)));
    }

    /// `now` plus a delay drawn from `range`.
    pub(super) fn after(&mut self, (lo, hi): (u64, u64)) -> u64 {
        let delay = if hi <= lo {
            lo
        } else {
            lo + self.rng.next_u64() % (hi - lo + 1)
        };
        self.now + delay
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.rng.next_u64() as f64 / u64::MAX as f64) < p
    }

    /// The next item due, and for whom, with the clock moved to it; `None`
    /// once the queue is empty or the next item falls after `max_ms`.
    pub(super) fn next(&mut self, max_ms: u64) -> Option<(usize, Item)> {
        loop {
            let Reverse((at, seq, node)) = self.queue.pop()?;
            let Some(item) = self.items.remove(&seq) else {
                continue;
            };
            self.now = at;
            if self.now > max_ms {
                return None;
            }
            if !matches!(item, Item::TickAll) {
                self.busy -= 1;
            }
            return Some((node, item));
        }
    }

    /// Counts (by path) and logs one message as sent.
    pub(super) fn record(&mut self, from: &str, to: &str, path: Path, json: String) {
        match path {
            Path::Relay => self.stats.relay_messages += 1,
            Path::Channel => self.stats.channel_messages += 1,
            Path::Server => {}
        }
        self.log.push(self.now, from, to, path, json);
    }

    /// Queues `count` garbage events at random times for random nodes.
    pub(super) fn schedule_noise(&mut self, count: usize) {
        let n = self.ids.len();
        for _ in 0..count {
            let at = self.rng.next_u64() % 3_000;
            let target = (self.rng.next_u64() % n as u64) as usize;
            self.schedule(at, target, Item::Noise);
        }
    }

    /// A garbage event from `mallory`, drawn when it falls due.
    pub(super) fn garbage(&mut self, session_id: Option<&str>) -> Event {
        garbage(&mut self.rng, session_id, &self.ids)
    }

    /// A data-channel text as the receiving driver parses it.
    pub(super) fn parse(&mut self, from: String, text: &str) -> Option<Event> {
        match SignedMessage::from_json(text) {
            Ok(msg) => Some(Event::PeerMessage { from, msg }),
            Err(_) => {
                self.stats.parse_errors += 1;
                None
            }
        }
    }

    /// Tracks which channels are open as node `i` learns of it.
    pub(super) fn observe(&mut self, i: usize, event: &Event) {
        if let Event::ChannelOpen(peer) = event {
            if let Some(p) = self.lookup(peer) {
                self.open.insert((i, p));
            }
        }
        if let Event::ChannelClosed(peer) = event {
            if let Some(p) = self.lookup(peer) {
                self.open.remove(&(i, p));
                self.opening.remove(&(i.min(p), i.max(p)));
            }
        }
    }

    /// Node `i` sends `msg` to `to` over their data channel.
    pub(super) fn send_peer(&mut self, i: usize, to: &str, msg: SignedMessage) {
        let me = self.ids[i].clone();
        let text = msg.to_json();
        self.record(&me, to, Path::Channel, text.clone());
        let Some(j) = self.lookup(to) else {
            self.stats.undeliverable += 1;
            return;
        };
        if !self.open.contains(&(i, j)) {
            self.stats.undeliverable += 1;
            return;
        }
        let mut at = self.after(self.cfg.channel_delay_ms);
        let last = self.link_clock.entry((i, j)).or_insert(0);
        at = at.max(*last);
        *last = at;
        self.schedule(at, j, Item::PeerText { from: me, text });
    }

    /// The core at node `i` asks for a connection to `peer`; an offerer's
    /// fake WebRTC produces an offer after a while.
    pub(super) fn connect(&mut self, i: usize, peer: String, offerer: bool) {
        let Some(j) = self.lookup(&peer) else {
            return;
        };
        self.connects.insert((i, j), offerer);
        if offerer {
            let at = self.after(self.cfg.connect_delay_ms);
            let sdp = sim_sdp("offer", &self.ids[i], &peer);
            let signal = WebRtcSignal::Offer { sdp };
            self.schedule(at, i, Item::Event(Event::LocalSignal { to: peer, signal }));
        }
    }

    /// Node `i`'s fake WebRTC is handed `signal` from `from`: an answerer
    /// answers an offer, an offerer's answer opens the channel at both ends.
    pub(super) fn webrtc_signal(&mut self, i: usize, from: String, signal: WebRtcSignal) {
        let Some(j) = self.lookup(&from) else {
            return;
        };
        let me = self.ids[i].clone();
        let at = self.after(self.cfg.connect_delay_ms);
        match signal {
            WebRtcSignal::Offer { .. } if self.connects.get(&(i, j)) == Some(&false) => {
                let sdp = sim_sdp("answer", &me, &from);
                let signal = WebRtcSignal::Answer { sdp };
                self.schedule(at, i, Item::Event(Event::LocalSignal { to: from, signal }));
            }
            WebRtcSignal::Answer { .. } if self.connects.get(&(i, j)) == Some(&true) => {
                // Both ends learn at the same moment, as with
                // RTCDataChannel's open event.
                if self.opening.insert((i.min(j), i.max(j))) {
                    self.schedule(at, i, Item::Event(Event::ChannelOpen(from)));
                    self.schedule(at, j, Item::Event(Event::ChannelOpen(me)));
                }
            }
            _ => self.stats.undeliverable += 1,
        }
    }

    /// The server relays `data` from node `i` to node `j`: lost, or
    /// delivered once or twice, each copy with its own delay.
    pub(super) fn relay(&mut self, i: usize, j: usize, data: RawJson) {
        if self.chance(self.cfg.relay_loss) {
            self.stats.relay_lost += 1;
            return;
        }
        let copies = if self.chance(self.cfg.relay_duplicate) {
            self.stats.relay_duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let relayed = ServerMessage::Relay {
                from: self.ids[i].clone(),
                data: data.clone(),
            };
            self.send_signal(j, relayed);
        }
    }

    /// `msg` reaches node `i` from the server after a relay delay.
    pub(super) fn send_signal(&mut self, i: usize, msg: ServerMessage) {
        let at = self.after(self.cfg.relay_delay_ms);
        self.schedule(at, i, Item::Event(Event::Signal(msg)));
    }

    /// Node `i` is gone: each peer with an open channel to it sees that
    /// channel close.
    pub(super) fn close_channels_of(&mut self, i: usize) {
        let peers: Vec<usize> = self
            .open
            .iter()
            .filter(|(a, _)| *a == i)
            .map(|(_, b)| *b)
            .collect();
        for p in peers {
            let at = self.after(self.cfg.channel_delay_ms);
            let closed = Event::ChannelClosed(self.ids[i].clone());
            self.schedule(at, p, Item::Event(closed));
        }
    }

    /// The addresses, the traffic counters and the log, once the run ends.
    pub(super) fn finish(self) -> (Vec<String>, Stats, Vec<LogEntry>) {
        (self.ids, self.stats, self.log.into_entries())
    }
}

/// A stand-in SDP with a DTLS fingerprint line, which the core signs.
fn sim_sdp(kind: &str, me: &str, peer: &str) -> String {
    use sha2::{Digest, Sha256};
    let fp = Sha256::digest(format!("{kind} {me}->{peer}"));
    let fp: Vec<String> = fp.iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "v=0\r\ns=sim-{kind} {me}->{peer}\r\na=fingerprint:sha-256 {}\r\n",
        fp.join(":")
    )
}

/// A random event from `mallory`, who is in no session: unparseable relay
/// data, well-formed messages with random content, or channel events.
pub fn garbage(rng: &mut ChaCha20Rng, session_id: Option<&str>, ids: &[String]) -> Event {
    let mut pick = |n: u64| (rng.next_u64() % n) as usize;
    let sid = match pick(3) {
        0 => session_id.unwrap_or("s").to_string(),
        1 => "other-session".to_string(),
        _ => String::new(),
    };
    let hex_len = pick(200);
    let hex_data: String = (0..hex_len)
        .map(|i| b"0123456789abcdef"[(i * 7 + hex_len) % 16] as char)
        .collect();
    let victim = ids
        .get(pick(ids.len().max(1) as u64))
        .cloned()
        .unwrap_or_default();
    let msg = match pick(10) {
        0 => {
            serde_json::json!({"type": "commitment", "payload": {"data": hex_data, "session_id": sid}})
        }
        1 => serde_json::json!({"type": "share", "payload": {"data": hex_data, "session_id": sid}}),
        2 => {
            serde_json::json!({"type": "ready", "payload": {"session_id": sid, "transcript_hash": hex_data}})
        }
        3 => {
            serde_json::json!({"type": "session_response", "payload": {"session_id": sid, "accepted": pick(2) == 0}})
        }
        4 => {
            serde_json::json!({"type": "session_abort", "payload": {"session_id": sid, "reason": "mallory says so"}})
        }
        5 => {
            serde_json::json!({"type": "session_proposal", "payload": {"session_id": sid, "total": pick(5), "threshold": pick(5),
              "participants": ["mallory", victim], "curve": "secp256k1"}})
        }
        6 => serde_json::json!({"type": "mesh_ready", "payload": {"session_id": sid}}),
        7 => {
            serde_json::json!({"type": "wallet_created", "payload": {"session_id": sid, "pubkey": hex_data}})
        }
        8 => serde_json::json!({"type": "channel_open", "payload": {"peer_id": victim}}),
        _ => serde_json::json!({"type": "offer", "sdp": "v=0 mallory"}),
    };
    let from = "mallory".to_string();
    match pick(6) {
        0 => Event::Signal(ServerMessage::Relay {
            from,
            data: RawJson::from_string(format!("{{\"type\":\"{}\"", hex_data))
                .unwrap_or_else(|_| RawJson::from_value(&hex_data)),
        }),
        1 => Event::ChannelOpen(from),
        2 => Event::ChannelClosed(from),
        3 => match PeerMessage::from_value(msg.clone()) {
            Ok(msg) => Event::PeerMessage {
                from,
                msg: SignedMessage::unsigned(msg),
            },
            Err(_) => Event::Tick(0),
        },
        _ => Event::Signal(ServerMessage::Relay {
            from,
            data: RawJson::from_value(&msg),
        }),
    }
}
