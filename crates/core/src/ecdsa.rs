//! Threshold ECDSA on secp256k1 with DKLs23 (0xCarbon's `dkls23-secp256k1`,
//! pinned; unaudited, see `docs/security.md`): key generation and signing
//! as rounds of messages, for Ethereum wallets.
//!
//! Both protocols have the same shape, which [`Rounds`] names: in each
//! round a node sends every peer one part that is the same for all (the
//! broadcast) and one part for that peer alone (the direct part, which the
//! node phase seals to the recipient). A round starts once every peer's
//! part of the round before is in. Key generation has three rounds and
//! signing three; [`crate::node::phase::ecdsa`] moves the parts.
//!
//! Peers are named by peer id here and mapped to DKLs23 party indices by
//! their position in the sorted participant list (from 1), as FROST
//! identifiers are. Every message names its sender and receiver inside;
//! one that names anyone but the peer that sent it, or us, is that peer's
//! fault.
//!
//! DKLs23 draws its randomness from the OS itself (`rand::rng()`), not from
//! the node's seeded RNG, so ECDSA sessions in the simulator are not
//! reproducible byte for byte.

use std::collections::BTreeMap;

use dkls23_secp256k1::protocols::dkg::{
    self, BroadcastDerivationPhase2to4, BroadcastDerivationPhase3to4, KeepInitMulPhase3to4,
    KeepInitZeroSharePhase2to3, KeepInitZeroSharePhase3to4, ProofCommitment, SessionData,
    TransmitInitMulPhase3to4, TransmitInitZeroSharePhase2to4, TransmitInitZeroSharePhase3to4,
    UniqueKeepDerivationPhase2to3,
};
use dkls23_secp256k1::protocols::signing::{
    Broadcast3to4, KeepPhase1to2, KeepPhase2to3, SignData, TransmitPhase1to2, TransmitPhase2to3,
    UniqueKeep1to2, UniqueKeep2to3,
};
use dkls23_secp256k1::protocols::{
    Abort, AbortKind, AbortReason as Why, Parameters, PartiesMessage, PartyIndex,
};
use k256::elliptic_curve::sec1::ToSec1Point;
use k256::Secp256k1;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::wallet::{EcdsaPublic, EcdsaShare};

type Scalar = k256::Scalar;

/// Why an ECDSA round cannot go on. A peer's fault names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EcdsaError {
    /// What the peer sent does not decode, is misaddressed, or fails a
    /// check of the protocol.
    Invalid { peer: String, detail: String },
    /// A failure no single peer can be blamed for.
    Internal(String),
}

/// One round's parts from this node.
pub(crate) struct Outgoing {
    /// The same for every peer (may be empty).
    pub broadcast: Vec<u8>,
    /// Peer id → the part for it alone (sealed before it is sent).
    pub direct: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

/// What one peer sent in one round.
pub(crate) struct Incoming {
    pub broadcast: Vec<u8>,
    pub direct: Zeroizing<Vec<u8>>,
}

/// A protocol that runs as rounds of broadcast and direct parts.
pub(crate) trait Rounds {
    /// What the protocol ends with.
    type Output;
    /// How many rounds of messages it has.
    fn rounds(&self) -> u8;
    /// Round `r` (from 1): this node's parts, made from every peer's parts
    /// of round `r - 1` (nothing for round 1).
    fn round(&mut self, r: u8, inbox: BTreeMap<String, Incoming>) -> Result<Outgoing, EcdsaError>;
    /// The result, from every peer's parts of the last round.
    fn finish(&mut self, inbox: BTreeMap<String, Incoming>) -> Result<Self::Output, EcdsaError>;
}

/// Peer ids and their party indices, this node's included.
struct Roster {
    me: String,
    my_index: PartyIndex,
    /// Sorted by index.
    peers: BTreeMap<String, PartyIndex>,
}

impl Roster {
    fn new(me: &str, ids: &[(String, u16)]) -> Result<Self, EcdsaError> {
        let mut peers = BTreeMap::new();
        for (p, i) in ids {
            let i = u8::try_from(*i)
                .ok()
                .and_then(|i| PartyIndex::new(i).ok())
                .ok_or_else(|| EcdsaError::Internal(format!("{p} has no DKLs23 index")))?;
            peers.insert(p.clone(), i);
        }
        let my_index = *peers
            .get(me)
            .ok_or_else(|| EcdsaError::Internal("this node is not a participant".into()))?;
        Ok(Roster {
            me: me.to_string(),
            my_index,
            peers,
        })
    }

    fn others(&self) -> impl Iterator<Item = (&String, &PartyIndex)> {
        self.peers.iter().filter(|(p, _)| **p != self.me)
    }

