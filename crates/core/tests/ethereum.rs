//! Ethereum wallets (DKLs23 threshold ECDSA) in the simulator: key
//! generation and signing through the same proposal, mesh and transcript
//! agreement as FROST wallets. Every signature is recovered with
//! libsecp256k1, independent of DKLs23 and k256, to the wallet's own
//! EIP-55 address.
#![cfg(not(target_arch = "wasm32"))]

use mpc_chain::ethereum::{self, Eip1559Tx};
use mpc_core::payload::{PayloadError, SignedTransaction};
use mpc_core::sim::{self, Fault, SignPlan, SimConfig, SimReport, VanishAt};
use mpc_core::wallet::SignatureResult;
use mpc_core::{AbortReason, ProposalError, SessionKind};
use mpc_protocol::peer::{Curve, SignFormat};
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};

/// The address libsecp256k1 recovers from `sig` (r ‖ s ‖ recovery id).
fn recover(hash: &[u8; 32], sig: &[u8], v: u8) -> String {
    let secp = secp256k1::Secp256k1::verification_only();
    let id = RecoveryId::from_i32(i32::from(v)).unwrap();
    let rs = RecoverableSignature::from_compact(&sig[..64], id).unwrap();
    let key = secp
        .recover_ecdsa(&secp256k1::Message::from_digest(*hash), &rs)
        .unwrap();
    let full = key.serialize_uncompressed();
    let h = ethereum::keccak(&full[1..]);
    mpc_address::eip55(&h[12..].try_into().unwrap())
}

fn eth_plan(n: usize, t: u16, seed: u64, sign: SignPlan) -> SimConfig {
    let mut c = SimConfig::new(n, t, Curve::Secp256k1Ecdsa, seed);
    c.sign = Some(sign);
    c
}

fn message_plan(signers: Vec<usize>, text: &str) -> SignPlan {
    SignPlan {
        format: SignFormat::EthereumMessage,
        ..SignPlan::message(signers, text.as_bytes())
    }
}

fn transfer(_key: &str) -> Vec<u8> {
    Eip1559Tx {
        chain_id: 31337,
        nonce: 0,
        max_priority_fee_per_gas: 1_000_000_000,
        max_fee_per_gas: 3_000_000_000,
        gas: 21_000,
        to: Some([0x11; 20]),
        value: 10u128.pow(17),
        data: Vec::new(),
        access_list: Vec::new(),
    }
    .unsigned_bytes()
}

fn tx_plan(signers: Vec<usize>) -> SignPlan {
    SignPlan {
        format: SignFormat::EthereumTransaction,
        build: Some(transfer),
        ..SignPlan::message(signers, Vec::new())
    }
}

/// Every signer holds the same 65-byte signature.
fn one_signature(r: &SimReport, signers: usize) -> SignatureResult {
    let sigs = r.signatures();
    assert_eq!(
        sigs.len(),
        signers,
        "{:?} {:?}",
        r.sign_outcomes,
        r.rejections
    );
    let first = sigs.values().next().unwrap().clone();
    for s in sigs.values() {
        assert_eq!(s.signature, first.signature);
        assert_eq!(s.signature.len(), 65);
        assert_eq!(s.curve, Curve::Secp256k1Ecdsa);
    }
    first
}

#[test]
fn two_of_three_personal_sign_recovers_to_the_wallet_address() {
    for seed in 1..=2 {
        let r = sim::run(&eth_plan(3, 2, seed, message_plan(vec![0, 2], "hello")));
        let key = r.agreed_key().expect("wallet created");
        let address = mpc_address::ethereum_address(&key).unwrap();
        let s = one_signature(&r, 2);
        let v = s.signature[64];
        assert!(v == 27 || v == 28, "personal_sign's v is 27 or 28");
        let hash = ethereum::personal_message_hash(b"hello");
        assert_eq!(recover(&hash, &s.signature, v - 27), address);
        // Low s, as Ethereum requires.
        let sig = secp256k1::ecdsa::Signature::from_compact(&s.signature[..64]).unwrap();
        let mut normal = sig;
        normal.normalize_s();
        assert_eq!(sig, normal);
        assert_eq!(r.stats.parse_errors, 0);
    }
}

