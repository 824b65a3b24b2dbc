//! Runs a simulated 2-of-3 DKG on both curves. Built for wasm32 by
//! `scripts/build-wasm-core.sh`, it shows the core links for browsers and
//! what it weighs; natively it prints the group keys.

use mpc_core::sim::{self, SimConfig};
use mpc_protocol::peer::Curve;

fn main() {
    for curve in [Curve::Secp256k1, Curve::Ed25519] {
        let report = sim::run(&SimConfig::new(3, 2, curve, 7));
        match report.agreed_key() {
            Some(key) => println!("{curve}: {key}"),
            None => {
                println!("{curve}: nodes did not agree");
                std::process::exit(1);
            }
        }
    }
}
