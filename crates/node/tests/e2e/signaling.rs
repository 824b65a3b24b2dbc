//! A malicious signaling path: a proxy that rewrites or records what the server relays.

use super::*;

/// A WebSocket proxy between nodes and `mpc-signal` that records every
/// frame and passes what the server sends through `rewrite`: what a
/// malicious signaling server would do (e.g. [`swap_fingerprint`], to sit
/// in the middle).
pub(super) struct Proxy {
    pub(super) url: String,
    frames: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// A server frame as the proxy passes it on.
pub(super) type Rewrite = fn(&str) -> String;

/// The honest proxy.
pub(super) fn unchanged(frame: &str) -> String {
    frame.to_string()
}

impl Proxy {
    pub(super) fn start(upstream: &str, rewrite: Rewrite) -> Proxy {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = frames.clone();
        let upstream = upstream.to_string();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        in_background(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (upstream, log) = (upstream.clone(), log.clone());
                tokio::spawn(async move {
                    let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    // Like a reverse proxy, it keeps the Host the client
                    // asked for: a signed register names that host.
                    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
                    let Ok(mut req) = upstream.as_str().into_client_request() else {
                        return;
                    };
                    let Ok(host) = addr.to_string().parse() else {
                        return;
                    };
                    req.headers_mut().insert("host", host);
                    let Ok((server, _)) = tokio_tungstenite::connect_async(req).await else {
                        return;
                    };
                    let (mut c_tx, mut c_rx) = client.split();
                    let (mut s_tx, mut s_rx) = server.split();
                    let log2 = log.clone();
                    let up = async move {
                        while let Some(Ok(m)) = c_rx.next().await {
                            if let Message::Text(t) = &m {
                                log2.lock().unwrap().push(t.to_string());
                            }
                            if s_tx.send(m).await.is_err() {
                                break;
                            }
                        }
                    };
                    let down = async move {
                        while let Some(Ok(m)) = s_rx.next().await {
                            let m = match m {
                                Message::Text(t) => {
                                    log.lock().unwrap().push(t.to_string());
                                    Message::text(rewrite(&t))
                                }
                                other => other,
                            };
                            if c_tx.send(m).await.is_err() {
                                break;
                            }
                        }
                    };
                    tokio::select! { _ = up => {}, _ = down => {} }
                });
            }
        });
        Proxy {
            url: format!("ws://{addr}/ws"),
            frames,
        }
    }
}

/// Replaces the first byte of every `a=fingerprint:sha-256` value with
/// another: the certificate of a man in the middle.
fn swap_fingerprint(text: &str) -> String {
    const TAG: &str = "a=fingerprint:sha-256 ";
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(TAG) {
        let start = i + TAG.len();
        out.push_str(&rest[..start]);
        let byte = &rest[start..start + 2];
        out.push_str(if byte == "00" { "11" } else { "00" });
        rest = &rest[start + 2..];
    }
    out.push_str(rest);
    out
}

/// Runs `create` for cli1,cli2,cli3 through `url`; returns each output.
fn create_through(url: &str, dir: &Path) -> Vec<(String, Output)> {
    create_through_each([url; 3], dir)
}

/// Runs `create` for cli1,cli2,cli3, each through its own server URL.
pub(super) fn create_through_each(urls: [&str; 3], dir: &Path) -> Vec<(String, Output)> {
    let ids = ["cli1", "cli2", "cli3"];
    let mut joiners = Vec::new();
    for (id, url) in ids.iter().zip(urls).skip(1) {
        let child = wallet_cmd_at(url, dir, id)
            .args(["--json", "join", "--yes", "--timeout-secs", "15"])
            .spawn()
            .unwrap();
        joiners.push((id.to_string(), child));
    }
    wait_registered_at(urls[0], &ids[1..]);
    let creator = wallet_cmd_at(urls[0], dir, ids[0])
        .args(["--json", "create", "--participants", "cli1,cli2,cli3"])
        .args(["--threshold", "2", "--timeout-secs", "15"])
        .spawn()
        .unwrap();
    let mut outs = vec![("cli1".to_string(), finish(creator, Duration::from_secs(60)))];
    for (id, child) in joiners {
        outs.push((id, finish(child, Duration::from_secs(60))));
    }
    outs
}

