//! `mpc-wallet`: a threshold wallet node on the command line.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mpc_address::Network;
use mpc_core::Command;
use mpc_keystore::fs::Keystore;
use mpc_node::driver::{self, Goal, NodeOptions, Outcome, Storage};
use mpc_node::observer::Terminal;
use mpc_protocol::peer::Curve;
use mpc_protocol::IceServer;
use serde_json::json;

#[derive(Parser)]
#[command(name = "mpc-wallet", version, about = "Threshold (FROST) wallet node")]
struct Cli {
    /// Signaling server WebSocket URL.
    #[arg(
        long,
        global = true,
        env = "MPC_WALLET_SERVER",
        default_value = "ws://127.0.0.1:8787/ws"
    )]
    server: String,
    /// This node's peer id (1-64 of A-Z a-z 0-9 . _ -).
    #[arg(long, global = true, env = "MPC_WALLET_PEER_ID")]
    peer_id: Option<String>,
    /// Directory of wallet files [default: $XDG_DATA_HOME/mpc-wallet/wallets].
    #[arg(long, global = true, env = "MPC_WALLET_KEYSTORE")]
    keystore: Option<PathBuf>,
    /// Machine-readable output: one JSON object on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Bitcoin network for Taproot addresses: mainnet, testnet, signet, regtest.
    #[arg(long, global = true, default_value = "mainnet")]
    network: Network,
    /// STUN server (stun:host:port) overriding the signaling server's list (repeatable).
    #[arg(long, global = true, value_parser = IceServer::parse_url)]
    ice_server: Vec<IceServer>,
    /// Local address for WebRTC host candidates.
    #[arg(
        long,
        global = true,
        env = "MPC_WALLET_BIND_IP",
        default_value = "127.0.0.1"
    )]
    bind_ip: IpAddr,
    /// Refuse peers whose identity keys are not pinned yet (see `trust`),
    /// instead of pinning new keys on first use.
    #[arg(long, global = true, env = "MPC_WALLET_PINNED_ONLY")]
    pinned_only: bool,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// List the peers registered with the signaling server.
    Peers,
    /// Propose a wallet, form the mesh and run the DKG.
    Create {
        /// Every participant, this node included, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        participants: Vec<String>,
        /// Signatures needed to sign (2..=participants).
        #[arg(long)]
        threshold: u16,
        /// secp256k1 (Bitcoin Taproot) or ed25519 (Solana).
        #[arg(long, default_value = "secp256k1")]
        curve: Curve,
        /// Session id (random by default).
        #[arg(long)]
        session_id: Option<String>,
        /// Seconds each phase may take.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// Wait for a proposal (a wallet to create, or a message to sign with a
    /// wallet in the keystore), show it, and take part if accepted.
    Join {
        /// Accept without asking.
        #[arg(long)]
        yes: bool,
        /// Only consider proposals from this peer.
        #[arg(long)]
        from: Option<String>,
        /// Seconds each phase may take.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// Propose signing a message with a wallet, and take part in signing.
    Sign {
        /// The wallet: id, id prefix, or group public key.
        #[arg(long)]
        wallet: String,
        /// The bytes to sign, in hex (e.g. a 32-byte sighash).
        #[arg(long, conflicts_with = "message", required_unless_present = "message")]
        message_hex: Option<String>,
        /// The text to sign (its UTF-8 bytes).
        #[arg(long)]
        message: Option<String>,
        /// Signers, comma-separated; this node is always one [default: this
        /// node and the next participants in sorted order, up to the threshold].
        #[arg(long, value_delimiter = ',')]
        signers: Vec<String>,
        /// Session id (random by default).
        #[arg(long)]
        session_id: Option<String>,
        /// Seconds each phase may take.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// List the wallets in the keystore.
    Wallets,
    /// Show this node's identity key and fingerprint (compare it out of
    /// band with what peers see) and the peer keys it has pinned.
    Identity,
    /// Pin PEER's identity key (hex), replacing a pinned one (after
    /// checking its fingerprint out of band), or forget it.
    Trust {
        peer: String,
        /// The peer's identity public key, 64 hex digits.
        #[arg(required_unless_present = "forget")]
        key: Option<String>,
        /// Forget the pinned key instead: the next key seen is pinned on
        /// first use.
        #[arg(long, conflicts_with = "key")]
        forget: bool,
    },
    /// Show one wallet.
    Wallet {
        #[command(subcommand)]
        command: WalletCommand,
    },
    /// Deterministic in-memory simulation of a wallet creation.
    Simulate {
        /// Number of participants.
        #[arg(long, short = 'n')]
        participants: usize,
        /// Signatures needed (2..=participants).
        #[arg(long, short = 't')]
        threshold: u16,
        #[arg(long, default_value = "secp256k1")]
        curve: Curve,
        /// Seed for keys, delays, reordering and duplication.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Embedded signaling server plus N nodes creating a wallet over real
    /// WebRTC on loopback.
    Demo {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[arg(long, default_value_t = 2)]
        threshold: u16,
        #[arg(long, default_value = "secp256k1")]
        curve: Curve,
        /// Where to put the demo nodes' keystores [default: a new temp dir].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum WalletCommand {
    /// Show a wallet by id, id prefix, or group public key.
    Show { wallet: String },
    /// Print a wallet's file (its share stays encrypted), to move it to
    /// another node, such as the browser extension.
    Export { wallet: String },
    /// Add a wallet file (from `export`, or the extension's export) to this
    /// keystore, after checking that it opens with its passphrase.
    Import { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,str0m=error,sctp_proto=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(msg: impl std::fmt::Display) -> Result<ExitCode, String> {
    eprintln!("error: {msg}");
    Ok(ExitCode::from(2))
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match &cli.command {
        Commands::Simulate {
            participants,
            threshold,
            curve,
            seed,
        } => Ok(mpc_node::simulate::simulate(
            *participants,
            *threshold,
            *curve,
            *seed,
            cli.json,
        )),
        Commands::Demo {
            nodes,
            threshold,
            curve,
            dir,
        } => {
            let opts = mpc_node::demo::DemoOptions {
                nodes: *nodes,
                threshold: *threshold,
                curve: *curve,
                network: cli.network,
                json: cli.json,
                dir: dir.clone(),
            };
            runtime()?.block_on(mpc_node::demo::run(&opts))?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Identity => {
            identity(&keystore(&cli)?, cli.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Trust { peer, key, forget } => {
            trust(&keystore(&cli)?, peer, key.as_deref(), *forget)?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Wallets => {
            mpc_node::wallets::list(&keystore(&cli)?, cli.network, cli.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Wallet {
            command: WalletCommand::Show { wallet },
        } => {
            mpc_node::wallets::show(&keystore(&cli)?, wallet, cli.network, cli.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Wallet {
            command: WalletCommand::Export { wallet },
        } => {
            let (_, file) = keystore(&cli)?.find(wallet).map_err(|e| e.to_string())?;
            println!("{}", file.to_json());
            Ok(ExitCode::SUCCESS)
        }
        Commands::Wallet {
            command: WalletCommand::Import { file },
        } => {
            let ks = keystore(&cli)?;
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let parsed = mpc_keystore::KeyShareFile::from_json(&text)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let passphrase = unlock_passphrase(&parsed.metadata.id)?;
            driver::open_signing_wallet(&parsed, &passphrase)?;
            let path = ks.save(&parsed).map_err(|e| e.to_string())?;
            if cli.json {
                let mut v = mpc_node::wallets::summary(&parsed.metadata, cli.network);
                v["keystore_path"] = serde_json::json!(path);
                println!("{v}");
            } else {
                println!(
                    "imported wallet {} into {}",
                    parsed.metadata.id,
                    path.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Commands::Peers => {
            let id = cli
                .peer_id
                .clone()
                .unwrap_or_else(|| format!("observer-{}", std::process::id()));
            let opts = node_options(&cli, id, 60)?;
            let mut quiet = mpc_node::observer::Quiet::declining();
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
                        peers.iter().for_each(|p| println!("{p}"));
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Ok(_) => Err("unexpected outcome".into()),
                Err(e) => Err(e.to_string()),
            }
        }
        Commands::Create {
            participants,
            threshold,
            curve,
            session_id,
            timeout_secs,
        } => {
            let Some(me) = cli.peer_id.clone() else {
                return usage("create needs --peer-id (or MPC_WALLET_PEER_ID)");
            };
            if !participants.contains(&me) {
                return usage(format!("--participants must include this node ({me})"));
            }
            let goal = Goal::Command(Command::Create {
                session_id: session_id.clone(),
                participants: participants.clone(),
                threshold: *threshold,
                curve: *curve,
            });
            take_part(&cli, me, goal, *timeout_secs, false)
        }
        Commands::Sign {
            wallet,
            message_hex,
            message,
            signers,
            session_id,
            timeout_secs,
        } => sign(
            &cli,
            wallet,
            message_hex.as_deref(),
            message.as_deref(),
            signers,
            session_id.clone(),
            *timeout_secs,
        ),
        Commands::Join {
            yes,
            from,
            timeout_secs,
        } => {
            let Some(me) = cli.peer_id.clone() else {
                return usage("join needs --peer-id (or MPC_WALLET_PEER_ID)");
            };
            take_part(
                &cli,
                me,
                Goal::Join { from: from.clone() },
                *timeout_secs,
                *yes,
            )
        }
    }
}

/// `create` and `join`: run the session and store the share.
fn take_part(
    cli: &Cli,
    me: String,
    goal: Goal,
    timeout: u64,
    yes: bool,
) -> Result<ExitCode, String> {
    let storage = Storage {
        keystore: keystore(cli)?,
        passphrase: passphrase()?,
        work_factor: mpc_node::work_factor(),
    };
    let opts = node_options(cli, me, timeout)?;
    let mut term = Terminal::new(cli.json, yes);
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
        println!("  key share:        {}", keystore_path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `sign`: open the wallet (passphrase first), propose, sign, verify.
fn sign(
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
    let (_, file) = keystore(cli)?.find(query).map_err(|e| e.to_string())?;
    let me = cli
        .peer_id
        .clone()
        .unwrap_or_else(|| file.metadata.peer_id.clone());
    let meta = &file.metadata;
    if !meta.participants.contains(&me) {
        return usage(format!("{me} is not a participant of wallet {}", meta.id));
    }
    let mut signers: Vec<String> = signers.to_vec();
    if signers.is_empty() {
        signers = std::iter::once(me.clone())
            .chain(meta.participants.iter().filter(|p| **p != me).cloned())
            .take(usize::from(meta.threshold))
            .collect();
    } else if !signers.contains(&me) {
        signers.insert(0, me.clone());
    }
    if let Some(x) = signers.iter().find(|x| !meta.participants.contains(x)) {
        return usage(format!("{x} is not a participant of wallet {}", meta.id));
    }
    if signers.len() < usize::from(meta.threshold) {
        return usage(format!(
            "wallet {} needs {} signers; {} given",
            meta.id,
            meta.threshold,
            signers.len()
        ));
    }
    let passphrase = unlock_passphrase(&meta.id)?;
    let wallet = driver::open_signing_wallet(&file, &passphrase)?;
    let opts = node_options(cli, me, timeout)?;
    let goal = Goal::Command(Command::Sign {
        session_id,
        wallet: Box::new(wallet),
        message,
        signers,
    });
    let mut term = Terminal::new(cli.json, false);
    let result = runtime()?.block_on(driver::run(opts, goal, None, &mut term));
    term.finish();
    match result {
        Ok(Outcome::Signed(sig)) => {
            print_signature(&sig, cli.json);
            Ok(ExitCode::SUCCESS)
        }
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
            })
        );
    } else {
        let scheme = match sig.curve {
            Curve::Secp256k1 => "BIP340 Schnorr (Taproot key path)",
            Curve::Ed25519 => "Ed25519",
        };
        println!("signature: {}", hex::encode(&sig.signature));
        println!("  {scheme}, verified by every signer under the group key");
        println!("  group public key: {}", sig.group_public_key);
        println!("  signers:          {}", sig.signers.join(", "));
        println!("  message hex:      {}", hex::encode(&sig.message));
    }
}

/// The passphrase that opens an existing share: `MPC_WALLET_PASSPHRASE`,
/// or asked once on the terminal, before connecting.
fn unlock_passphrase(wallet_id: &str) -> Result<String, String> {
    if let Ok(p) = std::env::var("MPC_WALLET_PASSPHRASE") {
        if p.is_empty() {
            return Err("MPC_WALLET_PASSPHRASE is empty".into());
        }
        return Ok(p);
    }
    rpassword::prompt_password(format!("Passphrase of wallet {wallet_id}: "))
        .map_err(|e| format!("no passphrase (set MPC_WALLET_PASSPHRASE): {e}"))
}

fn identity(ks: &Keystore, json_out: bool) -> Result<(), String> {
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
            println!("  {p:<20} {}  {k}", k.fingerprint());
        }
    }
    Ok(())
}

fn trust(ks: &Keystore, peer: &str, key: Option<&str>, forget: bool) -> Result<(), String> {
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

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))
}

fn node_options(cli: &Cli, peer_id: String, timeout_secs: u64) -> Result<NodeOptions, String> {
    mpc_protocol::validate_peer_id(&peer_id).map_err(|e| format!("--peer-id {peer_id:?}: {e}"))?;
    Ok(NodeOptions {
        server: cli.server.clone(),
        peer_id,
        ice_servers: (!cli.ice_server.is_empty()).then(|| cli.ice_server.clone()),
        bind_ip: cli.bind_ip,
        timeout: Duration::from_secs(timeout_secs.max(1)),
        identity_store: keystore(cli)?,
        require_pinned: cli.pinned_only,
    })
}

fn keystore(cli: &Cli) -> Result<Keystore, String> {
    let dir = match &cli.keystore {
        Some(d) => d.clone(),
        None => {
            let base = std::env::var_os("XDG_DATA_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
                .ok_or("cannot find a data directory: set --keystore")?;
            base.join("mpc-wallet").join("wallets")
        }
    };
    Keystore::open(&dir).map_err(|e| format!("keystore {}: {e}", dir.display()))
}

/// The passphrase that encrypts the new share: `MPC_WALLET_PASSPHRASE`, or
/// asked twice on the terminal — before the session starts, so nobody waits
/// on a prompt mid-DKG.
fn passphrase() -> Result<String, String> {
    if let Ok(p) = std::env::var("MPC_WALLET_PASSPHRASE") {
        if p.is_empty() {
            return Err("MPC_WALLET_PASSPHRASE is empty".into());
        }
        return Ok(p);
    }
    let p = rpassword::prompt_password("Passphrase for the new key share: ")
        .map_err(|e| format!("no passphrase (set MPC_WALLET_PASSPHRASE): {e}"))?;
    if p.is_empty() {
        return Err("the passphrase must not be empty".into());
    }
    let again = rpassword::prompt_password("Repeat the passphrase: ")
        .map_err(|e| format!("no passphrase: {e}"))?;
    if again != p {
        return Err("the passphrases differ".into());
    }
    Ok(p)
}
