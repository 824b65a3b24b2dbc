//! DKLs23 signing of one 32-byte hash by exactly t signers: three rounds,
//! then the signature, checked with k256 before it is returned.

use std::collections::BTreeMap;

use dkls23_secp256k1::protocols::signing::{
    Broadcast3to4, KeepPhase1to2, KeepPhase2to3, SignData, TransmitPhase1to2, TransmitPhase2to3,
    UniqueKeep1to2, UniqueKeep2to3,
};
use dkls23_secp256k1::protocols::{PartiesMessage, PartyIndex};
use k256::Secp256k1;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    decode, encode, encode_secret, out_of_order, EcdsaError, Incoming, Outgoing, Roster, Rounds,
};
use crate::wallet::EcdsaShare;
/// What a signer keeps between rounds: its own part and one per peer.
type Kept1to2 = (
    UniqueKeep1to2<Secp256k1>,
    BTreeMap<PartyIndex, KeepPhase1to2<Secp256k1>>,
);
type Kept2to3 = (
    UniqueKeep2to3<Secp256k1>,
    BTreeMap<PartyIndex, KeepPhase2to3<Secp256k1>>,
);

/// A DKLs23 signature of one 32-byte hash for one signer.
pub(crate) struct EcdsaSigner {
    roster: Roster,
    share: EcdsaShare,
    data: SignData,
    keep_1to2: Option<Kept1to2>,
    keep_2to3: Option<Kept2to3>,
    x_coord: Option<String>,
    own_broadcast: Option<Broadcast3to4<Secp256k1>>,
    public_key: k256::AffinePoint,
}

impl EcdsaSigner {
    /// `signers` (with their wallet identifiers) must number exactly the
    /// wallet's threshold, as DKLs23 signs with exactly that many.
    pub fn new(
        me: &str,
        signers: &[(String, u16)],
        share: EcdsaShare,
        sign_id: [u8; 32],
        hash: [u8; 32],
    ) -> Result<Self, EcdsaError> {
        let roster = Roster::new(me, signers)?;
        if share.party().party_index != roster.my_index {
            return Err(EcdsaError::Internal(
                "the key share belongs to another participant".into(),
            ));
        }
        let counterparties = roster.others().map(|(_, i)| *i).collect();
        Ok(EcdsaSigner {
            roster,
            public_key: share.party().pk,
            share,
            data: SignData {
                sign_id: sign_id.to_vec(),
                counterparties,
                message_hash: hash,
            },
            keep_1to2: None,
            keep_2to3: None,
            x_coord: None,
            own_broadcast: None,
        })
    }

    fn direct_parts<T: Serialize>(
        &self,
        items: Vec<T>,
        parties: impl Fn(&T) -> &PartiesMessage,
    ) -> Result<Outgoing, EcdsaError> {
        let mut direct = BTreeMap::new();
        for m in items {
            direct.insert(self.roster.name(parties(&m).receiver), encode_secret(&m)?);
        }
        Ok(Outgoing {
            broadcast: Vec::new(),
            direct,
        })
    }

    fn received<T: DeserializeOwned>(
        &self,
        inbox: &BTreeMap<String, Incoming>,
        what: &str,
        parties: impl Fn(&T) -> &PartiesMessage,
    ) -> Result<Vec<T>, EcdsaError> {
        let mut out = Vec::new();
        for (p, m) in self.roster.ordered(inbox) {
            let t: T = decode(p, &m.direct, what)?;
            self.roster.check_route(p, parties(&t))?;
            out.push(t);
        }
        Ok(out)
    }
}

impl Rounds for EcdsaSigner {
    /// 65 bytes: r, s (low-s), and the recovery id (0 or 1).
    type Output = [u8; 65];

    fn rounds(&self) -> u8 {
        3
    }

