//! Spending (issue 14): `sign-psbt` between processes, every input checked
//! by Bitcoin Core's own script interpreter (libbitcoinconsensus), and the
//! PSBTs a signer must refuse.

use super::*;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::key::{TweakedPublicKey, XOnlyPublicKey};
use bitcoin::psbt::Psbt;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};

/// The wallet's own P2TR script: its group key is already the output key.
fn wallet_script(group_key: &str) -> ScriptBuf {
    let q = XOnlyPublicKey::from_slice(&hex::decode(&group_key[2..]).unwrap()).unwrap();
    ScriptBuf::new_p2tr_tweaked(TweakedPublicKey::dangerous_assume_tweaked(q))
}

fn external() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([7; 20]))
}

/// Spends `inputs` (amounts in sat, each an output of `spk`), paying
/// 70,000 sat out and the rest less a 1,000 sat fee back to the wallet.
fn psbt_spending(spk: &ScriptBuf, inputs: &[u64], seed: u8) -> Psbt {
    let total: u64 = inputs.iter().sum();
    let tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: (0..inputs.len())
            .map(|i| TxIn {
                previous_output: OutPoint {
                    txid: Txid::from_byte_array([seed + i as u8; 32]),
                    vout: i as u32,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            })
            .collect(),
        output: vec![
            TxOut {
                value: Amount::from_sat(70_000),
                script_pubkey: external(),
            },
            TxOut {
                value: Amount::from_sat(total - 70_000 - 1_000),
                script_pubkey: spk.clone(),
            },
        ],
    };
    let mut psbt = Psbt::from_unsigned_tx(tx).unwrap();
    for (input, amount) in psbt.inputs.iter_mut().zip(inputs) {
        input.witness_utxo = Some(TxOut {
            value: Amount::from_sat(*amount),
            script_pubkey: spk.clone(),
        });
    }
    psbt
}

/// Every input of `tx_hex` passes Bitcoin Core's interpreter with Taproot
/// rules, given the outputs it spends.
fn verify_with_core(tx_hex: &str, spent: &[(ScriptBuf, u64)]) -> Result<(), String> {
    let tx = hex::decode(tx_hex).unwrap();
    let utxos: Vec<bitcoinconsensus::Utxo> = spent
        .iter()
        .map(|(s, v)| bitcoinconsensus::Utxo {
            script_pubkey: s.as_bytes().as_ptr(),
            script_pubkey_len: s.len() as u32,
            value: *v as i64,
        })
        .collect();
    let flags = bitcoinconsensus::VERIFY_ALL_PRE_TAPROOT | bitcoinconsensus::VERIFY_TAPROOT;
    for (i, (s, v)) in spent.iter().enumerate() {
        bitcoinconsensus::verify_with_flags(s.as_bytes(), *v, &tx, Some(&utxos), i, flags)
            .map_err(|e| format!("input {i}: {e:?}"))?;
    }
    Ok(())
}

