//! Spending from a wallet: `sign-psbt` (Taproot), `sign-solana` and
//! `solana-transfer` (ed25519), `sign-eth-tx` (Ethereum). The transaction is checked and shown here
//! before anything is sent, by the same code every co-signer runs on it
//! to derive what it signs itself.

use std::path::Path;
use std::process::ExitCode;

use mpc_chain::ethereum::{self, TxRequest};
use mpc_chain::solana::{self, SolanaTx};
use mpc_core::payload::{self, SignedTransaction};
use mpc_core::SignatureResult;
use mpc_protocol::peer::{Curve, SignFormat};
use serde_json::json;

use crate::cli::{keystore, node_options, Cli, SpendArgs};
use crate::online::{run_sign, SignRun};
use crate::usage;
use mpc_node::eth_rpc::Rpc;

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

/// The Solana transaction or message from `--tx`: a file of base64 text,
/// or the base64 itself.
pub fn read_solana(arg: &str) -> Result<SolanaTx, String> {
    let path = Path::new(arg);
    let text = if path.is_file() {
        let bytes = std::fs::read(path).map_err(|e| format!("{arg}: {e}"))?;
        String::from_utf8(bytes).map_err(|_| format!("{arg} is not base64 text"))?
    } else {
        arg.to_string()
    };
    SolanaTx::from_base64(&text).map_err(|e| format!("{arg:.40}: {e}"))
}

/// The Ethereum transaction from `--tx`: its JSON-RPC object, or a file
/// of it.
pub fn read_eth_tx(arg: &str) -> Result<TxRequest, String> {
    let path = Path::new(arg);
    let text = if !arg.trim_start().starts_with('{') && path.is_file() {
        std::fs::read_to_string(path).map_err(|e| format!("{arg}: {e}"))?
    } else {
        arg.to_string()
    };
    ethereum::parse_request(&text).map_err(|e| format!("{arg:.60}: {e}"))
}

/// EIP-712 typed data from `--data`: its JSON, or a file of it.
pub fn read_typed_data(arg: &str) -> Result<Vec<u8>, String> {
    let path = Path::new(arg);
    let bytes = if !arg.trim_start().starts_with('{') && path.is_file() {
        std::fs::read(path).map_err(|e| format!("{arg}: {e}"))?
    } else {
        arg.as_bytes().to_vec()
    };
    ethereum::typed_data_hash(&bytes).map_err(|e| format!("{arg:.60}: {e}"))?;
    Ok(bytes)
}

/// A transaction to propose, with who signs it.
pub struct Spend<'a> {
    pub wallet: &'a str,
    pub signers: &'a [String],
    pub session_id: Option<String>,
    pub timeout: u64,
}

impl<'a> Spend<'a> {
    pub fn new(wallet: &'a str, args: &'a SpendArgs) -> Self {
        Spend {
            wallet,
            signers: &args.signers,
            session_id: args.session_id.clone(),
            timeout: args.timeout_secs,
        }
    }
}

impl Spend<'_> {
    /// Checks `payload` as every co-signer will, shows its review, and runs
    /// the session. `Err(ExitCode)` is a refusal already reported.
    fn propose(
        &self,
        cli: &Cli,
        format: SignFormat,
        payload: Vec<u8>,
    ) -> Result<Result<SignatureResult, ExitCode>, String> {
        let (_, file) = keystore(cli)?
            .find(self.wallet)
            .map_err(|e| e.to_string())?;
        let meta = &file.metadata;
        let curve: Curve = match meta.curve.parse() {
            Ok(c) => c,
            Err(e) => return usage(e).map(Err),
        };
        // Refuse here, before anything is sent, what co-signers would.
        let settings = node_options(cli, meta.peer_id.clone(), self.timeout)?.signing;
        let review =
            match payload::review(format, &payload, curve, &meta.group_public_key, &settings) {
                Ok(Some(r)) => r,
                Ok(None) => return Err("a transaction without a review".into()),
                Err(e) => return usage(e).map(Err),
            };
        eprintln!("proposing to sign:\n{review}");
        let request = SignRun {
            query: self.wallet,
            message: payload,
            format,
            signers: self.signers,
            session_id: self.session_id.clone(),
            timeout: self.timeout,
        };
        match run_sign(cli, request)? {
            Ok(sig) => Ok(Ok(sig)),
            Err(bad) => usage(bad).map(Err),
        }
    }
}