    fn round(&mut self, r: u8, inbox: BTreeMap<String, Incoming>) -> Result<Outgoing, EcdsaError> {
        let party = self.share.party();
        match r {
            1 => {
                let (unique, kept, transmit) = party
                    .sign_phase1(&self.data)
                    .map_err(|a| self.roster.abort(a))?;
                self.keep_1to2 = Some((unique, kept));
                self.direct_parts(transmit, |m: &TransmitPhase1to2| &m.parties)
            }
            2 => {
                let (unique, kept) = self
                    .keep_1to2
                    .take()
                    .ok_or_else(|| out_of_order("round 2"))?;
                let received =
                    self.received(&inbox, "a round-1 message", |m: &TransmitPhase1to2| {
                        &m.parties
                    })?;
                let (unique, kept, transmit) = party
                    .sign_phase2(&self.data, unique, kept, &received)
                    .map_err(|a| self.roster.abort(a))?;
                self.keep_2to3 = Some((unique, kept));
                self.direct_parts(transmit, |m: &TransmitPhase2to3<Secp256k1>| &m.parties)
            }
            3 => {
                let (unique, kept) = self
                    .keep_2to3
                    .take()
                    .ok_or_else(|| out_of_order("round 3"))?;
                let received = self.received(
                    &inbox,
                    "a round-2 message",
                    |m: &TransmitPhase2to3<Secp256k1>| &m.parties,
                )?;
                let (x_coord, broadcast) = party
                    .sign_phase3(&self.data, unique, kept, &received)
                    .map_err(|a| self.roster.abort(a))?;
                self.x_coord = Some(x_coord);
                let out = Outgoing {
                    broadcast: encode(&broadcast)?,
                    direct: BTreeMap::new(),
                };
                self.own_broadcast = Some(broadcast);
                Ok(out)
            }
            _ => Err(out_of_order("a fourth round")),
        }
    }

    fn finish(&mut self, inbox: BTreeMap<String, Incoming>) -> Result<[u8; 65], EcdsaError> {
        let (Some(x_coord), Some(own)) = (self.x_coord.take(), self.own_broadcast.take()) else {
            return Err(out_of_order("the end of signing"));
        };
        let mut received = vec![own];
        for (p, m) in self.roster.ordered(&inbox) {
            received.push(decode(p, &m.broadcast, "a round-3 broadcast")?);
        }
        let (s_hex, recovery_id) = self
            .share
            .party()
            .sign_phase4(&self.data, &x_coord, &received, true)
            .map_err(|a| self.roster.abort(a))?;
        let mut sig = [0u8; 65];
        let (rs, v) = sig.split_at_mut(64);
        let (r, s) = rs.split_at_mut(32);
        hex::decode_to_slice(&x_coord, r).map_err(|e| EcdsaError::Internal(e.to_string()))?;
        hex::decode_to_slice(&s_hex, s).map_err(|e| EcdsaError::Internal(e.to_string()))?;
        if let Some(v) = v.first_mut() {
            *v = recovery_id;
        }
        verify(&self.public_key, &self.data.message_hash, &sig)?;
        Ok(sig)
    }
}

/// Checks `sig` (r ‖ s ‖ recovery id) over `hash` with k256's own ECDSA:
/// low s, valid under the key, and the recovery id recovers the key.
pub(crate) fn verify(
    key: &k256::AffinePoint,
    hash: &[u8; 32],
    sig: &[u8; 65],
) -> Result<(), EcdsaError> {
    use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
    let bad = |what: &str| EcdsaError::Internal(format!("the signature {what}"));
    let (rs, v) = sig.split_at(64);
    let signature = Signature::from_slice(rs).map_err(|_| bad("does not parse"))?;
    if signature.normalize_s() != signature {
        return Err(bad("is not low-s"));
    }
    let id = v
        .first()
        .and_then(|v| RecoveryId::from_byte(*v))
        .ok_or_else(|| bad("has no valid recovery id"))?;
    let recovered = VerifyingKey::recover_from_prehash(hash, &signature, id)
        .map_err(|_| bad("recovers no key"))?;
    if recovered.as_affine() != key {
        return Err(bad("does not verify under the group key"));
    }
    Ok(())
}

/// The sign id both sides bind a signing session to.
pub(crate) fn sign_id(session_id: &str, hash: &[u8; 32], signers: &[String]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mpc-wallet dkls23 sign v1");
    h.update((session_id.len() as u64).to_be_bytes());
    h.update(session_id.as_bytes());
    h.update(hash);
    for s in signers {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    }
    h.finalize().into()
}
