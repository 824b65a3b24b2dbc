//! The command line of `mpc-wallet`: its flags and subcommands (clap), and
//! the settings read from them and the environment: the keystore
//! directory, a node's options and the passphrases.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mpc_address::Network;
use mpc_keystore::fs::Keystore;
use mpc_node::driver::NodeOptions;
use mpc_protocol::peer::Curve;
use mpc_protocol::IceServer;

#[derive(Parser)]
#[command(
    name = "mpc-wallet",
    version,
    about = "Threshold (FROST and DKLs23) wallet node"
)]
pub struct Cli {
    /// Signaling server WebSocket URL.
    #[arg(
        long,
        global = true,
        env = "MPC_WALLET_SERVER",
        default_value = "ws://127.0.0.1:8787/ws"
    )]
    pub server: String,
    /// This node's peer id (1-64 of A-Z a-z 0-9 . _ -).
    #[arg(long, global = true, env = "MPC_WALLET_PEER_ID")]
    pub peer_id: Option<String>,
    /// Directory of wallet files [default: $XDG_DATA_HOME/mpc-wallet/wallets].
    #[arg(long, global = true, env = "MPC_WALLET_KEYSTORE")]
    pub keystore: Option<PathBuf>,
    /// Machine-readable output: one JSON object on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Bitcoin network for Taproot addresses: mainnet, testnet, signet, regtest.
    #[arg(long, global = true, default_value = "mainnet")]
    pub network: Network,
    /// STUN server (stun:host:port) overriding the signaling server's list (repeatable).
    #[arg(long, global = true, value_parser = IceServer::parse_url)]
    pub ice_server: Vec<IceServer>,
    /// Local address for WebRTC host candidates.
    #[arg(
        long,
        global = true,
        env = "MPC_WALLET_BIND_IP",
        default_value = "127.0.0.1"
    )]
    pub bind_ip: IpAddr,
    /// Refuse peers whose identity keys are not pinned yet (see `trust`),
    /// instead of pinning new keys on first use.
    #[arg(long, global = true, env = "MPC_WALLET_PINNED_ONLY")]
    pub pinned_only: bool,
    /// Flag a transaction whose fee is more than this share of what it
    /// sends, in percent.
    #[arg(long, global = true, default_value_t = 5.0, value_parser = fee_percent)]
    pub max_fee_percent: f64,
    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Subcommand)]
