//! A deterministic in-memory network that drives n [`Node`]s against each
//! other, with a fake signaling server and fake WebRTC.
//!
//! # Fault model
//!
//! * **Relay** (signaling server over WebSocket): every relayed message gets
//!   its own random delay, so relayed messages are reordered freely, even
//!   between the same two nodes (stronger than a real server, which keeps
//!   per-pair order). Each may also be duplicated. Loss is off by default:
//!   WebSocket is reliable and the core does not retransmit, so a lost
//!   relay message can only end in a clean timeout abort, never a wallet;
//!   [`NetConfig::relay_loss`] exists to test exactly that.
//! * **Data channels** are reliable and ordered per link, as WebRTC's
//!   default channel is: random delays interleave messages across links,
//!   but never reorder, drop or duplicate within one.
//! * **WebRTC setup** is simulated: an offerer's driver sends a fake offer
//!   through the core (so it rides the relay), the answerer's driver answers,
//!   and when the answer arrives both ends see `ChannelOpen`.
//! * **Node faults** ([`Fault`]): declining, never answering, vanishing at a
//!   chosen step (with or without its channels closing), and, with the
//!   `faults` feature, sending a bad share or equivocating on commitments.
//!
//! The same [`SimConfig`] (seed included) always gives the same run.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use mpc_protocol::peer::Curve;
use mpc_protocol::relay::WebRtcSignal;
use mpc_protocol::signal::{ClientMessage, ServerMessage};
use mpc_protocol::{PeerMessage, RelayData, SignedMessage};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::node::{Action, Command, Config, Event, Node, Progress};
use crate::session::AbortReason;
use crate::wallet::{SignatureResult, SigningWallet, WalletResult};

/// Network behaviour. Delays are `(min, max)` in ms, drawn uniformly.
#[derive(Clone, Debug)]
pub struct NetConfig {
    pub relay_delay_ms: (u64, u64),
    /// Probability that a relayed message is delivered twice.
    pub relay_duplicate: f64,
    /// Probability that a relayed message is lost (see the module docs).
    pub relay_loss: f64,
    pub channel_delay_ms: (u64, u64),
    /// Time for the fake WebRTC to produce an offer/answer or open.
    pub connect_delay_ms: (u64, u64),
    /// Time a user takes to answer a proposal.
    pub decision_delay_ms: (u64, u64),
}

impl NetConfig {
    /// Reordering and duplication on the relay, jitter on channels.
    pub fn adverse() -> Self {
        NetConfig {
            relay_delay_ms: (1, 80),
            relay_duplicate: 0.1,
            relay_loss: 0.0,
            channel_delay_ms: (1, 30),
            connect_delay_ms: (5, 60),
            decision_delay_ms: (0, 200),
        }
    }

    /// No delays or faults: for benchmarks.
    pub fn ideal() -> Self {
        NetConfig {
            relay_delay_ms: (0, 0),
            relay_duplicate: 0.0,
            relay_loss: 0.0,
            channel_delay_ms: (0, 0),
            connect_delay_ms: (0, 0),
            decision_delay_ms: (0, 0),
        }
    }
}

/// Where in its run a vanishing node disappears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VanishAt {
    /// Instead of answering the proposal.
    Decision,
    /// Instead of sending its first message of this `type` (e.g. `"share"`).
    Sending(&'static str),
}

/// A misbehaving node, by index (node 0 is the initiator).
#[derive(Clone, Debug)]
pub enum Fault {
    Decline {
        node: usize,
        reason: String,
    },
    /// Disappears; `close_channels` says whether its peers notice (channels
    /// close) or only time out.
    Vanish {
        node: usize,
        at: VanishAt,
        close_channels: bool,
    },
    /// Sends `to` a share that fails verification.
    #[cfg(feature = "faults")]
    BadShare {
        from: usize,
        to: usize,
    },
    /// Sends `to` a different round-1 package (with matching shares) than
    /// everyone else.
    #[cfg(feature = "faults")]
    Equivocate {
        node: usize,
        to: Vec<usize>,
    },
    /// In the signing session, sends every other signer a signature share
    /// that fails verification.
    #[cfg(feature = "faults")]
    BadSignatureShare {
        node: usize,
    },
    /// Sends its DKG shares unencrypted.
    #[cfg(feature = "faults")]
    PlaintextShares {
        node: usize,
    },
}

