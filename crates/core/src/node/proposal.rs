//! Proposals this node receives, of either kind, and the user's decision
//! on them: one path for key generation and signing alike.

use std::collections::BTreeMap;

use mpc_protocol::peer::{
    RefreshProposal, RepairProposal, SessionProposal, SessionResponse, SignProposal,
};
use mpc_protocol::PeerMessage;

use super::api::{Action, Progress};
use super::phase::dkg::KeygenState;
use super::phase::negotiation;
use super::phase::refresh::{self, RefreshState};
use super::phase::repair::{self, RepairState};
use super::phase::signing::{check_wallet, SignState};
use super::session::{proposal_hash, relay_action, Common, Kind, Session, Stage};
use super::Node;
use crate::payload::{derive, SignSettings};
use crate::session::{
    validate_proposal, validate_refresh_proposal, validate_repair_proposal, validate_sign_proposal,
    ProposalError, ValidProposal,
};
use crate::trust::{self, NewKey, SessionKeys};
use crate::wallet::SigningWallet;

/// A proposal as it arrived.
pub(super) enum Incoming {
    Keygen(SessionProposal),
    Sign(SignProposal),
    Refresh(RefreshProposal),
    Repair(RepairProposal),
}

impl Incoming {
    fn session_id(&self) -> &str {
        match self {
            Incoming::Keygen(p) => &p.session_id,
            Incoming::Sign(p) => &p.session_id,
            Incoming::Refresh(p) => &p.session_id,
            Incoming::Repair(p) => &p.session_id,
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Incoming::Keygen(_) => "proposal",
            Incoming::Sign(_) => "sign proposal",
            Incoming::Refresh(_) => "refresh proposal",
            Incoming::Repair(_) => "repair proposal",
        }
    }

    fn to_message(&self) -> PeerMessage {
        match self {
            Incoming::Keygen(p) => PeerMessage::SessionProposal(p.clone()),
            Incoming::Sign(p) => PeerMessage::SignProposal(p.clone()),
            Incoming::Refresh(p) => PeerMessage::RefreshProposal(p.clone()),
            Incoming::Repair(p) => PeerMessage::RepairProposal(p.clone()),
        }
    }

    fn keys(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            Incoming::Keygen(p) => p.keys.as_ref(),
            Incoming::Sign(p) => p.keys.as_ref(),
            Incoming::Refresh(p) => p.keys.as_ref(),
            Incoming::Repair(p) => p.keys.as_ref(),
        }
    }

    /// The relay may deliver a proposal twice; a repeat is no new session.
    fn repeats(&self, s: &Session, from: &str) -> bool {
        let c = &s.common;
        if c.id() != self.session_id() || c.v.initiator != from {
            return false;
        }
        match (self, &s.kind) {
            (Incoming::Keygen(p), _) => c.v.proposal == *p,
            (Incoming::Sign(p), Kind::Sign(g)) => g.proposal == *p,
            (Incoming::Refresh(p), Kind::Refresh(r)) => r.proposal == *p,
            (Incoming::Repair(p), Kind::Repair(r)) => r.proposal == *p,
            (Incoming::Sign(_) | Incoming::Refresh(_) | Incoming::Repair(_), _) => false,
        }
    }

    /// The proposal's own checks, and the kind of session it opens. A
    /// sign proposal's payload is decoded here: what this node signs, it
    /// derives itself.
    fn validate(
        &self,
        from: &str,
        me: &str,
        settings: &SignSettings,
    ) -> Result<(ValidProposal, Kind), ProposalError> {
        match self {
            Incoming::Keygen(p) => validate_proposal(p, from, me)
                .map(|v| (v, Kind::Keygen(Box::<KeygenState>::default()))),
            Incoming::Sign(p) => {
                let (v, message) = validate_sign_proposal(p, from, me)?;
                let key = p.group_public_key.to_ascii_lowercase();
                let derived = derive(p.format, message, v.curve, &key, settings)
                    .map_err(ProposalError::Payload)?;
                let g = SignState::new(p.clone(), derived, key, None);
                Ok((v, Kind::Sign(Box::new(g))))
            }
            Incoming::Refresh(p) => validate_refresh_proposal(p, from, me).map(|v| {
                (
                    v,
                    Kind::Refresh(Box::new(RefreshState::new(p.clone(), None))),
                )
            }),
            Incoming::Repair(p) => validate_repair_proposal(p, from, me)
                .map(|v| (v, Kind::Repair(Box::new(RepairState::new(p.clone(), None))))),
        }
    }

    /// What the user is asked, with the review of what a signing session
    /// would sign.
    fn question(self, from: String, new_keys: Vec<NewKey>, kind: &Kind) -> Progress {
        match self {
            Incoming::Keygen(proposal) => Progress::NeedsDecision {
                from,
                proposal,
                new_keys,
            },
            Incoming::Sign(proposal) => Progress::NeedsSignDecision {
                from,
                proposal,
                new_keys,
                review: match kind {
                    Kind::Sign(g) => g.derived.review.clone(),
                    _ => None,
                },
            },
            Incoming::Refresh(proposal) => Progress::NeedsRefreshDecision {
                from,
                proposal,
                new_keys,
            },
            Incoming::Repair(proposal) => Progress::NeedsRepairDecision {
                from,
                proposal,
                new_keys,
            },
        }
    }
}

