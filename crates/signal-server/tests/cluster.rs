//! Several `mpc-signal` instances sharing one real `redis-server` serve
//! as one: registration, key bindings, discovery, presence and relay work
//! across them, a dead instance's ids are freed, and a Redis outage is a
//! clear error that heals.

mod common;
mod redis_server;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use mpc_protocol::ServerMessage;
use mpc_signal::metrics::ErrorKind;
use mpc_signal::registry::Refusal;
use mpc_signal::{ClusterConfig, Config, SignalServer};
use redis_server::RedisServer;
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

/// The instance TTL of these tests: short, so deaths are seen quickly.
const TTL: Duration = Duration::from_millis(1000);

async fn instance(redis: &RedisServer) -> SignalServer {
    instance_with(redis, Config::default()).await
}

async fn list(c: &mut Client, keys: bool) -> ServerMessage {
    c.send(&format!(r#"{{"type":"list_peers","keys":{keys}}}"#))
        .await;
    c.recv().await
}

async fn relay(from: &mut Client, to: &str, data: &str) {
    from.send(&format!(r#"{{"type":"relay","to":"{to}","data":{data}}}"#))
        .await;
}

async fn expect_relay(c: &mut Client, from: &str, data: &str) {
    match c.recv().await {
        ServerMessage::Relay { from: f, data: d } => {
            assert_eq!(f, from);
            assert_eq!(d.get(), data);
        }
        other => panic!("expected a relay from {from}, got {other:?}"),
    }
}

async fn register_reply(url: &str, msg: impl FnOnce(&Client) -> String) -> (Client, ServerMessage) {
    let mut c = Client::connect(url).await;
    let text = msg(&c);
    c.send(&text).await;
    let reply = c.recv().await;
    (c, reply)
}

#[tokio::test]
async fn two_instances_serve_as_one() {
    let redis = RedisServer::start();
    let a = instance(&redis).await;
    let b = instance(&redis).await;
    let (ua, ub) = (a.ws_url(), b.ws_url());

    // A watcher on B hears joins and leaves on A.
    let mut w = Client::register(&ub, "watcher").await;
    w.send(r#"{"type":"list_peers","watch":true}"#).await;
    assert!(matches!(w.recv().await, ServerMessage::Peers { peers, .. } if peers == ["watcher"]));

    let k1 = key(1);
    let mut a1 = Client::register_signed(&ua, "a1", &k1).await;
    assert_eq!(
        w.recv().await,
        ServerMessage::PeerJoined {
            peer_id: "a1".into(),
            pubkey: Some(k1.public_key().to_hex())
        }
    );
    let mut b1 = Client::register(&ub, "b1").await;
    assert!(matches!(w.recv().await, ServerMessage::PeerJoined { peer_id, .. } if peer_id == "b1"));

    // Both instances list everyone, sorted, with the keys.
    assert_eq!(a1.peers().await, ["a1", "b1", "watcher"]);
    assert_eq!(b1.peers().await, ["a1", "b1", "watcher"]);
    match list(&mut b1, true).await {
        ServerMessage::Peers {
            keys: Some(keys), ..
        } => {
            assert_eq!(keys.len(), 1);
            assert_eq!(keys["a1"], k1.public_key().to_hex());
        }
        other => panic!("{other:?}"),
    }

    // Relays cross instances both ways, `from` stamped by the sender's.
    relay(&mut a1, "b1", r#"{"n":1}"#).await;
    expect_relay(&mut b1, "a1", r#"{"n":1}"#).await;
    relay(&mut b1, "a1", r#"{"n":2,"s":"x\ny"}"#).await;
    expect_relay(&mut a1, "b1", r#"{"n":2,"s":"x\ny"}"#).await;
    // Many in a row arrive in order.
    for i in 0..50 {
        relay(&mut a1, "b1", &format!(r#"{{"i":{i}}}"#)).await;
    }
    for i in 0..50 {
        expect_relay(&mut b1, "a1", &format!(r#"{{"i":{i}}}"#)).await;
    }
    relay(&mut a1, "nobody", "{}").await;
    a1.expect_error("unknown peer \"nobody\"").await;
    assert_eq!(a.state().metrics.cluster_relays_out.load(Relaxed), 51);
    assert_eq!(b.state().metrics.cluster_relays_in.load(Relaxed), 51);
    assert_eq!(b.state().metrics.cluster_relays_out.load(Relaxed), 1);

    // An id held on one instance is taken on the other.
    let (_c, reply) = register_reply(&ub, |_| r#"{"type":"register","peer_id":"a1"}"#.into()).await;
    assert!(matches!(reply, ServerMessage::Error { error } if error == "peer_id taken"));
    assert_eq!(b.state().metrics.errors(ErrorKind::PeerIdTaken), 1);

    // Its holder leaves: the watcher hears it, and the key binding holds
    // on the other instance.
    a1.close().await;
    assert_eq!(
        w.recv().await,
        ServerMessage::PeerLeft {
            peer_id: "a1".into()
        }
    );
    let (_c, reply) = register_reply(&ub, |c| c.signed_register("a1", &key(2))).await;
    assert!(
        matches!(&reply, ServerMessage::Error { error } if error.contains("bound to another identity key")),
        "{reply:?}"
    );
    let (_c, reply) = register_reply(&ub, |_| r#"{"type":"register","peer_id":"a1"}"#.into()).await;
    assert!(
        matches!(&reply, ServerMessage::Error { error } if error.contains("register with a signature")),
        "{reply:?}"
    );
    let (mut back, reply) = register_reply(&ub, |c| c.signed_register("a1", &k1)).await;
    assert!(
        matches!(reply, ServerMessage::Registered { .. }),
        "{reply:?}"
    );
    assert!(matches!(w.recv().await, ServerMessage::PeerJoined { peer_id, .. } if peer_id == "a1"));
    // Now on B, and still reachable from A.
    let mut a2 = Client::register(&ua, "a2").await;
    assert!(matches!(w.recv().await, ServerMessage::PeerJoined { peer_id, .. } if peer_id == "a2"));
    relay(&mut a2, "a1", "[1]").await;
    expect_relay(&mut back, "a2", "[1]").await;

    // A clean shutdown of A frees its ids at once.
    a.shutdown().await.unwrap();
    assert_eq!(
        w.recv().await,
        ServerMessage::PeerLeft {
            peer_id: "a2".into()
        }
    );
    assert_eq!(b1.peers().await, ["a1", "b1", "watcher"]);
}

#[tokio::test]
async fn a_killed_instance_frees_its_ids_within_the_ttl() {
    let redis = RedisServer::start();
    let (mut dying, url) = start_binary(
        &["--redis-url", &redis.url, "--redis-prefix", "test"],
        &[("MPC_SIGNAL_INSTANCE_TTL_SECS", "1")],
    );
    let b = instance(&redis).await;
    let _x1 = Client::register(&url, "x1").await;
    let _x2 = Client::register_signed(&url, "x2", &key(7)).await;
    let mut w = Client::register(&b.ws_url(), "watcher").await;
    w.send(r#"{"type":"list_peers","watch":true}"#).await;
    assert!(
        matches!(w.recv().await, ServerMessage::Peers { peers, .. } if peers == ["watcher", "x1", "x2"])
    );
    let (_c, reply) = register_reply(&b.ws_url(), |_| {
        r#"{"type":"register","peer_id":"x1"}"#.into()
    })
    .await;
    assert!(matches!(reply, ServerMessage::Error { error } if error == "peer_id taken"));

    // SIGKILL: no release, no goodbye. Its clients' TCP connections stay
    // open from their side, so only the heartbeat tells.
    let t0 = Instant::now();
    dying.kill().unwrap();
    dying.wait().unwrap();
    let mut left = Vec::new();
    while left.len() < 2 {
        match w.recv().await {
            ServerMessage::PeerLeft { peer_id } => left.push(peer_id),
            other => panic!("{other:?}"),
        }
    }
    left.sort();
    assert_eq!(left, ["x1", "x2"]);
    let took = t0.elapsed();
    // Dead after the 1 s TTL, swept within the next sweep (0.5 s); the
    // rest is slack for a loaded machine (the whole suite runs at once).
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_eq!(w.peers().await, ["watcher"]);
    // x1 is free; x2's key binding outlives its dead holder.
    let _x1 = Client::register(&b.ws_url(), "x1").await;
    let (_c, reply) = register_reply(&b.ws_url(), |c| c.signed_register("x2", &key(8))).await;
    assert!(
        matches!(&reply, ServerMessage::Error { error } if error.contains("bound to another identity key")),
        "{reply:?}"
    );
    let _x2 = Client::register_signed(&b.ws_url(), "x2", &key(7)).await;
}

#[tokio::test]
async fn a_redis_outage_is_a_clear_error_and_heals() {
    let mut redis = RedisServer::start();
    let a = instance(&redis).await;
    let b = instance(&redis).await;
    let mut held = Client::register(&a.ws_url(), "held").await;
    let mut local = Client::register(&a.ws_url(), "local").await;

    assert_eq!(
        http_get(a.local_addr(), "/healthz").await,
        (200, "ok".into())
    );
    redis.kill();
    // Registration needs the shared registry: a clear error, and the
    // connection stays open to try again.
    let (mut c, reply) = register_reply(&a.ws_url(), |_| {
        r#"{"type":"register","peer_id":"new"}"#.into()
    })
    .await;
    assert!(
        matches!(&reply, ServerMessage::Error { error }
            if error.starts_with("register failed: the shared registry (Redis) is unavailable")),
        "{reply:?}"
    );
    assert!(a.state().metrics.errors(ErrorKind::RegistryUnavailable) >= 1);
    // Two peers on one instance still reach each other.
    relay(&mut local, "held", "7").await;
    expect_relay(&mut held, "local", "7").await;

    // Past the TTL without Redis, the instance drops its clients so they
    // register again (elsewhere, or here once Redis is back).
    assert_eq!(held.expect_close().await, Some(1013));
    assert_eq!(local.expect_close().await, Some(1013));
    // A load balancer now sends new clients elsewhere.
    let (status, body) = http_get(a.local_addr(), "/healthz").await;
    assert_eq!(status, 503, "{body}");
    assert!(http_get(a.local_addr(), "/metrics")
        .await
        .1
        .contains("mpc_signal_cluster_healthy 0"));

    // Back, and empty: each instance rejoins at its next heartbeat.
    redis.restart();
    register_when_back(&mut c, "new").await;
    let mut other = Client::connect(&b.ws_url()).await;
    register_when_back(&mut other, "other").await;
    let t0 = Instant::now();
    while http_get(a.local_addr(), "/healthz").await.0 != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "/healthz never recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Everything works again across instances, subscriptions included.
    let t0 = Instant::now();
    loop {
        relay(&mut other, "new", "8").await;
        match tokio::time::timeout(Duration::from_millis(300), c.recv()).await {
            Ok(ServerMessage::Relay { from, data }) => {
                assert_eq!((from.as_str(), data.get()), ("other", "8"));
                break;
            }
            Ok(m) => panic!("{m:?}"),
            Err(_) => {
                // A's subscription may still be reconnecting.
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "relays never healed"
                );
                let _ = other.recv().await; // the "unknown peer" answer, if any
            }
        }
    }
}

#[tokio::test]
async fn three_instances_deliver_every_relay_once_in_order() {
    let redis = RedisServer::start();
    let servers = [
        instance(&redis).await,
        instance(&redis).await,
        instance(&redis).await,
    ];
    const CLIENTS: usize = 12;
    const EACH: usize = 150;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let url = servers[i % 3].ws_url();
        clients.push(Client::register(&url, &format!("p{i}")).await);
    }
    // A fixed pseudo-random plan: who sends what to whom.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut plan = vec![Vec::new(); CLIENTS];
    let mut expected = [0usize; CLIENTS];
    for (i, sends) in plan.iter_mut().enumerate() {
        for seq in 0..EACH {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let to = (i + 1 + (x as usize % (CLIENTS - 1))) % CLIENTS;
            sends.push((to, seq));
            expected[to] += 1;
        }
    }
    let mut tasks = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        let sends = plan[i].clone();
        let want = expected[i];
        tasks.push(tokio::spawn(async move {
            for (to, seq) in sends {
                relay(&mut c, &format!("p{to}"), &format!(r#"{{"seq":{seq}}}"#)).await;
            }
            // Per sender, the next sequence number expected.
            let mut next = std::collections::HashMap::<String, usize>::new();
            for _ in 0..want {
                match c.recv().await {
                    ServerMessage::Relay { from, data } => {
                        let v: serde_json::Value = serde_json::from_str(data.get()).unwrap();
                        let seq = v["seq"].as_u64().unwrap() as usize;
                        let n = next.entry(from.clone()).or_default();
                        assert!(seq >= *n, "p{i}: {seq} from {from} after {n}");
                        *n = seq + 1;
                    }
                    other => panic!("p{i}: {other:?}"),
                }
            }
            c.expect_silence(Duration::from_millis(200)).await;
            want
        }));
    }
    let mut delivered = 0;
    for t in tasks {
        delivered += t.await.unwrap();
    }
    assert_eq!(delivered, CLIENTS * EACH);
    // Two thirds of the relays crossed instances.
    let crossed: u64 = servers
        .iter()
        .map(|s| s.state().metrics.cluster_relays_out.load(Relaxed))
        .sum();
    assert!(crossed > (CLIENTS * EACH / 2) as u64, "{crossed}");
}

/// A Unix-socket proxy in front of Redis that a test can cut (every
/// connection through it drops, new ones are refused) and restore, while
/// Redis itself keeps its data.
struct Proxy {
    url: String,
    cut: Arc<Mutex<Option<CancellationToken>>>,
}

impl Proxy {
    fn start(redis: &RedisServer, dir: &Path) -> Proxy {
        let path = dir.join("proxy.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let target = redis.url.trim_start_matches("unix://").to_string();
        let cut = Arc::new(Mutex::new(Some(CancellationToken::new())));
        let state = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Some(live) = state.lock().unwrap().clone() else {
                    continue; // cut: refuse by dropping
                };
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut out) = UnixStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                        _ = live.cancelled() => {}
                    }
                });
            }
        });
        Proxy {
            url: format!("unix://{}", path.display()),
            cut,
        }
    }

    fn cut(&self) {
        if let Some(t) = self.cut.lock().unwrap().take() {
            t.cancel();
        }
    }

    fn restore(&self) {
        *self.cut.lock().unwrap() = Some(CancellationToken::new());
    }
}

#[tokio::test]
async fn an_id_released_while_redis_is_unreachable_is_freed_once_it_is_back() {
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("mpc-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let proxy = Proxy::start(&redis, &dir);
    // A TTL longer than the cut: A stays a member throughout.
    let config = |url: &str| Config {
        cluster: Some(ClusterConfig {
            url: url.to_string(),
            prefix: "cut".into(),
            instance_ttl: Duration::from_secs(8),
        }),
        ..Config::default()
    };
    let bind = |c| SignalServer::bind("127.0.0.1:0".parse().unwrap(), c);
    let a = bind(config(&proxy.url)).await.unwrap();
    let b = bind(config(&redis.url)).await.unwrap();
    let leaving = Client::register(&a.ws_url(), "leaving").await;

    // A loses Redis; its client leaves meanwhile, so freeing the id fails.
    proxy.cut();
    leaving.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut c = Client::connect(&b.ws_url()).await;
    c.send(r#"{"type":"register","peer_id":"leaving"}"#).await;
    c.expect_error("peer_id taken").await;

    // Back: A's next heartbeat (every 2 s) retries the release.
    proxy.restore();
    let t0 = Instant::now();
    loop {
        c.send(r#"{"type":"register","peer_id":"leaving"}"#).await;
        match c.recv().await {
            ServerMessage::Registered { .. } => break,
            ServerMessage::Error { error } if error == "peer_id taken" => {
                assert!(
                    t0.elapsed() < Duration::from_secs(6),
                    "the release was never retried"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("{other:?}"),
        }
    }
    // No client was dropped for it: the cut was shorter than the TTL.
    assert_eq!(a.state().cluster.as_ref().unwrap().resets(), 0);
    assert_eq!(c.peers().await, ["leaving"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Registers `c` as `id`, retrying while the registry is unavailable.
async fn register_when_back(c: &mut Client, id: &str) {
    let t0 = Instant::now();
    loop {
        c.send(&format!(r#"{{"type":"register","peer_id":"{id}"}}"#))
            .await;
        match c.recv().await {
            ServerMessage::Registered { .. } => return,
            ServerMessage::Error { error } if error.contains("unavailable") => {
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "Redis never came back: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn an_unreachable_redis_stops_the_binary_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("mpc-no-redis-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_mpc-signal"))
        .args(["--listen", "127.0.0.1:0", "--redis-url"])
        .arg(format!("unix://{}/nothing.sock", dir.display()))
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: the shared registry (Redis) is unavailable"),
        "{stderr}"
    );
    // It never said it was listening.
    assert!(out.stdout.is_empty());
    let out = Command::new(env!("CARGO_BIN_EXE_mpc-signal"))
        .args(["--listen", "127.0.0.1:0", "--redis-url", "http://x"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad Redis URL"));
}

async fn instance_with(redis: &RedisServer, config: Config) -> SignalServer {
    SignalServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Config {
            cluster: Some(ClusterConfig {
                url: redis.url.clone(),
                prefix: "test".into(),
                instance_ttl: TTL,
            }),
            ..config
        },
    )
    .await
    .expect("instance joins the cluster")
}

/// Issue 13, finding 1, on a two-instance cluster: the filtered list reads
/// only its ids (HMGET), the full list comes in pages (ZRANGEBYLEX), and
/// no frame exceeds the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_keyed_peers_on_two_instances() {
    let redis = RedisServer::start();
    let open = || Config {
        max_connections_per_ip: 0,
        new_bindings_per_ip_per_min: 0,
        ..Config::default()
    };
    let a = instance_with(&redis, open()).await;
    let b = instance_with(&redis, open()).await;
    a_large_keyed_list_stays_within_the_frame_limit(&[a.ws_url(), b.ws_url()]).await;
}

/// Issue 13, finding 2, in Redis: bindings are capped cluster-wide, and a
/// full table refuses new ones rather than drop a departed user's.
#[tokio::test]
async fn the_cluster_caps_bindings_and_keeps_every_live_one() {
    let redis = RedisServer::start();
    let capped = || Config {
        max_key_bindings: 5,
        new_bindings_per_ip_per_min: 0,
        ..Config::default()
    };
    let a = instance_with(&redis, capped()).await;
    let b = instance_with(&redis, capped()).await;
    let alice = Client::register_signed(&a.ws_url(), "alice", &key(1)).await;
    alice.close().await;
    assert_eq!(flood_bindings(&[a.ws_url(), b.ws_url()], 12).await, 12 - 4);
    assert_eq!(
        a.state().metrics.errors(ErrorKind::BindingsFull)
            + b.state().metrics.errors(ErrorKind::BindingsFull),
        8
    );
    let (_c, reply) = register_reply(&b.ws_url(), |c| c.signed_register("alice", &key(2))).await;
    assert_eq!(
        reply,
        ServerMessage::error(Refusal::BoundToOtherKey.message("alice"))
    );
    // Renewing one's own binding is no new binding; unsigned ids still work.
    let _alice = Client::register_signed(&b.ws_url(), "alice", &key(1)).await;
    let _plain = Client::register(&a.ws_url(), "plain").await;
}

/// A per-address limit on new bindings holds on a cluster instance too.
#[tokio::test]
async fn new_bindings_are_rate_limited_on_a_cluster_instance() {
    let redis = RedisServer::start();
    let a = instance_with(
        &redis,
        Config {
            new_bindings_per_ip_per_min: 2,
            ..Config::default()
        },
    )
    .await;
    for i in 0..3 {
        let id = format!("n{i}");
        let (_c, reply) =
            register_reply(&a.ws_url(), |c| c.signed_register(&id, &many_key(i))).await;
        if i < 2 {
            assert!(
                matches!(reply, ServerMessage::Registered { .. }),
                "{reply:?}"
            );
        } else {
            assert_eq!(
                reply,
                ServerMessage::error(Refusal::BindingRateLimited.message(&id))
            );
        }
    }
}
