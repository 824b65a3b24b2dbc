//! Faults around a session (issue 19): the signaling server dies once the
//! mesh is up, and the key generation still completes over the data
//! channels.

use super::signing::{check_signatures, sign_with, verify_ed25519};
use super::*;

#[test]
fn a_server_killed_after_the_mesh_forms_does_not_stop_the_key_generation() {
    let mut server = Server::start();
    let dir = tempdir("serverkill");
    let joiners: Vec<(String, Child)> = ["cli2", "cli3"]
        .iter()
        .map(|id| {
            let c = wallet_cmd(&server, &dir, id)
                .args(["--json", "join", "--yes"])
                .spawn()
                .unwrap();
            (id.to_string(), c)
        })
        .collect();
    wait_registered(&server, &["cli2", "cli3"]);
    // The creator pauses once the mesh is up, before its commitment: the
    // server dies meanwhile.
    let mut creator = wallet_cmd(&server, &dir, "cli1")
        .args(["--json", "create", "--participants", "cli1,cli2,cli3"])
        .args(["--threshold", "2", "--curve", "ed25519"])
        .env("MPC_WALLET_TEST_PAUSE_BEFORE", "commitment")
        .spawn()
        .unwrap();
    // Read to the end, so the creator never writes to a closed pipe.
    let stderr = BufReader::new(creator.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    let rest = std::thread::spawn(move || {
        let mut all = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("test hook: pausing before commitment") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the creator never reached its commitment");
    let _ = server.child.kill();
    let _ = server.child.wait();

    let out = finish(creator, Duration::from_secs(60));
    let said = rest.join().unwrap();
    assert!(out.status.success(), "creator failed: {said}");
    let created = json_of(&out);
    let key = created["group_public_key"].as_str().unwrap().to_string();
    for (id, child) in joiners {
        let v = json_of(&finish(child, Duration::from_secs(60)));
        assert_eq!(v["group_public_key"], key.as_str(), "{id}");
    }
    // The wallet is whole: it signs (with a server again).
    let address = mpc_address::solana_address(&key).unwrap();
    let message_hex = hex::encode(b"after the server died");
    let outs = sign_with(&dir, &["cli3", "cli1"], &key, &message_hex, None);
    let sig = check_signatures(&outs, &key, &message_hex);
    verify_ed25519(&address, b"after the server died", &sig);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `cmd` with `MPC_WALLET_TEST_PAUSE_BEFORE=before` and returns it
/// once it is pausing there, with its stderr drained in the background.
fn paused_at(mut cmd: Command, before: &str) -> (Child, std::thread::JoinHandle<String>) {
    let mut child = cmd
        .env("MPC_WALLET_TEST_PAUSE_BEFORE", before)
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    let needle = format!("test hook: pausing before {before}");
    let rest = std::thread::spawn(move || {
        let mut all = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains(&needle) {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("never reached {before}"));
    (child, rest)
}

#[test]
fn a_server_killed_mid_signing_does_not_stop_the_signature() {
    let (dir, results) = create_wallet("serverkillsign", 2, 2, "secp256k1");
    let key = group_key(&results);
    let address = results[0].1["addresses"]["bitcoin_taproot"]
        .as_str()
        .unwrap()
        .to_string();
    let mut server = Server::start();
    let message_hex = hex::encode([0x33; 32]);
    let joiner = wallet_cmd(&server, &dir, "cli2")
        .args(["--json", "join", "--approve-message-hex", &message_hex])
        .spawn()
        .unwrap();
    wait_registered(&server, &["cli2"]);
    let mut cmd = wallet_cmd(&server, &dir, "cli1");
    cmd.args([
        "--json",
        "sign",
        "--wallet",
        &key,
        "--message-hex",
        &message_hex,
    ])
    .args(["--signers", "cli1,cli2"]);
    let (signer, rest) = paused_at(cmd, "sign_commitment");
    let _ = server.child.kill();
    let _ = server.child.wait();
    let out = finish(signer, Duration::from_secs(60));
    assert!(out.status.success(), "{}", rest.join().unwrap());
    let outs = vec![
        ("cli1".to_string(), out),
        ("cli2".to_string(), finish(joiner, Duration::from_secs(60))),
    ];
    let sig = check_signatures(&outs, &key, &message_hex);
    super::signing::verify_bip340(&address, &[0x33; 32], &sig);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_node_frozen_at_each_phase_is_named_by_the_others_and_nothing_is_stored() {
    let server = Server::start();
    // One keystore per node for every round: the server keeps each id
    // bound to its key.
    let dir = tempdir("frozen");
    for before in ["commitment", "share", "ready"] {
        let cli2 = wallet_cmd(&server, &dir, "cli2")
            .args(["--json", "join", "--yes", "--timeout-secs", "3"])
            .spawn()
            .unwrap();
        let mut cmd = wallet_cmd(&server, &dir, "cli3");
        cmd.args(["--json", "join", "--yes", "--timeout-secs", "3"]);
        // cli3 is frozen (SIGSTOP) where it would send `before`.
        let victim = std::thread::spawn(move || paused_at(cmd, before));
        wait_registered(&server, &["cli2", "cli3"]);
        let creator = wallet_cmd(&server, &dir, "cli1")
            .args(["--json", "create", "--participants", "cli1,cli2,cli3"])
            .args(["--threshold", "2", "--timeout-secs", "3"])
            .spawn()
            .unwrap();
        let (mut frozen, _) = victim.join().unwrap();
        let pid = frozen.id().to_string();
        Command::new("kill").args(["-STOP", &pid]).status().unwrap();
        for (id, child) in [("cli1", creator), ("cli2", cli2)] {
            let out = finish(child, Duration::from_secs(60));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{id} completed with cli3 frozen ({before})"
            );
            assert!(
                err.contains("cli3"),
                "{id} did not name cli3 ({before}): {err}"
            );
            assert!(
                wallet_files(&dir.join(id)).is_empty(),
                "{id} stored a share ({before})"
            );
        }
        let _ = frozen.kill();
        let _ = frozen.wait();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
