//! A wallet made and used through two `mpc-signal` instances sharing one Redis.

use super::signaling::create_through_each;
use super::signing::{check_signatures, sign_through, verify_bip340};
use super::*;

#[test]
fn a_wallet_is_created_and_used_across_two_server_instances() {
    let redis = redis_server::RedisServer::start();
    let cluster = ["--redis-url", &redis.url, "--redis-prefix", "e2e"];
    let (a, b) = (Server::start_with(&cluster), Server::start_with(&cluster));
    let dir = tempdir("cluster");
    // cli1 and cli3 on instance A, cli2 on instance B.
    let outs = create_through_each([&a.url, &b.url, &a.url], &dir);
    let results: Vec<(String, Value)> = outs
        .iter()
        .map(|(id, o)| (id.clone(), json_of(o)))
        .collect();
    check_wallet(&dir, &results, 2, "secp256k1");

    // cli2 (on B) proposes, cli1 (on A) co-signs.
    let key = group_key(&results);
    let address = results[0].1["addresses"]["bitcoin_taproot"]
        .as_str()
        .unwrap();
    let wallet = &mpc_keystore::wallet_id(&key)[..8];
    let message_hex = "22".repeat(32);
    let outs = sign_through(
        &[&b.url, &a.url],
        &dir,
        &["cli2", "cli1"],
        wallet,
        &message_hex,
        &["--approve-message-hex", &message_hex],
        None,
    );
    let sig = check_signatures(&outs, &key, &message_hex);
    verify_bip340(address, &hex::decode(&message_hex).unwrap(), &sig);
    // The signaling really crossed instances, both ways.
    for s in [&a, &b] {
        for m in ["cluster_relays_out_total", "cluster_relays_in_total"] {
            assert!(metric(s, m) > 0, "{} {m} = 0", s.url);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `mpc_signal_<name>` from the server's `/metrics`.
fn metric(server: &Server, name: &str) -> u64 {
    use std::io::Read;
    let addr = server
        .url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let prefix = format!("mpc_signal_{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .parse()
        .unwrap()
}