pub enum Commands {
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
        /// secp256k1 (FROST: Bitcoin Taproot), ed25519 (FROST: Solana) or
        /// secp256k1-ecdsa (DKLs23: Ethereum).
        #[arg(long, default_value = "secp256k1")]
        curve: Curve,
        /// The chain instead of the curve: bitcoin, solana or ethereum.
        #[arg(long, value_parser = chain_curve, conflicts_with = "curve")]
        chain: Option<Curve>,
        /// Session id (random by default).
        #[arg(long)]
        session_id: Option<String>,
        /// Seconds each phase may take.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// Wait for a proposal (a wallet to create, or a message to sign with a
    /// wallet in the keystore), show it, and take part if accepted.
    ///
    /// Without flags, every proposal is asked about (y/N on the terminal).
    /// With any of the flags below the run is unattended: what they don't
    /// approve is declined, and the proposer is told why.
    Join {
        /// Take part in key generation without asking. Never approves a
        /// signature: see --approve-message and --approve-wallet.
        #[arg(long = "accept-keygen", visible_alias = "yes")]
        accept_keygen: bool,
        /// Sign this text (its UTF-8 bytes) without asking, if a co-signer
        /// proposes exactly it, with any wallet of this keystore (repeatable).
        #[arg(long, value_name = "TEXT")]
        approve_message: Vec<String>,
        /// Sign these bytes, in hex (e.g. a 32-byte sighash), without asking,
        /// if a co-signer proposes exactly them (repeatable).
        #[arg(long, value_name = "HEX")]
        approve_message_hex: Vec<String>,
        /// Sign this PSBT (a file, binary or base64) without asking, if a
        /// co-signer proposes exactly it (repeatable). What is signed are
        /// the sighashes this node computes from it.
        #[arg(long, value_name = "FILE")]
        approve_psbt: Vec<String>,
        /// Sign this Solana transaction or message (a file of base64, or
        /// the base64) without asking, if a co-signer proposes exactly its
        /// message (repeatable).
        #[arg(long, value_name = "BASE64")]
        approve_solana: Vec<String>,
        /// Sign this Ethereum transaction (JSON-RPC object, or a file of
        /// it, with every field given) without asking, if a co-signer
        /// proposes exactly it (repeatable).
        #[arg(long, value_name = "JSON")]
        approve_eth_tx: Vec<String>,
        /// Sign this EIP-712 typed data (its JSON, or a file of it) without
        /// asking, if a co-signer proposes data of the same signing hash
        /// (repeatable).
        #[arg(long, value_name = "JSON")]
        approve_typed_data: Vec<String>,
        /// Take part in a refresh of this wallet (id, id prefix or group
        /// key) without asking (repeatable).
        #[arg(long, value_name = "WALLET")]
        approve_refresh: Vec<String>,
        /// Help repair this wallet (id, id prefix or group key) without
        /// asking, for a target whose identity key is pinned (repeatable).
        #[arg(long, value_name = "WALLET")]
        approve_repair: Vec<String>,
        /// Take part without asking when this node is the target of a
        /// repair (it lost its share and receives it again).
        #[arg(long)]
        accept_repair: bool,
        /// Sign ANYTHING a co-signer proposes with this wallet (id, id
        /// prefix or group key), without asking: any one other participant
        /// then signs what it wants. Needs --i-understand-this-signs-anything.
        #[arg(
            long,
            value_name = "WALLET",
            requires = "i_understand_this_signs_anything"
        )]
        approve_wallet: Vec<String>,
        /// Confirms --approve-wallet.
        #[arg(long, requires = "approve_wallet")]
        i_understand_this_signs_anything: bool,
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
    /// Sign a Bitcoin PSBT with a Taproot wallet: every input that pays the
    /// wallet gets a key-path signature, made in one session in which each
    /// signer decodes the PSBT and computes every sighash itself.
    SignPsbt {
        /// The wallet: id, id prefix, or group public key.
        #[arg(long)]
        wallet: String,
        /// The PSBT: a file (binary or base64), or the base64 itself.
        #[arg(long)]
        psbt: String,
        /// Also write the signed PSBT (base64) to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        session: SpendArgs,
    },
    /// Sign a Solana transaction or message (legacy or v0, base64, as
    /// `--sign-only`, `--dump-transaction-message` or a dApp give it) with
    /// an ed25519 wallet that is one of its required signers.
    SignSolana {
        /// The wallet: id, id prefix, or group public key.
        #[arg(long)]
        wallet: String,
        /// The transaction or message: a file of base64, or the base64.
        #[arg(long)]
        tx: String,
        #[command(flatten)]
        session: SpendArgs,
    },
    /// Sign an Ethereum EIP-1559 transaction with an Ethereum wallet. The
    /// transaction is the JSON-RPC object a dApp hands a wallet (`to`,
    /// `value`, `data`, `chainId`, `nonce`, `gas`, `maxFeePerGas`,
    /// `maxPriorityFeePerGas`; 0x quantities or decimals). Every signer
    /// decodes it and computes its hash itself. Prints the signed raw
    /// transaction.
    SignEthTx {
        /// The wallet: id, id prefix, or group public key.
        #[arg(long)]
        wallet: String,
        /// The transaction: its JSON, or a file of it.
        #[arg(long)]
        tx: String,
        /// An Ethereum node's JSON-RPC URL (http://): fills in the chain id,
        /// nonce, fees and gas left out, and broadcasts the signed
        /// transaction with eth_sendRawTransaction.
        #[arg(long)]
        rpc: Option<String>,
        #[command(flatten)]
        session: SpendArgs,
    },
    /// Sign EIP-712 typed data (`eth_signTypedData_v4`: `types`,
    /// `primaryType`, `domain`, `message`) with an Ethereum wallet. Every
    /// signer is shown the domain and the message and computes the hash
    /// itself. Prints the 65-byte signature r‖s‖v.
    SignEthTypedData {
        /// The wallet: id, id prefix, or group public key.
        #[arg(long)]
        wallet: String,
        /// The typed data: its JSON, or a file of it.
        #[arg(long)]
        data: String,
        #[command(flatten)]
        session: SpendArgs,
    },
    /// Send SOL from an ed25519 wallet: builds a System transfer (the
    /// wallet pays the fee) and signs it.
    SolanaTransfer {
        /// The wallet: id, id prefix, or group public key.
        #[arg(long)]
        wallet: String,
        /// The recipient's address (base58).
        #[arg(long)]
        to: String,
        /// How much, in lamports (1 SOL = 1000000000).
        #[arg(long)]
        lamports: u64,
        /// A recent blockhash (base58), or with --nonce-account the
        /// nonce the account stores.
        #[arg(long)]
        blockhash: String,
        /// A durable nonce account whose authority is the wallet: the
        /// transaction then stays valid until the nonce is used, however
        /// long the co-signers take to approve.
        #[arg(long)]
        nonce_account: Option<String>,
        #[command(flatten)]
        session: SpendArgs,
    },
    /// Give every participant of a wallet a new share of the same key: the
    /// address stays, and the old shares stop combining with the new ones
    /// (say, after a device may have leaked its share). Participants named
    /// by --remove get none, and are out of the wallet. The threshold
    /// never changes: shares of a t-of-n key can be renewed or moved, but a
    /// different t is a different polynomial, which needs a new wallet.
    Refresh {
        /// The wallet: id, id prefix, or group public key.
        #[arg(long)]
        wallet: String,
        /// Participants to remove, comma-separated (not this node).
        #[arg(long, value_delimiter = ',')]
        remove: Vec<String>,
        /// Session id (random by default).
        #[arg(long)]
        session_id: Option<String>,
        /// Seconds each phase may take.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// Rebuild the share a participant lost (its device died, its browser
    /// was reset): at least the threshold of helpers, this node among
    /// them, run frost's repairable threshold scheme, and the target,
    /// running `join` with a new keystore, receives its wallet file. No
    /// helper learns the share. The target's new identity key must be
    /// pinned by each helper first (`trust PEER KEY`), or approved at its
    /// prompt. With a PEER the wallet lacks, the repair adds it: every
    /// participant must help (each learns its verifying share), n grows by
    /// one and t stays. Changing t is not offered: another threshold is
    /// another polynomial, so a new wallet.
    Repair {
        /// The wallet: id, id prefix, or group public key.
        #[arg(long)]
        wallet: String,
        /// The participant whose share is rebuilt, or a peer to add.
        #[arg(long = "for", value_name = "PEER")]
        target: String,
        /// Helpers, comma-separated; this node is always one [default:
        /// this node and the next participants, up to the threshold; every
        /// participant when adding].
        #[arg(long, value_delimiter = ',')]
        helpers: Vec<String>,
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
pub enum WalletCommand {
    /// Show a wallet by id, id prefix, or group public key. Its address is
    /// computed from the group key, and withheld if the file disagrees
    /// with itself.
    Show {
        wallet: String,
        /// Also open the share with the passphrase, proving the metadata
        /// shown is the one sealed with it (the cleartext alone can be
        /// replaced wholesale by anyone who can write the file).
        #[arg(long)]
        verify: bool,
        /// Print only the wallet's watch-only output descriptor,
        /// `rawtr(<output key>)#<checksum>`, for Bitcoin Core's
        /// `importdescriptors` (secp256k1 wallets).
        #[arg(long)]
        descriptor: bool,
    },
    /// Print a wallet's file (its share stays encrypted), to move it to
    /// another node, such as the browser extension.
    Export { wallet: String },
    /// Add a wallet file (from `export`, or the extension's export) to this
    /// keystore, after checking that it opens with its passphrase.
    Import { file: PathBuf },
}

/// How a node of this run reaches the server and its peers.
pub fn node_options(cli: &Cli, peer_id: String, timeout_secs: u64) -> Result<NodeOptions, String> {
    mpc_protocol::validate_peer_id(&peer_id).map_err(|e| format!("--peer-id {peer_id:?}: {e}"))?;
    Ok(NodeOptions {
        server: cli.server.clone(),
        peer_id,
        ice_servers: (!cli.ice_server.is_empty()).then(|| cli.ice_server.clone()),
        bind_ip: cli.bind_ip,
        timeout: Duration::from_secs(timeout_secs.max(1)),
        identity_store: keystore(cli)?,
        require_pinned: cli.pinned_only,
        signing: mpc_core::payload::SignSettings {
            network: cli.network,
            policy: mpc_core::payload::Policy {
                max_fee_basis_points: cli.max_fee_basis_points(),
            },
        },
    })
}

/// `--chain`: the curve a chain's wallets use.
fn chain_curve(s: &str) -> Result<Curve, String> {
    match s {
        "bitcoin" => Ok(Curve::Secp256k1),
        "solana" => Ok(Curve::Ed25519),
        "ethereum" => Ok(Curve::Secp256k1Ecdsa),
        _ => Err(format!(
            "unknown chain {s:?} (expected bitcoin, solana or ethereum)"
        )),
    }
}

fn fee_percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a percentage between 0 and 100")),
    }
}

