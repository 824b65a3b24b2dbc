//! The user's commands, and the sessions this node proposes: a `Create`
//! or `Sign` first waits (parked) for the server's list of identity keys,
//! then becomes a signed proposal to every other participant.

use mpc_protocol::peer::{RefreshProposal, RepairProposal, SessionProposal, SignProposal};
use mpc_protocol::signal::ClientMessage;
use mpc_protocol::PeerMessage;
use rand_core::RngCore;

use super::api::{Action, Command};
use super::phase::dkg::KeygenState;
use super::phase::refresh::{self, RefreshState};
use super::phase::repair::{self, RepairState};
use super::phase::signing::{check_signers, SignState};
use super::session::{relay_action, Common, Kind, Session, Stage};
use super::Node;
use crate::payload::{derive, Derived};
use crate::session::{
    validate_proposal, validate_refresh_proposal, validate_repair_proposal, validate_sign_proposal,
    AbortReason, ProposalError, SessionKind, ValidProposal,
};
use crate::trust::{self, NewKey, SessionKeys};

/// A `Create` or `Sign` waiting for the server's key list.
pub(super) struct Parked {
    command: Command,
    pub deadline: u64,
}

/// The name a proposing command's session goes by.
fn session_id_of(c: &Command) -> String {
    match c {
        Command::Create { session_id, .. }
        | Command::Sign { session_id, .. }
        | Command::Refresh { session_id, .. }
        | Command::Repair { session_id, .. } => session_id.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

impl Node {
    pub(super) fn on_command(&mut self, c: Command, out: &mut Vec<Action>) {
        match c {
            Command::Register => {
                self.server.register_wanted = true;
                self.try_register(out);
            }
            Command::ListPeers => out.push(Action::SendSignal(ClientMessage::ListPeers {
                watch: false,
                keys: false,
                ids: None,
                after: None,
            })),
            Command::Create { .. }
            | Command::Sign { .. }
            | Command::Refresh { .. }
            | Command::Repair { .. } => self.park(c, out),
            Command::Cancel { session_id } => {
                if self
                    .parked
                    .as_ref()
                    .is_some_and(|p| session_id_of(&p.command) == session_id)
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

    /// Asks for fresh keys first: the server's view of who holds which key
    /// is checked against the address book before proposing.
    fn park(&mut self, mut command: Command, out: &mut Vec<Action>) {
        // Draw the session id now, so that every outcome names it.
        if let Command::Create { session_id, .. }
        | Command::Sign { session_id, .. }
        | Command::Refresh { session_id, .. }
        | Command::Repair { session_id, .. } = &mut command
        {
            if session_id.is_none() {
                let mut b = [0u8; 16];
                self.rng.fill_bytes(&mut b);
                *session_id = Some(hex::encode(b));
            }
        }
        if let Some(p) = &self.parked {
            out.push(Action::Aborted {
                session_id: session_id_of(&command),
                reason: AbortReason::BusyParked {
                    session_id: session_id_of(&p.command),
                },
            });
            return;
        }
        let ids = match &command {
            Command::Create { participants, .. } => Some(participants.clone()),
            Command::Sign { signers, .. } => Some(signers.clone()),
            Command::Refresh { participants, .. } => Some(participants.clone()),
            Command::Repair {
                helpers, target, ..
            } => Some(helpers.iter().chain([target]).cloned().collect()),
            _ => None,
        };
        self.parked = Some(Parked {
            command,
            deadline: self.now + self.config.timeout_ms,
        });
        out.push(Action::SendSignal(ClientMessage::ListPeers {
            watch: false,
            keys: true,
            ids,
            after: None,
        }));
    }

    /// A parked command whose key list never came ends.
    pub(super) fn expire_parked(&mut self, out: &mut Vec<Action>) {
        if self.parked.as_ref().is_some_and(|p| self.now >= p.deadline) {
            if let Some(p) = self.parked.take() {
                out.push(Action::Aborted {
                    session_id: session_id_of(&p.command),
                    reason: AbortReason::NoPeerList,
                });
            }
        }
    }

    /// Runs a parked `Create` or `Sign` once the key list arrived.
    pub(super) fn run_parked(&mut self, out: &mut Vec<Action>) {
        if let Some(p) = self.parked.take() {
            self.propose(p.command, out);
        }
    }

    /// Checks a session this node proposes, then sends the proposal to
    /// every other participant and makes it the active session.
    fn propose(&mut self, command: Command, out: &mut Vec<Action>) {
        let session_id = session_id_of(&command);
        let me = self.config.peer_id.clone();
        let (kind_of, checked) = match command {
            Command::Create {
                participants,
                threshold,
                curve,
                ..
            } => {
                let proposal = SessionProposal {
                    session_id: session_id.clone(),
                    total: u16::try_from(participants.len()).unwrap_or(u16::MAX),
                    threshold,
                    participants,
                    curve: Some(curve.as_str().to_string()),
                    initiator: Some(me.clone()),
                    keys: None,
                };
                let checked =
                    validate_proposal(&proposal, &me, &me).map(|v| (v, Draft::Keygen(proposal)));
                (SessionKind::Keygen, checked)
            }
            Command::Sign {
                wallet,
                message,
                format,
                signers,
                ..
            } => {
                let proposal = SignProposal {
                    session_id: session_id.clone(),
                    group_public_key: wallet.group_public_key.clone(),
                    message_hex: hex::encode(&message),
                    signers,
                    keys: None,
                    format,
                    generation: wallet.generation,
                };
                let settings = &self.config.signing;
                let checked = validate_sign_proposal(&proposal, &me, &me)
                    .and_then(|(v, message)| {
                        check_signers(&wallet, &v.participants)?;
                        let key = &wallet.group_public_key;
                        let derived = derive(format, message, wallet.curve, key, settings)
                            .map_err(ProposalError::Payload)?;
                        Ok((v, derived))
                    })
                    .map(|(v, derived)| (v, Draft::Sign(proposal, wallet, Box::new(derived))));
                (SessionKind::Sign, checked)
            }
            Command::Refresh {
                wallet,
                mut participants,
                ..
            } => {
                participants.sort();
                let proposal = RefreshProposal {
                    session_id: session_id.clone(),
                    group_public_key: wallet.group_public_key.clone(),
                    curve: wallet.curve.as_str().to_string(),
                    threshold: wallet.threshold,
                    participants,
                    generation: wallet.generation,
                    keys: None,
                };
                let checked = validate_refresh_proposal(&proposal, &me, &me)
                    .and_then(|v| {
                        refresh::check_wallet(&v, &proposal, &wallet)?;
                        Ok(v)
                    })
                    .map(|v| (v, Draft::Refresh(proposal, wallet)));
                (SessionKind::Refresh, checked)
            }
            Command::Repair {
                wallet,
                mut helpers,
                target,
                ..
            } => {
                helpers.sort();
                let proposal = RepairProposal {
                    session_id: session_id.clone(),
                    group_public_key: wallet.group_public_key.clone(),
                    curve: wallet.curve.as_str().to_string(),
                    threshold: wallet.threshold,
                    helpers,
                    target,
                    generation: wallet.generation,
                    keys: None,
                };
                let checked = validate_repair_proposal(&proposal, &me, &me)
                    .and_then(|v| {
                        repair::check_wallet(&v, &proposal, &wallet)?;
                        Ok(v)
                    })
                    .map(|v| (v, Draft::Repair(proposal, wallet)));
                (SessionKind::Repair, checked)
            }
            _ => return,
        };
        let checked = checked.and_then(|(v, draft)| Ok((self.own_session_keys(&v)?, v, draft)));
        let (keys, v, draft) = match checked {
            Ok(x) => x,
            Err(error) => {
                out.push(Action::Aborted {
                    session_id,
                    reason: AbortReason::CannotStart {
                        kind: kind_of,
                        error,
                    },
                });
                return;
            }
        };
        let (keys, new_keys) = keys;
        let (msg, kind) = draft.finish(trust::to_wire(&keys));
        self.used.insert(v.session_id.clone());
        let mut common = Common::new(v, &msg, &me, self.now + self.config.timeout_ms);
        common.stage = Stage::Negotiating;
        common.keys = keys;
        common.new_keys = new_keys;
        for p in &common.others {
            let msg = self.tampered(p, &msg).unwrap_or_else(|| msg.clone());
            out.push(relay_action(&self.identity, &me, p, msg));
        }
        self.session = Some(Session { common, kind });
        self.replay_pending(&session_id, out);
    }

    /// The altered proposal a lying proposer sends `to` (`faults` only).
    #[cfg(feature = "faults")]
    fn tampered(&self, to: &str, msg: &PeerMessage) -> Option<PeerMessage> {
        let tamper = self.misbehaviour.tamper_proposal_to.get(to)?;
        let PeerMessage::SignProposal(p) = msg else {
            return None;
        };
        let payload = hex::decode(&p.message_hex).ok()?;
        let mut p = p.clone();
        p.message_hex = hex::encode(tamper(&payload));
        Some(PeerMessage::SignProposal(p))
    }

    #[cfg(not(feature = "faults"))]
    fn tampered(&self, _to: &str, _msg: &PeerMessage) -> Option<PeerMessage> {
        None
    }

    /// For a session this node proposes: checks that it is free to start
    /// it, and returns every participant's key, and those not pinned yet
    /// (pinned once the session completes, each participant having signed
    /// under its key by then).
    fn own_session_keys(
        &self,
        v: &ValidProposal,
    ) -> Result<(SessionKeys, Vec<NewKey>), ProposalError> {
        self.check_free(v)?;
        let (keys, new) = trust::proposer_keys(
            &v.participants,
            &self.config.peer_id,
            &self.identity.public_key(),
            &self.known,
            &self.server.advertised,
            self.config.require_pinned,
        )?;
        Ok((keys, new))
    }
}

/// A proposal this node is about to send, before it lists the keys.
enum Draft {
    Keygen(SessionProposal),
    Sign(
        SignProposal,
        Box<crate::wallet::SigningWallet>,
        Box<Derived>,
    ),
    Refresh(RefreshProposal, Box<crate::wallet::SigningWallet>),
    Repair(RepairProposal, Box<crate::wallet::SigningWallet>),
}

impl Draft {
    /// The proposal with the participants' keys, and the session it opens.
    fn finish(self, keys: std::collections::BTreeMap<String, String>) -> (PeerMessage, Kind) {
        match self {
            Draft::Keygen(mut p) => {
                p.keys = Some(keys);
                let kind = Kind::Keygen(Box::<KeygenState>::default());
                (PeerMessage::SessionProposal(p), kind)
            }
            Draft::Sign(mut p, wallet, derived) => {
                p.keys = Some(keys);
                let key = wallet.group_public_key.clone();
                let g = SignState::new(p.clone(), *derived, key, Some(wallet));
                (PeerMessage::SignProposal(p), Kind::Sign(Box::new(g)))
            }
            Draft::Refresh(mut p, wallet) => {
                p.keys = Some(keys);
                let r = RefreshState::new(p.clone(), Some(wallet));
                (PeerMessage::RefreshProposal(p), Kind::Refresh(Box::new(r)))
            }
            Draft::Repair(mut p, wallet) => {
                p.keys = Some(keys);
                let r = RepairState::new(p.clone(), Some(wallet));
                (PeerMessage::RepairProposal(p), Kind::Repair(Box::new(r)))
            }
        }
    }
}
