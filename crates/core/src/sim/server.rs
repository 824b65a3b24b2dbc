//! The model signaling server, as `mpc-signal` behaves towards a node: a
//! challenge on connect, `register` (checked against that challenge, the
//! key then published), `list_peers` (the nodes still there, with their
//! keys) and `relay` to a node that is still there. Delivery itself, with
//! its delays, duplicates and losses, is the [`Network`]'s.

use std::collections::{BTreeMap, BTreeSet};

use mpc_protocol::signal::{ClientMessage, ServerMessage};
use rand_core::RngCore;

use super::network::{Item, Network};
use super::report::Path;
use crate::node::Event;

/// The host the model server answers to: what a node's signed
/// `register` names, as with `mpc-signal`.
pub(super) const HOST: &str = "signal.sim:8787";

#[derive(Default)]
pub(super) struct Server {
    /// Per-connection challenges, by node index.
    challenges: Vec<[u8; 32]>,
    /// Identity keys of the nodes that registered, by peer id.
    registered_keys: BTreeMap<String, String>,
}

impl Server {
    /// Node `i` connects (nodes connect in index order): as `mpc-signal`
    /// does, it gets a challenge to sign.
    pub(super) fn connect(&mut self, i: usize, net: &mut Network) {
        let mut nonce = [0u8; 32];
        net.rng().fill_bytes(&mut nonce);
        self.challenges.push(nonce);
        let challenge = ServerMessage::Challenge {
            nonce: hex::encode(nonce),
        };
        net.schedule(0, i, Item::Event(Event::Signal(challenge)));
    }

    /// Node `i` sends `msg`; `gone` are the nodes that vanished, whom the
    /// server no longer lists or relays to.
    pub(super) fn handle(
        &mut self,
        i: usize,
        msg: ClientMessage,
        net: &mut Network,
        gone: &BTreeSet<usize>,
    ) {
        let me = net.id(i).to_string();
        let text = msg.to_json();
        match msg {
            ClientMessage::Register {
                peer_id,
                pubkey,
                signature,
            } => {
                net.record(&me, "server", Path::Server, text);
                let verified = self.challenges.get(i).is_some_and(|challenge| {
                    let statement = mpc_identity::statement::register_at(challenge, &peer_id, HOST);
                    pubkey
                        .as_deref()
                        .and_then(|k| k.parse::<mpc_identity::PublicKey>().ok())
                        .zip(signature.as_deref())
                        .is_some_and(|(k, sig)| k.verify_hex(&statement, sig).is_ok())
                });
                if !verified {
                    let err = ServerMessage::error("register: signature does not verify");
                    reply(i, err, net);
                    return;
                }
                if let Some(k) = pubkey {
                    self.registered_keys.insert(peer_id.clone(), k);
                }
                let reply_msg = ServerMessage::Registered {
                    peer_id,
                    ice_servers: Vec::new(),
                };
                reply(i, reply_msg, net);
            }
            ClientMessage::ListPeers { .. } => {
                net.record(&me, "server", Path::Server, text);
                let peers = net
                    .ids()
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| !gone.contains(j))
                    .map(|(_, id)| id.clone())
                    .collect();
                let keys = Some(self.registered_keys.clone());
                reply(i, ServerMessage::Peers { peers, keys }, net);
            }
            ClientMessage::Relay { to, data } => {
                net.record(&me, &to, Path::Relay, data.get().to_string());
                let Some(j) = net.lookup(&to).filter(|j| !gone.contains(j)) else {
                    let err = ServerMessage::error(format!("unknown peer \"{to}\""));
                    reply(i, err, net);
                    return;
                };
                net.relay(i, j, data);
            }
        }
    }
}

/// The server answers node `i` (logged as sent by `server`).
fn reply(i: usize, msg: ServerMessage, net: &mut Network) {
    let me = net.id(i).to_string();
    net.record("server", &me, Path::Server, msg.to_json());
    net.send_signal(i, msg);
}