/// A signing session run after the wallet is created, over the mesh the
/// DKG left open (channels are reused).
#[derive(Clone, Debug)]
pub struct SignPlan {
    /// Node indexes; the first one proposes.
    pub signers: Vec<usize>,
    pub message: Vec<u8>,
}

/// One simulated session.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub participants: usize,
    pub threshold: u16,
    pub curve: Curve,
    pub seed: u64,
    pub net: NetConfig,
    pub faults: Vec<Fault>,
    /// Each node's phase timeout.
    pub timeout_ms: u64,
    /// Keep every message in [`SimReport::log`].
    pub record: bool,
    /// Give up (leaving nodes [`Outcome::Pending`]) after this much
    /// simulated time.
    pub max_time_ms: u64,
    /// Garbage messages from a non-participant (`mallory`) injected at
    /// random times into random nodes, over the relay and over channels.
    pub noise: usize,
    /// Sign a message once every node holds the wallet.
    pub sign: Option<SignPlan>,
}

impl SimConfig {
    pub fn new(participants: usize, threshold: u16, curve: Curve, seed: u64) -> Self {
        SimConfig {
            participants,
            threshold,
            curve,
            seed,
            net: NetConfig::adverse(),
            faults: Vec::new(),
            timeout_ms: 10_000,
            record: false,
            max_time_ms: 600_000,
            noise: 0,
            sign: None,
        }
    }
}

/// How a node's session ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    Finished(Box<WalletResult>),
    /// The signing session produced (and this node verified) a signature.
    Signed(Box<SignatureResult>),
    Aborted(AbortReason),
    /// It was made to vanish.
    Vanished,
    /// Still running when the simulation stopped.
    Pending,
}

/// The path a logged message took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Node ↔ signaling server (register, list_peers, peers...).
    Server,
    /// Node → node through the server's relay.
    Relay,
    /// Node → node over a data channel.
    Channel,
}

/// One message as sent. Share data is redacted before it is recorded.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub at_ms: u64,
    pub from: String,
    pub to: String,
    pub path: Path,
    pub json: String,
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub relay_messages: usize,
    pub channel_messages: usize,
    pub relay_duplicated: usize,
    pub relay_lost: usize,
    /// Channel sends with no open channel: always a core bug.
    pub undeliverable: usize,
    /// Unparseable messages at delivery: always a core bug.
    pub parse_errors: usize,
    pub rejected: usize,
}

/// Everything a run produced.
#[derive(Debug)]
pub struct SimReport {
    pub node_ids: Vec<String>,
    pub session_id: Option<String>,
    pub outcomes: BTreeMap<String, Outcome>,
    /// The signing session's id, if one was proposed.
    pub sign_session_id: Option<String>,
    /// How the signing session ended at each signer.
    pub sign_outcomes: BTreeMap<String, Outcome>,
    /// Every `Rejected` reason, per node, for diagnosis.
    pub rejections: BTreeMap<String, Vec<String>>,
    pub log: Vec<LogEntry>,
    pub stats: Stats,
    pub end_ms: u64,
    /// The plaintext of every DKG share any node sent (`faults` only), to
    /// search captured traffic for.
    #[cfg(feature = "faults")]
    pub shares_sent: Vec<Vec<u8>>,
}

impl SimReport {
    /// The group key of every node that finished.
    pub fn group_keys(&self) -> BTreeMap<String, String> {
        self.outcomes
            .iter()
            .filter_map(|(id, o)| match o {
                Outcome::Finished(w) => Some((id.clone(), w.group_public_key.clone())),
                _ => None,
            })
            .collect()
    }

    /// The group key, if every node finished with the same one.
    pub fn agreed_key(&self) -> Option<String> {
        let keys = self.group_keys();
        let first = keys.values().next()?.clone();
        (keys.len() == self.node_ids.len() && keys.values().all(|k| *k == first)).then_some(first)
    }

    /// The signatures of the signers that finished signing.
    pub fn signatures(&self) -> BTreeMap<String, SignatureResult> {
        self.sign_outcomes
            .iter()
            .filter_map(|(id, o)| match o {
                Outcome::Signed(r) => Some((id.clone(), (**r).clone())),
                _ => None,
            })
            .collect()
    }

