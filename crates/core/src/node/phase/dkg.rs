//! Key generation's rounds: FROST round 1 (`commitment`, with the share
//! encryption key), round 2 (a sealed `share` per peer), `ready` with the
//! transcript hash, and `wallet_created` once every hash agrees.

use std::collections::{BTreeMap, BTreeSet};

use mpc_identity::sealed::{self, SessionKey};
use mpc_protocol::peer::{Commitment, Ready, Share, WalletCreated};
use mpc_protocol::PeerMessage;
use zeroize::Zeroizing;

use mpc_protocol::peer::{Curve, EcdsaRound};

use super::ecdsa::EcdsaRounds;
use crate::dkg::{self, Added, Dkg, DkgError, DkgOutput, Params, RefreshOf};
use crate::ecdsa::EcdsaKeygen;
use crate::node::api::{Action, Progress};
use crate::node::completed::unconfirmed_by;
use crate::node::session::{pin_vouched, Common, Cx, Stage, Step};
use crate::session::{AbortReason, Violation};
use crate::wallet::WalletResult;
use crate::wallet::{KeyPackage, PublicKeyPackage, SecretKeyPackage};

/// A key generation session's own state.
#[derive(Default)]
pub(in crate::node) struct KeygenState {
    /// The FROST engine and this node's share encryption key, from round 1.
    dkg: Option<Dkg>,
    enc: Option<SessionKey>,
    round2_done: bool,
    /// Each peer's share encryption key, from its commitment.
    peer_enc: BTreeMap<String, [u8; 32]>,
    output: Option<DkgOutput>,
    readies: BTreeMap<String, Ready>,
    pub group_public_key: Option<String>,
    /// After completion: whether every peer's `wallet_created` is in, or
    /// confirmation failed (either is reported once).
    confirmation_over: bool,
    /// For a refresh: the share it starts from (see `refresh.rs`).
    pub refresh: Option<RefreshOf>,
    /// For an ECDSA wallet: DKLs23's rounds, instead of FROST's.
    ecdsa: Option<EcdsaRounds<EcdsaKeygen>>,
}

impl KeygenState {
    pub fn waiting_for(&self, c: &Common) -> Vec<String> {
        if let (Some(e), None) = (&self.ecdsa, &self.group_public_key) {
            return e.waiting_for(c);
        }
        match &self.dkg {
            Some(d) if !self.round2_done => d.missing_commitments(),
            Some(d) if self.output.is_none() => d.missing_shares(),
            _ => c
                .others
                .iter()
                .filter(|p| !self.readies.contains_key(*p))
                .cloned()
                .collect(),
        }
    }

    /// A peer's `wallet_created` after completion: the progress to report
    /// if it names our group key.
    pub fn agrees(&self, w: &WalletCreated) -> Option<fn(String, String) -> Progress> {
        (self.group_public_key.as_deref() == Some(w.pubkey.as_str())).then_some(peer_stored)
    }
}

impl KeygenState {
    /// Once every other participant reported storing its share.
    pub fn check_confirmed(&mut self, c: &Common, out: &mut Vec<Action>) {
        if self.confirmation_over || c.others.iter().any(|p| !c.stored_by.contains(p)) {
            return;
        }
        self.confirmation_over = true;
        let session_id = c.id().to_string();
        let group_public_key = self.group_public_key.clone().unwrap_or_default();
        out.push(match &self.refresh {
            Some(r) => Action::RefreshConfirmed {
                session_id,
                group_public_key,
                generation: r.generation + 1,
            },
            None => Action::WalletConfirmed {
                session_id,
                group_public_key,
            },
        });
    }

    /// Confirmation failed: the wallet must not be funded.
    pub fn unconfirmed(&mut self, c: &Common, reason: AbortReason, out: &mut Vec<Action>) {
        if self.confirmation_over {
            return;
        }
        self.confirmation_over = true;
        let session_id = c.id().to_string();
        let group_public_key = self.group_public_key.clone().unwrap_or_default();
        let missing = unconfirmed_by(c);
        out.push(match &self.refresh {
            Some(r) => Action::RefreshUnconfirmed {
                session_id,
                group_public_key,
                generation: r.generation + 1,
                missing,
                reason,
            },
            None => Action::WalletUnconfirmed {
                session_id,
                group_public_key,
                missing,
                reason,
            },
        });
    }

    /// When confirmation times out, while it is pending.
    pub fn confirmation_deadline(&self, c: &Common) -> Option<u64> {
        (!self.confirmation_over).then_some(c.deadline)
    }
}

