//! Against rust-bitcoin: byte-exact round trips, sighashes of every type,
//! txid and virtual size.

use bitcoin::hashes::Hash;
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::Witness;
use mpc_chain::bitcoin::{plan, Network, Policy, Psbt};

use crate::fixtures::{self, mixed, set_sighash, sig_len, Wallet};

const TAP_TYPES: [u8; 7] = [0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83];

#[test]
fn untouched_psbt_round_trips_byte_for_byte() {
    let w = Wallet::fixed(7);
    let mut built = mixed(&w);
    // A final foreign input and a sighash type too, so more fields are read.
    built.psbt.inputs[1].final_script_witness = Some(fixtures::p2wpkh_witness());
    set_sighash(&mut built.psbt, 2, 0x83);
    let bytes = built.bytes();
    let ours = Psbt::from_bytes(&bytes).unwrap();
    assert_eq!(ours.to_bytes(), bytes);
    assert_eq!(ours.input_count(), 3);
    assert_eq!(
        Psbt::from_base64(&ours.to_base64()).unwrap().to_bytes(),
        bytes
    );
    // Standard base64 (with padding), as bitcoin-cli prints it.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    assert_eq!(ours.to_base64(), b64);
    assert_eq!(Psbt::from_base64(&format!(" {b64}\n")).unwrap(), ours);
}

#[test]
fn txid_matches() {
    let w = Wallet::fixed(7);
    let built = mixed(&w);
    assert_eq!(
        built.ours().txid(),
        built.psbt.unsigned_tx.compute_txid().to_string()
    );
}

/// Every sighash `plan` gives equals rust-bitcoin's, for every type on
/// every one of the wallet's inputs (each with the other at another type).
#[test]
fn sighashes_match_rust_bitcoin_for_every_type() {
    let w = Wallet::fixed(7);
    for (k, &t) in TAP_TYPES.iter().enumerate() {
        let other = TAP_TYPES[(k + 3) % TAP_TYPES.len()];
        let mut built = mixed(&w);
        for (input, ty) in [(0, t), (2, other)] {
            if ty != 0 {
                set_sighash(&mut built.psbt, input, u32::from(ty));
            }
        }
        let p = plan(&built.ours(), &w.q, Network::Bitcoin, &Policy::default()).unwrap();
        assert_eq!(
            p.to_sign.iter().map(|s| s.input).collect::<Vec<_>>(),
            [0, 2]
        );

        let mut cache = SighashCache::new(&built.psbt.unsigned_tx);
        for s in &p.to_sign {
            let want_type = if s.input == 0 { t } else { other };
            assert_eq!(s.sighash_type, want_type);
            let reference = cache
                .taproot_key_spend_signature_hash(
                    s.input,
                    &Prevouts::All(&built.spent),
                    TapSighashType::from_consensus_u8(want_type).unwrap(),
                )
                .unwrap();
            assert_eq!(
                s.sighash,
                reference.to_byte_array(),
                "input {} type {want_type:#x}",
                s.input
            );
        }
    }
}

/// The review's vsize is the finished transaction's, as rust-bitcoin
/// measures it, for both signature lengths.
#[test]
fn vsize_matches_the_finished_transaction() {
    let w = Wallet::fixed(7);
    for t in [0x00u8, 0x81] {
        let mut built = mixed(&w);
        built.psbt.inputs[1].final_script_witness = Some(fixtures::p2wpkh_witness());
        if t != 0 {
            set_sighash(&mut built.psbt, 0, u32::from(t));
        }
        let mut ours = built.ours();
        let p = plan(&ours, &w.q, Network::Bitcoin, &Policy::default()).unwrap();
        // Any bytes of the right length: the size is what is measured.
        let sigs: Vec<(usize, Vec<u8>)> = p
            .to_sign
            .iter()
            .map(|s| {
                let mut sig = vec![0x5a; 64];
                if s.sighash_type != 0 {
                    sig.push(s.sighash_type);
                }
                assert_eq!(sig.len(), sig_len(s.sighash_type));
                (s.input, sig)
            })
            .collect();
        ours.finalize_key_path(&sigs).unwrap();
        let raw = ours.extract_tx().unwrap();
        let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(&raw).unwrap();
        assert_eq!(p.review.vsize, tx.vsize() as u64, "sighash type {t:#x}");
        assert_eq!(tx.compute_txid().to_string(), ours.txid());

        // rust-bitcoin extracts the same transaction from our finalized PSBT.
        let theirs = bitcoin::Psbt::deserialize(&ours.to_bytes()).unwrap();
        assert_eq!(
            theirs.extract_tx_unchecked_fee_rate(),
            tx,
            "sighash type {t:#x}"
        );
    }

    // Unsigned foreign input: counted empty, so the size is smaller.
    let built = mixed(&w);
    let p = plan(&built.ours(), &w.q, Network::Bitcoin, &Policy::default()).unwrap();
    let mut done = built.psbt.clone();
    for i in [0, 2] {
        done.inputs[i].final_script_witness = Some(Witness::from_slice(&[vec![0; 64]]));
    }
    done.inputs[1].final_script_witness = Some(fixtures::p2wpkh_witness());
    let real = done.clone().extract_tx_unchecked_fee_rate().vsize() as u64;
    assert!(p.review.vsize < real);
    let mut empty = done.clone();
    empty.inputs[1].final_script_witness = Some(Witness::new());
    assert_eq!(
        p.review.vsize,
        empty.extract_tx_unchecked_fee_rate().vsize() as u64
    );
}

/// Finalizing leaves the fields BIP174 keeps, as rust-bitcoin reads them.
#[test]
fn finalized_psbt_keeps_utxos_unknown_and_proprietary() {
    let w = Wallet::fixed(7);
    let built = mixed(&w);
    let mut ours = built.ours();
    ours.finalize_key_path(&[(0, vec![1; 64]), (2, vec![2; 64])])
        .unwrap();
    let theirs = bitcoin::Psbt::deserialize(&ours.to_bytes()).unwrap();
    for (i, sig) in [(0usize, 1u8), (2, 2)] {
        let before = &built.psbt.inputs[i];
        let after = &theirs.inputs[i];
        assert_eq!(
            after.final_script_witness,
            Some(Witness::from_slice(&[vec![sig; 64]]))
        );
        assert_eq!(after.final_script_sig, None);
        assert_eq!(after.witness_utxo, before.witness_utxo);
        assert_eq!(after.non_witness_utxo, before.non_witness_utxo);
        assert_eq!(after.unknown, before.unknown);
        assert_eq!(after.proprietary, before.proprietary);
        assert_eq!(after.tap_internal_key, None);
        assert!(after.tap_key_origins.is_empty());
        assert_eq!(after.tap_key_sig, None);
    }
    // The foreign input and the outputs are as they were.
    assert_eq!(theirs.inputs[1], built.psbt.inputs[1]);
    assert_eq!(theirs.outputs, built.psbt.outputs);
    assert_eq!(theirs.unknown, built.psbt.unknown);
    // Finalizing the foreign input too lets it be extracted.
    let mut full = theirs.clone();
    full.inputs[1].final_script_witness = Some(fixtures::p2wpkh_witness());
    let ours_full = Psbt::from_bytes(&full.serialize()).unwrap();
    let raw = ours_full.extract_tx().unwrap();
    assert_eq!(
        raw,
        bitcoin::consensus::serialize(&full.extract_tx_unchecked_fee_rate())
    );
}
