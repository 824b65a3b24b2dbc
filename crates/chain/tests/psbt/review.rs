//! What the signer is shown: change, foreign inputs, fee, warnings, text.

use std::time::Instant;

use bitcoin::Witness;
use mpc_chain::bitcoin::{plan, Network, Policy, Psbt, Warning};

use crate::fixtures::{
    build, mixed, p2wpkh, set_sighash, InputSpec, Utxo, Wallet, FEE, IN_AMOUNTS, OUT_AMOUNTS,
};

fn address(spk: &bitcoin::Script, net: bitcoin::Network) -> Option<String> {
    bitcoin::Address::from_script(spk, net)
        .ok()
        .map(|a| a.to_string())
}

#[test]
fn amounts_change_and_foreign_inputs() {
    let w = Wallet::fixed(5);
    let built = mixed(&w);
    let p = plan(&built.ours(), &w.q, Network::Bitcoin, &Policy::default()).unwrap();
    let r = &p.review;

    assert_eq!(r.txid, built.psbt.unsigned_tx.compute_txid().to_string());
    assert_eq!((r.version, r.locktime), (2, 0));
    assert_eq!(r.total_in, IN_AMOUNTS.iter().sum::<u64>());
    assert_eq!(r.total_out, OUT_AMOUNTS.iter().sum::<u64>());
    assert_eq!(r.fee, FEE);
    assert_eq!(r.sent, r.total_out - OUT_AMOUNTS[4]);

    let ours: Vec<bool> = r.inputs.iter().map(|i| i.ours).collect();
    assert_eq!(ours, [true, false, true]);
    for (i, input) in r.inputs.iter().enumerate() {
        assert_eq!(input.index, i);
        assert_eq!(input.amount, IN_AMOUNTS[i]);
        assert_eq!(
            input.prevout,
            built.psbt.unsigned_tx.input[i].previous_output.to_string()
        );
        assert_eq!(
            input.address,
            address(&built.spent[i].script_pubkey, bitcoin::Network::Bitcoin)
        );
    }
    let change: Vec<bool> = r.outputs.iter().map(|o| o.change).collect();
    assert_eq!(change, [false, false, false, false, true, false]);
    for (o, txout) in r.outputs.iter().zip(&built.psbt.unsigned_tx.output) {
        assert_eq!(o.amount, txout.value.to_sat());
        assert_eq!(o.script_hex, hex::encode(txout.script_pubkey.as_bytes()));
        assert_eq!(
            o.address,
            address(&txout.script_pubkey, bitcoin::Network::Bitcoin)
        );
    }
    assert_eq!(r.outputs[5].address, None);

    // Under the default 5 % of 140,000 sat: no HighFee.
    assert_eq!(
        r.warnings,
        [
            Warning::ForeignInputNotFinal { input: 1 },
            Warning::ForeignInputs { inputs: vec![1] },
            Warning::UnknownOutputScript { output: 5 },
        ]
    );

    // Testnet addresses for the same scripts.
    let t = plan(&built.ours(), &w.q, Network::Testnet, &Policy::default()).unwrap();
    for (o, txout) in t.review.outputs.iter().zip(&built.psbt.unsigned_tx.output) {
        assert_eq!(
            o.address,
            address(&txout.script_pubkey, bitcoin::Network::Testnet)
        );
    }
}

#[test]
fn fee_rate_is_fee_over_the_finished_size() {
    let w = Wallet::fixed(5);
    let mut built = mixed(&w);
    built.psbt.inputs[1].final_script_witness = Some(crate::fixtures::p2wpkh_witness());
    let p = plan(&built.ours(), &w.q, Network::Bitcoin, &Policy::default()).unwrap();
    let mut done = built.psbt.clone();
    for i in [0, 2] {
        done.inputs[i].final_script_witness = Some(Witness::from_slice(&[vec![0; 64]]));
    }
    let vsize = done.extract_tx_unchecked_fee_rate().vsize() as u64;
    assert_eq!(p.review.vsize, vsize);
    assert_eq!(p.review.fee_rate_milli, FEE * 1000 / vsize);
    // The foreign input is final: no ForeignInputNotFinal.
    assert_eq!(
        p.review.warnings,
        [
            Warning::ForeignInputs { inputs: vec![1] },
            Warning::UnknownOutputScript { output: 5 },
        ]
    );
}

#[test]
fn high_fee_against_the_policy() {
    let w = Wallet::fixed(5);
    let psbt = mixed(&w).ours();
    let sent = 140_000u64;
    // 5,000 sat is 3.57 % of what is sent.
    for (bp, warned) in [(500, false), (358, false), (357, true), (0, true)] {
        let policy = Policy {
            max_fee_basis_points: bp,
        };
        let r = plan(&psbt, &w.q, Network::Bitcoin, &policy).unwrap().review;
        let high: Vec<&Warning> = r
            .warnings
            .iter()
            .filter(|w| matches!(w, Warning::HighFee { .. }))
            .collect();
        if warned {
            assert_eq!(
                high,
                [&Warning::HighFee {
                    fee: FEE,
                    limit: sent * u64::from(bp) / 10_000
                }],
                "{bp} bp"
            );
        } else {
            assert!(high.is_empty(), "{bp} bp: {high:?}");
        }
    }

    // Nothing leaves the wallet: the share is of all outputs.
    let spec = InputSpec {
        script: w.script(),
        amount: 100_000,
        utxo: Utxo::Witness,
        sequence: 0xffff_fffd,
    };
    let consolidate = build(&w, &[spec], &[(w.script(), 90_000)]).ours();
    let r = plan(&consolidate, &w.q, Network::Bitcoin, &Policy::default())
        .unwrap()
        .review;
    assert_eq!(r.sent, 0);
    assert_eq!(
        r.warnings,
        [Warning::HighFee {
            fee: 10_000,
            limit: 4_500
        }]
    );
}

