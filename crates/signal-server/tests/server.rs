//! The signaling server against real WebSocket clients on loopback.

mod common;

use std::time::Duration;

use common::*;
use mpc_protocol::{IceServer, ServerMessage};
use mpc_signal::metrics::ErrorKind;
use mpc_signal::registry::{Delivery, ListQuery, Refusal};
use mpc_signal::{Config, SignalServer};
use tokio_tungstenite::tungstenite::Message;

async fn server(config: Config) -> SignalServer {
    SignalServer::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

async fn default_server() -> (SignalServer, String) {
    let s = server(Config::default()).await;
    let url = s.ws_url();
    (s, url)
}

#[tokio::test]
async fn register_answers_registered_with_ice_servers() {
    let stun = IceServer::parse_url("stun:stun.example.org:3478").unwrap();
    let s = server(Config {
        ice_servers: vec![stun.clone()],
        ..Config::default()
    })
    .await;
    let mut c = Client::connect(&s.ws_url()).await;
    c.send(r#"{"type":"register","peer_id":"cli1"}"#).await;
    assert_eq!(
        c.recv().await,
        ServerMessage::Registered {
            peer_id: "cli1".into(),
            ice_servers: vec![stun]
        }
    );
}

#[tokio::test]
async fn invalid_peer_ids_are_refused_and_the_connection_stays() {
    let (_s, url) = default_server().await;
    let mut c = Client::connect(&url).await;
    let long = "x".repeat(65);
    for bad in ["", "has space", "ünï", long.as_str(), "a/b"] {
        c.send(&format!(r#"{{"type":"register","peer_id":"{bad}"}}"#))
            .await;
        c.expect_error("invalid peer_id").await;
    }
    c.send(&format!(
        r#"{{"type":"register","peer_id":"{}"}}"#,
        "y".repeat(64)
    ))
    .await;
    assert!(matches!(c.recv().await, ServerMessage::Registered { .. }));
}

#[tokio::test]
async fn taken_peer_id_stays_with_its_holder() {
    let (_s, url) = default_server().await;
    let mut holder = Client::register(&url, "cli1").await;
    let mut thief = Client::connect(&url).await;
    thief.send(r#"{"type":"register","peer_id":"cli1"}"#).await;
    assert_eq!(thief.expect_error("peer_id taken").await, "peer_id taken");
    // The thief can still register under another id and reach the holder.
    thief.send(r#"{"type":"register","peer_id":"cli2"}"#).await;
    assert!(matches!(
        thief.recv().await,
        ServerMessage::Registered { .. }
    ));
    thief
        .send(r#"{"type":"relay","to":"cli1","data":{"n":1}}"#)
        .await;
    match holder.recv().await {
        ServerMessage::Relay { from, data } => {
            assert_eq!(from, "cli2");
            assert_eq!(data.get(), r#"{"n":1}"#);
        }
        other => panic!("{other:?}"),
    }
}

/// Frames queued for one recipient leave together in one write; two
/// senders' bursts must still arrive whole, each in its own order.
#[tokio::test]
async fn bursts_to_one_recipient_keep_each_senders_order() {
    let (_s, url) = default_server().await;
    let mut to = Client::register(&url, "to").await;
    let mut a = Client::register(&url, "a").await;
    let mut b = Client::register(&url, "b").await;
    for n in 0..300 {
        a.send(&format!(
            r#"{{"type":"relay","to":"to","data":{{"n":{n}}}}}"#
        ))
        .await;
        b.send(&format!(
            r#"{{"type":"relay","to":"to","data":{{"n":{n}}}}}"#
        ))
        .await;
    }
    let mut next = std::collections::HashMap::from([("a".to_string(), 0), ("b".to_string(), 0)]);
    for _ in 0..600 {
        match to.recv().await {
            ServerMessage::Relay { from, data } => {
                let n = next.get_mut(&from).unwrap();
                assert_eq!(data.get(), format!(r#"{{"n":{n}}}"#), "from {from}");
                *n += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    to.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn second_register_on_one_connection_is_an_error() {
    let (_s, url) = default_server().await;
    let mut c = Client::register(&url, "cli1").await;
    c.send(r#"{"type":"register","peer_id":"cli9"}"#).await;
    c.expect_error("already registered as \"cli1\"").await;
    assert_eq!(c.peers().await, vec!["cli1"]);
}

#[tokio::test]
async fn messages_before_register_are_errors() {
    let (_s, url) = default_server().await;
    let mut c = Client::connect(&url).await;
    c.send(r#"{"type":"list_peers"}"#).await;
    c.expect_error("not registered").await;
    c.send(r#"{"type":"relay","to":"x","data":{}}"#).await;
    c.expect_error("not registered").await;
}

#[tokio::test]
async fn list_peers_is_sorted_and_includes_the_caller() {
    let (_s, url) = default_server().await;
    let _b = Client::register(&url, "cli2").await;
    let _c = Client::register(&url, "chrome1").await;
    let mut a = Client::register(&url, "cli1").await;
    assert_eq!(a.peers().await, vec!["chrome1", "cli1", "cli2"]);
}

#[tokio::test]
async fn relay_stamps_from_and_keeps_data_verbatim() {
    let (s, url) = default_server().await;
    let mut a = Client::register(&url, "cli1").await;
    let mut b = Client::register(&url, "cli2").await;
    let data = r#"{ "type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1" , "x":[1,2.50]}"#;
    a.send(&format!(
        r#"{{"type":"relay","to":"cli2","from":"forged","data":{data}}}"#
    ))
    .await;
    match b.recv().await {
        ServerMessage::Relay { from, data: got } => {
            assert_eq!(from, "cli1");
            assert_eq!(got.get(), data);
        }
        other => panic!("{other:?}"),
    }
    // A relay to oneself works too, and the sender hears nothing back.
    b.send(r#"{"type":"relay","to":"cli2","data":[]}"#).await;
    assert!(matches!(b.recv().await, ServerMessage::Relay { .. }));
    a.expect_silence(Duration::from_millis(100)).await;
    let m = &s.state().metrics;
    assert_eq!(
        m.messages_relayed
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn relay_to_unknown_peer_names_it() {
    let (_s, url) = default_server().await;
    let mut a = Client::register(&url, "cli1").await;
    a.send(r#"{"type":"relay","to":"ghost","data":{}}"#).await;
    assert_eq!(a.expect_error("ghost").await, "unknown peer \"ghost\"");
}

#[tokio::test]
async fn bad_input_gets_an_error_and_the_connection_stays_open() {
    let (_s, url) = default_server().await;
    let mut c = Client::register(&url, "cli1").await;
    let cases = [
        ("{not json", "invalid JSON"),
        ("[1,2]", "invalid JSON"),
        (r#"{"peer_id":"x"}"#, "no \"type\""),
        (
            r#"{"type":"subscribe"}"#,
            "unknown message type \"subscribe\"",
        ),
        (r#"{"type":"relay","data":{}}"#, "missing field \"to\""),
        (r#"{"type":"relay","to":"cli1"}"#, "missing field \"data\""),
        (r#"{"type":"register"}"#, "missing field \"peer_id\""),
        (r#"{"type":"list_peers","watch":"yes"}"#, "invalid JSON"),
    ];
    for (input, needle) in cases {
        c.send(input).await;
        c.expect_error(needle).await;
    }
    c.send_frame(Message::binary(vec![1u8, 2, 3])).await;
    c.expect_error("binary frames are not supported").await;
    // Unknown fields are fine.
    c.send(r#"{"type":"list_peers","extra":{"a":1}}"#).await;
    assert!(matches!(c.recv().await, ServerMessage::Peers { .. }));
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let s = server(Config {
        max_message_bytes: 1024,
        ..Config::default()
    })
    .await;
    let mut c = Client::register(&s.ws_url(), "cli1").await;
    // Exactly at the limit is fine.
    let pad = 1024 - r#"{"type":"list_peers","pad":""}"#.len();
    c.send(&format!(
        r#"{{"type":"list_peers","pad":"{}"}}"#,
        "p".repeat(pad)
    ))
    .await;
    assert!(matches!(c.recv().await, ServerMessage::Peers { .. }));
    c.send(&format!(
        r#"{{"type":"list_peers","pad":"{}"}}"#,
        "p".repeat(2000)
    ))
    .await;
    assert_eq!(c.expect_close().await, Some(1009));
    assert_eq!(
        s.state()
            .metrics
            .errors(mpc_signal::metrics::ErrorKind::MessageTooBig),
        1
    );
}

#[tokio::test]
async fn rate_limit_errors_then_closes_when_it_persists() {
    let s = server(Config {
        rate_limit_per_sec: 5,
        rate_limit_burst: 5,
        rate_limit_strikes: 10,
        ..Config::default()
    })
    .await;
    let mut c = Client::register(&s.ws_url(), "cli1").await; // 1 token used
    for _ in 0..4 {
        c.send(r#"{"type":"list_peers"}"#).await;
        assert!(matches!(c.recv().await, ServerMessage::Peers { .. }));
    }
    c.send(r#"{"type":"list_peers"}"#).await;
    c.expect_error("rate limit exceeded").await;
    // A pause refills the bucket and forgives the strike.
    tokio::time::sleep(Duration::from_millis(450)).await;
    c.send(r#"{"type":"list_peers"}"#).await;
    assert!(matches!(c.recv().await, ServerMessage::Peers { .. }));
    for _ in 0..30 {
        c.send(r#"{"type":"list_peers"}"#).await;
    }
    assert_eq!(c.expect_close().await, Some(1008));
}

#[tokio::test]
async fn connection_limit_answers_503() {
    let s = server(Config {
        max_connections: 2,
        ..Config::default()
    })
    .await;
    let a = Client::register(&s.ws_url(), "a").await;
    let _b = Client::register(&s.ws_url(), "b").await;
    assert_eq!(refused_status(&s.ws_url(), None).await, 503);
    drop(a);
    // The slot frees once the server sees the close.
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if tokio_tungstenite::connect_async(s.ws_url()).await.is_ok() {
            ok = true;
            break;
        }
    }
    assert!(ok, "slot was not freed");
}

#[tokio::test]
async fn origin_allowlist() {
    let s = server(Config {
        allowed_origins: vec!["chrome-extension://abcdefghijklmnop".into()],
        ..Config::default()
    })
    .await;
    assert_eq!(
        refused_status(&s.ws_url(), Some("https://evil.example")).await,
        403
    );
    let ws = connect_with_origin(&s.ws_url(), "chrome-extension://abcdefghijklmnop").await;
    let mut c = Client::from_ws(ws, &s.ws_url()).await;
    c.send(r#"{"type":"register","peer_id":"chrome1"}"#).await;
    assert!(matches!(c.recv().await, ServerMessage::Registered { .. }));
    // Non-browser clients send no Origin and are allowed.
    Client::register(&s.ws_url(), "cli1").await;
}

#[tokio::test]
async fn presence_push_is_opt_in() {
    let (_s, url) = default_server().await;
    let mut watcher = Client::register(&url, "ui").await;
    let mut quiet = Client::register(&url, "quiet").await;
    watcher.send(r#"{"type":"list_peers","watch":true}"#).await;
    assert_eq!(
        watcher.recv().await,
        ServerMessage::Peers {
            peers: vec!["quiet".into(), "ui".into()],
            keys: None
        }
    );
    let joiner = Client::register(&url, "cli1").await;
    assert_eq!(
        watcher.recv().await,
        ServerMessage::PeerJoined {
            peer_id: "cli1".into(),
            pubkey: None
        }
    );
    joiner.close().await;
    assert_eq!(
        watcher.recv().await,
        ServerMessage::PeerLeft {
            peer_id: "cli1".into()
        }
    );
    quiet.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn disconnect_frees_the_peer_id() {
    let (s, url) = default_server().await;
    let mut a = Client::register(&url, "cli1").await;
    let b = Client::register(&url, "cli2").await;
    drop(b);
    let mut freed = false;
    for _ in 0..100 {
        if a.peers().await == vec!["cli1"] {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(freed);
    a.send(r#"{"type":"relay","to":"cli2","data":{}}"#).await;
    a.expect_error("unknown peer").await;
    Client::register(&url, "cli2").await;
    assert_eq!(s.state().registry.len(), 2);
}

#[tokio::test]
async fn silent_client_is_dropped_after_idle_timeout() {
    let s = server(Config {
        idle_timeout: Duration::from_millis(900),
        ..Config::default()
    })
    .await;
    let url = s.ws_url();
    let mut watcher = Client::register(&url, "ui").await;
    watcher.send(r#"{"type":"list_peers","watch":true}"#).await;
    watcher.recv().await;

    // Registers, then never reads again: it can't answer pings.
    use futures_util::SinkExt;
    let mut silent = connect_raw(&url).await;
    silent
        .send(Message::text(r#"{"type":"register","peer_id":"silent"}"#))
        .await
        .unwrap();
    assert_eq!(
        watcher.recv().await,
        ServerMessage::PeerJoined {
            peer_id: "silent".into(),
            pubkey: None
        }
    );
    // The watcher reads (so it answers pings) and outlives the timeout.
    let t0 = std::time::Instant::now();
    assert_eq!(
        watcher.recv().await,
        ServerMessage::PeerLeft {
            peer_id: "silent".into()
        }
    );
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(700),
        "dropped too early: {waited:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(watcher.peers().await, vec!["ui"]);
}

/// A raw registered connection whose reader takes at most `rate` bytes a
/// second (and answers pings) for `for_how_long`; returns the bytes read
/// and how the connection ended (`None`: still open).
async fn throttled_reader(
    url: &str,
    id: &str,
    rate: f64,
    for_how_long: Duration,
) -> tokio::task::JoinHandle<(usize, Option<String>)> {
    use futures_util::{SinkExt, StreamExt};
    let mut ws = connect_raw(url).await;
    next_text(&mut ws).await; // the challenge
    ws.send(Message::text(format!(
        r#"{{"type":"register","peer_id":"{id}"}}"#
    )))
    .await
    .unwrap();
    assert!(next_text(&mut ws).await.contains("registered"));
    tokio::spawn(async move {
        let t0 = std::time::Instant::now();
        let mut read = 0usize;
        while t0.elapsed() < for_how_long {
            match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
                Err(_) => continue,
                Ok(Some(Ok(Message::Text(t)))) => read += t.len(),
                Ok(Some(Ok(Message::Close(f)))) => return (read, Some(format!("{f:?}"))),
                Ok(Some(Ok(_))) => {}
                Ok(other) => return (read, Some(format!("{other:?}"))),
            }
            // Never ahead of `rate` bytes a second.
            let due = Duration::from_secs_f64(read as f64 / rate);
            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        (read, None)
    })
}

/// The review's attack: two connections, each within its rate limit,
/// flood a reader that reads at 40 Mbit/s. The reader stays connected;
/// what does not fit in its outbox is dropped, and the senders are told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_to_a_slow_reader_is_dropped_and_its_senders_told() {
    let (s, url) = default_server().await;
    let victim = throttled_reader(&url, "victim", 5e6, Duration::from_secs(5)).await;
    let blob = "z".repeat(60_000);
    let relay = format!(r#"{{"type":"relay","to":"victim","data":"{blob}"}}"#);
    let mut attackers = Vec::new();
    for name in ["a1", "a2"] {
        let mut c = Client::register(&url, name).await;
        let relay = relay.clone();
        attackers.push(tokio::spawn(async move {
            // The whole burst, then the sustained rate, for 3 s.
            let t0 = std::time::Instant::now();
            let mut sent = 0u32;
            while t0.elapsed() < Duration::from_secs(3) {
                c.send(&relay).await;
                sent += 1;
                if sent >= 400 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            let mut busy = 0;
            let expected = Delivery::Busy.message("victim").unwrap();
            while let Ok(Event::Msg(m)) =
                tokio::time::timeout(Duration::from_millis(500), c.event()).await
            {
                match m {
                    ServerMessage::Error { error } if error == expected => busy += 1,
                    ServerMessage::Error { error } if error.contains("rate limit") => {}
                    other => panic!("{other:?}"),
                }
            }
            (sent, busy)
        }));
    }
    let mut busy = 0;
    for a in attackers {
        let (sent, b) = a.await.unwrap();
        assert!(sent > 400, "{sent}");
        busy += b;
    }
    // The victim is still registered.
    let all = s
        .state()
        .registry
        .list(None, &ListQuery::default(), 1 << 20);
    assert!(all.contains(r#""victim""#), "{all}");
    let (read, ended) = victim.await.unwrap();
    assert_eq!(
        ended, None,
        "the victim was disconnected after {read} bytes"
    );
    assert!(read > 1_000_000, "{read}");
    assert!(busy > 100, "{busy}");
    let m = &s.state().metrics;
    assert_eq!(m.errors(ErrorKind::RecipientBusy), busy);
    assert_eq!(m.errors(ErrorKind::SlowConsumer), 0);
}

/// A reader that reads nothing at all is dropped once its socket has
/// taken nothing for the stall timeout; meanwhile senders hear it is busy.
#[tokio::test]
async fn a_reader_that_reads_nothing_is_dropped_after_the_stall_timeout() {
    let s = server(Config {
        stall_timeout: Duration::from_secs(1),
        rate_limit_per_sec: 0,
        ..Config::default()
    })
    .await;
    let url = s.ws_url();
    let mut fast = Client::register(&url, "fast").await;
    use futures_util::SinkExt;
    let mut stuck = connect_raw(&url).await;
    stuck
        .send(Message::text(r#"{"type":"register","peer_id":"stuck"}"#))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let msg = format!(
        r#"{{"type":"relay","to":"stuck","data":"{}"}}"#,
        "z".repeat(60_000)
    );
    // ~60 KB a message: the socket buffers fill, then the outbox.
    let m = &s.state().metrics;
    let mut sent = 0;
    while m.errors(ErrorKind::RecipientBusy) == 0 {
        assert!(sent < 2000, "the outbox never filled");
        fast.send(&msg).await;
        sent += 1;
    }
    let busy = Delivery::Busy.message("stuck").unwrap();
    assert_eq!(fast.expect_error("busy").await, busy);
    let t0 = std::time::Instant::now();
    while s.state().registry.len() > 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "stuck reader still registered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(m.errors(ErrorKind::SlowConsumer), 1);
    fast.send(&msg).await;
    let gone = Delivery::Gone.message("stuck").unwrap();
    loop {
        match fast.recv().await {
            ServerMessage::Error { error } if error == busy => continue,
            ServerMessage::Error { error } => break assert_eq!(error, gone),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn healthz_and_metrics() {
    let (s, url) = default_server().await;
    let addr = s.local_addr();
    assert_eq!(http_get(addr, "/healthz").await, (200, "ok".to_string()));
    let mut a = Client::register(&url, "cli1").await;
    let _b = Client::register(&url, "cli2").await;
    a.send(r#"{"type":"relay","to":"cli2","data":{"x":"12345"}}"#)
        .await;
    a.send(r#"{"type":"relay","to":"nobody","data":{}}"#).await;
    a.expect_error("unknown peer").await;
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "mpc_signal_connections 2",
        "mpc_signal_registered_peers 2",
        "mpc_signal_messages_relayed_total 1",
        "mpc_signal_bytes_relayed_total 13",
        "mpc_signal_errors_total{kind=\"unknown_peer\"} 1",
        "# TYPE mpc_signal_errors_total counter",
        "mpc_signal_key_bindings 0",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in\n{body}"
        );
    }
    assert_valid_prometheus(&body);
}

/// The Prometheus text format as scrapers read it: `# HELP`/`# TYPE` once
/// per metric and before its samples, sample names and labels well formed,
/// values numeric.
fn assert_valid_prometheus(body: &str) {
    fn is_name(s: &str) -> bool {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut typed = std::collections::HashSet::new();
    let mut helped = std::collections::HashSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect(line);
            assert!(is_name(name) && !help.is_empty(), "{line}");
            assert!(helped.insert(name.to_string()), "second HELP: {line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            assert!(is_name(name), "{line}");
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            assert!(typed.insert(name.to_string()), "second TYPE: {line}");
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let (series, value) = line.rsplit_once(' ').expect(line);
            value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
            let name = match series.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels.strip_suffix('}').expect(line);
                    for pair in labels.split(',') {
                        let (k, v) = pair.split_once('=').expect(line);
                        assert!(is_name(k), "{line}");
                        assert!(
                            v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                            "{line}"
                        );
                    }
                    name
                }
                None => series,
            };
            assert!(typed.contains(name), "sample before its TYPE: {line}");
        }
    }
    assert_eq!(typed, helped);
}

#[tokio::test]
async fn shutdown_closes_every_connection_with_1001() {
    let (s, url) = default_server().await;
    let mut a = Client::register(&url, "cli1").await;
    let mut b = Client::connect(&url).await;
    let t0 = std::time::Instant::now();
    s.shutdown().await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(a.expect_close().await, Some(1001));
    assert_eq!(b.expect_close().await, Some(1001));
}

// ------------------------------------------------ authenticated registration

async fn auth_server() -> (SignalServer, String) {
    let s = server(Config {
        require_auth: true,
        ..Config::default()
    })
    .await;
    let url = s.ws_url();
    (s, url)
}

/// Waits until the server has processed `id`'s disconnect.
async fn until_unregistered(s: &SignalServer, id: &str) {
    let quoted = format!("\"{id}\"");
    for _ in 0..250 {
        let all = s
            .state()
            .registry
            .list(None, &ListQuery::default(), 1 << 20);
        if !all.contains(&quoted) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} still registered");
}

/// Sends `msg` and expects the error `exact`.
async fn refused(c: &mut Client, msg: &str, exact: &str) {
    c.send(msg).await;
    assert_eq!(c.expect_error(exact).await, exact);
}

async fn registered(c: &mut Client, msg: &str) {
    c.send(msg).await;
    match c.recv().await {
        ServerMessage::Registered { .. } => {}
        other => panic!("expected registered, got {other:?}"),
    }
}

#[tokio::test]
async fn challenge_is_the_first_frame_and_fresh_per_connection() {
    use futures_util::{SinkExt, StreamExt};
    let (_s, url) = default_server().await;
    let mut nonces = Vec::new();
    for _ in 0..3 {
        let mut ws = connect_raw(&url).await;
        // Even a client that registers at once gets the challenge first.
        ws.send(Message::text(r#"{"type":"register","peer_id":"quick"}"#))
            .await
            .unwrap();
        let first = match ws.next().await {
            Some(Ok(Message::Text(t))) => t,
            other => panic!("{other:?}"),
        };
        let ServerMessage::Challenge { nonce } = ServerMessage::from_json(&first).unwrap() else {
            panic!("first frame was {first}");
        };
        assert_eq!(
            first.as_str(),
            format!(r#"{{"type":"challenge","nonce":"{nonce}"}}"#)
        );
        assert_eq!(nonce.len(), 64, "{nonce}");
        assert!(
            nonce
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{nonce}"
        );
        let second = match ws.next().await {
            Some(Ok(Message::Text(t))) => ServerMessage::from_json(&t).unwrap(),
            other => panic!("{other:?}"),
        };
        assert!(
            matches!(second, ServerMessage::Registered { .. }),
            "{second:?}"
        );
        nonces.push(nonce);
        drop(ws);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(nonces[0], nonces[1]);
    assert_ne!(nonces[1], nonces[2]);
    assert_ne!(nonces[0], nonces[2]);
}

#[tokio::test]
async fn signed_register_is_accepted_and_list_peers_shows_the_key() {
    let (_s, url) = default_server().await;
    let k = key(1);
    let mut a = Client::register_signed(&url, "alice", &k).await;
    let _b = Client::register(&url, "bob").await;
    a.send(r#"{"type":"list_peers","keys":true}"#).await;
    assert_eq!(
        a.recv().await,
        ServerMessage::Peers {
            peers: vec!["alice".into(), "bob".into()],
            keys: Some([("alice".to_string(), k.public_key().to_hex())].into()),
        }
    );
    // Without `keys` the answer is the spec's shape.
    a.send(r#"{"type":"list_peers"}"#).await;
    assert_eq!(
        a.recv().await,
        ServerMessage::Peers {
            peers: vec!["alice".into(), "bob".into()],
            keys: None,
        }
    );
}

/// Review finding 16: a malicious server that passes another server's
/// challenge to its own clients cannot use their answers there, since a
/// signed register names the server the client connected to.
#[tokio::test]
async fn a_registration_signed_for_another_server_is_refused() {
    let (_s, url) = default_server().await;
    let k = key(1);
    let pk = k.public_key().to_hex();
    let mut c = Client::connect(&url).await;
    let at = |server: &str, nonce: &[u8]| {
        k.sign(&mpc_identity::statement::register_at(
            nonce, "alice", server,
        ))
        .to_hex()
    };
    let no_verify = "register: signature does not verify for this challenge, peer_id and server";
    let elsewhere = at("evil.example:8787", &c.nonce());
    refused(&mut c, &register_json("alice", &pk, &elsewhere), no_verify).await;
    // The older statement names no server, so it is refused too.
    let unbound = k
        .sign(&mpc_identity::statement::register(&c.nonce(), "alice"))
        .to_hex();
    refused(&mut c, &register_json("alice", &pk, &unbound), no_verify).await;
    let here = at(c.host(), &c.nonce());
    registered(&mut c, &register_json("alice", &pk, &here)).await;
}

#[tokio::test]
async fn the_older_unbound_registration_is_accepted_only_when_allowed() {
    let s = server(Config {
        accept_unbound_register: true,
        ..Config::default()
    })
    .await;
    let k = key(1);
    let pk = k.public_key().to_hex();
    let mut c = Client::connect(&s.ws_url()).await;
    let elsewhere = k
        .sign(&mpc_identity::statement::register_at(
            &c.nonce(),
            "alice",
            "evil.example:8787",
        ))
        .to_hex();
    refused(
        &mut c,
        &register_json("alice", &pk, &elsewhere),
        "register: signature does not verify for this challenge, peer_id and server",
    )
    .await;
    let unbound = k
        .sign(&mpc_identity::statement::register(&c.nonce(), "alice"))
        .to_hex();
    registered(&mut c, &register_json("alice", &pk, &unbound)).await;
}

#[tokio::test]
async fn bad_proofs_are_refused_and_the_connection_stays() {
    let (s, url) = default_server().await;
    let k = key(1);
    let pk = k.public_key().to_hex();
    let mut c = Client::connect(&url).await;
    let other = Client::connect(&url).await;
    let host = c.host().to_string();
    let sign = |nonce: &[u8], id: &str| {
        k.sign(&mpc_identity::statement::register_at(nonce, id, &host))
            .to_hex()
    };

    // A signature by another key.
    let by_other = key(2)
        .sign(&mpc_identity::statement::register_at(
            &c.nonce(),
            "alice",
            &host,
        ))
        .to_hex();
    let no_verify = "register: signature does not verify for this challenge, peer_id and server";
    refused(&mut c, &register_json("alice", &pk, &by_other), no_verify).await;
    // A signature for another peer id.
    let for_bob = sign(&c.nonce(), "bob");
    refused(&mut c, &register_json("alice", &pk, &for_bob), no_verify).await;
    // A signature over another connection's challenge (a replay).
    let replayed = sign(&other.nonce(), "alice");
    refused(&mut c, &register_json("alice", &pk, &replayed), no_verify).await;
    // Half a proof.
    refused(
        &mut c,
        &format!(r#"{{"type":"register","peer_id":"alice","pubkey":"{pk}"}}"#),
        "register: pubkey without signature; send both or neither",
    )
    .await;
    refused(
        &mut c,
        &format!(r#"{{"type":"register","peer_id":"alice","signature":"{for_bob}"}}"#),
        "register: signature without pubkey; send both or neither",
    )
    .await;
    // Malformed values.
    refused(
        &mut c,
        &register_json("alice", "zz", &for_bob),
        "register: invalid pubkey: not a valid hex-encoded Ed25519 public key",
    )
    .await;
    refused(
        &mut c,
        &register_json("alice", &pk, "abcd"),
        "register: invalid signature: not a valid hex-encoded 64-byte signature",
    )
    .await;
    assert_eq!(s.state().metrics.errors(ErrorKind::Auth), 7);
    assert_eq!(s.state().registry.len(), 0);

    // The same connection still registers once it gets it right.
    let good = c.signed_register("alice", &k);
    registered(&mut c, &good).await;
}

#[tokio::test]
async fn require_auth_refuses_unsigned_registration() {
    let (s, url) = auth_server().await;
    let mut c = Client::connect(&url).await;
    refused(
        &mut c,
        r#"{"type":"register","peer_id":"cli1"}"#,
        "register: this server requires a signed registration (pubkey and signature)",
    )
    .await;
    assert_eq!(s.state().metrics.errors(ErrorKind::Auth), 1);
    let msg = c.signed_register("cli1", &key(1));
    registered(&mut c, &msg).await;
}

#[tokio::test]
async fn default_server_accepts_the_specs_unsigned_register() {
    let (_s, url) = default_server().await;
    let mut c = Client::connect(&url).await;
    registered(&mut c, r#"{"type":"register","peer_id":"cli1"}"#).await;
    // Listing with keys shows none for an unsigned registration.
    c.send(r#"{"type":"list_peers","keys":true}"#).await;
    assert_eq!(
        c.recv().await,
        ServerMessage::Peers {
            peers: vec!["cli1".into()],
            keys: Some(Default::default()),
        }
    );
}

/// The issue's test: an attempt to take over a registered peer_id with
/// another key is refused, while the holder is online and after it left.
#[tokio::test]
async fn takeover_of_a_registered_peer_id_with_another_key_is_refused() {
    for require_auth in [true, false] {
        let s = server(Config {
            require_auth,
            ..Config::default()
        })
        .await;
        let url = s.ws_url();
        let (k1, k2) = (key(1), key(2));
        let a = Client::register_signed(&url, "x", &k1).await;

        let mut b = Client::connect(&url).await;
        let msg = b.signed_register("x", &k2);
        refused(&mut b, &msg, "peer_id taken").await;

        a.close().await;
        until_unregistered(&s, "x").await;
        // The holder is gone; the id stays bound to its key.
        refused(&mut b, &msg, "peer_id x is bound to another identity key").await;
        let unsigned = r#"{"type":"register","peer_id":"x"}"#;
        let expected = if require_auth {
            "register: this server requires a signed registration (pubkey and signature)"
        } else {
            "peer_id x is bound to an identity key; register with a signature"
        };
        refused(&mut b, unsigned, expected).await;
        assert_eq!(
            s.state().metrics.errors(ErrorKind::PeerIdBound),
            1 + !require_auth as u64
        );

        // The key's owner comes back, from a new connection.
        let mut a2 = Client::register_signed(&url, "x", &k1).await;
        a2.send(r#"{"type":"list_peers","keys":true}"#).await;
        match a2.recv().await {
            ServerMessage::Peers {
                keys: Some(keys), ..
            } => {
                assert_eq!(keys["x"], k1.public_key().to_hex())
            }
            other => panic!("{other:?}"),
        }
        // And leaves again: the binding holds after the renewal too.
        a2.close().await;
        until_unregistered(&s, "x").await;
        refused(&mut b, &msg, "peer_id x is bound to another identity key").await;
        s.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn key_binding_expires_and_the_id_is_free_again() {
    let s = server(Config {
        key_binding: Duration::from_secs(1),
        ..Config::default()
    })
    .await;
    let url = s.ws_url();
    let mut b = Client::connect(&url).await;
    let msg = b.signed_register("x", &key(2));
    let a = Client::register_signed(&url, "x", &key(1)).await;
    a.close().await;
    until_unregistered(&s, "x").await;
    refused(&mut b, &msg, "peer_id x is bound to another identity key").await;
    tokio::time::sleep(Duration::from_millis(1050)).await;
    registered(&mut b, &msg).await;
    assert_eq!(s.state().registry.key_bindings(), 1);
}

#[tokio::test]
async fn peer_joined_carries_the_joiners_key() {
    let (_s, url) = default_server().await;
    let mut watcher = Client::register(&url, "ui").await;
    watcher.send(r#"{"type":"list_peers","watch":true}"#).await;
    watcher.recv().await;
    let k = key(7);
    let _signed = Client::register_signed(&url, "cli1", &k).await;
    assert_eq!(
        watcher.recv().await,
        ServerMessage::PeerJoined {
            peer_id: "cli1".into(),
            pubkey: Some(k.public_key().to_hex()),
        }
    );
    let _unsigned = Client::register(&url, "cli2").await;
    assert_eq!(
        watcher.recv().await,
        ServerMessage::PeerJoined {
            peer_id: "cli2".into(),
            pubkey: None,
        }
    );
}

#[tokio::test]
async fn auth_failures_are_counted_by_kind_in_metrics() {
    let (s, url) = auth_server().await;
    let mut c = Client::connect(&url).await;
    c.send(r#"{"type":"register","peer_id":"cli1"}"#).await;
    c.expect_error("requires a signed registration").await;
    let _a = Client::register_signed(&url, "cli1", &key(1)).await;
    let (status, body) = http_get(s.local_addr(), "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "mpc_signal_errors_total{kind=\"auth\"} 1",
        "mpc_signal_errors_total{kind=\"peer_id_bound\"} 0",
        "mpc_signal_key_bindings 1",
        "mpc_signal_errors_total{kind=\"bindings_full\"} 0",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in\n{body}"
        );
    }
    assert_valid_prometheus(&body);
}

// ------------------------------------------------ list filters and pages

#[tokio::test]
async fn list_peers_with_ids_lists_only_those_online() {
    let (s, url) = default_server().await;
    let k = key(1);
    let mut a = Client::register_signed(&url, "alice", &k).await;
    let _b = Client::register(&url, "bob").await;
    let _c = Client::register(&url, "carol").await;
    let ask = mpc_protocol::ClientMessage::ListPeers {
        watch: false,
        keys: true,
        ids: Some(vec!["carol".into(), "alice".into(), "gone".into()]),
        after: None,
    };
    a.send(&ask.to_json()).await;
    assert_eq!(
        a.recv().await,
        ServerMessage::Peers {
            peers: vec!["alice".into(), "carol".into()],
            keys: Some([("alice".to_string(), k.public_key().to_hex())].into()),
        }
    );
    // More ids than allowed: refused, the connection stays.
    let most = mpc_protocol::MAX_LIST_IDS;
    let many: Vec<String> = (0..=most).map(|i| format!("p{i}")).collect();
    let ask = mpc_protocol::ClientMessage::ListPeers {
        watch: false,
        keys: true,
        ids: Some(many),
        after: None,
    };
    a.send(&ask.to_json()).await;
    a.expect_error(&format!("at most {most} ids")).await;
    assert_eq!(s.state().metrics.errors(ErrorKind::TooManyIds), 1);
    assert_eq!(a.peers().await, ["alice", "bob", "carol"]);
}

#[tokio::test]
async fn the_full_list_comes_in_pages_within_the_frame_limit() {
    let s = server(Config {
        max_message_bytes: 4096,
        max_connections_per_ip: 0,
        new_bindings_per_ip_per_min: 0,
        ..Config::default()
    })
    .await;
    let url = s.ws_url();
    let ids: Vec<String> = (0..300).map(|i| long_id("p", i)).collect();
    let mut conns = register_many(std::slice::from_ref(&url), &ids).await;
    for (query, keyed) in [(r#","keys":true"#, true), ("", false)] {
        let (peers, keys, largest) = list_all(&mut conns[0], query).await;
        assert_eq!(peers, ids);
        assert_eq!(keys.len(), if keyed { 300 } else { 0 });
        assert!(largest <= 4096, "{largest}");
    }
    assert_eq!(
        conns.len(),
        s.state().registry.len(),
        "every connection is still there"
    );
}

// ------------------------------------------------ unregistered connections

#[tokio::test]
async fn a_connection_that_never_registers_is_closed_at_the_deadline() {
    let s = server(Config {
        register_timeout: Duration::from_millis(400),
        ..Config::default()
    })
    .await;
    let url = s.ws_url();
    // It answers pings (its reader runs), but never registers.
    let t0 = std::time::Instant::now();
    let mut idle = Client::connect(&url).await;
    let mut registered = Client::register(&url, "cli1").await;
    assert_eq!(idle.expect_close().await, Some(1008));
    assert!(
        t0.elapsed() >= Duration::from_millis(350),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(s.state().metrics.errors(ErrorKind::RegisterTimeout), 1);
    // A registered connection has no deadline.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(registered.peers().await, ["cli1"]);
}

#[tokio::test]
async fn connections_are_limited_per_source_address() {
    let s = server(Config {
        max_connections_per_ip: 3,
        ..Config::default()
    })
    .await;
    let url = s.ws_url();
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(connect_from(&url, "127.0.0.1").await.unwrap());
    }
    match connect_from(&url, "127.0.0.1").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 429),
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert_eq!(
        s.state().metrics.errors(ErrorKind::SourceConnectionLimit),
        1
    );
    // Another address is counted apart.
    let other = Client::from_ws(connect_from(&url, "127.0.0.2").await.unwrap(), &url).await;
    drop(other);
    // A closed connection frees its address's slot.
    drop(open.pop());
    let t0 = std::time::Instant::now();
    while connect_from(&url, "127.0.0.1").await.is_err() {
        assert!(t0.elapsed() < WAIT, "the slot was never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ------------------------------------------------ key binding limits

/// Registers `id` signed by `k` on a connection from `source`; the answer.
async fn signed_from(
    url: &str,
    source: &str,
    id: &str,
    k: &mpc_identity::IdentityKey,
) -> ServerMessage {
    let mut c = Client::from_ws(connect_from(url, source).await.unwrap(), url).await;
    let msg = c.signed_register(id, k);
    c.send(&msg).await;
    c.recv().await
}

#[tokio::test]
async fn new_key_bindings_are_rate_limited_per_source_address() {
    let s = server(Config {
        new_bindings_per_ip_per_min: 3,
        ..Config::default()
    })
    .await;
    let url = s.ws_url();
    for i in 0..3 {
        let id = format!("n{i}");
        let reply = signed_from(&url, "127.0.0.1", &id, &many_key(i)).await;
        assert!(
            matches!(reply, ServerMessage::Registered { .. }),
            "{reply:?}"
        );
    }
    // Those connections are gone; their bindings stay.
    let reply = signed_from(&url, "127.0.0.1", "n3", &many_key(3)).await;
    assert_eq!(
        reply,
        ServerMessage::error(Refusal::BindingRateLimited.message("n3"))
    );
    assert_eq!(s.state().metrics.errors(ErrorKind::BindingRateLimited), 1);
    // A renewal makes no new binding, and unsigned registration still works.
    until_unregistered(&s, "n0").await;
    let reply = signed_from(&url, "127.0.0.1", "n0", &many_key(0)).await;
    assert!(
        matches!(reply, ServerMessage::Registered { .. }),
        "{reply:?}"
    );
    Client::register(&url, "plain").await;
    // Another address has its own allowance.
    let reply = signed_from(&url, "127.0.0.2", "n3", &many_key(3)).await;
    assert!(
        matches!(reply, ServerMessage::Registered { .. }),
        "{reply:?}"
    );
}
