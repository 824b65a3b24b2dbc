//! Threshold signing cost, 2-of-3, both curves:
//!
//! * `core session`: a whole signing session driven through the `Node`s of
//!   the simulator over the mesh the DKG left open (ideal network, no
//!   delays): `sign_proposal` → `session_response`s → `mesh_ready` →
//!   `sign_commitment` → `signature_share` → aggregation + verification at
//!   every signer → `signature_created`, every message JSON-encoded and
//!   parsed. Timed from the `Command::Sign` to the last signer's `Signed`,
//!   all parties on one thread (so it is the sum of every party's CPU).
//! * `raw frost`: commit, sign, aggregate and verify for both signers with
//!   bare frost calls, as the floor.
//! * `psbt, 10 inputs`: the core session signing a 10-input PSBT that pays
//!   the wallet on every input: each signer parses it, derives the ten
//!   BIP341 sighashes, and the session makes ten FROST signatures; each
//!   signer then finalizes the PSBT and extracts the transaction.
//!
//! Run: `cargo bench -p mpc-core --bench sign` (release profile). Prints a
//! Markdown table for BENCHMARKS.md.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mpc_core::sim::{self, NetConfig, SignPlan, SimConfig};
use mpc_core::{Action, KeyPackage, PublicKeyPackage, WalletResult};
use mpc_protocol::peer::{Curve, SignFormat};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const RUNS: usize = 50;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// One simulated DKG + signing; returns the signing part's wall time and
/// the wallets.
fn core_session(curve: Curve, seed: u64, plan: SignPlan) -> (Duration, Vec<WalletResult>) {
    let mut c = SimConfig::new(3, 2, curve, seed);
    c.net = NetConfig::ideal();
    c.sign = Some(plan);
    let mut finished = 0;
    let mut signed = 0;
    let mut start = None;
    let mut end = None;
    let report = sim::run_observed(&c, &mut |_, a| match a {
        Action::Finished(_) => {
            finished += 1;
            if finished == 3 {
                start = Some(Instant::now());
            }
        }
        Action::Signed(_) => {
            signed += 1;
            if signed == 2 {
                end = Some(Instant::now());
            }
        }
        _ => {}
    });
    assert_eq!(report.signatures().len(), 2, "{:?}", report.sign_outcomes);
    let wallets = report
        .outcomes
        .values()
        .filter_map(|o| match o {
            sim::Outcome::Finished(w) => Some((**w).clone()),
            _ => None,
        })
        .collect();
    (end.unwrap() - start.unwrap(), wallets)
}

/// A PSBT spending ten outputs of the wallet's own address, with change.
fn psbt10(group_key: &str) -> Vec<u8> {
    use bitcoin::hashes::Hash;
    use bitcoin::key::{TweakedPublicKey, XOnlyPublicKey};
    use bitcoin::{Amount, OutPoint, ScriptBuf, TxIn, TxOut, Txid};
    let q = XOnlyPublicKey::from_slice(&hex::decode(&group_key[2..]).unwrap()).unwrap();
    let spk = ScriptBuf::new_p2tr_tweaked(TweakedPublicKey::dangerous_assume_tweaked(q));
    let tx = bitcoin::Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: (0..10u8)
            .map(|i| TxIn {
                previous_output: OutPoint::new(Txid::from_byte_array([i + 1; 32]), 0),
                ..Default::default()
            })
            .collect(),
        output: vec![
            TxOut {
                value: Amount::from_sat(500_000),
                script_pubkey: ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::all_zeros()),
            },
            TxOut {
                value: Amount::from_sat(495_000),
                script_pubkey: spk.clone(),
            },
        ],
    };
    let mut psbt = bitcoin::psbt::Psbt::from_unsigned_tx(tx).unwrap();
    for input in &mut psbt.inputs {
        input.witness_utxo = Some(TxOut {
            value: Amount::from_sat(100_000),
            script_pubkey: spk.clone(),
        });
    }
    psbt.serialize()
}

macro_rules! raw_sign {
    ($frost:ident, $keys:expr, $public:expr, $rng:expr) => {{
        let start = Instant::now();
        let msg = [0x5au8; 32];
        let mut nonces = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        for k in $keys {
            let (n, c) = $frost::round1::commit(k.signing_share(), $rng);
            nonces.insert(*k.identifier(), n);
            commitments.insert(*k.identifier(), c);
        }
        let package = $frost::SigningPackage::new(commitments, &msg);
        let mut shares = BTreeMap::new();
        for k in $keys {
            let s = $frost::round2::sign(&package, &nonces[k.identifier()], k).unwrap();
            shares.insert(*k.identifier(), s);
        }
        // Every signer aggregates and verifies for itself.
        for _ in $keys {
            let sig = $frost::aggregate(&package, &shares, $public).unwrap();
            $public.verifying_key().verify(&msg, &sig).unwrap();
        }
        start.elapsed()
    }};
}

fn raw(wallets: &[WalletResult], rng: &mut ChaCha20Rng) -> Duration {
    let two = &wallets[..2];
    match (&two[0].public_key_package, two[0].key_package.expose()) {
        (PublicKeyPackage::Secp256k1(p), KeyPackage::Secp256k1(_)) => {
            let keys: Vec<_> = two
                .iter()
                .map(|w| match w.key_package.expose() {
                    KeyPackage::Secp256k1(k) => k.clone(),
                    _ => unreachable!(),
                })
                .collect();
            raw_sign!(frost_secp256k1_tr, &keys, p, rng)
        }
        (PublicKeyPackage::Ed25519(p), KeyPackage::Ed25519(_)) => {
            let keys: Vec<_> = two
                .iter()
                .map(|w| match w.key_package.expose() {
                    KeyPackage::Ed25519(k) => k.clone(),
                    _ => unreachable!(),
                })
                .collect();
            raw_sign!(frost_ed25519, &keys, p, rng)
        }
        _ => unreachable!(),
    }
}

fn main() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    println!("| 2-of-3, {RUNS} runs | core session, median ms | raw frost, median ms |");
    println!("|---|---|---|");
    for curve in [Curve::Secp256k1, Curve::Ed25519] {
        let mut core = Vec::new();
        let mut bare = Vec::new();
        for seed in 0..RUNS as u64 {
            let plan = SignPlan::message(vec![0, 1], vec![0x5a; 32]);
            let (d, wallets) = core_session(curve, seed + 1, plan);
            core.push(d);
            bare.push(raw(&wallets, &mut rng));
        }
        println!("| {curve} | {} | {} |", ms(median(core)), ms(median(bare)));
    }
    let psbt: Vec<Duration> = (0..RUNS as u64)
        .map(|seed| {
            let plan = SignPlan {
                format: SignFormat::BitcoinPsbt,
                build: Some(psbt10),
                ..SignPlan::message(vec![0, 1], Vec::new())
            };
            core_session(Curve::Secp256k1, seed + 1, plan).0
        })
        .collect();
    println!(
        "| secp256k1, PSBT with 10 inputs | {} | — |",
        ms(median(psbt))
    );
}
