//! Spending SOL (issue 14): `solana-transfer` and `sign-solana` between
//! processes, each signed transaction submitted to LiteSVM (the Solana
//! runtime, from python solders: `solana_ledger.py`), which must accept
//! it and move the balances, and refuse it with one bit changed.

use super::*;

use base64::Engine as _;

/// The ledger: a `solana_ledger.py` process, killed on drop.
struct Ledger {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

/// The python with solders: `MPC_TEST_PYTHON`, else the one
/// `scripts/setup.sh tests` installs.
pub(super) fn python() -> PathBuf {
    if let Ok(p) = std::env::var("MPC_TEST_PYTHON") {
        return p.into();
    }
    let home = std::env::var("HOME").expect("HOME");
    let p = Path::new(&home).join(".cache/mpc-wallet/pyenv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh tests (or set MPC_TEST_PYTHON to a python with solders 0.29)",
        p.display()
    );
    p
}

impl Ledger {
    fn start() -> Ledger {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/solana_ledger.py");
        let mut child = Command::new(python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the LiteSVM ledger");
        let out = BufReader::new(child.stdout.take().unwrap());
        Ledger { child, out }
    }

    fn ask(&mut self, request: Value) -> Value {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{request}").unwrap();
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).expect("the ledger's answer");
        assert!(v.get("error").is_none(), "{request} failed: {v}");
        v
    }

    fn str(&mut self, request: Value, field: &str) -> String {
        self.ask(request)[field].as_str().unwrap().to_string()
    }

    fn balance(&mut self, address: &str) -> u64 {
        self.ask(serde_json::json!({"cmd": "balance", "address": address}))["lamports"]
            .as_u64()
            .unwrap()
    }

