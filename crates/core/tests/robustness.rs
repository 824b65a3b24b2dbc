//! Hostile and random input: a node never panics, never leaks a secret
//! into Debug output, and a session survives a stranger's garbage.

use mpc_core::sim::{self, garbage, Outcome, SimConfig};
use mpc_core::{testing, Action, Event};
use mpc_protocol::peer::Curve;
use mpc_protocol::signal::{ClientMessage, ServerMessage};
use mpc_protocol::{PeerMessage, RelayData, SignedMessage};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Thousands of random events, in every state a participant passes through
/// before the mesh: no panic, and nothing but a decline goes back out.
#[test]
fn random_garbage_never_panics() {
    let ids: Vec<String> = vec!["cli1".into(), "cli2".into(), "chrome1".into()];
    for seed in 0..40u64 {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let proposed = (seed % 2 == 0).then_some("s");
        let mut n = testing::proposed_to("cli2", &ids, proposed, [seed as u8; 32]);
        for step in 0..300u64 {
            let mut e = garbage(&mut rng, Some("s"), &ids);
            // Also impersonate real participants, not only mallory.
            if rng.next_u64() % 3 == 0 {
                let who = ids[(rng.next_u64() % 3) as usize].clone();
                e = match e {
                    Event::PeerMessage { msg, .. } => Event::PeerMessage { from: who, msg },
                    Event::Signal(ServerMessage::Relay { data, .. }) => {
                        Event::Signal(ServerMessage::Relay { from: who, data })
                    }
                    Event::ChannelOpen(_) => Event::ChannelOpen(who),
                    other => other,
                };
            }
            if step % 50 == 0 {
                e = Event::Tick(step * 100);
            }
            for a in n.handle(e) {
                if let Action::SendSignal(ClientMessage::Relay { data, .. }) = &a {
                    let kind = RelayData::from_json(data.get()).unwrap();
                    assert!(
                        !matches!(
                            kind,
                            RelayData::Peer(SignedMessage {
                                msg: PeerMessage::Share(_),
                                ..
                            })
                        ),
                        "a share went to the relay"
                    );
                }
            }
        }
    }
}

/// A stranger throws garbage at every node during a real session; the
/// session still completes with one key.
#[test]
fn a_session_survives_a_strangers_noise() {
    for (seed, curve) in [(21, Curve::Secp256k1), (22, Curve::Ed25519)] {
        let mut cfg = SimConfig::new(4, 3, curve, seed);
        cfg.noise = 400;
        let report = sim::run(&cfg);
        assert!(report.agreed_key().is_some(), "{:?}", report.outcomes);
        let rejected: usize = report.rejections.values().map(Vec::len).sum();
        assert!(
            rejected > 100,
            "the noise should have been seen and rejected ({rejected})"
        );
    }
}

/// No Debug rendering of any action, including the finished wallet, holds
/// a share that was sent or the node's own signing share.
#[test]
fn secrets_never_reach_debug_output() {
    let mut debug = String::new();
    let mut secrets: Vec<String> = Vec::new();
    let report = sim::run_observed(&SimConfig::new(3, 2, Curve::Secp256k1, 5), &mut |_, a| {
        if let Action::SendPeer {
            msg:
                SignedMessage {
                    msg: PeerMessage::Share(s),
                    ..
                },
            ..
        } = a
        {
            secrets.push(s.data.clone());
        }
        debug.push_str(&format!("{a:?}\n"));
    });
    for o in report.outcomes.values() {
        let Outcome::Finished(w) = o else {
            panic!("{o:?}")
        };
        let mpc_core::KeyPackage::Secp256k1(k) = w.key_package.expose() else {
            panic!()
        };
        secrets.push(hex::encode(k.signing_share().serialize()));
        debug.push_str(&format!("{w:?}\n{:?}\n", w.key_package));
    }
    assert_eq!(secrets.len(), 6 + 3);
    assert!(debug.contains("SecretKeyPackage(secp256k1, <redacted>)"));
    for s in &secrets {
        assert!(s.len() >= 64);
        assert!(!debug.contains(&s[..32]), "secret leaked into Debug output");
    }
    // The recorded flow redacts shares too.
    let mut cfg = SimConfig::new(3, 2, Curve::Ed25519, 5);
    cfg.record = true;
    let flow = sim::run(&cfg).render_flow();
    assert!(flow.contains("<secret share"), "{flow}");
}
