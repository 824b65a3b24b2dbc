//! Threshold signing in the simulator, after a DKG on the same nodes (the
//! DKG's channels are reused). Every signature is checked with libraries
//! independent of frost: libsecp256k1 (BIP340, under the x-only key decoded
//! from the wallet's own Taproot address) and ed25519-dalek `verify_strict`
//! (under the key decoded from the wallet's Solana address).
#![cfg(not(target_arch = "wasm32"))]

use mpc_core::sim::{self, Fault, NetConfig, Outcome, SimConfig, SimReport, VanishAt};
use mpc_core::{AbortReason, Action, Phase};
use mpc_protocol::peer::Curve;
use sha2::{Digest, Sha256};

mod common;
use common::sign_plan as plan;

/// A 32-byte message, as a Taproot sighash is (libsecp256k1 0.29's
/// `verify_schnorr` takes exactly 32 bytes).
fn sighash(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

/// BIP340 verification with libsecp256k1 under the witness program of the
/// wallet's Taproot address.
fn verify_bip340(group_key: &str, message: &[u8], signature: &[u8]) {
    let address = mpc_address::taproot_address(group_key, Default::default()).unwrap();
    let (_, version, program) = bech32::segwit::decode(&address).unwrap();
    assert_eq!(version, bech32::Fe32::P, "segwit v1");
    assert_eq!(program.len(), 32);
    let secp = secp256k1::Secp256k1::verification_only();
    let key = secp256k1::XOnlyPublicKey::from_slice(&program).unwrap();
    let sig = secp256k1::schnorr::Signature::from_slice(signature).unwrap();
    let msg = secp256k1::Message::from_digest_slice(message).unwrap();
    secp.verify_schnorr(&sig, &msg, &key)
        .expect("BIP340 signature verifies under the Taproot output key");
    // And not for another message.
    let other = secp256k1::Message::from_digest([7; 32]);
    assert!(secp.verify_schnorr(&sig, &other, &key).is_err());
}

/// Ed25519 verification with ed25519-dalek's strict check (what Solana
/// uses) under the key the wallet's Solana address encodes.
fn verify_ed25519(group_key: &str, message: &[u8], signature: &[u8]) {
    let address = mpc_address::solana_address(group_key).unwrap();
    let key: [u8; 32] = bs58::decode(&address)
        .into_vec()
        .unwrap()
        .try_into()
        .unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(signature).unwrap();
    key.verify_strict(message, &sig)
        .expect("Ed25519 signature verifies strictly");
    assert!(key.verify_strict(b"another message", &sig).is_err());
}

/// Every signer signed the same signature, which verifies independently.
fn check_signed(r: &SimReport, curve: Curve, signers: &[usize], message: &[u8]) {
    let key = r.agreed_key().expect("wallet created");
    let sigs = r.signatures();
    assert_eq!(
        sigs.len(),
        signers.len(),
        "every signer signs: {:?} {:?}",
        r.sign_outcomes,
        r.rejections
    );
    let first = sigs.values().next().unwrap().clone();
    for (id, s) in &sigs {
        assert_eq!(s.signature, first.signature, "{id} has another signature");
        assert_eq!(s.message, message);
        assert_eq!(s.group_public_key, key);
        assert_eq!(s.curve, curve);
        assert_eq!(s.signature.len(), 64);
    }
    match curve {
        Curve::Secp256k1 => verify_bip340(&key, message, &first.signature),
        Curve::Ed25519 => verify_ed25519(&key, message, &first.signature),
        Curve::Secp256k1Ecdsa => unreachable!("tests/ethereum.rs"),
    }
    assert_eq!(r.stats.undeliverable, 0);
    assert_eq!(r.stats.parse_errors, 0);
}

#[test]
fn two_of_three_secp256k1_signature_verifies_under_the_taproot_address() {
    for seed in 1..=3 {
        let msg = sighash(&format!("taproot sighash {seed}"));
        let signers = vec![0, 2];
        let r = sim::run(&plan(3, 2, Curve::Secp256k1, seed, signers.clone(), &msg));
        check_signed(&r, Curve::Secp256k1, &signers, &msg);
    }
}

#[test]
fn three_of_five_secp256k1_signature_verifies_with_libsecp256k1() {
    let msg = sighash("3-of-5");
    // A joiner proposes, and the signers are not the first three.
    let signers = vec![4, 1, 2];
    let r = sim::run(&plan(5, 3, Curve::Secp256k1, 11, signers.clone(), &msg));
    check_signed(&r, Curve::Secp256k1, &signers, &msg);
}

#[test]
fn two_of_three_ed25519_signature_verifies_strictly() {
    for seed in 1..=3 {
        let msg = format!("solana message {seed}").into_bytes();
        let signers = vec![1, 2];
        let r = sim::run(&plan(3, 2, Curve::Ed25519, seed, signers.clone(), &msg));
        check_signed(&r, Curve::Ed25519, &signers, &msg);
    }
}

#[test]
fn three_of_five_ed25519_signature_verifies_strictly() {
    let msg = b"a Solana transaction message of some length".repeat(20);
    let signers = vec![0, 3, 4];
    let r = sim::run(&plan(5, 3, Curve::Ed25519, 5, signers.clone(), &msg));
    check_signed(&r, Curve::Ed25519, &signers, &msg);
}

#[test]
fn more_signers_than_the_threshold_also_sign() {
    let msg = sighash("all three");
    let signers = vec![0, 1, 2];
    let r = sim::run(&plan(3, 2, Curve::Secp256k1, 3, signers.clone(), &msg));
    check_signed(&r, Curve::Secp256k1, &signers, &msg);
}

#[test]
fn signing_reuses_the_open_mesh() {
    let msg = sighash("reuse");
    let mut c = plan(3, 2, Curve::Secp256k1, 9, vec![0, 1], &msg);
    c.net = NetConfig::ideal();
    let mut signing = false;
    let mut connects_while_signing = 0;
    let r = sim::run_observed(&c, &mut |_, a| match a {
        Action::Finished(_) => signing = true,
        Action::Connect { .. } if signing => connects_while_signing += 1,
        _ => {}
    });
    check_signed(&r, Curve::Secp256k1, &[0, 1], &msg);
    assert_eq!(connects_while_signing, 0, "no new WebRTC connection");
}

#[test]
fn a_bad_signature_share_names_the_culprit_at_every_other_signer() {
    for curve in [Curve::Secp256k1, Curve::Ed25519] {
        let mut c = plan(5, 3, curve, 21, vec![0, 2, 3], &sighash("bad share"));
        c.faults.push(Fault::BadSignatureShare { node: 2 });
        let r = sim::run(&c);
        assert!(r.agreed_key().is_some());
        let aborts = r.sign_aborts();
        let mut direct = 0;
        for id in ["node01", "node04"] {
            // Named directly, or in the abort of a signer who found it first.
            match aborts.get(id) {
                Some(AbortReason::InvalidSignatureShare { peer, .. }) => {
                    assert_eq!(peer, "node03", "{id}");
                    direct += 1;
                }
                Some(AbortReason::PeerAborted { reason, .. })
                    if reason.contains("invalid signature share from node03") => {}
                other => panic!("{curve}: {id}: {other:?} ({:?})", r.sign_outcomes),
            }
            assert!(aborts[id].to_string().contains("node03"));
        }
        assert!(direct >= 1, "someone found the bad share itself");
        assert!(r.signatures().is_empty(), "no signature from a bad share");
    }
}

/// Review finding 10: a signer that sends different commitments to
/// different signers made the honest ones accuse each other (each share
/// failed against the other's signing package). A share now names its
/// package: over another package than ours it blames nobody.
#[test]
fn a_signer_equivocating_on_commitments_gets_no_honest_signer_blamed() {
    for curve in [Curve::Secp256k1, Curve::Ed25519] {
        let mut c = plan(4, 3, curve, 31, vec![0, 1, 2], &sighash("split"));
        c.faults.push(Fault::SignEquivocate {
            node: 1,
            to: vec![2],
        });
        let r = sim::run(&c);
        assert!(r.agreed_key().is_some());
        assert!(r.signatures().is_empty(), "{:?}", r.sign_outcomes);
        let aborts = r.sign_aborts();
        for id in ["node01", "node03"] {
            let reason = &aborts[id];
            assert!(
                !matches!(reason.culprit(), Some("node01" | "node03")),
                "{curve}: {id} blames an honest signer: {reason}"
            );
        }
        assert!(
            aborts
                .values()
                .any(|r| matches!(r, AbortReason::SigningPackageMismatch { .. })),
            "{aborts:?}"
        );
    }
}

#[test]
fn a_signer_that_drops_out_before_round_2_aborts_everyone_else() {
    for close_channels in [true, false] {
        let mut c = plan(5, 3, Curve::Ed25519, 4, vec![1, 2, 4], b"drop out");
        c.faults.push(Fault::Vanish {
            node: 4,
            at: VanishAt::Sending("signature_share"),
            close_channels,
        });
        let r = sim::run(&c);
        assert!(r.agreed_key().is_some());
        assert!(matches!(r.sign_outcomes["node05"], Outcome::Vanished));
        let aborts = r.sign_aborts();
        for id in ["node02", "node03"] {
            let reason = aborts
                .get(id)
                .unwrap_or_else(|| panic!("{id}: {:?}", r.sign_outcomes));
            match (close_channels, reason) {
                (true, AbortReason::SignerLeft { peer }) => assert_eq!(peer, "node05"),
                (_, AbortReason::PeerAborted { reason, .. }) if reason.contains("node05") => {}
                (
                    false,
                    AbortReason::Timeout {
                        phase: Phase::Signing,
                        waiting_for,
                    },
                ) => assert_eq!(waiting_for, &vec!["node05".to_string()]),
                _ => panic!("{id}: {reason:?}"),
            }
            assert!(reason.to_string().contains("node05"), "{reason}");
        }
        assert!(r.signatures().is_empty());
    }
}

#[test]
fn signing_runs_are_deterministic() {
    let c = plan(3, 2, Curve::Secp256k1, 77, vec![0, 1], &sighash("det"));
    let a = sim::run(&c).signatures();
    let b = sim::run(&c).signatures();
    assert_eq!(a, b);
}

#[test]
fn the_signing_wallet_never_prints_its_key_package() {
    let r = sim::run(&SimConfig::new(3, 2, Curve::Secp256k1, 2));
    let Outcome::Finished(w) = &r.outcomes["node01"] else {
        panic!("no wallet");
    };
    let wallet = mpc_core::SigningWallet::from(&**w);
    let secret = hex::encode(&*w.key_package.serialize());
    let dbg = format!(
        "{wallet:?} {:?}",
        mpc_core::Event::SignDecision {
            session_id: "s".into(),
            wallet: Some(Box::new(wallet.clone())),
            reason: None,
        }
    );
    assert!(dbg.contains("<redacted>"));
    // Not the package, nor its 32-byte signing share.
    assert!(!dbg.contains(&secret));
    let share = match w.key_package.expose() {
        mpc_core::KeyPackage::Secp256k1(k) => hex::encode(k.signing_share().serialize()),
        _ => unreachable!(),
    };
    assert!(!dbg.contains(&share), "{dbg}");
    // The keystore round trip gives the same wallet back.
    let again = mpc_core::SigningWallet::from_parts(
        w.curve,
        w.threshold,
        w.participants.clone(),
        &hex::encode(w.public_key_package.serialize()),
        &w.key_package.serialize(),
    )
    .unwrap();
    assert_eq!(again, wallet);
}

#[test]
fn a_joiner_declines_with_a_reason_when_its_wallet_does_not_fit() {
    use mpc_core::{testing, Config, Event, Node, Progress, SigningWallet};
    use mpc_protocol::peer::SignProposal;
    use mpc_protocol::PeerMessage;

    let wallet_of = |curve| {
        let r = sim::run(&SimConfig::new(3, 2, curve, 6));
        match &r.outcomes["node02"] {
            Outcome::Finished(w) => SigningWallet::from(&**w),
            o => panic!("{o:?}"),
        }
    };
    let secp = wallet_of(Curve::Secp256k1);
    let ed = wallet_of(Curve::Ed25519);
    let signers: Vec<String> = vec!["node01".into(), "node02".into(), "node09".into()];
    let proposal = SignProposal {
        generation: 0,
        session_id: "s9".into(),
        group_public_key: secp.group_public_key.clone(),
        message_hex: "00ff".into(),
        signers: signers[..2].to_vec(),
        keys: Some(testing::keys(&signers, &[])),
        format: Default::default(),
    };
    let node02 = || {
        let mut c = Config::new("node02");
        c.identity = Some(testing::identity("node02"));
        c
    };
    let mut node = Node::new(node02(), [2; 32], 0);
    let out = node.handle(testing::relayed(
        "node01",
        "node02",
        PeerMessage::SignProposal(proposal.clone()),
    ));
    assert!(out.iter().any(|a| matches!(a,
        Action::Progress(Progress::NeedsSignDecision { from, proposal: p, .. })
            if from == "node01" && *p == proposal)));
    // The driver found a wallet, but for another key: a reasoned decline.
    let out = node.handle(Event::SignDecision {
        session_id: "s9".into(),
        wallet: Some(Box::new(ed)),
        reason: None,
    });
    let sent = out
        .iter()
        .find_map(|a| match a {
            Action::SendSignal(m) => Some(m.to_json()),
            _ => None,
        })
        .unwrap();
    assert!(
        sent.contains("\"accepted\":false") && sent.contains("another group key"),
        "{sent}"
    );
    assert!(out.iter().any(|a| matches!(a,
        Action::Aborted { reason: AbortReason::Declined { peer, .. }, .. } if peer == "node02")));

    // Signers below the wallet's threshold are declined too.
    let mut node = Node::new(node02(), [3; 32], 0);
    let mut p = proposal;
    p.session_id = "s10".into();
    p.signers = vec!["node02".into(), "node01".into(), "node09".into()];
    node.handle(testing::relayed(
        "node01",
        "node02",
        PeerMessage::SignProposal(p),
    ));
    let out = node.handle(Event::SignDecision {
        session_id: "s10".into(),
        wallet: Some(Box::new(secp)),
        reason: None,
    });
    let sent = out
        .iter()
        .find_map(|a| match a {
            Action::SendSignal(m) => Some(m.to_json()),
            _ => None,
        })
        .unwrap();
    assert!(sent.contains("node09 is not a participant"), "{sent}");
}
