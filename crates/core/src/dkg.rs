//! FROST distributed key generation for one session: frost's
//! `part1`/`part2`/`part3`, the wire encoding of their packages, and the
//! transcript hash that the `ready` messages compare. A refresh runs the
//! same rounds with frost's `refresh_dkg_*`: a sharing of zero added to
//! each node's share, so the key stays and the old shares stop combining.
//!
//! The engine is generic over [`frost_core::Ciphersuite`], as in the Zcash
//! Foundation's crates; [`Dkg`] is the small enum that picks secp256k1-tr or
//! ed25519 at run time. Peers are named by peer id here and mapped to FROST
//! identifiers by their position in the sorted participant list (from 1),
//! because frost's packages carry no sender id of their own.
//!
//! Nothing in this module knows about messages or timing; [`crate::node`]
//! feeds it packages in whatever order they arrive.

use std::collections::{BTreeMap, BTreeSet};

use frost_core::keys::dkg::{self, round1, round2};
use frost_core::keys::refresh;
use frost_core::keys::{KeyPackage, PublicKeyPackage};
use frost_core::{Ciphersuite, Identifier};
use frost_ed25519::Ed25519Sha512;
use frost_secp256k1_tr::Secp256K1Sha256TR;
use mpc_protocol::peer::Curve;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::roster::Roster;
use crate::wallet::{self, SecretKeyPackage};

/// Why the DKG cannot go on. Every variant that a peer can cause names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DkgError {
    /// The peer's package does not decode, or has the wrong shape.
    InvalidCommitment { peer: String, detail: String },
    /// The peer's round-2 share does not decode or fails verification.
    InvalidShare { peer: String, detail: String },
    /// A frost failure that no single peer can be blamed for.
    Internal(String),
}

/// Whether a package was new or a repeat of one already held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Added {
    New,
    Duplicate,
}

/// Keeps a peer's package once: an equal repeat is a [`Added::Duplicate`],
/// a different one is `conflict` (the peer equivocates).
pub(crate) fn insert_once<K: Ord, V: PartialEq, E>(
    held: &mut BTreeMap<K, V>,
    key: K,
    value: V,
    conflict: E,
) -> Result<Added, E> {
    match held.get(&key) {
        Some(existing) if *existing == value => Ok(Added::Duplicate),
        Some(_) => Err(conflict),
        None => {
            held.insert(key, value);
            Ok(Added::New)
        }
    }
}

/// The session parameters that the transcript hash covers.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    pub session_id: String,
    pub curve: Curve,
    pub threshold: u16,
    /// Sorted and unique.
    pub participants: Vec<String>,
    /// Every participant's identity key, as this node holds them: bound
    /// into the transcript, so nodes that were shown different keys for
    /// someone never agree on a wallet.
    pub keys: BTreeMap<String, [u8; 32]>,
    pub me: String,
    /// For a refresh: the wallet whose shares are renewed.
    pub refresh: Option<RefreshOf>,
}

/// What a refresh starts from: this node's current share of the wallet.
#[derive(Clone, Debug)]
pub(crate) struct RefreshOf {
    /// Every participant's FROST identifier, kept from the wallet.
    pub identifiers: BTreeMap<String, u16>,
    pub key_package: SecretKeyPackage,
    pub public_key_package: wallet::PublicKeyPackage,
    /// The generation being replaced.
    pub generation: u32,
}

/// Deliberate misbehaviour, settable only with the `faults` feature. It
/// lives here because only the engine holds the secrets needed to misbehave
/// convincingly (an equivocator must send shares that match what each
/// victim saw, or frost would catch it as a bad share instead).
#[derive(Clone, Debug, Default)]
pub struct Misbehaviour {
    /// Send these peers a share meant for someone else.
    pub bad_share_to: BTreeSet<String>,
    /// Send these peers a second, different round-1 package (and matching
    /// shares), while everyone else gets the first one.
    pub equivocate_to: BTreeSet<String>,
    /// In signing, send every other signer a signature share for another
    /// message (valid-looking, fails verification).
    pub bad_signature_share: bool,
    /// Send DKG shares unencrypted.
    pub plaintext_shares: bool,
    /// In signing, send these peers a commitment to other nonces than
    /// everyone else gets.
    pub equivocate_sign_to: BTreeSet<String>,
    /// As a sign proposer, send these peers a proposal whose payload the
    /// function altered.
    #[cfg_attr(not(feature = "faults"), allow(dead_code))]
    pub tamper_proposal_to: BTreeMap<String, Tamper>,
    /// As a repair helper, send these peers (the target) the wallet's
    /// public data with another generation.
    #[cfg_attr(not(feature = "faults"), allow(dead_code))]
    pub lie_in_repair_to: BTreeSet<String>,
}

