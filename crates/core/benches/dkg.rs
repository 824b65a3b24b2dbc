//! Core DKG overhead: a whole session driven through `Node`s (negotiation,
//! mesh, JSON encoding of every message, transcript hashes) against bare
//! frost `part1`/`part2`/`part3` calls, secp256k1-tr, CPU per party.
//!
//! Run: `cargo bench -p mpc-core --bench dkg` (release profile). Prints a
//! Markdown table for BENCHMARKS.md.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use frost_secp256k1_tr as frost;
use mpc_core::sim::{self, NetConfig, SimConfig};
use mpc_protocol::peer::Curve;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Every party's part1, part2 and part3 in one thread, as a trusted
/// in-memory loop would do it: the floor for any DKG implementation.
/// With `wire`, every package is serialized and parsed back, as it must be
/// between real nodes (point decompression is most of that cost).
fn raw_dkg(n: u16, t: u16, seed: u64, wire: bool) -> Duration {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let start = Instant::now();
    let ids: Vec<frost::Identifier> = (1..=n).map(|i| i.try_into().unwrap()).collect();
    let mut r1_secrets = BTreeMap::new();
    let mut r1_packages = BTreeMap::new();
    for id in &ids {
        let (s, p) = frost::keys::dkg::part1(*id, n, t, &mut rng).unwrap();
        r1_secrets.insert(*id, s);
        r1_packages.insert(*id, p);
    }
    let mut r1_views = BTreeMap::new();
    for id in &ids {
        let mut received = BTreeMap::new();
        for (from, p) in &r1_packages {
            if from != id {
                let p = if wire {
                    frost::keys::dkg::round1::Package::deserialize(&p.serialize().unwrap()).unwrap()
                } else {
                    p.clone()
                };
                received.insert(*from, p);
            }
        }
        r1_views.insert(*id, received);
    }
    let mut r2_secrets = BTreeMap::new();
    let mut r2_for: BTreeMap<frost::Identifier, BTreeMap<frost::Identifier, _>> = BTreeMap::new();
    for id in &ids {
        let (s, out) =
            frost::keys::dkg::part2(r1_secrets.remove(id).unwrap(), &r1_views[id]).unwrap();
        r2_secrets.insert(*id, s);
        for (to, p) in out {
            let p = if wire {
                frost::keys::dkg::round2::Package::deserialize(&p.serialize().unwrap()).unwrap()
            } else {
                p
            };
            r2_for.entry(to).or_default().insert(*id, p);
        }
    }
    let mut key = None;
    for id in &ids {
        let (_, public) =
            frost::keys::dkg::part3(&r2_secrets[id], &r1_views[id], &r2_for[id]).unwrap();
        key = Some(public.verifying_key().serialize().unwrap());
    }
    let elapsed = start.elapsed();
    assert!(key.is_some());
    elapsed
}

fn core_dkg(n: usize, t: u16, seed: u64) -> Duration {
    let mut cfg = SimConfig::new(n, t, Curve::Secp256k1, seed);
    cfg.net = NetConfig::ideal();
    let start = Instant::now();
    let report = sim::run(&cfg);
    let elapsed = start.elapsed();
    assert!(report.agreed_key().is_some());
    elapsed
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    // Accept and ignore cargo bench's own flags (e.g. --bench).
    let runs: usize = std::env::var("DKG_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    println!("| parties | threshold | raw frost ms/party | raw + wire encoding ms/party | core ms/party | core / raw | core / (raw + wire) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (n, t) in [(3u16, 2u16), (10, 7), (20, 14)] {
        // Warm up caches and the allocator once per size.
        raw_dkg(n, t, 0, false);
        core_dkg(n.into(), t, 0);
        let (mut raw, mut wire, mut core) = (Vec::new(), Vec::new(), Vec::new());
        // Interleave so machine noise hits all three alike.
        for i in 0..runs as u64 {
            raw.push(raw_dkg(n, t, i + 1, false));
            wire.push(raw_dkg(n, t, i + 1, true));
            core.push(core_dkg(n.into(), t, i + 1));
        }
        let raw_ms = median_ms(raw) / f64::from(n);
        let wire_ms = median_ms(wire) / f64::from(n);
        let core_ms = median_ms(core) / f64::from(n);
        println!(
            "| {n} | {t} | {raw_ms:.2} | {wire_ms:.2} | {core_ms:.2} | {:.2}x | {:.2}x |",
            core_ms / raw_ms,
            core_ms / wire_ms
        );
    }
}
