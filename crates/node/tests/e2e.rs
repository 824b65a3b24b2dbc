//! Process-level end to end: an `mpc-signal` process and several
//! `mpc-wallet` processes create wallets over real WebRTC on loopback.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mpc_keystore::KeyShareFile;
use serde_json::Value;

const PASS: &str = "e2e passphrase";

#[path = "../../signal-server/tests/redis_server/mod.rs"]
mod redis_server;

fn wallet_bin() -> &'static str {
    env!("CARGO_BIN_EXE_mpc-wallet")
}

/// `mpc-signal` sits next to `mpc-wallet` when the workspace is built;
/// build it if this package's tests run alone.
fn signal_bin() -> PathBuf {
    let path = Path::new(wallet_bin()).with_file_name("mpc-signal");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", "mpc-signal", "--bin", "mpc-signal"])
            .status()
            .expect("cargo build mpc-signal")
            .success();
        assert!(ok && path.exists(), "could not build mpc-signal");
    }
    path
}

/// A running `mpc-signal`, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start() -> Server {
        Server::start_with(&[])
    }

    fn start_with(args: &[&str]) -> Server {
        let mut child = Command::new(signal_bin())
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn mpc-signal");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .expect("listening line");
        Server {
            url: format!("ws://{addr}/ws"),
            child,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mpc-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn wallet_cmd(server: &Server, dir: &Path, id: &str) -> Command {
    wallet_cmd_at(&server.url, dir, id)
}

fn wallet_cmd_at(url: &str, dir: &Path, id: &str) -> Command {
    let mut c = Command::new(wallet_bin());
    c.args(["--server", url, "--peer-id", id, "--keystore"])
        .arg(dir.join(id))
        .env("MPC_WALLET_PASSPHRASE", PASS)
        .env("MPC_WALLET_SCRYPT_LOG_N", "12")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Waits for `who` to be registered, so a proposal can't race a join.
fn wait_registered(server: &Server, who: &[&str]) {
    wait_registered_at(&server.url, who)
}

fn wait_registered_at(url: &str, who: &[&str]) {
    // The observer's own identity key lives in a scratch keystore.
    let observer = std::env::temp_dir().join(format!("mpc-e2e-observer-{}", std::process::id()));
    let t0 = Instant::now();
    loop {
        let out = Command::new(wallet_bin())
            .args(["--server", url, "--json", "--keystore"])
            .arg(&observer)
            .arg("peers")
            .output()
            .unwrap();
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            let peers: Vec<&str> = v["peers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect();
            if who.iter().all(|w| peers.contains(w)) {
                return;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "peers never registered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn finish(child: Child, limit: Duration) -> Output {
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("process {pid} did not finish within {limit:?}");
        }
    }
}

/// The wallet files in a keystore directory (not the identity files).
fn wallet_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Creates a t-of-n wallet with one `create` and n-1 `join --yes --json`
/// processes; returns each node's JSON result.
fn create_wallet(name: &str, n: usize, t: u16, curve: &str) -> (PathBuf, Vec<(String, Value)>) {
    let server = Server::start();
    let dir = tempdir(name);
    let ids: Vec<String> = (1..=n).map(|i| format!("cli{i}")).collect();
    let mut joiners = Vec::new();
    for id in &ids[1..] {
        let child = wallet_cmd(&server, &dir, id)
            .args(["--json", "join", "--yes"])
            .spawn()
            .unwrap();
        joiners.push((id.clone(), child));
    }
    let others: Vec<&str> = ids[1..].iter().map(String::as_str).collect();
    wait_registered(&server, &others);
    let creator = wallet_cmd(&server, &dir, &ids[0])
        .args([
            "--json",
            "create",
            "--participants",
            &ids.join(","),
            "--curve",
            curve,
        ])
        .args(["--threshold", &t.to_string()])
        .spawn()
        .unwrap();
    let mut results = vec![(
        ids[0].clone(),
        json_of(&finish(creator, Duration::from_secs(60))),
    )];
    for (id, child) in joiners {
        results.push((id, json_of(&finish(child, Duration::from_secs(60)))));
    }
    (dir, results)
}

/// The group key the first node reports.
fn group_key(results: &[(String, Value)]) -> String {
    results[0].1["group_public_key"]
        .as_str()
        .expect("group_public_key")
        .to_string()
}

fn check_wallet(dir: &Path, results: &[(String, Value)], t: u16, curve: &str) {
    let key = group_key(results);
    for (id, r) in results {
        assert_eq!(r["group_public_key"], key.as_str(), "{id} disagrees");
        assert_eq!(r["curve"], curve);
        assert_eq!(r["threshold"], t);
        assert_eq!(r["session_id"], results[0].1["session_id"]);
        // The keystore file is real, 0600, and opens with the passphrase.
        let path = PathBuf::from(r["keystore_path"].as_str().unwrap());
        assert!(path.starts_with(dir.join(id)), "{path:?}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let file = KeyShareFile::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(file.metadata.group_public_key, key);
        assert_eq!(&file.metadata.peer_id, id);
        assert!(!file.open(PASS).unwrap().key_package().is_empty());
        assert!(file.open("not the passphrase").is_err());
    }
    match curve {
        "secp256k1" => {
            let addr = results[0].1["addresses"]["bitcoin_taproot"]
                .as_str()
                .unwrap();
            assert_eq!(
                addr,
                mpc_address::taproot_address(&key, Default::default()).unwrap()
            );
        }
        _ => {
            let addr = results[0].1["addresses"]["solana"].as_str().unwrap();
            assert_eq!(addr, mpc_address::solana_address(&key).unwrap());
        }
    }
}

#[test]
fn three_processes_create_a_2_of_3_taproot_wallet() {
    let (dir, results) = create_wallet("2of3", 3, 2, "secp256k1");
    check_wallet(&dir, &results, 2, "secp256k1");

    // `wallets` and `wallet show` read the metadata without the passphrase.
    let key = results[1].1["group_public_key"].as_str().unwrap();
    let out = Command::new(wallet_bin())
        .args(["--json", "--keystore"])
        .arg(dir.join("cli2"))
        .arg("wallets")
        .env_remove("MPC_WALLET_PASSPHRASE")
        .output()
        .unwrap();
    let v = json_of(&out);
    let w = &v["wallets"][0];
    assert_eq!(v["wallets"].as_array().unwrap().len(), 1);
    assert_eq!(w["group_public_key"], key);
    assert_eq!(
        w["participants"],
        serde_json::json!(["cli1", "cli2", "cli3"])
    );
    assert!(w["addresses"]["bitcoin_taproot"]
        .as_str()
        .unwrap()
        .starts_with("bc1p"));
    // Every participant confirmed storing its share (review finding 4).
    assert_eq!(w["confirmation"]["state"], "confirmed", "{w}");
    for query in [key.to_string(), w["id"].as_str().unwrap().to_string()] {
        let out = Command::new(wallet_bin())
            .args(["--json", "--network", "regtest", "--keystore"])
            .arg(dir.join("cli3"))
            .args(["wallet", "show", &query])
            .output()
            .unwrap();
        let shown = json_of(&out);
        assert_eq!(shown["group_public_key"], key);
        assert!(shown["addresses"]["bitcoin_taproot"]
            .as_str()
            .unwrap()
            .starts_with("bcrt1p"));
    }

    // `wallet export` then `wallet import` moves a wallet to another
    // keystore, only with its passphrase, and never over an existing one.
    let exported = Command::new(wallet_bin())
        .args(["--keystore"])
        .arg(dir.join("cli2"))
        .args(["wallet", "export", key])
        .output()
        .unwrap();
    assert!(exported.status.success());
    let file = dir.join("exported.json");
    std::fs::write(&file, &exported.stdout).unwrap();
    let import = |pass: &str| {
        Command::new(wallet_bin())
            .args(["--json", "--keystore"])
            .arg(dir.join("elsewhere"))
            .args(["wallet", "import"])
            .arg(&file)
            .env("MPC_WALLET_PASSPHRASE", pass)
            .output()
            .unwrap()
    };
    let wrong = import("not it");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"));
    assert_eq!(json_of(&import(PASS))["group_public_key"], key);
    let again = import(PASS);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn five_processes_create_a_3_of_5_ed25519_wallet() {
    let (dir, results) = create_wallet("3of5", 5, 3, "ed25519");
    check_wallet(&dir, &results, 3, "ed25519");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Kills one joiner once its DKG has started: every other node exits
/// non-zero naming it, and nobody writes a keystore.
/// `join --yes` (with `args`) at each of `ids`, `victim` set up by `set`;
/// returns the others and the victim once all are registered.
fn joiners(
    server: &Server,
    dir: &Path,
    ids: &[&str],
    args: &[&str],
    victim: &str,
    set: impl FnOnce(&mut Command),
) -> (Vec<(String, Child)>, Child) {
    let mut set = Some(set);
    let (mut others, mut victim_child) = (Vec::new(), None);
    for id in ids {
        let mut cmd = wallet_cmd(server, dir, id);
        cmd.args(["--json", "join", "--yes"]).args(args);
        let chosen = if *id == victim { set.take() } else { None };
        match chosen {
            Some(set) => {
                set(&mut cmd);
                victim_child = Some(cmd.spawn().unwrap());
            }
            None => others.push((id.to_string(), cmd.spawn().unwrap())),
        }
    }
    wait_registered(server, ids);
    (
        others,
        victim_child.expect("the victim is one of the joiners"),
    )
}

#[test]
fn killing_a_joiner_mid_dkg_aborts_the_others_without_a_keystore() {
    let server = Server::start();
    let dir = tempdir("kill");
    let ids = ["cli1", "cli2", "cli3", "cli4"];
    let victim_id = "cli3";
    let (mut others, mut victim) = joiners(&server, &dir, &ids[1..], &[], victim_id, |c| {
        c.env("RUST_LOG", "warn,mpc_wallet::progress=info");
    });
    let creator = wallet_cmd(&server, &dir, ids[0])
        .args([
            "--json",
            "create",
            "--participants",
            &ids.join(","),
            "--threshold",
            "3",
        ])
        .spawn()
        .unwrap();
    others.push((ids[0].to_string(), creator));

    // Stop the victim the moment its DKG starts, then kill it: it can't
    // have sent `ready`, so nobody can finish.
    let stderr = BufReader::new(victim.stderr.take().unwrap());
    let mut seen = false;
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains("DKG round 1") {
            let pid = victim.id().to_string();
            Command::new("kill").args(["-STOP", &pid]).status().unwrap();
            seen = true;
            break;
        }
    }
    assert!(seen, "victim never started the DKG");
    std::thread::sleep(Duration::from_millis(200));
    victim.kill().unwrap();
    victim.wait().unwrap();

    for (id, child) in others {
        let out = finish(child, Duration::from_secs(60));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{id} succeeded");
        assert!(
            err.contains(victim_id),
            "{id} did not name {victim_id}: {err}"
        );
        assert!(out.stdout.is_empty(), "{id} printed a result");
        let wallets = wallet_files(&dir.join(&id));
        assert!(wallets.is_empty(), "{id} wrote {wallets:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Review finding 4: a participant that dies before confirming it stored
/// its share (here, killed as it would send `wallet_created`) used to
/// leave the others reporting "wallet created" with exit 0. Now they fail,
/// name it, and say not to fund the address.
#[test]
fn a_wallet_a_participant_never_confirmed_fails_with_do_not_fund() {
    let server = Server::start();
    let dir = tempdir("unconfirmed");
    let ids = ["cli1", "cli2", "cli3"];
    let timeout = ["--timeout-secs", "5"];
    let (mut others, mut victim) = joiners(&server, &dir, &ids[1..], &timeout, "cli3", |c| {
        c.env("MPC_WALLET_TEST_STALL_BEFORE", "wallet_created");
    });
    let creator = wallet_cmd(&server, &dir, ids[0])
        .args(["--json", "create", "--participants", &ids.join(",")])
        .args(["--threshold", "2", "--timeout-secs", "5"])
        .spawn()
        .unwrap();
    others.push((ids[0].to_string(), creator));
    let stderr = BufReader::new(victim.stderr.take().unwrap());
    let stalled = stderr
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("test hook: stalling"));
    assert!(stalled, "cli3 never reached wallet_created");
    victim.kill().unwrap();
    victim.wait().unwrap();
    for (id, child) in others {
        let out = finish(child, Duration::from_secs(60));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{id} succeeded: {err}");
        assert!(
            err.contains("NOT confirmed: cli3 never confirmed"),
            "{id}: {err}"
        );
        assert!(err.contains("Do not fund this address"), "{id}: {err}");
        assert!(out.stdout.is_empty(), "{id} printed a result");
        // The share is kept, marked so that nobody funds it by mistake.
        let listed = offline(&dir.join(&id), &["wallets"]);
        let text = String::from_utf8_lossy(&listed.stdout);
        assert!(
            text.contains("[UNCONFIRMED by cli3: do not fund]"),
            "{id}: {text}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_declined_proposal_fails_the_creator_with_the_reason() {
    let server = Server::start();
    let dir = tempdir("decline");
    let mut joiner = wallet_cmd(&server, &dir, "cli2")
        .args(["join"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    // Answer the prompt with "n".
    joiner.stdin.take().unwrap().write_all(b"n\n").unwrap();
    wait_registered(&server, &["cli2"]);
    let creator = wallet_cmd(&server, &dir, "cli1")
        .args(["create", "--participants", "cli1,cli2", "--threshold", "2"])
        .spawn()
        .unwrap();
    let out = finish(creator, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cli2 declined"), "{err}");
    let out = finish(joiner, Duration::from_secs(30));
    assert!(!out.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_a_clear_error() {
    let server = Server::start();
    let dir = tempdir("bad");
    let run = |args: &[&str]| {
        let out = wallet_cmd(&server, &dir, "cli1")
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    assert!(
        run(&["create", "--participants", "cli2,cli3", "--threshold", "2"])
            .contains("must include this node")
    );
    assert!(run(&[
        "create",
        "--participants",
        "cli1,cli2",
        "--threshold",
        "2",
        "--curve",
        "p256"
    ])
    .contains("unknown curve"));
    // A participant who isn't online: the server's error, not a hang.
    let err = run(&["create", "--participants", "cli1,ghost", "--threshold", "2"]);
    assert!(err.contains("ghost"), "{err}");
    let out = Command::new(wallet_bin())
        .args(["--server", "ws://127.0.0.1:1/ws", "--peer-id", "x", "peers"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the signaling server"));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- threshold signing (issue 6) ----

/// libsecp256k1 BIP340 check under the witness program of the wallet's own
/// Taproot address (the message must be 32 bytes, like a sighash).
fn verify_bip340(address: &str, message: &[u8], signature: &[u8]) {
    let (_, version, program) = bech32::segwit::decode(address).unwrap();
    assert_eq!(version, bech32::Fe32::P);
    let secp = secp256k1::Secp256k1::verification_only();
    let key = secp256k1::XOnlyPublicKey::from_slice(&program).unwrap();
    let sig = secp256k1::schnorr::Signature::from_slice(signature).unwrap();
    let msg = secp256k1::Message::from_digest_slice(message).unwrap();
    secp.verify_schnorr(&sig, &msg, &key)
        .expect("BIP340 signature verifies under the Taproot output key");
}

/// ed25519-dalek `verify_strict` under the key of the wallet's Solana address.
fn verify_ed25519(address: &str, message: &[u8], signature: &[u8]) {
    let key: [u8; 32] = bs58::decode(address)
        .into_vec()
        .unwrap()
        .try_into()
        .unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(signature).unwrap();
    key.verify_strict(message, &sig)
        .expect("Ed25519 signature verifies strictly");
}

/// Signs `message_hex` with `signers` (the first proposes with `sign`, the
/// others run `join --approve-message-hex MESSAGE`) and returns each
/// signer's output.
fn sign_with(
    dir: &Path,
    signers: &[&str],
    wallet: &str,
    message_hex: &str,
    stall: Option<(&str, &str)>,
) -> Vec<(String, Output)> {
    let server = Server::start();
    let urls = vec![server.url.as_str(); signers.len()];
    let approve = ["--approve-message-hex", message_hex];
    sign_through(&urls, dir, signers, wallet, message_hex, &approve, stall)
}

/// As [`sign_with`], each signer through its own server URL (`urls[i]`
/// for `signers[i]`; the first proposes), the others running
/// `join JOIN_ARGS`.
fn sign_through(
    urls: &[&str],
    dir: &Path,
    signers: &[&str],
    wallet: &str,
    message_hex: &str,
    join_args: &[&str],
    stall: Option<(&str, &str)>,
) -> Vec<(String, Output)> {
    let mut joiners = Vec::new();
    for (id, url) in signers.iter().zip(urls).skip(1) {
        let mut cmd = wallet_cmd_at(url, dir, id);
        cmd.args(["--json", "join", "--timeout-secs", "20"])
            .args(join_args);
        let victim = stall.is_some_and(|(v, _)| v == *id);
        if let Some((_, before)) = stall.filter(|_| victim) {
            cmd.env("MPC_WALLET_TEST_STALL_BEFORE", before);
        }
        let mut child = cmd.spawn().unwrap();
        if victim {
            // Kill the victim the moment it would send its share.
            let stderr = BufReader::new(child.stderr.take().unwrap());
            let pid = child.id().to_string();
            std::thread::spawn(move || {
                for line in stderr.lines().map_while(Result::ok) {
                    if line.contains("test hook: stalling") {
                        let _ = Command::new("kill").args(["-KILL", &pid]).status();
                        break;
                    }
                }
            });
        }
        joiners.push((id.to_string(), child));
    }
    wait_registered_at(urls[0], &signers[1..]);
    let proposer = wallet_cmd_at(urls[0], dir, signers[0])
        .args([
            "--json",
            "sign",
            "--wallet",
            wallet,
            "--message-hex",
            message_hex,
        ])
        .args(["--signers", &signers.join(","), "--timeout-secs", "20"])
        .spawn()
        .unwrap();
    let mut outs = vec![(
        signers[0].to_string(),
        finish(proposer, Duration::from_secs(90)),
    )];
    for (id, child) in joiners {
        if stall.is_some_and(|(v, _)| v == id) {
            let mut child = child;
            let _ = child.kill();
            let status = child.wait().unwrap();
            assert!(!status.success(), "the victim was killed");
            continue;
        }
        outs.push((id, finish(child, Duration::from_secs(90))));
    }
    outs
}

fn check_signatures(outs: &[(String, Output)], key: &str, message_hex: &str) -> Vec<u8> {
    let first = json_of(&outs[0].1);
    for (id, out) in outs {
        let v = json_of(out);
        assert_eq!(v["signature"], first["signature"], "{id} disagrees");
        assert_eq!(v["group_public_key"], key, "{id}");
        assert_eq!(v["message_hex"], message_hex, "{id}");
        assert_eq!(v["session_id"], first["session_id"], "{id}");
    }
    hex::decode(first["signature"].as_str().unwrap()).unwrap()
}

#[test]
fn cli_processes_sign_2_of_3_taproot_verified_by_libsecp256k1() {
    let (dir, results) = create_wallet("sign2of3", 3, 2, "secp256k1");
    let key = group_key(&results);
    let address = results[0].1["addresses"]["bitcoin_taproot"]
        .as_str()
        .unwrap()
        .to_string();
    let message_hex = "11".repeat(32);
    // Signers cli3 (proposer, by wallet id prefix) and cli1.
    let id = mpc_keystore::wallet_id(&key);
    let outs = sign_with(&dir, &["cli3", "cli1"], &id[..8], &message_hex, None);
    let sig = check_signatures(&outs, &key, &message_hex);
    verify_bip340(&address, &hex::decode(&message_hex).unwrap(), &sig);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cli_processes_sign_3_of_5_ed25519_verified_strictly() {
    let (dir, results) = create_wallet("sign3of5", 5, 3, "ed25519");
    let key = group_key(&results);
    let address = results[0].1["addresses"]["solana"]
        .as_str()
        .unwrap()
        .to_string();
    let message_hex = hex::encode("a Solana message");
    let outs = sign_with(&dir, &["cli2", "cli4", "cli5"], &key, &message_hex, None);
    let sig = check_signatures(&outs, &key, &message_hex);
    verify_ed25519(&address, &hex::decode(&message_hex).unwrap(), &sig);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A signer that hangs instead of sending its signature share (then is
/// killed): every other signer exits non-zero naming it, with no signature.
#[test]
fn a_signer_killed_before_round_2_aborts_the_others() {
    let (dir, results) = create_wallet("signkill", 3, 2, "secp256k1");
    let key = group_key(&results);
    let message_hex = "22".repeat(32);
    let outs = sign_with(
        &dir,
        &["cli1", "cli2", "cli3"],
        &key,
        &message_hex,
        Some(("cli3", "signature_share")),
    );
    for (id, out) in outs.iter().filter(|(id, _)| id != "cli3") {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{id} succeeded");
        assert!(err.contains("cli3"), "{id} did not name cli3: {err}");
        assert!(out.stdout.is_empty(), "{id} printed a result");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- Accepting key generation is not approving signatures (issue 13 #3) ----

/// A failed signing: the proposer names `joiner`'s reason, and nobody
/// prints a signature.
#[track_caller]
fn assert_declined(outs: &[(String, Output)], joiner: &str, reason: &str) {
    let err = String::from_utf8_lossy(&outs[0].1.stderr);
    assert!(
        err.contains(&format!("{joiner} declined: {reason}")),
        "{err}"
    );
    for (id, out) in outs {
        assert!(!out.status.success(), "{id} succeeded");
        assert!(out.stdout.is_empty(), "{id} printed a result");
    }
}

#[test]
fn join_yes_takes_part_in_key_generation_but_signs_nothing() {
    // create_wallet's joiners run `join --yes`: key generation is accepted.
    let (dir, results) = create_wallet("yes-no-sign", 2, 2, "secp256k1");
    let key = group_key(&results);
    let server = Server::start();
    let urls = [server.url.as_str(); 2];
    for yes in ["--yes", "--accept-keygen"] {
        let message_hex = "33".repeat(32);
        let signers = ["cli1", "cli2"];
        let outs = sign_through(&urls, &dir, &signers, &key, &message_hex, &[yes], None);
        assert_declined(&outs, "cli2", "signing not approved");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unattended_signing_needs_an_approval_that_names_it() {
    let (dir, results) = create_wallet("approve", 2, 2, "secp256k1");
    let key = group_key(&results);
    let id = mpc_keystore::wallet_id(&key);
    let hello = hex::encode("hello");
    let signers = ["cli1", "cli2"];
    let server = Server::start();
    let urls = [server.url.as_str(); 2];
    // Another message than the one approved: declined.
    let other = ["--approve-message", "hello!"];
    let outs = sign_through(&urls, &dir, &signers, &key, &hello, &other, None);
    assert_declined(&outs, "cli2", "signing not approved");
    // The text approved, as bytes.
    let exact = ["--approve-message", "hello"];
    let outs = sign_through(&urls, &dir, &signers, &key, &hello, &exact, None);
    check_signatures(&outs, &key, &hello);
    // A whole wallet: anything, after a warning.
    let anything = "44".repeat(32);
    let wallet = [
        "--approve-wallet",
        &id[..8],
        "--i-understand-this-signs-anything",
    ];
    let outs = sign_through(&urls, &dir, &signers, &id, &anything, &wallet, None);
    check_signatures(&outs, &key, &anything);
    let warned = String::from_utf8_lossy(&outs[1].1.stderr);
    assert!(
        warned.contains(&format!("warning: --approve-wallet {id}")),
        "{warned}"
    );
    assert!(warned.contains("signs ANY message"), "{warned}");
    // --approve-wallet alone is a usage error.
    let out = offline(&dir.join("cli2"), &["join", "--approve-wallet", &id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--i-understand-this-signs-anything"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_joiner_without_the_wallet_declines_with_a_reason() {
    let (dir, results) = create_wallet("signnowallet", 2, 2, "ed25519");
    let key = group_key(&results);
    // cli2's keystore loses the wallet (but keeps its identity).
    for w in wallet_files(&dir.join("cli2")) {
        std::fs::remove_file(w).unwrap();
    }
    let outs = sign_with(&dir, &["cli1", "cli2"], &key, "00", None);
    let err = String::from_utf8_lossy(&outs[0].1.stderr);
    assert!(!outs[0].1.status.success());
    assert!(
        err.contains("cli2 declined") && err.contains("no wallet"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- A malicious signaling path ----

/// A WebSocket proxy between nodes and `mpc-signal` that records every
/// frame and passes what the server sends through `rewrite`: what a
/// malicious signaling server would do (e.g. [`swap_fingerprint`], to sit
/// in the middle).
struct Proxy {
    url: String,
    frames: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// A server frame as the proxy passes it on.
type Rewrite = fn(&str) -> String;

/// The honest proxy.
fn unchanged(frame: &str) -> String {
    frame.to_string()
}

impl Proxy {
    fn start(upstream: &str, rewrite: Rewrite) -> Proxy {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = frames.clone();
        let upstream = upstream.to_string();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        in_background(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (upstream, log) = (upstream.clone(), log.clone());
                tokio::spawn(async move {
                    let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    // Like a reverse proxy, it keeps the Host the client
                    // asked for: a signed register names that host.
                    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
                    let Ok(mut req) = upstream.as_str().into_client_request() else {
                        return;
                    };
                    let Ok(host) = addr.to_string().parse() else {
                        return;
                    };
                    req.headers_mut().insert("host", host);
                    let Ok((server, _)) = tokio_tungstenite::connect_async(req).await else {
                        return;
                    };
                    let (mut c_tx, mut c_rx) = client.split();
                    let (mut s_tx, mut s_rx) = server.split();
                    let log2 = log.clone();
                    let up = async move {
                        while let Some(Ok(m)) = c_rx.next().await {
                            if let Message::Text(t) = &m {
                                log2.lock().unwrap().push(t.to_string());
                            }
                            if s_tx.send(m).await.is_err() {
                                break;
                            }
                        }
                    };
                    let down = async move {
                        while let Some(Ok(m)) = s_rx.next().await {
                            let m = match m {
                                Message::Text(t) => {
                                    log.lock().unwrap().push(t.to_string());
                                    Message::text(rewrite(&t))
                                }
                                other => other,
                            };
                            if c_tx.send(m).await.is_err() {
                                break;
                            }
                        }
                    };
                    tokio::select! { _ = up => {}, _ = down => {} }
                });
            }
        });
        Proxy {
            url: format!("ws://{addr}/ws"),
            frames,
        }
    }
}

/// Replaces the first byte of every `a=fingerprint:sha-256` value with
/// another: the certificate of a man in the middle.
fn swap_fingerprint(text: &str) -> String {
    const TAG: &str = "a=fingerprint:sha-256 ";
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(TAG) {
        let start = i + TAG.len();
        out.push_str(&rest[..start]);
        let byte = &rest[start..start + 2];
        out.push_str(if byte == "00" { "11" } else { "00" });
        rest = &rest[start + 2..];
    }
    out.push_str(rest);
    out
}

/// Runs `create` for cli1,cli2,cli3 through `url`; returns each output.
fn create_through(url: &str, dir: &Path) -> Vec<(String, Output)> {
    create_through_each([url; 3], dir)
}

/// Runs `create` for cli1,cli2,cli3, each through its own server URL.
fn create_through_each(urls: [&str; 3], dir: &Path) -> Vec<(String, Output)> {
    let ids = ["cli1", "cli2", "cli3"];
    let mut joiners = Vec::new();
    for (id, url) in ids.iter().zip(urls).skip(1) {
        let child = wallet_cmd_at(url, dir, id)
            .args(["--json", "join", "--yes", "--timeout-secs", "15"])
            .spawn()
            .unwrap();
        joiners.push((id.to_string(), child));
    }
    wait_registered_at(urls[0], &ids[1..]);
    let creator = wallet_cmd_at(urls[0], dir, ids[0])
        .args(["--json", "create", "--participants", "cli1,cli2,cli3"])
        .args(["--threshold", "2", "--timeout-secs", "15"])
        .spawn()
        .unwrap();
    let mut outs = vec![("cli1".to_string(), finish(creator, Duration::from_secs(60)))];
    for (id, child) in joiners {
        outs.push((id, finish(child, Duration::from_secs(60))));
    }
    outs
}

#[test]
fn swapped_dtls_fingerprints_abort_the_session_at_every_node() {
    let server = Server::start();
    let proxy = Proxy::start(&server.url, swap_fingerprint);
    let dir = tempdir("mitm");
    for (id, out) in create_through(&proxy.url, &dir) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{id} succeeded through a MITM");
        assert!(
            stderr.contains("possible man-in-the-middle on the connection with cli"),
            "{id}: {stderr}"
        );
        // Nobody stored a share.
        assert!(
            wallet_files(&dir.join(&id)).is_empty(),
            "{id} stored a share"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An honest server (requiring signed registrations) relays the whole
/// session: everything it sees is signed, and no share is among it.
#[test]
fn the_server_relays_only_signed_messages_and_no_share() {
    let server = Server::start_with(&["--require-auth"]);
    let proxy = Proxy::start(&server.url, unchanged);
    let dir = tempdir("capture");
    let outs = create_through(&proxy.url, &dir);
    for (id, out) in &outs {
        assert!(
            out.status.success(),
            "{id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let frames = proxy.frames.lock().unwrap().clone();
    let mut relayed = 0;
    for f in &frames {
        let v: Value = serde_json::from_str(f).unwrap();
        if v["type"] != "relay" {
            continue;
        }
        relayed += 1;
        let data = &v["data"];
        assert_ne!(data["type"], "share", "a share went through the server");
        if data["type"] != "ice-candidate" {
            let sig = data["sig"]
                .as_str()
                .unwrap_or_else(|| panic!("unsigned: {f}"));
            assert_eq!(sig.len(), 128, "{f}");
        }
    }
    assert!(relayed > 10, "only {relayed} relayed frames captured");
    // Registration was signed, against the server's challenge.
    assert!(frames.iter().any(|f| f.contains("\"challenge\"")));
    assert!(frames
        .iter()
        .filter(|f| f.contains("\"type\":\"register\""))
        .all(|f| f.contains("\"signature\"")));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// cli2 lost its whole keystore, identity included, and comes back with a
/// new key under the same peer id: cli1 refuses it until it is re-pinned.
#[test]
fn a_peer_with_a_new_identity_key_is_refused_until_re_pinned() {
    let (dir, results) = create_wallet("rekey", 2, 2, "ed25519");
    let key = group_key(&results);
    let old = std::fs::read_to_string(dir.join("cli2/identity.key")).unwrap();
    std::fs::remove_dir_all(dir.join("cli2")).unwrap();
    let server = Server::start();
    let mut joiner = wallet_cmd(&server, &dir, "cli2")
        .args(["--json", "join", "--yes", "--timeout-secs", "10"])
        .spawn()
        .unwrap();
    wait_registered(&server, &["cli2"]);
    let out = wallet_cmd(&server, &dir, "cli1")
        .args(["--json", "sign", "--wallet", &key, "--message-hex", "00"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("identity key of cli2 changed"), "{err}");
    let _ = joiner.kill();
    let _ = joiner.wait();
    assert_ne!(
        std::fs::read_to_string(dir.join("cli2/identity.key")).unwrap(),
        old
    );
    // After checking the new fingerprint out of band, the user re-pins it.
    let new_key = json_of(
        &wallet_cmd(&server, &dir, "cli2")
            .args(["--json", "identity"])
            .output()
            .unwrap(),
    )["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let out = wallet_cmd(&server, &dir, "cli1")
        .args(["trust", "cli2", &new_key])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-pinned cli2"));
    let shown = json_of(
        &wallet_cmd(&server, &dir, "cli1")
            .args(["--json", "identity"])
            .output()
            .unwrap(),
    );
    assert_eq!(shown["known_peers"]["cli2"], new_key.as_str());
    std::fs::remove_dir_all(&dir).unwrap();
}

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

// ---- What peers, the server and files say reaches the terminal escaped (issue 13 #5) ----

/// A line that would erase the one before it and print a fake result.
const FAKE_LINE: &str = "\x1b[2K\rwallet created: bc1pattacker";
/// [`FAKE_LINE`] as the CLI must print it.
const FAKE_LINE_ESCAPED: &str = "\\x1b[2K\\rwallet created: bc1pattacker";

/// Text that reached a terminal: it must hold no escape or carriage return.
#[track_caller]
fn assert_inert(what: &str, text: &str) {
    assert!(
        !text.contains(['\x1b', '\r', '\u{9b}']),
        "{what} carries raw control characters: {text:?}"
    );
}

/// `out` failed, its stderr saying `said` then [`FAKE_LINE`] escaped, with
/// no raw control character anywhere.
#[track_caller]
fn assert_failed_saying_escaped(out: &Output, said: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("{said}{FAKE_LINE_ESCAPED}")), "{err}");
    assert_inert("stderr", &err);
}

/// A peer that is not `mpc-wallet`: the core, driven by hand over the
/// WebSocket, declines the first proposal with `reason`, whatever it holds.
fn hostile_decliner(url: &str, id: &str, reason: &str) -> std::thread::JoinHandle<()> {
    use futures_util::{SinkExt, StreamExt};
    use mpc_core::{Action, Command, Config, Event, Node, Progress};
    use mpc_protocol::signal::ServerMessage;
    use tokio_tungstenite::tungstenite::Message;
    let (url, id, reason) = (url.to_string(), id.to_string(), reason.to_string());
    in_background(async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let mut config = Config::new(id);
        config.identity = Some(mpc_core::IdentityKey::from_seed([0x66; 32]));
        config.server_host = mpc_protocol::signal::server_host(&url);
        let mut node = Node::with_os_rng(config, 0).unwrap();
        let mut events = vec![Event::Command(Command::Register)];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut done = false;
            while let Some(event) = events.pop() {
                for action in node.handle(event) {
                    match action {
                        Action::SendSignal(m) => ws.send(Message::text(m.to_json())).await.unwrap(),
                        Action::Progress(Progress::NeedsDecision { proposal, .. }) => {
                            events.push(Event::Decision {
                                session_id: proposal.session_id,
                                accept: false,
                                reason: Some(reason.clone()),
                            })
                        }
                        Action::Aborted { .. } => done = true,
                        _ => {}
                    }
                }
            }
            if done {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let _ = ws.close(None).await;
                return;
            }
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    events.push(Event::Signal(ServerMessage::from_json(&t).unwrap()))
                }
                Ok(Some(Ok(_))) => {}
                _ => return,
            }
        }
    })
}

/// Runs `task` on a runtime of its own, in a thread of its own.
fn in_background<F>(task: F) -> std::thread::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(task)
    })
}

#[test]
fn a_peers_decline_reason_reaches_the_terminal_escaped() {
    let server = Server::start();
    let dir = tempdir("inject-peer");
    let peer = hostile_decliner(&server.url, "mallory", FAKE_LINE);
    wait_registered(&server, &["mallory"]);
    let out = wallet_cmd(&server, &dir, "cli1")
        .args([
            "create",
            "--participants",
            "cli1,mallory",
            "--threshold",
            "2",
        ])
        .output()
        .unwrap();
    peer.join().unwrap();
    assert_failed_saying_escaped(&out, "mallory declined: ");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The server lies: a peer id with an escape in it in the plain peer list,
/// and an error that draws a fake result instead of the keys `create`
/// asks for.
fn hostile_server(frame: &str) -> String {
    let mut v: Value = serde_json::from_str(frame).unwrap();
    if v["type"] == "peers" {
        if v["keys"].is_object() {
            return serde_json::json!({ "type": "error", "error": FAKE_LINE }).to_string();
        }
        v["peers"]
            .as_array_mut()
            .unwrap()
            .push("\x1b[31mred".into());
    }
    v.to_string()
}

#[test]
fn server_errors_and_peer_ids_reach_the_terminal_escaped() {
    let server = Server::start();
    let proxy = Proxy::start(&server.url, hostile_server);
    let dir = tempdir("inject-server");
    let out = wallet_cmd_at(&proxy.url, &dir, "cli1")
        .arg("peers")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(listed.lines().any(|l| l == "\\x1b[31mred"), "{listed}");
    assert_inert("stdout", &listed);
    let out = wallet_cmd_at(&proxy.url, &dir, "cli1")
        .args(["create", "--participants", "cli1,cli2", "--threshold", "2"])
        .output()
        .unwrap();
    assert_failed_saying_escaped(&out, "signaling server: ");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- Wallet files that lie about themselves (issue 13 #6, #15) ----

/// The wallet files of a 2-of-2 secp256k1 wallet made by the in-memory simulator
/// (no processes, no network), each sealed with [`PASS`].
fn simulated_wallet(seed: u64) -> Vec<KeyShareFile> {
    let curve = mpc_protocol::peer::Curve::Secp256k1;
    let report = mpc_core::sim::run(&mpc_core::sim::SimConfig::new(2, 2, curve, seed));
    report
        .outcomes
        .iter()
        .map(|(id, outcome)| match outcome {
            mpc_core::sim::Outcome::Finished(w) => {
                mpc_keystore::wallet::seal_wallet(w, id, 1_790_000_000, PASS, 10).unwrap()
            }
            other => panic!("{id}: {other:?}"),
        })
        .collect()
}

/// `file` sealed again after `edit` changed its metadata: it opens with
/// [`PASS`], so only the checks of the metadata itself can refuse it.
fn resealed(file: &KeyShareFile, edit: impl FnOnce(&mut mpc_keystore::Metadata)) -> KeyShareFile {
    let mut meta = file.metadata.clone();
    edit(&mut meta);
    KeyShareFile::seal(meta, &file.open(PASS).unwrap(), PASS, 10).unwrap()
}

/// `mpc-wallet --keystore <keystore> ARGS`, with [`PASS`].
fn offline(keystore: &Path, args: &[&str]) -> Output {
    Command::new(wallet_bin())
        .arg("--keystore")
        .arg(keystore)
        .args(args)
        .env("MPC_WALLET_PASSPHRASE", PASS)
        .output()
        .unwrap()
}

#[test]
fn wallet_import_refuses_an_id_that_is_not_the_group_keys() {
    let dir = tempdir("import-id");
    let keystore = dir.join("a/b");
    let file = &simulated_wallet(7)[0];
    for id in ["../../evil", "0123456789abcdef"] {
        let forged = dir.join("forged.json");
        std::fs::write(&forged, resealed(file, |m| m.id = id.into()).to_json()).unwrap();
        let out = offline(&keystore, &["wallet", "import", forged.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{id} imported");
        assert!(
            err.contains(&format!(
                "the wallet id \"{id}\" is not {}",
                file.metadata.id
            )),
            "{err}"
        );
        assert!(
            !dir.join("evil.json").exists(),
            "written outside the keystore"
        );
        assert!(
            wallet_files(&keystore).is_empty(),
            "{id}: something was written"
        );
    }
    // The honest file imports.
    let honest = dir.join("honest.json");
    std::fs::write(&honest, file.to_json()).unwrap();
    let out = offline(
        &keystore,
        &["--json", "wallet", "import", honest.to_str().unwrap()],
    );
    assert_eq!(json_of(&out)["id"], file.metadata.id.as_str());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Puts `file` into the keystore `dir` as it is, as anyone who can write
/// there could.
fn plant(dir: &Path, file: &KeyShareFile) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join(format!("{}.json", file.metadata.id)),
        file.to_json(),
    )
    .unwrap();
}

#[test]
fn wallets_and_show_withhold_the_address_of_an_edited_file() {
    let dir = tempdir("edited");
    let (a, b) = (&simulated_wallet(7)[0], &simulated_wallet(8)[0]);
    let b_key = &b.metadata.group_public_key;
    let b_address = mpc_address::taproot_address(b_key, Default::default()).unwrap();

    // The group key (so the address) edited to another wallet's, and the
    // id to match it: the file no longer agrees with its key package.
    let ks = dir.join("edited");
    let mut edited = a.clone();
    edited.metadata.group_public_key = b_key.clone();
    edited.metadata.id = b.metadata.id.clone();
    plant(&ks, &edited);
    let out = offline(&ks, &["wallets"]);
    let (listed, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!listed.contains(&b_address), "{listed}");
    assert!(listed.contains("address withheld"), "{listed}");
    assert!(err.contains("the file was tampered with"), "{err}");
    let listed = json_of(&offline(&ks, &["--json", "wallets"]));
    let w = &listed["wallets"][0];
    assert!(w.get("addresses").is_none(), "{w}");
    assert!(w["error"].as_str().unwrap().contains("tampered"), "{w}");
    let out = offline(&ks, &["wallet", "show", &b.metadata.id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        err.contains("not the one in the wallet's public key package"),
        "{err}"
    );

    // Key, package and id all swapped for another wallet's: the cleartext
    // agrees with itself; only the passphrase tells.
    let ks = dir.join("swapped");
    let mut swapped = edited.clone();
    swapped.metadata.public_key_package = b.metadata.public_key_package.clone();
    plant(&ks, &swapped);
    let shown = json_of(&offline(&ks, &["--json", "wallet", "show", &b.metadata.id]));
    assert_eq!(shown["verified"], false);
    let out = offline(&ks, &["wallet", "show", "--verify", &b.metadata.id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("does not match its encrypted key share"),
        "{err}"
    );

    // A session id edited into a fake line: shown escaped, refused by
    // --verify; the honest file verifies.
    let ks = dir.join("session");
    let mut fake = a.clone();
    fake.metadata.session_id = FAKE_LINE.into();
    plant(&ks, &fake);
    let out = offline(&ks, &["wallet", "show", &a.metadata.id]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains(FAKE_LINE_ESCAPED), "{shown}");
    assert_inert("stdout", &shown);
    assert!(
        !offline(&ks, &["wallet", "show", "--verify", &a.metadata.id])
            .status
            .success()
    );
    let ks = dir.join("honest");
    plant(&ks, a);
    let shown = json_of(&offline(
        &ks,
        &["--json", "wallet", "show", "--verify", &a.metadata.id],
    ));
    assert_eq!(shown["verified"], true);
    let a_address = mpc_address::taproot_address(&a.metadata.group_public_key, Default::default());
    assert_eq!(
        shown["addresses"]["bitcoin_taproot"],
        a_address.unwrap().as_str()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