/// How a lying proposer alters a payload (`faults` only).
pub type Tamper = fn(&[u8]) -> Vec<u8>;

/// What a completed DKG yields.
pub(crate) struct DkgOutput {
    pub identifier: u16,
    pub key_package: SecretKeyPackage,
    pub public_key_package: wallet::PublicKeyPackage,
    pub group_public_key: Vec<u8>,
    pub transcript_hash: [u8; 32],
    /// Peer id → hex SHA-256 of the round-1 package this node used.
    pub commitment_digests: BTreeMap<String, String>,
    pub identifiers: BTreeMap<String, u16>,
    /// 0 for a new wallet, one more than the old shares' for a refresh.
    pub generation: u32,
}

/// A ciphersuite this wallet supports, and how its results are wrapped.
pub(crate) trait Suite: Ciphersuite {
    fn wrap(
        key: KeyPackage<Self>,
        public: PublicKeyPackage<Self>,
    ) -> (wallet::KeyPackage, wallet::PublicKeyPackage);

    /// This suite's packages, if the wallet's are of its curve.
    fn unwrap(
        key: &wallet::KeyPackage,
        public: &wallet::PublicKeyPackage,
    ) -> Option<(KeyPackage<Self>, PublicKeyPackage<Self>)>;
}

impl Suite for Secp256K1Sha256TR {
    fn wrap(
        key: KeyPackage<Self>,
        public: PublicKeyPackage<Self>,
    ) -> (wallet::KeyPackage, wallet::PublicKeyPackage) {
        (
            wallet::KeyPackage::Secp256k1(key),
            wallet::PublicKeyPackage::Secp256k1(public),
        )
    }

    fn unwrap(
        key: &wallet::KeyPackage,
        public: &wallet::PublicKeyPackage,
    ) -> Option<(KeyPackage<Self>, PublicKeyPackage<Self>)> {
        match (key, public) {
            (wallet::KeyPackage::Secp256k1(k), wallet::PublicKeyPackage::Secp256k1(p)) => {
                Some((k.clone(), p.clone()))
            }
            _ => None,
        }
    }
}

impl Suite for Ed25519Sha512 {
    fn wrap(
        key: KeyPackage<Self>,
        public: PublicKeyPackage<Self>,
    ) -> (wallet::KeyPackage, wallet::PublicKeyPackage) {
        (
            wallet::KeyPackage::Ed25519(key),
            wallet::PublicKeyPackage::Ed25519(public),
        )
    }

    fn unwrap(
        key: &wallet::KeyPackage,
        public: &wallet::PublicKeyPackage,
    ) -> Option<(KeyPackage<Self>, PublicKeyPackage<Self>)> {
        match (key, public) {
            (wallet::KeyPackage::Ed25519(k), wallet::PublicKeyPackage::Ed25519(p)) => {
                Some((k.clone(), p.clone()))
            }
            _ => None,
        }
    }
}

/// The DKG state of one node, for the session's curve.
pub(crate) enum Dkg {
    Secp256k1(Box<Engine<Secp256K1Sha256TR>>),
    Ed25519(Box<Engine<Ed25519Sha512>>),
}

macro_rules! dispatch {
    ($self:expr, $e:ident => $body:expr) => {
        match $self {
            Dkg::Secp256k1($e) => $body,
            Dkg::Ed25519($e) => $body,
        }
    };
}

impl Dkg {
    pub fn new(params: Params, misbehaviour: Misbehaviour) -> Result<Self, DkgError> {
        Ok(match params.curve {
            Curve::Secp256k1 => Dkg::Secp256k1(Box::new(Engine::new(params, misbehaviour)?)),
            Curve::Ed25519 => Dkg::Ed25519(Box::new(Engine::new(params, misbehaviour)?)),
            // Its rounds are crate::ecdsa's, started by the keygen phase.
            Curve::Secp256k1Ecdsa => {
                return Err(DkgError::Internal("ECDSA is not a FROST curve".into()))
            }
        })
    }

