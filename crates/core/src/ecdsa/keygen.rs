//! DKLs23 key generation: three rounds, then the group key, this node's
//! share and the transcript that `ready` compares.

use std::collections::BTreeMap;

use dkls23_secp256k1::protocols::dkg::{
    self, BroadcastDerivationPhase2to4, BroadcastDerivationPhase3to4, KeepInitMulPhase3to4,
    KeepInitZeroSharePhase2to3, KeepInitZeroSharePhase3to4, ProofCommitment, SessionData,
    TransmitInitMulPhase3to4, TransmitInitZeroSharePhase2to4, TransmitInitZeroSharePhase3to4,
    UniqueKeepDerivationPhase2to3,
};
use dkls23_secp256k1::protocols::{Parameters, PartyIndex};
use k256::elliptic_curve::sec1::ToSec1Point;
use k256::Secp256k1;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{
    decode, encode, encode_secret, invalid, out_of_order, EcdsaError, Incoming, Outgoing, Roster,
    Rounds, Scalar,
};
use crate::wallet::{EcdsaPublic, EcdsaShare};
/// A key generation's round-2 broadcast.
#[derive(Serialize, Deserialize)]
struct KeygenBroadcast2 {
    proof: ProofCommitment<Secp256k1>,
    chain_code: BroadcastDerivationPhase2to4,
}

/// A key generation's round-3 direct part.
#[derive(Serialize, Deserialize)]
struct KeygenDirect3 {
    zero: TransmitInitZeroSharePhase3to4,
    mul: TransmitInitMulPhase3to4<Secp256k1>,
}

/// What an ECDSA key generation yields.
pub(crate) struct EcdsaKeygenOutput {
    pub identifier: u16,
    pub share: EcdsaShare,
    pub public: EcdsaPublic,
    /// 33-byte compressed SEC1 group key.
    pub group_public_key: Vec<u8>,
    pub transcript_hash: [u8; 32],
    /// Peer id → hex SHA-256 of its broadcasts, to name who equivocated.
    pub commitment_digests: BTreeMap<String, String>,
}

/// A DKLs23 key generation for one node.
pub(crate) struct EcdsaKeygen {
    roster: Roster,
    data: SessionData,
    /// What the transcript hash starts from: the session's parameters.
    params_digest: [u8; 32],
    own_fragment: Option<Zeroizing<Vec<u8>>>,
    /// This node's point of the shared polynomial: its key share until
    /// phase 4 makes the party. Wiped when dropped.
    poly_point: Option<Zeroizing<Scalar>>,
    zero_2to3: Option<BTreeMap<PartyIndex, KeepInitZeroSharePhase2to3>>,
    bip_2to3: Option<UniqueKeepDerivationPhase2to3>,
    zero_3to4: Option<BTreeMap<PartyIndex, KeepInitZeroSharePhase3to4>>,
    mul_3to4: Option<BTreeMap<PartyIndex, KeepInitMulPhase3to4<Secp256k1>>>,
    proofs: BTreeMap<PartyIndex, ProofCommitment<Secp256k1>>,
    zero_in_2: Vec<TransmitInitZeroSharePhase2to4>,
    bip_in_2: BTreeMap<PartyIndex, BroadcastDerivationPhase2to4>,
    bip_in_3: BTreeMap<PartyIndex, BroadcastDerivationPhase3to4>,
    /// Every party's broadcasts (own included), as sent: the transcript.
    broadcasts: BTreeMap<String, Sha256>,
}

impl EcdsaKeygen {
    /// `params_digest` binds the session (its id, threshold, participants
    /// and their keys); DKLs23 binds its messages to it too.
    pub fn new(
        me: &str,
        participants: &[String],
        threshold: u16,
        params_digest: [u8; 32],
    ) -> Result<Self, EcdsaError> {
        let ids = crate::wallet::positions(participants);
        let ids: Vec<(String, u16)> = ids.into_iter().collect();
        let roster = Roster::new(me, &ids)?;
        let parameters = u8::try_from(threshold)
            .ok()
            .zip(u8::try_from(participants.len()).ok())
            .and_then(|(t, n)| Parameters::new(t, n).ok())
            .ok_or_else(|| {
                EcdsaError::Internal(format!(
                    "DKLs23 cannot run {threshold} of {}",
                    participants.len()
                ))
            })?;
        Ok(EcdsaKeygen {
            data: SessionData {
                parameters,
                party_index: roster.my_index,
                session_id: params_digest.to_vec(),
            },
            roster,
            params_digest,
            own_fragment: None,
            poly_point: None,
            zero_2to3: None,
            bip_2to3: None,
            zero_3to4: None,
            mul_3to4: None,
            proofs: BTreeMap::new(),
            zero_in_2: Vec::new(),
            bip_in_2: BTreeMap::new(),
            bip_in_3: BTreeMap::new(),
            broadcasts: BTreeMap::new(),
        })
    }

