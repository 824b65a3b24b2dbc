//! FROST threshold signing for one session: frost's `round1::commit`,
//! `round2::sign` and `aggregate`, the wire encoding of their packages, and
//! the final verification every signer does before reporting success.
//!
//! Generic over [`frost_core::Ciphersuite`] like [`crate::dkg`]; [`Signing`]
//! picks secp256k1-tr or ed25519 at run time. Signers are mapped to FROST
//! identifiers by their position in the wallet's sorted participant list.
//!
//! For secp256k1-tr, the key package from the DKG is already BIP341-tweaked
//! (frost's `post_dkg`), so plain `sign`/`aggregate` produce a BIP340
//! signature under the Taproot output key; the `*_with_tweak` functions
//! would tweak a second time and are not used.
//!
//! A session may sign several messages (a PSBT's inputs): each gets its
//! own nonces and signing package, and every round carries one item per
//! message.
//!
//! Nonces live only in memory, in an `Option` that round 2 takes and drops;
//! frost's `SigningNonces` zeroize themselves on drop.

use std::collections::BTreeMap;

use frost_core::keys::{KeyPackage, PublicKeyPackage};
use frost_core::round1::{SigningCommitments, SigningNonces};
use frost_core::round2::SignatureShare;
use frost_core::{Ciphersuite, Identifier, SigningPackage};
use frost_ed25519::Ed25519Sha512;
use frost_secp256k1_tr::Secp256K1Sha256TR;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

use crate::dkg::{insert_once, Added};
use crate::roster::Roster;
use crate::wallet::{self, SigningWallet};

/// Why signing cannot go on. Variants a peer can cause name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SignError {
    InvalidCommitment { peer: String, detail: String },
    InvalidShare { peer: String, detail: String },
    Internal(String),
}

/// The signing state of one node, for the wallet's curve.
pub(crate) enum Signing {
    Secp256k1(Box<Signer<Secp256K1Sha256TR>>),
    Ed25519(Box<Signer<Ed25519Sha512>>),
}

macro_rules! dispatch {
    ($self:expr, $e:ident => $body:expr) => {
        match $self {
            Signing::Secp256k1($e) => $body,
            Signing::Ed25519($e) => $body,
        }
    };
}

impl Signing {
    /// `signers` must be sorted, unique, include `me`, and be a subset of
    /// the wallet's participants.
    pub fn new(
        wallet: &SigningWallet,
        me: &str,
        signers: &[String],
        messages: Vec<Vec<u8>>,
        bad_share: bool,
    ) -> Result<Self, SignError> {
        let ids = wallet
            .identifiers_of(signers)
            .map_err(SignError::Internal)?;
        Ok(
            match (wallet.key_package.expose(), &wallet.public_key_package) {
                (wallet::KeyPackage::Secp256k1(k), wallet::PublicKeyPackage::Secp256k1(p)) => {
                    Signing::Secp256k1(Box::new(Signer::new(
                        me,
                        ids,
                        k.clone(),
                        p.clone(),
                        messages,
                        bad_share,
                    )?))
                }
                (wallet::KeyPackage::Ed25519(k), wallet::PublicKeyPackage::Ed25519(p)) => {
                    Signing::Ed25519(Box::new(Signer::new(
                        me,
                        ids,
                        k.clone(),
                        p.clone(),
                        messages,
                        bad_share,
                    )?))
                }
                _ => {
                    return Err(SignError::Internal(
                        "key package and public key package are for different curves".into(),
                    ))
                }
            },
        )
    }

    /// Round 1: fresh nonces (kept in memory only) and the hex commitments
    /// to broadcast, one per message.
    pub fn round1(&mut self, rng: &mut ChaCha20Rng) -> Result<Vec<String>, SignError> {
        dispatch!(self, e => e.round1(rng))
    }

    /// A signer's commitments, one per message.
    pub fn add_commitment(&mut self, peer: &str, items: &[&str]) -> Result<Added, SignError> {
        dispatch!(self, e => e.add_commitment(peer, items))
    }

    pub fn missing_commitments(&self) -> Vec<String> {
        dispatch!(self, e => e.roster.missing(|id| e.commitments.contains_key(id)))
    }

    /// Round 2: this node's hex signature shares, one per message. The
    /// nonces are consumed.
    pub fn round2(&mut self) -> Result<Vec<String>, SignError> {
        dispatch!(self, e => e.round2())
    }

