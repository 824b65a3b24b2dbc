//! Negotiation, shared by every kind: the user's decision on a proposal,
//! the participants' `session_response`s, and the start of the mesh once
//! everyone has accepted.

use mpc_protocol::peer::SessionResponse;
use mpc_protocol::PeerMessage;

use super::mesh;
use crate::mesh::is_offerer;
use crate::node::api::{Action, Progress};
use crate::node::session::{pin_new_keys, Common, Cx, Session, Stage, Step};
use crate::session::AbortReason;

/// Who has not accepted yet (this node too, while its user decides).
pub(in crate::node) fn waiting_for(c: &Common, me: &str) -> Vec<String> {
    c.v.participants
        .iter()
        .filter(|p| !c.accepted.contains(*p) || (*p == me && c.stage == Stage::AwaitingDecision))
        .cloned()
        .collect()
}

/// This node's answer to the proposal: told to every participant; a
/// decline ends the session, an accept pins the keys the user saw.
pub(in crate::node) fn decide(
    s: &mut Session,
    cx: &mut Cx,
    accepted: bool,
    reason: Option<String>,
) -> Step {
    let c = &mut s.common;
    let response = PeerMessage::SessionResponse(SessionResponse {
        session_id: c.id().to_string(),
        accepted,
        reason: reason.clone(),
        proposal_hash: Some(c.proposal_hash.clone()),
    });
    for p in &c.others {
        cx.relay(p, &response);
    }
    if !accepted {
        return Err(AbortReason::Declined {
            peer: cx.me.to_string(),
            reason,
        });
    }
    // Only the proposer signed what the user saw; the keys it lists for
    // the others wait until they have signed under them (see pin_vouched).
    let proposer = c.v.initiator.clone();
    pin_new_keys(c, cx, Some(&proposer));
    c.stage = Stage::Negotiating;
    let me = cx.me.to_string();
    accepted_by(s, cx, me)
}

pub(in crate::node) fn on_response(
    s: &mut Session,
    cx: &mut Cx,
    from: &str,
    r: SessionResponse,
) -> Step {
    // An answer to another proposal that reused this session id (a
    // forgery, or a replay) says nothing about this one.
    if r.proposal_hash
        .as_ref()
        .is_some_and(|h| *h != s.common.proposal_hash)
    {
        let proposer = s.common.v.initiator.clone();
        // A participant signed an answer to another proposal for this very
        // session: the proposer sent different proposals (say, another
        // PSBT) to different participants. Nothing signed can come of it.
        if proposer != cx.me && proposer != from && s.common.stage <= Stage::Negotiating {
            let reason = AbortReason::ProposalsDiffer {
                proposer,
                peer: from.to_string(),
            };
            if s.common.stage == Stage::AwaitingDecision {
                // Not answered yet: a decline naming our proposal tells the
                // others, who may not have seen the difference yet.
                let c = &s.common;
                let response = PeerMessage::SessionResponse(SessionResponse {
                    session_id: c.id().to_string(),
                    accepted: false,
                    reason: Some(reason.to_string()),
                    proposal_hash: Some(c.proposal_hash.clone()),
                });
                for p in &c.others {
                    cx.relay(p, &response);
                }
            }
            return Err(reason);
        }
        cx.reject(
            Some(from),
            Some(s.common.id()),
            "session_response answers another proposal",
        );
        return Ok(());
    }
    if !r.accepted {
        return Err(AbortReason::Declined {
            peer: from.to_string(),
            reason: r.reason,
        });
    }
    if s.common.stage > Stage::Negotiating || s.common.accepted.contains(from) {
        return Ok(()); // a repeat, or late: everyone had accepted already
    }
    accepted_by(s, cx, from.to_string())
}

fn accepted_by(s: &mut Session, cx: &mut Cx, peer: String) -> Step {
    let c = &mut s.common;
    c.accepted.insert(peer.clone());
    cx.progress(Progress::Accepted {
        session_id: c.id().to_string(),
        peer,
        accepted: c.accepted.len(),
        total: c.v.participants.len(),
    });
    maybe_start_mesh(s, cx)
}

fn maybe_start_mesh(s: &mut Session, cx: &mut Cx) -> Step {
    let c = &mut s.common;
    if c.stage != Stage::Negotiating || c.accepted.len() != c.v.participants.len() {
        return Ok(());
    }
    c.stage = Stage::Mesh;
    c.deadline = cx.now + cx.timeout_ms;
    for p in s.common.others.clone() {
        if cx.channels.contains(&p) {
            // A channel left open by an earlier session serves this one too.
            mesh::on_channel_open(s, cx, &p)?;
        } else {
            cx.out.push(Action::Connect {
                offerer: is_offerer(cx.me, &p),
                peer: p,
            });
        }
    }
    for (from, signal, sig) in std::mem::take(&mut s.common.early_signals) {
        mesh::forward_signal(&s.common, cx, from, signal, sig)?;
    }
    Ok(())
}
