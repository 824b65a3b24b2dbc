//! The `mpc-signal` binary as an operator runs it.

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use mpc_protocol::ServerMessage;
use mpc_signal::registry::Refusal;

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn sigterm_closes_clients_and_exits_zero_within_5s() {
    let (mut child, url) = start_binary(&[], &[]);
    let mut a = Client::register(&url, "cli1").await;
    let t0 = Instant::now();
    sigterm(&child);
    assert_eq!(a.expect_close().await, Some(1001));
    let status = wait_exit(&mut child, Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn flags_and_env_set_the_limits() {
    let (child, url) = start_binary(
        &["--ice-server", "stun:stun.example.org:3478"],
        &[
            ("MPC_SIGNAL_MAX_MESSAGE_BYTES", "512"),
            ("MPC_SIGNAL_ICE_SERVER", "stun:ignored.example.org:1"),
        ],
    );
    let mut c = Client::connect(&url).await;
    c.send(r#"{"type":"register","peer_id":"cli1"}"#).await;
    match c.recv().await {
        // The flag wins over the environment.
        ServerMessage::Registered { ice_servers, .. } => {
            assert_eq!(ice_servers.len(), 1);
            assert_eq!(ice_servers[0].urls, vec!["stun:stun.example.org:3478"]);
        }
        other => panic!("{other:?}"),
    }
    c.send(&format!(
        r#"{{"type":"list_peers","pad":"{}"}}"#,
        "p".repeat(600)
    ))
    .await;
    assert_eq!(c.expect_close().await, Some(1009));
    stop(child);
}

/// Registers `msg` on `c`, retrying while the server has not yet seen the
/// previous holder leave; returns the final answer.
async fn register_after_holder_left(c: &mut Client, msg: &str) -> ServerMessage {
    for _ in 0..200 {
        c.send(msg).await;
        match c.recv().await {
            ServerMessage::Error { error } if error == "peer_id taken" => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
    panic!("the holder never left");
}

/// Under required auth: an unsigned `register` is refused; then "x" is
/// registered with key 1, left, and claimed with key 2. Returns the answer
/// to that claim.
async fn refuse_unsigned_then_claim_with_another_key(url: &str) -> ServerMessage {
    let needs_sig = "register: this server requires a signed registration (pubkey and signature)";
    let mut b = Client::connect(url).await;
    b.send(r#"{"type":"register","peer_id":"x"}"#).await;
    assert_eq!(b.expect_error(needs_sig).await, needs_sig);
    let a = Client::register_signed(url, "x", &key(1)).await;
    a.close().await;
    let msg = b.signed_register("x", &key(2));
    register_after_holder_left(&mut b, &msg).await
}

fn stop(mut child: Child) {
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(5)).success());
}

#[tokio::test]
async fn auth_flags_and_env_parse() {
    // Flags: auth required, bindings end with the connection.
    let (child, url) = start_binary(&["--require-auth", "--key-binding-secs", "0"], &[]);
    let answer = refuse_unsigned_then_claim_with_another_key(&url).await;
    assert!(
        matches!(answer, ServerMessage::Registered { .. }),
        "{answer:?}"
    );
    stop(child);

    // Environment: the same settings, and a binding that outlives the holder.
    let (child, url) = start_binary(
        &[],
        &[
            ("MPC_SIGNAL_REQUIRE_AUTH", "1"),
            ("MPC_SIGNAL_KEY_BINDING_SECS", "3600"),
        ],
    );
    assert_eq!(
        refuse_unsigned_then_claim_with_another_key(&url).await,
        ServerMessage::error("peer_id x is bound to another identity key")
    );
    stop(child);

    // Without either, unsigned registration works (the spec's register).
    let (child, url) = start_binary(&[], &[]);
    Client::register(&url, "x").await;
    stop(child);
}

#[test]
fn bad_flags_fail_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_mpc-signal"))
        .args(["--listen", "127.0.0.1:0", "--ice-server", "http://nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must start with stun:"), "{err}");
}

#[test]
fn bad_auth_env_fails_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_mpc-signal"))
        .args(["--listen", "127.0.0.1:0"])
        .env("MPC_SIGNAL_REQUIRE_AUTH", "maybe")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--require-auth"), "{err}");
}

/// Issue 13, finding 1: with 5,000 keyed 64-character ids, one `peers`
/// frame used to pass the server's write buffer, and the server dropped
/// the proposer asking for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_keyed_peers_on_one_instance() {
    let (child, url) = start_binary(
        &[
            "--max-connections-per-ip",
            "0",
            "--new-bindings-per-ip-per-min",
            "0",
        ],
        &[],
    );
    a_large_keyed_list_stays_within_the_frame_limit(&[url]).await;
    stop(child);
}

/// Issue 13, finding 2: throwaway ids used to flush a departed user's
/// binding, and then another key could take its id, even under
/// `--require-auth`. Now a full table refuses new bindings instead.
#[tokio::test]
async fn a_flood_of_throwaway_bindings_cannot_free_a_departed_users_id() {
    let (child, url) = start_binary(
        &[
            "--require-auth",
            "--max-key-bindings",
            "20",
            "--new-bindings-per-ip-per-min",
            "0",
        ],
        &[],
    );
    let alice = Client::register_signed(&url, "alice", &key(1)).await;
    alice.close().await;
    assert_eq!(
        flood_bindings(std::slice::from_ref(&url), 60).await,
        60 - 19
    );
    let mut thief = Client::connect(&url).await;
    let msg = thief.signed_register("alice", &key(2));
    assert_eq!(
        register_after_holder_left(&mut thief, &msg).await,
        ServerMessage::error(Refusal::BoundToOtherKey.message("alice"))
    );
    // Alice herself still gets in.
    Client::register_signed(&url, "alice", &key(1)).await;
    stop(child);
}

/// Issue 13, finding 4: by default one address holds at most 64
/// connections (registered or not); past that, HTTP 429.
#[tokio::test]
async fn connections_per_address_are_limited_by_default() {
    let (child, url) = start_binary(&[], &[]);
    let mut open = Vec::new();
    for _ in 0..64 {
        open.push(connect_raw(&url).await);
    }
    assert_eq!(refused_status(&url, None).await, 429);
    // From another address it works.
    Client::from_ws(connect_from(&url, "127.0.0.2").await.unwrap(), &url).await;
    drop(open);
    stop(child);
}

/// Issue 13, finding 4: by default a connection that does not register
/// within 10 s is closed, even if it answers pings.
#[tokio::test]
async fn unregistered_connections_are_closed_after_10s_by_default() {
    let (child, url) = start_binary(&[], &[]);
    let t0 = Instant::now();
    let mut idle = Client::connect(&url).await;
    let mut c = Client::register(&url, "cli1").await;
    // Longer than the client's usual wait.
    let closed = tokio::time::timeout(Duration::from_secs(15), idle.expect_close_within()).await;
    assert_eq!(closed.expect("still open after 15 s"), Some(1008));
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(13),
        "{took:?}"
    );
    assert_eq!(c.peers().await, ["cli1"]);
    stop(child);
}
