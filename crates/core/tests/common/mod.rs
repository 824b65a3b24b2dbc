//! What the core's integration tests share: nodes with fixed test
//! identities, proposals as an initiator sends them, and simulator plans.
// Each test binary uses its own subset.
#![allow(dead_code)]

pub mod proposals;

use mpc_core::sim::{SignPlan, SimConfig};
use mpc_core::{testing, Config, Event, Node, PublicKey};
use mpc_protocol::peer::{Curve, SessionProposal};
use mpc_protocol::PeerMessage;

/// A node with `id`'s test identity.
pub fn node(id: &str) -> Node {
    node_with(id, |_| {})
}

/// As [`node`], with `set` applied to its config first.
pub fn node_with(id: &str, set: impl FnOnce(&mut Config)) -> Node {
    let mut c = Config::new(id);
    c.identity = Some(testing::identity(id));
    set(&mut c);
    Node::new(c, [7; 32], 0)
}

/// A node that has pinned `pins`, and refuses other keys if `require_pinned`.
pub fn pinned(id: &str, pins: &[(&str, PublicKey)], require_pinned: bool) -> Node {
    node_with(id, |c| {
        for (p, k) in pins {
            c.known_peers.pin(p, *k);
        }
        c.require_pinned = require_pinned;
    })
}

/// A 2-of-n secp256k1 proposal `s1` from `participants[0]`, without keys.
pub fn proposal(participants: &[&str]) -> SessionProposal {
    SessionProposal {
        session_id: "s1".into(),
        total: participants.len() as u16,
        threshold: 2,
        participants: participants.iter().map(|p| p.to_string()).collect(),
        curve: Some("secp256k1".into()),
        initiator: participants.first().map(|p| p.to_string()),
        keys: None,
    }
}

/// `p` listing every participant's test key (or `actual`'s).
pub fn with_keys(mut p: SessionProposal, actual: &[(&str, String)]) -> SessionProposal {
    p.keys = Some(testing::keys(&p.participants, actual));
    p
}

/// `msg` from `from` to `to` through the relay, signed by `from`'s test key.
pub fn relayed(from: &str, to: &str, msg: &PeerMessage) -> Event {
    testing::relayed(from, to, msg.clone())
}

/// A simulation of `n` nodes that signs `message` with `signers` after
/// the DKG.
pub fn sign_plan(
    n: usize,
    t: u16,
    curve: Curve,
    seed: u64,
    signers: Vec<usize>,
    message: &[u8],
) -> SimConfig {
    let mut c = SimConfig::new(n, t, curve, seed);
    c.sign = Some(SignPlan::message(signers, message));
    c
}
