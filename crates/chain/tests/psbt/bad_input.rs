//! PSBTs a signer must refuse, each with its own error.

use bitcoin::consensus;
use mpc_chain::bitcoin::{plan, Network, Policy, Psbt, PsbtError};

use crate::fixtures::{build, mixed, p2wpkh, set_sighash, InputSpec, Utxo, Wallet};

fn plan_of(w: &Wallet, bytes: &[u8]) -> Result<mpc_chain::bitcoin::Plan, PsbtError> {
    plan(
        &Psbt::from_bytes(bytes)?,
        &w.q,
        Network::Bitcoin,
        &Policy::default(),
    )
}

#[test]
fn garbage_magic_and_truncation() {
    assert_eq!(
        Psbt::from_base64("this is not base64!"),
        Err(PsbtError::NotBase64)
    );
    assert_eq!(Psbt::from_base64(""), Err(PsbtError::BadMagic));
    let w = Wallet::fixed(3);
    let bytes = mixed(&w).bytes();
    let mut magic = bytes.clone();
    magic[4] = 0xfe;
    assert_eq!(Psbt::from_bytes(&magic), Err(PsbtError::BadMagic));
    // A raw transaction is not a PSBT either.
    let raw = consensus::serialize(&mixed(&w).psbt.unsigned_tx);
    assert_eq!(Psbt::from_bytes(&raw), Err(PsbtError::BadMagic));
    assert_eq!(
        Psbt::from_bytes(&bytes[..bytes.len() - 7]),
        Err(PsbtError::Truncated)
    );
    // Each output map here is 5 bytes: cut at a map boundary, what is
    // missing is whole maps.
    assert_eq!(
        Psbt::from_bytes(&bytes[..bytes.len() - 10]),
        Err(PsbtError::CountMismatch {
            maps: 4,
            tx: 6,
            what: "outputs"
        })
    );
    assert_eq!(Psbt::from_bytes(&bytes[..40]), Err(PsbtError::Truncated));
}

#[test]
fn duplicate_global_key() {
    let w = Wallet::fixed(3);
    let built = mixed(&w);
    let bytes = built.bytes();
    // The global map starts with the unsigned tx pair: repeat it.
    let tx = consensus::serialize(&built.psbt.unsigned_tx);
    let mut pair = vec![0x01, 0x00];
    consensus::Encodable::consensus_encode(&bitcoin::VarInt(tx.len() as u64), &mut pair).unwrap();
    pair.extend_from_slice(&tx);
    assert_eq!(&bytes[5..5 + pair.len()], pair.as_slice());
    let dup = [&bytes[..5], &pair, &bytes[5..]].concat();
    assert_eq!(
        Psbt::from_bytes(&dup),
        Err(PsbtError::DuplicateKey {
            map: "global".into(),
            key: "00".into()
        })
    );
}

#[test]
fn missing_utxo_names_the_first_input() {
    let w = Wallet::fixed(3);
    let spec = |utxo, script| InputSpec {
        script,
        amount: 10_000,
        utxo,
        sequence: 0xffff_fffd,
    };
    // Missing on a foreign input still stops the plan: the Taproot sighash
    // commits to every spent output.
    let built = build(
        &w,
        &[
            spec(Utxo::Witness, w.script()),
            spec(Utxo::Neither, p2wpkh(1)),
            spec(Utxo::Neither, w.script()),
        ],
        &[(p2wpkh(2), 25_000)],
    );
    let psbt = built.ours();
    assert_eq!(
        plan(&psbt, &w.q, Network::Bitcoin, &Policy::default()),
        Err(PsbtError::MissingUtxo { input: 1 })
    );
}

