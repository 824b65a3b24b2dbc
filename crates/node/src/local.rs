//! The commands that work on this node's keystore alone, without a
//! server: `identity`, `trust`, `wallet export` and `wallet import`.

use std::path::Path;

use mpc_address::Network;
use mpc_keystore::fs::Keystore;
use mpc_node::display::Remote;
use mpc_node::driver;

use crate::cli::unlock_passphrase;

/// `identity`: this node's key and fingerprint, and the peer keys it pinned.
pub fn identity(ks: &Keystore, json_out: bool) -> Result<(), String> {
    let key = ks.identity().map_err(|e| e.to_string())?.public_key();
    let known = ks.known_peers().map_err(|e| e.to_string())?;
    if json_out {
        let pins: serde_json::Map<String, serde_json::Value> = known
            .iter()
            .map(|(p, k)| (p.to_string(), serde_json::json!(k.to_hex())))
            .collect();
        let out = serde_json::json!({
            "public_key": key.to_hex(),
            "fingerprint": key.fingerprint(),
            "known_peers": pins,
        });
        println!("{out}");
        return Ok(());
    }
    println!("identity key:  {key}");
    println!("fingerprint:   {}", key.fingerprint());
    if known.is_empty() {
        println!("pinned peers:  none yet");
    } else {
        println!("pinned peers:");
        for (p, k) in known.iter() {
            let p = Remote(p).to_string();
            println!("  {p:<20} {}  {k}", k.fingerprint());
        }
    }
    Ok(())
}

/// `trust`: pins, re-pins or forgets a peer's key.
pub fn trust(ks: &Keystore, peer: &str, key: Option<&str>, forget: bool) -> Result<(), String> {
    mpc_protocol::validate_peer_id(peer).map_err(|e| format!("peer id {peer:?}: {e}"))?;
    if forget {
        match ks.forget(peer).map_err(|e| e.to_string())? {
            Some(old) => println!("forgot {peer}'s key {}", old.fingerprint()),
            None => println!("no key was pinned for {peer}"),
        }
        return Ok(());
    }
    let key: mpc_core::PublicKey = key
        .unwrap_or_default()
        .parse()
        .map_err(|e| format!("key for {peer}: {e}"))?;
    match ks.pin(peer, key).map_err(|e| e.to_string())? {
        Some(old) if old == key => {
            println!("{peer}'s key {} was already pinned", key.fingerprint())
        }
        Some(old) => println!(
            "re-pinned {peer}: {} (was {})",
            key.fingerprint(),
            old.fingerprint()
        ),
        None => println!("pinned {peer}: {}", key.fingerprint()),
    }
    Ok(())
}

/// `wallet export`: the wallet file as it is stored (its share encrypted).
pub fn export(ks: &Keystore, wallet: &str) -> Result<(), String> {
    let (_, file) = ks.find(wallet).map_err(|e| e.to_string())?;
    println!("{}", file.to_json());
    Ok(())
}

/// `wallet import`: stores a wallet file once its passphrase has opened it,
/// so a file that could never sign is not kept.
pub fn import(ks: &Keystore, file: &Path, network: Network, json_out: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let parsed = mpc_keystore::KeyShareFile::from_json(&text)
        .and_then(|f| mpc_keystore::wallet::check_public(&f.metadata).map(|()| f))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let passphrase = unlock_passphrase(&parsed.metadata.id)?;
    driver::open_signing_wallet(&parsed, &passphrase)?;
    let path = ks.save(&parsed).map_err(|e| e.to_string())?;
    if json_out {
        let mut v = mpc_node::wallets::summary(&parsed.metadata, network);
        v["keystore_path"] = serde_json::json!(path);
        println!("{v}");
    } else {
        println!(
            "imported wallet {} into {}",
            Remote(&parsed.metadata.id),
            path.display()
        );
    }
    Ok(())
}
