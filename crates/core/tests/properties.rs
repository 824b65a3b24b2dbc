//! Properties over random networks (issue 19): the simulator's knobs
//! (reordering and duplication on the relay, loss, delays on every path)
//! drawn by proptest, on both FROST curves and 2 to 7 nodes. Whatever the
//! network does, every node that ends with a wallet ends with the same one,
//! and a network that loses nothing lets every node finish. And whatever
//! one peer sends, what a node holds for later stays within its caps. A
//! failing case is shrunk by proptest and printed with its inputs.
#![cfg(not(target_arch = "wasm32"))]

use mpc_core::sim::{self, NetConfig, SimConfig};
use mpc_core::{testing, Config, Event, Node};
use mpc_protocol::peer::{Commitment, Curve, MeshReady, SessionResponse};
use mpc_protocol::PeerMessage;
use proptest::prelude::*;

fn network() -> impl Strategy<Value = NetConfig> {
    (
        1u64..200,
        0.0f64..0.5,
        prop_oneof![Just(0.0f64), 0.0f64..0.2],
        1u64..60,
        1u64..80,
        0u64..300,
    )
        .prop_map(|(relay, dup, loss, channel, connect, decide)| NetConfig {
            relay_delay_ms: (1, relay),
            relay_duplicate: dup,
            relay_loss: loss,
            channel_delay_ms: (1, channel),
            connect_delay_ms: (1, connect),
            decision_delay_ms: (0, decide),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn no_split_whatever_the_network_does(
        seed in any::<u64>(),
        n in 2usize..=7,
        t_below_n in 0u16..4,
        ed25519 in any::<bool>(),
        net in network(),
    ) {
        let t = (n as u16).saturating_sub(t_below_n).max(2).min(n as u16);
        let curve = if ed25519 { Curve::Ed25519 } else { Curve::Secp256k1 };
        let mut c = SimConfig::new(n, t, curve, seed);
        let lossless = net.relay_loss == 0.0;
        c.net = net;
        c.timeout_ms = 3_000;
        let r = sim::run(&c);
        let finished = r.group_keys().len();
        if finished > 0 {
            prop_assert!(r.agreed_key().is_some(), "split: {:?}", r.outcomes);
        }
        if lossless {
            prop_assert_eq!(finished, n, "a lossless network left nodes unfinished: {:?}", r.outcomes);
        }
    }
}

/// cli2, which knows the participants' keys, and whether it has `s`'s
/// proposal from cli1.
fn target(proposed: bool) -> Node {
    let ids: Vec<String> = vec!["cli1".into(), "cli2".into(), "chrome1".into()];
    testing::proposed_to("cli2", &ids, proposed.then_some("s"), [7; 32])
}

/// What cli1 may send, signed with its key: answers and round messages,
/// for `s` or for sessions nobody proposed, relayed or over a channel.
fn from_cli1() -> impl Strategy<Value = Event> {
    let session = prop_oneof![Just("s".to_string()), "[a-z]{1,12}"];
    (session, 0u8..4, any::<bool>(), "[0-9a-f]{0,64}").prop_map(|(sid, kind, relay, data)| {
        let msg = match kind {
            0 => PeerMessage::SessionResponse(SessionResponse {
                session_id: sid,
                accepted: true,
                reason: None,
                proposal_hash: None,
            }),
            1 => PeerMessage::Commitment(Commitment {
                data,
                session_id: Some(sid),
                enc_key: None,
            }),
            2 => PeerMessage::MeshReady(MeshReady { session_id: sid }),
            _ => return Event::ChannelOpen("cli1".into()),
        };
        if relay {
            testing::relayed("cli1", "cli2", msg)
        } else {
            Event::PeerMessage {
                from: "cli1".into(),
                msg: testing::signed(&testing::identity("cli1"), "cli1", "cli2", msg),
            }
        }
    })
}

/// The most a node holds for later: the pending buffer (`max_pending`)
/// and its session's early messages and signals (4 per peer and 8 more,
/// each).
const BOUND: usize = 1024 + 2 * (4 * 2 + 8);

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn what_one_peer_sends_is_held_within_a_bound(
        proposed in any::<bool>(),
        events in proptest::collection::vec(from_cli1(), 1..3000),
    ) {
        let mut n = target(proposed);
        for (i, e) in events.into_iter().enumerate() {
            n.handle(e);
            prop_assert!(n.buffered() <= BOUND, "{} held after {} events", n.buffered(), i + 1);
        }
    }
}

/// The bound is reached, not only respected: a flood of answers for
/// sessions nobody proposed fills the pending buffer to its cap and no
/// further.
#[test]
fn a_flood_for_unknown_sessions_stops_at_the_cap() {
    let mut n = target(false);
    for i in 0..3000 {
        n.handle(testing::relayed(
            "cli1",
            "cli2",
            PeerMessage::SessionResponse(SessionResponse {
                session_id: format!("x{i}"),
                accepted: true,
                reason: None,
                proposal_hash: None,
            }),
        ));
    }
    assert_eq!(n.buffered(), Config::new("cli2").max_pending);
}