fn peer_stored(session_id: String, peer: String) -> Progress {
    Progress::PeerStored { session_id, peer }
}

fn dkg_abort(e: DkgError) -> AbortReason {
    match e {
        DkgError::InvalidCommitment { peer, detail } => {
            AbortReason::InvalidCommitment { peer, detail }
        }
        DkgError::InvalidShare { peer, detail } => AbortReason::InvalidShare { peer, detail },
        DkgError::Internal(e) => AbortReason::Internal(e),
    }
}

/// Round 1: the commitment, with this session's share encryption key.
pub(in crate::node) fn start(c: &mut Common, k: &mut KeygenState, cx: &mut Cx) -> Step {
    let params = Params {
        session_id: c.id().to_string(),
        curve: c.v.curve,
        threshold: c.v.threshold,
        participants: c.v.participants.clone(),
        keys: c
            .keys
            .iter()
            .map(|(p, k)| (p.clone(), k.to_bytes()))
            .collect(),
        me: cx.me.to_string(),
        refresh: k.refresh.clone(),
    };
    if c.v.curve == Curve::Secp256k1Ecdsa {
        return start_ecdsa(c, k, cx, &params);
    }
    let mut dkg = Dkg::new(params, cx.misbehaviour.clone()).map_err(dkg_abort)?;
    let commitments = dkg.round1(cx.rng).map_err(dkg_abort)?;
    k.dkg = Some(dkg);
    let enc = SessionKey::generate(cx.rng);
    let enc_key = hex::encode(enc.public_bytes());
    k.enc = Some(enc);
    let sid = c.id().to_string();
    for (peer, data) in commitments {
        cx.send(
            &peer,
            PeerMessage::Commitment(Commitment {
                data,
                session_id: Some(sid.clone()),
                enc_key: Some(enc_key.clone()),
            }),
        );
    }
    cx.progress(Progress::DkgRound {
        session_id: sid,
        round: 1,
    });
    Ok(())
}

fn dkg_round(session_id: String, round: u8) -> Progress {
    Progress::DkgRound { session_id, round }
}

/// DKLs23's rounds, bound to the same session parameters a FROST
/// transcript starts from.
fn start_ecdsa(c: &mut Common, k: &mut KeygenState, cx: &mut Cx, params: &Params) -> Step {
    if params.refresh.is_some() {
        return Err(AbortReason::Internal(
            "a refresh of an ECDSA wallet is not supported".into(),
        ));
    }
    let digest = dkg::transcript_hash(params, &BTreeMap::new(), &[]);
    let engine = EcdsaKeygen::new(cx.me, &params.participants, params.threshold, digest)
        .map_err(|e| AbortReason::Internal(format!("{e:?}")))?;
    k.ecdsa = Some(EcdsaRounds::start(engine, c, cx, dkg_round));
    Ok(())
}

fn on_ecdsa(c: &mut Common, k: &mut KeygenState, cx: &mut Cx, from: &str, m: EcdsaRound) -> Step {
    let Some(rounds) = k.ecdsa.as_mut() else {
        cx.reject(Some(from), Some(c.id()), "ecdsa_round for a FROST wallet");
        return Ok(());
    };
    let Some(out) = rounds.on_round(c, cx, from, m)? else {
        return Ok(());
    };
    let output = DkgOutput {
        identifier: out.identifier,
        key_package: SecretKeyPackage::new(KeyPackage::Secp256k1Ecdsa(out.share)),
        public_key_package: PublicKeyPackage::Secp256k1Ecdsa(out.public),
        group_public_key: out.group_public_key,
        transcript_hash: out.transcript_hash,
        commitment_digests: out.commitment_digests,
        identifiers: crate::wallet::positions(&c.v.participants),
        generation: 0,
    };
    finished(c, k, cx, output, 4)
}

/// A channel message for a key generation session.
pub(in crate::node) fn on_message(
    c: &mut Common,
    k: &mut KeygenState,
    cx: &mut Cx,
    from: &str,
    msg: PeerMessage,
) -> Step {
    match msg {
        PeerMessage::Commitment(m) => on_commitment(c, k, cx, from, m),
        PeerMessage::Share(sh) => on_share(c, k, cx, from, sh),
        PeerMessage::Ready(r) => on_ready(c, k, cx, from, r),
        PeerMessage::EcdsaRound(m) => on_ecdsa(c, k, cx, from, m),
        PeerMessage::WalletCreated(w) => {
            c.stored_by.insert(from.to_string());
            if k.group_public_key.as_deref().is_some_and(|g| g != w.pubkey) {
                return Err(AbortReason::ProtocolViolation {
                    peer: from.to_string(),
                    violation: Violation::OtherGroupKey,
                });
            }
            Ok(())
        }
        msg @ (PeerMessage::SignCommitment(_)
        | PeerMessage::SignatureShare(_)
        | PeerMessage::SignatureCreated(_)) => {
            cx.reject(
                Some(from),
                Some(c.id()),
                format!("{} in a key generation session", msg.msg_type()),
            );
            Ok(())
        }
        _ => Ok(()),
    }
}

