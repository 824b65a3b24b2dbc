//! Signing's rounds: FROST commitments (`sign_commitment`), signature
//! shares, aggregation and verification under the group key, and
//! `signature_created`, which every signer compares with its own.

use std::collections::BTreeMap;

use mpc_protocol::peer::{
    Curve, EcdsaRound, SignCommitment, SignProposal, SignatureCreated, SignatureShare,
};
use mpc_protocol::PeerMessage;

use super::ecdsa::EcdsaRounds;
use crate::dkg::Added;
use crate::ecdsa::{self, EcdsaSigner};
use crate::node::api::{Action, Progress};
use crate::node::session::{pin_vouched, Common, Cx, Stage, Step};
use crate::payload::Derived;
use crate::session::{AbortReason, ProposalError, Violation, MAX_SIGN_MESSAGE_LEN};
use crate::sign::{SignError, Signing};
use crate::wallet::{KeyPackage, SignatureResult, SigningWallet};

/// A signing session's own state.
pub(in crate::node) struct SignState {
    pub proposal: SignProposal,
    /// What this node derived from the proposal, and signs.
    pub derived: Derived,
    group_public_key: String,
    /// The wallet with this node's key package, once the user accepted.
    pub wallet: Option<Box<SigningWallet>>,
    signing: Option<Signing>,
    /// For an ECDSA wallet: DKLs23's rounds, instead of FROST's.
    ecdsa: Option<EcdsaRounds<EcdsaSigner>>,
    round2_done: bool,
    signature: Option<Vec<u8>>,
    /// `signature_created` hex per peer, kept to compare with our own.
    reported: BTreeMap<String, String>,
    /// The signing package each signer says its share was made over.
    package_digests: BTreeMap<String, String>,
}

impl SignState {
    pub fn new(
        proposal: SignProposal,
        derived: Derived,
        group_public_key: String,
        wallet: Option<Box<SigningWallet>>,
    ) -> Self {
        SignState {
            proposal,
            derived,
            group_public_key,
            wallet,
            signing: None,
            ecdsa: None,
            round2_done: false,
            signature: None,
            reported: BTreeMap::new(),
            package_digests: BTreeMap::new(),
        }
    }

    pub fn waiting_for(&self, c: &Common) -> Vec<String> {
        if let Some(e) = &self.ecdsa {
            return e.waiting_for(c);
        }
        match &self.signing {
            Some(g) if !self.round2_done => g.missing_commitments(),
            Some(g) => g.missing_shares(),
            None => Vec::new(),
        }
    }

    /// A signer's `signature_created` after completion: the progress to
    /// report if it names our signature.
    pub fn agrees(&self, created: &SignatureCreated) -> Option<fn(String, String) -> Progress> {
        let own = self.signature.as_ref().map(hex::encode);
        (own == Some(created.signature.to_ascii_lowercase())).then_some(peer_signed)
    }
}

fn peer_signed(session_id: String, peer: String) -> Progress {
    Progress::PeerSigned { session_id, peer }
}

/// The proposer's checks on its own signers: every one a wallet
/// participant, and at least the threshold of them.
pub(in crate::node) fn check_signers(
    wallet: &SigningWallet,
    signers: &[String],
) -> Result<(), ProposalError> {
    if let Some(x) = signers.iter().find(|x| !wallet.participants.contains(x)) {
        return Err(ProposalError::NotInWallet(x.clone()));
    }
    if signers.len() < usize::from(wallet.threshold) {
        return Err(ProposalError::TooFewSigners {
            named: signers.len(),
            needed: wallet.threshold,
        });
    }
    if wallet.curve == Curve::Secp256k1Ecdsa && signers.len() != usize::from(wallet.threshold) {
        return Err(ProposalError::ExactlyThreshold {
            named: signers.len(),
            needed: wallet.threshold,
        });
    }
    Ok(())
}

/// A joiner's checks that the wallet its driver found fits the proposal.
pub(in crate::node) fn check_wallet(
    c: &Common,
    g: &SignState,
    w: &SigningWallet,
) -> Result<(), ProposalError> {
    if !w
        .group_public_key
        .eq_ignore_ascii_case(&g.proposal.group_public_key)
    {
        return Err(ProposalError::OtherGroupKey);
    }
    if w.curve != c.v.curve {
        return Err(ProposalError::OtherCurve {
            wallet: w.curve,
            proposal: c.v.curve,
        });
    }
    if g.derived.payload.len() > MAX_SIGN_MESSAGE_LEN {
        return Err(ProposalError::MessageTooLong);
    }
    // A signer a refresh removed is named as such, not as a generation.
    check_signers(w, &c.v.participants)?;
    if w.generation != g.proposal.generation {
        return Err(ProposalError::OtherGeneration {
            wallet: w.generation,
            proposal: g.proposal.generation,
        });
    }
    Ok(())
}