    fn record(&mut self, peer: &str, broadcast: &[u8]) {
        let h = self.broadcasts.entry(peer.to_string()).or_default();
        h.update((broadcast.len() as u64).to_be_bytes());
        h.update(broadcast);
    }

    fn round1(&mut self) -> Result<Outgoing, EcdsaError> {
        let fragments = Zeroizing::new(dkg::phase1::<Secp256k1>(&self.data));
        let mut direct = BTreeMap::new();
        for (p, i) in self.roster.peers.iter() {
            let f = fragments
                .get(usize::from(i.as_u8()) - 1)
                .ok_or_else(|| EcdsaError::Internal("a fragment is missing".into()))?;
            direct.insert(p.clone(), encode_secret(f)?);
        }
        self.own_fragment = direct.remove(&self.roster.me);
        Ok(Outgoing {
            broadcast: Vec::new(),
            direct,
        })
    }

    fn round2(&mut self, inbox: BTreeMap<String, Incoming>) -> Result<Outgoing, EcdsaError> {
        let own = self
            .own_fragment
            .take()
            .ok_or_else(|| out_of_order("round 2"))?;
        let me = self.roster.me.clone();
        let mut fragments: BTreeMap<u8, Scalar> = BTreeMap::new();
        fragments.insert(
            self.roster.my_index.as_u8(),
            decode(&me, &own, "own fragment")?,
        );
        for (p, m) in &inbox {
            let i = self
                .roster
                .peers
                .get(p)
                .ok_or_else(|| invalid(p, "not a participant"))?;
            fragments.insert(i.as_u8(), decode(p, &m.direct, "a polynomial fragment")?);
        }
        let fragments = Zeroizing::new(fragments.into_values().collect::<Vec<_>>());
        let (poly_point, proof, zero_keep, zero_transmit, bip_keep, bip_broadcast) =
            dkg::phase2::<Secp256k1>(&self.data, &fragments);
        let broadcast = encode(&KeygenBroadcast2 {
            proof: proof.clone(),
            chain_code: bip_broadcast.clone(),
        })?;
        self.record(&me, &broadcast);
        self.proofs.insert(self.roster.my_index, proof);
        self.bip_in_2.insert(self.roster.my_index, bip_broadcast);
        self.poly_point = Some(Zeroizing::new(poly_point));
        self.zero_2to3 = Some(zero_keep);
        self.bip_2to3 = Some(bip_keep);
        let mut direct = BTreeMap::new();
        for m in zero_transmit {
            direct.insert(self.roster.name(m.parties.receiver), encode_secret(&m)?);
        }
        Ok(Outgoing { broadcast, direct })
    }

    fn round3(&mut self, inbox: BTreeMap<String, Incoming>) -> Result<Outgoing, EcdsaError> {
        let (Some(zero_keep), Some(bip_keep)) = (self.zero_2to3.take(), self.bip_2to3.take())
        else {
            return Err(out_of_order("round 3"));
        };
        for (p, m) in self.roster.ordered(&inbox) {
            let b: KeygenBroadcast2 = decode(p, &m.broadcast, "a proof commitment")?;
            let zero: TransmitInitZeroSharePhase2to4 =
                decode(p, &m.direct, "a zero-share commitment")?;
            self.roster.check_route(p, &zero.parties)?;
            let i = self.roster.peers.get(p).copied();
            if Some(b.proof.index) != i || Some(b.chain_code.sender_index) != i {
                return Err(invalid(p, "a broadcast in someone else's name"));
            }
            self.proofs.insert(b.proof.index, b.proof);
            self.bip_in_2
                .insert(b.chain_code.sender_index, b.chain_code);
            self.zero_in_2.push(zero);
        }
        for (p, m) in self.roster.ordered(&inbox) {
            self.record(p, &m.broadcast);
        }
        let (zero_3to4, zero_transmit, mul_keep, mul_transmit, bip_broadcast) =
            dkg::phase3::<Secp256k1>(&self.data, &zero_keep, &bip_keep);
        self.zero_3to4 = Some(zero_3to4);
        self.mul_3to4 = Some(mul_keep);
        let broadcast = encode(&bip_broadcast)?;
        let me = self.roster.me.clone();
        self.record(&me, &broadcast);
        self.bip_in_3.insert(self.roster.my_index, bip_broadcast);
        let mut zero: BTreeMap<u8, TransmitInitZeroSharePhase3to4> = zero_transmit
            .into_iter()
            .map(|m| (m.parties.receiver.as_u8(), m))
            .collect();
        let mut direct = BTreeMap::new();
        for mul in mul_transmit {
            let to = mul.parties.receiver;
            let zero = zero
                .remove(&to.as_u8())
                .ok_or_else(|| EcdsaError::Internal("a zero-share seed is missing".into()))?;
            direct.insert(
                self.roster.name(to),
                encode_secret(&KeygenDirect3 { zero, mul })?,
            );
        }
        Ok(Outgoing { broadcast, direct })
    }

