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
        message: Vec<u8>,
        bad_share: bool,
    ) -> Result<Self, SignError> {
        let ids = identifiers(&wallet.participants, signers)?;
        Ok(
            match (wallet.key_package.expose(), &wallet.public_key_package) {
                (wallet::KeyPackage::Secp256k1(k), wallet::PublicKeyPackage::Secp256k1(p)) => {
                    Signing::Secp256k1(Box::new(Signer::new(
                        me,
                        ids,
                        k.clone(),
                        p.clone(),
                        message,
                        bad_share,
                    )?))
                }
                (wallet::KeyPackage::Ed25519(k), wallet::PublicKeyPackage::Ed25519(p)) => {
                    Signing::Ed25519(Box::new(Signer::new(
                        me,
                        ids,
                        k.clone(),
                        p.clone(),
                        message,
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

    /// Round 1: fresh nonces (kept in memory only) and the hex commitment
    /// to broadcast.
    pub fn round1(&mut self, rng: &mut ChaCha20Rng) -> Result<String, SignError> {
        dispatch!(self, e => e.round1(rng))
    }

    pub fn add_commitment(&mut self, peer: &str, hex_data: &str) -> Result<Added, SignError> {
        dispatch!(self, e => e.add_commitment(peer, hex_data))
    }

    pub fn missing_commitments(&self) -> Vec<String> {
        dispatch!(self, e => e.roster.missing(|id| e.commitments.contains_key(id)))
    }

    /// Round 2: this node's hex signature share. The nonces are consumed.
    pub fn round2(&mut self) -> Result<String, SignError> {
        dispatch!(self, e => e.round2())
    }

    pub fn add_share(&mut self, peer: &str, hex_data: &str) -> Result<Added, SignError> {
        dispatch!(self, e => e.add_share(peer, hex_data))
    }

    /// SHA-256 (hex) of the signing package, once round 2 built it.
    pub fn package_digest(&self) -> Option<String> {
        dispatch!(self, e => e.package_digest())
    }

    /// A commitment to fresh nonces that are thrown away: what an
    /// equivocating signer sends some peers (`faults` only).
    pub fn decoy_commitment(&self, rng: &mut ChaCha20Rng) -> Result<String, SignError> {
        dispatch!(self, e => e.decoy_commitment(rng))
    }

    pub fn missing_shares(&self) -> Vec<String> {
        dispatch!(self, e => e.roster.missing(|id| e.shares.contains_key(id)))
    }

    /// Aggregates every share and verifies the signature under the group
    /// key; a bad share names its sender.
    pub fn finish(&mut self) -> Result<Vec<u8>, SignError> {
        dispatch!(self, e => e.finish())
    }
}

/// Signer peer id → FROST identifier number (1-based position among the
/// wallet's sorted participants).
fn identifiers(
    participants: &[String],
    signers: &[String],
) -> Result<Vec<(String, u16)>, SignError> {
    signers
        .iter()
        .map(|s| {
            participants
                .iter()
                .position(|p| p == s)
                .and_then(|i| u16::try_from(i + 1).ok())
                .map(|n| (s.clone(), n))
                .ok_or_else(|| SignError::Internal(format!("{s} is not a wallet participant")))
        })
        .collect()
}

/// The generic signing engine for one ciphersuite.
pub(crate) struct Signer<C: Ciphersuite> {
    roster: Roster<C>,
    key: KeyPackage<C>,
    public: PublicKeyPackage<C>,
    message: Vec<u8>,
    nonces: Option<SigningNonces<C>>,
    commitments: BTreeMap<Identifier<C>, SigningCommitments<C>>,
    package: Option<SigningPackage<C>>,
    shares: BTreeMap<Identifier<C>, SignatureShare<C>>,
    bad_share: bool,
}

impl<C: Ciphersuite> Signer<C> {
    fn new(
        me: &str,
        ids: Vec<(String, u16)>,
        key: KeyPackage<C>,
        public: PublicKeyPackage<C>,
        message: Vec<u8>,
        bad_share: bool,
    ) -> Result<Self, SignError> {
        let roster = Roster::new(me, ids).map_err(SignError::Internal)?;
        let my_id = roster.my_id;
        if *key.identifier() != my_id {
            return Err(SignError::Internal(
                "the key package belongs to another participant".into(),
            ));
        }
        Ok(Signer {
            roster,
            key,
            public,
            message,
            nonces: None,
            commitments: BTreeMap::new(),
            package: None,
            shares: BTreeMap::new(),
            bad_share,
        })
    }

    fn round1(&mut self, rng: &mut ChaCha20Rng) -> Result<String, SignError> {
        if self.nonces.is_some() || self.commitments.contains_key(&self.roster.my_id) {
            return Err(SignError::Internal("round 1 ran twice".into()));
        }
        let (nonces, commitments) = frost_core::round1::commit(self.key.signing_share(), rng);
        let hex_data = hex::encode(commitments.serialize().map_err(internal)?);
        self.nonces = Some(nonces);
        self.commitments.insert(self.roster.my_id, commitments);
        Ok(hex_data)
    }

    fn package_digest(&self) -> Option<String> {
        let bytes = self.package.as_ref()?.serialize().ok()?;
        Some(hex::encode(Sha256::digest(bytes)))
    }

    fn decoy_commitment(&self, rng: &mut ChaCha20Rng) -> Result<String, SignError> {
        let (_, commitments) = frost_core::round1::commit(self.key.signing_share(), rng);
        Ok(hex::encode(commitments.serialize().map_err(internal)?))
    }

    fn add_commitment(&mut self, peer: &str, hex_data: &str) -> Result<Added, SignError> {
        let bad = |detail: &str| SignError::InvalidCommitment {
            peer: peer.into(),
            detail: detail.into(),
        };
        let (id, raw) = self
            .roster
            .incoming(peer, hex_data, ("signer", "commitment"), |d| bad(&d))?;
        let c = SigningCommitments::<C>::deserialize(&raw)
            .map_err(|_| bad("not a signing commitment"))?;
        if self.package.is_some() && !self.commitments.contains_key(&id) {
            return Err(bad("commitment after round 2 started"));
        }
        insert_once(
            &mut self.commitments,
            id,
            c,
            bad("sent two different commitments"),
        )
    }

    fn round2(&mut self) -> Result<String, SignError> {
        let nonces = self
            .nonces
            .take()
            .ok_or_else(|| SignError::Internal("round 2 without fresh nonces".into()))?;
        let package = SigningPackage::new(self.commitments.clone(), &self.message);
        let share = frost_core::round2::sign(&package, &nonces, &self.key).map_err(internal)?;
        let share = if self.bad_share {
            // A valid share for another message: fails verification here.
            let other = SigningPackage::new(self.commitments.clone(), b"not the message");
            frost_core::round2::sign(&other, &nonces, &self.key).map_err(internal)?
        } else {
            share
        };
        // `nonces` is dropped (and zeroized) here: it can never sign again.
        drop(nonces);
        self.shares.insert(self.roster.my_id, share);
        self.package = Some(package);
        Ok(hex::encode(share.serialize()))
    }

    fn add_share(&mut self, peer: &str, hex_data: &str) -> Result<Added, SignError> {
        let bad = |detail: &str| SignError::InvalidShare {
            peer: peer.into(),
            detail: detail.into(),
        };
        let (id, raw) =
            self.roster
                .incoming(peer, hex_data, ("signer", "signature share"), |d| bad(&d))?;
        let share =
            SignatureShare::<C>::deserialize(&raw).map_err(|_| bad("not a signature share"))?;
        insert_once(
            &mut self.shares,
            id,
            share,
            bad("sent two different signature shares"),
        )
    }

    fn finish(&mut self) -> Result<Vec<u8>, SignError> {
        let package = self
            .package
            .as_ref()
            .ok_or_else(|| SignError::Internal("aggregation before round 2".into()))?;
        let signature =
            frost_core::aggregate(package, &self.shares, &self.public).map_err(|e| {
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
            .verify(&self.message, &signature)
            .map_err(|e| {
                SignError::Internal(format!("aggregate signature does not verify: {e}"))
            })?;
        signature.serialize().map_err(internal)
    }
}

fn internal<E: std::fmt::Display>(e: E) -> SignError {
    SignError::Internal(e.to_string())
}
