//! A real WebSocket client for the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mpc_identity::{statement, IdentityKey};
use mpc_protocol::ServerMessage;
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
        Client::from_ws(connect_raw(url).await).await
    }

    /// Wraps an open WebSocket and reads the challenge.
    pub async fn from_ws(ws: Ws) -> Client {
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

    /// A `register` for `peer_id` signed by `key` over this connection's
    /// challenge.
    pub fn signed_register(&self, peer_id: &str, key: &IdentityKey) -> String {
        let sig = key.sign(&statement::register(&self.nonce(), peer_id));
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
