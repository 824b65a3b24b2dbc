//! `idle`: RSS per idle registered connection, and the cost of
//! `list_peers` with them all registered (PeerJS: `GET /peerjs/peers`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

use super::{stop_tasks, Metrics};
use crate::args::{Args, Target};
use crate::client::{clip, connect_many, next_text, Ws, RECV_TIMEOUT};
use crate::report::median;
use crate::server::Server;
use crate::Res;

/// RSS per idle registered connection, and list_peers at that size.
pub async fn run(args: &Args, server: &Server) -> Res<Metrics> {
    let t = server.target;
    // Warm-up: a few connections come and go so lazily built state exists.
    let warm: Vec<String> = (0..10).map(|i| format!("warm{i}")).collect();
    drop(connect_many(t, &server.addrs, &warm, 10).await?);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let base = server.rss_kib()?;

    let ids: Vec<String> = (0..args.idle_conns)
        .map(|i| format!("idle{i:05}"))
        .collect();
    let t0 = Instant::now();
    let mut conns = connect_many(t, &server.addrs, &ids, 100).await?;
    let connect_secs = t0.elapsed().as_secs_f64();
    let mut probe = conns.pop().ok_or("no connections")?;
    // Everyone else keeps reading (ours: pongs to the server's pings) and,
    // for PeerJS, sends the HEARTBEAT its client library sends every 5 s.
    let mut keepers = Vec::with_capacity(conns.len());
    for (i, ws) in conns.into_iter().enumerate() {
        keepers.push(tokio::spawn(keep_idle(t, ws, i)));
    }
    // Quiet: RSS stable within 0.5 % over 1 s, at least 3 s, at most 20 s.
    let mut last = server.rss_kib()?;
    let mut waited = 0;
    let rss = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        waited += 1;
        let now = server.rss_kib()?;
        let stable = now.abs_diff(last) * 200 <= now;
        last = now;
        if (waited >= 3 && stable) || waited >= 20 {
            break now;
        }
    };
    let per_conn_kib = (rss as f64 - base as f64) / args.idle_conns as f64;

    // list_peers with everyone registered.
    let mut rtts = Vec::new();
    let mut size = 0usize;
    // matchbox has no peer list.
    let rounds = if t == Target::Matchbox {
        0
    } else {
        args.list_rounds.max(1)
    };
    for _ in 0..rounds {
        let (rtt, bytes) = match t {
            Target::Ours | Target::Floor | Target::Cluster => list_ours(&mut probe).await?,
            Target::Peerjs => list_peerjs(server.addr()).await?,
            Target::Matchbox => break,
        };
        rtts.push(rtt);
        size = bytes;
    }
    stop_tasks(&mut keepers).await?;
    let mut m = Metrics::from([
        ("rss_base_mib", base as f64 / 1024.0),
        ("rss_loaded_mib", rss as f64 / 1024.0),
        ("rss_kib_per_conn", per_conn_kib),
        ("connect_10k_per_s", args.idle_conns as f64 / connect_secs),
    ]);
    if !rtts.is_empty() {
        m.insert("list_rtt_ms", median(&mut rtts) * 1e3);
        m.insert("list_bytes", size as f64);
    }
    Ok(m)
}

async fn keep_idle(t: Target, ws: Ws, i: usize) -> Res<()> {
    let (mut sink, mut stream) = ws.split();
    let reader = async move {
        loop {
            next_text(&mut stream).await?;
        }
    };
    match t {
        Target::Ours | Target::Floor | Target::Cluster | Target::Matchbox => reader.await,
        Target::Peerjs => {
            let beat = async move {
                // Spread the beats over the 5 s period.
                let phase = Duration::from_millis((i as u64 * 7919) % 5000);
                let mut tick = tokio::time::interval_at(
                    tokio::time::Instant::now() + phase,
                    Duration::from_secs(5),
                );
                loop {
                    tick.tick().await;
                    sink.send(Message::text(r#"{"type":"HEARTBEAT"}"#))
                        .await
                        .map_err(|e| format!("heartbeat: {e}"))?;
                }
            };
            tokio::select! { r = reader => r, r = beat => r }
        }
    }
}

/// One list_peers round trip over an open registered connection.
async fn list_ours(ws: &mut Ws) -> Res<(f64, usize)> {
    let t0 = Instant::now();
    ws.send(Message::text(r#"{"type":"list_peers"}"#))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let text = timeout(RECV_TIMEOUT, next_text(ws))
            .await
            .map_err(|_| "no peers reply".to_string())??;
        if text.starts_with(r#"{"type":"peers""#) {
            return Ok((t0.elapsed().as_secs_f64(), text.len()));
        }
    }
}

/// PeerJS has no list over the socket; its discovery API is
/// `GET /peerjs/peers` (allow_discovery). Timed with a fresh TCP connection.
async fn list_peerjs(addr: SocketAddr) -> Res<(f64, usize)> {
    let t0 = Instant::now();
    let work = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(b"GET /peerjs/peers HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(buf)
    };
    let buf = timeout(RECV_TIMEOUT, work)
        .await
        .map_err(|_| "GET /peerjs/peers timed out".to_string())??;
    let rtt = t0.elapsed().as_secs_f64();
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("bad HTTP reply")?;
    if !buf.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "GET /peerjs/peers: {}",
            clip(&String::from_utf8_lossy(&buf[..head_end]))
        ));
    }
    Ok((rtt, buf.len() - head_end - 4))
}
