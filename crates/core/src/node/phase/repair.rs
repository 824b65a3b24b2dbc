//! Repair: helpers rebuild a participant's lost share (`crate::repair`,
//! frost's repairable threshold scheme) over the mesh.
//!
//! Every participant sends `repair_key` (its X25519 key for this session;
//! a helper adds the wallet's public data). A helper sends each other
//! helper a sealed `repair_delta`, then the target a sealed `repair_sigma`.
//! The target trusts no single helper for the wallet: it rebuilds its
//! share, checks it against each helper's public key package, names any
//! helper whose data is not the wallet the share belongs to, and only then
//! stores the wallet and says `wallet_created`, which ends the helpers'
//! part.

use std::collections::{BTreeMap, BTreeSet};

use mpc_identity::sealed::{self, SessionKey};
use mpc_protocol::peer::{
    RepairDelta, RepairKey, RepairProposal, RepairSigma, WalletCreated, WalletPublic,
};
use mpc_protocol::PeerMessage;
use zeroize::Zeroizing;

use crate::node::api::{Action, Progress};
use crate::node::session::{pin_vouched, Common, Cx, Stage, Step};
use crate::repair::{self, RecoverError};
use crate::session::{AbortReason, ProposalError, ValidProposal, Violation};
use crate::wallet::{PublicKeyPackage, SigningWallet, WalletResult};

/// A repair session's own state.
pub(in crate::node) struct RepairState {
    pub proposal: RepairProposal,
    /// A helper's wallet, once its user accepted.
    pub wallet: Option<Box<SigningWallet>>,
    enc: Option<SessionKey>,
    peer_enc: BTreeMap<String, [u8; 32]>,
    /// The target: each helper's account of the wallet.
    publics: BTreeMap<String, WalletPublic>,
    /// A helper: the deltas for it, its own included.
    deltas: BTreeMap<String, Zeroizing<Vec<u8>>>,
    deltas_sent: bool,
    sigma_sent: bool,
    /// The target: each helper's sigma.
    sigmas: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

impl RepairState {
    pub fn new(proposal: RepairProposal, wallet: Option<Box<SigningWallet>>) -> Self {
        RepairState {
            proposal,
            wallet,
            enc: None,
            peer_enc: BTreeMap::new(),
            publics: BTreeMap::new(),
            deltas: BTreeMap::new(),
            deltas_sent: false,
            sigma_sent: false,
            sigmas: BTreeMap::new(),
        }
    }

    fn is_target(&self, me: &str) -> bool {
        self.proposal.target == me
    }

    /// Whether this node still needs anything from `peer`: the target
    /// needs each helper until its sigma and wallet data are in; a helper
    /// needs the other helpers until it sent its sigma, and the target
    /// until the target says it stored its share.
    pub fn needs(&self, peer: &str, me: &str) -> bool {
        if self.is_target(me) {
            return !(self.sigmas.contains_key(peer) && self.publics.contains_key(peer));
        }
        peer == self.proposal.target || !self.sigma_sent
    }

    pub fn waiting_for(&self, c: &Common, me: &str) -> Vec<String> {
        let p = &self.proposal;
        let missing_key: Vec<String> = c
            .others
            .iter()
            .filter(|x| !self.peer_enc.contains_key(*x))
            .cloned()
            .collect();
        if !missing_key.is_empty() {
            return missing_key;
        }
        if self.is_target(me) {
            return p
                .helpers
                .iter()
                .filter(|h| !self.sigmas.contains_key(*h))
                .cloned()
                .collect();
        }
        if !self.sigma_sent {
            return p
                .helpers
                .iter()
                .filter(|h| !self.deltas.contains_key(*h))
                .cloned()
                .collect();
        }
        vec![p.target.clone()]
    }
}

/// A helper's checks that `w` is the wallet `p` repairs, at its
/// generation, with the helpers and the target among its participants.
pub(in crate::node) fn check_wallet(
    v: &ValidProposal,
    p: &RepairProposal,
    w: &SigningWallet,
) -> Result<(), ProposalError> {
    super::refresh::check_same_wallet(v, w, &p.group_public_key, p.threshold, p.generation)?;
    if let Some(h) = p.helpers.iter().find(|h| !w.identifiers.contains_key(*h)) {
        return Err(ProposalError::NotInWallet(h.clone()));
    }
    // A target new to the wallet is added: everyone must help, to learn
    // its verifying share.
    if !w.identifiers.contains_key(&p.target) {
        let missing: Vec<String> = w
            .participants
            .iter()
            .filter(|x| !p.helpers.contains(x))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(ProposalError::AddNeedsEveryone(missing));
        }
    }
    Ok(())
}

