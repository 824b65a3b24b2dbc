//! Threshold signing between processes (issue 6), each signature verified by an outside library.

use super::*;

/// libsecp256k1 BIP340 check under the witness program of the wallet's own
/// Taproot address (the message must be 32 bytes, like a sighash).
pub(super) fn verify_bip340(address: &str, message: &[u8], signature: &[u8]) {
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
pub(super) fn verify_ed25519(address: &str, message: &[u8], signature: &[u8]) {
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
pub(super) fn sign_with(
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
pub(super) fn sign_through(
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

pub(super) fn check_signatures(outs: &[(String, Output)], key: &str, message_hex: &str) -> Vec<u8> {
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