    /// Round 1: returns the hex commitment to send to each peer (the same
    /// one to all, unless misbehaving).
    pub fn round1(&mut self, rng: &mut ChaCha20Rng) -> Result<BTreeMap<String, String>, DkgError> {
        dispatch!(self, e => e.round1(rng))
    }

    pub fn add_commitment(&mut self, peer: &str, hex_data: &str) -> Result<Added, DkgError> {
        dispatch!(self, e => e.add_commitment(peer, hex_data))
    }

    pub fn missing_commitments(&self) -> Vec<String> {
        dispatch!(self, e => e.roster.missing(|id| e.r1.contains_key(id)))
    }

    /// Round 2: returns the hex share for each peer.
    pub fn round2(&mut self) -> Result<Vec<(String, Zeroizing<String>)>, DkgError> {
        dispatch!(self, e => e.round2())
    }

    pub fn add_share(&mut self, peer: &str, hex_data: &str) -> Result<Added, DkgError> {
        dispatch!(self, e => e.add_share(peer, hex_data))
    }

    pub fn missing_shares(&self) -> Vec<String> {
        dispatch!(self, e => e.roster.missing(|id| e.r2.contains_key(id)))
    }

    /// Round 3: verifies every share and derives the key package.
    pub fn finish(&mut self) -> Result<DkgOutput, DkgError> {
        dispatch!(self, e => e.finish())
    }
}

/// The generic DKG engine for one ciphersuite.
pub(crate) struct Engine<C: Suite> {
    params: Params,
    roster: Roster<C>,
    r1_secret: Option<round1::SecretPackage<C>>,
    /// Canonical bytes of every round-1 package used, own included.
    r1_bytes: BTreeMap<String, Vec<u8>>,
    r1: BTreeMap<Identifier<C>, round1::Package<C>>,
    r2_secret: Option<round2::SecretPackage<C>>,
    r2: BTreeMap<Identifier<C>, round2::Package<C>>,
    misbehaviour: Misbehaviour,
    alt_r1_secret: Option<round1::SecretPackage<C>>,
}

impl<C: Suite> Engine<C> {
    fn new(params: Params, misbehaviour: Misbehaviour) -> Result<Self, DkgError> {
        let mut members = Vec::new();
        for (i, p) in params.participants.iter().enumerate() {
            let n = match &params.refresh {
                Some(r) => r.identifiers.get(p).copied(),
                None => u16::try_from(i + 1).ok(),
            }
            .ok_or_else(|| DkgError::Internal(format!("no FROST identifier for {p}")))?;
            members.push((p.clone(), n));
        }
        let roster = Roster::new(&params.me, members).map_err(DkgError::Internal)?;
        Ok(Engine {
            params,
            roster,
            r1_secret: None,
            r1_bytes: BTreeMap::new(),
            r1: BTreeMap::new(),
            r2_secret: None,
            r2: BTreeMap::new(),
            misbehaviour,
            alt_r1_secret: None,
        })
    }

    fn total(&self) -> u16 {
        self.params.participants.len() as u16
    }

    fn round1(&mut self, rng: &mut ChaCha20Rng) -> Result<BTreeMap<String, String>, DkgError> {
        let (secret, package) = self.part1(&mut *rng)?;
        let bytes = package.serialize().map_err(internal)?;
        let hex_main = hex::encode(&bytes);
        self.r1_bytes.insert(self.params.me.clone(), bytes);
        self.r1_secret = Some(secret);
        let hex_alt = if self.misbehaviour.equivocate_to.is_empty() {
            None
        } else {
            let (alt_secret, alt) = self.part1(rng)?;
            self.alt_r1_secret = Some(alt_secret);
            Some(hex::encode(alt.serialize().map_err(internal)?))
        };
        Ok(self
            .params
            .participants
            .iter()
            .filter(|p| **p != self.params.me)
            .map(|p| {
                let data = match &hex_alt {
                    Some(alt) if self.misbehaviour.equivocate_to.contains(p) => alt.clone(),
                    _ => hex_main.clone(),
                };
                (p.clone(), data)
            })
            .collect())
    }

    fn part1(
        &self,
        rng: &mut ChaCha20Rng,
    ) -> Result<(round1::SecretPackage<C>, round1::Package<C>), DkgError> {
        let (id, n, t) = (self.roster.my_id, self.total(), self.params.threshold);
        match self.params.refresh {
            // A polynomial whose constant is zero: shares of the same key.
            Some(_) => refresh::refresh_dkg_part1::<C, _>(id, n, t, rng),
            None => dkg::part1::<C, _>(id, n, t, rng),
        }
        .map_err(internal)
    }