    fn name(&self, index: PartyIndex) -> String {
        self.peers
            .iter()
            .find(|(_, i)| **i == index)
            .map(|(p, _)| p.clone())
            .unwrap_or_else(|| format!("party {}", index.as_u8()))
    }

    /// Every peer's part, in party-index order.
    fn ordered<'a>(
        &self,
        inbox: &'a BTreeMap<String, Incoming>,
    ) -> Vec<(&'a String, &'a Incoming)> {
        let mut v: Vec<_> = inbox.iter().collect();
        v.sort_by_key(|(p, _)| self.peers.get(*p).map(|i| i.as_u8()));
        v
    }

    /// That a message from `peer` names it as sender and us as receiver.
    fn check_route(&self, peer: &str, parties: &PartiesMessage) -> Result<(), EcdsaError> {
        let sender = self.peers.get(peer).copied();
        if Some(parties.sender) != sender || parties.receiver != self.my_index {
            return Err(invalid(peer, "a message addressed to someone else"));
        }
        Ok(())
    }

    /// A DKLs23 abort, with the peer it names as the culprit.
    fn abort(&self, a: Abort) -> EcdsaError {
        let culprit = match (&a.kind, &a.reason) {
            (AbortKind::BanCounterparty(p), _) => Some(*p),
            (
                _,
                Why::ProofVerificationFailed { counterparty }
                | Why::CommitmentMismatch { counterparty }
                | Why::TrivialInstancePoint { counterparty }
                | Why::OtConsistencyCheckFailed { counterparty }
                | Why::MultiplicationVerificationFailed { counterparty, .. }
                | Why::GammaUInconsistency { counterparty }
                | Why::ZeroShareDecommitFailed { counterparty }
                | Why::SessionBindingMismatch { counterparty },
            ) => Some(*counterparty),
            (_, Why::UnexpectedSender { sender } | Why::DuplicateSender { sender }) => {
                Some(*sender)
            }
            (
                _,
                Why::MissingCommittedPoint { party } | Why::ChainCodeCommitmentFailed { party },
            ) => Some(*party),
            _ => None,
        };
        match culprit {
            Some(p) if p != self.my_index => EcdsaError::Invalid {
                peer: self.name(p),
                detail: a.description(),
            },
            _ => EcdsaError::Internal(a.description()),
        }
    }
}

