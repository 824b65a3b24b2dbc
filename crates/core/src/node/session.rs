//! One session's state, typed by kind: [`Session`] is what every kind
//! shares ([`Common`]: the proposal, keys, mesh, deadline, early messages)
//! plus the kind's own data ([`Kind`]), which exists only in its variant.
//! It also owns the dispatcher that routes a peer message to a phase, and
//! how a session ends ([`abort`]).

use std::collections::BTreeSet;

use mpc_identity::IdentityKey;
use mpc_protocol::peer::SessionAbort;
use mpc_protocol::relay::WebRtcSignal;
use mpc_protocol::signal::{ClientMessage, RawJson};
use mpc_protocol::{PeerMessage, RelayData};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

use super::api::{Action, Progress};
use super::phase::{dkg, mesh, negotiation, refresh, repair, signing};
use crate::dkg::Misbehaviour;
use crate::mesh::Mesh;
use crate::session::{AbortReason, Phase, ValidProposal, Violation};
use crate::trust::{self, NewKey, SessionKeys};

/// How a peer message reached us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Via {
    Relay,
    Channel,
}

/// Where a session stands; the kind's rounds are `Rounds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Stage {
    AwaitingDecision,
    Negotiating,
    Mesh,
    Rounds,
    Complete,
}

/// One session: what every kind shares, and the kind's own state.
pub(super) struct Session {
    pub common: Common,
    pub kind: Kind,
}

/// The session state every kind has.
pub(super) struct Common {
    pub v: ValidProposal,
    pub others: Vec<String>,
    pub stage: Stage,
    pub deadline: u64,
    pub accepted: BTreeSet<String>,
    pub mesh: Mesh,
    /// Round messages that came before this node's rounds started.
    pub early: Vec<(String, PeerMessage)>,
    /// WebRTC signals (with their signatures) that came before this node
    /// knew everyone accepted.
    pub early_signals: Vec<(String, WebRtcSignal, Option<String>)>,
    /// Every participant's identity key, from the proposal.
    pub keys: SessionKeys,
    /// New keys not pinned yet: the proposer's is pinned when this node
    /// accepts (it signed what the user saw), the others only when the
    /// session completes, every one of them having signed messages under
    /// its key by then.
    pub new_keys: Vec<NewKey>,
    /// Peers that reported the session's result (`wallet_created`,
    /// `signature_created`).
    pub stored_by: BTreeSet<String>,
    /// What every `session_response` in this session must name.
    pub proposal_hash: String,
}

/// A kind of session, with the data only that kind has.
pub(super) enum Kind {
    Keygen(Box<dkg::KeygenState>),
    Sign(Box<signing::SignState>),
    Refresh(Box<refresh::RefreshState>),
    Repair(Box<repair::RepairState>),
}

impl Kind {
    /// The phase a kind's rounds are reported as.
    pub(super) fn phase(&self) -> Phase {
        match self {
            Kind::Keygen(_) => Phase::Dkg,
            Kind::Sign(_) => Phase::Signing,
            Kind::Refresh(_) => Phase::Refresh,
            Kind::Repair(_) => Phase::Repair,
        }
    }

    /// The key generation rounds of a key generation or a refresh.
    pub fn rounds(&mut self) -> Option<&mut dkg::KeygenState> {
        match self {
            Kind::Keygen(k) => Some(k),
            Kind::Refresh(r) => Some(&mut r.rounds),
            Kind::Sign(_) | Kind::Repair(_) => None,
        }
    }
}

/// SHA-256 (hex) of a proposal's JSON: what a `session_response` answers.
pub(super) fn proposal_hash(proposal: &PeerMessage) -> String {
    hex::encode(Sha256::digest(proposal.to_json()))
}

impl Common {
    /// A session opened by `proposal` (as sent, keys included).
    pub fn new(v: ValidProposal, proposal: &PeerMessage, me: &str, deadline: u64) -> Self {
        let others: Vec<String> = v
            .participants
            .iter()
            .filter(|p| *p != me)
            .cloned()
            .collect();
        let mut accepted = BTreeSet::new();
        accepted.insert(v.initiator.clone());
        Common {
            mesh: Mesh::new(others.clone()),
            others,
            v,
            stage: Stage::AwaitingDecision,
            deadline,
            accepted,
            early: Vec::new(),
            early_signals: Vec::new(),
            keys: SessionKeys::new(),
            new_keys: Vec::new(),
            stored_by: BTreeSet::new(),
            proposal_hash: proposal_hash(proposal),
        }
    }

