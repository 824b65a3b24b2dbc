//! The node state machine: [`Node::handle`] takes one [`Event`] and returns
//! the [`Action`]s a driver must carry out. It owns the session lifecycle
//! (negotiation → mesh → DKG → ready agreement), routing of messages to the
//! right session, buffering of early messages, timeouts and aborts.
//!
//! It does no I/O and reads no clock: time arrives as [`Event::Tick`], and
//! randomness comes from a ChaCha20 RNG seeded by the driver, so the same
//! events with the same seed always give the same actions.

use std::collections::{BTreeMap, BTreeSet};

use mpc_identity::sealed::{self, SessionKey};
use mpc_identity::{statement, IdentityKey, KnownPeers, PublicKey};
use mpc_protocol::peer::{
    ChannelOpen, Commitment, Curve, MeshReady, Ready, SessionAbort, SessionProposal,
    SessionResponse, Share, SignCommitment, SignProposal, SignatureCreated, SignatureShare,
    WalletCreated,
};
use mpc_protocol::relay::WebRtcSignal;
use mpc_protocol::signal::{ClientMessage, RawJson, ServerMessage};
use mpc_protocol::{PeerMessage, RelayData, SignedMessage};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use zeroize::Zeroizing;

use crate::dkg::{self, Added, Dkg, DkgError, DkgOutput, Misbehaviour, Params};
use crate::mesh::{is_offerer, Mesh};
use crate::session::{
    validate_proposal, validate_sign_proposal, AbortReason, Phase, ValidProposal,
    DEFAULT_TIMEOUT_MS, MAX_SIGN_MESSAGE_LEN,
};
use crate::sign::{SignError, Signing};
use crate::trust::{self, NewKey, SessionKeys};
use crate::wallet::{SignatureResult, SigningWallet, WalletResult};

/// Settings a driver chooses.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's peer id (as registered with the signaling server).
    pub peer_id: String,
    /// How long each phase (negotiation including the user's decision, mesh,
    /// DKG) may take before the session aborts, in ms.
    pub timeout_ms: u64,
    /// Most relayed messages held for sessions whose proposal has not
    /// arrived yet (the relay may reorder a response before its proposal).
    pub max_pending: usize,
    /// This node's long-term identity key. `None` draws one from the seed
    /// (simulations and tests); a wallet passes its stored key.
    pub identity: Option<IdentityKey>,
    /// Pinned identity keys of other peers (the address book).
    pub known_peers: KnownPeers,
    /// Refuse keys that are not pinned yet instead of trusting them on
    /// first use.
    pub require_pinned: bool,
}

impl Config {
    pub fn new(peer_id: impl Into<String>) -> Self {
        Config {
            peer_id: peer_id.into(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_pending: 1024,
            identity: None,
            known_peers: KnownPeers::new(),
            require_pinned: false,
        }
    }
}

/// Something the local user or application asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Send `register` with this node's peer id.
    Register,
    /// Send `list_peers`.
    ListPeers,
    /// Propose a new wallet to `participants` (which must include this
    /// node). Without a `session_id`, one is drawn from the RNG.
    Create {
        session_id: Option<String>,
        participants: Vec<String>,
        threshold: u16,
        curve: Curve,
    },
    /// Propose signing `message` with `wallet` to `signers` (which must
    /// include this node, be wallet participants and number at least the
    /// threshold). Without a `session_id`, one is drawn from the RNG.
    Sign {
        session_id: Option<String>,
        wallet: Box<SigningWallet>,
        message: Vec<u8>,
        signers: Vec<String>,
    },
    /// Abandon the active session.
    Cancel { session_id: String },
}

/// Everything that can happen to a node.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Command(Command),
    /// A message from the signaling server; relayed peer messages and WebRTC
    /// signals arrive as [`ServerMessage::Relay`].
    Signal(ServerMessage),
    /// A message arrived on the data channel from `from`.
    PeerMessage {
        from: String,
        msg: SignedMessage,
    },
    /// The data channel to this peer opened.
    ChannelOpen(String),
    /// The data channel to this peer closed or failed.
    ChannelClosed(String),
    /// The current time in ms (any monotonic origin). Drivers send it at
    /// least every second, or at [`Node::next_deadline`].
    Tick(u64),
    /// The user's (or a policy's) answer to [`Progress::NeedsDecision`].
    Decision {
        session_id: String,
        accept: bool,
        reason: Option<String>,
    },
    /// The answer to [`Progress::NeedsSignDecision`]: `Some(wallet)` (the
    /// wallet whose group key the proposal names, with this node's key
    /// package) accepts; `None` declines with `reason`.
    SignDecision {
        session_id: String,
        wallet: Option<Box<SigningWallet>>,
        reason: Option<String>,
    },
    /// The driver's own WebRTC offer, answer or candidate for `to`; the core
    /// routes it through the relay.
    LocalSignal {
        to: String,
        signal: WebRtcSignal,
    },
}

/// Everything a node can ask its driver to do or know.
#[derive(Clone, Debug)]
pub enum Action {
    /// Send to the signaling server (relay, register, list_peers).
    SendSignal(ClientMessage),
    /// Send over the data channel to `to` (already signed).
    SendPeer {
        to: String,
        msg: SignedMessage,
    },
    /// Pin `key` for `peer` in the address book: its first use, shown to
    /// the user (in the proposal they accepted, or the session they began).
    PinKey {
        peer: String,
        key: PublicKey,
    },
    /// Set up a WebRTC connection to `peer`: as the offerer (create the data
    /// channel, send an offer), or expecting an offer from it.
    Connect {
        peer: String,
        offerer: bool,
    },
    /// Feed this remote offer, answer or candidate into the connection to
    /// `from`.
    WebRtcSignal {
        from: String,
        signal: WebRtcSignal,
    },
    Progress(Progress),
    /// The DKG succeeded and every `ready` hash matched: store this.
    Finished(Box<WalletResult>),
    /// A signing session produced this signature, and this node verified it
    /// under the group key.
    Signed(Box<SignatureResult>),
    Aborted {
        session_id: String,
        reason: AbortReason,
    },
    /// An input was ignored; for logs, never an error of this node.
    Rejected {
        from: Option<String>,
        session_id: Option<String>,
        reason: String,
    },
}

/// Milestones for a user interface.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    Registered {
        peer_id: String,
    },
    Peers {
        peers: Vec<String>,
    },
    ServerError {
        error: String,
    },
    /// A valid proposal arrived: answer with [`Event::Decision`].
    NeedsDecision {
        from: String,
        proposal: SessionProposal,
        /// Participants whose keys are not pinned yet: accepting pins them.
        new_keys: Vec<NewKey>,
    },
    /// `accepted` of `total` participants (initiator included) have accepted.
    Accepted {
        session_id: String,
        peer: String,
        accepted: usize,
        total: usize,
    },
    /// Channels open so far, out of those needed.
    Mesh {
        session_id: String,
        open: usize,
        needed: usize,
    },
    /// `mesh_ready` received from `ready` of `needed` peers.
    MeshReady {
        session_id: String,
        ready: usize,
        needed: usize,
    },
    /// 1: commitment broadcast; 2: shares sent; 3: `ready` sent.
    DkgRound {
        session_id: String,
        round: u8,
    },
    /// A peer reported `wallet_created` with the same group key.
    PeerStored {
        session_id: String,
        peer: String,
    },
    /// A valid `sign_proposal` arrived: find the wallet with its
    /// `group_public_key`, show the message, and answer with
    /// [`Event::SignDecision`].
    NeedsSignDecision {
        from: String,
        proposal: SignProposal,
        /// Signers whose keys are not pinned yet: accepting pins them.
        new_keys: Vec<NewKey>,
    },
    /// 1: signing commitment broadcast; 2: signature share sent;
    /// 3: signature aggregated and verified.
    SignRound {
        session_id: String,
        round: u8,
    },
    /// A signer reported `signature_created` with the same signature.
    PeerSigned {
        session_id: String,
        peer: String,
    },
}

/// How a peer message reached us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Relay,
    Channel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    AwaitingDecision,
    Negotiating,
    Mesh,
    Dkg,
    Complete,
}

/// One session's state.
struct Session {
    v: ValidProposal,
    others: Vec<String>,
    stage: Stage,
    deadline: u64,
    accepted: BTreeSet<String>,
    mesh: Mesh,
    dkg: Option<Dkg>,
    round2_done: bool,
    /// DKG messages that came before this node's DKG started.
    early: Vec<(String, PeerMessage)>,
    /// WebRTC signals (with their signatures) that came before this node
    /// knew everyone accepted.
    early_signals: Vec<(String, WebRtcSignal, Option<String>)>,
    /// Every participant's identity key, from the proposal.
    keys: SessionKeys,
    /// Keys to pin if this node accepts.
    new_keys: Vec<NewKey>,
    /// This node's X25519 key for encrypted shares, and each peer's.
    enc: Option<SessionKey>,
    peer_enc: BTreeMap<String, [u8; 32]>,
    output: Option<DkgOutput>,
    readies: BTreeMap<String, Ready>,
    stored_by: BTreeSet<String>,
    group_public_key: Option<String>,
    /// Set for a signing session.
    sign: Option<Box<SignState>>,
}