fn on_commitment(
    c: &mut Common,
    k: &mut KeygenState,
    cx: &mut Cx,
    from: &str,
    m: Commitment,
) -> Step {
    let Some(dkg) = k.dkg.as_mut() else {
        return Ok(());
    };
    let enc_key = m
        .enc_key
        .as_deref()
        .and_then(|key| <[u8; 32]>::try_from(hex::decode(key).ok()?).ok())
        .ok_or_else(|| AbortReason::InvalidCommitment {
            peer: from.to_string(),
            detail: "no valid enc_key: shares to it could not be encrypted".into(),
        })?;
    if *k.peer_enc.entry(from.to_string()).or_insert(enc_key) != enc_key {
        return Err(AbortReason::ProtocolViolation {
            peer: from.to_string(),
            violation: Violation::TwoEncryptionKeys,
        });
    }
    let added = dkg.add_commitment(from, &m.data).map_err(dkg_abort)?;
    // After round 2 (which used a full set) only a conflict matters.
    if k.round2_done || added == Added::Duplicate || !dkg.missing_commitments().is_empty() {
        return Ok(());
    }
    let shares = dkg.round2().map_err(dkg_abort)?;
    k.round2_done = true;
    let sid = c.id().to_string();
    let Some(enc) = k.enc.as_ref() else {
        return Err(AbortReason::Internal("no share encryption key".into()));
    };
    for (peer, data) in shares {
        let plain = Zeroizing::new(
            hex::decode(data.as_str())
                .map_err(|_| AbortReason::Internal("round-2 package is not hex".into()))?,
        );
        let Some(recipient) = k.peer_enc.get(&peer) else {
            return Err(AbortReason::Internal(format!(
                "no encryption key for {peer}"
            )));
        };
        let sealed = enc
            .seal(cx.rng, recipient, &plain)
            .map_err(|e| AbortReason::Internal(format!("share encryption failed: {e}")))?;
        #[cfg(feature = "faults")]
        cx.shares_sent.push(plain.to_vec());
        let mut share = Share {
            data: hex::encode(sealed),
            session_id: Some(sid.clone()),
            enc: Some(sealed::SCHEME.to_string()),
        };
        if cx.misbehaviour.plaintext_shares {
            share.data = data.to_string();
            share.enc = None;
        }
        cx.send(&peer, PeerMessage::Share(share));
    }
    cx.progress(Progress::DkgRound {
        session_id: sid,
        round: 2,
    });
    maybe_finish(c, k, cx)
}

fn on_share(c: &mut Common, k: &mut KeygenState, cx: &mut Cx, from: &str, mut sh: Share) -> Step {
    let Some(dkg) = k.dkg.as_mut() else {
        return Ok(());
    };
    if k.output.is_some() {
        cx.reject(Some(from), Some(c.id()), "share after round 3");
        dkg::wipe(&mut sh.data);
        return Ok(());
    }
    let opened = open_share(k.enc.as_ref(), k.peer_enc.get(from), from, &sh);
    dkg::wipe(&mut sh.data);
    let plain = opened?;
    if dkg.add_share(from, &plain).map_err(dkg_abort)? == Added::Duplicate {
        return Ok(());
    }
    maybe_finish(c, k, cx)
}

/// Decrypts a share to this node; a share sent in the clear is refused.
fn open_share(
    own: Option<&SessionKey>,
    sender: Option<&[u8; 32]>,
    from: &str,
    sh: &Share,
) -> Result<Zeroizing<String>, AbortReason> {
    let bad = |detail: &str| AbortReason::InvalidShare {
        peer: from.to_string(),
        detail: detail.to_string(),
    };
    if sh.enc.as_deref() != Some(sealed::SCHEME) {
        return Err(AbortReason::ProtocolViolation {
            peer: from.to_string(),
            violation: Violation::PlaintextShare,
        });
    }
    let (Some(own), Some(sender)) = (own, sender) else {
        return Err(bad("share before its sender's commitment"));
    };
    let sealed = hex::decode(&sh.data).map_err(|_| bad("share is not hex"))?;
    let plain = own
        .open(sender, &sealed)
        .map_err(|_| bad("share does not decrypt with the keys of this session"))?;
    Ok(Zeroizing::new(hex::encode(&*plain)))
}

