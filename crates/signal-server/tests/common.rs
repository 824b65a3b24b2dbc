//! A real WebSocket client for the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mpc_identity::{statement, IdentityKey};
use mpc_protocol::{PeersPage, ServerMessage};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const WAIT: Duration = Duration::from_secs(5);

/// What the reader task saw.
#[derive(Debug)]
pub enum Event {
    Msg(ServerMessage),
    Closed(Option<CloseFrame>),
}

/// A client whose reader runs in the background (so it answers pings),
/// handing every frame to the test in order. It has already read the
/// server's `challenge` (the first frame); [`Client::nonce`] returns it.
pub struct Client {
    sink: futures_util::stream::SplitSink<Ws, Message>,
    events: mpsc::UnboundedReceiver<Event>,
    reader: tokio::task::JoinHandle<()>,
    nonce: String,
    /// The server's host as written in the URL: what a signed `register`
    /// names.
    host: String,
}

/// Dropping a client drops its TCP connection (no close frame), like a
/// crashed or unplugged node.
impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

pub async fn connect_raw(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url)
        .await
        .expect("connect")
        .0
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        Client::from_ws(connect_raw(url).await, url).await
    }

    /// Wraps a WebSocket open to `url` and reads the challenge.
    pub async fn from_ws(ws: Ws, url: &str) -> Client {
        let (sink, mut stream) = ws.split();
        let (tx, events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(frame) = stream.next().await {
                match frame {
                    Ok(Message::Text(t)) => {
                        let m = ServerMessage::from_json(&t)
                            .unwrap_or_else(|e| panic!("server sent unparseable {t}: {e}"));
                        let _ = tx.send(Event::Msg(m));
                    }
                    Ok(Message::Close(f)) => {
                        let _ = tx.send(Event::Closed(f));
                        return;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(Event::Closed(None));
        });
        let mut c = Client {
            sink,
            events,
            reader,
            nonce: String::new(),
            host: host_of(url),
        };
        match c.recv().await {
            ServerMessage::Challenge { nonce } => c.nonce = nonce,
            other => panic!("expected the challenge first, got {other:?}"),
        }
        c
    }

    /// The challenge nonce as the server sent it (hex).
    pub fn nonce_hex(&self) -> &str {
        &self.nonce
    }

    /// The challenge nonce's bytes: what a signed `register` signs.
    pub fn nonce(&self) -> Vec<u8> {
        hex::decode(&self.nonce).expect("challenge nonce is hex")
    }

    /// The server's host, as a signed `register` names it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// A `register` for `peer_id` signed by `key` over this connection's
    /// challenge and the server's host.
    pub fn signed_register(&self, peer_id: &str, key: &IdentityKey) -> String {
        let sig = key.sign(&statement::register_at(&self.nonce(), peer_id, &self.host));
        register_json(peer_id, &key.public_key().to_hex(), &sig.to_hex())
    }

    /// Registers and checks the `registered` answer.
    pub async fn register(url: &str, peer_id: &str) -> Client {
        let mut c = Client::connect(url).await;
        c.send(&format!(r#"{{"type":"register","peer_id":"{peer_id}"}}"#))
            .await;
        match c.recv().await {
            ServerMessage::Registered { peer_id: id, .. } => assert_eq!(id, peer_id),
            other => panic!("expected registered, got {other:?}"),
        }
        c
    }

    /// Connects, registers with a signature by `key`, and checks the
    /// `registered` answer.
    pub async fn register_signed(url: &str, peer_id: &str, key: &IdentityKey) -> Client {
        let mut c = Client::connect(url).await;
        let msg = c.signed_register(peer_id, key);
        c.send(&msg).await;
        match c.recv().await {
            ServerMessage::Registered { peer_id: id, .. } => assert_eq!(id, peer_id),
            other => panic!("expected registered, got {other:?}"),
        }
        c
    }

    /// Closes politely with a close frame.
    pub async fn close(mut self) {
        let _ = self.sink.send(Message::Close(None)).await;
        let _ = self.expect_close().await;
    }

    pub async fn send(&mut self, text: &str) {
        self.sink
            .send(Message::text(text))
            .await
            .expect("send text");
    }

    pub async fn send_frame(&mut self, msg: Message) {
        self.sink.send(msg).await.expect("send frame");
    }

    pub async fn event(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("timed out waiting for the server")
            .expect("reader ended")
    }

    pub async fn recv(&mut self) -> ServerMessage {
        match self.event().await {
            Event::Msg(m) => m,
            Event::Closed(f) => panic!("connection closed: {f:?}"),
        }
    }

    /// Expects an `error` whose text contains `needle`.
    pub async fn expect_error(&mut self, needle: &str) -> String {
        match self.recv().await {
            ServerMessage::Error { error } => {
                assert!(error.contains(needle), "error {error:?} lacks {needle:?}");
                error
            }
            other => panic!("expected an error containing {needle:?}, got {other:?}"),
        }
    }

    /// Skips messages until the connection closes; returns the close code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            if let Event::Closed(f) = self.event().await {
                return f.map(|f| f.code.into());
            }
        }
    }

    /// [`Client::expect_close`] without a time limit of its own.
    pub async fn expect_close_within(&mut self) -> Option<u16> {
        loop {
            match self.events.recv().await {
                Some(Event::Closed(f)) => return f.map(|f| f.code.into()),
                Some(Event::Msg(_)) => {}
                None => return None,
            }
        }
    }

    /// Nothing arrives within `d`.
    pub async fn expect_silence(&mut self, d: Duration) {
        if let Ok(Some(e)) = tokio::time::timeout(d, self.events.recv()).await {
            panic!("expected nothing, got {e:?}");
        }
    }

    pub async fn peers(&mut self) -> Vec<String> {
        self.send(r#"{"type":"list_peers"}"#).await;
        match self.recv().await {
            ServerMessage::Peers { peers, .. } => peers,
            other => panic!("expected peers, got {other:?}"),
        }
    }
}

/// `{"type":"register","peer_id":…,"pubkey":…,"signature":…}`
pub fn register_json(peer_id: &str, pubkey: &str, signature: &str) -> String {
    format!(
        r#"{{"type":"register","peer_id":"{peer_id}","pubkey":"{pubkey}","signature":"{signature}"}}"#
    )
}

/// A deterministic identity key for tests.
pub fn key(seed: u8) -> IdentityKey {
    IdentityKey::from_seed([seed; 32])
}

/// A plain HTTP/1.1 GET on loopback: (status, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.expect("tcp connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("http timeout")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Connects and returns the HTTP status of a refused upgrade.
pub async fn refused_status(url: &str, origin: Option<&str>) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("Origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Ok(_) => panic!("upgrade was accepted"),
        Err(e) => panic!("unexpected error {e}"),
    }
}