/// A signing session's own state.
struct SignState {
    proposal: SignProposal,
    message: Vec<u8>,
    /// The wallet with this node's key package, once the user accepted.
    wallet: Option<Box<SigningWallet>>,
    signing: Option<Signing>,
    signature: Option<Vec<u8>>,
    /// `signature_created` hex per peer, kept to compare with our own.
    reported: BTreeMap<String, String>,
}

impl Session {
    fn new(v: ValidProposal, me: &str, deadline: u64) -> Self {
        let others: Vec<String> = v
            .participants
            .iter()
            .filter(|p| *p != me)
            .cloned()
            .collect();
        let mut accepted = BTreeSet::new();
        accepted.insert(v.initiator.clone());
        Session {
            mesh: Mesh::new(others.clone()),
            others,
            v,
            stage: Stage::AwaitingDecision,
            deadline,
            accepted,
            dkg: None,
            round2_done: false,
            early: Vec::new(),
            early_signals: Vec::new(),
            keys: SessionKeys::new(),
            new_keys: Vec::new(),
            enc: None,
            peer_enc: BTreeMap::new(),
            output: None,
            readies: BTreeMap::new(),
            stored_by: BTreeSet::new(),
            group_public_key: None,
            sign: None,
        }
    }

    fn id(&self) -> &str {
        &self.v.session_id
    }

    fn is_other(&self, peer: &str) -> bool {
        self.others.iter().any(|p| p == peer)
    }

    fn phase(&self) -> Phase {
        match self.stage {
            Stage::AwaitingDecision | Stage::Negotiating => Phase::Negotiation,
            Stage::Mesh => Phase::Mesh,
            Stage::Dkg | Stage::Complete if self.sign.is_some() => Phase::Signing,
            Stage::Dkg | Stage::Complete => Phase::Dkg,
        }
    }

    /// Early messages kept per session: a commitment, share and ready from
    /// each peer, with room for a few repeats.
    fn early_limit(&self) -> usize {
        4 * self.others.len() + 8
    }

    fn waiting_for(&self, me: &str) -> Vec<String> {
        match self.stage {
            Stage::AwaitingDecision | Stage::Negotiating => self
                .v
                .participants
                .iter()
                .filter(|p| {
                    !self.accepted.contains(*p)
                        || (*p == me && self.stage == Stage::AwaitingDecision)
                })
                .cloned()
                .collect(),
            Stage::Mesh => self.mesh.waiting_for(),
            Stage::Dkg | Stage::Complete if self.sign.is_some() => {
                match self.sign.as_ref().and_then(|g| g.signing.as_ref()) {
                    Some(g) if !self.round2_done => g.missing_commitments(),
                    Some(g) => g.missing_shares(),
                    None => Vec::new(),
                }
            }
            Stage::Dkg | Stage::Complete => match &self.dkg {
                Some(d) if !self.round2_done => d.missing_commitments(),
                Some(d) if self.output.is_none() => d.missing_shares(),
                _ => self
                    .others
                    .iter()
                    .filter(|p| !self.readies.contains_key(*p))
                    .cloned()
                    .collect(),
            },
        }
    }
}

/// Where a step's outputs go, and the node-wide state a session step may
/// read. Kept apart from [`Node`] so a session can be borrowed mutably at
/// the same time.
struct Cx<'a> {
    me: &'a str,
    identity: &'a IdentityKey,
    now: u64,
    timeout_ms: u64,
    rng: &'a mut ChaCha20Rng,
    /// Plaintext of every share sent, kept only for tests (`faults`).
    #[cfg_attr(not(feature = "faults"), allow(dead_code))]
    shares_sent: &'a mut Vec<Vec<u8>>,
    channels: &'a BTreeSet<String>,
    misbehaviour: &'a Misbehaviour,
    out: &'a mut Vec<Action>,
}

impl Cx<'_> {
    fn relay(&mut self, to: &str, msg: &PeerMessage) {
        self.out
            .push(relay_action(self.identity, self.me, to, msg.clone()));
    }

    fn send(&mut self, to: &str, msg: PeerMessage) {
        self.out.push(Action::SendPeer {
            to: to.to_string(),
            msg: trust::sign(self.identity, self.me, to, msg),
        });
    }

    fn progress(&mut self, p: Progress) {
        self.out.push(Action::Progress(p));
    }

    fn reject(&mut self, from: Option<&str>, session_id: Option<&str>, reason: impl Into<String>) {
        self.out.push(Action::Rejected {
            from: from.map(str::to_string),
            session_id: session_id.map(str::to_string),
            reason: reason.into(),
        });
    }
}

/// A session step either goes on or ends the session.
type Step = Result<(), AbortReason>;

/// `msg`, signed for `to`, sent through the relay.
fn relay_action(id: &IdentityKey, me: &str, to: &str, msg: PeerMessage) -> Action {
    Action::SendSignal(ClientMessage::Relay {
        to: to.to_string(),
        data: RawJson::from_value(&RelayData::Peer(trust::sign(id, me, to, msg))),
    })
}

/// A `Create` or `Sign` waiting for the server's key list.
struct Parked {
    command: Command,
    deadline: u64,
}

