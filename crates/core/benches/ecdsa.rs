//! Ethereum wallets (DKLs23) in the core, every party on one thread, so
//! each figure is the sum of all parties' CPU:
//!
//! * key generation: from the start to the last `Finished` (negotiation,
//!   mesh, the DKLs23 rounds, `ready`);
//! * signing a personal_sign message over the open mesh: from the last
//!   `Finished` to the last `Signed`.
//!
//! Ideal network, no delays, every message JSON-encoded and parsed.
//! Run: `cargo bench -p mpc-core --bench ecdsa`. Prints a Markdown table.

use std::time::{Duration, Instant};

use mpc_core::sim::{self, NetConfig, SignPlan, SimConfig};
use mpc_core::Action;
use mpc_protocol::peer::{Curve, SignFormat};

const RUNS: usize = 7;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

fn run(n: usize, t: u16, seed: u64) -> (Duration, Duration) {
    let mut c = SimConfig::new(n, t, Curve::Secp256k1Ecdsa, seed);
    c.net = NetConfig::ideal();
    c.sign = Some(SignPlan {
        format: SignFormat::EthereumMessage,
        ..SignPlan::message((0..usize::from(t)).collect(), b"bench".to_vec())
    });
    let t0 = Instant::now();
    let (mut finished, mut signed) = (0, 0);
    let (mut keygen, mut signing) = (None, None);
    sim::run_observed(&c, &mut |_, a| match a {
        Action::Finished(_) => {
            finished += 1;
            if finished == n {
                keygen = Some(Instant::now());
            }
        }
        Action::Signed(_) => {
            signed += 1;
            if signed == usize::from(t) {
                signing = Some(Instant::now());
            }
        }
        _ => {}
    });
    let k = keygen.expect("wallet created");
    let s = signing.expect("signed");
    (k - t0, s - k)
}

fn main() {
    println!("| wallet | key generation, all parties, ms | per party, ms | signing, all signers, ms | per signer, ms |");
    println!("|---|---:|---:|---:|---:|");
    for (n, t) in [(3usize, 2u16), (5, 3)] {
        let (mut k, mut s) = (Vec::new(), Vec::new());
        for seed in 0..RUNS as u64 {
            let (a, b) = run(n, t, seed + 1);
            k.push(a);
            s.push(b);
        }
        let (k, s) = (median(k), median(s));
        println!(
            "| {t}-of-{n} | {} | {} | {} | {} |",
            ms(k),
            ms(k / n as u32),
            ms(s),
            ms(s / u32::from(t))
        );
    }
}
