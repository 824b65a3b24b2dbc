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
        wallet::KeyPackage::Secp256k1Ecdsa(_) => Err(NOT_ECDSA.into()),
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
        mpc_protocol::peer::Curve::Secp256k1Ecdsa => Err(0),
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
        wallet::PublicKeyPackage::Secp256k1Ecdsa(_) => {
            return Err(RecoverError::Internal(NOT_ECDSA.into()))
        }
    }))
}

/// The verifying share of identifier `x` on the wallet's polynomial,
/// interpolated (in the group) from every verifying share `public` holds.
fn interpolated<C: Ciphersuite>(
    public: &PublicKeyPackage<C>,
    x: Identifier<C>,
) -> Result<frost_core::keys::VerifyingShare<C>, String> {
    use frost_core::Group;
    let shares = public.verifying_shares();
    let xs: std::collections::BTreeSet<Identifier<C>> = shares.keys().copied().collect();
    let mut sum = <C::Group as Group>::identity();
    for (id, share) in shares {
        let l = frost_core::compute_lagrange_coefficient(&xs, Some(x), *id)
            .map_err(|e| e.to_string())?;
        sum = sum + share.to_element() * l;
    }
    Ok(frost_core::keys::VerifyingShare::new(sum))
}

fn enroll_of<C: Ciphersuite>(
    public: &PublicKeyPackage<C>,
    x: u16,
    share: &frost_core::keys::VerifyingShare<C>,
) -> Result<PublicKeyPackage<C>, RecoverError> {
    let x = id::<C>(x).map_err(RecoverError::Internal)?;
    if public.verifying_shares().contains_key(&x) {
        return Err(RecoverError::Internal("the identifier is taken".into()));
    }
    if interpolated(public, x).map_err(RecoverError::Internal)? != *share {
        return Err(RecoverError::Mismatch);
    }
    let mut shares = public.verifying_shares().clone();
    shares.insert(x, *share);
    Ok(PublicKeyPackage::new(
        shares,
        *public.verifying_key(),
        public.min_signers(),
    ))
}

