//! `wallets` and `wallet show`: what the keystore holds, without the
//! passphrase.

use mpc_address::{addresses, Addresses, Network};
use mpc_keystore::fs::Keystore;
use mpc_keystore::Metadata;
use serde_json::{json, Value};

use crate::display::Remote;

/// The JSON shape of one wallet in `wallets --json`.
pub fn summary(meta: &Metadata, network: Network) -> Value {
    json!({
        "id": meta.id,
        "curve": meta.curve,
        "threshold": meta.threshold,
        "participants": meta.participants,
        "group_public_key": meta.group_public_key,
        "addresses": wallet_addresses(meta, network),
    })
}

pub fn wallet_addresses(meta: &Metadata, network: Network) -> Addresses {
    // A file with a key we can't encode still lists, without addresses.
    addresses(&meta.curve, &meta.group_public_key, network).unwrap_or_default()
}

/// Prints every wallet; broken files are reported on stderr.
pub fn list(ks: &Keystore, network: Network, json_out: bool) -> Result<(), String> {
    let mut good = Vec::new();
    for (path, file) in ks
        .list()
        .map_err(|e| format!("{}: {e}", ks.dir().display()))?
    {
        match file {
            Ok(f) => good.push(f.metadata),
            Err(e) => eprintln!("warning: {}: {}", path.display(), Remote(e)),
        }
    }
    if json_out {
        let list: Vec<Value> = good.iter().map(|m| summary(m, network)).collect();
        println!("{}", json!({ "wallets": list }));
        return Ok(());
    }
    if good.is_empty() {
        println!("no wallets in {}", ks.dir().display());
    }
    for m in &good {
        let a = wallet_addresses(m, network);
        // Everything but the numbers is the file's cleartext: escaped.
        println!(
            "{}  {}-of-{} {:9}  {}",
            Remote(&m.id),
            m.threshold,
            m.participants.len(),
            Remote(&m.curve).to_string(),
            a.bitcoin_taproot.or(a.solana).unwrap_or_default()
        );
    }
    Ok(())
}

/// Prints one wallet, found by id (or prefix) or group public key.
pub fn show(ks: &Keystore, query: &str, network: Network, json_out: bool) -> Result<(), String> {
    let (path, f) = ks.find(query).map_err(|e| e.to_string())?;
    let m = &f.metadata;
    if json_out {
        let mut v = summary(m, network);
        v["peer_id"] = json!(m.peer_id);
        v["session_id"] = json!(m.session_id);
        v["created_at"] = json!(m.created_at);
        v["keystore_path"] = json!(path);
        println!("{v}");
        return Ok(());
    }
    let a = wallet_addresses(m, network);
    println!("wallet {}", Remote(&m.id));
    println!("  curve:            {}", Remote(&m.curve));
    println!(
        "  threshold:        {} of {}",
        m.threshold,
        m.participants.len()
    );
    println!("  participants:     {}", Remote(m.participants.join(", ")));
    println!("  this node:        {}", Remote(&m.peer_id));
    println!("  group public key: {}", Remote(&m.group_public_key));
    if let Some(x) = a.bitcoin_taproot {
        println!("  bitcoin taproot:  {x}");
    }
    if let Some(x) = a.solana {
        println!("  solana:           {x}");
    }
    println!("  created by:       session {}", Remote(&m.session_id));
    println!("  file:             {}", path.display());
    Ok(())
}