    pub fn id(&self) -> &str {
        &self.v.session_id
    }

    pub fn is_other(&self, peer: &str) -> bool {
        self.others.iter().any(|p| p == peer)
    }

    /// Early messages kept per session: a commitment, share and ready from
    /// each peer, with room for a few repeats.
    pub fn early_limit(&self) -> usize {
        4 * self.others.len() + 8
    }
}

impl Session {
    pub fn id(&self) -> &str {
        self.common.id()
    }

    pub fn stage(&self) -> Stage {
        self.common.stage
    }

    pub fn phase(&self) -> Phase {
        match self.common.stage {
            Stage::AwaitingDecision | Stage::Negotiating => Phase::Negotiation,
            Stage::Mesh => Phase::Mesh,
            Stage::Rounds | Stage::Complete => self.kind.phase(),
        }
    }

    /// Who the session waits for, to name in a timeout.
    pub fn waiting_for(&self, me: &str) -> Vec<String> {
        let c = &self.common;
        match c.stage {
            Stage::AwaitingDecision | Stage::Negotiating => negotiation::waiting_for(c, me),
            Stage::Mesh => c.mesh.waiting_for(),
            Stage::Rounds | Stage::Complete => match &self.kind {
                Kind::Keygen(k) => k.waiting_for(c),
                Kind::Refresh(r) => r.rounds.waiting_for(c),
                Kind::Repair(r) => r.waiting_for(c, me),
                Kind::Sign(g) => g.waiting_for(c),
            },
        }
    }

    /// Why losing the channel to `peer` ends the session, if it does.
    pub fn channel_closed(&self, peer: &str, me: &str) -> Option<AbortReason> {
        if !self.common.is_other(peer) || self.common.stage < Stage::Mesh {
            return None;
        }
        // A repair helper whose part is done may leave.
        if let Kind::Repair(r) = &self.kind {
            if self.common.stage == Stage::Rounds && !r.needs(peer, me) {
                return None;
            }
        }
        let peer = peer.to_string();
        Some(match self.kind {
            Kind::Keygen(_) | Kind::Refresh(_) | Kind::Repair(_) => {
                AbortReason::ChannelClosed { peer }
            }
            Kind::Sign(_) => AbortReason::SignerLeft { peer },
        })
    }
}

/// Where a step's outputs go, and the node-wide state a session step may
/// read. Kept apart from the node so a session can be borrowed mutably at
/// the same time.
pub(super) struct Cx<'a> {
    pub me: &'a str,
    pub identity: &'a IdentityKey,
    pub now: u64,
    pub timeout_ms: u64,
    pub rng: &'a mut ChaCha20Rng,
    /// Plaintext of every share sent, kept only for tests (`faults`).
    #[cfg_attr(not(feature = "faults"), allow(dead_code))]
    pub shares_sent: &'a mut Vec<Vec<u8>>,
    pub channels: &'a BTreeSet<String>,
    pub misbehaviour: &'a Misbehaviour,
    pub out: &'a mut Vec<Action>,
}

impl Cx<'_> {
    pub fn relay(&mut self, to: &str, msg: &PeerMessage) {
        self.out
            .push(relay_action(self.identity, self.me, to, msg.clone()));
    }

    pub fn send(&mut self, to: &str, msg: PeerMessage) {
        self.out.push(Action::SendPeer {
            to: to.to_string(),
            msg: trust::sign(self.identity, self.me, to, msg),
        });
    }

    /// Sends `msg` over the channel to every other participant.
    pub fn send_all(&mut self, others: &[String], msg: &PeerMessage) {
        for p in others {
            self.send(p, msg.clone());
        }
    }

    pub fn progress(&mut self, p: Progress) {
        self.out.push(Action::Progress(p));
    }

    pub fn reject(
        &mut self,
        from: Option<&str>,
        session_id: Option<&str>,
        reason: impl Into<String>,
    ) {
        self.out.push(Action::Rejected {
            from: from.map(str::to_string),
            session_id: session_id.map(str::to_string),
            reason: reason.into(),
        });
    }
}

/// A session step either goes on or ends the session.
pub(super) type Step = Result<(), AbortReason>;

/// Pins the new keys of `peer` (or, with `None`, all that are left).
pub(super) fn pin_new_keys(c: &mut Common, cx: &mut Cx, peer: Option<&str>) {
    let (pin, keep) = std::mem::take(&mut c.new_keys)
        .into_iter()
        .partition(|k| peer.is_none_or(|p| k.peer == p));
    c.new_keys = keep;
    for k in pin {
        cx.out.push(Action::PinKey {
            peer: k.peer,
            key: k.key,
        });
    }
}

