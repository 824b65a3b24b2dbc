//! The signaling server against real WebSocket clients on loopback.

mod common;

use std::time::Duration;

use common::*;
use mpc_protocol::{IceServer, ServerMessage};
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
    let mut c = Client::from_ws(ws);
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
            peers: vec!["quiet".into(), "ui".into()]
        }
    );
    let joiner = Client::register(&url, "cli1").await;
    assert_eq!(
        watcher.recv().await,
        ServerMessage::PeerJoined {
            peer_id: "cli1".into()
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
            peer_id: "silent".into()
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

#[tokio::test]
async fn slow_consumer_is_disconnected() {
    let s = server(Config {
        outgoing_queue: 8,
        rate_limit_per_sec: 0,
        ..Config::default()
    })
    .await;
    let url = s.ws_url();
    let mut fast = Client::register(&url, "fast").await;
    use futures_util::SinkExt;
    let mut slow = connect_raw(&url).await;
    slow.send(Message::text(r#"{"type":"register","peer_id":"slow"}"#))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let blob = "z".repeat(60_000);
    let msg = format!(r#"{{"type":"relay","to":"slow","data":"{blob}"}}"#);
    // ~60 KB a message: socket buffers fill, then the 8-slot outbox.
    let mut kicked = false;
    for _ in 0..2000 {
        fast.send(&msg).await;
        if s.state()
            .metrics
            .errors(mpc_signal::metrics::ErrorKind::SlowConsumer)
            > 0
        {
            kicked = true;
            break;
        }
    }
    assert!(kicked, "slow reader was never disconnected");
    fast.expect_error("not reading fast enough").await;
    let mut gone = false;
    for _ in 0..100 {
        if s.state().registry.len() == 1 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "slow peer still registered");
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
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in\n{body}"
        );
    }
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
