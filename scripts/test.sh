#!/usr/bin/env bash
# Runs every test of mpc-wallet: formatting, lints, the whole workspace's
# unit/integration/process tests on loopback, and the wasm32 build of the core.
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

step "wasm32 build of the core"
scripts/build-wasm-core.sh

step "extension in Chromium with CLI nodes"
scripts/test-extension.sh

echo
echo "all tests passed"
