//! `wallets` and `wallet show`: what the keystore holds, without the
//! passphrase (or, with `--verify`, checked with it).
//!
//! A wallet file's metadata is cleartext: anyone who can write the file can
//! edit it. An address is only shown once the file agrees with itself
//! ([`check_public`]: the id is the group key's, the group key is the one in
//! the public key package), and it is computed from that key, never read.
//! A file whose key and package were both swapped for another wallet's is
//! consistent: only `wallet show --verify`, which opens the share with the
//! passphrase and checks the metadata sealed with it, can tell.

use mpc_address::{addresses, rawtr_descriptor, AddressError, Addresses, Network};
use mpc_keystore::fs::Keystore;
use mpc_keystore::wallet::{check_public, open_signing_wallet};
use mpc_keystore::{KeystoreError, Metadata};
use serde_json::{json, Value};

use crate::display::Remote;

/// Why a wallet's address is not shown.
#[derive(Debug, thiserror::Error)]
pub enum Withheld {
    #[error("the file was tampered with: {0}")]
    Tampered(KeystoreError),
    #[error("its group key has no address: {0}")]
    NoAddress(AddressError),
}

/// A wallet's addresses, computed from its group key once the cleartext
/// agrees with itself.
pub fn verified_addresses(meta: &Metadata, network: Network) -> Result<Addresses, Withheld> {
    check_public(meta).map_err(Withheld::Tampered)?;
    addresses(&meta.curve, &meta.group_public_key, network).map_err(Withheld::NoAddress)
}

/// The JSON shape of one wallet in `wallets --json`: `addresses`, or, for
/// a file that disagrees with itself, `error` instead.
pub fn summary(meta: &Metadata, network: Network) -> Value {
    let mut v = json!({
        "id": meta.id,
        "curve": meta.curve,
        "threshold": meta.threshold,
        "participants": meta.participants,
        "group_public_key": meta.group_public_key,
        "generation": meta.generation,
    });
    match verified_addresses(meta, network) {
        Ok(a) => v["addresses"] = json!(a),
        Err(e) => v["error"] = json!(e.to_string()),
    }
    v
}

/// Prints every wallet; broken files, and files tampered with (listed
/// without an address), are reported on stderr.
pub fn list(ks: &Keystore, network: Network, json_out: bool) -> Result<(), String> {
    let mut good = Vec::new();
    for (path, file) in ks
        .list()
        .map_err(|e| format!("{}: {e}", ks.dir().display()))?
    {
        match file {
            Ok(f) => good.push((path, f.metadata, f.confirmation)),
            Err(e) => eprintln!("warning: {}: {}", path.display(), Remote(e)),
        }
    }
    if json_out {
        let list: Vec<Value> = good
            .iter()
            .map(|(_, m, c)| {
                let mut v = summary(m, network);
                v["confirmation"] = json!(c);
                v
            })
            .collect();
        println!("{}", json!({ "wallets": list }));
        return Ok(());
    }
    if good.is_empty() {
        println!("no wallets in {}", ks.dir().display());
    }
    for (path, m, c) in &good {
        let address = match verified_addresses(m, network) {
            Ok(a) => a.bitcoin_taproot.or(a.solana).unwrap_or_default(),
            Err(e) => {
                eprintln!("warning: {}: {}", path.display(), Remote(&e));
                "(address withheld: file tampered with)".into()
            }
        };
        // Files from before confirmations were recorded say nothing.
        let state = c
            .as_ref()
            .map(|c| format!("  [{}]", Remote(c)))
            .unwrap_or_default();
        // Everything but the numbers is the file's cleartext: escaped.
        println!(
            "{}  {}-of-{} {:9}  {address}{state}",
            Remote(&m.id),
            m.threshold,
            m.participants.len(),
            Remote(&m.curve).to_string(),
        );
    }
    Ok(())
}

/// How `wallet show` prints.
pub struct Show<'a> {
    pub network: Network,
    pub json: bool,
    /// A passphrase: also open the share and check the sealed metadata.
    pub verify: Option<&'a str>,
    /// Print only the watch-only descriptor (or, with `json`, add it).
    pub descriptor: bool,
}

/// The wallet's `rawtr` descriptor, for secp256k1 wallets.
fn descriptor(m: &Metadata) -> Option<String> {
    (m.curve == "secp256k1")
        .then(|| rawtr_descriptor(&m.group_public_key).ok())
        .flatten()
}

/// Prints one wallet, found by id (or prefix) or group public key; refuses
/// one whose cleartext disagrees with itself.
pub fn show(ks: &Keystore, query: &str, how: &Show) -> Result<(), String> {
    let (network, json_out, verify) = (how.network, how.json, how.verify);
    let (path, f) = ks.find(query).map_err(|e| e.to_string())?;
    let m = &f.metadata;
    let refuse = |e: &dyn std::fmt::Display| {
        format!("wallet {} ({}): {e}; not showing it", m.id, path.display())
    };
    let a = verified_addresses(m, network).map_err(|e| refuse(&e))?;
    if let Some(passphrase) = verify {
        open_signing_wallet(&f, passphrase).map_err(|e| refuse(&e))?;
    }
    let desc = descriptor(m);
    if how.descriptor && desc.is_none() {
        return Err(format!(
            "wallet {} is on {}: only secp256k1 (Taproot) wallets have a Bitcoin descriptor",
            Remote(&m.id),
            Remote(&m.curve)
        ));
    }
    if how.descriptor && !json_out {
        println!("{}", desc.unwrap_or_default());
        return Ok(());
    }
    if json_out {
        let mut v = summary(m, network);
        if let Some(d) = &desc {
            v["descriptor"] = json!(d);
        }
        v["peer_id"] = json!(m.peer_id);
        v["session_id"] = json!(m.session_id);
        v["created_at"] = json!(m.created_at);
        v["keystore_path"] = json!(path);
        v["verified"] = json!(verify.is_some());
        println!("{v}");
        return Ok(());
    }
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
    if let Some(d) = desc {
        println!("  descriptor:       {d}");
    }
    if let Some(x) = a.solana {
        println!("  solana:           {x}");
    }
    println!("  created by:       session {}", Remote(&m.session_id));
    println!("  file:             {}", path.display());
    if verify.is_some() {
        println!("  verified:         the passphrase opens the share, sealed with this metadata");
    } else {
        println!("  verified:         not with the passphrase (`wallet show --verify`)");
    }
    Ok(())
}
