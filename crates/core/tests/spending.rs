//! Signing transactions in the simulator (issue 14): each signer derives
//! every BIP341 sighash itself, one FROST signature per wallet input; a
//! Solana transfer is signed over its message, in the wallet's slot; a
//! proposer that shows signers different transactions is named; one that
//! can't be signed never starts a session. The PSBTs are built, and the
//! sighashes checked, with rust-bitcoin; the signatures with libsecp256k1
//! and ed25519-dalek.
#![cfg(not(target_arch = "wasm32"))]

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::key::{TweakedPublicKey, XOnlyPublicKey};
use bitcoin::psbt::Psbt;
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use mpc_core::payload::{PayloadError, SignedTransaction};
use mpc_core::sim::{self, Fault, SignPlan, SimConfig};
use mpc_core::{AbortReason, ProposalError, SessionKind};
use mpc_protocol::peer::{Curve, SignFormat};

fn wallet_script(group_key: &str) -> ScriptBuf {
    let q = XOnlyPublicKey::from_slice(&hex::decode(&group_key[2..]).unwrap()).unwrap();
    ScriptBuf::new_p2tr_tweaked(TweakedPublicKey::dangerous_assume_tweaked(q))
}

fn foreign_script() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([3; 20]))
}

/// Inputs 0 and 2 pay the wallet, input 1 someone else; 70,000 sat out,
/// change back.
fn three_inputs(group_key: &str) -> Psbt {
    let spk = wallet_script(group_key);
    let amounts = [
        (50_000, spk.clone()),
        (30_000, foreign_script()),
        (40_000, spk.clone()),
    ];
    let tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: (0..3u8)
            .map(|i| TxIn {
                previous_output: OutPoint {
                    txid: Txid::from_byte_array([i + 1; 32]),
                    vout: u32::from(i),
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            })
            .collect(),
        output: vec![
            TxOut {
                value: Amount::from_sat(70_000),
                script_pubkey: foreign_script(),
            },
            TxOut {
                value: Amount::from_sat(48_500),
                script_pubkey: spk,
            },
        ],
    };
    let mut psbt = Psbt::from_unsigned_tx(tx).unwrap();
    for (input, (value, spk)) in psbt.inputs.iter_mut().zip(amounts) {
        input.witness_utxo = Some(TxOut {
            value: Amount::from_sat(value),
            script_pubkey: spk,
        });
    }
    psbt
}

fn psbt_bytes(group_key: &str) -> Vec<u8> {
    three_inputs(group_key).serialize()
}

/// The same PSBT paying 30,000 sat more to the outsider, less change.
fn more_to_the_outsider(payload: &[u8]) -> Vec<u8> {
    let mut psbt = Psbt::deserialize(payload).unwrap();
    psbt.unsigned_tx.output[0].value = Amount::from_sat(100_000);
    psbt.unsigned_tx.output[1].value = Amount::from_sat(18_500);
    psbt.serialize()
}

fn without_a_utxo(group_key: &str) -> Vec<u8> {
    let mut psbt = three_inputs(group_key);
    psbt.inputs[1].witness_utxo = None;
    psbt.serialize()
}

fn psbt_plan(signers: Vec<usize>, build: fn(&str) -> Vec<u8>) -> SimConfig {
    let mut c = SimConfig::new(3, 2, Curve::Secp256k1, 21);
    c.sign = Some(SignPlan {
        format: SignFormat::BitcoinPsbt,
        build: Some(build),
        ..SignPlan::message(signers, Vec::new())
    });
    c
}

#[test]
fn each_wallet_input_gets_a_signature_over_the_sighash_rust_bitcoin_computes() {
    let r = sim::run(&psbt_plan(vec![0, 2], psbt_bytes));
    let key = r.agreed_key().expect("wallet created");
    let sigs = r.signatures();
    assert_eq!(sigs.len(), 2, "{:?}", r.sign_outcomes);
    let psbt = three_inputs(&key);
    let utxos: Vec<TxOut> = psbt
        .inputs
        .iter()
        .map(|i| i.witness_utxo.clone().unwrap())
        .collect();
    let mut cache = SighashCache::new(&psbt.unsigned_tx);
    let secp = secp256k1::Secp256k1::verification_only();
    let q = secp256k1::XOnlyPublicKey::from_slice(&hex::decode(&key[2..]).unwrap()).unwrap();
    let first = sigs.values().next().unwrap().clone();
    for s in sigs.values() {
        assert_eq!(s.signature, first.signature);
        assert_eq!(s.format, SignFormat::BitcoinPsbt);
    }
    assert_eq!(first.signatures.len(), 2);
    for (input, sig) in [0usize, 2].into_iter().zip(&first.signatures) {
        let sighash = cache
            .taproot_key_spend_signature_hash(
                input,
                &Prevouts::All(&utxos),
                TapSighashType::Default,
            )
            .unwrap();
        let msg = secp256k1::Message::from_digest(sighash.to_byte_array());
        let sig = secp256k1::schnorr::Signature::from_slice(sig).unwrap();
        secp.verify_schnorr(&sig, &msg, &q)
            .unwrap_or_else(|e| panic!("input {input}: {e}"));
    }
    // The foreign input is left to its owner: no transaction yet.
    match &first.transaction {
        Some(SignedTransaction::Bitcoin {
            signed_inputs,
            tx_hex,
            psbt: signed,
            ..
        }) => {
            assert_eq!(signed_inputs, &[0, 2]);
            assert_eq!(tx_hex, &None);
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(signed)
                .unwrap();
            let signed = Psbt::deserialize(&bytes).unwrap();
            for i in [0, 2] {
                let w = signed.inputs[i].final_script_witness.as_ref().unwrap();
                assert_eq!(w.len(), 1);
                assert_eq!(w.nth(0).unwrap().len(), 64);
            }
            assert!(signed.inputs[1].final_script_witness.is_none());
        }
        other => panic!("no transaction: {other:?}"),
    }
}

