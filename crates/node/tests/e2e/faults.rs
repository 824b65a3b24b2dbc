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
