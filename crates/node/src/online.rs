//! The commands that run a node against the signaling server: `peers`,
//! `create`, `join` and `sign`, and how their outcomes are printed.

use std::process::ExitCode;

use mpc_core::Command;
use mpc_node::decide::{Policy, SignRule};
use mpc_node::display::Remote;
use mpc_node::driver::{self, Goal, Outcome, Storage};
use mpc_node::observer::{Quiet, Terminal};
use mpc_protocol::peer::{Curve, SignFormat};
use serde_json::json;

use crate::cli::{self, keystore, node_options, Cli};
use crate::{runtime, usage};

/// `peers`: who is registered with the server.
pub fn peers(cli: &Cli) -> Result<ExitCode, String> {
    // Listing needs no id of its own, but a stable one: each new id binds
    // to this node's key on the server, and new bindings per address are
    // rate-limited, so a fresh id per run soon stops working.
    let id = match &cli.peer_id {
        Some(id) => id.clone(),
        None => {
            let key = keystore(cli)?.identity().map_err(|e| e.to_string())?;
            format!("observer-{}", &key.public_key().to_hex()[..16])
        }
    };
    let opts = node_options(cli, id, 60)?;
    let mut quiet = Quiet;
    match runtime()?.block_on(driver::run(
        opts,
        Goal::Command(Command::ListPeers),
        None,
        &mut quiet,
    )) {
        Ok(Outcome::Peers(peers)) => {
            if cli.json {
                println!("{}", json!({ "peers": peers }));
            } else {
                // The server chose these ids: escape them.
                peers.iter().for_each(|p| println!("{}", Remote(p)));
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(_) => Err("unexpected outcome".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `create`: propose a wallet and take part in creating it.
pub fn create(
    cli: &Cli,
    participants: &[String],
    threshold: u16,
    curve: Curve,
    session_id: Option<String>,
    timeout_secs: u64,
) -> Result<ExitCode, String> {
    let Some(me) = cli.peer_id.clone() else {
        return usage("create needs --peer-id (or MPC_WALLET_PEER_ID)");
    };
    if !participants.contains(&me) {
        return usage(format!("--participants must include this node ({me})"));
    }
    let goal = Goal::Command(Command::Create {
        session_id,
        participants: participants.to_vec(),
        threshold,
        curve,
    });
    take_part(cli, me, goal, timeout_secs)
}

/// What `join` may sign unasked: its `--approve-*` flags.
pub struct Approvals<'a> {
    pub messages: &'a [String],
    pub messages_hex: &'a [String],
    pub psbts: &'a [String],
    pub solana: &'a [String],
    pub eth_txs: &'a [String],
    pub typed_data: &'a [String],
    pub refresh: &'a [String],
    pub repair: &'a [String],
    pub accept_repair: bool,
    pub wallets: &'a [String],
}

impl Approvals<'_> {
    /// The rules these flags make. A wallet is looked up now, so a typo
    /// fails here rather than declining later; each one is warned about.
    fn rules(&self, cli: &Cli) -> Result<Vec<SignRule>, ApprovalError> {
        let mut rules: Vec<SignRule> = self
            .messages
            .iter()
            .map(|t| SignRule::Message(t.as_bytes().to_vec()))
            .collect();
        for h in self.messages_hex {
            let bytes = hex::decode(h.trim_start_matches("0x"))
                .map_err(|_| ApprovalError::NotHex(h.clone()))?;
            rules.push(SignRule::Message(bytes));
        }
        for p in self.psbts {
            let psbt = crate::spend::read_psbt(p).map_err(ApprovalError::Psbt)?;
            rules.push(SignRule::Psbt(psbt));
        }
        for t in self.eth_txs {
            let tx = crate::spend::read_eth_tx(t)
                .and_then(|r| r.into_tx().map_err(|e| e.to_string()))
                .map_err(ApprovalError::EthTx)?;
            rules.push(SignRule::EthTx(tx.unsigned_bytes()));
        }
        for t in self.typed_data {
            let data = crate::spend::read_typed_data(t).map_err(ApprovalError::TypedData)?;
            let (hash, _) = mpc_chain::ethereum::typed_data_hash(&data)
                .map_err(|e| ApprovalError::TypedData(e.to_string()))?;
            rules.push(SignRule::TypedData(hash));
        }
        for t in self.solana {
            let tx = crate::spend::read_solana(t).map_err(ApprovalError::Solana)?;
            rules.push(SignRule::Solana(tx.message_bytes().to_vec()));
        }
        if self.wallets.is_empty() {
            return Ok(rules);
        }
        let ks = keystore(cli).map_err(ApprovalError::Keystore)?;
        for w in self.wallets {
            let (_, file) = ks.find(w).map_err(|e| ApprovalError::NoWallet {
                query: w.clone(),
                error: e.to_string(),
            })?;
            let m = &file.metadata;
            eprintln!(
                "warning: --approve-wallet {}: this node signs ANY message proposed with \
                 this {}-of-{} wallet, unasked. Any one other participant can sign \
                 whatever it wants with it (--i-understand-this-signs-anything).",
                Remote(&m.id),
                m.threshold,
                m.participants.len()
            );
            rules.push(SignRule::AnyMessage {
                group_key: m.group_public_key.clone(),
            });
        }
        Ok(rules)
    }
}

impl Approvals<'_> {
    /// The group keys of the wallets `queries` (`--approve-refresh`,
    /// `--approve-repair`) name.
    fn group_keys(&self, cli: &Cli, queries: &[String]) -> Result<Vec<String>, ApprovalError> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let ks = keystore(cli).map_err(ApprovalError::Keystore)?;
        queries
            .iter()
            .map(|w| {
                ks.find(w)
                    .map(|(_, f)| f.metadata.group_public_key)
                    .map_err(|e| ApprovalError::NoWallet {
                        query: w.clone(),
                        error: e.to_string(),
                    })
            })
            .collect()
    }
}

/// Why `join`'s approvals can't be used.
#[derive(Debug, thiserror::Error)]
enum ApprovalError {
    #[error("--approve-message-hex {0:?} is not hex")]
    NotHex(String),
    #[error("--approve-psbt {0}")]
    Psbt(String),
    #[error("--approve-solana {0}")]
    Solana(String),
    #[error("--approve-eth-tx {0}")]
    EthTx(String),
    #[error("--approve-typed-data {0}")]
    TypedData(String),
    #[error("--approve-wallet {query:?}: {error}")]
    NoWallet { query: String, error: String },
    #[error("{0}")]
    Keystore(String),
}

/// `join`: wait for a proposal and take part if accepted, asked or, with
/// `accept_keygen` or approvals, unattended.
pub fn join(
    cli: &Cli,
    from: Option<String>,
    timeout_secs: u64,
    accept_keygen: bool,
    approvals: &Approvals,
) -> Result<ExitCode, String> {
    let Some(me) = cli.peer_id.clone() else {
        return usage("join needs --peer-id (or MPC_WALLET_PEER_ID)");
    };
    let rules = match approvals.rules(cli) {
        Ok(rules) => rules,
        Err(
            e @ (ApprovalError::NotHex(_)
            | ApprovalError::Psbt(_)
            | ApprovalError::Solana(_)
            | ApprovalError::EthTx(_)
            | ApprovalError::TypedData(_)),
        ) => return usage(e),
        Err(e) => return Err(e.to_string()),
    };
    let (refresh, repair) = match (
        approvals.group_keys(cli, approvals.refresh),
        approvals.group_keys(cli, approvals.repair),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Err(e.to_string()),
    };
    let policy = Policy::new(from, accept_keygen, rules)
        .with_refresh(refresh)
        .with_repair(repair, approvals.accept_repair);
    take_part(cli, me, Goal::Join(policy), timeout_secs)
}

/// `create` and `join`: run the session and store the share.
fn take_part(cli: &Cli, me: String, goal: Goal, timeout: u64) -> Result<ExitCode, String> {
    let storage = Storage {
        keystore: keystore(cli)?,
        passphrase: cli::passphrase()?,
        work_factor: mpc_node::work_factor(),
    };
    let opts = node_options(cli, me, timeout)?;
    let mut term = Terminal::new(cli.json);
    let result = runtime()?.block_on(driver::run(opts, goal, Some(storage), &mut term));
    term.finish();
    let (wallet, keystore_path, elapsed) = match result {
        Ok(Outcome::Created {
            wallet,
            keystore_path,
            elapsed,
        }) => (wallet, keystore_path, elapsed),
        Ok(Outcome::Signed(sig)) => {
            print_signature(&sig, cli.json);
            return Ok(ExitCode::SUCCESS);
        }
        Ok(Outcome::Refreshed {
            wallet,
            keystore_path,
        }) => {
            crate::lifecycle::print_refreshed(&wallet, &keystore_path, cli.json);
            return Ok(ExitCode::SUCCESS);
        }
        Ok(Outcome::Repaired {
            wallet,
            keystore_path,
        }) => {
            crate::lifecycle::print_repaired(&wallet, &keystore_path, cli.json);
            return Ok(ExitCode::SUCCESS);
        }
        Ok(Outcome::Helped(h)) => {
            return crate::lifecycle::print_helped(cli, &h);
        }
        Ok(_) => return Err("unexpected outcome".into()),
        Err(e) => return Err(e.to_string()),
    };
    let addresses =
        mpc_address::addresses(wallet.curve.as_str(), &wallet.group_public_key, cli.network)
            .map_err(|e| e.to_string())?;
    if cli.json {
        println!(
            "{}",
            json!({
                "session_id": wallet.session_id,
                "curve": wallet.curve.as_str(),
                "threshold": wallet.threshold,
                "participants": wallet.participants,
                "group_public_key": wallet.group_public_key,
                "addresses": addresses,
                "keystore_path": keystore_path,
                "elapsed_ms": elapsed.as_secs_f64() * 1000.0,
            })
        );
    } else {
        println!(
            "wallet created: {}-of-{} {}",
            wallet.threshold,
            wallet.participants.len(),
            wallet.curve
        );
        println!("  group public key: {}", wallet.group_public_key);
        if let Some(a) = &addresses.bitcoin_taproot {
            println!("  bitcoin taproot:  {a}");
        }
        if let Some(a) = &addresses.solana {
            println!("  solana:           {a}");
        }
        if let Some(a) = &addresses.ethereum {
            println!("  ethereum:         {a}");
        }
        println!("  key share:        {}", keystore_path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `sign`: open the wallet (passphrase first), propose, sign, verify.
pub fn sign(
    cli: &Cli,
    query: &str,
    message_hex: Option<&str>,
    message: Option<&str>,
    signers: &[String],
    session_id: Option<String>,
    timeout: u64,
) -> Result<ExitCode, String> {
    let message = match (message_hex, message) {
        (Some(h), _) => match hex::decode(h.trim_start_matches("0x")) {
            Ok(m) => m,
            Err(_) => return usage("--message-hex is not hex"),
        },
        (None, Some(t)) => t.as_bytes().to_vec(),
        (None, None) => return usage("give --message-hex or --message"),
    };
    if message.len() > mpc_core::session::MAX_SIGN_MESSAGE_LEN {
        return usage(format!(
            "the message is longer than {} bytes",
            mpc_core::session::MAX_SIGN_MESSAGE_LEN
        ));
    }
    let request = SignRun {
        query,
        message,
        format: SignFormat::Message,
        signers,
        session_id,
        timeout,
    };
    match run_sign(cli, request)? {
        Ok(sig) => {
            print_signature(&sig, cli.json);
            Ok(ExitCode::SUCCESS)
        }
        Err(bad) => usage(bad),
    }
}

/// A signing session this node proposes.
pub struct SignRun<'a> {
    /// The wallet: id, id prefix or group key.
    pub query: &'a str,
    /// The message, or the transaction.
    pub message: Vec<u8>,
    pub format: SignFormat,
    /// Named signers; this node is always one.
    pub signers: &'a [String],
    pub session_id: Option<String>,
    pub timeout: u64,
}

/// Finds the wallet, picks the signers, opens the share (passphrase
/// first) and runs the session. `Ok(Err(_))` is a usage error, found
/// before anything was sent.
pub fn run_sign(
    cli: &Cli,
    r: SignRun,
) -> Result<Result<mpc_core::SignatureResult, String>, String> {
    let (_, file) = keystore(cli)?.find(r.query).map_err(|e| e.to_string())?;
    let me = cli
        .peer_id
        .clone()
        .unwrap_or_else(|| file.metadata.peer_id.clone());
    let meta = &file.metadata;
    if !meta.participants.contains(&me) {
        return Ok(Err(format!(
            "{me} is not a participant of wallet {}",
            meta.id
        )));
    }
    let mut signers: Vec<String> = r.signers.to_vec();
    if signers.is_empty() {
        signers = std::iter::once(me.clone())
            .chain(meta.participants.iter().filter(|p| **p != me).cloned())
            .take(usize::from(meta.threshold))
            .collect();
    } else if !signers.contains(&me) {
        signers.insert(0, me.clone());
    }
    if let Some(x) = signers.iter().find(|x| !meta.participants.contains(x)) {
        return Ok(Err(format!(
            "{x} is not a participant of wallet {}",
            meta.id
        )));
    }
    if signers.len() < usize::from(meta.threshold) {
        return Ok(Err(format!(
            "wallet {} needs {} signers; {} given",
            meta.id,
            meta.threshold,
            signers.len()
        )));
    }
    // An Ethereum wallet signs text as personal_sign (EIP-191).
    let format = match (r.format, meta.curve.parse()) {
        (SignFormat::Message, Ok(Curve::Secp256k1Ecdsa)) => SignFormat::EthereumMessage,
        (f, _) => f,
    };
    if format.is_ethereum() && signers.len() != usize::from(meta.threshold) {
        return Ok(Err(format!(
            "{} signers named: an ECDSA wallet signs with exactly its threshold of {}",
            signers.len(),
            meta.threshold
        )));
    }
    let passphrase = cli::unlock_passphrase(&meta.id)?;
    let wallet = driver::open_signing_wallet(&file, &passphrase)?;
    let opts = node_options(cli, me, r.timeout)?;
    let goal = Goal::Command(Command::Sign {
        session_id: r.session_id,
        wallet: Box::new(wallet),
        message: r.message,
        format,
        signers,
    });
    let mut term = Terminal::new(cli.json);
    let result = runtime()?.block_on(driver::run(opts, goal, None, &mut term));
    term.finish();
    match result {
        Ok(Outcome::Signed(sig)) => Ok(Ok(*sig)),
        Ok(_) => Err("unexpected outcome".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn print_signature(sig: &mpc_core::SignatureResult, json_out: bool) {
    if json_out {
        println!(
            "{}",
            json!({
                "session_id": sig.session_id,
                "signature": hex::encode(&sig.signature),
                "group_public_key": sig.group_public_key,
                "message_hex": hex::encode(&sig.message),
                "format": sig.format,
                "transaction": sig.transaction,
            })
        );
    } else if let Some(mpc_core::payload::SignedTransaction::Bitcoin {
        txid,
        tx_hex,
        signed_inputs,
        psbt,
    }) = &sig.transaction
    {
        println!("signed inputs {signed_inputs:?} of Bitcoin transaction {txid}");
        println!("  signers:     {}", Remote(sig.signers.join(", ")));
        println!("  signed PSBT: {psbt}");
        if let Some(tx) = tx_hex {
            println!("  transaction: {tx}");
        }
    } else if let Some(mpc_core::payload::SignedTransaction::Ethereum { raw_tx, tx_hash }) =
        &sig.transaction
    {
        println!("signed Ethereum transaction {tx_hash}");
        println!("  signers:     {}", Remote(sig.signers.join(", ")));
        println!("  raw:         {raw_tx}");
    } else if let Some(mpc_core::payload::SignedTransaction::Solana {
        transaction,
        signature,
    }) = &sig.transaction
    {
        println!("signed Solana transaction {signature}");
        println!("  signers:     {}", Remote(sig.signers.join(", ")));
        println!("  transaction: {transaction}");
    } else {
        let scheme = match sig.curve {
            Curve::Secp256k1 => "BIP340 Schnorr (Taproot key path)",
            Curve::Ed25519 => "Ed25519",
            Curve::Secp256k1Ecdsa => "ECDSA r‖s‖v, Ethereum personal_sign (EIP-191)",
        };
        println!("signature: {}", hex::encode(&sig.signature));
        println!("  {scheme}, verified by every signer under the group key");
        println!("  group public key: {}", sig.group_public_key);
        println!("  signers:          {}", Remote(sig.signers.join(", ")));
        println!("  message hex:      {}", hex::encode(&sig.message));
    }
}
