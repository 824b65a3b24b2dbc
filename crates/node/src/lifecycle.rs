//! A wallet's key lifecycle: `refresh` (new shares of the same key,
//! optionally leaving participants out) and `repair` (helpers rebuild a
//! participant's lost share), and how their outcomes are printed; `join`
//! prints a refresh or repair it took part in the same way.

use std::path::Path;
use std::process::ExitCode;

use mpc_core::{Command, WalletResult};
use mpc_node::driver::{self, Goal, Helped, Outcome, Storage};
use mpc_node::observer::Terminal;
use mpc_protocol::peer::Curve;
use serde_json::json;

use crate::cli::{self, keystore, node_options, Cli};
use crate::{runtime, usage};

/// `refresh`: propose new shares of `query`'s key to its participants,
/// less `remove`, and take part.
pub fn refresh(
    cli: &Cli,
    query: &str,
    remove: &[String],
    session_id: Option<String>,
    timeout: u64,
) -> Result<ExitCode, String> {
    let ks = keystore(cli)?;
    let (_, file) = ks.find(query).map_err(|e| e.to_string())?;
    let meta = &file.metadata;
    if meta.curve == Curve::Secp256k1Ecdsa.as_str() {
        return usage(format!(
            "wallet {}: a refresh of an Ethereum (secp256k1-ecdsa) wallet is not supported yet",
            meta.id
        ));
    }
    let me = cli.peer_id.clone().unwrap_or_else(|| meta.peer_id.clone());
    if !meta.participants.contains(&me) {
        return usage(format!("{me} is not a participant of wallet {}", meta.id));
    }
    if let Some(x) = remove.iter().find(|x| !meta.participants.contains(x)) {
        return usage(format!(
            "--remove {x}: not a participant of wallet {}",
            meta.id
        ));
    }
    if remove.contains(&me) {
        return usage(format!(
            "--remove {me}: this node proposes the refresh, so it keeps a share; \
             run the refresh from another participant"
        ));
    }
    let participants: Vec<String> = meta
        .participants
        .iter()
        .filter(|p| !remove.contains(p))
        .cloned()
        .collect();
    if participants.len() < usize::from(meta.threshold) {
        return usage(format!(
            "wallet {} needs {} participants; {} would remain",
            meta.id,
            meta.threshold,
            participants.len()
        ));
    }
    if let Some(p) = ks.pending(&meta.id).map_err(|e| e.to_string())? {
        eprintln!(
            "note: wallet {} has a pending share of generation {} from an earlier refresh that \
             was not confirmed everywhere; this refresh starts again from generation {}",
            meta.id, p.metadata.generation, meta.generation
        );
    }
    // The share opens with its passphrase, and the new share is sealed
    // under the same one.
    let passphrase = cli::unlock_passphrase(&meta.id)?;
    let wallet = driver::open_signing_wallet(&file, &passphrase)?;
    let storage = Storage {
        keystore: ks.clone(),
        passphrase,
        work_factor: mpc_node::work_factor(),
    };
    let opts = node_options(cli, me, timeout)?;
    let goal = Goal::Command(Command::Refresh {
        session_id,
        wallet: Box::new(wallet),
        participants,
    });
    let mut term = Terminal::new(cli.json);
    let result = runtime()?.block_on(driver::run(opts, goal, Some(storage), &mut term));
    term.finish();
    match result {
        Ok(Outcome::Refreshed {
            wallet,
            keystore_path,
        }) => {
            print_refreshed(&wallet, &keystore_path, cli.json);
            Ok(ExitCode::SUCCESS)
        }
        Ok(_) => Err("unexpected outcome".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `repair`: propose that `helpers` (this node among them) rebuild the
/// share `target` lost, and help.
pub fn repair(
    cli: &Cli,
    query: &str,
    target: &str,
    helpers: &[String],
    session_id: Option<String>,
    timeout: u64,
) -> Result<ExitCode, String> {
    let ks = keystore(cli)?;
    let (_, file) = ks.find(query).map_err(|e| e.to_string())?;
    let meta = &file.metadata;
    if meta.curve == Curve::Secp256k1Ecdsa.as_str() {
        return usage(format!(
            "wallet {}: a repair of an Ethereum (secp256k1-ecdsa) wallet is not supported yet",
            meta.id
        ));
    }
    let me = cli.peer_id.clone().unwrap_or_else(|| meta.peer_id.clone());
    if target == me {
        return usage(format!(
            "--for {me}: this node holds its share; run the repair from a helper, \
             and `join` here once this node's keystore is gone"
        ));
    }
    // A target the wallet lacks is added: every participant helps, so
    // every one learns its verifying share.
    let adding = !meta.participants.iter().any(|p| p == target);
    if let Err(e) = mpc_protocol::validate_peer_id(target) {
        return usage(format!("--for {target:?}: {e}"));
    }
    let mut helpers: Vec<String> = helpers.to_vec();
    if helpers.is_empty() && adding {
        helpers = meta.participants.clone();
    } else if helpers.is_empty() {
        helpers = std::iter::once(me.clone())
            .chain(
                meta.participants
                    .iter()
                    .filter(|p| **p != me && *p != target)
                    .cloned(),
            )
            .take(usize::from(meta.threshold))
            .collect();
    } else if !helpers.contains(&me) {
        helpers.insert(0, me.clone());
    }
    if let Some(x) = helpers.iter().find(|x| !meta.participants.contains(x)) {
        return usage(format!(
            "--helpers {x}: not a participant of wallet {}",
            meta.id
        ));
    }
    if helpers.iter().any(|h| h == target) {
        return usage(format!("--helpers {target}: the target cannot help"));
    }
    if adding {
        let missing: Vec<&String> = meta
            .participants
            .iter()
            .filter(|p| !helpers.contains(p))
            .collect();
        if !missing.is_empty() {
            return usage(format!(
                "adding {target} needs every participant as a helper, so that each learns its \
                 verifying share; missing: {}",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if helpers.len() < usize::from(meta.threshold) {
        return usage(format!(
            "wallet {} needs {} helpers; {} available",
            meta.id,
            meta.threshold,
            helpers.len()
        ));
    }
    let passphrase = cli::unlock_passphrase(&meta.id)?;
    let wallet = driver::open_signing_wallet(&file, &passphrase)?;
    // Adding a participant rewrites this node's wallet file.
    let storage = Storage {
        keystore: ks.clone(),
        passphrase,
        work_factor: mpc_node::work_factor(),
    };
    let opts = node_options(cli, me, timeout)?;
    let goal = Goal::Command(Command::Repair {
        session_id,
        wallet: Box::new(wallet),
        helpers,
        target: target.to_string(),
    });
    let mut term = Terminal::new(cli.json);
    let result = runtime()?.block_on(driver::run(opts, goal, Some(storage), &mut term));
    term.finish();
    match result {
        Ok(Outcome::Helped(h)) => print_helped(cli, &h),
        Ok(_) => Err("unexpected outcome".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A repair this node helped with: the wallet, as this node holds it.
pub fn print_helped(cli: &Cli, h: &Helped) -> Result<ExitCode, String> {
    let (_, file) = keystore(cli)?
        .find(&h.group_public_key)
        .map_err(|e| e.to_string())?;
    let m = &file.metadata;
    if cli.json {
        println!(
            "{}",
            json!({
                "session_id": h.session_id,
                "wallet_id": m.id,
                "group_public_key": m.group_public_key,
                "generation": m.generation,
                "participants": m.participants,
                "repaired": h.target,
            })
        );
    } else {
        println!(
            "{} rebuilt and stored its share of wallet {}",
            mpc_node::display::Remote(&h.target),
            m.id
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// This node's rebuilt share, stored.
pub fn print_repaired(w: &WalletResult, path: &Path, json_out: bool) {
    print_lifecycle("repaired", w, path, json_out)
}

/// A refresh every participant confirmed.
pub fn print_refreshed(w: &WalletResult, path: &Path, json_out: bool) {
    print_lifecycle("refreshed", w, path, json_out)
}

fn print_lifecycle(what: &str, w: &WalletResult, path: &Path, json_out: bool) {
    let wallet_id = mpc_keystore::wallet_id(&w.group_public_key);
    if json_out {
        println!(
            "{}",
            json!({
                "session_id": w.session_id,
                "wallet_id": wallet_id,
                "group_public_key": w.group_public_key,
                "generation": w.generation,
                "participants": w.participants,
            })
        );
        return;
    }
    println!("wallet {wallet_id} {what}: generation {}", w.generation);
    println!("  group public key: {} (unchanged)", w.group_public_key);
    println!(
        "  participants:     {}",
        mpc_node::display::Remote(w.participants.join(", "))
    );
    println!("  key share:        {}", path.display());
}