#[test]
fn three_of_five_sign_an_eip1559_transfer() {
    let r = sim::run(&eth_plan(5, 3, 4, tx_plan(vec![4, 1, 2])));
    let key = r.agreed_key().expect("wallet created");
    let address = mpc_address::ethereum_address(&key).unwrap();
    let s = one_signature(&r, 3);
    let Some(SignedTransaction::Ethereum { raw_tx, tx_hash }) = &s.transaction else {
        panic!("{:?}", s.transaction);
    };
    let raw = hex::decode(raw_tx.strip_prefix("0x").unwrap()).unwrap();
    assert_eq!(
        tx_hash,
        &format!("0x{}", hex::encode(ethereum::keccak(&raw)))
    );
    // The signed encoding is the unsigned one with y parity, r and s.
    let unsigned = transfer(&key);
    let tx = Eip1559Tx::from_unsigned_bytes(&unsigned).unwrap();
    assert_eq!(
        raw,
        tx.signed_bytes(&s.signature.clone().try_into().unwrap())
    );
    assert_eq!(
        recover(&tx.signing_hash(), &s.signature, s.signature[64]),
        address
    );
}

#[test]
fn an_ecdsa_wallet_signs_with_exactly_its_threshold() {
    let r = sim::run(&eth_plan(3, 2, 5, message_plan(vec![0, 1, 2], "three")));
    assert!(r.agreed_key().is_some());
    assert!(r.signatures().is_empty());
    let aborts = r.sign_aborts();
    let proposer = r.outcomes.keys().next().unwrap();
    match aborts.get(proposer) {
        Some(AbortReason::CannotStart {
            kind: SessionKind::Sign,
            error:
                ProposalError::ExactlyThreshold {
                    named: 3,
                    needed: 2,
                },
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn raw_bytes_are_refused_by_an_ecdsa_wallet() {
    let r = sim::run(&eth_plan(3, 2, 6, SignPlan::message(vec![0, 1], [7u8; 32])));
    assert!(r.signatures().is_empty());
    let proposer = r.outcomes.keys().next().unwrap();
    match r.sign_aborts().get(proposer) {
        Some(AbortReason::CannotStart {
            error: ProposalError::Payload(PayloadError::NeedsEthereumFormat),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

fn ten_times_more(payload: &[u8]) -> Vec<u8> {
    let mut tx = Eip1559Tx::from_unsigned_bytes(payload).unwrap();
    tx.value *= 10;
    tx.unsigned_bytes()
}

#[test]
fn a_proposer_that_shows_one_signer_another_transaction_is_named() {
    let mut c = eth_plan(4, 3, 7, tx_plan(vec![0, 1, 2]));
    c.faults.push(Fault::TamperProposal {
        node: 0,
        to: vec![2],
        tamper: ten_times_more,
    });
    let r = sim::run(&c);
    let ids: Vec<String> = r.outcomes.keys().cloned().collect();
    assert!(r.signatures().is_empty(), "nothing is signed");
    let aborts = r.sign_aborts();
    for honest in &ids[1..3] {
        match aborts.get(honest) {
            Some(AbortReason::ProposalsDiffer { proposer, .. }) => assert_eq!(proposer, &ids[0]),
            other => panic!("{honest}: {other:?}"),
        }
    }
}

#[test]
fn a_signer_dropping_out_mid_signing_is_named() {
    let mut c = eth_plan(3, 2, 8, message_plan(vec![0, 1], "bye"));
    c.faults.push(Fault::Vanish {
        node: 1,
        at: VanishAt::SendingIn("ecdsa_round", "sign-1"),
        close_channels: true,
    });
    let r = sim::run(&c);
    assert!(r.signatures().is_empty());
    let ids: Vec<String> = r.outcomes.keys().cloned().collect();
    match r.sign_aborts().get(&ids[0]) {
        Some(AbortReason::SignerLeft { peer }) => assert_eq!(peer, &ids[1]),
        other => panic!("{other:?}"),
    }
}