pub async fn connect_with_origin(url: &str, origin: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("Origin", origin.parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .expect("connect")
        .0
}

/// Starts the binary on port 0 and reads the port from its first line.
pub fn start_binary(args: &[&str], env: &[(&str, &str)]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mpc-signal"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn mpc-signal");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line was {line:?}"))
        .to_string();
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );
    (child, format!("ws://{addr}/ws"))
}

/// Connects from `source` (a loopback address such as 127.0.0.2), so the
/// server counts it as another client address.
pub async fn connect_from(
    url: &str,
    source: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let addr: std::net::SocketAddr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .parse()
        .unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .map(|(ws, _)| ws)
}

/// The next text frame of a raw connection (pings are answered on the
/// way); panics after [`WAIT`] or if the connection ends.
pub async fn next_text(ws: &mut Ws) -> String {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("timed out waiting for the server");
        match frame {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(Message::Close(f))) => panic!("connection closed: {f:?}"),
            Some(Ok(_)) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
}

/// The host (and port) of a `ws://host:port/path` URL, as a signed
/// `register` names it.
pub fn host_of(url: &str) -> String {
    mpc_protocol::signal::server_host(url).expect("a server URL with a host")
}

/// A 64-character peer id: `prefix` and `i`, zero-padded.
pub fn long_id(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:0>width$}", width = 64 - prefix.len())
}

/// The identity key of the `i`-th of many test peers.
pub fn many_key(i: usize) -> IdentityKey {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    IdentityKey::from_seed(seed)
}

