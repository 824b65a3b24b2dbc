//! mpc-chain's Solana module against solders (the Solana SDK's own types,
//! driven from Python): `vectors.json`, made by `gen_vectors.py`, holds
//! messages and transactions the SDK built and signed, and what a signer
//! must be shown of each. One binary, one module per concern.

mod bad_input;
mod fixtures;
mod vectors;
