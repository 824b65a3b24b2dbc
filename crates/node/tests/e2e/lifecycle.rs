//! A wallet's key lifecycle (issue 16) between processes: `refresh` keeps
//! the address while every share changes, the new shares sign (checked
//! with libsecp256k1 and ed25519-dalek), an old share is refused before
//! anything is signed, and a participant left out can no longer sign.

use super::signing::{check_signatures, sign_with, verify_bip340, verify_ed25519};
use super::*;

/// Copies `from`'s keystore as it is now into `into/<id>`.
fn copy_keystore(from: &Path, into: &Path, id: &str) {
    let to = into.join(id);
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(from.join(id)).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn wallet_json(dir: &Path, id: &str, key: &str) -> Value {
    let out = offline(&dir.join(id), &["--json", "wallets"]);
    let v = json_of(&out);
    v["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["group_public_key"] == key)
        .cloned()
        .unwrap_or_else(|| panic!("{id} has no wallet {key}: {v}"))
}

/// `cli1 refresh ARGS`, with cli2 approving unasked and, if `asked`, cli3
/// answering yes at its prompt; returns (proposer, cli2, cli3) outputs.
fn refresh(
    server: &Server,
    dir: &Path,
    key: &str,
    args: &[&str],
    asked: bool,
) -> (Output, Output, Option<Output>) {
    let approving = wallet_cmd(server, dir, "cli2")
        .args([
            "--json",
            "join",
            "--timeout-secs",
            "20",
            "--approve-refresh",
            key,
        ])
        .spawn()
        .unwrap();
    let mut prompted = asked.then(|| {
        wallet_cmd(server, dir, "cli3")
            .args(["--json", "join", "--timeout-secs", "20"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap()
    });
    if let Some(c) = prompted.as_mut() {
        c.stdin.take().unwrap().write_all(b"y\n").unwrap();
    }
    let who: &[&str] = if asked { &["cli2", "cli3"] } else { &["cli2"] };
    wait_registered(server, who);
    let proposer = wallet_cmd(server, dir, "cli1")
        .args(["--json", "refresh", "--wallet", key, "--timeout-secs", "20"])
        .args(args)
        .spawn()
        .unwrap();
    let out = finish(proposer, Duration::from_secs(60));
    (
        out,
        finish(approving, Duration::from_secs(60)),
        prompted.map(|c| finish(c, Duration::from_secs(60))),
    )
}

#[test]
fn a_refresh_keeps_the_address_the_new_shares_sign_and_an_old_share_is_refused() {
    let (dir, results) = create_wallet("refresh", 3, 2, "secp256k1");
    let key = group_key(&results);
    let address = results[0].1["addresses"]["bitcoin_taproot"]
        .as_str()
        .unwrap()
        .to_string();
    let old = dir.join("old");
    copy_keystore(&dir, &old, "cli1");
    let server = Server::start();

    let (out, approved, asked) = refresh(&server, &dir, &key, &[], true);
    let asked = asked.unwrap();
    let prompt = String::from_utf8_lossy(&asked.stderr).to_string();
    for needle in [
        "refresh wallet",
        "new shares (generation 1) for cli1, cli2, cli3",
        "nobody is removed",
        &format!("the address stays {address}"),
    ] {
        assert!(prompt.contains(needle), "{needle:?} not asked:\n{prompt}");
    }
    let v = json_of(&out);
    for (id, o) in [("cli2", &approved), ("cli3", &asked)] {
        assert_eq!(json_of(o), v, "{id} reports another refresh");
    }
    assert_eq!(v["group_public_key"], key.as_str());
    assert_eq!(v["generation"], 1);
    assert_eq!(
        v["participants"],
        serde_json::json!(["cli1", "cli2", "cli3"])
    );
    assert_eq!(v["wallet_id"], mpc_keystore::wallet_id(&key));
    for id in ["cli1", "cli2", "cli3"] {
        let w = wallet_json(&dir, id, &key);
        assert_eq!(w["generation"], 1, "{id}");
        assert_eq!(w["addresses"]["bitcoin_taproot"], address.as_str());
        assert_eq!(w["confirmation"]["state"], "confirmed", "{id}");
        let pending = dir
            .join(id)
            .join("pending")
            .join(format!("{}.json", v["wallet_id"].as_str().unwrap()));
        assert!(!pending.exists(), "{id} still holds a pending share");
    }

    // The new shares sign, under the same Taproot output key.
    let message_hex = hex::encode([0x5a; 32]);
    let outs = sign_with(&dir, &["cli1", "cli3"], &key, &message_hex, None);
    let sig = check_signatures(&outs, &key, &message_hex);
    verify_bip340(&address, &[0x5a; 32], &sig);

    // cli1's old share, with cli2's new one: cli2 declines before signing.
    let joiner = wallet_cmd(&server, &dir, "cli2")
        .args([
            "--json",
            "join",
            "--timeout-secs",
            "20",
            "--approve-message-hex",
            &message_hex,
        ])
        .spawn()
        .unwrap();
    wait_registered(&server, &["cli2"]);
    let stale = wallet_cmd(&server, &old, "cli1")
        .args([
            "--json",
            "sign",
            "--wallet",
            &key,
            "--message-hex",
            &message_hex,
        ])
        .args(["--signers", "cli1,cli2", "--timeout-secs", "20"])
        .spawn()
        .unwrap();
    let refused = finish(stale, Duration::from_secs(60));
    let _ = finish(joiner, Duration::from_secs(60));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        err.contains("generation 1, the proposal's 0") && err.contains("do not combine"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_participant_removed_by_a_refresh_can_no_longer_sign() {
    let (dir, results) = create_wallet("remove", 3, 2, "ed25519");
    let key = group_key(&results);
    let address = results[0].1["addresses"]["solana"]
        .as_str()
        .unwrap()
        .to_string();
    let server = Server::start();
    let (out, approved, _) = refresh(&server, &dir, &key, &["--remove", "cli3"], false);
    let v = json_of(&out);
    assert_eq!(json_of(&approved), v);
    assert_eq!(v["participants"], serde_json::json!(["cli1", "cli2"]));
    assert_eq!(v["generation"], 1);
    // cli3 took no part: it still holds generation 0, of three.
    let w3 = wallet_json(&dir, "cli3", &key);
    assert_eq!(w3["generation"], 0);

    let message_hex = hex::encode(b"after removing cli3");
    let outs = sign_with(&dir, &["cli2", "cli1"], &key, &message_hex, None);
    let sig = check_signatures(&outs, &key, &message_hex);
    verify_ed25519(&address, b"after removing cli3", &sig);

    // cli3 asks cli1 to sign: cli1's wallet has no cli3 any more.
    let outs = sign_with(&dir, &["cli3", "cli1"], &key, &message_hex, None);
    let err = String::from_utf8_lossy(&outs[0].1.stderr);
    assert!(!outs[0].1.status.success());
    assert!(
        err.contains("cli3 is not a participant of this wallet"),
        "{err}"
    );

    // Bad input: removing the proposer, or too many.
    let bad = |args: &[&str], said: &str| {
        let out = offline(
            &dir.join("cli1"),
            &[&["refresh", "--wallet", &key][..], args].concat(),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(said), "{said:?} not in {err}");
    };
    bad(&["--remove", "cli1"], "this node proposes the refresh");
    bad(
        &["--remove", "cli2"],
        "needs 2 participants; 1 would remain",
    );
    bad(&["--remove", "cli9"], "--remove cli9: not a participant");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_refresh_killed_at_any_phase_leaves_every_node_a_wallet_that_signs() {
    let (dir, results) = create_wallet("refreshkill", 3, 2, "ed25519");
    let key = group_key(&results);
    let address = results[0].1["addresses"]["solana"]
        .as_str()
        .unwrap()
        .to_string();
    let server = Server::start();
    // cli3 is killed just before it would send each of these; for the
    // last one it has already stored its new share as pending.
    for before in ["commitment", "share", "ready", "refresh_committed"] {
        let cli2 = wallet_cmd(&server, &dir, "cli2")
            .args([
                "--json",
                "join",
                "--timeout-secs",
                "4",
                "--approve-refresh",
                &key,
            ])
            .spawn()
            .unwrap();
        let mut victim = wallet_cmd(&server, &dir, "cli3")
            .args([
                "--json",
                "join",
                "--timeout-secs",
                "4",
                "--approve-refresh",
                &key,
            ])
            .env("MPC_WALLET_TEST_STALL_BEFORE", before)
            .spawn()
            .unwrap();
        let stderr = BufReader::new(victim.stderr.take().unwrap());
        let pid = victim.id().to_string();
        let killer = std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if line.contains("test hook: stalling") {
                    let _ = Command::new("kill").args(["-KILL", &pid]).status();
                    return true;
                }
            }
            false
        });
        wait_registered(&server, &["cli2", "cli3"]);
        let cli1 = wallet_cmd(&server, &dir, "cli1")
            .args(["--json", "refresh", "--wallet", &key, "--timeout-secs", "4"])
            .spawn()
            .unwrap();
        let outs = [
            ("cli1", finish(cli1, Duration::from_secs(60))),
            ("cli2", finish(cli2, Duration::from_secs(60))),
        ];
        assert!(killer.join().unwrap(), "cli3 never reached {before}");
        let _ = victim.wait();
        for (id, out) in &outs {
            assert!(
                !out.status.success(),
                "{id} completed a refresh cli3 died in ({before})"
            );
        }
        if before == "refresh_committed" {
            let err = String::from_utf8_lossy(&outs[0].1.stderr);
            assert!(
                err.contains("keeps signing with its current share"),
                "{before}: {err}"
            );
        }
        // Every node's current share is the old one, and it signs.
        for id in ["cli1", "cli2", "cli3"] {
            assert_eq!(
                wallet_json(&dir, id, &key)["generation"],
                0,
                "{id} after {before}"
            );
        }
        let message_hex = hex::encode(before);
        for signers in [["cli1", "cli2"], ["cli3", "cli1"]] {
            let outs = sign_with(&dir, &signers, &key, &message_hex, None);
            let sig = check_signatures(&outs, &key, &message_hex);
            verify_ed25519(&address, before.as_bytes(), &sig);
        }
    }
    // cli3 died holding a pending share; a later refresh still completes
    // (and replaces it).
    let (out, _, asked) = refresh(&server, &dir, &key, &[], true);
    assert_eq!(json_of(&out)["generation"], 1);
    json_of(&asked.unwrap());
    let outs = sign_with(&dir, &["cli3", "cli2"], &key, &hex::encode(b"gen 1"), None);
    let sig = check_signatures(&outs, &key, &hex::encode(b"gen 1"));
    verify_ed25519(&address, b"gen 1", &sig);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn helpers_rebuild_a_lost_share_that_then_signs() {
    let (dir, results) = create_wallet("repair", 3, 2, "secp256k1");
    let key = group_key(&results);
    let address = results[0].1["addresses"]["bitcoin_taproot"]
        .as_str()
        .unwrap()
        .to_string();
    // cli2 loses everything, its identity key included.
    std::fs::remove_dir_all(dir.join("cli2")).unwrap();
    let fresh = json_of(&offline(&dir.join("cli2"), &["--json", "identity"]));
    let new_key = fresh["public_key"].as_str().unwrap().to_string();
    let server = Server::start();
    // Returns the proposer's output, and the helper's and the target's
    // unless `refused` (they then wait on for another proposal: killed).
    let run = |dir: &Path, refused: bool| {
        let helper = wallet_cmd(&server, dir, "cli3")
            .args([
                "--json",
                "join",
                "--timeout-secs",
                "20",
                "--approve-repair",
                &key,
            ])
            .spawn()
            .unwrap();
        let target = wallet_cmd(&server, dir, "cli2")
            .args(["--json", "join", "--timeout-secs", "20", "--accept-repair"])
            .spawn()
            .unwrap();
        wait_registered(&server, &["cli2", "cli3"]);
        let proposer = wallet_cmd(&server, dir, "cli1")
            .args(["--json", "repair", "--wallet", &key, "--for", "cli2"])
            .args(["--helpers", "cli1,cli3", "--timeout-secs", "20"])
            .spawn()
            .unwrap();
        let out = finish(proposer, Duration::from_secs(60));
        if refused {
            for mut c in [helper, target] {
                let _ = c.kill();
                let _ = c.wait();
            }
            return (out, None);
        }
        let others = [
            finish(helper, Duration::from_secs(60)),
            finish(target, Duration::from_secs(60)),
        ];
        (out, Some(others))
    };

    // The helpers still pin cli2's old key: nothing is sent to a stranger.
    let (refused, _) = run(&dir, true);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(err.contains("identity key of cli2 changed"), "{err}");
    assert!(!dir
        .join("cli2")
        .join(format!("{}.json", mpc_keystore::wallet_id(&key)))
        .exists());

    // Once each helper pinned the new key (checked out of band):
    for helper in ["cli1", "cli3"] {
        let out = offline(&dir.join(helper), &["trust", "cli2", &new_key]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (proposer, others) = run(&dir, false);
    let [helper, target] = others.unwrap();
    let t = json_of(&target);
    assert_eq!(t["group_public_key"], key.as_str());
    assert_eq!(
        t["participants"],
        serde_json::json!(["cli1", "cli2", "cli3"])
    );
    assert_eq!(t["generation"], 0);
    for o in [&proposer, &helper] {
        assert_eq!(json_of(o)["repaired"], "cli2");
    }
    let w = wallet_json(&dir, "cli2", &key);
    assert_eq!(w["addresses"]["bitcoin_taproot"], address.as_str());

    // The rebuilt share signs, with either other participant.
    let message_hex = hex::encode([0x17; 32]);
    for signers in [["cli2", "cli1"], ["cli3", "cli2"]] {
        let outs = sign_with(&dir, &signers, &key, &message_hex, None);
        let sig = check_signatures(&outs, &key, &message_hex);
        verify_bip340(&address, &[0x17; 32], &sig);
    }

    // Bad input.
    let bad = |args: &[&str], said: &str| {
        let out = offline(
            &dir.join("cli1"),
            &[&["repair", "--wallet", &key][..], args].concat(),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(said), "{said:?} not in {err}");
    };
    bad(&["--for", "cli1"], "this node holds its share");
    bad(
        &["--for", "cli9", "--helpers", "cli1,cli3"],
        "adding cli9 needs every participant as a helper",
    );
    bad(
        &["--for", "cli2", "--helpers", "cli1,cli2"],
        "the target cannot help",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_repair_adds_a_participant_that_then_signs_with_each_of_the_others() {
    let (dir, results) = create_wallet("addpeer", 3, 2, "ed25519");
    let key = group_key(&results);
    let address = results[0].1["addresses"]["solana"]
        .as_str()
        .unwrap()
        .to_string();
    // cli4 is new: the helpers pin its key, having checked it out of band.
    let fresh = json_of(&offline(&dir.join("cli4"), &["--json", "identity"]));
    let new_key = fresh["public_key"].as_str().unwrap().to_string();
    for helper in ["cli2", "cli3"] {
        let out = offline(&dir.join(helper), &["trust", "cli4", &new_key]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let server = Server::start();
    let helpers: Vec<Child> = ["cli2", "cli3"]
        .iter()
        .map(|id| {
            wallet_cmd(&server, &dir, id)
                .args([
                    "--json",
                    "join",
                    "--timeout-secs",
                    "20",
                    "--approve-repair",
                    &key,
                ])
                .spawn()
                .unwrap()
        })
        .collect();
    let target = wallet_cmd(&server, &dir, "cli4")
        .args(["--json", "join", "--timeout-secs", "20", "--accept-repair"])
        .spawn()
        .unwrap();
    wait_registered(&server, &["cli2", "cli3", "cli4"]);
    let proposer = wallet_cmd(&server, &dir, "cli1")
        .args([
            "--json",
            "repair",
            "--wallet",
            &key,
            "--for",
            "cli4",
            "--timeout-secs",
            "20",
        ])
        .spawn()
        .unwrap();
    let p = json_of(&finish(proposer, Duration::from_secs(60)));
    let t = json_of(&finish(target, Duration::from_secs(60)));
    for h in helpers {
        let h = json_of(&finish(h, Duration::from_secs(60)));
        assert_eq!(
            h["participants"],
            serde_json::json!(["cli1", "cli2", "cli3", "cli4"])
        );
    }
    assert_eq!(p["repaired"], "cli4");
    assert_eq!(
        t["participants"],
        serde_json::json!(["cli1", "cli2", "cli3", "cli4"])
    );
    for id in ["cli1", "cli2", "cli3", "cli4"] {
        let w = wallet_json(&dir, id, &key);
        assert_eq!(w["participants"].as_array().unwrap().len(), 4, "{id}");
        assert_eq!(w["threshold"], 2, "{id}");
        assert_eq!(w["addresses"]["solana"], address.as_str(), "{id}");
    }
    // cli4 signs with each of the others: every one of them learnt its
    // verifying share.
    for other in ["cli1", "cli2", "cli3"] {
        let message_hex = hex::encode(format!("cli4 and {other}"));
        let outs = sign_with(&dir, &["cli4", other], &key, &message_hex, None);
        let sig = check_signatures(&outs, &key, &message_hex);
        verify_ed25519(&address, format!("cli4 and {other}").as_bytes(), &sig);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