    fn add_commitment(&mut self, peer: &str, hex_data: &str) -> Result<Added, DkgError> {
        let bad = |detail: &str| DkgError::InvalidCommitment {
            peer: peer.into(),
            detail: detail.into(),
        };
        let (id, raw) =
            self.roster
                .incoming(peer, hex_data, ("participant", "commitment"), |d| bad(&d))?;
        let package = round1::Package::<C>::deserialize(&raw)
            .map_err(|_| bad("commitment is not a round-1 package"))?;
        let added = insert_once(
            &mut self.r1,
            id,
            package,
            bad("sent two different commitments"),
        )?;
        if added == Added::New {
            // The transcript hashes the bytes as received: equal bytes mean
            // equal packages, and a sender who encodes one package
            // differently for different peers is caught like any other
            // equivocator.
            self.r1_bytes.insert(peer.to_string(), raw.to_vec());
        }
        Ok(added)
    }

    fn round2(&mut self) -> Result<Vec<(String, Zeroizing<String>)>, DkgError> {
        let secret = self
            .r1_secret
            .take()
            .ok_or_else(|| DkgError::Internal("round 2 before round 1".into()))?;
        let part2 = match self.params.refresh {
            Some(_) => refresh::refresh_dkg_part2::<C>,
            None => dkg::part2::<C>,
        };
        let (r2_secret, shares) = part2(secret, &self.r1).map_err(|e| self.blame_commitment(e))?;
        self.r2_secret = Some(r2_secret);
        let alt_shares = match self.alt_r1_secret.take() {
            Some(alt) => Some(part2(alt, &self.r1).map_err(internal)?.1),
            None => None,
        };
        let mut out = Vec::with_capacity(shares.len());
        let ids: Vec<(Identifier<C>, String)> = shares
            .keys()
            .map(|id| (*id, self.roster.name(id)))
            .collect();
        for (i, (id, name)) in ids.iter().enumerate() {
            let package = match &alt_shares {
                Some(alt) if self.misbehaviour.equivocate_to.contains(name) => alt.get(id),
                _ => shares.get(id),
            }
            .ok_or_else(|| DkgError::Internal("round 2 left out a participant".into()))?;
            let mut bytes = Zeroizing::new(package.serialize().map_err(internal)?);
            if self.misbehaviour.bad_share_to.contains(name) {
                // Someone else's valid share fails this peer's verification.
                match ids
                    .get((i + 1) % ids.len())
                    .and_then(|(o, _)| shares.get(o).filter(|_| o != id))
                {
                    Some(other) => {
                        bytes = Zeroizing::new(other.serialize().map_err(internal)?);
                    }
                    _ => {
                        if let Some(b) = bytes.last_mut() {
                            *b ^= 1;
                        }
                    }
                }
            }
            out.push((name.clone(), Zeroizing::new(hex::encode(&*bytes))));
        }
        Ok(out)
    }

    fn blame_commitment(&self, e: frost_core::Error<C>) -> DkgError {
        if let frost_core::Error::IncorrectNumberOfCommitments = e {
            // frost does not say whose commitment has the wrong length;
            // find it here (only on this error path, since it re-encodes).
            // A refresh's commitments leave out the (zero) constant term.
            let expected =
                usize::from(self.params.threshold) - usize::from(self.params.refresh.is_some());
            for (id, package) in &self.r1 {
                let len = package.commitment().serialize().map(|c| c.len());
                if len != Ok(expected) {
                    return DkgError::InvalidCommitment {
                        peer: self.roster.name(id),
                        detail: format!(
                            "commitment has {} coefficients, threshold is {}",
                            len.unwrap_or(0),
                            expected
                        ),
                    };
                }
            }
        }
        match e.culprits().first() {
            Some(id) => DkgError::InvalidCommitment {
                peer: self.roster.name(id),
                detail: e.to_string(),
            },
            None => internal(e),
        }
    }

    fn add_share(&mut self, peer: &str, hex_data: &str) -> Result<Added, DkgError> {
        let bad = |detail: &str| DkgError::InvalidShare {
            peer: peer.into(),
            detail: detail.into(),
        };
        let (id, raw) = self
            .roster
            .incoming(peer, hex_data, ("participant", "share"), |d| bad(&d))?;
        let package = round2::Package::<C>::deserialize(&raw)
            .map_err(|_| bad("share is not a round-2 package"))?;
        insert_once(&mut self.r2, id, package, bad("sent two different shares"))
    }

