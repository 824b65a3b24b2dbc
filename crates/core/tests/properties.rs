//! Properties over random networks (issue 19): the simulator's knobs
//! (reordering and duplication on the relay, loss, delays on every path)
//! drawn by proptest, on both FROST curves and 2 to 7 nodes. Whatever the
//! network does, every node that ends with a wallet ends with the same one,
//! and a network that loses nothing lets every node finish. A failing case
//! is shrunk by proptest and printed with its seed.
#![cfg(not(target_arch = "wasm32"))]

use mpc_core::sim::{self, NetConfig, SimConfig};
use mpc_protocol::peer::Curve;
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