/// The user's answer, of the proposal's kind.
pub(super) enum Answer {
    Keygen {
        accept: bool,
        reason: Option<String>,
    },
    /// `Some(wallet)` accepts with that wallet's key package.
    Sign {
        wallet: Option<Box<SigningWallet>>,
        reason: Option<String>,
    },
    /// `Some(wallet)` accepts with that wallet's current key package.
    Refresh {
        wallet: Option<Box<SigningWallet>>,
        reason: Option<String>,
    },
    /// A helper accepts with its wallet; the target with none.
    Repair {
        accept: bool,
        wallet: Option<Box<SigningWallet>>,
        reason: Option<String>,
    },
}

impl Node {
    pub(super) fn on_proposal(
        &mut self,
        from: String,
        p: Incoming,
        sig: Option<String>,
        out: &mut Vec<Action>,
    ) {
        let repeat = |s: &Option<Session>| s.as_ref().is_some_and(|s| p.repeats(s, &from));
        if repeat(&self.session) || repeat(&self.completed) {
            out.push(Action::Rejected {
                from: Some(from),
                session_id: Some(p.session_id().to_string()),
                reason: format!("duplicate {}", p.what()),
            });
            return;
        }
        let me = self.config.peer_id.clone();
        // The signature first: only a proposal its sender really signed
        // gets an answer, so a forgery cannot draw a decline that ends a
        // real session.
        let checked = p
            .validate(&from, &me, &self.config.signing)
            .and_then(|(v, kind)| {
                let keys = self.proposal_keys(&from, &p, &v.participants, sig.as_deref())?;
                Ok((v, kind, keys))
            });
        let checked = checked.and_then(|x| self.check_free(&x.0).map(|_| x));
        let (v, kind, (keys, new_keys)) = match checked {
            Ok(x) => x,
            Err(ProposalError::Key(e)) if e.is_signature() => {
                out.push(Action::Rejected {
                    from: Some(from),
                    session_id: Some(p.session_id().to_string()),
                    reason: format!("{} ignored: {e}", p.what()),
                });
                return;
            }
            Err(reason) => {
                // Tell the sender why; other participants learn from the
                // initiator's session_abort.
                self.reject_proposal(from, &p, reason, out);
                return;
            }
        };
        let id = v.session_id.clone();
        self.used.insert(id.clone());
        let mut common = Common::new(v, &p.to_message(), &me, self.now + self.config.timeout_ms);
        common.keys = keys;
        common.new_keys = new_keys.clone();
        let question = p.question(from, new_keys, &kind);
        self.session = Some(Session { common, kind });
        out.push(Action::Progress(question));
        self.replay_pending(&id, out);
    }

    /// The session id is unused and no other session is in progress.
    pub(super) fn check_free(&self, v: &ValidProposal) -> Result<(), ProposalError> {
        if self.used.contains(&v.session_id) {
            return Err(ProposalError::SessionIdUsed(v.session_id.clone()));
        }
        if let Some(s) = &self.session {
            return Err(ProposalError::Busy(s.id().to_string()));
        }
        Ok(())
    }

