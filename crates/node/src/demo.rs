//! `mpc-wallet demo`: the whole system in one process on loopback. An
//! embedded signaling server, and N full nodes (each its own WebRTC stack,
//! WebSocket and keystore) create a wallet; the message flow is printed
//! like the spec's "Simulation Run Example".

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mpc_core::{Command, WalletResult};
use mpc_keystore::fs::Keystore;
use mpc_protocol::peer::Curve;
use serde_json::json;

use crate::decide::{Policy, SignRule};
use crate::driver::{self, Goal, NodeOptions, Outcome, Storage};
use crate::observer::FlowPrinter;

/// What the demo should do.
pub struct DemoOptions {
    pub nodes: usize,
    pub threshold: u16,
    pub curve: Curve,
    pub network: mpc_address::Network,
    pub json: bool,
    /// Where the nodes' keystores go (a fresh temporary dir by default).
    pub dir: Option<PathBuf>,
}

/// One node's result in the demo.
pub struct DemoNode {
    pub peer_id: String,
    pub wallet: Box<WalletResult>,
    pub keystore_path: PathBuf,
}

pub const DEMO_PASSPHRASE: &str = "demo passphrase";

/// Runs the demo; prints the flow (unless `json`) and returns every node's
/// result.
pub async fn run(opts: &DemoOptions) -> Result<Vec<DemoNode>, String> {
    if opts.nodes < 2 || opts.nodes > 50 {
        return Err("--nodes must be between 2 and 50".into());
    }
    if opts.threshold < 2 || opts.threshold as usize > opts.nodes {
        return Err(format!("--threshold must be between 2 and {}", opts.nodes));
    }
    let server = mpc_signal::SignalServer::bind(
        "127.0.0.1:0".parse().expect("addr"),
        mpc_signal::Config {
            // Every node here shares one machine; the demo is not a flood.
            rate_limit_per_sec: 0,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| format!("cannot start the embedded signaling server: {e}"))?;
    let printer = FlowPrinter::new();
    let say = |s: &str| {
        if !opts.json {
            printer.line(s)
        }
    };
    say(&format!(
        "signaling server listening on {}",
        server.ws_url()
    ));

    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "mpc-wallet-demo-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        )),
    };
    let ids: Vec<String> = (1..=opts.nodes).map(|i| format!("cli{i}")).collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (node_opts, storage) = demo_node(&server.ws_url(), &dir, id)?;
        let goal = if i == 0 {
            Goal::Command(Command::Create {
                session_id: None,
                participants: ids.clone(),
                threshold: opts.threshold,
                curve: opts.curve,
            })
        } else {
            // The demo's joiners take part in the key generation unasked.
            Goal::Join(Policy::new(Some(ids[0].clone()), true, vec![]))
        };
        let mut observer = if opts.json {
            crate::observer::Quiet.boxed()
        } else {
            Box::new(printer.clone())
        };
        let is_creator = i == 0;
        tasks.push(tokio::spawn(async move {
            if is_creator {
                // Let the joiners register first, as people would.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            driver::run(node_opts, goal, Some(storage), observer.as_mut()).await
        }));
    }

    let mut results = Vec::new();
    let mut errors = Vec::new();
    for (id, task) in ids.iter().zip(tasks) {
        match task.await {
            Ok(Ok(Outcome::Created {
                wallet,
                keystore_path,
                ..
            })) => results.push(DemoNode {
                peer_id: id.clone(),
                wallet,
                keystore_path,
            }),
            Ok(Ok(_)) => errors.push(format!("{id}: ended without a wallet")),
            Ok(Err(e)) => errors.push(format!("{id}: {e}")),
            Err(e) => errors.push(format!("{id}: task failed: {e}")),
        }
    }
    let elapsed = started.elapsed();
    if !errors.is_empty() {
        let _ = server.shutdown().await;
        return Err(errors.join("; "));
    }
    let key = &results[0].wallet.group_public_key;
    if let Some(other) = results.iter().find(|r| &r.wallet.group_public_key != key) {
        return Err(format!(
            "group keys differ: {} has {}, {} has {}",
            results[0].peer_id, key, other.peer_id, other.wallet.group_public_key
        ));
    }
    let addresses = mpc_address::addresses(opts.curve.as_str(), key, opts.network)
        .map_err(|e| e.to_string())?;
    say("");
    say(&format!(
        "--- signing {DEMO_MESSAGE:?} with {} of the {} shares ---",
        opts.threshold, opts.nodes
    ));
    let signed = sign(&server.ws_url(), &ids, &results, opts, &printer, &dir).await;
    let _ = server.shutdown().await;
    let signed = signed?;
    if opts.json {
        let per_node: serde_json::Map<_, _> = results
            .iter()
            .map(|r| (r.peer_id.clone(), json!(r.wallet.group_public_key)))
            .collect();
        let keystores: serde_json::Map<_, _> = results
            .iter()
            .map(|r| (r.peer_id.clone(), json!(r.keystore_path)))
            .collect();
        println!(
            "{}",
            json!({
                "session_id": results[0].wallet.session_id,
                "curve": opts.curve.as_str(),
                "threshold": opts.threshold,
                "participants": ids,
                "group_public_key": per_node,
                "addresses": addresses,
                "keystore_paths": keystores,
                "elapsed_ms": elapsed.as_millis() as u64,
                "signature": {
                    "session_id": signed.result.session_id,
                    "signers": signed.result.signers,
                    "message_hex": hex::encode(&signed.result.message),
                    "signature": hex::encode(&signed.result.signature),
                    "verified": true,
                    "elapsed_ms": signed.elapsed.as_millis() as u64,
                },
            })
        );
    } else {
        say("");
        say(&format!(
            "wallet created in {:.2} s: {}-of-{} {} — every node holds one share, no node holds the key",
            elapsed.as_secs_f64(),
            opts.threshold,
            opts.nodes,
            opts.curve
        ));
        say(&format!("  group public key: {key}"));
        if let Some(a) = &addresses.bitcoin_taproot {
            say(&format!("  bitcoin taproot:  {a}"));
        }
        if let Some(a) = &addresses.solana {
            say(&format!("  solana:           {a}"));
        }
        if let Some(a) = &addresses.ethereum {
            say(&format!("  ethereum:         {a}"));
        }
        for r in &results {
            say(&format!(
                "  {} keystore:    {}",
                r.peer_id,
                r.keystore_path.display()
            ));
        }
        say(&format!(
            "  signature:        {} ({} by {} in {:.0} ms)",
            hex::encode(&signed.result.signature),
            match opts.curve {
                Curve::Secp256k1 => "BIP340",
                Curve::Ed25519 => "Ed25519",
                Curve::Secp256k1Ecdsa => "ECDSA, Ethereum personal_sign",
            },
            signed.result.signers.join(", "),
            signed.elapsed.as_secs_f64() * 1000.0
        ));
        say(&format!(
            "  verified:         message {DEMO_MESSAGE:?} under the group key, by every signer"
        ));
        say(&format!(
            "  (encrypted with the passphrase {DEMO_PASSPHRASE:?}; try `mpc-wallet --keystore {} wallets`)",
            results[0]
                .keystore_path
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ));
    }
    Ok(results)
}