/// The session completed: every participant signed under the key it was
/// listed with, so the keys only the proposer vouched for are pinned now.
pub(super) fn pin_vouched(c: &mut Common, cx: &mut Cx) {
    pin_new_keys(c, cx, None);
}

/// `msg`, signed for `to`, sent through the relay.
pub(super) fn relay_action(id: &IdentityKey, me: &str, to: &str, msg: PeerMessage) -> Action {
    Action::SendSignal(ClientMessage::Relay {
        to: to.to_string(),
        data: RawJson::from_value(&RelayData::Peer(trust::sign(id, me, to, msg))),
    })
}

/// Handles a message addressed to the active session, in this order:
/// the transport's rules (who may send what, over the relay or a
/// channel), then negotiation and mesh, then the early-message buffer,
/// then the session's kind.
pub(super) fn session_message(
    s: &mut Session,
    cx: &mut Cx,
    from: &str,
    msg: PeerMessage,
    via: Via,
) -> Step {
    let c = &mut s.common;
    if !c.is_other(from) {
        cx.reject(
            Some(from),
            Some(c.id()),
            format!("{from} is not a participant"),
        );
        return Ok(());
    }
    match msg {
        PeerMessage::SessionResponse(r) => negotiation::on_response(s, cx, from, r),
        PeerMessage::SessionAbort(a) => Err(AbortReason::PeerAborted {
            peer: from.to_string(),
            reason: a.reason,
        }),
        PeerMessage::Share(_) if via == Via::Relay => Err(AbortReason::ProtocolViolation {
            peer: from.to_string(),
            violation: Violation::SecretShareViaRelay,
        }),
        msg if via == Via::Relay => {
            cx.reject(
                Some(from),
                Some(c.id()),
                format!("{} must come over a data channel", msg.msg_type()),
            );
            Ok(())
        }
        PeerMessage::ChannelOpen(_) => {
            c.mesh.confirmed_by(from);
            Ok(())
        }
        PeerMessage::MeshReady(_) => mesh::on_mesh_ready(s, cx, from),
        msg if c.stage < Stage::Rounds && early_kind(&msg).is_some() => {
            if c.early.len() < c.early_limit() {
                c.early.push((from.to_string(), msg));
            } else if let Some(what) = early_kind(&msg) {
                cx.reject(
                    Some(from),
                    Some(c.id()),
                    format!("too many early {what} messages"),
                );
            }
            Ok(())
        }
        msg => match &mut s.kind {
            Kind::Keygen(k) => dkg::on_message(c, k, cx, from, msg),
            Kind::Sign(g) => signing::on_message(c, g, cx, from, msg),
            Kind::Refresh(r) => refresh::on_message(c, r, cx, from, msg),
            Kind::Repair(r) => repair::on_message(c, r, cx, from, msg),
        },
    }
}

/// Round messages that may come before this node's rounds start, and what
/// to call them.
fn early_kind(msg: &PeerMessage) -> Option<&'static str> {
    match msg {
        PeerMessage::Commitment(_) | PeerMessage::Share(_) | PeerMessage::Ready(_) => Some("DKG"),
        PeerMessage::SignCommitment(_) | PeerMessage::SignatureShare(_) => Some("signing"),
        PeerMessage::RepairKey(_) | PeerMessage::RepairDelta(_) | PeerMessage::RepairSigma(_) => {
            Some("repair")
        }
        PeerMessage::EcdsaRound(_) => Some("ECDSA"),
        _ => None,
    }
}

/// Ends a session: tells the others why (see the crate docs for who
/// broadcasts), reports it, and drops every secret it held.
pub(super) fn abort(s: Session, cx: &mut Cx, reason: AbortReason) {
    let phase = s.phase();
    let c = s.common;
    let initiator = c.v.initiator == cx.me;
    let broadcast = match (&reason, phase) {
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
            session_id: c.id().to_string(),
            reason: reason.to_string(),
        });
        for p in &c.others {
            if cx.channels.contains(p) && c.stage >= Stage::Mesh {
                cx.send(p, msg.clone());
            } else {
                cx.relay(p, &msg);
            }
        }
    }
    cx.out.push(Action::Aborted {
        session_id: c.id().to_string(),
        reason,
    });
}