#[test]
fn a_proposer_that_shows_one_signer_another_psbt_is_named() {
    let mut c = psbt_plan(vec![0, 1, 2], psbt_bytes);
    c.faults.push(Fault::TamperProposal {
        node: 0,
        to: vec![2],
        tamper: more_to_the_outsider,
    });
    let r = sim::run(&c);
    let ids: Vec<String> = r.outcomes.keys().cloned().collect();
    let proposer = &ids[0];
    let aborts = r.sign_aborts();
    assert!(r.signatures().is_empty(), "nothing is signed");
    for honest in &ids[1..] {
        match aborts.get(honest) {
            Some(AbortReason::ProposalsDiffer { proposer: p, .. }) => assert_eq!(p, proposer),
            other => panic!("{honest}: {other:?}"),
        }
    }
}

#[test]
fn a_psbt_missing_a_utxo_never_starts_a_session() {
    let r = sim::run(&psbt_plan(vec![0, 1], without_a_utxo));
    let ids: Vec<String> = r.outcomes.keys().cloned().collect();
    match r.sign_aborts().get(&ids[0]) {
        Some(AbortReason::CannotStart {
            kind: SessionKind::Sign,
            error:
                ProposalError::Payload(PayloadError::Psbt(mpc_chain::bitcoin::PsbtError::MissingUtxo {
                    input: 1,
                })),
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(r.signatures().is_empty());
}

const SOL_TO: [u8; 32] = [0x42; 32];

/// 1 SOL from the wallet to [`SOL_TO`].
fn solana_transfer(group_key: &str) -> Vec<u8> {
    let wallet: [u8; 32] = hex::decode(group_key).unwrap().try_into().unwrap();
    mpc_chain::solana::transfer_message(&wallet, &SOL_TO, 1_000_000_000, &[3; 32], None)
}

/// The same transfer for 1000 SOL: the lamports end the message.
fn a_thousand_times_more(payload: &[u8]) -> Vec<u8> {
    let mut m = payload.to_vec();
    let at = m.len() - 8;
    m[at..].copy_from_slice(&1_000_000_000_000u64.to_le_bytes());
    m
}

fn solana_plan(signers: Vec<usize>, build: fn(&str) -> Vec<u8>) -> SimConfig {
    let mut c = SimConfig::new(3, 2, Curve::Ed25519, 22);
    c.sign = Some(SignPlan {
        format: SignFormat::SolanaTransaction,
        build: Some(build),
        ..SignPlan::message(signers, Vec::new())
    });
    c
}

#[test]
fn a_solana_transfer_is_signed_over_its_message_in_the_wallets_slot() {
    let r = sim::run(&solana_plan(vec![1, 2], solana_transfer));
    let key = r.agreed_key().expect("wallet created");
    let sigs = r.signatures();
    assert_eq!(sigs.len(), 2, "{:?}", r.sign_outcomes);
    let first = sigs.values().next().unwrap();
    let message = solana_transfer(&key);
    let vk =
        ed25519_dalek::VerifyingKey::from_bytes(&hex::decode(&key).unwrap().try_into().unwrap())
            .unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&first.signature).unwrap();
    vk.verify_strict(&message, &sig)
        .expect("Solana's verify_strict");
    let Some(SignedTransaction::Solana {
        transaction,
        signature,
    }) = &first.transaction
    else {
        panic!("no Solana transaction: {:?}", first.transaction);
    };
    use base64::Engine;
    let tx = base64::engine::general_purpose::STANDARD
        .decode(transaction)
        .unwrap();
    assert_eq!(tx[0], 1, "one signature slot");
    assert_eq!(&tx[1..65], &first.signature[..]);
    assert_eq!(&tx[65..], &message[..]);
    assert_eq!(signature, &bs58::encode(&first.signature).into_string());
}

#[test]
fn a_proposer_that_shows_one_signer_a_bigger_transfer_is_named() {
    let mut c = solana_plan(vec![0, 1, 2], solana_transfer);
    c.faults.push(Fault::TamperProposal {
        node: 0,
        to: vec![1],
        tamper: a_thousand_times_more,
    });
    let r = sim::run(&c);
    let ids: Vec<String> = r.outcomes.keys().cloned().collect();
    assert!(r.signatures().is_empty(), "nothing is signed");
    let aborts = r.sign_aborts();
    for honest in &ids[1..] {
        match aborts.get(honest) {
            Some(AbortReason::ProposalsDiffer { proposer, .. }) => assert_eq!(proposer, &ids[0]),
            other => panic!("{honest}: {other:?}"),
        }
    }
}

#[test]
fn a_solana_transfer_from_another_account_never_starts_a_session() {
    fn theirs(_: &str) -> Vec<u8> {
        mpc_chain::solana::transfer_message(&SOL_TO, &[1; 32], 5, &[3; 32], None)
    }
    let r = sim::run(&solana_plan(vec![0, 1], theirs));
    let ids: Vec<String> = r.outcomes.keys().cloned().collect();
    match r.sign_aborts().get(&ids[0]) {
        Some(AbortReason::CannotStart {
            error:
                ProposalError::Payload(PayloadError::Solana(mpc_chain::solana::SolanaError::NotASigner)),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(r.signatures().is_empty());
}
