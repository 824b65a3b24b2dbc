//! Wallet files that lie about themselves (issue 13 #6, #15).

use super::terminal::{assert_inert, FAKE_LINE, FAKE_LINE_ESCAPED};
use super::*;

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