/// The wallet's public data, as a helper hands it to the target.
fn public_of(w: &SigningWallet) -> WalletPublic {
    WalletPublic {
        participants: w.participants.clone(),
        identifiers: w.identifiers.clone(),
        generation: w.generation,
        public_key_package: hex::encode(w.public_key_package.serialize()),
    }
}

/// Once the mesh is up: this node's key for the session's sealed messages.
pub(in crate::node) fn start(c: &mut Common, r: &mut RepairState, cx: &mut Cx) -> Step {
    let enc = SessionKey::generate(cx.rng);
    let key = RepairKey {
        session_id: c.id().to_string(),
        enc_key: hex::encode(enc.public_bytes()),
        wallet: r.wallet.as_deref().map(public_of),
    };
    r.enc = Some(enc);
    #[cfg(feature = "faults")]
    let key_for = |to: &str| {
        let mut k = key.clone();
        if cx.misbehaviour.lie_in_repair_to.contains(to) {
            if let Some(w) = k.wallet.as_mut() {
                w.generation += 1;
            }
        }
        k
    };
    #[cfg(not(feature = "faults"))]
    let key_for = |_: &str| key.clone();
    let msgs: Vec<(String, PeerMessage)> = c
        .others
        .iter()
        .map(|p| (p.clone(), PeerMessage::RepairKey(key_for(p))))
        .collect();
    for (p, m) in msgs {
        cx.send(&p, m);
    }
    advance(c, r, cx)
}

/// A channel message for a repair session.
pub(in crate::node) fn on_message(
    c: &mut Common,
    r: &mut RepairState,
    cx: &mut Cx,
    from: &str,
    msg: PeerMessage,
) -> Step {
    let helper = r.proposal.helpers.iter().any(|h| h == from);
    let violation = |violation| AbortReason::ProtocolViolation {
        peer: from.to_string(),
        violation,
    };
    let bad = |detail: &str| AbortReason::InvalidShare {
        peer: from.to_string(),
        detail: detail.to_string(),
    };
    match msg {
        PeerMessage::RepairKey(k) => {
            let key = hex::decode(&k.enc_key)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| bad("repair_key has no valid enc_key"))?;
            if *r.peer_enc.entry(from.to_string()).or_insert(key) != key {
                return Err(violation(Violation::TwoEncryptionKeys));
            }
            if helper && r.is_target(cx.me) {
                let w = k
                    .wallet
                    .ok_or_else(|| bad("a helper's repair_key without the wallet"))?;
                r.publics.insert(from.to_string(), w);
            }
            advance(c, r, cx)
        }
        PeerMessage::RepairDelta(d) if helper && !r.is_target(cx.me) => {
            let plain = open(r, from, &d.data, &d.enc)?;
            r.deltas.entry(from.to_string()).or_insert(plain);
            advance(c, r, cx)
        }
        PeerMessage::RepairSigma(s) if helper && r.is_target(cx.me) => {
            let plain = open(r, from, &s.data, &s.enc)?;
            r.sigmas.entry(from.to_string()).or_insert(plain);
            advance(c, r, cx)
        }
        PeerMessage::WalletCreated(w) if from == r.proposal.target && !r.is_target(cx.me) => {
            if !w.pubkey.eq_ignore_ascii_case(&r.proposal.group_public_key) {
                return Err(violation(Violation::OtherGroupKey));
            }
            if let Some(added) = added_wallet(c, r, cx.me, from, w.verifying_share.as_deref())? {
                cx.out.push(Action::ParticipantAdded(Box::new(added)));
            }
            c.stored_by.insert(from.to_string());
            c.stage = Stage::Complete;
            pin_vouched(c, cx);
            cx.progress(Progress::PeerStored {
                session_id: c.id().to_string(),
                peer: from.to_string(),
            });
            cx.out.push(Action::Repaired {
                session_id: c.id().to_string(),
                group_public_key: r.proposal.group_public_key.clone(),
                target: from.to_string(),
            });
            Ok(())
        }
        msg => {
            cx.reject(
                Some(from),
                Some(c.id()),
                format!("{} from {from} in a repair session", msg.msg_type()),
            );
            Ok(())
        }
    }
}

