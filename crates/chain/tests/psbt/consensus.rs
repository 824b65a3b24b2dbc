//! End to end: `plan`, Schnorr-sign its sighashes with the wallet's key as
//! it is (the stored key is already the output key Q), finalize, extract,
//! and have Bitcoin Core's interpreter verify every input.

use bitcoin::key::Secp256k1;
use bitcoin::secp256k1::Message;
use bitcoinconsensus::{verify_with_flags, Utxo, VERIFY_ALL_PRE_TAPROOT, VERIFY_TAPROOT};
use mpc_chain::bitcoin::{plan, Network, Policy, Psbt, PsbtError};

use crate::fixtures::{build, p2wpkh, set_sighash, InputSpec, Utxo as U, Wallet};

/// Two inputs of the wallet's, a payment and change.
fn all_ours(w: &Wallet) -> crate::fixtures::Built {
    build(
        w,
        &[
            InputSpec {
                script: w.script(),
                amount: 300_000,
                utxo: U::Witness,
                sequence: 0xffff_fffd,
            },
            InputSpec {
                script: w.script(),
                amount: 125_000,
                utxo: U::NonWitness,
                sequence: 0xffff_ffff,
            },
        ],
        &[(p2wpkh(0x42), 200_000), (w.script(), 222_000)],
    )
}

fn sign(w: &Wallet, psbt: &Psbt) -> Vec<(usize, Vec<u8>)> {
    let secp = Secp256k1::new();
    let p = plan(psbt, &w.q, Network::Regtest, &Policy::default()).unwrap();
    assert_eq!(p.to_sign.len(), 2);
    p.to_sign
        .iter()
        .map(|s| {
            let sig = secp.sign_schnorr(&Message::from_digest(s.sighash), &w.keypair);
            let mut sig = sig.serialize().to_vec();
            if s.sighash_type != 0 {
                sig.push(s.sighash_type);
            }
            (s.input, sig)
        })
        .collect()
}

/// Core's verdict on each input of `raw`, given the outputs it spends.
fn verify_all(raw: &[u8], spent: &[bitcoin::TxOut]) -> Vec<Result<(), bitcoinconsensus::Error>> {
    let utxos: Vec<Utxo> = spent
        .iter()
        .map(|o| Utxo {
            script_pubkey: o.script_pubkey.as_bytes().as_ptr(),
            script_pubkey_len: o.script_pubkey.len() as u32,
            value: o.value.to_sat() as i64,
        })
        .collect();
    spent
        .iter()
        .enumerate()
        .map(|(i, o)| {
            verify_with_flags(
                o.script_pubkey.as_bytes(),
                o.value.to_sat(),
                raw,
                Some(&utxos),
                i,
                VERIFY_ALL_PRE_TAPROOT | VERIFY_TAPROOT,
            )
        })
        .collect()
}

#[test]
fn signed_from_plan_verifies_in_bitcoin_core() {
    // DEFAULT for both, then one 65-byte signature of each kind.
    for types in [[0u32, 0], [0x81, 0x03], [0x01, 0x82], [0x83, 0x02]] {
        let w = Wallet::random();
        let mut built = all_ours(&w);
        for (i, t) in types.iter().enumerate() {
            if *t != 0 {
                set_sighash(&mut built.psbt, i, *t);
            }
        }
        let mut psbt = built.ours();
        assert!(matches!(
            psbt.extract_tx(),
            Err(PsbtError::NotFinal { inputs }) if inputs == [0, 1]
        ));
        let sigs = sign(&w, &psbt);

        // One flipped byte in one signature: Core refuses that input.
        for victim in 0..2 {
            let mut bad = sigs.clone();
            bad[victim].1[10] ^= 0x01;
            let mut broken = psbt.clone();
            broken.finalize_key_path(&bad).unwrap();
            let verdict = verify_all(&broken.extract_tx().unwrap(), &built.spent);
            assert!(
                verdict[victim].is_err(),
                "{types:?}: flipped input {victim}"
            );
            assert!(
                verdict[1 - victim].is_ok(),
                "{types:?}: other input {victim}"
            );
        }

        psbt.finalize_key_path(&sigs).unwrap();
        let raw = psbt.extract_tx().unwrap();
        for (i, v) in verify_all(&raw, &built.spent).into_iter().enumerate() {
            assert_eq!(v, Ok(()), "{types:?}: input {i}");
        }

        // rust-bitcoin reads both the transaction and the finalized PSBT.
        let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(&raw).unwrap();
        assert_eq!(tx.compute_txid().to_string(), psbt.txid());
        assert_eq!(tx.input[0].witness.len(), 1);
        let theirs = bitcoin::Psbt::deserialize(&psbt.to_bytes()).unwrap();
        assert_eq!(theirs.extract_tx_unchecked_fee_rate(), tx);
        assert_eq!(bitcoin::consensus::serialize(&tx), raw);
    }
}

/// A signature over a sighash that commits to a different amount (the PSBT
/// lied about a UTXO) is refused by Core: the Taproot sighash commits to
/// every spent amount.
#[test]
fn lying_about_an_amount_breaks_the_signature() {
    let w = Wallet::random();
    let honest = all_ours(&w);
    let mut liar = honest.psbt.clone();
    let mut claimed = honest.spent[0].clone();
    // Less than it is, so the fee looks smaller than it is.
    claimed.value = bitcoin::Amount::from_sat(297_500);
    liar.inputs[0].witness_utxo = Some(claimed);
    let mut psbt = Psbt::from_bytes(&liar.serialize()).unwrap();
    let sigs = sign(&w, &psbt);
    psbt.finalize_key_path(&sigs).unwrap();
    let verdict = verify_all(&psbt.extract_tx().unwrap(), &honest.spent);
    assert!(verdict.iter().all(|v| v.is_err()), "{verdict:?}");
}
