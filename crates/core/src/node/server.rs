//! The signaling server as this node sees it: the registration challenge
//! and a signed `register`, the keys it advertises (never trusted on their
//! own), and what arrives through its relay.

use std::collections::BTreeMap;

use mpc_identity::{statement, PublicKey};
use mpc_protocol::relay::WebRtcSignal;
use mpc_protocol::signal::{ClientMessage, ServerMessage};
use mpc_protocol::RelayData;

use super::api::{Action, Progress};
use super::phase::mesh::forward_signal;
use super::session::{Stage, Via};
use super::Node;

/// What this node knows of its signaling server.
#[derive(Default)]
pub(super) struct ServerState {
    /// Keys the server advertises (never trusted on their own).
    pub advertised: BTreeMap<String, PublicKey>,
    /// The server's registration challenge, once it arrived, and whether a
    /// `register` was signed over it (each connection brings a new one).
    challenge: Option<Vec<u8>>,
    challenge_used: bool,
    /// `register` was asked for before the challenge arrived.
    pub register_wanted: bool,
}

impl Node {
    /// Sends `register`, signed with the identity key over the server's
    /// challenge, once it is asked for and a challenge not signed yet has
    /// arrived (the server sends a fresh one first thing on every
    /// connection, so after a reconnect this waits for the new one).
    pub(super) fn try_register(&mut self, out: &mut Vec<Action>) {
        let srv = &mut self.server;
        if !srv.register_wanted {
            return;
        }
        let Some(nonce) = srv.challenge.as_ref().filter(|_| !srv.challenge_used) else {
            return;
        };
        let peer_id = self.config.peer_id.clone();
        let signed = match &self.config.server_host {
            Some(host) => statement::register_at(nonce, &peer_id, host),
            None => statement::register(nonce, &peer_id),
        };
        let sig = self.identity.sign(&signed);
        let msg = ClientMessage::Register {
            peer_id,
            pubkey: Some(self.identity.public_key().to_hex()),
            signature: Some(sig.to_hex()),
        };
        srv.register_wanted = false;
        srv.challenge_used = true;
        out.push(Action::SendSignal(msg));
    }

    pub(super) fn on_signal(&mut self, s: ServerMessage, out: &mut Vec<Action>) {
        match s {
            ServerMessage::Registered { peer_id, .. } => {
                out.push(Action::Progress(Progress::Registered { peer_id }))
            }
            ServerMessage::Challenge { nonce } => match hex::decode(&nonce) {
                Ok(nonce) => {
                    self.server.challenge = Some(nonce);
                    self.server.challenge_used = false;
                    self.try_register(out);
                }
                Err(_) => out.push(Action::Progress(Progress::ServerError {
                    error: "the server's challenge is not hex".into(),
                })),
            },
            ServerMessage::Peers { peers, keys } => {
                let listed_keys = keys.is_some();
                if let Some(keys) = keys {
                    // Unparseable keys are dropped: such a peer has none.
                    self.server.advertised = keys
                        .iter()
                        .filter_map(|(p, k)| Some((p.clone(), k.parse().ok()?)))
                        .collect();
                }
                out.push(Action::Progress(Progress::Peers { peers }));
                if listed_keys {
                    self.run_parked(out);
                }
            }
            ServerMessage::Error { error } => {
                out.push(Action::Progress(Progress::ServerError { error }))
            }
            ServerMessage::PeerJoined { peer_id, pubkey } => {
                match pubkey.and_then(|k| k.parse().ok()) {
                    Some(k) => self.server.advertised.insert(peer_id, k),
                    None => self.server.advertised.remove(&peer_id),
                };
            }
            ServerMessage::PeerLeft { peer_id } => {
                self.server.advertised.remove(&peer_id);
            }
            ServerMessage::Relay { from, data } => match RelayData::from_json(data.get()) {
                Err(e) => out.push(Action::Rejected {
                    from: Some(from),
                    session_id: None,
                    reason: format!("unreadable relay data: {e}"),
                }),
                Ok(RelayData::Peer(msg)) => self.on_peer_message(from, msg, Via::Relay, out),
                Ok(RelayData::WebRtc { signal, sig }) => self.on_webrtc(from, signal, sig, out),
            },
        }
    }

    /// A peer's offer, answer or candidate: passed on once the mesh phase
    /// began, kept until then.
    fn on_webrtc(
        &mut self,
        from: String,
        signal: WebRtcSignal,
        sig: Option<String>,
        out: &mut Vec<Action>,
    ) {
        let (in_mesh, room) = match &self.session {
            Some(s) if s.common.is_other(&from) => (
                s.stage() >= Stage::Mesh,
                s.common.early_signals.len() < s.common.early_limit(),
            ),
            _ => {
                out.push(Action::Rejected {
                    from: Some(from),
                    session_id: None,
                    reason: "WebRTC signal from a peer in no active session with this node".into(),
                });
                return;
            }
        };
        if in_mesh {
            self.step(out, |s, cx| {
                forward_signal(&s.common, cx, from, signal, sig)
            });
        } else if let (true, Some(s)) = (room, self.session.as_mut()) {
            s.common.early_signals.push((from, signal, sig));
        } else {
            out.push(Action::Rejected {
                from: Some(from),
                session_id: self.session.as_ref().map(|s| s.id().to_string()),
                reason: "too many early WebRTC signals".into(),
            });
        }
    }
}