    fn finish(&mut self) -> Result<DkgOutput, DkgError> {
        let secret = self
            .r2_secret
            .take()
            .ok_or_else(|| DkgError::Internal("round 3 before round 2".into()))?;
        let result = match &self.params.refresh {
            Some(old) => {
                let (key, public) = C::unwrap(old.key_package.expose(), &old.public_key_package)
                    .ok_or_else(|| DkgError::Internal("the wallet is of another curve".into()))?;
                let before = public.verifying_key().serialize().map_err(internal)?;
                let result = refresh::refresh_dkg_shares(&secret, &self.r1, &self.r2, public, key);
                // By construction; checked, since the address depends on it.
                if let Ok((_, p)) = &result {
                    if p.verifying_key().serialize().map_err(internal)? != before {
                        return Err(DkgError::Internal("a refresh changed the group key".into()));
                    }
                }
                result
            }
            None => dkg::part3(&secret, &self.r1, &self.r2),
        };
        // The received shares are no longer needed; frost zeroizes them on drop.
        self.r2.clear();
        let (key, public) = result.map_err(|e| match e.culprits().first() {
            Some(id) => DkgError::InvalidShare {
                peer: self.roster.name(id),
                detail: e.to_string(),
            },
            None => internal(e),
        })?;
        let group_public_key = public.verifying_key().serialize().map_err(internal)?;
        let identifiers: BTreeMap<String, u16> = match &self.params.refresh {
            Some(r) => r
                .identifiers
                .iter()
                .filter(|(p, _)| self.params.participants.contains(p))
                .map(|(p, i)| (p.clone(), *i))
                .collect(),
            None => wallet::positions(&self.params.participants),
        };
        let identifier = identifiers.get(&self.params.me).copied().unwrap_or(0);
        let generation = self.params.refresh.as_ref().map_or(0, |r| r.generation + 1);
        let transcript_hash = transcript_hash(&self.params, &self.r1_bytes, &group_public_key);
        let commitment_digests = self
            .r1_bytes
            .iter()
            .map(|(p, b)| (p.clone(), hex::encode(Sha256::digest(b))))
            .collect();
        let (key, public) = C::wrap(key, public);
        Ok(DkgOutput {
            identifier,
            key_package: SecretKeyPackage::new(key),
            public_key_package: public,
            group_public_key,
            transcript_hash,
            commitment_digests,
            identifiers,
            generation,
        })
    }
}

fn internal<E: std::fmt::Display>(e: E) -> DkgError {
    DkgError::Internal(e.to_string())
}

/// SHA-256 over the session parameters, every participant's identity key
/// and round-1 package (in sorted participant order) and the group key,
/// each length-prefixed so that no two different transcripts share an
/// encoding.
pub(crate) fn transcript_hash(
    params: &Params,
    r1_bytes: &BTreeMap<String, Vec<u8>>,
    group_public_key: &[u8],
) -> [u8; 32] {
    fn put(h: &mut Sha256, bytes: &[u8]) {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    let mut h = Sha256::new();
    put(&mut h, b"mpc-wallet/dkg-transcript/v2");
    // A refresh also binds the identifiers and the generation it replaces
    // (a key generation's transcript is as before).
    if let Some(r) = &params.refresh {
        put(&mut h, b"refresh");
        h.update(r.generation.to_be_bytes());
        for (p, i) in &r.identifiers {
            put(&mut h, p.as_bytes());
            h.update(i.to_be_bytes());
        }
    }
    put(&mut h, params.session_id.as_bytes());
    put(&mut h, params.curve.as_str().as_bytes());
    h.update(params.threshold.to_be_bytes());
    h.update((params.participants.len() as u16).to_be_bytes());
    for p in &params.participants {
        put(&mut h, p.as_bytes());
        put(
            &mut h,
            params.keys.get(p).map(|k| &k[..]).unwrap_or_default(),
        );
        put(
            &mut h,
            r1_bytes.get(p).map(Vec::as_slice).unwrap_or_default(),
        );
    }
    put(&mut h, group_public_key);
    h.finalize().into()
}

/// Wipes a secret string in place (used on received share hex).
pub(crate) fn wipe(s: &mut String) {
    s.zeroize();
}
