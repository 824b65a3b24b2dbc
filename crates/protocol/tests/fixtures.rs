//! Every JSON example in the spec, and every message we add, parses into its
//! typed message and serializes back to equal JSON.

use mpc_protocol::peer::AppMessage;
use mpc_protocol::{ClientMessage, PeerMessage, PeersPage, RelayData, ServerMessage};
use serde_json::Value;

fn lines(name: &str) -> Vec<String> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    assert!(!lines.is_empty(), "{path} is empty");
    lines
}

fn round_trip<T>(
    files: &[&str],
    parse: impl Fn(&str) -> T,
    render: impl Fn(&T) -> String,
) -> usize {
    let mut n = 0;
    for file in files {
        for line in lines(file) {
            let typed = parse(&line);
            let back: Value = serde_json::from_str(&render(&typed)).unwrap();
            let orig: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(back, orig, "{file}: {line}");
            n += 1;
        }
    }
    n
}

#[test]
fn signal_client_messages() {
    let n = round_trip(
        &["spec-signal-client.jsonl", "ours-signal-client.jsonl"],
        |l| ClientMessage::from_json(l).unwrap_or_else(|e| panic!("{l}: {e}")),
        ClientMessage::to_json,
    );
    assert_eq!(n, 16);
}

#[test]
fn signal_server_messages() {
    let n = round_trip(
        &["spec-signal-server.jsonl", "ours-signal-server.jsonl"],
        |l| ServerMessage::from_json(l).unwrap_or_else(|e| panic!("{l}: {e}")),
        ServerMessage::to_json,
    );
    assert_eq!(n, 16);
}

#[test]
fn peers_pages_keep_their_cursor() {
    let n = round_trip(
        &["ours-peers-page.jsonl"],
        |l| PeersPage::from_json(l).unwrap_or_else(|e| panic!("{l}: {e}")),
        PeersPage::to_json,
    );
    assert_eq!(n, 3);
}

#[test]
fn peer_messages() {
    let n = round_trip(
        &["spec-peer.jsonl", "ours-peer.jsonl"],
        |l| PeerMessage::from_json(l).unwrap_or_else(|e| panic!("{l}: {e}")),
        PeerMessage::to_json,
    );
    assert_eq!(n, 40);
}

#[test]
fn relay_data() {
    let n = round_trip(
        &["spec-relay-data.jsonl", "ours-relay-data.jsonl"],
        |l| RelayData::from_json(l).unwrap_or_else(|e| panic!("{l}: {e}")),
        RelayData::to_json,
    );
    assert_eq!(n, 6);
}

#[test]
fn generic_application_messages() {
    let n = round_trip(
        &["spec-app-message.jsonl"],
        |l| serde_json::from_str::<AppMessage>(l).unwrap_or_else(|e| panic!("{l}: {e}")),
        |m| serde_json::to_string(m).unwrap(),
    );
    assert_eq!(n, 2);
}

/// Every typed peer message also reads as the generic spec shape.
#[test]
fn typed_peer_messages_have_the_generic_shape() {
    for file in ["spec-peer.jsonl", "ours-peer.jsonl"] {
        for line in lines(file) {
            let typed = PeerMessage::from_json(&line).unwrap();
            let generic: AppMessage = serde_json::from_str(&typed.to_json()).unwrap();
            assert_eq!(generic.msg_type, typed.msg_type());
            assert!(generic.payload.is_object());
        }
    }
}