/// A new participant's share from every helper's sigma: its verifying
/// share must lie on the wallet's polynomial (interpolated from every
/// verifying share in `public`). Returns the share and the package with
/// its verifying share added.
pub(crate) fn recover_new(
    sigmas: &[&[u8]],
    x: u16,
    public: &wallet::PublicKeyPackage,
) -> Result<(SecretKeyPackage, wallet::PublicKeyPackage), RecoverError> {
    fn go<C: Ciphersuite>(
        sigmas: &[&[u8]],
        x: u16,
        public: &PublicKeyPackage<C>,
    ) -> Result<(KeyPackage<C>, PublicKeyPackage<C>), RecoverError> {
        let parsed = sigmas
            .iter()
            .enumerate()
            .map(|(i, s)| Sigma::<C>::deserialize(s).map_err(|_| RecoverError::BadSigma(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let xid = id::<C>(x).map_err(RecoverError::Internal)?;
        let key = repairable::repair_share_part3(&parsed, xid, public)
            .map_err(|e| RecoverError::Internal(e.to_string()))?;
        let extended = enroll_of(public, x, key.verifying_share())?;
        Ok((key, extended))
    }
    Ok(match public {
        wallet::PublicKeyPackage::Secp256k1(p) => {
            let (k, p) = go(sigmas, x, p)?;
            (
                SecretKeyPackage::new(wallet::KeyPackage::Secp256k1(k)),
                wallet::PublicKeyPackage::Secp256k1(p),
            )
        }
        wallet::PublicKeyPackage::Ed25519(p) => {
            let (k, p) = go(sigmas, x, p)?;
            (
                SecretKeyPackage::new(wallet::KeyPackage::Ed25519(k)),
                wallet::PublicKeyPackage::Ed25519(p),
            )
        }
        wallet::PublicKeyPackage::Secp256k1Ecdsa(_) => {
            return Err(RecoverError::Internal(NOT_ECDSA.into()))
        }
    })
}

/// A helper's view of a participant a repair added: its claimed
/// verifying share (hex), checked against the polynomial, added to
/// `public`.
pub(crate) fn enroll(
    public: &wallet::PublicKeyPackage,
    x: u16,
    share_hex: &str,
) -> Result<wallet::PublicKeyPackage, RecoverError> {
    let bytes = hex::decode(share_hex).map_err(|_| RecoverError::Mismatch)?;
    Ok(match public {
        wallet::PublicKeyPackage::Secp256k1(p) => {
            let s = frost_core::keys::VerifyingShare::deserialize(&bytes)
                .map_err(|_| RecoverError::Mismatch)?;
            wallet::PublicKeyPackage::Secp256k1(enroll_of(p, x, &s)?)
        }
        wallet::PublicKeyPackage::Ed25519(p) => {
            let s = frost_core::keys::VerifyingShare::deserialize(&bytes)
                .map_err(|_| RecoverError::Mismatch)?;
            wallet::PublicKeyPackage::Ed25519(enroll_of(p, x, &s)?)
        }
        wallet::PublicKeyPackage::Secp256k1Ecdsa(_) => {
            return Err(RecoverError::Internal(NOT_ECDSA.into()))
        }
    })
}

/// The target's verifying share (hex), for the helpers to add.
pub(crate) fn verifying_share_hex(key: &SecretKeyPackage) -> String {
    let bytes = match key.expose() {
        wallet::KeyPackage::Secp256k1(k) => k.verifying_share().serialize().ok(),
        wallet::KeyPackage::Ed25519(k) => k.verifying_share().serialize().ok(),
        wallet::KeyPackage::Secp256k1Ecdsa(_) => None,
    };
    hex::encode(bytes.unwrap_or_default())
}

/// ECDSA wallets are refused before a repair starts; this is the engine's
/// own guard.
const NOT_ECDSA: &str = "a repair of an ECDSA wallet is not supported yet";

/// The identifier a repair gives a participant new to `map`: one past
/// the highest.
pub(crate) fn next_identifier(map: &BTreeMap<String, u16>) -> Option<u16> {
    map.values().max().and_then(|m| m.checked_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    /// A 2-of-3 ed25519 wallet from frost's trusted dealer: the shares'
    /// key packages and the public package.
    fn dealt() -> (
        Vec<KeyPackage<Ed25519Sha512>>,
        PublicKeyPackage<Ed25519Sha512>,
    ) {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let (shares, public) = frost_ed25519::keys::generate_with_dealer(
            3,
            2,
            frost_ed25519::keys::IdentifierList::Default,
            &mut rng,
        )
        .unwrap();
        let keys = shares
            .into_values()
            .map(|s| KeyPackage::try_from(s).unwrap())
            .collect();
        (keys, public)
    }

    fn sigmas_for(keys: &[KeyPackage<Ed25519Sha512>], x: u16) -> Vec<Vec<u8>> {
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let helpers = vec![("a".to_string(), 1u16), ("b".to_string(), 2u16)];
        let all: Vec<Deltas> = keys[..2]
            .iter()
            .map(|k| deltas_of(&helpers, k, x, &mut rng).unwrap())
            .collect();
        (0..2)
            .map(|j| {
                let for_j: Vec<&[u8]> = all.iter().map(|d| d[j].1.as_slice()).collect();
                sigma_of::<Ed25519Sha512>(&for_j).unwrap().to_vec()
            })
            .collect()
    }

    #[test]
    fn a_lost_share_comes_back_and_a_new_one_must_lie_on_the_polynomial() {
        let (keys, public) = dealt();
        let wrapped = wallet::PublicKeyPackage::Ed25519(public.clone());
        // Identifier 3's share, rebuilt by 1 and 2.
        let sigmas = sigmas_for(&keys, 3);
        let refs: Vec<&[u8]> = sigmas.iter().map(Vec::as_slice).collect();
        let rebuilt = recover(&refs, 3, &wrapped).unwrap();
        let wallet::KeyPackage::Ed25519(k) = rebuilt.expose() else {
            panic!("curve")
        };
        assert_eq!(k.signing_share(), keys[2].signing_share());
        // The same sigmas claimed for identifier 2: not its share.
        assert_eq!(
            recover(&refs, 2, &wrapped).unwrap_err(),
            RecoverError::Mismatch
        );

        // A new participant, identifier 4.
        let sigmas = sigmas_for(&keys, 4);
        let refs: Vec<&[u8]> = sigmas.iter().map(Vec::as_slice).collect();
        let (new, extended) = recover_new(&refs, 4, &wrapped).unwrap();
        let share = verifying_share_hex(&new);
        let wallet::PublicKeyPackage::Ed25519(p) = &extended else {
            panic!("curve")
        };
        assert_eq!(p.verifying_shares().len(), 4);
        // Helpers accept exactly that verifying share, not another one's.
        assert_eq!(enroll(&wrapped, 4, &share).unwrap(), extended);
        let other = hex::encode(keys[0].verifying_share().serialize().unwrap());
        assert_eq!(
            enroll(&wrapped, 4, &other).unwrap_err(),
            RecoverError::Mismatch
        );
        assert!(
            enroll(&wrapped, 1, &share).is_err(),
            "identifier 1 is taken"
        );
        // Sigmas for 3 do not make a share for 4.
        let sigmas = sigmas_for(&keys, 3);
        let refs: Vec<&[u8]> = sigmas.iter().map(Vec::as_slice).collect();
        assert_eq!(
            recover_new(&refs, 4, &wrapped).unwrap_err(),
            RecoverError::Mismatch
        );
    }
}
