#!/usr/bin/env bash
# The main job: an embedded signaling server plus N nodes (default 3) create
# a wallet over real WebRTC on loopback, printing the message flow.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -q -p mpc-node --bin mpc-wallet
exec "${CARGO_TARGET_DIR:-target}/release/mpc-wallet" demo "$@"
