//! `mpc-wallet`: a threshold wallet node on the command line.
//!
//! | module | owns |
//! |---|---|
//! | [`cli`] | flags, subcommands, and the settings read from them |
//! | [`online`] | commands that run a node: `peers`, `create`, `join`, `sign` |
//! | [`lifecycle`] | `refresh`, `repair`: a wallet's shares renewed or rebuilt |
//! | [`spend`] | `sign-psbt`, `sign-solana`, `solana-transfer`, `sign-eth-tx`, `sign-eth-typed-data`: spending from a wallet |
//! | [`local`] | commands on the keystore alone: `identity`, `trust`, `wallet export/import` |
//!
//! `wallets`, `wallet show`, `simulate` and `demo` are in the library.

mod cli;
mod lifecycle;
mod local;
mod online;
mod spend;

use std::process::ExitCode;

use clap::Parser;
use mpc_node::display::Remote;

use cli::{keystore, Cli, Commands, WalletCommand};

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
            // Errors quote peers, the server and files: escaped, always.
            eprintln!("error: {}", Remote(e));
            ExitCode::FAILURE
        }
    }
}

/// A usage error exits with 2, as clap's own do.
fn usage(msg: impl std::fmt::Display) -> Result<ExitCode, String> {
    eprintln!("error: {}", Remote(msg));
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
            local::identity(&keystore(&cli)?, cli.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Trust { peer, key, forget } => {
            local::trust(&keystore(&cli)?, peer, key.as_deref(), *forget)?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Wallets => {
            mpc_node::wallets::list(&keystore(&cli)?, cli.network, cli.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Wallet {
            command:
                WalletCommand::Show {
                    wallet,
                    verify,
                    descriptor,
                },
        } => {
            let ks = keystore(&cli)?;
            let passphrase = verify.then(|| cli::unlock_passphrase(wallet)).transpose()?;
            let passphrase = passphrase.as_deref();
            let how = mpc_node::wallets::Show {
                network: cli.network,
                json: cli.json,
                verify: passphrase,
                descriptor: *descriptor,
            };
            mpc_node::wallets::show(&ks, wallet, &how)?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Wallet {
            command: WalletCommand::Export { wallet },
        } => {
            local::export(&keystore(&cli)?, wallet)?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Wallet {
            command: WalletCommand::Import { file },
        } => {
            local::import(&keystore(&cli)?, file, cli.network, cli.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Peers => online::peers(&cli),
        Commands::Create {
            participants,
            threshold,
            curve,
            chain,
            session_id,
            timeout_secs,
        } => online::create(
            &cli,
            participants,
            *threshold,
            chain.unwrap_or(*curve),
            session_id.clone(),
            *timeout_secs,
        ),
        Commands::Sign {
            wallet,
            message_hex,
            message,
            signers,
            session_id,
            timeout_secs,
        } => online::sign(
            &cli,
            wallet,
            message_hex.as_deref(),
            message.as_deref(),
            signers,
            session_id.clone(),
            *timeout_secs,
        ),
        Commands::SignPsbt {
            wallet,
            psbt,
            out,
            session,
        } => spend::sign_psbt(
            &cli,
            &spend::Spend::new(wallet, session),
            psbt,
            out.as_deref(),
        ),
        Commands::SignSolana {
            wallet,
            tx,
            session,
        } => spend::sign_solana(&cli, &spend::Spend::new(wallet, session), tx),
        Commands::SignEthTx {
            wallet,
            tx,
            rpc,
            session,
        } => spend::sign_eth_tx(
            &cli,
            &spend::Spend::new(wallet, session),
            tx,
            rpc.as_deref(),
        ),
        Commands::SignEthTypedData {
            wallet,
            data,
            session,
        } => spend::sign_eth_typed_data(&cli, &spend::Spend::new(wallet, session), data),
        Commands::SolanaTransfer {
            wallet,
            to,
            lamports,
            blockhash,
            nonce_account,
            session,
        } => spend::solana_transfer(
            &cli,
            &spend::Spend::new(wallet, session),
            &spend::Transfer {
                to,
                lamports: *lamports,
                blockhash,
                nonce_account: nonce_account.as_deref(),
            },
        ),
        Commands::Refresh {
            wallet,
            remove,
            session_id,
            timeout_secs,
        } => lifecycle::refresh(&cli, wallet, remove, session_id.clone(), *timeout_secs),
        Commands::Repair {
            wallet,
            target,
            helpers,
            session_id,
            timeout_secs,
        } => lifecycle::repair(
            &cli,
            wallet,
            target,
            helpers,
            session_id.clone(),
            *timeout_secs,
        ),
        Commands::Join {
            accept_keygen,
            approve_message,
            approve_message_hex,
            approve_psbt,
            approve_solana,
            approve_eth_tx,
            approve_typed_data,
            approve_refresh,
            approve_repair,
            accept_repair,
            approve_wallet,
            i_understand_this_signs_anything: _,
            from,
            timeout_secs,
        } => {
            let approvals = online::Approvals {
                messages: approve_message,
                messages_hex: approve_message_hex,
                psbts: approve_psbt,
                solana: approve_solana,
                eth_txs: approve_eth_tx,
                typed_data: approve_typed_data,
                refresh: approve_refresh,
                repair: approve_repair,
                accept_repair: *accept_repair,
                wallets: approve_wallet,
            };
            online::join(
                &cli,
                from.clone(),
                *timeout_secs,
                *accept_keygen,
                &approvals,
            )
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))
}