/// One node's sans-IO core. See the crate docs for the event/action model.
pub struct Node {
    config: Config,
    rng: ChaCha20Rng,
    now: u64,
    /// The one session in negotiation, mesh or DKG.
    session: Option<Session>,
    /// The last completed session, kept to count `wallet_created`.
    completed: Option<Session>,
    /// Every session id this node has taken part in.
    used: BTreeSet<String>,
    /// Open data channels, whatever session they were opened for.
    channels: BTreeSet<String>,
    /// Relayed messages for sessions not known yet: id → (arrival, from, msg).
    pending: BTreeMap<String, Vec<(u64, String, SignedMessage)>>,
    pending_len: usize,
    misbehaviour: Misbehaviour,
    identity: IdentityKey,
    known: KnownPeers,
    /// Keys the signaling server advertises (never trusted on their own).
    advertised: BTreeMap<String, PublicKey>,
    /// The server's registration challenge, once it arrived, and whether a
    /// `register` was signed over it (each connection brings a new one).
    challenge: Option<Vec<u8>>,
    challenge_used: bool,
    /// `register` was asked for before the challenge arrived.
    register_wanted: bool,
    parked: Option<Parked>,
    shares_sent: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.config.peer_id)
            .field("now", &self.now)
            .field(
                "session",
                &self.session.as_ref().map(|s| (s.id().to_string(), s.stage)),
            )
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node whose randomness comes from `seed`. Production drivers pass
    /// 32 bytes from the OS RNG ([`Node::with_os_rng`]); the simulator a
    /// fixed seed.
    pub fn new(mut config: Config, seed: [u8; 32], now: u64) -> Self {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let identity = config
            .identity
            .take()
            .unwrap_or_else(|| IdentityKey::generate(&mut rng));
        Node {
            known: std::mem::take(&mut config.known_peers),
            identity,
            advertised: BTreeMap::new(),
            challenge: None,
            challenge_used: false,
            register_wanted: false,
            parked: None,
            shares_sent: Vec::new(),
            config,
            rng,
            now,
            session: None,
            completed: None,
            used: BTreeSet::new(),
            channels: BTreeSet::new(),
            pending: BTreeMap::new(),
            pending_len: 0,
            misbehaviour: Misbehaviour::default(),
        }
    }

    /// A node seeded from the operating system (or `crypto.getRandomValues`
    /// in a browser).
    pub fn with_os_rng(config: Config, now: u64) -> Result<Self, rand_core::Error> {
        let mut seed = [0u8; 32];
        rand_core::OsRng.try_fill_bytes(&mut seed)?;
        Ok(Node::new(config, seed, now))
    }

    pub fn peer_id(&self) -> &str {
        &self.config.peer_id
    }

    /// This node's identity public key.
    pub fn public_key(&self) -> PublicKey {
        self.identity.public_key()
    }

    /// The address book as it stands (pins made in this run included).
    pub fn known_peers(&self) -> &KnownPeers {
        &self.known
    }

    /// The plaintext of every DKG share this node sent, so tests can look
    /// for it in captured traffic.
    #[cfg(feature = "faults")]
    pub fn shares_sent(&self) -> &[Vec<u8>] {
        &self.shares_sent
    }

    /// The session in progress, if any.
    pub fn active_session(&self) -> Option<&str> {
        self.session.as_ref().map(Session::id)
    }

    /// When the next timeout falls due; tick the node then at the latest.
    pub fn next_deadline(&self) -> Option<u64> {
        self.session.as_ref().map(|s| s.deadline)
    }

    /// Makes this node misbehave on purpose, for tests and the simulator.
    #[cfg(feature = "faults")]
    pub fn set_misbehaviour(&mut self, m: Misbehaviour) {
        self.misbehaviour = m;
    }

    /// Processes one event. Never panics on peer input: anything malformed,
    /// unexpected or unknown becomes [`Action::Rejected`] or an abort.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Tick(now) => {
                self.now = self.now.max(now);
                self.on_tick(&mut out);
            }
            Event::Command(c) => self.on_command(c, &mut out),
            Event::Signal(s) => self.on_signal(s, &mut out),
            Event::PeerMessage { from, msg } => {
                self.on_peer_message(from, msg, Via::Channel, &mut out)
            }
            Event::ChannelOpen(peer) => {
                self.channels.insert(peer.clone());
                self.step(&mut out, |s, cx| on_channel_open(s, cx, &peer));
            }
            Event::ChannelClosed(peer) => {
                self.channels.remove(&peer);
                self.step(&mut out, |s, _| {
                    if s.is_other(&peer) && s.stage >= Stage::Mesh && s.sign.is_some() {
                        Err(AbortReason::SignerLeft { peer: peer.clone() })
                    } else if s.is_other(&peer) && s.stage >= Stage::Mesh {
                        Err(AbortReason::ChannelClosed { peer: peer.clone() })
                    } else {
                        Ok(())
                    }
                });
            }
            Event::Decision {
                session_id,
                accept,
                reason,
            } => self.on_decision(session_id, accept, reason, &mut out),
            Event::SignDecision {
                session_id,
                wallet,
                reason,
            } => self.on_sign_decision(session_id, wallet, reason, &mut out),
            Event::LocalSignal { to, signal } => {
                let sig = trust::sign_sdp(&self.identity, &self.config.peer_id, &to, &signal);
                out.push(Action::SendSignal(ClientMessage::Relay {
                    to,
                    data: RawJson::from_value(&RelayData::WebRtc { signal, sig }),
                }))
            }
        }
        for a in &out {
            if let Action::PinKey { peer, key } = a {
                self.known.pin(peer, *key);
            }
        }
        out
    }

    /// Runs `f` on the active session; an `Err` aborts it.
    fn step(&mut self, out: &mut Vec<Action>, f: impl FnOnce(&mut Session, &mut Cx) -> Step) {
        let Some(mut s) = self.session.take() else {
            return;
        };
        let mut cx = Cx {
            me: &self.config.peer_id,
            identity: &self.identity,
            now: self.now,
            timeout_ms: self.config.timeout_ms,
            rng: &mut self.rng,
            shares_sent: &mut self.shares_sent,
            channels: &self.channels,
            misbehaviour: &self.misbehaviour,
            out,
        };
        match f(&mut s, &mut cx) {
            Ok(()) if s.stage == Stage::Complete => self.completed = Some(s),
            Ok(()) => self.session = Some(s),
            Err(reason) => abort(s, &mut cx, reason),
        }
    }

    fn on_tick(&mut self, out: &mut Vec<Action>) {
        if self.parked.as_ref().is_some_and(|p| self.now >= p.deadline) {
            if let Some(p) = self.parked.take() {
                out.push(Action::Aborted {
                    session_id: parked_session_id(&p.command),
                    reason: AbortReason::Internal(
                        "the signaling server never sent the peer list with identity keys".into(),
                    ),
                });
            }
        }
        let now = self.now;
        let expire = self.config.timeout_ms;
        let mut dropped = 0;
        self.pending.retain(|_, msgs| {
            let before = msgs.len();
            msgs.retain(|(t, _, _)| now.saturating_sub(*t) < expire);
            dropped += before - msgs.len();
            !msgs.is_empty()
        });
        self.pending_len -= dropped;
        self.step(out, |s, cx| {
            if cx.now >= s.deadline {
                Err(AbortReason::Timeout {
                    phase: s.phase(),
                    waiting_for: s.waiting_for(cx.me),
                })
            } else {
                Ok(())
            }
        });
    }

    fn on_command(&mut self, c: Command, out: &mut Vec<Action>) {
        match c {
            Command::Register => {
                self.register_wanted = true;
                self.try_register(out);
            }
            Command::ListPeers => out.push(Action::SendSignal(ClientMessage::ListPeers {
                watch: false,
                keys: false,
            })),
            Command::Create { .. } | Command::Sign { .. } => {
                let mut command = c;
                // Draw the session id now, so that every outcome names it.
                if let Command::Create { session_id, .. } | Command::Sign { session_id, .. } =
                    &mut command
                {
                    if session_id.is_none() {
                        let mut b = [0u8; 16];
                        self.rng.fill_bytes(&mut b);
                        *session_id = Some(hex::encode(b));
                    }
                }
                if let Some(p) = &self.parked {
                    out.push(Action::Aborted {
                        session_id: parked_session_id(&command),
                        reason: AbortReason::Internal(format!(
                            "busy: session {} waits for the peer list",
                            parked_session_id(&p.command)
                        )),
                    });
                    return;
                }
                // Fresh keys first: the server's view of who holds which
                // key is checked against the address book before proposing.
                self.parked = Some(Parked {
                    command,
                    deadline: self.now + self.config.timeout_ms,
                });
                out.push(Action::SendSignal(ClientMessage::ListPeers {
                    watch: false,
                    keys: true,
                }));
            }
            Command::Cancel { session_id } => {
                if self
                    .parked
                    .as_ref()
                    .is_some_and(|p| parked_session_id(&p.command) == session_id)
                {
                    self.parked = None;
                    out.push(Action::Aborted {
                        session_id,
                        reason: AbortReason::Cancelled,
                    });
                    return;
                }
                self.step(out, |s, _| {
                    if s.id() == session_id {
                        Err(AbortReason::Cancelled)
                    } else {
                        Ok(())
                    }
                })
            }
        }
    }

    /// Sends `register`, signed with the identity key over the server's
    /// challenge, once it is asked for and a challenge not signed yet has
    /// arrived (the server sends a fresh one first thing on every
    /// connection, so after a reconnect this waits for the new one).
    fn try_register(&mut self, out: &mut Vec<Action>) {
        if !self.register_wanted {
            return;
        }
        let peer_id = self.config.peer_id.clone();
        let msg = match self.challenge.as_ref().filter(|_| !self.challenge_used) {
            Some(nonce) => {
                let sig = self.identity.sign(&statement::register(nonce, &peer_id));
                ClientMessage::Register {
                    peer_id,
                    pubkey: Some(self.identity.public_key().to_hex()),
                    signature: Some(sig.to_hex()),
                }
            }
            None => return,
        };
        self.register_wanted = false;
        self.challenge_used = true;
        out.push(Action::SendSignal(msg));
    }

    /// Runs a parked `Create` or `Sign` once the key list arrived.
    fn run_parked(&mut self, out: &mut Vec<Action>) {
        let Some(p) = self.parked.take() else {
            return;
        };
        match p.command {
            Command::Create {
                session_id,
                participants,
                threshold,
                curve,
            } => self.create(
                session_id.unwrap_or_default(),
                participants,
                threshold,
                curve,
                out,
            ),
            Command::Sign {
                session_id,
                wallet,
                message,
                signers,
            } => self.start_sign(
                session_id.unwrap_or_default(),
                wallet,
                message,
                signers,
                out,
            ),
            _ => {}
        }
    }

    /// For a session this node proposes: checks that it is free to start
    /// it, and returns every participant's key. New keys are pinned (the
    /// driver shows them), since the user named these participants.
    fn own_session_keys(
        &mut self,
        v: &ValidProposal,
        out: &mut Vec<Action>,
    ) -> Result<SessionKeys, String> {
        self.check_free(v)?;
        let (keys, new) = trust::proposer_keys(
            &v.participants,
            &self.config.peer_id,
            &self.identity.public_key(),
            &self.known,
            &self.advertised,
            self.config.require_pinned,
        )?;
        self.pin(new, out);
        Ok(keys)
    }

    /// Asks the driver to pin `new`; [`Node::handle`] pins them in the
    /// in-memory address book too.
    fn pin(&mut self, new: Vec<NewKey>, out: &mut Vec<Action>) {
        out.extend(new.into_iter().map(|k| Action::PinKey {
            peer: k.peer,
            key: k.key,
        }));
    }

    fn create(
        &mut self,
        session_id: String,
        participants: Vec<String>,
        threshold: u16,
        curve: Curve,
        out: &mut Vec<Action>,
    ) {
        let mut proposal = SessionProposal {
            session_id: session_id.clone(),
            total: u16::try_from(participants.len()).unwrap_or(u16::MAX),
            threshold,
            participants,
            curve: Some(curve.as_str().to_string()),
            initiator: Some(self.config.peer_id.clone()),
            keys: None,
        };
        let me = self.config.peer_id.clone();
        let checked = validate_proposal(&proposal, &me, &me)
            .and_then(|v| self.own_session_keys(&v, out).map(|k| (v, k)));
        let (v, keys) = match checked {
            Ok(x) => x,
            Err(reason) => {
                out.push(Action::Aborted {
                    session_id,
                    reason: AbortReason::Internal(format!("cannot create session: {reason}")),
                });
                return;
            }
        };
        proposal.keys = Some(trust::to_wire(&keys));
        let s = self.proposed_session(v, keys);
        self.start_proposed(s, PeerMessage::SessionProposal(proposal), out);
    }

    /// A session this node proposes: marked used, negotiating, with the
    /// participants' keys.
    fn proposed_session(&mut self, v: ValidProposal, keys: SessionKeys) -> Session {
        self.used.insert(v.session_id.clone());
        let mut s = Session::new(v, &self.config.peer_id, self.now + self.config.timeout_ms);
        s.stage = Stage::Negotiating;
        s.keys = keys;
        s
    }

    /// Sends the proposal to every other participant and makes `s` the
    /// active session.
    fn start_proposed(&mut self, s: Session, msg: PeerMessage, out: &mut Vec<Action>) {
        for p in &s.others {
            out.push(relay_action(
                &self.identity,
                &self.config.peer_id,
                p,
                msg.clone(),
            ));
        }
        let id = s.id().to_string();
        self.session = Some(s);
        self.replay_pending(&id, out);
    }

    /// The session id is unused and no other session is in progress.
    /// Declines an invalid proposal to its sender and drops what was
    /// buffered for it.
    fn reject_proposal(
        &mut self,
        from: String,
        session_id: &str,
        what: &str,
        reason: String,
        out: &mut Vec<Action>,
    ) {
        let reply = PeerMessage::SessionResponse(SessionResponse {
            session_id: session_id.to_string(),
            accepted: false,
            reason: Some(reason.clone()),
        });
        out.push(relay_action(
            &self.identity,
            &self.config.peer_id,
            &from,
            reply,
        ));
        out.push(Action::Rejected {
            from: Some(from),
            session_id: Some(session_id.to_string()),
            reason: format!("{what} rejected: {reason}"),
        });
        if let Some(msgs) = self.pending.remove(session_id) {
            self.pending_len -= msgs.len();
        }
    }

    fn check_free(&self, v: &ValidProposal) -> Result<(), String> {
        if self.used.contains(&v.session_id) {
            return Err(format!("session id {} is already used", v.session_id));
        }
        if let Some(s) = &self.session {
            return Err(format!("busy with session {}", s.id()));
        }
        Ok(())
    }

    fn on_signal(&mut self, s: ServerMessage, out: &mut Vec<Action>) {
        match s {
            ServerMessage::Registered { peer_id, .. } => {
                out.push(Action::Progress(Progress::Registered { peer_id }))
            }
            ServerMessage::Challenge { nonce } => match hex::decode(&nonce) {
                Ok(nonce) => {
                    self.challenge = Some(nonce);
                    self.challenge_used = false;
                    self.try_register(out);
                }
                Err(_) => out.push(Action::Progress(Progress::ServerError {
                    error: "the server's challenge is not hex".into(),
                })),
            },
            ServerMessage::Peers { peers, keys } => {
                let listed_keys = keys.is_some();
                if let Some(keys) = keys {
                    // Unparseable keys are dropped: such a peer has none.
                    self.advertised = keys
                        .iter()
                        .filter_map(|(p, k)| Some((p.clone(), k.parse().ok()?)))
                        .collect();
                }
                out.push(Action::Progress(Progress::Peers { peers }));
                if listed_keys {
                    self.run_parked(out);
                }
            }
            ServerMessage::Error { error } => {
                out.push(Action::Progress(Progress::ServerError { error }))
            }
            ServerMessage::PeerJoined { peer_id, pubkey } => {
                match pubkey.and_then(|k| k.parse().ok()) {
                    Some(k) => self.advertised.insert(peer_id, k),
                    None => self.advertised.remove(&peer_id),
                };
            }
            ServerMessage::PeerLeft { peer_id } => {
                self.advertised.remove(&peer_id);
            }
            ServerMessage::Relay { from, data } => match RelayData::from_json(data.get()) {
                Err(e) => out.push(Action::Rejected {
                    from: Some(from),
                    session_id: None,
                    reason: format!("unreadable relay data: {e}"),
                }),
                Ok(RelayData::Peer(msg)) => self.on_peer_message(from, msg, Via::Relay, out),
                Ok(RelayData::WebRtc { signal, sig }) => self.on_webrtc(from, signal, sig, out),
            },
        }
    }

    fn on_webrtc(
        &mut self,
        from: String,
        signal: WebRtcSignal,
        sig: Option<String>,
        out: &mut Vec<Action>,
    ) {
        let (in_mesh, room) = match &self.session {
            Some(s) if s.is_other(&from) => (
                s.stage >= Stage::Mesh,
                s.early_signals.len() < s.early_limit(),
            ),
            _ => {
                out.push(Action::Rejected {
                    from: Some(from),
                    session_id: None,
                    reason: "WebRTC signal from a peer in no active session with this node".into(),
                });
                return;
            }
        };
        if in_mesh {
            self.step(out, |s, cx| forward_signal(s, cx, from, signal, sig));
        } else if let (true, Some(s)) = (room, self.session.as_mut()) {
            s.early_signals.push((from, signal, sig));
        } else {
            out.push(Action::Rejected {
                from: Some(from),
                session_id: self.session.as_ref().map(|s| s.id().to_string()),
                reason: "too many early WebRTC signals".into(),
            });
        }
    }

    fn on_peer_message(
        &mut self,
        from: String,
        signed: SignedMessage,
        via: Via,
        out: &mut Vec<Action>,
    ) {
        let SignedMessage { msg, sig } = signed;
        if from == self.config.peer_id {
            out.push(Action::Rejected {
                from: Some(from),
                session_id: msg.session_id().map(str::to_string),
                reason: "message claims to come from this node".into(),
            });
            return;
        }
        let sid = msg.session_id().map(str::to_string);
        let me = self.config.peer_id.clone();
        match msg {
            PeerMessage::Ack(_) => {}
            PeerMessage::SessionProposal(p) => self.on_proposal(from, p, sig, out),
            PeerMessage::SignProposal(p) => self.on_sign_proposal(from, p, sig, out),
            msg => {
                let for_active = match (&self.session, &sid) {
                    (Some(s), Some(id)) => s.id() == id,
                    // Only channel messages may omit the session id; they
                    // belong to the session that owns the channels.
                    (Some(_), None) => via == Via::Channel,
                    (None, _) => false,
                };
                let for_completed = !for_active
                    && matches!((&self.completed, &sid), (Some(c), Some(id)) if c.id() == id);
                let session = if for_active {
                    self.session.as_ref()
                } else if for_completed {
                    self.completed.as_ref()
                } else {
                    None
                };
                // A participant's message must carry its signature; anything
                // else is refused before it can touch the session.
                if let Some(s) = session.filter(|s| s.is_other(&from)) {
                    if let Err(reason) = trust::verify(&s.keys, &me, &from, &msg, sig.as_deref()) {
                        out.push(Action::Rejected {
                            from: Some(from),
                            session_id: sid,
                            reason,
                        });
                        return;
                    }
                }
                if for_active {
                    self.step(out, |s, cx| session_message(s, cx, &from, msg, via));
                    return;
                }
                if for_completed {
                    if let Some(c) = self.completed.as_mut() {
                        completed_message(c, &from, msg, out);
                    }
                    return;
                }
                match sid {
                    Some(id) if self.used.contains(&id) => out.push(Action::Rejected {
                        from: Some(from),
                        session_id: Some(id),
                        reason: "session is over".into(),
                    }),
                    Some(id)
                        if via == Via::Relay
                            && matches!(
                                msg,
                                PeerMessage::SessionResponse(_) | PeerMessage::SessionAbort(_)
                            ) =>
                    {
                        self.buffer_pending(id, from, SignedMessage { msg, sig }, out)
                    }
                    id => out.push(Action::Rejected {
                        from: Some(from),
                        session_id: id,
                        reason: format!("{} for no known session", msg.msg_type()),
                    }),
                }
            }
        }
    }

    fn buffer_pending(
        &mut self,
        id: String,
        from: String,
        msg: SignedMessage,
        out: &mut Vec<Action>,
    ) {
        if self.pending_len >= self.config.max_pending {
            out.push(Action::Rejected {
                from: Some(from),
                session_id: Some(id),
                reason: "too many messages for unknown sessions".into(),
            });
            return;
        }
        self.pending_len += 1;
        self.pending
            .entry(id)
            .or_default()
            .push((self.now, from, msg));
    }

    fn replay_pending(&mut self, session_id: &str, out: &mut Vec<Action>) {
        if let Some(msgs) = self.pending.remove(session_id) {
            self.pending_len -= msgs.len();
            for (_, from, msg) in msgs {
                self.on_peer_message(from, msg, Via::Relay, out);
            }
        }
    }

    /// A proposal's keys, checked against the address book, and its
    /// signature, checked against the sender's listed key.
    fn proposal_keys(
        &self,
        from: &str,
        listed: Option<&BTreeMap<String, String>>,
        participants: &[String],
        msg: &PeerMessage,
        sig: Option<&str>,
    ) -> Result<(SessionKeys, Vec<NewKey>), String> {
        let me = &self.config.peer_id;
        let (keys, new) = trust::proposal_keys(
            listed,
            participants,
            me,
            &self.identity.public_key(),
            &self.known,
            self.config.require_pinned,
        )?;
        trust::verify(&keys, me, from, msg, sig)?;
        Ok((keys, new))
    }

    fn on_proposal(
        &mut self,
        from: String,
        p: SessionProposal,
        sig: Option<String>,
        out: &mut Vec<Action>,
    ) {
        let me = self.config.peer_id.clone();
        // The relay may deliver a proposal twice; a repeat is no new session.
        let same =
            |s: &Session| s.id() == p.session_id && s.v.proposal == p && s.v.initiator == from;
        if self.session.as_ref().is_some_and(same) || self.completed.as_ref().is_some_and(same) {
            out.push(Action::Rejected {
                from: Some(from),
                session_id: Some(p.session_id),
                reason: "duplicate proposal".into(),
            });
            return;
        }
        let msg = PeerMessage::SessionProposal(p.clone());
        let checked = validate_proposal(&p, &from, &me)
            .and_then(|v| self.check_free(&v).map(|_| v))
            .and_then(|v| {
                self.proposal_keys(
                    &from,
                    p.keys.as_ref(),
                    &v.participants,
                    &msg,
                    sig.as_deref(),
                )
                .map(|k| (v, k))
            });
        let (v, (keys, new_keys)) = match checked {
            Ok(x) => x,
            Err(reason) => {
                // Tell the sender why; other participants learn from the
                // initiator's session_abort.
                self.reject_proposal(from, &p.session_id, "proposal", reason, out);
                return;
            }
        };
        let id = v.session_id.clone();
        self.used.insert(id.clone());
        let mut s = Session::new(v, &me, self.now + self.config.timeout_ms);
        s.keys = keys;
        s.new_keys = new_keys.clone();
        self.session = Some(s);
        out.push(Action::Progress(Progress::NeedsDecision {
            from,
            proposal: p,
            new_keys,
        }));
        self.replay_pending(&id, out);
    }

    fn start_sign(
        &mut self,
        session_id: String,
        wallet: Box<SigningWallet>,
        message: Vec<u8>,
        signers: Vec<String>,
        out: &mut Vec<Action>,
    ) {
        let me = self.config.peer_id.clone();
        let mut proposal = SignProposal {
            session_id: session_id.clone(),
            group_public_key: wallet.group_public_key.clone(),
            message_hex: hex::encode(&message),
            signers,
            keys: None,
        };
        let checked = validate_sign_proposal(&proposal, &me, &me)
            .and_then(|(v, _)| check_signers(&wallet, &v.participants).map(|_| v))
            .and_then(|v| self.own_session_keys(&v, out).map(|k| (v, k)));
        let (v, keys) = match checked {
            Ok(v) => v,
            Err(reason) => {
                out.push(Action::Aborted {
                    session_id,
                    reason: AbortReason::Internal(format!("cannot start signing: {reason}")),
                });
                return;
            }
        };
        proposal.keys = Some(trust::to_wire(&keys));
        let mut s = self.proposed_session(v, keys);
        s.group_public_key = Some(wallet.group_public_key.clone());
        s.sign = Some(Box::new(SignState {
            proposal: proposal.clone(),
            message,
            wallet: Some(wallet),
            signing: None,
            signature: None,
            reported: BTreeMap::new(),
        }));
        self.start_proposed(s, PeerMessage::SignProposal(proposal), out);
    }

    fn on_sign_proposal(
        &mut self,
        from: String,
        p: SignProposal,
        sig: Option<String>,
        out: &mut Vec<Action>,
    ) {
        let me = self.config.peer_id.clone();
        let same = |s: &Session| {
            s.id() == p.session_id
                && s.v.initiator == from
                && s.sign.as_ref().is_some_and(|g| g.proposal == p)
        };
        if self.session.as_ref().is_some_and(same) || self.completed.as_ref().is_some_and(same) {
            out.push(Action::Rejected {
                from: Some(from),
                session_id: Some(p.session_id),
                reason: "duplicate sign proposal".into(),
            });
            return;
        }
        let msg = PeerMessage::SignProposal(p.clone());
        let checked = validate_sign_proposal(&p, &from, &me)
            .and_then(|(v, m)| self.check_free(&v).map(|_| (v, m)))
            .and_then(|(v, m)| {
                self.proposal_keys(
                    &from,
                    p.keys.as_ref(),
                    &v.participants,
                    &msg,
                    sig.as_deref(),
                )
                .map(|k| (v, m, k))
            });
        let (v, message, (keys, new_keys)) = match checked {
            Ok(x) => x,
            Err(reason) => {
                self.reject_proposal(from, &p.session_id, "sign proposal", reason, out);
                return;
            }
        };
        let id = v.session_id.clone();
        self.used.insert(id.clone());
        let mut s = Session::new(v, &me, self.now + self.config.timeout_ms);
        s.keys = keys;
        s.new_keys = new_keys.clone();
        s.group_public_key = Some(p.group_public_key.to_ascii_lowercase());
        s.sign = Some(Box::new(SignState {
            proposal: p.clone(),
            message,
            wallet: None,
            signing: None,
            signature: None,
            reported: BTreeMap::new(),
        }));
        self.session = Some(s);
        out.push(Action::Progress(Progress::NeedsSignDecision {
            from,
            proposal: p,
            new_keys,
        }));
        self.replay_pending(&id, out);
    }

    /// Whether the active session waits for the user's decision on a
    /// proposal of this kind; if not, the decision is rejected.
    fn awaits_decision(&self, session_id: &str, sign: bool, out: &mut Vec<Action>) -> bool {
        let waiting = self.session.as_ref().is_some_and(|s| {
            s.id() == session_id && s.stage == Stage::AwaitingDecision && s.sign.is_some() == sign
        });
        if !waiting {
            let what = if sign { "sign proposal" } else { "proposal" };
            out.push(Action::Rejected {
                from: None,
                session_id: Some(session_id.to_string()),
                reason: format!("no {what} awaits a decision with this session id"),
            });
        }
        waiting
    }

    fn on_sign_decision(
        &mut self,
        session_id: String,
        wallet: Option<Box<SigningWallet>>,
        reason: Option<String>,
        out: &mut Vec<Action>,
    ) {
        if !self.awaits_decision(&session_id, true, out) {
            return;
        }
        self.step(out, |s, cx| {
            // A wallet that does not fit the proposal is a decline, with why.
            let (wallet, reason) = match wallet {
                Some(w) => match check_sign_wallet(s, &w) {
                    Ok(()) => (Some(w), None),
                    Err(e) => (None, Some(e)),
                },
                None => (None, reason),
            };
            let response = PeerMessage::SessionResponse(SessionResponse {
                session_id: s.id().to_string(),
                accepted: wallet.is_some(),
                reason: reason.clone(),
            });
            for p in s.others.clone() {
                cx.relay(&p, &response);
            }
            let Some(wallet) = wallet else {
                return Err(AbortReason::Declined {
                    peer: cx.me.to_string(),
                    reason,
                });
            };
            if let Some(g) = s.sign.as_mut() {
                g.wallet = Some(wallet);
            }
            pin_on_accept(s, cx);
            s.stage = Stage::Negotiating;
            s.accepted.insert(cx.me.to_string());
            cx.progress(Progress::Accepted {
                session_id: s.id().to_string(),
                peer: cx.me.to_string(),
                accepted: s.accepted.len(),
                total: s.v.participants.len(),
            });
            maybe_start_mesh(s, cx)
        });
    }

    fn on_decision(
        &mut self,
        session_id: String,
        accept: bool,
        reason: Option<String>,
        out: &mut Vec<Action>,
    ) {
        if !self.awaits_decision(&session_id, false, out) {
            return;
        }
        self.step(out, |s, cx| {
            let response = PeerMessage::SessionResponse(SessionResponse {
                session_id: s.id().to_string(),
                accepted: accept,
                reason: reason.clone(),
            });
            for p in s.others.clone() {
                cx.relay(&p, &response);
            }
            if !accept {
                return Err(AbortReason::Declined {
                    peer: cx.me.to_string(),
                    reason,
                });
            }
            pin_on_accept(s, cx);
            s.stage = Stage::Negotiating;
            s.accepted.insert(cx.me.to_string());
            cx.progress(Progress::Accepted {
                session_id: s.id().to_string(),
                peer: cx.me.to_string(),
                accepted: s.accepted.len(),
                total: s.v.participants.len(),
            });
            maybe_start_mesh(s, cx)
        });
    }
}

