//! `cpu`: closed-loop ping-pong over N pairs; server CPU per delivered
//! message (and, with `--callgrind`, instructions per message).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::{callgrind, stop_tasks, Metrics};
use crate::args::{Args, Target};
use crate::client::{
    connect_many, expect_relay, next_text, padded_data, relay_text, Ws, RECV_TIMEOUT,
};
use crate::server::Server;
use crate::Res;

/// Closed loop: each pair ping-pongs `--window` messages; server CPU per
/// delivery.
pub async fn run(args: &Args, server: &Server) -> Res<Metrics> {
    let t = server.target;
    let ids: Vec<String> = (0..args.pairs)
        .flat_map(|i| [format!("a{i}"), format!("b{i}")])
        .collect();
    let conns = connect_many(t, &server.addrs, &ids, 50).await?;
    let delivered = Arc::new(AtomicU64::new(0));
    let data = padded_data(r#""seq":1,"#, args.payload_bytes);
    let mut tasks = Vec::new();
    let mut it = conns.into_iter();
    for i in 0..args.pairs {
        let (a, b) = (it.next().ok_or("pair")?, it.next().ok_or("pair")?);
        for (ws, to, starts) in [(a, format!("b{i}"), true), (b, format!("a{i}"), false)] {
            let msg = Utf8Bytes::from(relay_text(t, &to, &data));
            let delivered = delivered.clone();
            let window = if starts { args.window.max(1) } else { 0 };
            if t == Target::Matchbox {
                // Ids are the server's: learned from `NewPeer` or a signal.
                let window = args.window.max(1);
                tasks.push(tokio::spawn(matchbox_pong(
                    ws,
                    data.clone(),
                    window,
                    delivered,
                )));
                continue;
            }
            tasks.push(tokio::spawn(ping_pong(t, ws, msg, window, delivered)));
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    if args.callgrind {
        callgrind::control(server, "--instr=on").await?;
    }
    let (c0, n0, t0) = (server.cpu_secs()?, delivered.load(Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let (c1, n1, t1) = (server.cpu_secs()?, delivered.load(Relaxed), Instant::now());
    let instructions = if args.callgrind {
        let total = callgrind::total(server).await?;
        callgrind::control(server, "--instr=off").await?;
        Some(total)
    } else {
        None
    };
    stop_tasks(&mut tasks).await?;
    let secs = (t1 - t0).as_secs_f64();
    let msgs = (n1 - n0) as f64;
    if msgs == 0.0 {
        return Err("no message was delivered while measuring".into());
    }
    let cpu = c1 - c0;
    let mut m = Metrics::from([
        ("cpu_us_per_msg", cpu * 1e6 / msgs),
        ("msgs_per_s", msgs / secs),
        ("server_cpu_util", cpu / secs),
    ]);
    if let Some(ir) = instructions {
        // Messages sent while collection was on, ± the 500 in flight.
        m.insert("instr_per_msg", ir / msgs);
    }
    Ok(m)
}

async fn ping_pong(
    t: Target,
    mut ws: Ws,
    msg: Utf8Bytes,
    window: usize,
    delivered: Arc<AtomicU64>,
) -> Res<()> {
    for _ in 0..window {
        ws.send(Message::Text(msg.clone()))
            .await
            .map_err(|e| e.to_string())?;
    }
    loop {
        let text = timeout(RECV_TIMEOUT, next_text(&mut ws))
            .await
            .map_err(|_| format!("no reply in {RECV_TIMEOUT:?}"))??;
        expect_relay(t, &text)?;
        delivered.fetch_add(1, Relaxed);
        ws.send(Message::Text(msg.clone()))
            .await
            .map_err(|e| e.to_string())?;
    }
}

/// matchbox's ping-pong. The server names peers by uuid, so whichever end
/// of a pair joined its room first hears `NewPeer` with the other's id and
/// starts `window` messages; the other learns its partner from the first
/// signal's sender. Both then echo every signal.
async fn matchbox_pong(
    mut ws: Ws,
    data: String,
    window: usize,
    delivered: Arc<AtomicU64>,
) -> Res<()> {
    let mut msg: Option<Utf8Bytes> = None;
    loop {
        let text = timeout(RECV_TIMEOUT, next_text(&mut ws))
            .await
            .map_err(|_| format!("no reply in {RECV_TIMEOUT:?}"))??;
        let event: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("matchbox event: {e}"))?;
        let to_partner = |id: &str| Utf8Bytes::from(relay_text(Target::Matchbox, id, &data));
        let sends = if let Some(id) = event["NewPeer"].as_str() {
            msg = Some(to_partner(id));
            window
        } else if let Some(sender) = event["Signal"]["sender"].as_str() {
            delivered.fetch_add(1, Relaxed);
            if msg.is_none() {
                msg = Some(to_partner(sender));
            }
            1
        } else {
            0
        };
        if let Some(m) = &msg {
            for _ in 0..sends {
                ws.send(Message::Text(m.clone()))
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
}