#[test]
fn non_witness_utxo_with_the_wrong_txid() {
    let w = Wallet::fixed(3);
    let mut built = mixed(&w);
    let mut other = built.psbt.inputs[2].non_witness_utxo.clone().unwrap();
    other.lock_time = bitcoin::absolute::LockTime::from_consensus(1);
    built.psbt.inputs[2].non_witness_utxo = Some(other);
    assert_eq!(
        Psbt::from_bytes(&built.bytes()),
        Err(PsbtError::UtxoMismatch { input: 2 })
    );

    // The right transaction, but a witness_utxo that says otherwise.
    let mut built = mixed(&w);
    let mut wrong = built.spent[1].clone();
    wrong.value = bitcoin::Amount::from_sat(1);
    built.psbt.inputs[1].witness_utxo = Some(wrong);
    assert_eq!(
        Psbt::from_bytes(&built.bytes()),
        Err(PsbtError::UtxoMismatch { input: 1 })
    );
}

#[test]
fn sighash_types_taproot_lacks() {
    let w = Wallet::fixed(3);
    for bad in [0x04u32, 0x80, 0x84, 0x41, 0x101] {
        let mut built = mixed(&w);
        set_sighash(&mut built.psbt, 2, bad);
        assert_eq!(
            plan_of(&w, &built.bytes()),
            Err(PsbtError::UnknownSighash {
                input: 2,
                value: bad
            })
        );
    }
    // On an input this wallet doesn't sign, it is not ours to judge.
    let mut built = mixed(&w);
    set_sighash(&mut built.psbt, 1, 0x04);
    assert!(plan_of(&w, &built.bytes()).is_ok());

    // SIGHASH_SINGLE on input 1 with only one output.
    let spec = |script| InputSpec {
        script,
        amount: 10_000,
        utxo: Utxo::Witness,
        sequence: 0xffff_fffd,
    };
    for t in [0x03, 0x83] {
        let mut built = build(
            &w,
            &[spec(w.script()), spec(w.script())],
            &[(p2wpkh(9), 15_000)],
        );
        set_sighash(&mut built.psbt, 1, t);
        assert_eq!(
            plan_of(&w, &built.bytes()),
            Err(PsbtError::SighashSingleWithoutOutput { input: 1 })
        );
    }
}

#[test]
fn psbt_version_2_is_refused() {
    let w = Wallet::fixed(3);
    let mut built = mixed(&w);
    built.psbt.version = 2;
    assert_eq!(
        Psbt::from_bytes(&built.bytes()),
        Err(PsbtError::UnsupportedVersion(2))
    );
    // Version 0, which rust-bitcoin leaves unsaid, is fine.
    built.psbt.version = 0;
    assert!(Psbt::from_bytes(&built.bytes()).is_ok());
}

#[test]
fn nothing_to_sign_for_another_key() {
    let w = Wallet::fixed(3);
    let stranger = Wallet::fixed(4);
    assert_eq!(
        plan_of(&stranger, &mixed(&w).bytes()),
        Err(PsbtError::NothingToSign)
    );
}

#[test]
fn extract_before_signing_and_bad_signatures() {
    let w = Wallet::fixed(3);
    let mut psbt = mixed(&w).ours();
    assert_eq!(
        psbt.extract_tx(),
        Err(PsbtError::NotFinal {
            inputs: vec![0, 1, 2]
        })
    );
    let before = psbt.clone();
    for (input, len) in [(0usize, 63usize), (0, 65), (2, 0), (2, 128)] {
        assert_eq!(
            psbt.finalize_key_path(&[(input, vec![1; len])]),
            Err(PsbtError::BadSignature { input })
        );
    }
    assert_eq!(
        psbt.finalize_key_path(&[(0, vec![1; 64]), (3, vec![1; 64])]),
        Err(PsbtError::BadSignature { input: 3 })
    );
    assert_eq!(psbt, before, "a refused call changes nothing");
    // Only the wallet's inputs signed: the foreign one is still missing.
    psbt.finalize_key_path(&[(0, vec![1; 64]), (2, vec![1; 64])])
        .unwrap();
    assert_eq!(
        psbt.extract_tx(),
        Err(PsbtError::NotFinal { inputs: vec![1] })
    );
}
