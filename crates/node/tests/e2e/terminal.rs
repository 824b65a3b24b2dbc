//! What peers, the server and files say reaches the terminal escaped (issue 13 #5).

use super::signaling::Proxy;
use super::*;

/// A line that would erase the one before it and print a fake result.
pub(super) const FAKE_LINE: &str = "\x1b[2K\rwallet created: bc1pattacker";
/// [`FAKE_LINE`] as the CLI must print it.
pub(super) const FAKE_LINE_ESCAPED: &str = "\\x1b[2K\\rwallet created: bc1pattacker";

/// Text that reached a terminal: it must hold no escape or carriage return.
#[track_caller]
pub(super) fn assert_inert(what: &str, text: &str) {
    assert!(
        !text.contains(['\x1b', '\r', '\u{9b}']),
        "{what} carries raw control characters: {text:?}"
    );
}

/// `out` failed, its stderr saying `said` then [`FAKE_LINE`] escaped, with
/// no raw control character anywhere.
#[track_caller]
fn assert_failed_saying_escaped(out: &Output, said: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("{said}{FAKE_LINE_ESCAPED}")), "{err}");
    assert_inert("stderr", &err);
}

/// A peer that is not `mpc-wallet`: the core, driven by hand over the
/// WebSocket, declines the first proposal with `reason`, whatever it holds.
fn hostile_decliner(url: &str, id: &str, reason: &str) -> std::thread::JoinHandle<()> {
    use futures_util::{SinkExt, StreamExt};
    use mpc_core::{Action, Command, Config, Event, Node, Progress};
    use mpc_protocol::signal::ServerMessage;
    use tokio_tungstenite::tungstenite::Message;
    let (url, id, reason) = (url.to_string(), id.to_string(), reason.to_string());
    in_background(async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let mut config = Config::new(id);
        config.identity = Some(mpc_core::IdentityKey::from_seed([0x66; 32]));
        config.server_host = mpc_protocol::signal::server_host(&url);
        let mut node = Node::with_os_rng(config, 0).unwrap();
        let mut events = vec![Event::Command(Command::Register)];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut done = false;
            while let Some(event) = events.pop() {
                for action in node.handle(event) {
                    match action {
                        Action::SendSignal(m) => ws.send(Message::text(m.to_json())).await.unwrap(),
                        Action::Progress(Progress::NeedsDecision { proposal, .. }) => {
                            events.push(Event::Decision {
                                session_id: proposal.session_id,
                                accept: false,
                                reason: Some(reason.clone()),
                            })
                        }
                        Action::Aborted { .. } => done = true,
                        _ => {}
                    }
                }
            }
            if done {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let _ = ws.close(None).await;
                return;
            }
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    events.push(Event::Signal(ServerMessage::from_json(&t).unwrap()))
                }
                Ok(Some(Ok(_))) => {}
                _ => return,
            }
        }
    })
}

#[test]
fn a_peers_decline_reason_reaches_the_terminal_escaped() {
    let server = Server::start();
    let dir = tempdir("inject-peer");
    let peer = hostile_decliner(&server.url, "mallory", FAKE_LINE);
    wait_registered(&server, &["mallory"]);
    let out = wallet_cmd(&server, &dir, "cli1")
        .args([
            "create",
            "--participants",
            "cli1,mallory",
            "--threshold",
            "2",
        ])
        .output()
        .unwrap();
    peer.join().unwrap();
    assert_failed_saying_escaped(&out, "mallory declined: ");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The server lies: a peer id with an escape in it in the plain peer list,
/// and an error that draws a fake result instead of the keys `create`
/// asks for.
fn hostile_server(frame: &str) -> String {
    let mut v: Value = serde_json::from_str(frame).unwrap();
    if v["type"] == "peers" {
        if v["keys"].is_object() {
            return serde_json::json!({ "type": "error", "error": FAKE_LINE }).to_string();
        }
        v["peers"]
            .as_array_mut()
            .unwrap()
            .push("\x1b[31mred".into());
    }
    v.to_string()
}

#[test]
fn server_errors_and_peer_ids_reach_the_terminal_escaped() {
    let server = Server::start();
    let proxy = Proxy::start(&server.url, hostile_server);
    let dir = tempdir("inject-server");
    let out = wallet_cmd_at(&proxy.url, &dir, "cli1")
        .arg("peers")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(listed.lines().any(|l| l == "\\x1b[31mred"), "{listed}");
    assert_inert("stdout", &listed);
    let out = wallet_cmd_at(&proxy.url, &dir, "cli1")
        .args(["create", "--participants", "cli1,cli2", "--threshold", "2"])
        .output()
        .unwrap();
    assert_failed_saying_escaped(&out, "signaling server: ");
    std::fs::remove_dir_all(&dir).unwrap();
}