#[test]
fn swapped_dtls_fingerprints_abort_the_session_at_every_node() {
    let server = Server::start();
    let proxy = Proxy::start(&server.url, swap_fingerprint);
    let dir = tempdir("mitm");
    for (id, out) in create_through(&proxy.url, &dir) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{id} succeeded through a MITM");
        assert!(
            stderr.contains("possible man-in-the-middle on the connection with cli"),
            "{id}: {stderr}"
        );
        // Nobody stored a share.
        assert!(
            wallet_files(&dir.join(&id)).is_empty(),
            "{id} stored a share"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An honest server (requiring signed registrations) relays the whole
/// session: everything it sees is signed, and no share is among it.
#[test]
fn the_server_relays_only_signed_messages_and_no_share() {
    let server = Server::start_with(&["--require-auth"]);
    let proxy = Proxy::start(&server.url, unchanged);
    let dir = tempdir("capture");
    let outs = create_through(&proxy.url, &dir);
    for (id, out) in &outs {
        assert!(
            out.status.success(),
            "{id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let frames = proxy.frames.lock().unwrap().clone();
    let mut relayed = 0;
    for f in &frames {
        let v: Value = serde_json::from_str(f).unwrap();
        if v["type"] != "relay" {
            continue;
        }
        relayed += 1;
        let data = &v["data"];
        assert_ne!(data["type"], "share", "a share went through the server");
        if data["type"] != "ice-candidate" {
            let sig = data["sig"]
                .as_str()
                .unwrap_or_else(|| panic!("unsigned: {f}"));
            assert_eq!(sig.len(), 128, "{f}");
        }
    }
    assert!(relayed > 10, "only {relayed} relayed frames captured");
    // Registration was signed, against the server's challenge.
    assert!(frames.iter().any(|f| f.contains("\"challenge\"")));
    assert!(frames
        .iter()
        .filter(|f| f.contains("\"type\":\"register\""))
        .all(|f| f.contains("\"signature\"")));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// cli2 lost its whole keystore, identity included, and comes back with a
/// new key under the same peer id: cli1 refuses it until it is re-pinned.
#[test]
fn a_peer_with_a_new_identity_key_is_refused_until_re_pinned() {
    let (dir, results) = create_wallet("rekey", 2, 2, "ed25519");
    let key = group_key(&results);
    let old = std::fs::read_to_string(dir.join("cli2/identity.key")).unwrap();
    std::fs::remove_dir_all(dir.join("cli2")).unwrap();
    let server = Server::start();
    let mut joiner = wallet_cmd(&server, &dir, "cli2")
        .args(["--json", "join", "--yes", "--timeout-secs", "10"])
        .spawn()
        .unwrap();
    wait_registered(&server, &["cli2"]);
    let out = wallet_cmd(&server, &dir, "cli1")
        .args(["--json", "sign", "--wallet", &key, "--message-hex", "00"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("identity key of cli2 changed"), "{err}");
    let _ = joiner.kill();
    let _ = joiner.wait();
    assert_ne!(
        std::fs::read_to_string(dir.join("cli2/identity.key")).unwrap(),
        old
    );
    // After checking the new fingerprint out of band, the user re-pins it.
    let new_key = json_of(
        &wallet_cmd(&server, &dir, "cli2")
            .args(["--json", "identity"])
            .output()
            .unwrap(),
    )["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let out = wallet_cmd(&server, &dir, "cli1")
        .args(["trust", "cli2", &new_key])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-pinned cli2"));
    let shown = json_of(
        &wallet_cmd(&server, &dir, "cli1")
            .args(["--json", "identity"])
            .output()
            .unwrap(),
    );
    assert_eq!(shown["known_peers"]["cli2"], new_key.as_str());
    std::fs::remove_dir_all(&dir).unwrap();
}