    fn transcript(&self, group_key: &[u8]) -> ([u8; 32], BTreeMap<String, String>) {
        let mut t = Sha256::new();
        t.update(b"mpc-wallet dkls23 keygen v1");
        t.update(self.params_digest);
        let mut digests = BTreeMap::new();
        for (p, h) in &self.broadcasts {
            let d: [u8; 32] = h.clone().finalize().into();
            t.update((p.len() as u64).to_be_bytes());
            t.update(p.as_bytes());
            t.update(d);
            digests.insert(p.clone(), hex::encode(d));
        }
        t.update(group_key);
        (t.finalize().into(), digests)
    }
}

impl Rounds for EcdsaKeygen {
    type Output = EcdsaKeygenOutput;

    fn rounds(&self) -> u8 {
        3
    }

    fn round(&mut self, r: u8, inbox: BTreeMap<String, Incoming>) -> Result<Outgoing, EcdsaError> {
        match r {
            1 => self.round1(),
            2 => self.round2(inbox),
            3 => self.round3(inbox),
            _ => Err(out_of_order("a fourth round")),
        }
    }

    fn finish(&mut self, inbox: BTreeMap<String, Incoming>) -> Result<Self::Output, EcdsaError> {
        let (Some(poly_point), Some(zero_keep), Some(mul_keep)) = (
            self.poly_point.take(),
            self.zero_3to4.take(),
            self.mul_3to4.take(),
        ) else {
            return Err(out_of_order("the end of key generation"));
        };
        let (mut zero_in, mut mul_in) = (Vec::new(), Vec::new());
        for (p, m) in self.roster.ordered(&inbox) {
            let b: BroadcastDerivationPhase3to4 = decode(p, &m.broadcast, "a chain code")?;
            if self.roster.peers.get(p) != Some(&b.sender_index) {
                return Err(invalid(p, "a broadcast in someone else's name"));
            }
            let d: KeygenDirect3 = decode(p, &m.direct, "a multiplication setup")?;
            self.roster.check_route(p, &d.zero.parties)?;
            self.roster.check_route(p, &d.mul.parties)?;
            self.bip_in_3.insert(b.sender_index, b);
            zero_in.push(d.zero);
            mul_in.push(d.mul);
        }
        for (p, m) in self.roster.ordered(&inbox) {
            self.record(p, &m.broadcast);
        }
        let proofs: Vec<_> = self.proofs.values().cloned().collect();
        let (party, package) = dkg::phase4::<Secp256k1>(
            &self.data,
            &poly_point,
            &proofs,
            &zero_keep,
            &self.zero_in_2,
            &zero_in,
            &mul_keep,
            &mul_in,
            &self.bip_in_2,
            &self.bip_in_3,
            dkls23_secp256k1::compute_eth_address,
        )
        .map_err(|a| self.roster.abort(a))?;
        let group_public_key = party.pk.to_sec1_point(true).as_bytes().to_vec();
        let (transcript_hash, commitment_digests) = self.transcript(&group_public_key);
        Ok(EcdsaKeygenOutput {
            identifier: u16::from(self.roster.my_index.as_u8()),
            share: EcdsaShare::new(party),
            public: EcdsaPublic::new(package),
            group_public_key,
            transcript_hash,
            commitment_digests,
        })
    }
}