#[test]
fn unusual_sighash_and_already_final() {
    let w = Wallet::fixed(5);
    let mut built = mixed(&w);
    set_sighash(&mut built.psbt, 0, 0x01);
    let p = plan(&built.ours(), &w.q, Network::Bitcoin, &Policy::default()).unwrap();
    assert_eq!(p.to_sign[0].sighash_type, 0x01);
    assert_eq!(p.review.inputs[0].sighash_type, 0x01);
    assert_eq!(
        p.review.warnings.first(),
        Some(&Warning::UnusualSighash {
            input: 0,
            sighash_type: 0x01
        })
    );
    // Explicit SIGHASH_ALL takes a 65-byte signature: one weight unit more.
    let plain = plan(
        &mixed(&w).ours(),
        &w.q,
        Network::Bitcoin,
        &Policy::default(),
    )
    .unwrap();
    assert!((0..=1).contains(&(p.review.vsize - plain.review.vsize)));

    // Input 0 signed already: not signed again, the other still is.
    let mut psbt = mixed(&w).ours();
    psbt.finalize_key_path(&[(0, vec![3; 64])]).unwrap();
    let p = plan(&psbt, &w.q, Network::Bitcoin, &Policy::default()).unwrap();
    assert_eq!(p.to_sign.iter().map(|s| s.input).collect::<Vec<_>>(), [2]);
    assert!(p
        .review
        .warnings
        .contains(&Warning::AlreadyFinal { input: 0 }));
    assert_eq!(p.review.vsize, plain.review.vsize);
}

#[test]
fn time_locks() {
    let w = Wallet::fixed(5);
    let spec = |sequence| InputSpec {
        script: w.script(),
        amount: 100_000,
        utxo: Utxo::Witness,
        sequence,
    };
    let timelocked = |locktime: u32, sequence: u32| {
        let mut built = build(&w, &[spec(sequence)], &[(p2wpkh(1), 99_000)]);
        built.psbt.unsigned_tx.lock_time = bitcoin::absolute::LockTime::from_consensus(locktime);
        let psbt = Psbt::from_bytes(&built.bytes()).unwrap();
        plan(&psbt, &w.q, Network::Bitcoin, &Policy::default())
            .unwrap()
            .review
            .warnings
            .contains(&Warning::TimeLocked { locktime })
    };
    assert!(timelocked(1_900_000_000, 0xffff_fffd));
    // Not enforced when every sequence is final.
    assert!(!timelocked(1_900_000_000, 0xffff_ffff));
    // Heights are what wallets set anyway (anti fee sniping).
    assert!(!timelocked(880_000, 0xffff_fffd));
}

#[test]
fn display_and_json_show_what_is_signed() {
    let w = Wallet::fixed(5);
    let built = mixed(&w);
    let policy = Policy {
        max_fee_basis_points: 100,
    };
    let r = plan(&built.ours(), &w.q, Network::Bitcoin, &policy)
        .unwrap()
        .review;
    let text = r.to_string();
    println!("{text}");
    for (i, txout) in built.psbt.unsigned_tx.output.iter().enumerate() {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("  #{i} ")) && l.contains("BTC") && !l.contains(':'))
            .unwrap_or_else(|| panic!("no line for output {i}:\n{text}"));
        match address(&txout.script_pubkey, bitcoin::Network::Bitcoin) {
            Some(a) => assert!(line.contains(&a), "{line}"),
            None => assert!(line.contains("script 6a04deadbeef"), "{line}"),
        }
    }
    for needle in [
        "0.00150000 BTC (this wallet)",
        "0.00080000 BTC (not this wallet: left unsigned)",
        "total in 0.00350000 BTC",
        "0.00050000 BTC",
        "0.00205000 BTC (change back to this wallet)",
        "fee 0.00005000 BTC (",
        &format!("vsize {})", r.vsize),
        "locktime 0",
        "warning: input 1 is not this wallet's: left unsigned",
        "warning: the fee 0.00005000 BTC is above this wallet's limit of 0.00001400 BTC",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert_eq!(
        text.lines().filter(|l| l.starts_with("warning: ")).count(),
        4
    );

    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["fee"], 5_000);
    assert_eq!(json["outputs"][4]["change"], true);
    assert_eq!(
        json["warnings"][3],
        serde_json::json!({"warning": "high_fee", "fee": 5000, "limit": 1400})
    );
}

/// How long `plan` takes on a 10-input PSBT (printed; run with
/// `--nocapture` to see it).
#[test]
fn plan_of_ten_inputs_timing() {
    let w = Wallet::fixed(5);
    let inputs: Vec<InputSpec> = (0..10)
        .map(|i| InputSpec {
            script: w.script(),
            amount: 50_000 + i,
            utxo: if i % 2 == 0 {
                Utxo::Witness
            } else {
                Utxo::NonWitness
            },
            sequence: 0xffff_fffd,
        })
        .collect();
    let bytes = build(&w, &inputs, &[(p2wpkh(1), 400_000), (w.script(), 90_000)]).bytes();
    let psbt = Psbt::from_bytes(&bytes).unwrap();
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        let p = plan(&psbt, &w.q, Network::Bitcoin, &Policy::default()).unwrap();
        assert_eq!(p.to_sign.len(), 10);
    }
    let per_plan = start.elapsed() / rounds;
    let start = Instant::now();
    for _ in 0..rounds {
        Psbt::from_bytes(&bytes).unwrap();
    }
    let per_parse = start.elapsed() / rounds;
    println!(
        "plan, 10 inputs: {per_plan:?} each; from_bytes ({} bytes): {per_parse:?} each",
        bytes.len()
    );
}
