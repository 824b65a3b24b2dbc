//! `sign-psbt`: spend from a Taproot wallet. The PSBT is checked and shown
//! here before anything is sent; every co-signer decodes it and derives
//! the sighashes it signs itself.

use std::path::Path;
use std::process::ExitCode;

use mpc_core::payload::{self, SignedTransaction};
use mpc_protocol::peer::{Curve, SignFormat};
use serde_json::json;

use crate::cli::{keystore, node_options, Cli};
use crate::online::{run_sign, SignRun};
use crate::usage;

/// The PSBT from `--psbt`: a file (binary, or base64 text), or base64.
pub fn read_psbt(arg: &str) -> Result<Vec<u8>, String> {
    let path = Path::new(arg);
    let text = if path.is_file() {
        let bytes = std::fs::read(path).map_err(|e| format!("{arg}: {e}"))?;
        if bytes.starts_with(b"psbt\xff") {
            return Ok(bytes);
        }
        String::from_utf8(bytes).map_err(|_| format!("{arg} is neither a PSBT nor base64"))?
    } else {
        arg.to_string()
    };
    mpc_chain::bitcoin::Psbt::from_base64(&text)
        .map(|p| p.to_bytes())
        .map_err(|e| format!("{arg:.40}: {e}"))
}

/// What `sign-psbt` was given.
pub struct SignPsbt<'a> {
    pub wallet: &'a str,
    pub psbt: &'a str,
    pub signers: &'a [String],
    pub out: Option<&'a Path>,
    pub session_id: Option<String>,
    pub timeout: u64,
}

pub fn sign_psbt(cli: &Cli, a: SignPsbt) -> Result<ExitCode, String> {
    let psbt = match read_psbt(a.psbt) {
        Ok(p) => p,
        Err(e) => return usage(format!("--psbt {e}")),
    };
    let (_, file) = keystore(cli)?.find(a.wallet).map_err(|e| e.to_string())?;
    let meta = &file.metadata;
    let curve: Curve = match meta.curve.parse() {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    // The same checks each co-signer makes: refuse here, before anything
    // is sent, what they would refuse.
    let settings = node_options(cli, meta.peer_id.clone(), a.timeout)?.signing;
    let format = SignFormat::BitcoinPsbt;
    let review = match payload::review(format, &psbt, curve, &meta.group_public_key, &settings) {
        Ok(Some(r)) => r,
        Ok(None) => return Err("a PSBT without a review".into()),
        Err(e) => return usage(e),
    };
    eprintln!("proposing to sign this transaction:\n{review}");
    let request = SignRun {
        query: a.wallet,
        message: psbt,
        format,
        signers: a.signers,
        session_id: a.session_id,
        timeout: a.timeout,
    };
    let sig = match run_sign(cli, request)? {
        Ok(sig) => sig,
        Err(bad) => return usage(bad),
    };
    let Some(SignedTransaction::Bitcoin {
        psbt,
        tx_hex,
        txid,
        signed_inputs,
    }) = sig.transaction
    else {
        return Err("the session signed no transaction".into());
    };
    if let Some(path) = a.out {
        // Whole or not at all: temporary file, fsync, rename.
        mpc_keystore::fs::write_atomic(path, psbt.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if cli.json {
        println!(
            "{}",
            json!({
                "session_id": sig.session_id,
                "psbt": psbt,
                "tx_hex": tx_hex,
                "txid": txid,
                "signed_inputs": signed_inputs,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("signed inputs {signed_inputs:?} of transaction {txid}");
    match a.out {
        Some(path) => println!("signed PSBT written to {}", path.display()),
        None => println!("signed PSBT: {psbt}"),
    }
    match tx_hex {
        Some(tx) => println!("transaction (every input final): {tx}"),
        None => println!("other inputs still need their signatures: no transaction yet"),
    }
    Ok(ExitCode::SUCCESS)
}