pub fn sign_psbt(cli: &Cli, a: &Spend, psbt: &str, out: Option<&Path>) -> Result<ExitCode, String> {
    let psbt = match read_psbt(psbt) {
        Ok(p) => p,
        Err(e) => return usage(format!("--psbt {e}")),
    };
    let sig = match a.propose(cli, SignFormat::BitcoinPsbt, psbt)? {
        Ok(sig) => sig,
        Err(code) => return Ok(code),
    };
    let Some(SignedTransaction::Bitcoin {
        psbt,
        tx_hex,
        txid,
        signed_inputs,
    }) = sig.transaction
    else {
        return Err("the session signed no Bitcoin transaction".into());
    };
    if let Some(path) = out {
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
    match out {
        Some(path) => println!("signed PSBT written to {}", path.display()),
        None => println!("signed PSBT: {psbt}"),
    }
    match tx_hex {
        Some(tx) => println!("transaction (every input final): {tx}"),
        None => println!("other inputs still need their signatures: no transaction yet"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `sign-solana`: a transaction or message someone else built.
pub fn sign_solana(cli: &Cli, a: &Spend, tx: &str) -> Result<ExitCode, String> {
    let tx = match read_solana(tx) {
        Ok(t) => t,
        Err(e) => return usage(format!("--tx {e}")),
    };
    solana(cli, a, tx.to_bytes())
}

/// What `solana-transfer` was given.
pub struct Transfer<'a> {
    pub to: &'a str,
    pub lamports: u64,
    pub blockhash: &'a str,
    pub nonce_account: Option<&'a str>,
}

/// `solana-transfer`: a System transfer from the wallet, built here.
pub fn solana_transfer(cli: &Cli, a: &Spend, t: &Transfer) -> Result<ExitCode, String> {
    let (_, file) = keystore(cli)?.find(a.wallet).map_err(|e| e.to_string())?;
    let from: [u8; 32] = match hex::decode(&file.metadata.group_public_key)
        .ok()
        .and_then(|k| k.try_into().ok())
    {
        Some(k) if matches!(file.metadata.curve.parse(), Ok(Curve::Ed25519)) => k,
        _ => {
            return usage(format!(
                "wallet {} is not an ed25519 (Solana) wallet",
                file.metadata.id
            ))
        }
    };
    let to = match solana::decode_address(t.to) {
        Ok(k) => k,
        Err(e) => return usage(format!("--to: {e}")),
    };
    let blockhash = match solana::decode_address(t.blockhash) {
        Ok(k) => k,
        Err(e) => return usage(format!("--blockhash: {e}")),
    };
    let nonce = match t.nonce_account.map(solana::decode_address).transpose() {
        Ok(n) => n,
        Err(e) => return usage(format!("--nonce-account: {e}")),
    };
    let message = solana::transfer_message(
        &from,
        &to,
        t.lamports,
        &blockhash,
        nonce.as_ref().map(|n| (n, &from)),
    );
    solana(cli, a, message)
}

fn solana(cli: &Cli, a: &Spend, payload: Vec<u8>) -> Result<ExitCode, String> {
    let sig = match a.propose(cli, SignFormat::SolanaTransaction, payload)? {
        Ok(sig) => sig,
        Err(code) => return Ok(code),
    };
    let Some(SignedTransaction::Solana {
        transaction,
        signature,
    }) = sig.transaction
    else {
        return Err("the session signed no Solana transaction".into());
    };
    if cli.json {
        println!(
            "{}",
            json!({
                "session_id": sig.session_id,
                "signature": signature,
                "transaction": transaction,
            })
        );
    } else {
        println!("signature: {signature}");
        println!("signed transaction: {transaction}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `sign-eth-tx`: an EIP-1559 transaction from its JSON-RPC object, with
/// `--rpc` filling in what it leaves out and broadcasting the result.
pub fn sign_eth_tx(cli: &Cli, a: &Spend, tx: &str, rpc: Option<&str>) -> Result<ExitCode, String> {
    let mut req = match read_eth_tx(tx) {
        Ok(r) => r,
        Err(e) => return usage(format!("--tx {e}")),
    };
    let (_, file) = keystore(cli)?.find(a.wallet).map_err(|e| e.to_string())?;
    let meta = &file.metadata;
    if !matches!(meta.curve.parse(), Ok(Curve::Secp256k1Ecdsa)) {
        return usage(format!("wallet {} is not an Ethereum wallet", meta.id));
    }
    let from = mpc_address::ethereum_address_bytes(&meta.group_public_key)
        .map_err(|e| format!("wallet {}: {e}", meta.id))?;
    if req.from.is_some_and(|f| f != from) {
        return usage(format!(
            "--tx is from another address than wallet {} ({})",
            meta.id,
            mpc_address::eip55(&from)
        ));
    }
    let rpc = match rpc.map(Rpc::new).transpose() {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    if let Some(rpc) = &rpc {
        rpc.fill(&mut req, &from).map_err(|e| e.to_string())?;
    }
    let tx = match req.into_tx() {
        Ok(t) => t,
        Err(e) => return usage(format!("--tx {e}")),
    };
    let sig = match a.propose(cli, SignFormat::EthereumTransaction, tx.unsigned_bytes())? {
        Ok(sig) => sig,
        Err(code) => return Ok(code),
    };
    let Some(SignedTransaction::Ethereum { raw_tx, tx_hash }) = sig.transaction else {
        return Err("the session signed no Ethereum transaction".into());
    };
    let broadcast = match &rpc {
        Some(rpc) => {
            let hash = rpc.send_raw(&raw_tx).map_err(|e| e.to_string())?;
            if !hash.eq_ignore_ascii_case(&tx_hash) {
                return Err(format!(
                    "the node names the transaction {hash}, this wallet computed {tx_hash}"
                ));
            }
            true
        }
        None => false,
    };
    if cli.json {
        println!(
            "{}",
            json!({
                "session_id": sig.session_id,
                "raw_tx": raw_tx,
                "tx_hash": tx_hash,
                "broadcast": broadcast,
            })
        );
    } else {
        println!("signed Ethereum transaction {tx_hash}");
        println!("  raw: {raw_tx}");
        if broadcast {
            println!("  broadcast with eth_sendRawTransaction");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sign-eth-typed-data`: an EIP-712 signature.
pub fn sign_eth_typed_data(cli: &Cli, a: &Spend, data: &str) -> Result<ExitCode, String> {
    let data = match read_typed_data(data) {
        Ok(d) => d,
        Err(e) => return usage(format!("--data {e}")),
    };
    let sig = match a.propose(cli, SignFormat::EthereumTypedData, data)? {
        Ok(sig) => sig,
        Err(code) => return Ok(code),
    };
    let signature = hex::encode(&sig.signature);
    if cli.json {
        println!(
            "{}",
            json!({"session_id": sig.session_id, "signature": signature, "format": sig.format})
        );
    } else {
        println!("signature: 0x{signature}");
        println!("  EIP-712, r‖s‖v, verified by every signer under the group key");
    }
    Ok(ExitCode::SUCCESS)
}
