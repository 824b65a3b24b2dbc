//! A wallet's key lifecycle: `refresh` (new shares of the same key,
//! optionally leaving participants out) and how its outcome is printed;
//! `join` prints a refresh it took part in the same way.

use std::path::Path;
use std::process::ExitCode;

use mpc_core::{Command, WalletResult};
use mpc_node::driver::{self, Goal, Outcome, Storage};
use mpc_node::observer::Terminal;
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

/// A refresh every participant confirmed.
pub fn print_refreshed(w: &WalletResult, path: &Path, json_out: bool) {
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
    println!("wallet {wallet_id} refreshed: generation {}", w.generation);
    println!("  group public key: {} (unchanged)", w.group_public_key);
    println!(
        "  participants:     {}",
        mpc_node::display::Remote(w.participants.join(", "))
    );
    println!("  key share:        {}", path.display());
}