fn write_psbt(dir: &Path, name: &str, psbt: &Psbt) -> String {
    let path = dir.join(name);
    std::fs::write(&path, psbt.serialize()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn a_2_of_3_wallet_spends_a_psbt_that_bitcoin_core_accepts() {
    let (dir, results) = create_wallet("spend", 3, 2, "secp256k1");
    let key = group_key(&results);
    let spk = wallet_script(&key);
    let amounts = [50_000, 40_000];
    let psbt = psbt_spending(&spk, &amounts, 1);
    let file = write_psbt(&dir, "spend.psbt", &psbt);
    let server = Server::start();

    // cli2 is asked, and answers yes after seeing what leaves the wallet.
    let mut asked = wallet_cmd(&server, &dir, "cli2")
        .args(["--json", "join", "--timeout-secs", "20"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    asked.stdin.take().unwrap().write_all(b"y\n").unwrap();
    wait_registered(&server, &["cli2"]);
    let signed_path = dir.join("signed.psbt");
    let proposer = wallet_cmd(&server, &dir, "cli1")
        .args(["--json", "sign-psbt", "--wallet", &key, "--psbt", &file])
        .args(["--signers", "cli1,cli2", "--timeout-secs", "20", "--out"])
        .arg(&signed_path)
        .spawn()
        .unwrap();
    let out = json_of(&finish(proposer, Duration::from_secs(60)));
    let joined = finish(asked, Duration::from_secs(60));
    let prompt = String::from_utf8_lossy(&joined.stderr).to_string();
    let joiner = json_of(&joined);

    // What cli2 was shown: decoded by cli2 itself.
    let to =
        mpc_address::script_address(external().as_bytes(), mpc_address::Network::Bitcoin).unwrap();
    for needle in [
        to.as_str(),
        "0.00070000 BTC",
        "0.00019000 BTC",
        "change back to this wallet",
        "fee 0.00001000 BTC",
    ] {
        assert!(prompt.contains(needle), "{needle:?} not shown:\n{prompt}");
    }

    assert_eq!(out["signed_inputs"], serde_json::json!([0, 1]));
    let tx_hex = out["tx_hex"].as_str().unwrap();
    assert_eq!(joiner["transaction"]["tx_hex"], tx_hex);
    let spent: Vec<(ScriptBuf, u64)> = amounts.iter().map(|a| (spk.clone(), *a)).collect();
    verify_with_core(tx_hex, &spent).expect("Bitcoin Core accepts every input");
    // The interpreter can fail: one flipped bit in a signature.
    let mut bad = hex::decode(tx_hex).unwrap();
    let len = bad.len();
    bad[len - 10] ^= 1; // inside the last input's signature, before nLockTime
    assert!(verify_with_core(&hex::encode(bad), &spent).is_err());

    // The signed PSBT, written whole to --out, is final and the same tx.
    let written = std::fs::read_to_string(&signed_path).unwrap();
    assert_eq!(written, out["psbt"].as_str().unwrap());
    let signed: Psbt = written.parse().unwrap();
    let tx = signed.extract_tx().unwrap();
    assert_eq!(bitcoin::consensus::encode::serialize_hex(&tx), tx_hex);
    assert_eq!(tx.compute_txid().to_string(), out["txid"].as_str().unwrap());

    // Unattended, cli3 signs only the PSBT it was told to approve.
    let other = psbt_spending(&spk, &[100_000], 9);
    let other_file = write_psbt(&dir, "other.psbt", &other);
    let run = |approve: &str| {
        let joiner = wallet_cmd(&server, &dir, "cli3")
            .args(["--json", "join", "--timeout-secs", "20", "--approve-psbt"])
            .arg(approve)
            .spawn()
            .unwrap();
        wait_registered(&server, &["cli3"]);
        let proposer = wallet_cmd(&server, &dir, "cli1")
            .args([
                "--json",
                "sign-psbt",
                "--wallet",
                &key,
                "--psbt",
                &other_file,
            ])
            .args(["--signers", "cli1,cli3", "--timeout-secs", "20"])
            .spawn()
            .unwrap();
        (
            finish(proposer, Duration::from_secs(60)),
            finish(joiner, Duration::from_secs(60)),
        )
    };
    let (refused, _) = run(&file);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("signing not approved"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let (ok, _) = run(&other_file);
    let v = json_of(&ok);
    verify_with_core(v["tx_hex"].as_str().unwrap(), &[(spk.clone(), 100_000)]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn psbts_a_signer_must_refuse_fail_before_anything_is_sent() {
    let (dir, results) = create_wallet("badpsbt", 2, 2, "secp256k1");
    let key = group_key(&results);
    let spk = wallet_script(&key);
    // No server runs: every refusal must come before the network.
    let refuse = |psbt: &str, said: &str| {
        let out = Command::new(wallet_bin())
            .args(["--server", "ws://127.0.0.1:9/ws", "--keystore"])
            .arg(dir.join("cli1"))
            .args(["sign-psbt", "--wallet", &key, "--psbt", psbt])
            .env("MPC_WALLET_PASSPHRASE", PASS)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{psbt:.30}: {err}");
        assert!(err.contains(said), "{said:?} not in: {err}");
    };
    refuse("bm90IGEgcHNidA!!", "base64");
    refuse(&base64_of(b"not a psbt"), "magic");

    let mut missing = psbt_spending(&spk, &[50_000, 40_000], 1);
    missing.inputs[1].witness_utxo = None;
    refuse(&write_psbt(&dir, "missing.psbt", &missing), "input 1");

    let mut sighash = psbt_spending(&spk, &[50_000, 40_000], 1);
    sighash.inputs[0].sighash_type = Some(bitcoin::psbt::PsbtSighashType::from_u32(4));
    refuse(&write_psbt(&dir, "sighash.psbt", &sighash), "sighash");

    let foreign = psbt_spending(&external(), &[100_000], 1);
    refuse(&write_psbt(&dir, "foreign.psbt", &foreign), "wallet");

    // Nor does a Taproot wallet sign for Solana.
    let out = offline(
        &dir.join("cli1"),
        &[
            "--server",
            "ws://127.0.0.1:9/ws",
            "solana-transfer",
            "--wallet",
            &key,
            "--to",
            "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
            "--lamports",
            "1",
            "--blockhash",
            "4uQeVj5tqViQh7yWWGStvkEG1Zmhx6uasJtWCJziofM",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not an ed25519 (Solana) wallet"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
