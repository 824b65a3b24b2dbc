//! Accepting key generation is not approving signatures (issue 13 #3).

use super::signing::{check_signatures, sign_through, sign_with};
use super::*;

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