    /// A proposal's keys, checked against the address book, and its
    /// signature, checked against the sender's listed key.
    fn proposal_keys(
        &self,
        from: &str,
        p: &Incoming,
        participants: &[String],
        sig: Option<&str>,
    ) -> Result<(SessionKeys, Vec<NewKey>), ProposalError> {
        let me = &self.config.peer_id;
        let (keys, new) = trust::proposal_keys(
            p.keys(),
            participants,
            me,
            &self.identity.public_key(),
            &self.known,
            self.config.require_pinned,
        )?;
        trust::verify(&keys, me, from, &p.to_message(), sig)?;
        Ok((keys, new))
    }

    /// Declines an invalid proposal to its sender and drops what was
    /// buffered for it.
    fn reject_proposal(
        &mut self,
        from: String,
        p: &Incoming,
        reason: ProposalError,
        out: &mut Vec<Action>,
    ) {
        let (session_id, what) = (p.session_id(), p.what());
        let reply = PeerMessage::SessionResponse(SessionResponse {
            session_id: session_id.to_string(),
            accepted: false,
            reason: Some(reason.to_string()),
            proposal_hash: Some(proposal_hash(&p.to_message())),
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
        self.pending.take(session_id);
    }

    /// The user's answer to the proposal the active session waits on.
    pub(super) fn on_decision(
        &mut self,
        session_id: String,
        answer: Answer,
        out: &mut Vec<Action>,
    ) {
        let waiting = self.session.as_ref().is_some_and(|s| {
            s.id() == session_id
                && s.stage() == Stage::AwaitingDecision
                && matches!(
                    (&s.kind, &answer),
                    (Kind::Keygen(_), Answer::Keygen { .. })
                        | (Kind::Sign(_), Answer::Sign { .. })
                        | (Kind::Refresh(_), Answer::Refresh { .. })
                        | (Kind::Repair(_), Answer::Repair { .. })
                )
        });
        if !waiting {
            let what = match answer {
                Answer::Keygen { .. } => "proposal",
                Answer::Sign { .. } => "sign proposal",
                Answer::Refresh { .. } => "refresh proposal",
                Answer::Repair { .. } => "repair proposal",
            };
            out.push(Action::Rejected {
                from: None,
                session_id: Some(session_id),
                reason: format!("no {what} awaits a decision with this session id"),
            });
            return;
        }
        self.step(out, |s, cx| {
            let (accepted, reason) = match (answer, &mut s.kind) {
                (Answer::Keygen { accept, reason }, _) => (accept, reason),
                // A wallet that does not fit the proposal is a decline, with why.
                (
                    Answer::Sign {
                        wallet: Some(w), ..
                    },
                    Kind::Sign(g),
                ) => match check_wallet(&s.common, g, &w) {
                    Ok(()) => {
                        g.wallet = Some(w);
                        (true, None)
                    }
                    Err(e) => (false, Some(e.to_string())),
                },
                (
                    Answer::Refresh {
                        wallet: Some(w), ..
                    },
                    Kind::Refresh(r),
                ) => match refresh::check_wallet(&s.common.v, &r.proposal, &w) {
                    Ok(()) => {
                        r.wallet = Some(w);
                        (true, None)
                    }
                    Err(e) => (false, Some(e.to_string())),
                },
                (
                    Answer::Repair {
                        accept: true,
                        wallet,
                        ..
                    },
                    Kind::Repair(r),
                ) => {
                    let target = r.proposal.target == cx.me;
                    match (target, wallet) {
                        (true, _) => (true, None),
                        (false, Some(w)) => {
                            match repair::check_wallet(&s.common.v, &r.proposal, &w) {
                                Ok(()) => {
                                    r.wallet = Some(w);
                                    (true, None)
                                }
                                Err(e) => (false, Some(e.to_string())),
                            }
                        }
                        (false, None) => (false, Some("this helper has no such wallet".into())),
                    }
                }
                (
                    Answer::Sign { reason, .. }
                    | Answer::Refresh { reason, .. }
                    | Answer::Repair { reason, .. },
                    _,
                ) => (false, reason),
            };
            negotiation::decide(s, cx, accepted, reason)
        });
    }
}
