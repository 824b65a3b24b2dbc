//! The `mpc-wallet` node: drives the sans-IO core (`mpc-core`) over a real
//! signaling WebSocket and real WebRTC data channels (`mpc-rtc`, str0m),
//! stores key shares in the keystore (`mpc-keystore`), and shows progress.
//!
//! | module | owns |
//! |---|---|
//! | [`driver`] | one node's event loop: WebSocket, WebRTC, clock, keystore |
//! | [`decide`] | a joiner's answers to proposals, and the y/N question |
//! | [`display`] | remote text (from peers, the server, files) made safe to print |
//! | [`observer`] | the driver's callbacks, and what a person sees: progress, the message flow |
//! | [`eth_rpc`] | a minimal Ethereum JSON-RPC client: fill in a transaction, broadcast it |
//! | [`demo`] | embedded server plus N nodes creating a wallet |
//! | [`simulate`] | the deterministic in-memory simulation |
//! | [`wallets`] | listing and showing stored wallets |

pub mod decide;
pub mod demo;
pub mod display;
pub mod driver;
pub mod eth_rpc;
pub mod observer;
pub mod simulate;
pub mod wallets;

/// scrypt work factor for new wallet files: `MPC_WALLET_SCRYPT_LOG_N`
/// (10..=22) if set, else the keystore's default. Tests and benchmarks set
/// it low; users shouldn't.
pub fn work_factor() -> u8 {
    std::env::var("MPC_WALLET_SCRYPT_LOG_N")
        .ok()
        .and_then(|v| v.parse::<u8>().ok())
        .filter(|n| (10..=mpc_keystore::MAX_WORK_FACTOR).contains(n))
        .unwrap_or(mpc_keystore::DEFAULT_WORK_FACTOR)
}
