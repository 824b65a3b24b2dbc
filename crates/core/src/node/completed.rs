//! What a finished session still hears: the peers' reports of its result
//! (`wallet_created`, `signature_created`), stragglers, and, for a new
//! wallet or a refresh, whether every participant confirmed storing its
//! share.

use mpc_protocol::PeerMessage;

use super::api::{Action, Progress};
use super::phase::refresh;
use super::session::{Common, Kind, Session};
use crate::session::{AbortReason, Violation};

impl Session {
    /// When an unconfirmed wallet's confirmation times out.
    pub fn confirmation_deadline(&self) -> Option<u64> {
        match &self.kind {
            Kind::Keygen(k) => k.confirmation_deadline(&self.common),
            Kind::Refresh(r) => r.rounds.confirmation_deadline(&self.common),
            Kind::Sign(_) | Kind::Repair(_) => None,
        }
    }

    /// Ends a wallet's confirmation if its deadline passed.
    pub fn confirmation_due(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.confirmation_deadline().is_some_and(|d| now >= d) {
            let reason = AbortReason::Timeout {
                phase: self.kind.phase(),
                waiting_for: unconfirmed_by(&self.common),
            };
            if let Some(k) = self.kind.rounds() {
                k.unconfirmed(&self.common, reason, out);
            }
        }
    }
}

/// The other participants whose `wallet_created` has not arrived.
pub(super) fn unconfirmed_by(c: &Common) -> Vec<String> {
    c.others
        .iter()
        .filter(|p| !c.stored_by.contains(*p))
        .cloned()
        .collect()
}

/// A message for the session that already finished: the peers' reports
/// of the result, or stragglers.
pub(super) fn completed_message(
    s: &mut Session,
    from: &str,
    msg: PeerMessage,
    out: &mut Vec<Action>,
) {
    let c = &mut s.common;
    let sid = c.id().to_string();
    let reject = |out: &mut Vec<Action>, reason: String| {
        out.push(Action::Rejected {
            from: Some(from.into()),
            session_id: Some(sid.clone()),
            reason,
        })
    };
    let reported = match (&mut s.kind, msg) {
        (Kind::Keygen(k), PeerMessage::WalletCreated(w)) if c.is_other(from) => {
            let agrees = k.agrees(&w).ok_or(Violation::OtherGroupKey);
            if agrees.is_ok() && c.stored_by.insert(from.to_string()) {
                out.push(Action::Progress(Progress::PeerStored {
                    session_id: sid.clone(),
                    peer: from.to_string(),
                }));
                k.check_confirmed(c, out);
            }
            return agrees.map_or_else(|v| reject(out, v.to_string()), |_| ());
        }
        (Kind::Refresh(r), PeerMessage::RefreshCommitted(m)) if c.is_other(from) => {
            let k = &mut r.rounds;
            let fits = refresh::check_committed(k, from, &m);
            if fits.is_ok() && c.stored_by.insert(from.to_string()) {
                out.push(Action::Progress(Progress::PeerCommitted {
                    session_id: sid.clone(),
                    peer: from.to_string(),
                }));
                k.check_confirmed(c, out);
            }
            return fits.map_or_else(|e| reject(out, e.to_string()), |_| ());
        }
        (kind @ (Kind::Keygen(_) | Kind::Refresh(_)), PeerMessage::SessionAbort(a))
            if c.is_other(from) =>
        {
            let Some(k) = kind.rounds() else { return };
            // It did not store its share, or will not say so.
            let reason = AbortReason::PeerAborted {
                peer: from.to_string(),
                reason: a.reason.clone(),
            };
            k.unconfirmed(c, reason, out);
            return reject(
                out,
                format!(
                    "peer aborted after this node completed the session: {}",
                    a.reason
                ),
            );
        }
        (Kind::Sign(g), PeerMessage::SignatureCreated(sc)) if c.is_other(from) => {
            g.agrees(&sc).ok_or(Violation::OtherSignature)
        }
        (_, PeerMessage::SessionAbort(a)) => {
            return reject(
                out,
                format!(
                    "peer aborted after this node completed the session: {}",
                    a.reason
                ),
            )
        }
        (_, other) => {
            return reject(
                out,
                format!("{} after the session completed", other.msg_type()),
            )
        }
    };
    match reported {
        Err(v) => reject(out, v.to_string()),
        Ok(progress) if c.stored_by.insert(from.to_string()) => {
            out.push(Action::Progress(progress(sid.clone(), from.to_string())));
        }
        Ok(_) => {}
    }
}