    /// `Ok(())` if the runtime executed it, else its error.
    fn send(&mut self, transaction: &[u8]) -> Result<(), String> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(transaction);
        let v = self.ask(serde_json::json!({"cmd": "send", "transaction": b64}));
        match v["ok"].as_bool() {
            Some(true) => Ok(()),
            _ => Err(v["refused"].as_str().unwrap_or_default().to_string()),
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn address_of(group_key: &str) -> String {
    bs58::encode(hex::decode(group_key).unwrap()).into_string()
}

fn unbase64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

const FEE: u64 = 5_000; // lamports per signature

#[test]
fn a_2_of_3_wallet_sends_sol_that_the_solana_runtime_accepts() {
    let (dir, results) = create_wallet("sol", 3, 2, "ed25519");
    let key = group_key(&results);
    let wallet = address_of(&key);
    let to = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM";
    let mut ledger = Ledger::start();
    ledger.ask(serde_json::json!({"cmd": "fund", "address": wallet, "lamports": 2_000_000_000u64}));
    let blockhash = ledger.str(serde_json::json!({"cmd": "blockhash"}), "blockhash");
    // The Solana SDK's own message for this transfer: cli2 approves it
    // unattended, so the transfer cli1 builds must be it byte for byte.
    let expected = ledger.str(
        serde_json::json!({"cmd": "transfer_message", "from": wallet, "to": to,
            "lamports": 250_000_000u64, "blockhash": blockhash}),
        "message",
    );
    let server = Server::start();
    let joiner = wallet_cmd(&server, &dir, "cli2")
        .args(["--json", "join", "--timeout-secs", "20", "--approve-solana"])
        .arg(&expected)
        .spawn()
        .unwrap();
    wait_registered(&server, &["cli2"]);
    let proposer = wallet_cmd(&server, &dir, "cli1")
        .args(["--json", "solana-transfer", "--wallet", &key, "--to", to])
        .args(["--lamports", "250000000", "--blockhash", &blockhash])
        .args(["--signers", "cli1,cli2", "--timeout-secs", "20"])
        .spawn()
        .unwrap();
    let out = json_of(&finish(proposer, Duration::from_secs(60)));
    let joined = json_of(&finish(joiner, Duration::from_secs(60)));
    let tx = unbase64(out["transaction"].as_str().unwrap());
    assert_eq!(joined["transaction"]["transaction"], out["transaction"]);
    // One signature slot, then exactly the SDK's message.
    assert_eq!(tx[0], 1);
    assert_eq!(&tx[65..], &unbase64(&expected)[..]);
    assert_eq!(
        bs58::encode(&tx[1..65]).into_string(),
        out["signature"].as_str().unwrap()
    );

    // The runtime checks the signature: one bit off, it is refused.
    let mut tampered = tx.clone();
    tampered[10] ^= 1;
    let refused = ledger.send(&tampered).unwrap_err();
    assert!(refused.contains("SignatureFailure"), "{refused}");
    assert_eq!(ledger.balance(to), 0);
    ledger.send(&tx).expect("LiteSVM executes the transfer");
    assert_eq!(ledger.balance(to), 250_000_000);
    assert_eq!(ledger.balance(&wallet), 2_000_000_000 - 250_000_000 - FEE);

    // On a durable nonce, a co-signer who is asked sees the decoded
    // transfer, and the transaction outlives its blockhash.
    let nonce = ledger.ask(serde_json::json!({"cmd": "nonce", "authority": wallet}));
    let (account, value) = (
        nonce["account"].as_str().unwrap(),
        nonce["nonce"].as_str().unwrap(),
    );
    let mut asked = wallet_cmd(&server, &dir, "cli3")
        .args(["--json", "join", "--timeout-secs", "20"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    asked.stdin.take().unwrap().write_all(b"y\n").unwrap();
    wait_registered(&server, &["cli3"]);
    let proposer = wallet_cmd(&server, &dir, "cli1")
        .args(["--json", "solana-transfer", "--wallet", &key, "--to", to])
        .args(["--lamports", "1000000", "--blockhash", value])
        .args(["--nonce-account", account])
        .args(["--signers", "cli1,cli3", "--timeout-secs", "20"])
        .spawn()
        .unwrap();
    let out = json_of(&finish(proposer, Duration::from_secs(60)));
    let joined = finish(asked, Duration::from_secs(60));
    let prompt = String::from_utf8_lossy(&joined.stderr).to_string();
    for needle in [
        format!("fee payer {wallet} (this wallet)"),
        format!("to {to}"),
        "0.001000000 SOL".to_string(),
        format!("advance durable nonce {account}"),
        "durable nonce: the transaction does not expire".to_string(),
    ] {
        assert!(prompt.contains(&needle), "{needle:?} not shown:\n{prompt}");
    }
    json_of(&joined);
    for _ in 0..3 {
        ledger.ask(serde_json::json!({"cmd": "expire"}));
    }
    let tx = unbase64(out["transaction"].as_str().unwrap());
    ledger
        .send(&tx)
        .expect("a durable-nonce transfer survives expiry");
    assert_eq!(ledger.balance(to), 251_000_000);
    // The nonce advanced: the same transaction can't be replayed.
    assert!(ledger.send(&tx).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn solana_transactions_a_signer_must_refuse_fail_before_anything_is_sent() {
    let (dir, results) = create_wallet("badsol", 2, 2, "ed25519");
    let key = group_key(&results);
    let wallet = address_of(&key);
    let other = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM";
    let hash = "4uQeVj5tqViQh7yWWGStvkEG1Zmhx6uasJtWCJziofM";
    // No server runs: every refusal must come before the network.
    let refuse = |args: &[&str], said: &str| {
        let out = Command::new(wallet_bin())
            .args(["--server", "ws://127.0.0.1:9/ws", "--keystore"])
            .arg(dir.join("cli1"))
            .args(args)
            .env("MPC_WALLET_PASSPHRASE", PASS)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(said), "{said:?} not in: {err}");
    };
    refuse(
        &["sign-solana", "--wallet", &key, "--tx", "bm90IGEgdHg!!"],
        "not valid base64",
    );
    refuse(
        &["sign-solana", "--wallet", &key, "--tx", "AAAA"],
        "Solana transaction",
    );
    // Someone else's transfer: the wallet is not a required signer.
    let theirs = {
        let from = mpc_chain::solana::decode_address(other).unwrap();
        let to = mpc_chain::solana::decode_address(&wallet).unwrap();
        let h = mpc_chain::solana::decode_address(hash).unwrap();
        let m = mpc_chain::solana::transfer_message(&from, &to, 1, &h, None);
        base64::engine::general_purpose::STANDARD.encode(m)
    };
    refuse(
        &["sign-solana", "--wallet", &key, "--tx", &theirs],
        "not one of the transaction's required signers",
    );
    let transfer = |to: &str, hash: &str| {
        [
            "solana-transfer",
            "--wallet",
            &key,
            "--to",
            to,
            "--lamports",
            "5",
            "--blockhash",
            hash,
        ]
        .map(String::from)
    };
    let args = transfer("not-base58!", hash);
    refuse(&args.each_ref().map(String::as_str), "--to");
    let args = transfer(other, "abc");
    refuse(&args.each_ref().map(String::as_str), "--blockhash");
    std::fs::remove_dir_all(&dir).unwrap();
}
