//! Where a peer message goes: the active session, the one just completed,
//! a new proposal, or the buffer of relayed messages for sessions this
//! node has not heard of yet (the relay may reorder a response before its
//! proposal).

use std::collections::BTreeMap;

use mpc_protocol::{PeerMessage, SignedMessage};

use super::api::Action;
use super::completed::completed_message;
use super::proposal::Incoming;
use super::session::{session_message, Via};
use super::Node;
use crate::trust;

/// Relayed messages for sessions not known yet: id → (arrival, from, msg).
pub(super) struct Pending {
    by_session: BTreeMap<String, Vec<(u64, String, SignedMessage)>>,
    len: usize,
    max: usize,
}

impl Pending {
    pub fn new(max: usize) -> Self {
        Pending {
            by_session: BTreeMap::new(),
            len: 0,
            max,
        }
    }

    /// Keeps `msg`, unless the buffer is full.
    fn push(&mut self, id: String, at: u64, from: String, msg: SignedMessage) -> bool {
        if self.len >= self.max {
            return false;
        }
        self.len += 1;
        self.by_session.entry(id).or_default().push((at, from, msg));
        true
    }

    /// How many messages are kept.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Takes what was kept for `id`.
    pub fn take(&mut self, id: &str) -> Vec<(u64, String, SignedMessage)> {
        let msgs = self.by_session.remove(id).unwrap_or_default();
        self.len -= msgs.len();
        msgs
    }

    /// Drops messages older than `max_age` ms.
    pub fn expire(&mut self, now: u64, max_age: u64) {
        let mut dropped = 0;
        self.by_session.retain(|_, msgs| {
            let before = msgs.len();
            msgs.retain(|(t, _, _)| now.saturating_sub(*t) < max_age);
            dropped += before - msgs.len();
            !msgs.is_empty()
        });
        self.len -= dropped;
    }

    /// When the oldest kept message expires.
    pub fn next_expiry(&self, max_age: u64) -> Option<u64> {
        self.by_session
            .values()
            .flatten()
            .map(|(t, _, _)| t.saturating_add(max_age))
            .min()
    }
}

impl Node {
    pub(super) fn on_peer_message(
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
        let msg = match msg {
            PeerMessage::Ack(_) => return,
            PeerMessage::SessionProposal(p) => {
                return self.on_proposal(from, Incoming::Keygen(p), sig, out)
            }
            PeerMessage::SignProposal(p) => {
                return self.on_proposal(from, Incoming::Sign(p), sig, out)
            }
            PeerMessage::RefreshProposal(p) => {
                return self.on_proposal(from, Incoming::Refresh(p), sig, out)
            }
            PeerMessage::RepairProposal(p) => {
                return self.on_proposal(from, Incoming::Repair(p), sig, out)
            }
            msg => msg,
        };
        let for_active = match (&self.session, &sid) {
            (Some(s), Some(id)) => s.id() == id,
            // Only channel messages may omit the session id; they belong
            // to the session that owns the channels.
            (Some(_), None) => via == Via::Channel,
            (None, _) => false,
        };
        let for_completed =
            !for_active && matches!((&self.completed, &sid), (Some(c), Some(id)) if c.id() == id);
        let session = if for_active {
            self.session.as_ref()
        } else if for_completed {
            self.completed.as_ref()
        } else {
            None
        };
        // A participant's message must carry its signature; anything else
        // is refused before it can touch the session.
        if let Some(s) = session.filter(|s| s.common.is_other(&from)) {
            let me = &self.config.peer_id;
            if let Err(e) = trust::verify(&s.common.keys, me, &from, &msg, sig.as_deref()) {
                out.push(Action::Rejected {
                    from: Some(from),
                    session_id: sid,
                    reason: e.to_string(),
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
                let kept = self.pending.push(
                    id.clone(),
                    self.now,
                    from.clone(),
                    SignedMessage { msg, sig },
                );
                if !kept {
                    out.push(Action::Rejected {
                        from: Some(from),
                        session_id: Some(id),
                        reason: "too many messages for unknown sessions".into(),
                    });
                }
            }
            id => out.push(Action::Rejected {
                from: Some(from),
                session_id: id,
                reason: format!("{} for no known session", msg.msg_type()),
            }),
        }
    }

    /// Delivers what was kept for a session that is now known.
    pub(super) fn replay_pending(&mut self, session_id: &str, out: &mut Vec<Action>) {
        for (_, from, msg) in self.pending.take(session_id) {
            self.on_peer_message(from, msg, Via::Relay, out);
        }
    }
}