fn invalid(peer: &str, detail: &str) -> EcdsaError {
    EcdsaError::Invalid {
        peer: peer.to_string(),
        detail: detail.to_string(),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, EcdsaError> {
    postcard::to_allocvec(value).map_err(|e| EcdsaError::Internal(e.to_string()))
}

/// Secret parts are encoded into a buffer that is wiped when dropped.
fn encode_secret<T: Serialize>(value: &T) -> Result<Zeroizing<Vec<u8>>, EcdsaError> {
    encode(value).map(Zeroizing::new)
}

fn decode<T: DeserializeOwned>(peer: &str, bytes: &[u8], what: &str) -> Result<T, EcdsaError> {
    postcard::from_bytes(bytes).map_err(|_| invalid(peer, &format!("{what} does not decode")))
}

fn out_of_order(what: &str) -> EcdsaError {
    EcdsaError::Internal(format!("{what} out of order"))
}

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
    poly_point: Option<Scalar>,
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
        self.poly_point = Some(poly_point);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs every node's rounds in memory, as the mesh would.
    fn run<R: Rounds>(nodes: &mut BTreeMap<String, R>) -> BTreeMap<String, R::Output> {
        let names: Vec<String> = nodes.keys().cloned().collect();
        let rounds = nodes.values().next().map(|n| n.rounds()).unwrap_or(0);
        let mut inboxes: BTreeMap<String, BTreeMap<String, Incoming>> = BTreeMap::new();
        for r in 1..=rounds {
            let mut sent = BTreeMap::new();
            for (name, node) in nodes.iter_mut() {
                let inbox = inboxes.remove(name).unwrap_or_default();
                sent.insert(name.clone(), node.round(r, inbox).unwrap());
            }
            for from in &names {
                for to in names.iter().filter(|t| *t != from) {
                    let out = &sent[from];
                    let direct = out.direct.get(to).cloned().unwrap_or_default();
                    inboxes.entry(to.clone()).or_default().insert(
                        from.clone(),
                        Incoming {
                            broadcast: out.broadcast.clone(),
                            direct,
                        },
                    );
                }
            }
        }
        nodes
            .iter_mut()
            .map(|(n, node)| (n.clone(), node.finish(inboxes.remove(n).unwrap()).unwrap()))
            .collect()
    }

    #[test]
    fn a_garbled_or_misaddressed_part_names_its_sender() {
        let ps: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut nodes: BTreeMap<String, EcdsaKeygen> = ps
            .iter()
            .map(|p| (p.clone(), EcdsaKeygen::new(p, &ps, 2, [9; 32]).unwrap()))
            .collect();
        let r1: BTreeMap<String, Outgoing> = nodes
            .iter_mut()
            .map(|(n, k)| (n.clone(), k.round(1, BTreeMap::new()).unwrap()))
            .collect();
        let inbox_of = |to: &str, r: &BTreeMap<String, Outgoing>| -> BTreeMap<String, Incoming> {
            r.iter()
                .filter(|(from, _)| *from != to)
                .map(|(from, o)| {
                    (
                        from.clone(),
                        Incoming {
                            broadcast: o.broadcast.clone(),
                            direct: o.direct[to].clone(),
                        },
                    )
                })
                .collect()
        };
        let r2: BTreeMap<String, Outgoing> = nodes
            .iter_mut()
            .map(|(n, k)| (n.clone(), k.round(2, inbox_of(n, &r1)).unwrap()))
            .collect();
        // Garbage from a in round 2.
        let mut inbox = inbox_of("b", &r2);
        inbox.get_mut("a").unwrap().broadcast = b"garbage".to_vec();
        match nodes.get_mut("b").unwrap().round(3, inbox) {
            Err(EcdsaError::Invalid { peer, .. }) => assert_eq!(peer, "a"),
            other => panic!("{:?}", other.err()),
        }
        // c's part for b, passed off as a's: addressed from someone else.
        let mut inbox = inbox_of("c", &r2);
        let a_to_b = r2["a"].direct["b"].clone();
        inbox.get_mut("a").unwrap().direct = a_to_b;
        match nodes.get_mut("c").unwrap().round(3, inbox) {
            Err(EcdsaError::Invalid { peer, detail }) => {
                assert_eq!(peer, "a");
                assert!(detail.contains("addressed"), "{detail}");
            }
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn two_of_three_generate_and_sign() {
        let ps: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut nodes: BTreeMap<String, EcdsaKeygen> = ps
            .iter()
            .map(|p| (p.clone(), EcdsaKeygen::new(p, &ps, 2, [7; 32]).unwrap()))
            .collect();
        let out = run(&mut nodes);
        let keys: Vec<_> = out.values().map(|o| o.group_public_key.clone()).collect();
        assert!(keys.iter().all(|k| *k == keys[0] && k.len() == 33));
        let hashes: Vec<_> = out.values().map(|o| o.transcript_hash).collect();
        assert!(hashes.iter().all(|h| *h == hashes[0]));

        let hash = [42u8; 32];
        let signers = vec![("a".to_string(), 1u16), ("c".to_string(), 3u16)];
        let names = vec!["a".to_string(), "c".to_string()];
        let id = sign_id("s1", &hash, &names);
        let mut out = out;
        let mut signing: BTreeMap<String, EcdsaSigner> = names
            .iter()
            .map(|n| {
                let share = out.remove(n).unwrap().share;
                (
                    n.clone(),
                    EcdsaSigner::new(n, &signers, share, id, hash).unwrap(),
                )
            })
            .collect();
        let sigs = run(&mut signing);
        assert_eq!(sigs["a"], sigs["c"]);
    }

    #[test]
    fn a_stored_share_carries_its_format_version() {
        use crate::wallet::{KeyPackage, PublicKeyPackage, SecretKeyPackage};
        use mpc_protocol::peer::Curve;
        let ps: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let mut nodes: BTreeMap<String, EcdsaKeygen> = ps
            .iter()
            .map(|p| (p.clone(), EcdsaKeygen::new(p, &ps, 2, [9; 32]).unwrap()))
            .collect();
        let o = run(&mut nodes).remove("a").unwrap();
        let c = Curve::Secp256k1Ecdsa;
        let secret = SecretKeyPackage::new(KeyPackage::Secp256k1Ecdsa(o.share));
        let bytes = secret.serialize();
        assert!(bytes.starts_with(b"dkls\x01"));
        assert!(SecretKeyPackage::deserialize(c, &bytes).unwrap() == secret);
        let public = PublicKeyPackage::Secp256k1Ecdsa(o.public);
        let pbytes = public.serialize();
        assert!(pbytes.starts_with(b"dkls\x01"));
        assert_eq!(PublicKeyPackage::deserialize(c, &pbytes).unwrap(), public);

        // A later layout is refused by name; so is a header-less blob.
        let mut later = bytes.to_vec();
        later[4] = 2;
        let e = SecretKeyPackage::deserialize(c, &later).unwrap_err();
        assert!(
            e.contains("format version 2") && e.contains("reads version 1"),
            "{e}"
        );
        let e = PublicKeyPackage::deserialize(c, &pbytes[5..]).unwrap_err();
        assert!(e.contains("no DKLs23 header"), "{e}");
        assert!(SecretKeyPackage::deserialize(c, b"dkls\x01garbage").is_err());
    }
}
