//! End-to-end encryption of shares, seen from the wire: nothing a node
//! sends (through the relay or over a channel) holds a share in the clear,
//! and a node that sends one in the clear is refused. Also which keys a
//! node pins, and when.

use mpc_core::sim::{self, Fault, Outcome, SimConfig};
use mpc_core::{AbortReason, Action};
use mpc_protocol::peer::Curve;

/// Every byte every node hands to its driver to send anywhere.
fn capture(cfg: &SimConfig) -> (sim::SimReport, String) {
    let mut wire = String::new();
    let report = sim::run_observed(cfg, &mut |_, a| match a {
        Action::SendSignal(m) => wire.push_str(&m.to_json()),
        Action::SendPeer { msg, .. } => wire.push_str(&msg.to_json()),
        _ => {}
    });
    (report, wire)
}

#[test]
fn no_share_crosses_the_wire_in_the_clear() {
    for (n, t, curve, seed) in [(3, 2, Curve::Secp256k1, 1), (5, 3, Curve::Ed25519, 2)] {
        let (report, wire) = capture(&SimConfig::new(n, t, curve, seed));
        let key = report.agreed_key().expect("the DKG completes");
        // The search sees what is there: the group key is in wallet_created.
        assert!(wire.contains(&key));
        assert_eq!(report.shares_sent.len(), n * (n - 1));
        let raw = wire.as_bytes();
        for share in &report.shares_sent {
            // The whole package, and the secret scalar at its end.
            let scalar = &share[share.len() - 32..];
            for needle in [share.as_slice(), scalar] {
                let lower = hex::encode(needle);
                assert!(!wire.contains(&lower), "a share is on the wire in hex");
                assert!(!wire.contains(&lower.to_uppercase()));
                assert!(
                    !raw.windows(needle.len()).any(|w| w == needle),
                    "a share is on the wire as raw bytes"
                );
            }
        }
    }
}

/// The same search finds shares when a node does send them in the clear.
#[test]
fn the_search_finds_a_plaintext_share() {
    let mut cfg = SimConfig::new(3, 2, Curve::Secp256k1, 1);
    cfg.faults = vec![Fault::PlaintextShares { node: 0 }];
    let (report, wire) = capture(&cfg);
    let found = report
        .shares_sent
        .iter()
        .filter(|s| wire.contains(&hex::encode(s)))
        .count();
    assert_eq!(found, 2, "node01's two shares are on the wire");
}

#[test]
fn a_plaintext_share_is_refused_and_its_sender_named() {
    let mut cfg = SimConfig::new(4, 3, Curve::Secp256k1, 9);
    cfg.faults = vec![Fault::PlaintextShares { node: 1 }];
    let report = sim::run(&cfg);
    for (id, o) in &report.outcomes {
        if id == "node02" {
            continue;
        }
        let Outcome::Aborted(r) = o else {
            panic!("{id}: {o:?}")
        };
        let text = r.to_string();
        let blames = r.culprit() == Some("node02")
            || matches!(r, AbortReason::PeerAborted { reason, .. } if reason.contains("node02"));
        assert!(blames, "{id}: {text}");
        assert!(text.contains("not encrypted"), "{id}: {text}");
    }
}

/// Review finding 2: a proposer can list any key for a third party. Such a
/// key is pinned only when the session completes, that party having
/// signed under it by then; a joiner that accepts pins the proposer's key
/// alone (it signed what the user saw).
#[test]
fn keys_only_the_proposer_vouched_for_are_pinned_when_the_session_completes() {
    fn pins(cfg: &SimConfig) -> Vec<(usize, String)> {
        let mut pins = Vec::new();
        sim::run_observed(cfg, &mut |i, a| {
            if let Action::PinKey { peer, .. } = a {
                pins.push((i, peer.clone()));
            }
        });
        pins
    }
    let mut cfg = SimConfig::new(4, 2, Curve::Ed25519, 9);
    cfg.faults = vec![Fault::Decline {
        node: 3,
        reason: "no".into(),
    }];
    let failed = pins(&cfg);
    assert!(
        failed.iter().all(|(i, p)| *i != 0 && p == "node01"),
        "a failed session pinned a key only the proposer vouched for: {failed:?}"
    );
    let done = pins(&SimConfig::new(4, 2, Curve::Ed25519, 9));
    let mut distinct = done.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!((done.len(), distinct.len()), (12, 12), "{done:?}");
}
