//! mpc-chain's Bitcoin module against independent implementations:
//! rust-bitcoin builds the PSBTs and computes reference sighashes, sizes
//! and txids; Bitcoin Core's interpreter (libbitcoinconsensus) verifies the
//! transactions signed from `plan`'s sighashes. One binary, one module per
//! concern.
#![cfg(not(target_arch = "wasm32"))]

mod bad_input;
mod consensus;
mod cross;
mod fixtures;
mod review;
