#!/usr/bin/env bash
# Runs every test of mpc-wallet: formatting, lints, the whole workspace's
# unit/integration/process tests on loopback, and the extension (the core
# built for wasm32) in Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh tests

step() { printf '\n=== %s ===\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (workspace)"
cargo test --workspace

# The extension step builds the core for wasm32 (inside crates/wasm), so
# the core's own wasm build (scripts/build-wasm-core.sh, for its size) is
# not repeated here.
step "extension in Chromium with CLI nodes (and the core's wasm32 build)"
scripts/test-extension.sh

echo
echo "all tests passed"
