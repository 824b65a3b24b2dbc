//! Process-level end to end: an `mpc-signal` process and several
//! `mpc-wallet` processes create wallets over real WebRTC on loopback.
//! One test binary (one link); the harness is here, each concern has its
//! module: key generation, signing, approvals, a malicious signaling
//! path, a cluster, the terminal, wallet files, and spending Bitcoin,
//! SOL and ETH.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mpc_keystore::KeyShareFile;
use serde_json::Value;

mod approvals;
mod cluster;
mod ethereum;
mod faults;
mod files;
mod keygen;
mod lifecycle;
mod signaling;
mod signing;
mod solana;
mod spending;
mod terminal;

const PASS: &str = "e2e passphrase";

#[path = "../../../signal-server/tests/redis_server/mod.rs"]
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
            if matches!(curve, "bitcoin" | "solana" | "ethereum") {
                "--chain"
            } else {
                "--curve"
            },
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
        "secp256k1-ecdsa" => {
            let addr = results[0].1["addresses"]["ethereum"].as_str().unwrap();
            assert_eq!(addr, mpc_address::ethereum_address(&key).unwrap());
            assert!(results[0].1["addresses"].get("bitcoin_taproot").is_none());
        }
        _ => {
            let addr = results[0].1["addresses"]["solana"].as_str().unwrap();
            assert_eq!(addr, mpc_address::solana_address(&key).unwrap());
        }
    }
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