/// Registers each of `ids` with a signature (by [`many_key`] of its
/// index) on its own raw connection, spread over `urls`, a few at a time.
/// The connections are returned open and unread: idle peers.
pub async fn register_many(urls: &[String], ids: &[String]) -> Vec<Ws> {
    use futures_util::stream::{self, StreamExt as _};
    let jobs = ids.iter().enumerate().map(|(i, id)| {
        let url = urls[i % urls.len()].clone();
        let id = id.clone();
        async move {
            let mut ws = connect_raw(&url).await;
            let nonce = match ServerMessage::from_json(&next_text(&mut ws).await).unwrap() {
                ServerMessage::Challenge { nonce } => hex::decode(nonce).unwrap(),
                other => panic!("{other:?}"),
            };
            let key = many_key(i);
            let sig = key.sign(&statement::register_at(&nonce, &id, &host_of(&url)));
            let msg = register_json(&id, &key.public_key().to_hex(), &sig.to_hex());
            ws.send(Message::text(msg)).await.unwrap();
            let reply = next_text(&mut ws).await;
            assert!(
                reply.starts_with(r#"{"type":"registered""#),
                "{id}: {reply}"
            );
            ws
        }
    });
    stream::iter(jobs).buffered(16).collect().await
}

/// Sends `list_peers` with `query` (the JSON fields after the type) on
/// `ws` and pages through every answer by `next`: the peers, the keys, and
/// the size of the largest frame.
pub async fn list_all(ws: &mut Ws, query: &str) -> (Vec<String>, BTreeMap<String, String>, usize) {
    let (mut peers, mut keys, mut largest) = (Vec::new(), BTreeMap::new(), 0);
    let mut after: Option<String> = None;
    loop {
        let cursor = after
            .map(|a| format!(r#","after":"{a}""#))
            .unwrap_or_default();
        ws.send(Message::text(format!(
            r#"{{"type":"list_peers"{query}{cursor}}}"#
        )))
        .await
        .unwrap();
        let text = next_text(ws).await;
        largest = largest.max(text.len());
        let page = PeersPage::from_json(&text).unwrap_or_else(|e| panic!("{e}: {text:.200}"));
        peers.extend(page.peers);
        keys.extend(page.keys.unwrap_or_default());
        match page.next {
            Some(next) => after = Some(next),
            None => return (peers, keys, largest),
        }
    }
}

/// The review's scenario: 5,000 peers registered with keys and 64-character
/// ids, spread over `urls` (one instance, or several of a cluster). A
/// proposer's filtered `list_peers` (what `create` and `sign` send) lists
/// just its participants with their keys; the whole list, with keys and
/// without, comes in pages; no frame exceeds the 64 KiB frame limit.
pub async fn a_large_keyed_list_stays_within_the_frame_limit(urls: &[String]) {
    const N: usize = 5000;
    const LIMIT: usize = 65536;
    let ids: Vec<String> = (0..N).map(|i| long_id("peer-", i)).collect();
    let mut conns = register_many(urls, &ids).await;
    let proposer = &mut conns[0];

    let participants = vec![ids[N - 1].clone(), ids[0].clone(), long_id("offline-", 1)];
    let ask = mpc_protocol::ClientMessage::ListPeers {
        watch: false,
        keys: true,
        ids: Some(participants),
        after: None,
    };
    proposer.send(Message::text(ask.to_json())).await.unwrap();
    let text = next_text(proposer).await;
    assert!(text.len() <= LIMIT);
    let page = PeersPage::from_json(&text).unwrap();
    assert_eq!(page.peers, [ids[0].clone(), ids[N - 1].clone()]);
    let keys = page.keys.unwrap();
    assert_eq!(keys[&ids[0]], many_key(0).public_key().to_hex());
    assert_eq!(keys[&ids[N - 1]], many_key(N - 1).public_key().to_hex());
    assert_eq!(page.next, None);

    let (peers, keys, largest) = list_all(proposer, r#","keys":true"#).await;
    assert_eq!(peers, ids);
    assert_eq!(keys.len(), N);
    assert!(keys
        .iter()
        .enumerate()
        .all(|(i, (id, k))| id == &ids[i] && *k == many_key(i).public_key().to_hex()));
    assert!(largest <= LIMIT, "{largest}");
    // The spec's bare `list_peers`, and a watcher's, page the same way.
    let (peers, keys, largest) = list_all(proposer, "").await;
    assert_eq!(peers, ids);
    assert!(keys.is_empty());
    assert!(largest <= LIMIT, "{largest}");
    let (peers, _, largest) = list_all(&mut conns[1], r#","watch":true"#).await;
    assert_eq!(peers, ids);
    assert!(largest <= LIMIT, "{largest}");
}

/// Registers `n` throwaway ids (`junk0`, …) signed by fresh keys, spread
/// over `urls`, each leaving at once; every one must be bound or refused
/// as [`Refusal::BindingsFull`]. Returns how many were refused.
pub async fn flood_bindings(urls: &[String], n: usize) -> usize {
    use mpc_signal::registry::Refusal;
    let mut refused = 0;
    for i in 0..n {
        let id = format!("junk{i}");
        let mut c = Client::connect(&urls[i % urls.len()]).await;
        let msg = c.signed_register(&id, &many_key(i));
        c.send(&msg).await;
        match c.recv().await {
            ServerMessage::Registered { .. } => {}
            ServerMessage::Error { error } => {
                assert_eq!(error, Refusal::BindingsFull.message(&id));
                refused += 1;
            }
            other => panic!("{other:?}"),
        }
        c.close().await;
    }
    refused
}
