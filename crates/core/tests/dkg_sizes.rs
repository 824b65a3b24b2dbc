//! Full sessions through the simulator, under relay reordering and
//! duplication: every node ends with the same group key.

use mpc_core::sim::{self, Outcome, SimConfig};
use mpc_protocol::peer::Curve;

#[track_caller]
fn agree(n: usize, t: u16, curve: Curve, seed: u64) {
    let report = sim::run(&SimConfig::new(n, t, curve, seed));
    assert_eq!(
        report.stats.undeliverable, 0,
        "core sent on a closed channel"
    );
    assert_eq!(report.stats.parse_errors, 0);
    for (id, o) in &report.outcomes {
        assert!(matches!(o, Outcome::Finished(_)), "{id}: {o:?}");
    }
    let key = report
        .agreed_key()
        .unwrap_or_else(|| panic!("nodes disagree: {:?}", report.group_keys()));
    let expected_len = match curve {
        Curve::Secp256k1 | Curve::Secp256k1Ecdsa => 66,
        Curve::Ed25519 => 64,
    };
    assert_eq!(key.len(), expected_len, "{key}");
    // Every node holds a distinct share with the right identifier and threshold.
    let mut ids: Vec<u16> = report
        .outcomes
        .values()
        .map(|o| match o {
            Outcome::Finished(w) => {
                assert_eq!(w.threshold, t);
                assert_eq!(w.participants.len(), n);
                w.identifier
            }
            _ => unreachable!(),
        })
        .collect();
    ids.sort();
    assert_eq!(ids, (1..=n as u16).collect::<Vec<_>>());
}

macro_rules! sizes {
    ($($name:ident: $n:expr, $t:expr, $curve:expr, $seed:expr;)*) => {
        $(
            #[test]
            fn $name() {
                agree($n, $t, $curve, $seed);
            }
        )*
    };
}

sizes! {
    secp256k1_2_of_3: 3, 2, Curve::Secp256k1, 1;
    ed25519_2_of_3: 3, 2, Curve::Ed25519, 2;
    secp256k1_3_of_5: 5, 3, Curve::Secp256k1, 3;
    ed25519_3_of_5: 5, 3, Curve::Ed25519, 4;
    secp256k1_7_of_10: 10, 7, Curve::Secp256k1, 5;
    ed25519_7_of_10: 10, 7, Curve::Ed25519, 6;
    secp256k1_14_of_20: 20, 14, Curve::Secp256k1, 7;
    ed25519_14_of_20: 20, 14, Curve::Ed25519, 8;
    // The slowest two (about 50 x 49 share verifications each); they run in
    // every `cargo test`, in parallel with the rest.
    secp256k1_34_of_50: 50, 34, Curve::Secp256k1, 9;
    ed25519_34_of_50: 50, 34, Curve::Ed25519, 10;
}

/// The same seed gives the same run: same session id, same keys.
#[test]
fn runs_are_deterministic() {
    let a = sim::run(&SimConfig::new(4, 2, Curve::Ed25519, 42));
    let b = sim::run(&SimConfig::new(4, 2, Curve::Ed25519, 42));
    let c = sim::run(&SimConfig::new(4, 2, Curve::Ed25519, 43));
    assert_eq!(a.session_id, b.session_id);
    assert_eq!(a.agreed_key(), b.agreed_key());
    assert!(a.agreed_key().is_some());
    assert_ne!(a.agreed_key(), c.agreed_key());
}

/// Many seeds of the adverse network (reordering, duplication): always one
/// key, never a message on a closed channel.
#[test]
fn many_seeds_of_reordering_and_duplication() {
    for seed in 100..140 {
        let mut cfg = SimConfig::new(4, 3, Curve::Secp256k1, seed);
        cfg.net.relay_duplicate = 0.3;
        let report = sim::run(&cfg);
        assert_eq!(report.stats.undeliverable, 0, "seed {seed}");
        assert!(
            report.agreed_key().is_some(),
            "seed {seed}: {:?}",
            report.outcomes
        );
    }
}

/// Lost relay messages can only end in a clean abort at every node, or in
/// the same key at every node; never a split.
#[test]
fn relay_loss_ends_cleanly() {
    let mut aborted_runs = 0;
    for seed in 200..230 {
        let mut cfg = SimConfig::new(4, 2, Curve::Ed25519, seed);
        cfg.net.relay_loss = 0.05;
        cfg.timeout_ms = 2_000;
        let report = sim::run(&cfg);
        let finished = report.group_keys().len();
        let aborted = report.aborts().len();
        // A node whose proposal was lost never had a session: it stays
        // idle (Pending here), which is fine. Everyone else ends.
        assert!(
            finished + aborted >= 3,
            "seed {seed}: {:?}",
            report.outcomes
        );
        if finished > 0 {
            assert!(
                report.agreed_key().is_some(),
                "seed {seed}: split {:?}",
                report.outcomes
            );
        } else {
            aborted_runs += 1;
        }
    }
    assert!(aborted_runs > 0, "5% loss should break some runs");
}