/// The message the demo signs.
pub const DEMO_MESSAGE: &str = "hello from mpc-wallet";

/// A signature the demo's signers agreed on.
pub struct DemoSignature {
    pub result: Box<mpc_core::SignatureResult>,
    pub elapsed: Duration,
}

/// The first `threshold` nodes sign [`DEMO_MESSAGE`]: the first proposes
/// with its wallet from the DKG; the others join, find the wallet in their
/// keystore by group key and decrypt their share.
async fn sign(
    url: &str,
    ids: &[String],
    results: &[DemoNode],
    opts: &DemoOptions,
    printer: &FlowPrinter,
    dir: &std::path::Path,
) -> Result<DemoSignature, String> {
    let signers: Vec<String> = ids[..usize::from(opts.threshold)].to_vec();
    let mut tasks = Vec::new();
    let mut started = Instant::now();
    // Joiners first (they must be registered when the proposal comes),
    // then the proposer; the time is measured from the proposer's start.
    for (i, id) in signers.iter().enumerate().rev() {
        let (node_opts, storage) = demo_node(url, dir, id)?;
        let goal = if i == 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            started = Instant::now();
            Goal::Command(Command::Sign {
                session_id: None,
                wallet: Box::new(mpc_core::SigningWallet::from(&*results[0].wallet)),
                message: DEMO_MESSAGE.as_bytes().to_vec(),
                format: if opts.curve == Curve::Secp256k1Ecdsa {
                    mpc_protocol::peer::SignFormat::EthereumMessage
                } else {
                    Default::default()
                },
                signers: signers.clone(),
            })
        } else {
            // They sign unasked only the demo's message, and only for cli1:
            // what `join --approve-message` does.
            let demo_message = SignRule::Message(DEMO_MESSAGE.as_bytes().to_vec());
            Goal::Join(Policy::new(Some(ids[0].clone()), false, vec![demo_message]))
        };
        let mut observer = if opts.json {
            crate::observer::Quiet.boxed()
        } else {
            Box::new(printer.clone())
        };
        tasks.push(tokio::spawn(async move {
            driver::run(node_opts, goal, Some(storage), observer.as_mut()).await
        }));
    }
    tasks.reverse();
    let mut sigs = Vec::new();
    let mut errors = Vec::new();
    for (id, task) in signers.iter().zip(tasks) {
        match task.await {
            Ok(Ok(Outcome::Signed(sig))) => sigs.push(sig),
            Ok(Ok(_)) => errors.push(format!("{id}: ended without a signature")),
            Ok(Err(e)) => errors.push(format!("{id}: {e}")),
            Err(e) => errors.push(format!("{id}: task failed: {e}")),
        }
    }
    let elapsed = started.elapsed();
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let first = sigs.remove(0);
    if let Some(other) = sigs.iter().find(|s| s.signature != first.signature) {
        return Err(format!(
            "signers disagree on the signature: {} vs {}",
            hex::encode(&first.signature),
            hex::encode(&other.signature)
        ));
    }
    Ok(DemoSignature {
        result: first,
        elapsed,
    })
}

/// One demo node's connection settings and keystore (`dir/<id>`).
fn demo_node(url: &str, dir: &std::path::Path, id: &str) -> Result<(NodeOptions, Storage), String> {
    let options = NodeOptions {
        server: url.to_string(),
        peer_id: id.to_string(),
        ice_servers: None,
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        timeout: Duration::from_secs(60),
        identity_store: Keystore::open(dir.join(id)).map_err(|e| e.to_string())?,
        require_pinned: false,
        signing: Default::default(),
    };
    let storage = Storage {
        keystore: options.identity_store.clone(),
        passphrase: DEMO_PASSPHRASE.into(),
        work_factor: crate::work_factor(),
    };
    Ok((options, storage))
}
