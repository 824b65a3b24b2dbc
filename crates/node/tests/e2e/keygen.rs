//! Key generation between processes: success, a joiner killed, a participant that never confirms, a decline, bad input.

use super::*;

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

    // `--descriptor`: the watch-only `rawtr` of the output key, untweaked.
    let show = |args: &[&str]| {
        Command::new(wallet_bin())
            .args(args)
            .arg("--keystore")
            .arg(dir.join("cli1"))
            .args(["wallet", "show", "--descriptor", key])
            .output()
            .unwrap()
    };
    let out = show(&[]);
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let (body, sum) = line.trim().split_once('#').unwrap();
    assert_eq!(body, format!("rawtr({})", &key[2..]));
    assert_eq!(mpc_address::descriptor_checksum(body).unwrap(), sum);
    assert_eq!(json_of(&show(&["--json"]))["descriptor"], line.trim());

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
    // Only a Taproot wallet has a Bitcoin descriptor.
    let out = Command::new(wallet_bin())
        .arg("--keystore")
        .arg(dir.join("cli1"))
        .args(["wallet", "show", "--descriptor"])
        .arg(results[0].1["group_public_key"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is on ed25519: only secp256k1"));
    std::fs::remove_dir_all(&dir).unwrap();
}

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

/// Kills one joiner once its DKG has started: every other node exits
/// non-zero naming it, and nobody writes a keystore.
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