/// Every share is in: the key package, and `ready` with the transcript.
fn maybe_finish(c: &mut Common, k: &mut KeygenState, cx: &mut Cx) -> Step {
    let Some(dkg) = k.dkg.as_mut() else {
        return Ok(());
    };
    if !k.round2_done || k.output.is_some() || !dkg.missing_shares().is_empty() {
        return Ok(());
    }
    let output = dkg.finish().map_err(dkg_abort)?;
    finished(c, k, cx, output, 3)
}

/// This node's share exists: `ready` with the transcript (reported as
/// progress `round`), checked against every `ready` already in.
fn finished(
    c: &mut Common,
    k: &mut KeygenState,
    cx: &mut Cx,
    output: DkgOutput,
    round: u8,
) -> Step {
    let sid = c.id().to_string();
    let ready = PeerMessage::Ready(Ready {
        session_id: sid.clone(),
        transcript_hash: Some(hex::encode(output.transcript_hash)),
        commitment_digests: Some(output.commitment_digests.clone()),
    });
    cx.send_all(&c.others, &ready);
    k.group_public_key = Some(hex::encode(&output.group_public_key));
    cx.progress(Progress::DkgRound {
        session_id: sid,
        round,
    });
    // Readies that came before our own output are checked now.
    for (from, r) in &k.readies {
        check_ready(&output, from, r)?;
    }
    k.output = Some(output);
    maybe_complete(c, k, cx)
}

fn on_ready(c: &mut Common, k: &mut KeygenState, cx: &mut Cx, from: &str, r: Ready) -> Step {
    let violation = |violation| AbortReason::ProtocolViolation {
        peer: from.to_string(),
        violation,
    };
    if r.transcript_hash.is_none() {
        return Err(violation(Violation::ReadyWithoutHash));
    }
    if let Some(old) = k.readies.get(from) {
        return if *old == r {
            Ok(())
        } else {
            Err(violation(Violation::TwoReadies))
        };
    }
    if let Some(own) = &k.output {
        check_ready(own, from, &r)?;
    }
    k.readies.insert(from.to_string(), r);
    maybe_complete(c, k, cx)
}

/// Compares a peer's `ready` with this node's transcript.
fn check_ready(own: &DkgOutput, from: &str, r: &Ready) -> Step {
    if r.transcript_hash.as_deref() == Some(hex::encode(own.transcript_hash).as_str()) {
        return Ok(());
    }
    let mut suspects = BTreeSet::new();
    if let Some(theirs) = &r.commitment_digests {
        for (p, d) in &own.commitment_digests {
            if theirs.get(p) != Some(d) {
                suspects.insert(p.clone());
            }
        }
    }
    Err(AbortReason::TranscriptMismatch {
        mismatched: vec![from.to_string()],
        suspects: suspects.into_iter().collect(),
    })
}

/// Every `ready` agrees: the wallet is this node's to store.
fn maybe_complete(c: &mut Common, k: &mut KeygenState, cx: &mut Cx) -> Step {
    if k.output.is_none() || k.readies.len() != c.others.len() {
        return Ok(());
    }
    let Some(out) = k.output.take() else {
        return Ok(());
    };
    let group_public_key = hex::encode(&out.group_public_key);
    let sid = c.id().to_string();
    c.stage = Stage::Complete;
    // The peers' wallet_created may take until a timeout from now.
    c.deadline = cx.now + cx.timeout_ms;
    k.dkg = None;
    pin_vouched(c, cx);
    let result = WalletResult {
        session_id: sid.clone(),
        curve: c.v.curve,
        threshold: c.v.threshold,
        participants: c.v.participants.clone(),
        identifier: out.identifier,
        identifiers: out.identifiers,
        generation: out.generation,
        key_package: out.key_package,
        public_key_package: out.public_key_package,
        group_public_key: group_public_key.clone(),
        transcript_hash: hex::encode(out.transcript_hash),
    };
    if k.refresh.is_some() {
        super::refresh::completed(c, result, cx);
    } else {
        let created = PeerMessage::WalletCreated(WalletCreated {
            session_id: sid.clone(),
            pubkey: group_public_key,
            verifying_share: None,
        });
        cx.send_all(&c.others, &created);
        cx.out.push(Action::Finished(Box::new(result)));
        for p in c.stored_by.clone() {
            cx.progress(peer_stored(sid.clone(), p));
        }
    }
    k.check_confirmed(c, cx.out);
    Ok(())
}
