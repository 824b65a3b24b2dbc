//! The node state machine: [`Node::handle`] takes one [`Event`] and returns
//! the [`Action`]s a driver must carry out.
//!
//! It does no I/O and reads no clock: time arrives as [`Event::Tick`], and
//! randomness comes from a ChaCha20 RNG seeded by the driver, so the same
//! events with the same seed always give the same actions.
//!
//! This file is the facade: node-wide state, [`Node::handle`] and
//! [`Node::next_deadline`]. The rest is split by owner:
//!
//! | module      | owns |
//! |-------------|------|
//! | `api`       | [`Config`], [`Command`], [`Event`], [`Action`], [`Progress`] |
//! | `server`    | the signaling server: challenge, `register`, peer keys, relay |
//! | `commands`  | the user's commands, and proposals this node makes |
//! | `proposal`  | proposals this node receives, and the user's decisions |
//! | `inbox`     | routing peer messages; messages for sessions not known yet |
//! | `completed` | a finished session: the peers' reports, a wallet's confirmation |
//! | `session`   | `Session { common, kind }`, the dispatcher, aborts |
//! | `phase/*`   | one file per phase: negotiation, mesh, dkg, signing |

use std::collections::BTreeSet;

use mpc_identity::{IdentityKey, KnownPeers, PublicKey};
use mpc_protocol::signal::{ClientMessage, RawJson};
use mpc_protocol::RelayData;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::dkg::Misbehaviour;
use crate::trust;

mod api;
mod commands;
mod completed;
mod inbox;
mod phase;
mod proposal;
mod server;
mod session;

pub use api::{Action, Command, Config, Event, Progress};

use commands::Parked;
use inbox::Pending;
use session::{abort, Cx, Session, Stage, Step, Via};

/// One node's sans-IO core. See the crate docs for the event/action model.
pub struct Node {
    config: Config,
    rng: ChaCha20Rng,
    now: u64,
    /// The one session in negotiation, mesh or its rounds.
    session: Option<Session>,
    /// The last completed session, kept to count the peers' reports.
    completed: Option<Session>,
    /// Every session id this node has taken part in.
    used: BTreeSet<String>,
    /// Open data channels, whatever session they were opened for.
    channels: BTreeSet<String>,
    /// Relayed messages for sessions not known yet.
    pending: Pending,
    misbehaviour: Misbehaviour,
    identity: IdentityKey,
    known: KnownPeers,
    /// What this node knows of the signaling server.
    server: server::ServerState,
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
                &self
                    .session
                    .as_ref()
                    .map(|s| (s.id().to_string(), s.stage())),
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
            server: server::ServerState::default(),
            parked: None,
            shares_sent: Vec::new(),
            pending: Pending::new(config.max_pending),
            config,
            rng,
            now,
            session: None,
            completed: None,
            used: BTreeSet::new(),
            channels: BTreeSet::new(),
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

    /// This node's peer id.
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

    /// Whether the active session has every participant's answer and its
    /// mesh under way: from here its messages go over data channels, and
    /// it needs the signaling server at most for connections still being
    /// set up.
    pub fn past_negotiation(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.stage() >= session::Stage::Mesh)
    }

    /// How many messages this node holds for later: relayed ones for
    /// sessions it doesn't know yet, and its session's early messages and
    /// signals. Each buffer is capped, whatever peers send (for tests and
    /// metrics).
    pub fn buffered(&self) -> usize {
        let early = self
            .session
            .as_ref()
            .map_or(0, |s| s.common.early.len() + s.common.early_signals.len());
        self.pending.len() + early
    }

    /// When the next timeout falls due, across everything the node holds:
    /// the session's phase, a command waiting for the peer list, and the
    /// expiry of buffered messages. Tick the node then at the latest.
    pub fn next_deadline(&self) -> Option<u64> {
        [
            self.session.as_ref().map(|s| s.common.deadline),
            self.parked.as_ref().map(|p| p.deadline),
            self.pending.next_expiry(self.config.timeout_ms),
            self.completed
                .as_ref()
                .and_then(Session::confirmation_deadline),
        ]
        .into_iter()
        .flatten()
        .min()
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
                self.step(&mut out, |s, cx| phase::mesh::on_channel_open(s, cx, &peer));
            }
            Event::ChannelClosed(peer) => {
                self.channels.remove(&peer);
                self.step(&mut out, |s, cx| {
                    s.channel_closed(&peer, cx.me).map_or(Ok(()), Err)
                });
            }
            Event::Decision {
                session_id,
                accept,
                reason,
            } => self.on_decision(
                session_id,
                proposal::Answer::Keygen { accept, reason },
                &mut out,
            ),
            Event::SignDecision {
                session_id,
                wallet,
                reason,
            } => self.on_decision(
                session_id,
                proposal::Answer::Sign { wallet, reason },
                &mut out,
            ),
            Event::RefreshDecision {
                session_id,
                wallet,
                reason,
            } => self.on_decision(
                session_id,
                proposal::Answer::Refresh { wallet, reason },
                &mut out,
            ),
            Event::RepairDecision {
                session_id,
                accept,
                wallet,
                reason,
            } => self.on_decision(
                session_id,
                proposal::Answer::Repair {
                    accept,
                    wallet,
                    reason,
                },
                &mut out,
            ),
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
            Ok(()) if s.stage() == Stage::Complete => self.completed = Some(s),
            Ok(()) => self.session = Some(s),
            Err(reason) => abort(s, &mut cx, reason),
        }
    }

    fn on_tick(&mut self, out: &mut Vec<Action>) {
        self.expire_parked(out);
        if let Some(s) = self.completed.as_mut() {
            s.confirmation_due(self.now, out);
        }
        self.pending.expire(self.now, self.config.timeout_ms);
        self.step(out, |s, cx| {
            if cx.now >= s.common.deadline {
                Err(crate::session::AbortReason::Timeout {
                    phase: s.phase(),
                    waiting_for: s.waiting_for(cx.me),
                })
            } else {
                Ok(())
            }
        });
    }
}
