//! Helpers for tests that play a peer by hand: fixed identity keys per
//! name, and messages signed the way a real node signs them.

use std::collections::BTreeMap;

use mpc_identity::{statement, IdentityKey};
use mpc_protocol::signal::{RawJson, ServerMessage};
use mpc_protocol::{PeerMessage, RelayData, SignedMessage};
use sha2::{Digest, Sha256};

use crate::node::Event;

/// The identity key a test gives `peer`: a fixed function of its name.
pub fn identity(peer: &str) -> IdentityKey {
    IdentityKey::from_seed(Sha256::digest(format!("test identity {peer}")).into())
}

/// Hex keys for `participants`, [`identity`]'s except where `actual` says.
pub fn keys(participants: &[String], actual: &[(&str, String)]) -> BTreeMap<String, String> {
    participants
        .iter()
        .map(|p| {
            let k = actual
                .iter()
                .find(|(a, _)| a == p)
                .map(|(_, k)| k.clone())
                .unwrap_or_else(|| identity(p).public_key().to_hex());
            (p.clone(), k)
        })
        .collect()
}

/// `msg` signed by `key` as sent from `from` to `to`.
pub fn signed(key: &IdentityKey, from: &str, to: &str, msg: PeerMessage) -> SignedMessage {
    let sig = key.sign(&statement::peer_message(from, to, &msg.to_json()));
    SignedMessage {
        msg,
        sig: Some(sig.to_hex()),
    }
}

/// `msg` from `from` to `to`, signed with `from`'s test identity, as the
/// relay delivers it.
pub fn relayed(from: &str, to: &str, msg: PeerMessage) -> Event {
    relayed_signed(from, signed(&identity(from), from, to, msg))
}

/// A signed (or unsigned) message as the relay delivers it.
pub fn relayed_signed(from: &str, msg: SignedMessage) -> Event {
    Event::Signal(ServerMessage::Relay {
        from: from.into(),
        data: RawJson::from_value(&RelayData::Peer(msg)),
    })
}

/// A node `me` (with its test identity) that, if `session_id` is given, has
/// just received `participants[0]`'s proposal of a 2-of-n key generation
/// under it, naming every participant's test key.
pub fn proposed_to(
    me: &str,
    participants: &[String],
    session_id: Option<&str>,
    seed: [u8; 32],
) -> crate::Node {
    let mut c = crate::Config::new(me);
    c.identity = Some(identity(me));
    let mut n = crate::Node::new(c, seed, 0);
    if let (Some(sid), Some(proposer)) = (session_id, participants.first()) {
        let p = mpc_protocol::peer::SessionProposal {
            session_id: sid.into(),
            total: participants.len() as u16,
            threshold: 2,
            participants: participants.to_vec(),
            curve: None,
            initiator: None,
            keys: Some(keys(participants, &[])),
        };
        n.handle(relayed(proposer, me, PeerMessage::SessionProposal(p)));
    }
    n
}
