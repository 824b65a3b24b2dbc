//! Ethereum wallets (issue 15): DKLs23 key generation and signing between
//! processes over real WebRTC, each signed transaction sent to anvil (a
//! real Ethereum node on loopback), which must accept it and move the
//! balances. eth-account, from python, recovers the signer of every
//! signature independently of the wallet's code.

use super::*;

use std::ffi::OsStr;

use mpc_node::eth_rpc::Rpc;
use serde_json::json;

/// anvil, from `scripts/setup.sh tests`: `MPC_TEST_ANVIL`, else its path
/// under `~/.cache/mpc-wallet/anvil`.
fn anvil_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MPC_TEST_ANVIL") {
        return p.into();
    }
    let home = std::env::var("HOME").expect("HOME");
    let p = Path::new(&home)
        .join(".cache/mpc-wallet/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh tests (or set MPC_TEST_ANVIL)",
        p.display()
    );
    p
}

/// A running anvil, killed on drop.
struct Anvil {
    child: Child,
    url: String,
    rpc: Rpc,
}

impl Anvil {
    fn start() -> Anvil {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(anvil_bin())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--silent",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start anvil");
        let url = format!("http://127.0.0.1:{port}");
        let rpc = Rpc::new(&url).unwrap();
        let t0 = Instant::now();
        while rpc.call("eth_chainId", json!([])).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "anvil never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Anvil { child, url, rpc }
    }

    fn balance(&self, address: &str) -> u128 {
        let v = self
            .rpc
            .call("eth_getBalance", json!([address, "latest"]))
            .unwrap();
        u128::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }

    fn fund(&self, address: &str, wei: u128) {
        self.rpc
            .call("anvil_setBalance", json!([address, format!("{wei:#x}")]))
            .unwrap();
    }

    /// The receipt of a mined transaction (anvil mines at once).
    fn receipt(&self, hash: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let r = self
                .rpc
                .call("eth_getTransactionReceipt", json!([hash]))
                .unwrap();
            if !r.is_null() {
                return r;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "{hash} never mined");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the sender paid in fees for a mined transaction.
    fn fee_of(&self, receipt: &Value) -> u128 {
        let q = |k: &str| {
            u128::from_str_radix(receipt[k].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
        };
        q("gasUsed") * q("effectiveGasPrice")
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address eth-account recovers (`eth_check.py`).
fn eth_account(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/eth_check.py");
    let out = Command::new(super::solana::python())
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["address"].as_str().unwrap().to_string()
}

const ETH: u128 = 1_000_000_000_000_000_000;
const TO: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

/// A complete transfer of `wei` to [`TO`] as a dApp would pass it.
fn transfer_json(nonce: u64, wei: u128) -> String {
    json!({
        "to": TO, "value": format!("{wei:#x}"), "chainId": "0x7a69",
        "nonce": format!("{nonce:#x}"), "gas": "0x5208",
        "maxFeePerGas": "0xb2d05e00", "maxPriorityFeePerGas": "0x3b9aca00",
    })
    .to_string()
}

fn check_sent(anvil: &Anvil, out: &Value) -> Value {
    let hash = out["tx_hash"].as_str().unwrap();
    assert_eq!(out["broadcast"], true);
    let receipt = anvil.receipt(hash);
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    receipt
}

/// `id` joining and signing exactly what `flag` (an `--approve-…` flag)
/// names, unasked; registered before this returns.
fn approving(server: &Server, dir: &Path, id: &str, flag: &str, value: &OsStr) -> Child {
    let c = wallet_cmd(server, dir, id)
        .args(["--json", "join", "--timeout-secs", "30", flag])
        .arg(value)
        .spawn()
        .unwrap();
    wait_registered(server, &[id]);
    c
}

/// `id` joining and answering "y" when asked; registered before this
/// returns.
fn answering_yes(server: &Server, dir: &Path, id: &str) -> Child {
    let mut c = wallet_cmd(server, dir, id)
        .args(["--json", "join", "--timeout-secs", "30"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b"y\n").unwrap();
    wait_registered(server, &[id]);
    c
}

/// A t-of-n Ethereum wallet (`chain` is what `create` is given), funded
/// with `wei` on a fresh anvil: its dir, group key, address, anvil and a
/// server.
fn funded_wallet(
    name: &str,
    n: usize,
    t: u16,
    chain: &str,
    wei: u128,
) -> (PathBuf, String, String, Anvil, Server) {
    let (dir, results) = create_wallet(name, n, t, chain);
    check_wallet(&dir, &results, t, "secp256k1-ecdsa");
    let key = group_key(&results);
    let address = results[0].1["addresses"]["ethereum"]
        .as_str()
        .unwrap()
        .to_string();
    let anvil = Anvil::start();
    anvil.fund(&address, wei);
    (dir, key, address, anvil, Server::start())
}

#[test]
fn a_2_of_3_ethereum_wallet_sends_eth_that_anvil_accepts() {
    let (dir, key, address, anvil, server) = funded_wallet("eth", 3, 2, "ethereum", 10 * ETH);

    // A complete transaction, approved unattended by cli2 for exactly it.
    let tx = transfer_json(0, ETH);
    let joiner = approving(&server, &dir, "cli2", "--approve-eth-tx", tx.as_ref());
    let proposer = wallet_cmd(&server, &dir, "cli1")
        .args(["--json", "sign-eth-tx", "--wallet", &key, "--tx", &tx])
        .args([
            "--rpc",
            &anvil.url,
            "--signers",
            "cli1,cli2",
            "--timeout-secs",
            "30",
        ])
        .spawn()
        .unwrap();
    let out = json_of(&finish(proposer, Duration::from_secs(90)));
    let joined = json_of(&finish(joiner, Duration::from_secs(90)));
    assert_eq!(joined["transaction"]["raw_tx"], out["raw_tx"]);
    let receipt = check_sent(&anvil, &out);
    assert_eq!(anvil.balance(TO), ETH);
    assert_eq!(
        anvil.balance(&address),
        9 * ETH - anvil.fee_of(&receipt),
        "the wallet paid exactly the value and the fee"
    );
    let raw = out["raw_tx"].as_str().unwrap();
    assert_eq!(
        eth_account(&["tx", raw]),
        address,
        "eth-account recovers the wallet"
    );

    // Only `to` and `value`: --rpc fills in the rest. cli3 is asked and
    // sees the transfer decoded.
    let asked = answering_yes(&server, &dir, "cli3");
    let partial = json!({"to": TO, "value": "500000000000000000"}).to_string();
    let proposer = wallet_cmd(&server, &dir, "cli1")
        .args(["--json", "sign-eth-tx", "--wallet", &key, "--tx", &partial])
        .args([
            "--rpc",
            &anvil.url,
            "--signers",
            "cli1,cli3",
            "--timeout-secs",
            "30",
        ])
        .spawn()
        .unwrap();
    let out = json_of(&finish(proposer, Duration::from_secs(90)));
    let joined = finish(asked, Duration::from_secs(90));
    let prompt = String::from_utf8_lossy(&joined.stderr).to_string();
    for needle in [
        "Ethereum transaction (EIP-1559) on chain id 31337".to_string(),
        format!("to:        {TO}"),
        "value:     0.5 ETH".to_string(),
        "nonce:     1".to_string(),
        "gas limit 21000".to_string(),
    ] {
        assert!(prompt.contains(&needle), "{needle:?} not shown:\n{prompt}");
    }
    json_of(&joined);
    check_sent(&anvil, &out);
    assert_eq!(anvil.balance(TO), ETH + ETH / 2);

    // personal_sign: 65 bytes, v 27 or 28, recovered by eth-account.
    let joiner = approving(
        &server,
        &dir,
        "cli2",
        "--approve-message",
        "hello ethereum".as_ref(),
    );
    let signer = wallet_cmd(&server, &dir, "cli1")
        .args([
            "--json",
            "sign",
            "--wallet",
            &key,
            "--message",
            "hello ethereum",
        ])
        .args(["--signers", "cli1,cli2", "--timeout-secs", "30"])
        .spawn()
        .unwrap();
    let out = json_of(&finish(signer, Duration::from_secs(90)));
    json_of(&finish(joiner, Duration::from_secs(90)));
    let sig = out["signature"].as_str().unwrap();
    assert_eq!(sig.len(), 130);
    assert!(sig.ends_with("1b") || sig.ends_with("1c"), "{sig}");
    assert_eq!(out["format"], "ethereum_message");
    assert_eq!(
        eth_account(&["message", "hello ethereum", &format!("0x{sig}")]),
        address
    );

    // EIP-712: cli3 is asked and sees the domain and the message decoded;
    // eth-account hashes the typed data itself and recovers the wallet.
    let typed = json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [
                {"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
                {"name": "contents", "type": "string"}
            ]
        },
        "primaryType": "Mail",
        "domain": {"name": "Ether Mail", "version": "1", "chainId": 31337,
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
        "message": {
            "from": {"name": "Cow", "wallet": address},
            "to": {"name": "Bob", "wallet": TO},
            "contents": "Hello, Bob!"
        }
    })
    .to_string();
    let typed_file = dir.join("mail.json");
    std::fs::write(&typed_file, &typed).unwrap();
    let asked = answering_yes(&server, &dir, "cli3");
    let signer = wallet_cmd(&server, &dir, "cli1")
        .args(["--json", "sign-eth-typed-data", "--wallet", &key, "--data"])
        .arg(&typed_file)
        .args(["--signers", "cli1,cli3", "--timeout-secs", "30"])
        .spawn()
        .unwrap();
    let out = json_of(&finish(signer, Duration::from_secs(90)));
    let joined = finish(asked, Duration::from_secs(90));
    let prompt = String::from_utf8_lossy(&joined.stderr).to_string();
    for needle in [
        "Ethereum typed data (EIP-712): Mail",
        "domain:    Ether Mail",
        "chain id:  31337",
        "contract:  0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
        "\"contents\": \"Hello, Bob!\"",
    ] {
        assert!(prompt.contains(needle), "{needle:?} not shown:\n{prompt}");
    }
    json_of(&joined);
    assert_eq!(out["format"], "ethereum_typed_data");
    let sig = out["signature"].as_str().unwrap();
    assert_eq!(sig.len(), 130);
    assert_eq!(
        eth_account(&["typed", &typed, &format!("0x{sig}")]),
        address
    );

    // The same typed data approved unattended by cli2, by its hash.
    let joiner = approving(
        &server,
        &dir,
        "cli2",
        "--approve-typed-data",
        typed_file.as_ref(),
    );
    let signer = wallet_cmd(&server, &dir, "cli1")
        .args([
            "--json",
            "sign-eth-typed-data",
            "--wallet",
            &key,
            "--data",
            &typed,
        ])
        .args(["--signers", "cli1,cli2", "--timeout-secs", "30"])
        .spawn()
        .unwrap();
    let again = json_of(&finish(signer, Duration::from_secs(90)));
    json_of(&finish(joiner, Duration::from_secs(90)));
    assert_eq!(
        eth_account(&[
            "typed",
            &typed,
            &format!("0x{}", again["signature"].as_str().unwrap())
        ]),
        address
    );

    // Refused before anything is sent (no server runs at this URL).
    let refuse = |args: &[&str], said: &str| {
        let out = wallet_cmd_at("ws://127.0.0.1:9/ws", &dir, "cli1")
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {said:?} not in {err}");
    };
    let w = ["sign-eth-tx", "--wallet", key.as_str(), "--tx"];
    refuse(&[&w[..], &["not json"]].concat(), "--tx");
    refuse(&[&w[..], &[r#"{"to":"0x12"}"#]].concat(), "field to");
    refuse(
        &[
            &w[..],
            &[r#"{"to":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"}"#],
        ]
        .concat(),
        "checksum",
    );
    refuse(&[&w[..], &[r#"{"gasPrice":"0x1"}"#]].concat(), "gasPrice");
    refuse(
        &[
            &w[..],
            &[r#"{"to":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}"#],
        ]
        .concat(),
        "chainId",
    );
    let other_from = r#"{"from":"0x0000000000000000000000000000000000000001","to":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}"#;
    refuse(&[&w[..], &[other_from]].concat(), "another address");
    refuse(
        &[&w[..], &[tx.as_str(), "--rpc", "https://example.invalid"]].concat(),
        "http://",
    );
    refuse(
        &[&w[..], &[tx.as_str(), "--signers", "cli1,cli2,cli3"]].concat(),
        "exactly its threshold",
    );
    refuse(
        &["sign-eth-typed-data", "--wallet", &key, "--data", "{}"],
        "--data",
    );
    // Refresh and repair run FROST's algebra: not for ECDSA shares yet.
    refuse(&["refresh", "--wallet", &key], "not supported yet");
    refuse(
        &["repair", "--wallet", &key, "--for", "cli3"],
        "not supported yet",
    );
    // An Ethereum wallet signs no PSBT, and a Taproot one no Ethereum tx.
    refuse(&["sign-solana", "--wallet", &key, "--tx", "AQ=="], "");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_3_of_5_ethereum_wallet_sends_eth_that_anvil_accepts() {
    let (dir, key, address, anvil, server) =
        funded_wallet("eth35", 5, 3, "secp256k1-ecdsa", 2 * ETH);
    let tx = transfer_json(0, ETH / 4);
    let joiners: Vec<Child> = ["cli3", "cli5"]
        .iter()
        .map(|id| approving(&server, &dir, id, "--approve-eth-tx", tx.as_ref()))
        .collect();
    let proposer = wallet_cmd(&server, &dir, "cli1")
        .args(["--json", "sign-eth-tx", "--wallet", &key, "--tx", &tx])
        .args([
            "--rpc",
            &anvil.url,
            "--signers",
            "cli1,cli3,cli5",
            "--timeout-secs",
            "30",
        ])
        .spawn()
        .unwrap();
    let out = json_of(&finish(proposer, Duration::from_secs(90)));
    for j in joiners {
        json_of(&finish(j, Duration::from_secs(90)));
    }
    let receipt = check_sent(&anvil, &out);
    assert_eq!(anvil.balance(TO), ETH / 4);
    assert_eq!(
        anvil.balance(&address),
        2 * ETH - ETH / 4 - anvil.fee_of(&receipt)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
