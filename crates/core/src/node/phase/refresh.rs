//! Refresh: new shares of a wallet's key, so the address stays. The
//! rounds are key generation's (`dkg.rs`, with frost's `refresh_dkg_*`);
//! this file owns what differs: the wallet a node refreshes and its
//! checks, and the two-phase switch. A node hands its new share to the
//! driver as pending ([`Action::Refreshed`]) and says `refresh_committed`;
//! only with every other participant's does it make it current
//! ([`Action::RefreshConfirmed`]). Whatever ends the session earlier,
//! the old share stays in use.

use mpc_protocol::peer::{RefreshCommitted, RefreshProposal};
use mpc_protocol::PeerMessage;

use super::dkg::{self, KeygenState};
use crate::dkg::RefreshOf;
use crate::node::api::{Action, Progress};
use crate::node::session::{Common, Cx, Step};
use crate::session::{AbortReason, ProposalError, ValidProposal, Violation};
use crate::wallet::{SigningWallet, WalletResult};

/// A refresh session's own state.
pub(in crate::node) struct RefreshState {
    pub proposal: RefreshProposal,
    /// This node's current share, once the user accepted.
    pub wallet: Option<Box<SigningWallet>>,
    /// The key generation rounds, on the wallet's identifiers.
    pub rounds: KeygenState,
}

impl RefreshState {
    pub fn new(proposal: RefreshProposal, wallet: Option<Box<SigningWallet>>) -> Self {
        RefreshState {
            proposal,
            wallet,
            rounds: KeygenState::default(),
        }
    }
}

/// Whether `w` is the wallet a proposal names: its group key, curve,
/// threshold and generation. Shared by refresh and repair.
pub(in crate::node) fn check_same_wallet(
    v: &ValidProposal,
    w: &SigningWallet,
    group_key: &str,
    threshold: u16,
    generation: u32,
) -> Result<(), ProposalError> {
    if !w.group_public_key.eq_ignore_ascii_case(group_key) {
        return Err(ProposalError::OtherGroupKey);
    }
    if w.curve != v.curve {
        return Err(ProposalError::OtherCurve {
            wallet: w.curve,
            proposal: v.curve,
        });
    }
    if w.threshold != threshold {
        return Err(ProposalError::OtherThreshold {
            wallet: w.threshold,
            proposal: threshold,
        });
    }
    if w.generation != generation {
        return Err(ProposalError::OtherGeneration {
            wallet: w.generation,
            proposal: generation,
        });
    }
    Ok(())
}

/// Whether `w` is the wallet `p` refreshes, at the generation it names,
/// and every participant it lists holds a share of it.
pub(in crate::node) fn check_wallet(
    v: &ValidProposal,
    p: &RefreshProposal,
    w: &SigningWallet,
) -> Result<(), ProposalError> {
    check_same_wallet(v, w, &p.group_public_key, p.threshold, p.generation)?;
    if let Some(x) = v
        .participants
        .iter()
        .find(|x| !w.identifiers.contains_key(*x))
    {
        return Err(ProposalError::NotInWallet(x.clone()));
    }
    Ok(())
}

/// Round 1, from this node's current share.
pub(in crate::node) fn start(c: &mut Common, r: &mut RefreshState, cx: &mut Cx) -> Step {
    let Some(w) = r.wallet.as_deref() else {
        return Err(AbortReason::Internal("a refresh without a wallet".into()));
    };
    r.rounds.refresh = Some(RefreshOf {
        identifiers: w.identifiers.clone(),
        key_package: w.key_package.clone(),
        public_key_package: w.public_key_package.clone(),
        generation: w.generation,
    });
    dkg::start(c, &mut r.rounds, cx)
}

/// A channel message for a refresh session.
pub(in crate::node) fn on_message(
    c: &mut Common,
    r: &mut RefreshState,
    cx: &mut Cx,
    from: &str,
    msg: PeerMessage,
) -> Step {
    match msg {
        PeerMessage::RefreshCommitted(m) => {
            check_committed(&r.rounds, from, &m)?;
            c.stored_by.insert(from.to_string());
            Ok(())
        }
        msg @ PeerMessage::WalletCreated(_) => {
            cx.reject(
                Some(from),
                Some(c.id()),
                format!("{} in a refresh session", msg.msg_type()),
            );
            Ok(())
        }
        msg => dkg::on_message(c, &mut r.rounds, cx, from, msg),
    }
}

/// A `refresh_committed` must name this wallet and the new generation.
pub(in crate::node) fn check_committed(k: &KeygenState, from: &str, m: &RefreshCommitted) -> Step {
    let generation = k.refresh.as_ref().map(|r| r.generation + 1);
    let key = k.group_public_key.as_deref();
    let fits = key.is_none_or(|g| g.eq_ignore_ascii_case(&m.group_public_key))
        && generation.is_none_or(|g| g == m.generation);
    if fits {
        Ok(())
    } else {
        Err(AbortReason::ProtocolViolation {
            peer: from.to_string(),
            violation: Violation::OtherCommit,
        })
    }
}

/// Every `ready` agreed: the new share goes to the driver as pending, and
/// the others are told it is stored (the driver stores it before it sends
/// this batch).
pub(in crate::node) fn completed(c: &Common, result: WalletResult, cx: &mut Cx) {
    let sid = c.id().to_string();
    let committed = PeerMessage::RefreshCommitted(RefreshCommitted {
        session_id: sid.clone(),
        group_public_key: result.group_public_key.clone(),
        generation: result.generation,
    });
    cx.send_all(&c.others, &committed);
    cx.out.push(Action::Refreshed(Box::new(result)));
    for p in c.stored_by.clone() {
        cx.progress(Progress::PeerCommitted {
            session_id: sid.clone(),
            peer: p,
        });
    }
}