    /// A signer's shares, one per message.
    pub fn add_share(&mut self, peer: &str, items: &[&str]) -> Result<Added, SignError> {
        dispatch!(self, e => e.add_share(peer, items))
    }

    /// SHA-256 (hex) of the signing packages, once round 2 built them.
    pub fn package_digest(&self) -> Option<String> {
        dispatch!(self, e => e.package_digest())
    }

    /// A commitment to fresh nonces that are thrown away: what an
    /// equivocating signer sends some peers (`faults` only).
    pub fn decoy_commitment(&self, rng: &mut ChaCha20Rng) -> Result<Vec<String>, SignError> {
        dispatch!(self, e => e.decoy_commitment(rng))
    }

    pub fn missing_shares(&self) -> Vec<String> {
        dispatch!(self, e => e.roster.missing(|id| e.shares.contains_key(id)))
    }

    /// Aggregates every share and verifies each signature under the group
    /// key; a bad share names its sender.
    pub fn finish(&mut self) -> Result<Vec<Vec<u8>>, SignError> {
        dispatch!(self, e => e.finish())
    }
}

/// The generic signing engine for one ciphersuite: one FROST signature
/// per message, each with its own nonces, in one pair of rounds.
pub(crate) struct Signer<C: Ciphersuite> {
    roster: Roster<C>,
    key: KeyPackage<C>,
    public: PublicKeyPackage<C>,
    messages: Vec<Vec<u8>>,
    nonces: Option<Vec<SigningNonces<C>>>,
    commitments: BTreeMap<Identifier<C>, Vec<SigningCommitments<C>>>,
    packages: Option<Vec<SigningPackage<C>>>,
    shares: BTreeMap<Identifier<C>, Vec<SignatureShare<C>>>,
    bad_share: bool,
}

impl<C: Ciphersuite> Signer<C> {
    fn new(
        me: &str,
        ids: Vec<(String, u16)>,
        key: KeyPackage<C>,
        public: PublicKeyPackage<C>,
        messages: Vec<Vec<u8>>,
        bad_share: bool,
    ) -> Result<Self, SignError> {
        let roster = Roster::new(me, ids).map_err(SignError::Internal)?;
        let my_id = roster.my_id;
        if *key.identifier() != my_id {
            return Err(SignError::Internal(
                "the key package belongs to another participant".into(),
            ));
        }
        if messages.is_empty() {
            return Err(SignError::Internal("nothing to sign".into()));
        }
        Ok(Signer {
            roster,
            key,
            public,
            messages,
            nonces: None,
            commitments: BTreeMap::new(),
            packages: None,
            shares: BTreeMap::new(),
            bad_share,
        })
    }

    fn round1(&mut self, rng: &mut ChaCha20Rng) -> Result<Vec<String>, SignError> {
        if self.nonces.is_some() || self.commitments.contains_key(&self.roster.my_id) {
            return Err(SignError::Internal("round 1 ran twice".into()));
        }
        let (mut nonces, mut commitments, mut wire) = (Vec::new(), Vec::new(), Vec::new());
        for _ in &self.messages {
            let (n, c) = frost_core::round1::commit(self.key.signing_share(), rng);
            wire.push(hex::encode(c.serialize().map_err(internal)?));
            nonces.push(n);
            commitments.push(c);
        }
        self.nonces = Some(nonces);
        self.commitments.insert(self.roster.my_id, commitments);
        Ok(wire)
    }

    fn package_digest(&self) -> Option<String> {
        let mut h = Sha256::new();
        for p in self.packages.as_ref()? {
            h.update(p.serialize().ok()?);
        }
        Some(hex::encode(h.finalize()))
    }

    fn decoy_commitment(&self, rng: &mut ChaCha20Rng) -> Result<Vec<String>, SignError> {
        self.messages
            .iter()
            .map(|_| {
                let (_, c) = frost_core::round1::commit(self.key.signing_share(), rng);
                Ok(hex::encode(c.serialize().map_err(internal)?))
            })
            .collect()
    }

    /// One item per message, or the sender's fault.
    fn check_count(&self, got: usize, bad: impl Fn(&str) -> SignError) -> Result<(), SignError> {
        if got == self.messages.len() {
            Ok(())
        } else {
            Err(bad(&format!(
                "sent {got} for a session of {} messages",
                self.messages.len()
            )))
        }
    }

