//! Golden flows: the simulator's message flow, outcomes and rejections for
//! a few seeded runs, checked in under `tests/fixtures/flows/`. Any change
//! in message order, content or reason text shows up as a diff in review.
//! `UPDATE_FLOWS=1 cargo test -p mpc-core --test flows` writes them anew.

use std::path::PathBuf;

use mpc_core::sim::{self, Fault, NetConfig, Outcome, SimConfig, VanishAt};
use mpc_protocol::peer::Curve;

mod common;

fn outcome(o: &Outcome) -> String {
    match o {
        Outcome::Finished(w) => format!("finished {}", w.group_public_key),
        Outcome::Signed(s) => format!("signed {}", hex::encode(&s.signature)),
        Outcome::Aborted(r) => format!("aborted: {r}"),
        Outcome::Vanished => "vanished".into(),
        Outcome::Pending => "pending".into(),
    }
}

/// The flow, then each node's outcome(s) and what it rejected.
fn render(cfg: &SimConfig) -> String {
    let mut cfg = cfg.clone();
    cfg.record = true;
    let r = sim::run(&cfg);
    let mut s = r.render_flow();
    s.push_str("\n# outcomes\n");
    for (id, o) in &r.outcomes {
        s.push_str(&format!("{id}: {}\n", outcome(o)));
    }
    for (id, c) in &r.confirmations {
        s.push_str(&format!("{id} (confirmation): {c:?}\n"));
    }
    for (id, o) in &r.sign_outcomes {
        s.push_str(&format!("{id} (sign): {}\n", outcome(o)));
    }
    s.push_str("\n# rejections\n");
    for (id, reasons) in &r.rejections {
        for reason in reasons {
            s.push_str(&format!("{id}: {reason}\n"));
        }
    }
    s
}

fn cases() -> Vec<(&'static str, SimConfig)> {
    let mut cases = Vec::new();
    for (name, curve) in [("secp256k1", Curve::Secp256k1), ("ed25519", Curve::Ed25519)] {
        for seed in [1, 2] {
            let c = common::sign_plan(3, 2, curve, seed, vec![1, 2], b"golden");
            cases.push((leak(format!("keygen_sign_{name}_seed{seed}")), c));
        }
    }
    let mut c = SimConfig::new(4, 3, Curve::Secp256k1, 3);
    c.faults = vec![Fault::Equivocate {
        node: 1,
        to: vec![2],
    }];
    cases.push(("equivocation", c));
    let mut c = common::sign_plan(3, 2, Curve::Ed25519, 4, vec![0, 1, 2], b"golden");
    c.faults = vec![Fault::BadSignatureShare { node: 2 }];
    cases.push(("bad_signature_share", c));
    let mut c = common::sign_plan(3, 2, Curve::Secp256k1, 9, vec![0, 1, 2], b"golden");
    c.faults = vec![Fault::SignEquivocate {
        node: 1,
        to: vec![2],
    }];
    cases.push(("sign_equivocation", c));
    let mut c = SimConfig::new(4, 2, Curve::Secp256k1, 5);
    c.faults = vec![Fault::BadShare { from: 1, to: 3 }];
    cases.push(("bad_share", c));
    let mut c = SimConfig::new(3, 2, Curve::Secp256k1, 6);
    c.faults = vec![Fault::Decline {
        node: 2,
        reason: "not today".into(),
    }];
    cases.push(("decline", c));
    let mut c = SimConfig::new(3, 2, Curve::Ed25519, 7);
    c.faults = vec![Fault::Vanish {
        node: 1,
        at: VanishAt::Sending("share"),
        close_channels: false,
    }];
    cases.push(("vanish_timeout", c));
    // Review finding 4: a node that dies after its ready never stores its
    // share; the others finish, but their wallets stay unconfirmed.
    let mut c = SimConfig::new(3, 2, Curve::Secp256k1, 10);
    c.faults = vec![Fault::Vanish {
        node: 2,
        at: VanishAt::Sending("wallet_created"),
        close_channels: true,
    }];
    cases.push(("vanish_after_ready", c));
    let mut c = common::sign_plan(3, 2, Curve::Secp256k1, 8, vec![0, 2], b"golden");
    c.noise = 12;
    c.net = NetConfig::adverse();
    cases.push(("noise", c));
    cases
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn flows_match_the_golden_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flows");
    let update = std::env::var_os("UPDATE_FLOWS").is_some();
    let mut differ = Vec::new();
    for (name, cfg) in cases() {
        let got = render(&cfg);
        let path = dir.join(format!("{name}.txt"));
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_FLOWS=1 writes it)", path.display()));
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .map_or(got.lines().count().min(want.lines().count()), |i| i);
            differ.push(format!("{name} (first difference at line {})", line + 1));
        }
    }
    assert!(
        differ.is_empty(),
        "flows differ from tests/fixtures/flows: {differ:?}; review, then UPDATE_FLOWS=1"
    );
}

/// Same config, same bytes: the golden files can only be stable if a run
/// is a pure function of its config.
#[test]
fn a_run_is_deterministic() {
    let (_, cfg) = cases().swap_remove(0);
    assert_eq!(render(&cfg), render(&cfg));
}
