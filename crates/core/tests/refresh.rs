//! Refresh in the simulator (issue 16): every participant gets a new share
//! of the same key, the new shares sign (checked with libsecp256k1 and
//! ed25519-dalek), an old share no longer combines with a new one, and a
//! participant left out is removed while the others keep their FROST
//! identifiers.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;

use mpc_core::sim::{self, Outcome, SignPlan, SimConfig, SimReport};
use mpc_core::{KeyPackage, PublicKeyPackage, WalletResult};
use mpc_protocol::peer::Curve;
use sha2::{Digest, Sha256};

fn refreshed(r: &SimReport) -> BTreeMap<String, WalletResult> {
    r.refresh_outcomes
        .iter()
        .map(|(id, o)| match o {
            Outcome::Finished(w) => (id.clone(), (**w).clone()),
            other => panic!("{id}: refresh ended {other:?}"),
        })
        .collect()
}

fn created(r: &SimReport) -> BTreeMap<String, WalletResult> {
    r.outcomes
        .iter()
        .map(|(id, o)| match o {
            Outcome::Finished(w) => (id.clone(), (**w).clone()),
            other => panic!("{id}: key generation ended {other:?}"),
        })
        .collect()
}

fn verify(curve: Curve, group_key: &str, message: &[u8], signature: &[u8]) {
    match curve {
        Curve::Secp256k1 => {
            let secp = secp256k1::Secp256k1::verification_only();
            let q = secp256k1::XOnlyPublicKey::from_slice(&hex::decode(&group_key[2..]).unwrap())
                .unwrap();
            let sig = secp256k1::schnorr::Signature::from_slice(signature).unwrap();
            let msg = secp256k1::Message::from_digest_slice(message).unwrap();
            secp.verify_schnorr(&sig, &msg, &q).expect("BIP340");
        }
        Curve::Ed25519 => {
            let key: [u8; 32] = hex::decode(group_key).unwrap().try_into().unwrap();
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&key).unwrap();
            let sig = ed25519_dalek::Signature::from_slice(signature).unwrap();
            vk.verify_strict(message, &sig).expect("verify_strict");
        }
        Curve::Secp256k1Ecdsa => unreachable!("tests/ethereum.rs"),
    }
}

fn run(curve: Curve, keep: Vec<usize>, signers: Vec<usize>, seed: u64) -> SimReport {
    let message = Sha256::digest(b"after the refresh").to_vec();
    let mut c = SimConfig::new(3, 2, curve, seed);
    c.refresh = Some(keep);
    c.sign = Some(SignPlan::message(signers, message));
    sim::run(&c)
}

#[test]
fn new_shares_of_the_same_key_sign_on_both_curves() {
    for (curve, seed) in [(Curve::Secp256k1, 31), (Curve::Ed25519, 32)] {
        let r = run(curve, vec![2, 0, 1], vec![1, 2], seed);
        let before = created(&r);
        let after = refreshed(&r);
        let key = r.agreed_key().expect("wallet created");
        assert_eq!(after.len(), 3, "{curve}");
        for (id, w) in &after {
            let old = &before[id];
            assert_eq!(w.group_public_key, key, "{id}: the address stays");
            assert_eq!(w.generation, 1);
            assert_eq!(w.identifier, old.identifier, "{id} keeps its identifier");
            assert_ne!(
                w.key_package.serialize(),
                old.key_package.serialize(),
                "{id}: a new share"
            );
        }
        let sigs = r.signatures();
        assert_eq!(sigs.len(), 2, "{curve}: {:?}", r.sign_outcomes);
        let message = Sha256::digest(b"after the refresh").to_vec();
        for s in sigs.values() {
            verify(curve, &key, &message, &s.signature);
        }
    }
}

#[test]
fn a_participant_left_out_is_removed_and_the_others_keep_their_identifiers() {
    // Three nodes, sorted ids; the middle one (identifier 2) is dropped.
    let r = run(Curve::Ed25519, vec![0, 2], vec![2, 0], 33);
    let before = created(&r);
    let after = refreshed(&r);
    let ids: Vec<&String> = before.keys().collect();
    assert_eq!(after.len(), 2);
    for w in after.values() {
        assert_eq!(w.participants, vec![ids[0].clone(), ids[2].clone()]);
        assert_eq!(
            w.identifiers,
            BTreeMap::from([(ids[0].clone(), 1), (ids[2].clone(), 3)])
        );
        let PublicKeyPackage::Ed25519(p) = &w.public_key_package else {
            panic!("curve");
        };
        assert_eq!(p.verifying_shares().len(), 2, "the removed share is gone");
    }
    assert_eq!(r.signatures().len(), 2, "{:?}", r.sign_outcomes);
}