    /// Abort reasons of the signers whose signing session aborted.
    pub fn sign_aborts(&self) -> BTreeMap<String, AbortReason> {
        self.sign_outcomes
            .iter()
            .filter_map(|(id, o)| match o {
                Outcome::Aborted(r) => Some((id.clone(), r.clone())),
                _ => None,
            })
            .collect()
    }

    /// Abort reasons of the nodes that aborted.
    pub fn aborts(&self) -> BTreeMap<String, AbortReason> {
        self.outcomes
            .iter()
            .filter_map(|(id, o)| match o {
                Outcome::Aborted(r) => Some((id.clone(), r.clone())),
                _ => None,
            })
            .collect()
    }

    /// The message flow in the style of the spec's "Simulation Run
    /// Example": `sender → receiver (path)` and the JSON, long hex cut.
    pub fn render_flow(&self) -> String {
        let mut s = String::new();
        for e in &self.log {
            let path = match e.path {
                Path::Server => "",
                Path::Relay => " (via relay)",
                Path::Channel => " (data channel)",
            };
            s.push_str(&format!(
                "[{:>6} ms] {} → {}{}\n    {}\n",
                e.at_ms,
                e.from,
                e.to,
                path,
                abbreviate_json(&e.json)
            ));
        }
        s
    }
}

/// Node ids for a simulation of `n`: `node01`, `node02`, ...
pub fn node_ids(n: usize) -> Vec<String> {
    let width = n.to_string().len().max(2);
    (1..=n).map(|i| format!("node{i:0width$}")).collect()
}

/// Runs one session: node 0 registers, lists peers and proposes a wallet to
/// everyone; the others accept unless a [`Fault`] says otherwise.
pub fn run(config: &SimConfig) -> SimReport {
    run_observed(config, &mut |_, _| {})
}

/// As [`run`], showing every action (with the node's index) to `observer`
/// before the simulator carries it out.
pub fn run_observed(config: &SimConfig, observer: &mut dyn FnMut(usize, &Action)) -> SimReport {
    Sim::new(config, observer).run()
}

#[derive(Debug)]
enum Item {
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

struct Sim<'a> {
    cfg: &'a SimConfig,
    observer: &'a mut dyn FnMut(usize, &Action),
    ids: Vec<String>,
    index: BTreeMap<String, usize>,
    nodes: Vec<Node>,
    rng: ChaCha20Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    items: BTreeMap<u64, Item>,
    /// Queued items other than ticks.
    busy: usize,
    dead: BTreeSet<usize>,
    /// Directed links (a, b) where a has seen ChannelOpen(b).
    open: BTreeSet<(usize, usize)>,
    /// Last delivery time per directed link, to keep channels FIFO.
    link_clock: BTreeMap<(usize, usize), u64>,
    /// (node, peer) pairs the core asked to connect, and as what.
    connects: BTreeMap<(usize, usize), bool>,
    /// Pairs whose ChannelOpen is already scheduled.
    opening: BTreeSet<(usize, usize)>,
    outcomes: Vec<Outcome>,
    /// Set once the signing session is proposed.
    phase2: bool,
    sign_outcomes: Vec<Outcome>,
    sign_session_id: Option<String>,
    rejections: BTreeMap<String, Vec<String>>,
    /// The model server's per-connection challenges and registered keys.
    challenges: Vec<[u8; 32]>,
    registered_keys: BTreeMap<String, String>,
    session_id: Option<String>,
    log: Vec<LogEntry>,
    stats: Stats,
}

const TICK_MS: u64 = 100;