/// The FROST identifier of `target`: its own, or for a participant the
/// repair adds, one past the highest.
fn target_identifier(ids: &BTreeMap<String, u16>, target: &str) -> Result<u16, AbortReason> {
    ids.get(target)
        .copied()
        .or_else(|| repair::next_identifier(ids))
        .ok_or_else(|| AbortReason::Internal("no identifier left".into()))
}

/// A helper, once the target says it stored its share: if the repair
/// added it, the wallet with its verifying share (checked to lie on the
/// wallet's polynomial) and its name added.
fn added_wallet(
    c: &Common,
    r: &RepairState,
    me: &str,
    target: &str,
    verifying_share: Option<&str>,
) -> Result<Option<WalletResult>, AbortReason> {
    let Some(w) = r.wallet.as_deref() else {
        return Ok(None);
    };
    if w.identifiers.contains_key(target) {
        return Ok(None);
    }
    let bad = |detail: &str| AbortReason::InvalidShare {
        peer: target.to_string(),
        detail: detail.to_string(),
    };
    let x = target_identifier(&w.identifiers, target)?;
    let share = verifying_share.ok_or_else(|| bad("wallet_created without its verifying share"))?;
    let public = repair::enroll(&w.public_key_package, x, share)
        .map_err(|_| bad("its verifying share is not on the wallet's polynomial"))?;
    let mut participants = w.participants.clone();
    participants.push(target.to_string());
    participants.sort();
    let mut identifiers = w.identifiers.clone();
    identifiers.insert(target.to_string(), x);
    Ok(Some(WalletResult {
        session_id: c.id().to_string(),
        curve: w.curve,
        threshold: w.threshold,
        identifier: w.identifiers.get(me).copied().unwrap_or_default(),
        participants,
        identifiers,
        generation: w.generation,
        key_package: w.key_package.clone(),
        group_public_key: public.group_public_key(),
        public_key_package: public,
        transcript_hash: String::new(),
    }))
}

/// Opens a sealed repair value from `from`.
fn open(
    r: &RepairState,
    from: &str,
    data: &str,
    enc: &str,
) -> Result<Zeroizing<Vec<u8>>, AbortReason> {
    let bad = |detail: &str| AbortReason::InvalidShare {
        peer: from.to_string(),
        detail: detail.to_string(),
    };
    if enc != sealed::SCHEME {
        return Err(AbortReason::ProtocolViolation {
            peer: from.to_string(),
            violation: Violation::PlaintextShare,
        });
    }
    let (Some(own), Some(sender)) = (r.enc.as_ref(), r.peer_enc.get(from)) else {
        return Err(bad("sealed value before its sender's repair_key"));
    };
    let sealed = hex::decode(data).map_err(|_| bad("sealed value is not hex"))?;
    let plain = own
        .open(sender, &sealed)
        .map_err(|_| bad("sealed value does not decrypt with this session's keys"))?;
    Ok(Zeroizing::new(plain.to_vec()))
}