/// The name a parked command's session goes by.
fn parked_session_id(c: &Command) -> String {
    match c {
        Command::Create { session_id, .. } | Command::Sign { session_id, .. } => {
            session_id.clone().unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// The user accepted a proposal that showed these keys: pin them.
fn pin_on_accept(s: &mut Session, cx: &mut Cx) {
    for k in std::mem::take(&mut s.new_keys) {
        cx.out.push(Action::PinKey {
            peer: k.peer,
            key: k.key,
        });
    }
}

/// Passes a peer's offer, answer or candidate to the driver once its DTLS
/// fingerprint is proven to be that peer's.
fn forward_signal(
    s: &mut Session,
    cx: &mut Cx,
    from: String,
    signal: WebRtcSignal,
    sig: Option<String>,
) -> Step {
    trust::verify_sdp(s.keys.get(&from), cx.me, &from, &signal, sig.as_deref()).map_err(
        |detail| AbortReason::PossibleMitm {
            peer: from.clone(),
            detail,
        },
    )?;
    cx.out.push(Action::WebRtcSignal { from, signal });
    Ok(())
}

/// Handles a message addressed to the active session.
fn session_message(s: &mut Session, cx: &mut Cx, from: &str, msg: PeerMessage, via: Via) -> Step {
    let sid = s.id().to_string();
    if !s.is_other(from) {
        cx.reject(
            Some(from),
            Some(&sid),
            format!("{from} is not a participant"),
        );
        return Ok(());
    }
    match msg {
        PeerMessage::SessionResponse(r) => on_response(s, cx, from, r),
        PeerMessage::SessionAbort(a) => Err(AbortReason::PeerAborted {
            peer: from.to_string(),
            reason: a.reason,
        }),
        PeerMessage::Share(_) if via == Via::Relay => Err(AbortReason::ProtocolViolation {
            peer: from.to_string(),
            detail: "sent a secret share through the relay".into(),
        }),
        msg if via == Via::Relay => {
            cx.reject(
                Some(from),
                Some(&sid),
                format!("{} must come over a data channel", msg.msg_type()),
            );
            Ok(())
        }
        PeerMessage::ChannelOpen(_) => {
            s.mesh.confirmed_by(from);
            Ok(())
        }
        PeerMessage::MeshReady(_) => {
            if s.mesh.ready_from(from) {
                cx.progress(Progress::MeshReady {
                    session_id: sid,
                    ready: s.mesh.ready_count(),
                    needed: s.mesh.needed(),
                });
            }
            maybe_start_dkg(s, cx)
        }
        msg @ (PeerMessage::Commitment(_) | PeerMessage::Share(_) | PeerMessage::Ready(_))
            if s.stage < Stage::Dkg =>
        {
            if s.early.len() < s.early_limit() {
                s.early.push((from.to_string(), msg));
            } else {
                cx.reject(Some(from), Some(&sid), "too many early DKG messages");
            }
            Ok(())
        }
        msg @ (PeerMessage::SignCommitment(_) | PeerMessage::SignatureShare(_))
            if s.stage < Stage::Dkg =>
        {
            if s.early.len() < s.early_limit() {
                s.early.push((from.to_string(), msg));
            } else {
                cx.reject(Some(from), Some(&sid), "too many early signing messages");
            }
            Ok(())
        }
        PeerMessage::SignCommitment(c) if s.sign.is_some() => on_sign_commitment(s, cx, from, c),
        PeerMessage::SignatureShare(sh) if s.sign.is_some() => on_signature_share(s, cx, from, sh),
        PeerMessage::SignatureCreated(c) if s.sign.is_some() => {
            // Before our own aggregation: kept, and compared once we have it.
            if let Some(g) = s.sign.as_mut() {
                g.reported
                    .entry(from.to_string())
                    .or_insert_with(|| c.signature.to_ascii_lowercase());
            }
            s.stored_by.insert(from.to_string());
            Ok(())
        }
        msg @ (PeerMessage::Commitment(_)
        | PeerMessage::Share(_)
        | PeerMessage::Ready(_)
        | PeerMessage::WalletCreated(_))
            if s.sign.is_some() =>
        {
            cx.reject(
                Some(from),
                Some(&sid),
                format!("{} in a signing session", msg.msg_type()),
            );
            Ok(())
        }
        msg @ (PeerMessage::SignCommitment(_)
        | PeerMessage::SignatureShare(_)
        | PeerMessage::SignatureCreated(_)) => {
            cx.reject(
                Some(from),
                Some(&sid),
                format!("{} in a key generation session", msg.msg_type()),
            );
            Ok(())
        }
        PeerMessage::Commitment(c) => on_commitment(s, cx, from, c),
        PeerMessage::Share(sh) => on_share(s, cx, from, sh),
        PeerMessage::Ready(r) => on_ready(s, cx, from, r),
        PeerMessage::WalletCreated(w) => {
            s.stored_by.insert(from.to_string());
            if s.group_public_key.as_deref().is_some_and(|k| k != w.pubkey) {
                return Err(AbortReason::ProtocolViolation {
                    peer: from.to_string(),
                    detail: "wallet_created names another group key".into(),
                });
            }
            Ok(())
        }
        PeerMessage::Ack(_) | PeerMessage::SessionProposal(_) | PeerMessage::SignProposal(_) => {
            Ok(())
        }
    }
}

/// `wallet_created` (or stragglers) for the session that already finished.
fn completed_message(c: &mut Session, from: &str, msg: PeerMessage, out: &mut Vec<Action>) {
    let sid = c.id().to_string();
    match msg {
        PeerMessage::WalletCreated(w) if c.is_other(from) => {
            if c.group_public_key.as_deref() != Some(w.pubkey.as_str()) {
                out.push(Action::Rejected {
                    from: Some(from.into()),
                    session_id: Some(sid),
                    reason: "wallet_created names another group key".into(),
                });
            } else if c.stored_by.insert(from.to_string()) {
                out.push(Action::Progress(Progress::PeerStored {
                    session_id: sid,
                    peer: from.to_string(),
                }));
            }
        }
        PeerMessage::SignatureCreated(created) if c.is_other(from) && c.sign.is_some() => {
            let own = c.sign.as_ref().and_then(|g| g.signature.as_ref());
            if own.map(hex::encode) != Some(created.signature.to_ascii_lowercase()) {
                out.push(Action::Rejected {
                    from: Some(from.into()),
                    session_id: Some(sid),
                    reason: "signature_created names another signature".into(),
                });
            } else if c.stored_by.insert(from.to_string()) {
                out.push(Action::Progress(Progress::PeerSigned {
                    session_id: sid,
                    peer: from.to_string(),
                }));
            }
        }
        PeerMessage::SessionAbort(a) => out.push(Action::Rejected {
            from: Some(from.into()),
            session_id: Some(sid),
            reason: format!(
                "peer aborted after this node completed the session: {}",
                a.reason
            ),
        }),
        other => out.push(Action::Rejected {
            from: Some(from.into()),
            session_id: Some(sid),
            reason: format!("{} after the session completed", other.msg_type()),
        }),
    }
}

fn on_response(s: &mut Session, cx: &mut Cx, from: &str, r: SessionResponse) -> Step {
    if !r.accepted {
        return Err(AbortReason::Declined {
            peer: from.to_string(),
            reason: r.reason,
        });
    }
    if s.stage > Stage::Negotiating || !s.accepted.insert(from.to_string()) {
        return Ok(()); // a repeat, or late: everyone had accepted already
    }
    cx.progress(Progress::Accepted {
        session_id: s.id().to_string(),
        peer: from.to_string(),
        accepted: s.accepted.len(),
        total: s.v.participants.len(),
    });
    maybe_start_mesh(s, cx)
}

fn maybe_start_mesh(s: &mut Session, cx: &mut Cx) -> Step {
    if s.stage != Stage::Negotiating || s.accepted.len() != s.v.participants.len() {
        return Ok(());
    }
    s.stage = Stage::Mesh;
    s.deadline = cx.now + cx.timeout_ms;
    for p in s.others.clone() {
        if cx.channels.contains(&p) {
            // A channel left open by an earlier session serves this one too.
            on_channel_open(s, cx, &p)?;
        } else {
            cx.out.push(Action::Connect {
                offerer: is_offerer(cx.me, &p),
                peer: p,
            });
        }
    }
    for (from, signal, sig) in std::mem::take(&mut s.early_signals) {
        forward_signal(s, cx, from, signal, sig)?;
    }
    Ok(())
}

fn on_channel_open(s: &mut Session, cx: &mut Cx, peer: &str) -> Step {
    if s.stage != Stage::Mesh || !s.mesh.opened(peer) {
        return Ok(());
    }
    let sid = s.id().to_string();
    cx.send(
        peer,
        PeerMessage::ChannelOpen(ChannelOpen {
            peer_id: peer.to_string(),
        }),
    );
    cx.progress(Progress::Mesh {
        session_id: sid.clone(),
        open: s.mesh.open_count(),
        needed: s.mesh.needed(),
    });
    if s.mesh.take_ready_to_send() {
        let msg = PeerMessage::MeshReady(MeshReady { session_id: sid });
        for p in &s.others {
            cx.send(p, msg.clone());
        }
    }
    maybe_start_dkg(s, cx)
}

fn maybe_start_dkg(s: &mut Session, cx: &mut Cx) -> Step {
    if s.stage != Stage::Mesh || !s.mesh.all_ready() {
        return Ok(());
    }
    s.stage = Stage::Dkg;
    s.deadline = cx.now + cx.timeout_ms;
    if s.sign.is_some() {
        return start_signing(s, cx);
    }
    let params = Params {
        session_id: s.id().to_string(),
        curve: s.v.curve,
        threshold: s.v.threshold,
        participants: s.v.participants.clone(),
        me: cx.me.to_string(),
    };
    let mut dkg = Dkg::new(params, cx.misbehaviour.clone()).map_err(dkg_abort)?;
    let commitments = dkg.round1(cx.rng).map_err(dkg_abort)?;
    s.dkg = Some(dkg);
    let enc = SessionKey::generate(cx.rng);
    let enc_key = hex::encode(enc.public_bytes());
    s.enc = Some(enc);
    let sid = s.id().to_string();
    for (peer, data) in commitments {
        cx.send(
            &peer,
            PeerMessage::Commitment(Commitment {
                data,
                session_id: Some(sid.clone()),
                enc_key: Some(enc_key.clone()),
            }),
        );
    }
    cx.progress(Progress::DkgRound {
        session_id: sid.clone(),
        round: 1,
    });
    for (from, msg) in std::mem::take(&mut s.early) {
        session_message(s, cx, &from, msg, Via::Channel)?;
        if s.stage == Stage::Complete {
            break;
        }
    }
    Ok(())
}

fn dkg_abort(e: DkgError) -> AbortReason {
    match e {
        DkgError::InvalidCommitment { peer, detail } => {
            AbortReason::InvalidCommitment { peer, detail }
        }
        DkgError::InvalidShare { peer, detail } => AbortReason::InvalidShare { peer, detail },
        DkgError::Internal(e) => AbortReason::Internal(e),
    }
}

fn on_commitment(s: &mut Session, cx: &mut Cx, from: &str, c: Commitment) -> Step {
    let Some(dkg) = s.dkg.as_mut() else {
        return Ok(());
    };
    let enc_key = c
        .enc_key
        .as_deref()
        .and_then(|k| <[u8; 32]>::try_from(hex::decode(k).ok()?).ok())
        .ok_or_else(|| AbortReason::InvalidCommitment {
            peer: from.to_string(),
            detail: "no valid enc_key: shares to it could not be encrypted".into(),
        })?;
    if *s.peer_enc.entry(from.to_string()).or_insert(enc_key) != enc_key {
        return Err(AbortReason::ProtocolViolation {
            peer: from.to_string(),
            detail: "sent two different share encryption keys".into(),
        });
    }
    if s.round2_done {
        // Round 2 used a full set; a new commitment now can only be a conflict.
        return match dkg.add_commitment(from, &c.data) {
            Err(e) => Err(dkg_abort(e)),
            Ok(_) => Ok(()),
        };
    }
    if dkg.add_commitment(from, &c.data).map_err(dkg_abort)? == Added::Duplicate {
        return Ok(());
    }
    if !dkg.missing_commitments().is_empty() {
        return Ok(());
    }
    let shares = dkg.round2().map_err(dkg_abort)?;
    s.round2_done = true;
    let sid = s.id().to_string();
    let Some(enc) = s.enc.as_ref() else {
        return Err(AbortReason::Internal("no share encryption key".into()));
    };
    for (peer, data) in shares {
        let plain = Zeroizing::new(
            hex::decode(data.as_str())
                .map_err(|_| AbortReason::Internal("round-2 package is not hex".into()))?,
        );
        let Some(recipient) = s.peer_enc.get(&peer) else {
            return Err(AbortReason::Internal(format!(
                "no encryption key for {peer}"
            )));
        };
        let sealed = enc
            .seal(cx.rng, recipient, &plain)
            .map_err(|e| AbortReason::Internal(format!("share encryption failed: {e}")))?;
        #[cfg(feature = "faults")]
        cx.shares_sent.push(plain.to_vec());
        let mut share = Share {
            data: hex::encode(sealed),
            session_id: Some(sid.clone()),
            enc: Some(sealed::SCHEME.to_string()),
        };
        if cx.misbehaviour.plaintext_shares {
            share.data = data.to_string();
            share.enc = None;
        }
        cx.send(&peer, PeerMessage::Share(share));
    }
    cx.progress(Progress::DkgRound {
        session_id: sid,
        round: 2,
    });
    maybe_finish_dkg(s, cx)
}

fn on_share(s: &mut Session, cx: &mut Cx, from: &str, mut sh: Share) -> Step {
    let Some(dkg) = s.dkg.as_mut() else {
        return Ok(());
    };
    if s.output.is_some() {
        cx.reject(Some(from), Some(s.id()), "share after round 3");
        dkg::wipe(&mut sh.data);
        return Ok(());
    }
    let opened = open_share(s.enc.as_ref(), s.peer_enc.get(from), from, &sh);
    dkg::wipe(&mut sh.data);
    let plain = opened?;
    let added = dkg.add_share(from, &plain);
    if added.map_err(dkg_abort)? == Added::Duplicate {
        return Ok(());
    }
    maybe_finish_dkg(s, cx)
}

/// Decrypts a share to this node; a share sent in the clear is refused.
fn open_share(
    own: Option<&SessionKey>,
    sender: Option<&[u8; 32]>,
    from: &str,
    sh: &Share,
) -> Result<Zeroizing<String>, AbortReason> {
    let bad = |detail: &str| AbortReason::InvalidShare {
        peer: from.to_string(),
        detail: detail.to_string(),
    };
    if sh.enc.as_deref() != Some(sealed::SCHEME) {
        return Err(AbortReason::ProtocolViolation {
            peer: from.to_string(),
            detail: format!("sent a share that is not encrypted with {}", sealed::SCHEME),
        });
    }
    let (Some(own), Some(sender)) = (own, sender) else {
        return Err(bad("share before its sender's commitment"));
    };
    let sealed = hex::decode(&sh.data).map_err(|_| bad("share is not hex"))?;
    let plain = own
        .open(sender, &sealed)
        .map_err(|_| bad("share does not decrypt with the keys of this session"))?;
    Ok(Zeroizing::new(hex::encode(&*plain)))
}

fn maybe_finish_dkg(s: &mut Session, cx: &mut Cx) -> Step {
    let Some(dkg) = s.dkg.as_mut() else {
        return Ok(());
    };
    if !s.round2_done || s.output.is_some() || !dkg.missing_shares().is_empty() {
        return Ok(());
    }
    let output = dkg.finish().map_err(dkg_abort)?;
    let sid = s.id().to_string();
    let ready = Ready {
        session_id: sid.clone(),
        transcript_hash: Some(hex::encode(output.transcript_hash)),
        commitment_digests: Some(output.commitment_digests.clone()),
    };
    for p in &s.others {
        cx.send(p, PeerMessage::Ready(ready.clone()));
    }
    s.group_public_key = Some(hex::encode(&output.group_public_key));
    s.output = Some(output);
    cx.progress(Progress::DkgRound {
        session_id: sid,
        round: 3,
    });
    // Readies that came before our own output are checked now.
    let received: Vec<(String, Ready)> = s
        .readies
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (from, r) in received {
        check_ready(s, &from, &r)?;
    }
    maybe_complete(s, cx)
}

fn on_ready(s: &mut Session, cx: &mut Cx, from: &str, r: Ready) -> Step {
    if r.transcript_hash.is_none() {
        return Err(AbortReason::ProtocolViolation {
            peer: from.to_string(),
            detail: "ready without a transcript_hash".into(),
        });
    }
    if let Some(old) = s.readies.get(from) {
        if *old != r {
            return Err(AbortReason::ProtocolViolation {
                peer: from.to_string(),
                detail: "sent two different ready messages".into(),
            });
        }
        return Ok(());
    }
    s.readies.insert(from.to_string(), r.clone());
    if s.output.is_some() {
        check_ready(s, from, &r)?;
    }
    maybe_complete(s, cx)
}

/// Compares a peer's `ready` with this node's transcript.
fn check_ready(s: &Session, from: &str, r: &Ready) -> Step {
    let Some(own) = &s.output else {
        return Ok(());
    };
    if r.transcript_hash.as_deref() == Some(hex::encode(own.transcript_hash).as_str()) {
        return Ok(());
    }
    let mut suspects = BTreeSet::new();
    if let Some(theirs) = &r.commitment_digests {
        for (p, d) in &own.commitment_digests {
            if theirs.get(p) != Some(d) {
                suspects.insert(p.clone());
            }
        }
    }
    Err(AbortReason::TranscriptMismatch {
        mismatched: vec![from.to_string()],
        suspects: suspects.into_iter().collect(),
    })
}

fn maybe_complete(s: &mut Session, cx: &mut Cx) -> Step {
    if s.output.is_none() || s.readies.len() != s.others.len() {
        return Ok(());
    }
    let Some(out) = s.output.take() else {
        return Ok(());
    };
    let group_public_key = hex::encode(&out.group_public_key);
    let sid = s.id().to_string();
    let created = PeerMessage::WalletCreated(WalletCreated {
        session_id: sid.clone(),
        pubkey: group_public_key.clone(),
    });
    for p in &s.others {
        cx.send(p, created.clone());
    }
    s.stage = Stage::Complete;
    s.dkg = None;
    cx.out.push(Action::Finished(Box::new(WalletResult {
        session_id: sid.clone(),
        curve: s.v.curve,
        threshold: s.v.threshold,
        participants: s.v.participants.clone(),
        identifier: out.identifier,
        key_package: out.key_package,
        public_key_package: out.public_key_package,
        group_public_key,
        transcript_hash: hex::encode(out.transcript_hash),
    })));
    for p in s.stored_by.clone() {
        cx.progress(Progress::PeerStored {
            session_id: sid.clone(),
            peer: p,
        });
    }
    Ok(())
}

/// Ends a session: tells the others why (see the crate docs for who
/// broadcasts), reports it, and drops every secret it held.
fn abort(s: Session, cx: &mut Cx, reason: AbortReason) {
    let initiator = s.v.initiator == cx.me;
    let broadcast = match (&reason, s.phase()) {
        // Passed on once the mesh exists: our abort then travels on each
        // channel ahead of its closing, so nobody blames us for leaving.
        (AbortReason::PeerAborted { .. }, Phase::Negotiation) => false,
        // A decline already went to everyone as a session_response.
        (AbortReason::Declined { peer, .. }, _) if peer == cx.me => false,
        (_, Phase::Negotiation) => initiator,
        _ => true,
    };
    if broadcast {
        let msg = PeerMessage::SessionAbort(SessionAbort {
            session_id: s.id().to_string(),
            reason: reason.to_string(),
        });
        for p in &s.others {
            if cx.channels.contains(p) && s.stage >= Stage::Mesh {
                cx.send(p, msg.clone());
            } else {
                cx.relay(p, &msg);
            }
        }
    }
    cx.out.push(Action::Aborted {
        session_id: s.id().to_string(),
        reason,
    });
}

/// The proposer's checks on its own signers: every one a wallet
/// participant, and at least the threshold of them.
fn check_signers(wallet: &SigningWallet, signers: &[String]) -> Result<(), String> {
    if let Some(x) = signers.iter().find(|x| !wallet.participants.contains(x)) {
        return Err(format!("{x} is not a participant of this wallet"));
    }
    if signers.len() < usize::from(wallet.threshold) {
        return Err(format!(
            "{} signers named; this wallet needs {}",
            signers.len(),
            wallet.threshold
        ));
    }
    Ok(())
}

/// A joiner's checks that the wallet its driver found fits the proposal.
fn check_sign_wallet(s: &Session, w: &SigningWallet) -> Result<(), String> {
    let Some(g) = s.sign.as_ref() else {
        return Err("not a signing session".into());
    };
    if !w
        .group_public_key
        .eq_ignore_ascii_case(&g.proposal.group_public_key)
    {
        return Err("the wallet found has another group key".into());
    }
    if w.curve != s.v.curve {
        return Err(format!(
            "the wallet is {}, the proposal {}",
            w.curve, s.v.curve
        ));
    }
    if g.message.len() > MAX_SIGN_MESSAGE_LEN {
        return Err("message too long".into());
    }
    check_signers(w, &s.v.participants)
}

fn sign_abort(e: SignError) -> AbortReason {
    match e {
        SignError::InvalidCommitment { peer, detail } => {
            AbortReason::InvalidCommitment { peer, detail }
        }
        SignError::InvalidShare { peer, detail } => {
            AbortReason::InvalidSignatureShare { peer, detail }
        }
        SignError::Internal(e) => AbortReason::Internal(e),
    }
}

fn start_signing(s: &mut Session, cx: &mut Cx) -> Step {
    let sid = s.id().to_string();
    let signers = s.v.participants.clone();
    let Some(g) = s.sign.as_mut() else {
        return Ok(());
    };
    let Some(wallet) = g.wallet.as_ref() else {
        return Err(AbortReason::Internal(
            "signing without a key package".into(),
        ));
    };
    let mut signing = Signing::new(
        wallet,
        cx.me,
        &signers,
        g.message.clone(),
        cx.misbehaviour.bad_signature_share,
    )
    .map_err(sign_abort)?;
    let data = signing.round1(cx.rng).map_err(sign_abort)?;
    g.signing = Some(signing);
    let msg = PeerMessage::SignCommitment(SignCommitment {
        session_id: sid.clone(),
        data,
    });
    for p in &s.others {
        cx.send(p, msg.clone());
    }
    cx.progress(Progress::SignRound {
        session_id: sid,
        round: 1,
    });
    for (from, msg) in std::mem::take(&mut s.early) {
        session_message(s, cx, &from, msg, Via::Channel)?;
        if s.stage == Stage::Complete {
            break;
        }
    }
    Ok(())
}

fn signing_of(s: &mut Session) -> Option<&mut Signing> {
    s.sign.as_mut().and_then(|g| g.signing.as_mut())
}

fn on_sign_commitment(s: &mut Session, cx: &mut Cx, from: &str, c: SignCommitment) -> Step {
    let round2_done = s.round2_done;
    let Some(signing) = signing_of(s) else {
        return Ok(());
    };
    if signing.add_commitment(from, &c.data).map_err(sign_abort)? == Added::Duplicate
        || round2_done
        || !signing.missing_commitments().is_empty()
    {
        return Ok(());
    }
    let data = signing.round2().map_err(sign_abort)?;
    s.round2_done = true;
    let sid = s.id().to_string();
    let msg = PeerMessage::SignatureShare(SignatureShare {
        session_id: sid.clone(),
        data,
    });
    for p in &s.others {
        cx.send(p, msg.clone());
    }
    cx.progress(Progress::SignRound {
        session_id: sid,
        round: 2,
    });
    maybe_finish_signing(s, cx)
}

fn on_signature_share(s: &mut Session, cx: &mut Cx, from: &str, sh: SignatureShare) -> Step {
    let done = s.sign.as_ref().is_some_and(|g| g.signature.is_some());
    let Some(signing) = signing_of(s) else {
        return Ok(());
    };
    if done {
        cx.reject(
            Some(from),
            Some(&sh.session_id),
            "signature share after aggregation",
        );
        return Ok(());
    }
    if signing.add_share(from, &sh.data).map_err(sign_abort)? == Added::Duplicate {
        return Ok(());
    }
    maybe_finish_signing(s, cx)
}

fn maybe_finish_signing(s: &mut Session, cx: &mut Cx) -> Step {
    let round2_done = s.round2_done;
    let Some(signing) = signing_of(s) else {
        return Ok(());
    };
    if !round2_done || !signing.missing_shares().is_empty() {
        return Ok(());
    }
    let signature = signing.finish().map_err(sign_abort)?;
    let own = hex::encode(&signature);
    if let Some((peer, _)) = s
        .sign
        .as_ref()
        .and_then(|g| g.reported.iter().find(|(_, sig)| **sig != own))
    {
        return Err(AbortReason::ProtocolViolation {
            peer: peer.clone(),
            detail: "signature_created names another signature".into(),
        });
    }
    let sid = s.id().to_string();
    let created = PeerMessage::SignatureCreated(SignatureCreated {
        session_id: sid.clone(),
        signature: hex::encode(&signature),
    });
    for p in &s.others {
        cx.send(p, created.clone());
    }
    // Peers that already reported must agree with this signature.
    let Some(g) = s.sign.as_mut() else {
        return Ok(());
    };
    g.signing = None;
    g.signature = Some(signature.clone());
    // The key package is no longer needed by this session.
    g.wallet = None;
    s.stage = Stage::Complete;
    cx.progress(Progress::SignRound {
        session_id: sid.clone(),
        round: 3,
    });
    cx.out.push(Action::Signed(Box::new(SignatureResult {
        session_id: sid.clone(),
        curve: s.v.curve,
        group_public_key: s.group_public_key.clone().unwrap_or_default(),
        message: g.message.clone(),
        signers: s.v.participants.clone(),
        signature,
    })));
    for p in s.stored_by.clone() {
        cx.progress(Progress::PeerSigned {
            session_id: sid.clone(),
            peer: p,
        });
    }
    Ok(())
}