impl<'a> Sim<'a> {
    fn new(cfg: &'a SimConfig, observer: &'a mut dyn FnMut(usize, &Action)) -> Self {
        let ids = node_ids(cfg.participants);
        let mut rng = ChaCha20Rng::seed_from_u64(cfg.seed);
        let nodes = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let mut seed = [0u8; 32];
                rng.fill_bytes(&mut seed);
                let mut c = Config::new(id.clone());
                c.timeout_ms = cfg.timeout_ms;
                #[allow(unused_mut)]
                let mut node = Node::new(c, seed, 0);
                #[cfg(feature = "faults")]
                node.set_misbehaviour(misbehaviour_for(cfg, &ids, i));
                let _ = i;
                node
            })
            .collect();
        Sim {
            cfg,
            observer,
            index: ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect(),
            outcomes: vec![Outcome::Pending; ids.len()],
            phase2: false,
            sign_outcomes: vec![Outcome::Pending; ids.len()],
            sign_session_id: None,
            ids,
            nodes,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            items: BTreeMap::new(),
            busy: 0,
            dead: BTreeSet::new(),
            open: BTreeSet::new(),
            link_clock: BTreeMap::new(),
            connects: BTreeMap::new(),
            opening: BTreeSet::new(),
            rejections: BTreeMap::new(),
            challenges: Vec::new(),
            registered_keys: BTreeMap::new(),
            session_id: None,
            log: Vec::new(),
            stats: Stats::default(),
        }
    }

    fn schedule(&mut self, at: u64, node: usize, item: Item) {
        if !matches!(item, Item::TickAll) {
            self.busy += 1;
        }
        self.seq += 1;
        self.items.insert(self.seq, item);
        self.queue.push(Reverse((at, self.seq, node)));
    }

    fn delay(&mut self, (lo, hi): (u64, u64)) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.rng.next_u64() % (hi - lo + 1)
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.rng.next_u64() as f64 / u64::MAX as f64) < p
    }

    fn record(&mut self, from: &str, to: &str, path: Path, json: String) {
        if self.cfg.record {
            self.log.push(LogEntry {
                at_ms: self.now,
                from: from.to_string(),
                to: to.to_string(),
                path,
                json: redact_shares(&json),
            });
        }
    }

    fn run(mut self) -> SimReport {
        let n = self.ids.len();
        for i in 0..n {
            // As mpc-signal does on connect: a challenge to sign.
            let mut nonce = [0u8; 32];
            self.rng.fill_bytes(&mut nonce);
            self.challenges.push(nonce);
            let challenge = ServerMessage::Challenge {
                nonce: hex::encode(nonce),
            };
            self.schedule(0, i, Item::Event(Event::Signal(challenge)));
            self.schedule(0, i, Item::Event(Event::Command(Command::Register)));
        }
        self.schedule(1, 0, Item::Event(Event::Command(Command::ListPeers)));
        self.schedule(
            2,
            0,
            Item::Event(Event::Command(Command::Create {
                session_id: None,
                participants: self.ids.clone(),
                threshold: self.cfg.threshold,
                curve: self.cfg.curve,
            })),
        );
        self.schedule(TICK_MS, 0, Item::TickAll);
        for _ in 0..self.cfg.noise {
            let at = self.rng.next_u64() % 3_000;
            let target = (self.rng.next_u64() % n as u64) as usize;
            self.schedule(at, target, Item::Noise);
        }
        while let Some(Reverse((at, seq, node))) = self.queue.pop() {
            let Some(item) = self.items.remove(&seq) else {
                continue;
            };
            self.now = at;
            if self.now > self.cfg.max_time_ms {
                break;
            }
            match item {
                Item::TickAll => {
                    let dkg_done = (0..n).all(|i| !matches!(self.outcomes[i], Outcome::Pending));
                    let sign_done = match &self.cfg.sign {
                        None => true,
                        Some(plan) if self.phase2 => plan
                            .signers
                            .iter()
                            .all(|j| !matches!(self.sign_outcomes[*j], Outcome::Pending)),
                        // Signing starts only if every node got the wallet.
                        Some(_) => !self.all_finished(),
                    };
                    let done = dkg_done && sign_done;
                    if done && self.busy == 0 {
                        break;
                    }
                    for i in 0..n {
                        self.deliver(i, Event::Tick(at));
                    }
                    self.schedule(at + TICK_MS, 0, Item::TickAll);
                }
                Item::Event(e) => {
                    self.busy -= 1;
                    self.deliver(node, e);
                }
                Item::Noise => {
                    self.busy -= 1;
                    let e = garbage(&mut self.rng, self.session_id.as_deref(), &self.ids);
                    self.deliver(node, e);
                }
                Item::PeerText { from, text } => {
                    self.busy -= 1;
                    match SignedMessage::from_json(&text) {
                        Ok(msg) => self.deliver(node, Event::PeerMessage { from, msg }),
                        Err(_) => self.stats.parse_errors += 1,
                    }
                }
            }
        }
        let ids = self.ids.clone();
        let signers: BTreeSet<usize> = match (&self.cfg.sign, self.phase2) {
            (Some(plan), true) => plan.signers.iter().copied().collect(),
            _ => BTreeSet::new(),
        };
        let sign_outcomes = self
            .sign_outcomes
            .into_iter()
            .enumerate()
            .filter(|(j, _)| signers.contains(j))
            .map(|(j, o)| (ids[j].clone(), o))
            .collect();
        SimReport {
            sign_session_id: self.sign_session_id,
            sign_outcomes,
            outcomes: ids.iter().cloned().zip(self.outcomes).collect(),
            node_ids: ids,
            session_id: self.session_id,
            rejections: self.rejections,
            log: self.log,
            stats: self.stats,
            end_ms: self.now,
            #[cfg(feature = "faults")]
            shares_sent: self
                .nodes
                .iter()
                .flat_map(|n| n.shares_sent().iter().cloned())
                .collect(),
        }
    }

    fn deliver(&mut self, i: usize, event: Event) {
        if self.dead.contains(&i) {
            return;
        }
        if let Event::ChannelOpen(peer) = &event {
            if let Some(&p) = self.index.get(peer) {
                self.open.insert((i, p));
            }
        }
        if let Event::ChannelClosed(peer) = &event {
            if let Some(&p) = self.index.get(peer) {
                self.open.remove(&(i, p));
                self.opening.remove(&(i.min(p), i.max(p)));
            }
        }
        let actions = self.nodes[i].handle(event);
        // A node set to vanish on sending some type vanishes instead of
        // carrying out the batch that contains it.
        for f in &self.cfg.faults {
            if let Fault::Vanish {
                node,
                at: VanishAt::Sending(kind),
                close_channels,
            } = f
            {
                let sends = actions.iter().any(
                    |a| matches!(a, Action::SendPeer { msg, .. } if msg.msg.msg_type() == *kind),
                );
                if *node == i && sends {
                    self.vanish(i, *close_channels);
                    return;
                }
            }
        }
        for a in actions {
            (self.observer)(i, &a);
            self.act(i, a);
        }
    }

    fn all_finished(&self) -> bool {
        self.outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Finished(_)))
    }

    /// Once every node holds the wallet, the plan's first signer proposes.
    fn maybe_start_signing(&mut self) {
        let Some(plan) = self.cfg.sign.clone() else {
            return;
        };
        if self.phase2 || !self.all_finished() {
            return;
        }
        self.phase2 = true;
        let proposer = plan.signers[0];
        let Outcome::Finished(w) = &self.outcomes[proposer] else {
            return;
        };
        let wallet = Box::new(SigningWallet::from(&**w));
        let signers = plan.signers.iter().map(|j| self.ids[*j].clone()).collect();
        self.schedule(
            self.now + 1,
            proposer,
            Item::Event(Event::Command(Command::Sign {
                session_id: Some("sign-1".into()),
                wallet,
                message: plan.message.clone(),
                signers,
            })),
        );
    }

    fn vanish(&mut self, i: usize, close_channels: bool) {
        self.dead.insert(i);
        if self.phase2 {
            self.sign_outcomes[i] = Outcome::Vanished;
        } else {
            self.outcomes[i] = Outcome::Vanished;
        }
        if close_channels {
            let peers: Vec<usize> = self
                .open
                .iter()
                .filter(|(a, _)| *a == i)
                .map(|(_, b)| *b)
                .collect();
            for p in peers {
                let at = self.now + self.delay(self.cfg.net.channel_delay_ms);
                self.schedule(
                    at,
                    p,
                    Item::Event(Event::ChannelClosed(self.ids[i].clone())),
                );
            }
        }
    }

    fn act(&mut self, i: usize, action: Action) {
        let me = self.ids[i].clone();
        match action {
            Action::SendSignal(msg) => self.send_to_server(i, msg),
            Action::SendPeer { to, msg } => {
                self.stats.channel_messages += 1;
                let text = msg.to_json();
                self.record(&me, &to, Path::Channel, text.clone());
                let Some(&j) = self.index.get(&to) else {
                    self.stats.undeliverable += 1;
                    return;
                };
                if !self.open.contains(&(i, j)) {
                    self.stats.undeliverable += 1;
                    return;
                }
                let mut at = self.now + self.delay(self.cfg.net.channel_delay_ms);
                let last = self.link_clock.entry((i, j)).or_insert(0);
                at = at.max(*last);
                *last = at;
                self.schedule(at, j, Item::PeerText { from: me, text });
            }
            Action::Connect { peer, offerer } => {
                let Some(&j) = self.index.get(&peer) else {
                    return;
                };
                self.connects.insert((i, j), offerer);
                if offerer {
                    let at = self.now + self.delay(self.cfg.net.connect_delay_ms);
                    let sdp = sim_sdp("offer", &me, &peer);
                    self.schedule(
                        at,
                        i,
                        Item::Event(Event::LocalSignal {
                            to: peer,
                            signal: WebRtcSignal::Offer { sdp },
                        }),
                    );
                }
            }
            Action::WebRtcSignal { from, signal } => {
                let Some(&j) = self.index.get(&from) else {
                    return;
                };
                let at = self.now + self.delay(self.cfg.net.connect_delay_ms);
                match signal {
                    WebRtcSignal::Offer { .. } if self.connects.get(&(i, j)) == Some(&false) => {
                        let sdp = sim_sdp("answer", &me, &from);
                        self.schedule(
                            at,
                            i,
                            Item::Event(Event::LocalSignal {
                                to: from,
                                signal: WebRtcSignal::Answer { sdp },
                            }),
                        );
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
            Action::Progress(Progress::NeedsDecision { proposal, .. }) => {
                self.session_id.get_or_insert(proposal.session_id.clone());
                let mut decision = Some((true, None));
                for f in &self.cfg.faults {
                    match f {
                        Fault::Decline { node, reason } if *node == i => {
                            decision = Some((false, Some(reason.clone())))
                        }
                        Fault::Vanish {
                            node,
                            at: VanishAt::Decision,
                            ..
                        } if *node == i => decision = None,
                        _ => {}
                    }
                }
                match decision {
                    Some((accept, reason)) => {
                        let at = self.now + self.delay(self.cfg.net.decision_delay_ms);
                        self.schedule(
                            at,
                            i,
                            Item::Event(Event::Decision {
                                session_id: proposal.session_id,
                                accept,
                                reason,
                            }),
                        );
                    }
                    None => {
                        self.dead.insert(i);
                        self.outcomes[i] = Outcome::Vanished;
                    }
                }
            }
            Action::Progress(Progress::NeedsSignDecision { proposal, .. }) => {
                self.sign_session_id
                    .get_or_insert(proposal.session_id.clone());
                let wallet = match &self.outcomes[i] {
                    Outcome::Finished(w) => Some(Box::new(SigningWallet::from(&**w))),
                    _ => None,
                };
                let at = self.now + self.delay(self.cfg.net.decision_delay_ms);
                let reason = wallet.is_none().then(|| "no such wallet".to_string());
                self.schedule(
                    at,
                    i,
                    Item::Event(Event::SignDecision {
                        session_id: proposal.session_id,
                        wallet,
                        reason,
                    }),
                );
            }
            Action::Progress(_) | Action::PinKey { .. } => {}
            Action::Finished(w) => {
                self.session_id.get_or_insert(w.session_id.clone());
                self.outcomes[i] = Outcome::Finished(w);
                self.maybe_start_signing();
            }
            Action::Signed(r) => {
                self.sign_session_id.get_or_insert(r.session_id.clone());
                self.sign_outcomes[i] = Outcome::Signed(r);
            }
            Action::Aborted { reason, .. } if self.phase2 => {
                self.sign_outcomes[i] = Outcome::Aborted(reason)
            }
            Action::Aborted { reason, .. } => self.outcomes[i] = Outcome::Aborted(reason),
            Action::Rejected { reason, .. } => {
                self.stats.rejected += 1;
                self.rejections.entry(me).or_default().push(reason);
            }
        }
    }

    fn send_to_server(&mut self, i: usize, msg: ClientMessage) {
        let me = self.ids[i].clone();
        let text = msg.to_json();
        match msg {
            ClientMessage::Register {
                peer_id,
                pubkey,
                signature,
            } => {
                self.record(&me, "server", Path::Server, text);
                let statement = mpc_identity::statement::register(&self.challenges[i], &peer_id);
                let verified = pubkey
                    .as_deref()
                    .and_then(|k| k.parse::<mpc_identity::PublicKey>().ok())
                    .zip(signature.as_deref())
                    .is_some_and(|(k, sig)| k.verify_hex(&statement, sig).is_ok());
                if !verified {
                    let err = ServerMessage::error("register: signature does not verify");
                    self.reply_from_server(i, err);
                    return;
                }
                if let Some(k) = pubkey {
                    self.registered_keys.insert(peer_id.clone(), k);
                }
                let reply = ServerMessage::Registered {
                    peer_id,
                    ice_servers: Vec::new(),
                };
                self.reply_from_server(i, reply);
            }
            ClientMessage::ListPeers { .. } => {
                self.record(&me, "server", Path::Server, msg.to_json());
                let peers = self
                    .ids
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| !self.dead.contains(j))
                    .map(|(_, id)| id.clone())
                    .collect();
                let keys = Some(self.registered_keys.clone());
                self.reply_from_server(i, ServerMessage::Peers { peers, keys });
            }
            ClientMessage::Relay { to, data } => {
                self.stats.relay_messages += 1;
                self.record(&me, &to, Path::Relay, data.get().to_string());
                let target = self
                    .index
                    .get(&to)
                    .copied()
                    .filter(|j| !self.dead.contains(j));
                let Some(j) = target else {
                    self.reply_from_server(
                        i,
                        ServerMessage::error(format!("unknown peer \"{to}\"")),
                    );
                    return;
                };
                if self.chance(self.cfg.net.relay_loss) {
                    self.stats.relay_lost += 1;
                    return;
                }
                let copies = if self.chance(self.cfg.net.relay_duplicate) {
                    self.stats.relay_duplicated += 1;
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let at = self.now + self.delay(self.cfg.net.relay_delay_ms);
                    let relayed = ServerMessage::Relay {
                        from: me.clone(),
                        data: data.clone(),
                    };
                    self.schedule(at, j, Item::Event(Event::Signal(relayed)));
                }
            }
        }
    }

    fn reply_from_server(&mut self, i: usize, msg: ServerMessage) {
        let me = self.ids[i].clone();
        self.record("server", &me, Path::Server, msg.to_json());
        let at = self.now + self.delay(self.cfg.net.relay_delay_ms);
        self.schedule(at, i, Item::Event(Event::Signal(msg)));
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

#[cfg(feature = "faults")]
fn misbehaviour_for(cfg: &SimConfig, ids: &[String], i: usize) -> crate::dkg::Misbehaviour {
    let mut m = crate::dkg::Misbehaviour::default();
    for f in &cfg.faults {
        match f {
            Fault::BadShare { from, to } if *from == i => {
                m.bad_share_to.insert(ids[*to].clone());
            }
            Fault::Equivocate { node, to } if *node == i => {
                m.equivocate_to.extend(to.iter().map(|t| ids[*t].clone()));
            }
            Fault::BadSignatureShare { node } if *node == i => m.bad_signature_share = true,
            Fault::PlaintextShares { node } if *node == i => m.plaintext_shares = true,
            _ => {}
        }
    }
    m
}

/// Replaces a share's data with its length, so logs never hold a share.
fn redact_shares(json: &str) -> String {
    match RelayData::from_json(json) {
        Ok(RelayData::Peer(SignedMessage {
            msg: PeerMessage::Share(mut sh),
            sig,
        })) => {
            let len = sh.data.len();
            sh.data = format!("<secret share, {len} hex chars>");
            SignedMessage {
                msg: PeerMessage::Share(sh),
                sig,
            }
            .to_json()
        }
        _ => json.to_string(),
    }
}

/// Cuts hex strings longer than 24 characters to `abcd…wxyz (n hex)`, keeping
/// the JSON text otherwise as it is (key order included).
pub fn abbreviate_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..=start]);
        rest = &rest[start + 1..];
        // Find the closing quote, skipping escapes.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else {
            break;
        };
        let body = &rest[..end];
        if body.len() > 24 && body.bytes().all(|b| b.is_ascii_hexdigit()) {
            let tail = &body[body.len() - 8..];
            out.push_str(&format!("{}…{tail} ({} hex)", &body[..8], body.len()));
        } else {
            out.push_str(body);
        }
        out.push('"');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A random event from `mallory`, who is in no session: unparseable relay
/// data, well-formed messages with random content, or channel events.
pub fn garbage(rng: &mut ChaCha20Rng, session_id: Option<&str>, ids: &[String]) -> Event {
    use mpc_protocol::signal::RawJson;
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