    fn add_commitment(&mut self, peer: &str, items: &[&str]) -> Result<Added, SignError> {
        let bad = |detail: &str| SignError::InvalidCommitment {
            peer: peer.into(),
            detail: detail.into(),
        };
        self.check_count(items.len(), bad)?;
        let mut id = None;
        let mut list = Vec::with_capacity(items.len());
        for hex_data in items {
            let (i, raw) = self
                .roster
                .incoming(peer, hex_data, ("signer", "commitment"), |d| bad(&d))?;
            id = Some(i);
            list.push(
                SigningCommitments::<C>::deserialize(&raw)
                    .map_err(|_| bad("not a signing commitment"))?,
            );
        }
        let id = id.ok_or_else(|| bad("no commitment"))?;
        if self.packages.is_some() && !self.commitments.contains_key(&id) {
            return Err(bad("commitment after round 2 started"));
        }
        insert_once(
            &mut self.commitments,
            id,
            list,
            bad("sent two different commitments"),
        )
    }

    fn round2(&mut self) -> Result<Vec<String>, SignError> {
        let nonces = self
            .nonces
            .take()
            .ok_or_else(|| SignError::Internal("round 2 without fresh nonces".into()))?;
        let mut packages = Vec::with_capacity(self.messages.len());
        let mut shares = Vec::with_capacity(self.messages.len());
        for (i, (message, nonces)) in self.messages.iter().zip(&nonces).enumerate() {
            let mut set = BTreeMap::new();
            for (id, list) in &self.commitments {
                let c = list
                    .get(i)
                    .ok_or_else(|| SignError::Internal("a commitment is missing".into()))?;
                set.insert(*id, *c);
            }
            let package = SigningPackage::new(set, message);
            let share = if self.bad_share && i == 0 {
                // A valid share for another message: fails verification.
                let other =
                    SigningPackage::new(package.signing_commitments().clone(), b"not the message");
                frost_core::round2::sign(&other, nonces, &self.key).map_err(internal)?
            } else {
                frost_core::round2::sign(&package, nonces, &self.key).map_err(internal)?
            };
            packages.push(package);
            shares.push(share);
        }
        // `nonces` is dropped (and zeroized) here: they can never sign again.
        drop(nonces);
        let wire = shares.iter().map(|s| hex::encode(s.serialize())).collect();
        self.shares.insert(self.roster.my_id, shares);
        self.packages = Some(packages);
        Ok(wire)
    }

    fn add_share(&mut self, peer: &str, items: &[&str]) -> Result<Added, SignError> {
        let bad = |detail: &str| SignError::InvalidShare {
            peer: peer.into(),
            detail: detail.into(),
        };
        self.check_count(items.len(), bad)?;
        let mut id = None;
        let mut list = Vec::with_capacity(items.len());
        for hex_data in items {
            let (i, raw) =
                self.roster
                    .incoming(peer, hex_data, ("signer", "signature share"), |d| bad(&d))?;
            id = Some(i);
            list.push(
                SignatureShare::<C>::deserialize(&raw).map_err(|_| bad("not a signature share"))?,
            );
        }
        let id = id.ok_or_else(|| bad("no signature share"))?;
        insert_once(
            &mut self.shares,
            id,
            list,
            bad("sent two different signature shares"),
        )
    }

    fn finish(&mut self) -> Result<Vec<Vec<u8>>, SignError> {
        let packages = self
            .packages
            .as_ref()
            .ok_or_else(|| SignError::Internal("aggregation before round 2".into()))?;
        let mut out = Vec::with_capacity(packages.len());
        for (i, (package, message)) in packages.iter().zip(&self.messages).enumerate() {
            let mut shares = BTreeMap::new();
            for (id, list) in &self.shares {
                let s = list
                    .get(i)
                    .ok_or_else(|| SignError::Internal("a share is missing".into()))?;
                shares.insert(*id, *s);
            }
            let signature = frost_core::aggregate(package, &shares, &self.public).map_err(|e| {
                match e.culprits().first() {
                    Some(id) => SignError::InvalidShare {
                        peer: self.roster.name(id),
                        detail: e.to_string(),
                    },
                    None => internal(e),
                }
            })?;
            self.public
                .verifying_key()
                .verify(message, &signature)
                .map_err(|e| {
                    SignError::Internal(format!("aggregate signature does not verify: {e}"))
                })?;
            out.push(signature.serialize().map_err(internal)?);
        }
        Ok(out)
    }
}

fn internal<E: std::fmt::Display>(e: E) -> SignError {
    SignError::Internal(e.to_string())
}
