//! `latency`: open-loop relay at a fixed aggregate rate; one-way latency
//! measured from the intended send time (no coordinated omission).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::{first_failure, stop_tasks, Metrics};
use crate::args::{Args, Target};
use crate::client::{connect_many, expect_relay, next_text, padded_data, relay_text, Ws};
use crate::report::pct;
use crate::server::Server;
use crate::Res;

/// Open loop: a paced driver thread schedules sends at a fixed aggregate
/// rate; latency is measured from the intended send time.
pub async fn run(args: &Args, server: &Server) -> Res<Metrics> {
    let t = server.target;
    let pairs = args.latency_pairs;
    let ids: Vec<String> = (0..pairs)
        .flat_map(|i| [format!("s{i}"), format!("r{i}")])
        .collect();
    let conns = connect_many(t, &server.addrs, &ids, 50).await?;
    let base = Instant::now();
    let warm_ns = (args.warmup * 1e9) as u64;
    let total = ((args.warmup + args.duration) * args.rate) as u64;
    let from_intended = Arc::new(Mutex::new(Vec::<u64>::new()));
    let from_sent = Arc::new(Mutex::new(Vec::<u64>::new()));
    let received = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::with_capacity(pairs);
    let mut tasks = Vec::new();
    let mut it = conns.into_iter();
    for i in 0..pairs {
        let (s, r) = (it.next().ok_or("pair")?, it.next().ok_or("pair")?);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        senders.push(tx);
        tasks.push(tokio::spawn(paced_sender(
            t,
            s,
            format!("r{i}"),
            args.payload_bytes,
            base,
            rx,
        )));
        tasks.push(tokio::spawn(latency_receiver(
            t,
            r,
            base,
            warm_ns,
            from_intended.clone(),
            from_sent.clone(),
            received.clone(),
        )));
    }
    let period_ns = 1e9 / args.rate;
    let driver = std::thread::spawn(move || {
        let mut measured = 0u64;
        let mut max_lag_ns = 0u64;
        for k in 0..total {
            let due = (k as f64 * period_ns) as u64;
            let now = base.elapsed().as_nanos() as u64;
            if due > now {
                std::thread::sleep(Duration::from_nanos(due - now));
            } else if due >= warm_ns {
                max_lag_ns = max_lag_ns.max(now - due);
            }
            if senders[k as usize % senders.len()].send(due).is_err() {
                break;
            }
            if due >= warm_ns {
                measured += 1;
            }
        }
        (measured, max_lag_ns)
    });
    let deadline = Instant::now() + Duration::from_secs_f64(args.warmup + args.duration + 30.0);
    while !driver.is_finished() {
        if Instant::now() > deadline {
            return Err("the send driver did not finish".into());
        }
        if let Some(e) = first_failure(&mut tasks).await {
            return Err(e);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (expected, max_lag_ns) = driver.join().map_err(|_| "driver thread panicked")?;
    // Grace for the last messages in flight.
    let grace = Instant::now() + Duration::from_secs(3);
    while received.load(Relaxed) < expected && Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_tasks(&mut tasks).await?;
    let mut lat = std::mem::take(&mut *from_intended.lock().map_err(|_| "lock")?);
    let mut svc = std::mem::take(&mut *from_sent.lock().map_err(|_| "lock")?);
    if lat.is_empty() {
        return Err("no message arrived while measuring".into());
    }
    lat.sort_unstable();
    svc.sort_unstable();
    let ms = |v: &[u64], q: f64| pct(v, q) as f64 / 1e6;
    Ok(Metrics::from([
        ("lat_p50_ms", ms(&lat, 0.50)),
        ("lat_p99_ms", ms(&lat, 0.99)),
        ("lat_p999_ms", ms(&lat, 0.999)),
        ("lat_max_ms", ms(&lat, 1.0)),
        ("lat_from_send_p50_ms", ms(&svc, 0.50)),
        ("lat_from_send_p99_ms", ms(&svc, 0.99)),
        ("lat_lost", expected.saturating_sub(lat.len() as u64) as f64),
        ("lat_received_per_s", lat.len() as f64 / args.duration),
        ("driver_max_lag_ms", max_lag_ns as f64 / 1e6),
    ]))
}

async fn paced_sender(
    t: Target,
    ws: Ws,
    to: String,
    payload_bytes: usize,
    base: Instant,
    mut due: tokio::sync::mpsc::UnboundedReceiver<u64>,
) -> Res<()> {
    let (mut sink, mut stream) = ws.split();
    // Drain whatever the server sends this connection (pings get answered).
    let drain = async move {
        loop {
            next_text(&mut stream).await?;
        }
    };
    let send = async move {
        while let Some(intended) = due.recv().await {
            let sent = base.elapsed().as_nanos() as u64;
            let data = padded_data(&format!(r#""i":{intended},"s":{sent},"#), payload_bytes);
            sink.send(Message::text(relay_text(t, &to, &data)))
                .await
                .map_err(|e| format!("send: {e}"))?;
        }
        // The driver is done; keep the connection (and the drain) alive
        // until the scenario aborts this task.
        std::future::pending::<Res<()>>().await
    };
    tokio::select! { r = drain => r, r = send => r }
}

async fn latency_receiver(
    t: Target,
    ws: Ws,
    base: Instant,
    warm_ns: u64,
    from_intended: Arc<Mutex<Vec<u64>>>,
    from_sent: Arc<Mutex<Vec<u64>>>,
    received: Arc<AtomicU64>,
) -> Res<()> {
    let mut ws = ws;
    loop {
        let text = next_text(&mut ws).await?;
        let now = base.elapsed().as_nanos() as u64;
        expect_relay(t, &text)?;
        let intended = field_u64(&text, r#""i":"#).ok_or("no \"i\" in payload")?;
        let sent = field_u64(&text, r#""s":"#).ok_or("no \"s\" in payload")?;
        if intended >= warm_ns {
            from_intended
                .lock()
                .map_err(|_| "lock")?
                .push(now.saturating_sub(intended));
            from_sent
                .lock()
                .map_err(|_| "lock")?
                .push(now.saturating_sub(sent));
            received.fetch_add(1, Relaxed);
        }
    }
}

fn field_u64(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn payload_has_the_requested_size_and_fields() {
        let d = padded_data(r#""i":123,"s":456,"#, 200);
        assert_eq!(d.len(), 200);
        let v: Value = serde_json::from_str(&d).unwrap();
        assert_eq!(v["i"], 123);
        assert_eq!(field_u64(&d, r#""s":"#), Some(456));
    }
}
