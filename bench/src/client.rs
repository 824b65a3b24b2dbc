//! The load clients: connecting and registering in each target's protocol,
//! the frames they send and expect, and the payloads they carry.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::args::Target;
use crate::Res;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
pub const RECV_TIMEOUT: Duration = Duration::from_secs(15);

fn client_config() -> WebSocketConfig {
    // Small buffers: the generator holds up to 10k sockets itself.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Opens a WebSocket and registers `id` (ours: challenge, register →
/// registered; PeerJS: id in the URL → OPEN). TCP_NODELAY on, as browsers do.
async fn connect(target: Target, addr: SocketAddr, id: &str) -> Res<Ws> {
    if !addr.ip().is_loopback() {
        return Err(format!("{addr} is not loopback"));
    }
    let url = match target {
        Target::Ours | Target::Floor | Target::Cluster => format!("ws://{addr}/ws"),
        Target::Peerjs => format!("ws://{addr}/peerjs?key=peerjs&id={id}&token=t{id}"),
        // A room per pair: "a12" and "b12" meet in room "12".
        Target::Matchbox => format!(
            "ws://{addr}/{}",
            id.trim_start_matches(|c: char| c.is_ascii_alphabetic())
        ),
    };
    let work = async {
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(client_config()), true)
                .await
                .map_err(|e| format!("connect {url}: {e}"))?;
        if !matches!(target, Target::Peerjs | Target::Matchbox) {
            let reg = format!(r#"{{"type":"register","peer_id":"{id}"}}"#);
            ws.send(Message::text(reg))
                .await
                .map_err(|e| format!("{id}: send register: {e}"))?;
        }
        let mut reply = next_text(&mut ws).await.map_err(|e| format!("{id}: {e}"))?;
        // Ours opens every connection with a challenge (for signed
        // registration); the load generator registers unsigned and skips it.
        if !matches!(target, Target::Peerjs | Target::Matchbox)
            && reply.starts_with(r#"{"type":"challenge""#)
        {
            reply = next_text(&mut ws).await.map_err(|e| format!("{id}: {e}"))?;
        }
        let ok = match target {
            Target::Ours | Target::Floor | Target::Cluster => {
                reply.starts_with(r#"{"type":"registered""#)
            }
            Target::Peerjs => reply.starts_with(r#"{"type":"OPEN""#),
            Target::Matchbox => reply.starts_with(r#"{"IdAssigned":"#),
        };
        if !ok {
            return Err(format!(
                "{id}: unexpected registration reply {}",
                clip(&reply)
            ));
        }
        Ok(ws)
    };
    timeout(CONNECT_TIMEOUT, work)
        .await
        .map_err(|_| format!("{id}: connect + register timed out after {CONNECT_TIMEOUT:?}"))?
}

/// Opens `ids` with at most `concurrency` in flight; returns them in order.
/// Connects and registers every id; id `i` goes to `addrs[i % len]`, so
/// on a cluster the two ends of each pair are on different instances.
pub async fn connect_many(
    target: Target,
    addrs: &[SocketAddr],
    ids: &[String],
    concurrency: usize,
) -> Res<Vec<Ws>> {
    let mut out: Vec<(usize, Ws)> = futures_util::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let addr = addrs[i % addrs.len()];
            async move { connect(target, addr, id).await.map(|ws| (i, ws)) }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Res<_>>()?;
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, ws)| ws).collect())
}

/// The next text frame; pings are answered by tungstenite as it reads.
pub async fn next_text<S>(ws: &mut S) -> Res<Utf8Bytes>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        match ws.next().await {
            None => return Err("connection closed".into()),
            Some(Err(e)) => return Err(format!("websocket error: {e}")),
            Some(Ok(Message::Text(t))) => return Ok(t),
            Some(Ok(Message::Close(f))) => return Err(format!("closed by server: {f:?}")),
            Some(Ok(_)) => {}
        }
    }
}

/// A relay of `data` (a JSON object) to `to`, in the target's protocol.
pub fn relay_text(target: Target, to: &str, data: &str) -> String {
    match target {
        Target::Ours | Target::Floor | Target::Cluster => {
            format!(r#"{{"type":"relay","to":"{to}","data":{data}}}"#)
        }
        Target::Peerjs => format!(r#"{{"type":"OFFER","dst":"{to}","payload":{data}}}"#),
        Target::Matchbox => format!(r#"{{"Signal":{{"receiver":"{to}","data":{data}}}}}"#),
    }
}

/// Checks that a received frame is a relayed message, not an error.
pub fn expect_relay(target: Target, text: &str) -> Res<()> {
    let ok = match target {
        Target::Ours | Target::Floor | Target::Cluster => text.starts_with(r#"{"type":"relay""#),
        Target::Peerjs => text.starts_with(r#"{"type":"OFFER""#),
        Target::Matchbox => text.starts_with(r#"{"Signal":"#),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected a relayed message, got {}", clip(text)))
    }
}

/// `{"seq":0,"pad":"xxx…"}` of exactly `bytes` bytes (at least the skeleton).
pub fn padded_data(prefix: &str, bytes: usize) -> String {
    let skeleton = format!(r#"{{{prefix}"pad":""}}"#);
    let pad = "x".repeat(bytes.saturating_sub(skeleton.len()));
    format!(r#"{{{prefix}"pad":"{pad}"}}"#)
}

pub fn clip(s: &str) -> String {
    let mut t: String = s.chars().take(160).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn relay_texts_are_json_in_each_protocol() {
        let d = padded_data("", 50);
        let ours: Value = serde_json::from_str(&relay_text(Target::Ours, "p2", &d)).unwrap();
        assert_eq!(ours["type"], "relay");
        assert_eq!(ours["to"], "p2");
        let pj: Value = serde_json::from_str(&relay_text(Target::Peerjs, "p2", &d)).unwrap();
        assert_eq!(pj["type"], "OFFER");
        assert_eq!(pj["dst"], "p2");
    }
}
