//! frost's repairable threshold scheme (`keys::repairable`) for one repair:
//! each helper splits its Lagrange-weighted share into deltas for the
//! helpers; each helper sums the deltas it got into a sigma for the target;
//! the target sums the sigmas into its share. No helper sees the share.
//!
//! frost's `repair_share_part3` does not check what it recovers, so
//! [`recover`] does: the share must match the target's verifying share in
//! the public key package, which the caller has from every helper.
//!
//! Nothing here knows about messages; [`crate::node`] moves the values.

use std::collections::BTreeMap;

use frost_core::keys::repairable::{self, Delta, Sigma};
use frost_core::keys::{KeyPackage, PublicKeyPackage};
use frost_core::{Ciphersuite, Identifier};
use frost_ed25519::Ed25519Sha512;
use frost_secp256k1_tr::Secp256K1Sha256TR;
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

use crate::wallet::{self, SecretKeyPackage, SigningWallet};

/// Each helper's delta (serialized scalar), by helper.
pub(crate) type Deltas = Vec<(String, Zeroizing<Vec<u8>>)>;

fn id<C: Ciphersuite>(n: u16) -> Result<Identifier<C>, String> {
    Identifier::<C>::try_from(n).map_err(|e| e.to_string())
}

fn deltas_of<C: Ciphersuite>(
    helpers: &[(String, u16)],
    key: &KeyPackage<C>,
    target: u16,
    rng: &mut ChaCha20Rng,
) -> Result<Deltas, String> {
    let ids = helpers
        .iter()
        .map(|(_, n)| id::<C>(*n))
        .collect::<Result<Vec<_>, _>>()?;
    let deltas = repairable::repair_share_part1(&ids, key, rng, id::<C>(target)?)
        .map_err(|e| e.to_string())?;
    helpers
        .iter()
        .map(|(name, n)| {
            let d = deltas
                .get(&id::<C>(*n)?)
                .ok_or_else(|| format!("no delta for {name}"))?;
            Ok((name.clone(), Zeroizing::new(d.serialize())))
        })
        .collect()
}

/// A helper's deltas, one per helper (itself included), to rebuild the
/// share of the participant with identifier `target`.
pub(crate) fn deltas(
    w: &SigningWallet,
    helpers: &[(String, u16)],
    target: u16,
    rng: &mut ChaCha20Rng,
) -> Result<Deltas, String> {
    match w.key_package.expose() {
        wallet::KeyPackage::Secp256k1(k) => deltas_of(helpers, k, target, rng),
        wallet::KeyPackage::Ed25519(k) => deltas_of(helpers, k, target, rng),
    }
}

fn sigma_of<C: Ciphersuite>(deltas: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>, usize> {
    let parsed = deltas
        .iter()
        .enumerate()
        .map(|(i, d)| Delta::<C>::deserialize(d).map_err(|_| i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Zeroizing::new(
        repairable::repair_share_part2(&parsed).serialize(),
    ))
}

/// The sum of the deltas a helper got; `Err(i)` if the `i`-th is not a
/// scalar of the curve.
pub(crate) fn sigma(
    curve: mpc_protocol::peer::Curve,
    deltas: &[&[u8]],
) -> Result<Zeroizing<Vec<u8>>, usize> {
    match curve {
        mpc_protocol::peer::Curve::Secp256k1 => sigma_of::<Secp256K1Sha256TR>(deltas),
        mpc_protocol::peer::Curve::Ed25519 => sigma_of::<Ed25519Sha512>(deltas),
    }
}

/// Why the target could not rebuild its share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RecoverError {
    /// The `i`-th sigma is not a scalar of the curve.
    BadSigma(usize),
    /// The share the sigmas add up to is not the one the package names.
    Mismatch,
    Internal(String),
}

fn recover_of<C: Ciphersuite>(
    sigmas: &[&[u8]],
    target: u16,
    public: &PublicKeyPackage<C>,
) -> Result<KeyPackage<C>, RecoverError> {
    let parsed = sigmas
        .iter()
        .enumerate()
        .map(|(i, s)| Sigma::<C>::deserialize(s).map_err(|_| RecoverError::BadSigma(i)))
        .collect::<Result<Vec<_>, _>>()?;
    let target = id::<C>(target).map_err(RecoverError::Internal)?;
    let key = repairable::repair_share_part3(&parsed, target, public)
        .map_err(|e| RecoverError::Internal(e.to_string()))?;
    // frost does not check this.
    if public.verifying_shares().get(&target) != Some(key.verifying_share()) {
        return Err(RecoverError::Mismatch);
    }
    Ok(key)
}

/// The target's share from every helper's sigma, checked against its
/// verifying share in `public`.
pub(crate) fn recover(
    sigmas: &[&[u8]],
    target: u16,
    public: &wallet::PublicKeyPackage,
) -> Result<SecretKeyPackage, RecoverError> {
    Ok(SecretKeyPackage::new(match public {
        wallet::PublicKeyPackage::Secp256k1(p) => {
            wallet::KeyPackage::Secp256k1(recover_of(sigmas, target, p)?)
        }
        wallet::PublicKeyPackage::Ed25519(p) => {
            wallet::KeyPackage::Ed25519(recover_of(sigmas, target, p)?)
        }
    }))
}

/// The identifiers of `names`, from a wallet's map.
pub(crate) fn identifiers(
    map: &BTreeMap<String, u16>,
    names: &[String],
) -> Result<Vec<(String, u16)>, String> {
    names
        .iter()
        .map(|n| {
            map.get(n)
                .map(|i| (n.clone(), *i))
                .ok_or_else(|| format!("{n} is not a wallet participant"))
        })
        .collect()
}
