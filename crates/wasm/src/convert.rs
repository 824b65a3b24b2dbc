//! JSON ⇄ core events and actions: the one place the extension's message
//! shapes are defined (see the crate docs for the list).

use mpc_core::{Action, Command, Event, Progress};
use mpc_protocol::peer::Curve;
use mpc_protocol::relay::WebRtcSignal;
use mpc_protocol::signal::ServerMessage;
use mpc_protocol::SignedMessage;
use serde_json::{json, Value};

fn str_of<'a>(v: &'a Value, k: &str) -> Result<&'a str, String> {
    v[k].as_str()
        .ok_or_else(|| format!("event {:?}: {k} missing", v["type"]))
}

/// One JSON event into a core event (`sign` needs the node; see
/// `WasmNode::handle`).
pub fn parse_event(v: &Value) -> Result<Event, String> {
    let kind = v["type"].as_str().ok_or("event without a type")?;
    Ok(match kind {
        "register" => Event::Command(Command::Register),
        "list_peers" => Event::Command(Command::ListPeers),
        "create" => Event::Command(Command::Create {
            session_id: v["session_id"].as_str().map(String::from),
            participants: v["participants"]
                .as_array()
                .ok_or("create: participants missing")?
                .iter()
                .filter_map(|p| p.as_str().map(String::from))
                .collect(),
            threshold: v["threshold"]
                .as_u64()
                .and_then(|t| u16::try_from(t).ok())
                .ok_or("create: threshold missing")?,
            curve: v["curve"]
                .as_str()
                .unwrap_or("secp256k1")
                .parse::<Curve>()?,
        }),
        "cancel" => Event::Command(Command::Cancel {
            session_id: str_of(v, "session_id")?.to_string(),
        }),
        "server" => {
            Event::Signal(ServerMessage::from_json(str_of(v, "text")?).map_err(|e| e.to_string())?)
        }
        "peer" => Event::PeerMessage {
            from: str_of(v, "from")?.to_string(),
            msg: SignedMessage::from_json(str_of(v, "text")?).map_err(|e| e.to_string())?,
        },
        "channel_open" => Event::ChannelOpen(str_of(v, "peer")?.to_string()),
        "channel_closed" => Event::ChannelClosed(str_of(v, "peer")?.to_string()),
        "tick" => Event::Tick(v["now"].as_f64().ok_or("tick: now missing")? as u64),
        "decision" => Event::Decision {
            session_id: str_of(v, "session_id")?.to_string(),
            accept: v["accept"].as_bool().unwrap_or(false),
            reason: v["reason"].as_str().map(String::from),
        },
        "local_signal" => Event::LocalSignal {
            to: str_of(v, "to")?.to_string(),
            signal: serde_json::from_value::<WebRtcSignal>(v["signal"].clone())
                .map_err(|e| format!("local_signal: {e}"))?,
        },
        other => return Err(format!("unknown event type {other:?}")),
    })
}

/// One core action as JSON.
pub fn action_json(a: Action) -> Value {
    match a {
        Action::SendSignal(m) => json!({"type": "send_signal", "text": m.to_json()}),
        Action::SendPeer { to, msg } => {
            json!({"type": "send_peer", "to": to, "text": msg.to_json()})
        }
        Action::Connect { peer, offerer } => {
            json!({"type": "connect", "peer": peer, "offerer": offerer})
        }
        Action::WebRtcSignal { from, signal } => {
            json!({"type": "webrtc_signal", "from": from, "signal": signal})
        }
        Action::PinKey { peer, key } => json!({
            "type": "pin_key", "peer": peer, "key": key.to_hex(), "fingerprint": key.fingerprint(),
        }),
        Action::Progress(p) => progress_json(p),
        Action::Finished(w) => {
            let addresses = mpc_address::addresses(
                w.curve.as_str(),
                &w.group_public_key,
                mpc_address::Network::default(),
            )
            .ok();
            json!({
                "type": "finished",
                "session_id": w.session_id,
                "group_public_key": w.group_public_key,
                "curve": w.curve.as_str(),
                "threshold": w.threshold,
                "participants": w.participants,
                "addresses": addresses,
            })
        }
        Action::WalletConfirmed {
            session_id,
            group_public_key,
        } => json!({"type": "wallet_confirmed", "session_id": session_id,
                    "group_public_key": group_public_key}),
        Action::WalletUnconfirmed {
            session_id,
            group_public_key,
            missing,
            reason,
        } => json!({"type": "wallet_unconfirmed", "session_id": session_id,
                    "group_public_key": group_public_key, "missing": missing,
                    "reason": reason.to_string()}),
        // The page seals a refreshed share (`seal_finished`) and keeps it
        // pending until `refresh_confirmed`.
        Action::Refreshed(w) => json!({
            "type": "refreshed", "session_id": w.session_id,
            "group_public_key": w.group_public_key, "generation": w.generation,
            "participants": w.participants,
        }),
        Action::RefreshConfirmed {
            session_id,
            group_public_key,
            generation,
        } => json!({"type": "refresh_confirmed", "session_id": session_id,
                    "group_public_key": group_public_key, "generation": generation}),
        Action::RefreshUnconfirmed {
            session_id,
            group_public_key,
            generation,
            missing,
            reason,
        } => json!({"type": "refresh_unconfirmed", "session_id": session_id,
                    "group_public_key": group_public_key, "generation": generation,
                    "missing": missing, "reason": reason.to_string()}),
        Action::ParticipantAdded(w) => json!({
            "type": "participant_added", "session_id": w.session_id,
            "group_public_key": w.group_public_key, "participants": w.participants,
        }),
        Action::Repaired {
            session_id,
            group_public_key,
            target,
        } => json!({"type": "repaired", "session_id": session_id,
                    "group_public_key": group_public_key, "target": target}),
        Action::Signed(s) => json!({
            "type": "signed",
            "session_id": s.session_id,
            "signature": hex::encode(&s.signature),
            "group_public_key": s.group_public_key,
            "message_hex": hex::encode(&s.message),
            "format": s.format,
            "signers": s.signers,
            "transaction": s.transaction,
        }),
        Action::Aborted { session_id, reason } => json!({
            "type": "aborted", "session_id": session_id, "reason": reason.to_string(),
        }),
        Action::Rejected {
            from,
            session_id,
            reason,
        } => json!({"type": "rejected", "from": from, "session_id": session_id, "reason": reason}),
    }
}