/// An old share and a new one, combined by frost directly (no wallet
/// code in the way): the signature does not aggregate.
#[test]
fn an_old_share_does_not_combine_with_a_new_one() {
    use frost_ed25519 as frost;
    let r = run(Curve::Ed25519, vec![0, 1, 2], vec![0, 1], 34);
    let (before, after) = (created(&r), refreshed(&r));
    let ids: Vec<String> = before.keys().cloned().collect();
    let key_of = |w: &WalletResult| match w.key_package.expose() {
        KeyPackage::Ed25519(k) => k.clone(),
        _ => panic!("curve"),
    };
    let PublicKeyPackage::Ed25519(public) = &after[&ids[1]].public_key_package else {
        panic!("curve");
    };
    let sign_with = |keys: [frost::keys::KeyPackage; 2]| {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([9; 32]);
        let mut nonces = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        for k in &keys {
            let (n, c) = frost::round1::commit(k.signing_share(), &mut rng);
            nonces.insert(*k.identifier(), n);
            commitments.insert(*k.identifier(), c);
        }
        let package = frost::SigningPackage::new(commitments, b"mixed");
        let shares: BTreeMap<_, _> = keys
            .iter()
            .map(|k| {
                let s = frost::round2::sign(&package, &nonces[k.identifier()], k).unwrap();
                (*k.identifier(), s)
            })
            .collect();
        frost::aggregate(&package, &shares, public)
    };
    use rand_core::SeedableRng;
    assert!(sign_with([key_of(&after[&ids[0]]), key_of(&after[&ids[1]])]).is_ok());
    assert!(sign_with([key_of(&before[&ids[0]]), key_of(&after[&ids[1]])]).is_err());
}

fn repair_run(curve: Curve, helpers: Vec<usize>, target: usize, seed: u64) -> SimConfig {
    let mut c = SimConfig::new(3, 2, curve, seed);
    c.repair = Some(sim::RepairPlan { helpers, target });
    c
}

#[test]
fn helpers_rebuild_the_very_share_a_participant_lost() {
    for (curve, seed) in [(Curve::Secp256k1, 41), (Curve::Ed25519, 42)] {
        let r = sim::run(&repair_run(curve, vec![2, 0], 1, seed));
        let before = created(&r);
        let ids: Vec<String> = before.keys().cloned().collect();
        let target = &ids[1];
        let rebuilt = match &r.repair_outcomes[target] {
            Outcome::Finished(w) => w,
            other => panic!("{curve}: the target ended {other:?}"),
        };
        let lost = &before[target];
        assert_eq!(
            rebuilt.key_package.serialize(),
            lost.key_package.serialize(),
            "{curve}: the same share"
        );
        assert_eq!(rebuilt.group_public_key, lost.group_public_key);
        assert_eq!(rebuilt.identifier, lost.identifier);
        assert_eq!(rebuilt.participants, lost.participants);
        for h in [&ids[0], &ids[2]] {
            assert!(
                matches!(r.repair_outcomes[h], Outcome::Finished(_)),
                "{h}: {:?}",
                r.repair_outcomes[h]
            );
        }
    }
}

#[test]
fn a_helper_that_lies_about_the_wallet_is_named_and_nothing_is_stored() {
    let mut c = repair_run(Curve::Ed25519, vec![0, 2], 1, 43);
    c.faults.push(sim::Fault::LieInRepair {
        node: 2,
        to: vec![1],
    });
    let r = sim::run(&c);
    let ids: Vec<String> = r.outcomes.keys().cloned().collect();
    match &r.repair_outcomes[&ids[1]] {
        Outcome::Aborted(mpc_core::AbortReason::HelpersLied { helpers }) => {
            assert_eq!(helpers, &vec![ids[2].clone()])
        }
        other => panic!("{other:?}"),
    }
}