/// A round's items as the wire carries them: the first, and the rest.
fn first_and_more(mut items: Vec<String>) -> Result<(String, Vec<String>), AbortReason> {
    if items.is_empty() {
        return Err(AbortReason::Internal("a round with nothing to send".into()));
    }
    let first = items.remove(0);
    Ok((first, items))
}

/// The wire's `data` and `more`, as one list.
fn items<'a>(data: &'a str, more: &'a [String]) -> Vec<&'a str> {
    std::iter::once(data)
        .chain(more.iter().map(String::as_str))
        .collect()
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

/// Round 1: fresh nonces and their commitment.
pub(in crate::node) fn start(c: &mut Common, g: &mut SignState, cx: &mut Cx) -> Step {
    let sid = c.id().to_string();
    let Some(wallet) = g.wallet.as_ref() else {
        return Err(AbortReason::Internal(
            "signing without a key package".into(),
        ));
    };
    if wallet.curve == Curve::Secp256k1Ecdsa {
        return start_ecdsa(c, g, cx);
    }
    let mut signing = Signing::new(
        wallet,
        cx.me,
        &c.v.participants,
        g.derived.messages.clone(),
        cx.misbehaviour.bad_signature_share,
    )
    .map_err(sign_abort)?;
    let (data, more) = first_and_more(signing.round1(cx.rng).map_err(sign_abort)?)?;
    let msg = PeerMessage::SignCommitment(SignCommitment {
        session_id: sid.clone(),
        data,
        more,
    });
    for p in &c.others {
        let msg = if cx.misbehaviour.equivocate_sign_to.contains(p) {
            let decoy = signing.decoy_commitment(cx.rng).map_err(sign_abort)?;
            let (data, more) = first_and_more(decoy)?;
            PeerMessage::SignCommitment(SignCommitment {
                session_id: sid.clone(),
                data,
                more,
            })
        } else {
            msg.clone()
        };
        cx.send(p, msg);
    }
    g.signing = Some(signing);
    cx.progress(Progress::SignRound {
        session_id: sid,
        round: 1,
    });
    Ok(())
}

fn sign_round(session_id: String, round: u8) -> Progress {
    Progress::SignRound { session_id, round }
}

/// DKLs23's rounds over the one hash this node derived.
fn start_ecdsa(c: &mut Common, g: &mut SignState, cx: &mut Cx) -> Step {
    let internal = |e: &str| AbortReason::Internal(e.to_string());
    let Some(wallet) = g.wallet.as_ref() else {
        return Err(internal("signing without a key package"));
    };
    let KeyPackage::Secp256k1Ecdsa(share) = wallet.key_package.expose() else {
        return Err(internal("an ECDSA session without an ECDSA share"));
    };
    let hash: [u8; 32] = match g.derived.messages.as_slice() {
        [m] => m
            .as_slice()
            .try_into()
            .map_err(|_| internal("an ECDSA hash is 32 bytes"))?,
        _ => return Err(internal("an ECDSA session signs one hash")),
    };
    let signers = wallet
        .identifiers_of(&c.v.participants)
        .map_err(AbortReason::Internal)?;
    let id = ecdsa::sign_id(c.id(), &hash, &c.v.participants);
    let engine = EcdsaSigner::new(cx.me, &signers, share.clone(), id, hash)
        .map_err(|e| AbortReason::Internal(format!("{e:?}")))?;
    g.ecdsa = Some(EcdsaRounds::start(engine, c, cx, sign_round));
    Ok(())
}

fn on_ecdsa(c: &mut Common, g: &mut SignState, cx: &mut Cx, from: &str, m: EcdsaRound) -> Step {
    let Some(rounds) = g.ecdsa.as_mut() else {
        cx.reject(Some(from), Some(c.id()), "ecdsa_round for a FROST wallet");
        return Ok(());
    };
    let Some(sig) = rounds.on_round(c, cx, from, m)? else {
        return Ok(());
    };
    g.ecdsa = None;
    let sig = g.derived.ethereum_signature(sig);
    complete(c, g, cx, vec![sig.to_vec()])
}

/// A channel message for a signing session.
pub(in crate::node) fn on_message(
    c: &mut Common,
    g: &mut SignState,
    cx: &mut Cx,
    from: &str,
    msg: PeerMessage,
) -> Step {
    match msg {
        PeerMessage::SignCommitment(m) => on_commitment(c, g, cx, from, m),
        PeerMessage::SignatureShare(sh) => on_share(c, g, cx, from, sh),
        PeerMessage::EcdsaRound(m) => on_ecdsa(c, g, cx, from, m),
        PeerMessage::SignatureCreated(created) => {
            // Before our own aggregation: kept, and compared once we have it.
            g.reported
                .entry(from.to_string())
                .or_insert_with(|| created.signature.to_ascii_lowercase());
            c.stored_by.insert(from.to_string());
            Ok(())
        }
        msg @ (PeerMessage::Commitment(_)
        | PeerMessage::Share(_)
        | PeerMessage::Ready(_)
        | PeerMessage::WalletCreated(_)) => {
            cx.reject(
                Some(from),
                Some(c.id()),
                format!("{} in a signing session", msg.msg_type()),
            );
            Ok(())
        }
        _ => Ok(()),
    }
}

fn on_commitment(
    c: &mut Common,
    g: &mut SignState,
    cx: &mut Cx,
    from: &str,
    m: SignCommitment,
) -> Step {
    let Some(signing) = g.signing.as_mut() else {
        return Ok(());
    };
    if signing
        .add_commitment(from, &items(&m.data, &m.more))
        .map_err(sign_abort)?
        == Added::Duplicate
        || g.round2_done
        || !signing.missing_commitments().is_empty()
    {
        return Ok(());
    }
    let (data, more) = first_and_more(signing.round2().map_err(sign_abort)?)?;
    g.round2_done = true;
    let sid = c.id().to_string();
    let msg = PeerMessage::SignatureShare(SignatureShare {
        session_id: sid.clone(),
        data,
        more,
        package_digest: signing.package_digest(),
    });
    cx.send_all(&c.others, &msg);
    cx.progress(Progress::SignRound {
        session_id: sid,
        round: 2,
    });
    maybe_finish(c, g, cx)
}

fn on_share(
    c: &mut Common,
    g: &mut SignState,
    cx: &mut Cx,
    from: &str,
    sh: SignatureShare,
) -> Step {
    let done = g.signature.is_some();
    let Some(signing) = g.signing.as_mut() else {
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
    if signing
        .add_share(from, &items(&sh.data, &sh.more))
        .map_err(sign_abort)?
        == Added::Duplicate
    {
        return Ok(());
    }
    if let Some(d) = sh.package_digest {
        g.package_digests
            .insert(from.to_string(), d.to_ascii_lowercase());
    }
    maybe_finish(c, g, cx)
}

/// Every share is in: aggregate, verify, and report the signature.
fn maybe_finish(c: &mut Common, g: &mut SignState, cx: &mut Cx) -> Step {
    let Some(signing) = g.signing.as_mut() else {
        return Ok(());
    };
    if !g.round2_done || !signing.missing_shares().is_empty() {
        return Ok(());
    }
    // A share over another package than ours fails here through no fault
    // of its sender: some signer sent different commitments to different
    // signers. Only a share over our very package is evidence against it.
    let own = signing.package_digest();
    if let Some((peer, _)) = g
        .package_digests
        .iter()
        .find(|(_, d)| Some(d.as_str()) != own.as_deref())
    {
        return Err(AbortReason::SigningPackageMismatch { peer: peer.clone() });
    }
    let signatures = signing.finish().map_err(sign_abort)?;
    g.signing = None;
    complete(c, g, cx, signatures)
}

/// The signatures exist and verified: report them (as progress `round`),
/// checked against what signers already reported.
fn complete(c: &mut Common, g: &mut SignState, cx: &mut Cx, signatures: Vec<Vec<u8>>) -> Step {
    let signature = signatures.concat();
    let own = hex::encode(&signature);
    // Peers that already reported must agree with this signature.
    if let Some((peer, _)) = g.reported.iter().find(|(_, sig)| **sig != own) {
        return Err(AbortReason::ProtocolViolation {
            peer: peer.clone(),
            violation: Violation::OtherSignature,
        });
    }
    let sid = c.id().to_string();
    let created = PeerMessage::SignatureCreated(SignatureCreated {
        session_id: sid.clone(),
        signature: own,
    });
    cx.send_all(&c.others, &created);
    // Putting the signatures in the transaction can't fail on what peers
    // sent: every one of them verified under the group key above.
    let transaction = g
        .derived
        .finish(&signatures)
        .map_err(|e| AbortReason::Internal(format!("finishing the transaction: {e}")))?;
    g.signature = Some(signature.clone());
    // The key package is no longer needed by this session.
    g.wallet = None;
    c.stage = Stage::Complete;
    pin_vouched(c, cx);
    cx.progress(Progress::SignatureVerified {
        session_id: sid.clone(),
    });
    cx.out.push(Action::Signed(Box::new(SignatureResult {
        session_id: sid.clone(),
        curve: c.v.curve,
        group_public_key: g.group_public_key.clone(),
        message: g.derived.payload.clone(),
        format: g.derived.format,
        signers: c.v.participants.clone(),
        signature,
        signatures,
        transaction,
    })));
    for p in c.stored_by.clone() {
        cx.progress(peer_signed(sid.clone(), p));
    }
    Ok(())
}