fn progress_json(p: Progress) -> Value {
    let text = p.to_string();
    let mut v = match p {
        Progress::Registered { peer_id } => json!({"event": "registered", "peer_id": peer_id}),
        Progress::Peers { peers } => json!({"event": "peers", "peers": peers}),
        Progress::ServerError { error } => json!({"event": "server_error", "error": error}),
        Progress::NeedsDecision {
            from,
            proposal,
            new_keys,
        } => json!({
            "event": "needs_decision", "from": from, "proposal": proposal,
            "new_keys": new_keys.iter().map(|k| json!({"peer": k.peer, "fingerprint": k.fingerprint()})).collect::<Vec<_>>(),
        }),
        Progress::NeedsSignDecision {
            from,
            proposal,
            new_keys,
            review,
        } => json!({
            "event": "needs_sign_decision", "from": from, "proposal": proposal,
            // Decoded by the core, shown as it is: never re-parsed in JS.
            "review": review, "review_text": review.as_ref().map(|r| r.to_string()),
            "new_keys": new_keys.iter().map(|k| json!({"peer": k.peer, "fingerprint": k.fingerprint()})).collect::<Vec<_>>(),
        }),
        Progress::Accepted {
            session_id,
            peer,
            accepted,
            total,
        } => {
            json!({"event": "accepted", "session_id": session_id, "peer": peer, "accepted": accepted, "total": total})
        }
        Progress::Mesh {
            session_id,
            open,
            needed,
        } => json!({"event": "mesh", "session_id": session_id, "open": open, "needed": needed}),
        Progress::MeshReady {
            session_id,
            ready,
            needed,
        } => {
            json!({"event": "mesh_ready", "session_id": session_id, "ready": ready, "needed": needed})
        }
        Progress::DkgRound { session_id, round } => {
            json!({"event": "dkg_round", "session_id": session_id, "round": round})
        }
        Progress::PeerStored { session_id, peer } => {
            json!({"event": "peer_stored", "session_id": session_id, "peer": peer})
        }
        Progress::SignRound { session_id, round } => {
            json!({"event": "sign_round", "session_id": session_id, "round": round})
        }
        Progress::SignatureVerified { session_id } => {
            json!({"event": "signature_verified", "session_id": session_id})
        }
        Progress::PeerSigned { session_id, peer } => {
            json!({"event": "peer_signed", "session_id": session_id, "peer": peer})
        }
        Progress::NeedsRefreshDecision {
            from,
            proposal,
            new_keys,
        } => json!({
            "event": "needs_refresh_decision", "from": from, "proposal": proposal,
            "new_keys": new_keys.iter().map(|k| json!({"peer": k.peer, "fingerprint": k.fingerprint()})).collect::<Vec<_>>(),
        }),
        Progress::NeedsRepairDecision {
            from,
            proposal,
            new_keys,
        } => json!({
            "event": "needs_repair_decision", "from": from, "proposal": proposal,
            "new_keys": new_keys.iter().map(|k| json!({"peer": k.peer, "fingerprint": k.fingerprint()})).collect::<Vec<_>>(),
        }),
        Progress::PeerCommitted { session_id, peer } => {
            json!({"event": "peer_committed", "session_id": session_id, "peer": peer})
        }
    };
    v["type"] = json!("progress");
    v["text"] = json!(text);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_and_bad_ones_say_why() {
        let e = parse_event(&json!({"type": "create", "participants": ["a", "b"], "threshold": 2}))
            .unwrap();
        assert!(matches!(
            e,
            Event::Command(Command::Create {
                threshold: 2,
                curve: Curve::Secp256k1,
                ..
            })
        ));
        let e = parse_event(&json!({"type": "local_signal", "to": "b",
            "signal": {"type": "ice-candidate", "candidate": "candidate:1", "sdpMid": "0", "sdpMLineIndex": 0}}))
        .unwrap();
        assert!(matches!(e, Event::LocalSignal { .. }));
        assert!(
            parse_event(&json!({"type": "create", "participants": ["a"]}))
                .unwrap_err()
                .contains("threshold")
        );
        assert!(parse_event(&json!({"type": "warp"}))
            .unwrap_err()
            .contains("warp"));
    }
}