impl Cli {
    /// `--max-fee-percent` in basis points.
    pub fn max_fee_basis_points(&self) -> u32 {
        (self.max_fee_percent * 100.0).round() as u32
    }
}

/// `--keystore`, else the wallets directory under the XDG data directory.
pub fn keystore(cli: &Cli) -> Result<Keystore, String> {
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
pub fn passphrase() -> Result<String, String> {
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

/// The passphrase that opens an existing share: `MPC_WALLET_PASSPHRASE`,
/// or asked once on the terminal, before connecting.
pub fn unlock_passphrase(wallet_id: &str) -> Result<String, String> {
    if let Ok(p) = std::env::var("MPC_WALLET_PASSPHRASE") {
        if p.is_empty() {
            return Err("MPC_WALLET_PASSPHRASE is empty".into());
        }
        return Ok(p);
    }
    let wallet_id = mpc_node::display::Remote(wallet_id);
    rpassword::prompt_password(format!("Passphrase of wallet {wallet_id}: "))
        .map_err(|e| format!("no passphrase (set MPC_WALLET_PASSPHRASE): {e}"))
}

/// Who signs a transaction, and the session's settings.
#[derive(clap::Args)]
pub struct SpendArgs {
    /// Signers, comma-separated; this node is always one.
    #[arg(long, value_delimiter = ',')]
    pub signers: Vec<String>,
    /// Session id (random by default).
    #[arg(long)]
    pub session_id: Option<String>,
    /// Seconds each phase may take.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
}