fn seal(r: &RepairState, cx: &mut Cx, to: &str, plain: &[u8]) -> Result<String, AbortReason> {
    let (Some(own), Some(recipient)) = (r.enc.as_ref(), r.peer_enc.get(to)) else {
        return Err(AbortReason::Internal(format!("no encryption key for {to}")));
    };
    own.seal(cx.rng, recipient, plain)
        .map(hex::encode)
        .map_err(|e| AbortReason::Internal(format!("sealing failed: {e}")))
}

/// Does whatever the keys and values so far allow: a helper's deltas,
/// then its sigma; the target's share.
fn advance(c: &mut Common, r: &mut RepairState, cx: &mut Cx) -> Step {
    if r.enc.is_none() || c.stage != Stage::Rounds {
        return Ok(());
    }
    if r.is_target(cx.me) {
        return maybe_recover(c, r, cx);
    }
    let p = r.proposal.clone();
    let me = cx.me;
    let have_keys = p
        .helpers
        .iter()
        .all(|h| h == me || r.peer_enc.contains_key(h));
    if !r.deltas_sent && have_keys {
        let Some(w) = r.wallet.as_deref() else {
            return Err(AbortReason::Internal("a helper without its wallet".into()));
        };
        let helpers = w
            .identifiers_of(&p.helpers)
            .map_err(AbortReason::Internal)?;
        let target = target_identifier(&w.identifiers, &p.target)?;
        let deltas = repair::deltas(w, &helpers, target, cx.rng).map_err(AbortReason::Internal)?;
        r.deltas_sent = true;
        for (to, delta) in deltas {
            if to == cx.me {
                r.deltas.insert(to, delta);
                continue;
            }
            let data = seal(r, cx, &to, &delta)?;
            cx.send(
                &to,
                PeerMessage::RepairDelta(RepairDelta {
                    session_id: c.id().to_string(),
                    data,
                    enc: sealed::SCHEME.to_string(),
                }),
            );
        }
    }
    let all_deltas = p.helpers.iter().all(|h| r.deltas.contains_key(h));
    if r.deltas_sent && !r.sigma_sent && all_deltas && r.peer_enc.contains_key(&p.target) {
        let ordered: Vec<&[u8]> = p
            .helpers
            .iter()
            .filter_map(|h| r.deltas.get(h).map(|d| d.as_slice()))
            .collect();
        let sigma = repair::sigma(c.v.curve, &ordered).map_err(|i| AbortReason::InvalidShare {
            peer: p.helpers.get(i).cloned().unwrap_or_default(),
            detail: "repair_delta is not a scalar of the curve".into(),
        })?;
        r.deltas.clear();
        r.sigma_sent = true;
        let data = seal(r, cx, &p.target, &sigma)?;
        cx.send(
            &p.target,
            PeerMessage::RepairSigma(RepairSigma {
                session_id: c.id().to_string(),
                data,
                enc: sealed::SCHEME.to_string(),
            }),
        );
        // The target's wallet_created may take until a timeout from now.
        c.deadline = cx.now + cx.timeout_ms;
    }
    Ok(())
}

/// The target, once every helper's sigma and wallet data are in: the
/// share, checked against each helper's account of the wallet.
fn maybe_recover(c: &mut Common, r: &mut RepairState, cx: &mut Cx) -> Step {
    let p = r.proposal.clone();
    let complete = |m: &dyn Fn(&String) -> bool| p.helpers.iter().all(m);
    if !complete(&|h| r.sigmas.contains_key(h)) || !complete(&|h| r.publics.contains_key(h)) {
        return Ok(());
    }
    let sigmas: Vec<&[u8]> = p
        .helpers
        .iter()
        .filter_map(|h| r.sigmas.get(h).map(|s| s.as_slice()))
        .collect();
    // Each distinct account of the wallet, and whether the share fits it.
    let distinct: BTreeSet<&WalletPublic> = r.publics.values().collect();
    let mut fitting = Vec::new();
    for w in distinct {
        if let Some(result) = fits(c, &p, w, &sigmas)? {
            fitting.push((w.clone(), result));
        }
    }
    let (public, result) = match fitting.len() {
        1 => fitting.remove(0),
        0 => return Err(AbortReason::RepairMismatch),
        // Several accounts fit the share: they differ elsewhere, and
        // nobody can be believed.
        _ => {
            return Err(AbortReason::HelpersLied {
                helpers: p.helpers.clone(),
            })
        }
    };
    let liars: Vec<String> = r
        .publics
        .iter()
        .filter(|(_, w)| **w != public)
        .map(|(h, _)| h.clone())
        .collect();
    if !liars.is_empty() {
        return Err(AbortReason::HelpersLied { helpers: liars });
    }
    r.sigmas.clear();
    let sid = c.id().to_string();
    let added = !public.identifiers.contains_key(&p.target);
    let created = PeerMessage::WalletCreated(WalletCreated {
        session_id: sid.clone(),
        pubkey: result.group_public_key.clone(),
        verifying_share: added.then(|| repair::verifying_share_hex(&result.key_package)),
    });
    cx.send_all(&c.others, &created);
    c.stage = Stage::Complete;
    pin_vouched(c, cx);
    cx.out.push(Action::Finished(Box::new(result)));
    // Nobody else stores anything: the wallet is whole once this node
    // has stored it.
    cx.out.push(Action::WalletConfirmed {
        session_id: sid,
        group_public_key: p.group_public_key.clone(),
    });
    Ok(())
}

/// The wallet `w` describes, with the share the sigmas add up to, if the
/// share is the target's in it and it is the proposal's wallet.
fn fits(
    c: &Common,
    p: &RepairProposal,
    w: &WalletPublic,
    sigmas: &[&[u8]],
) -> Result<Option<WalletResult>, AbortReason> {
    let Some(public) = hex::decode(&w.public_key_package)
        .ok()
        .and_then(|b| PublicKeyPackage::deserialize(c.v.curve, &b).ok())
    else {
        return Ok(None);
    };
    let group_public_key = public.group_public_key();
    if !group_public_key.eq_ignore_ascii_case(&p.group_public_key) || w.generation != p.generation {
        return Ok(None);
    }
    // A participant the wallet lacks is added, with the next identifier.
    let added = !w.identifiers.contains_key(&p.target);
    let Ok(identifier) = target_identifier(&w.identifiers, &p.target) else {
        return Ok(None);
    };
    let recovered = if added {
        repair::recover_new(sigmas, identifier, &public)
    } else {
        repair::recover(sigmas, identifier, &public).map(|k| (k, public.clone()))
    };
    let (key_package, public) = match recovered {
        Ok(k) => k,
        Err(RecoverError::Mismatch) => return Ok(None),
        Err(RecoverError::BadSigma(i)) => {
            return Err(AbortReason::InvalidShare {
                peer: p.helpers.get(i).cloned().unwrap_or_default(),
                detail: "repair_sigma is not a scalar of the curve".into(),
            })
        }
        Err(RecoverError::Internal(e)) => return Err(AbortReason::Internal(e)),
    };
    let mut participants = w.participants.clone();
    let mut identifiers = w.identifiers.clone();
    if added {
        participants.push(p.target.clone());
        identifiers.insert(p.target.clone(), identifier);
    }
    participants.sort();
    Ok(Some(WalletResult {
        session_id: c.id().to_string(),
        curve: c.v.curve,
        threshold: p.threshold,
        participants,
        identifier,
        identifiers,
        generation: w.generation,
        key_package,
        public_key_package: public,
        group_public_key,
        transcript_hash: String::new(),
    }))
}
