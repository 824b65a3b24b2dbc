#!/usr/bin/env bash
# Installs what building (and, with `tests`, testing) mpc-wallet needs on
# Debian 12, once.
# Idempotent: each step is skipped when its tool is already there.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: Rust is missing. Install it with rustup (https://rustup.rs), then rerun." >&2
    exit 1
fi

pkgs=()
command -v cc >/dev/null 2>&1 || pkgs+=(build-essential)
command -v cmake >/dev/null 2>&1 || pkgs+=(cmake)
command -v pkg-config >/dev/null 2>&1 || pkgs+=(pkg-config)
# `setup.sh tests`: also what only the tests need. The signaling server's
# cluster tests start their own redis-server (on a Unix socket); a
# system-wide one the package may start is not used.
if [ "${1:-}" = tests ]; then
    command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
    # The Solana tests submit transactions to LiteSVM, from python solders.
    [ -x /usr/bin/python3 ] || pkgs+=(python3)
    dpkg -s python3-venv >/dev/null 2>&1 || pkgs+=(python3-venv)
fi
if [ ${#pkgs[@]} -gt 0 ]; then
    echo "setup: installing ${pkgs[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt 2>/dev/null || true

# The Solana tests' runtime: LiteSVM, shipped in solders (pinned: the
# tests' expectations of its API are this version's).
if [ "${1:-}" = tests ]; then
    pyenv="$HOME/.cache/mpc-wallet/pyenv"
    if ! "$pyenv/bin/python" -c 'import solders.litesvm' >/dev/null 2>&1; then
        echo "setup: installing solders (LiteSVM) into $pyenv"
        rm -rf "$pyenv"
        /usr/bin/python3 -m venv "$pyenv"
        "$pyenv/bin/pip" install -q 'solders==0.29.0'
    fi
    # The Ethereum tests' independent check: eth-account recovers signers.
    if ! "$pyenv/bin/python" -c 'import eth_account' >/dev/null 2>&1; then
        echo "setup: installing eth-account into $pyenv"
        "$pyenv/bin/pip" install -q 'eth-account==0.13.7'
    fi
    # A real Ethereum node on loopback: anvil, shipped on npm.
    anvil="$HOME/.cache/mpc-wallet/anvil"
    if ! "$anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil" --version >/dev/null 2>&1; then
        echo "setup: installing anvil into $anvil"
        mkdir -p "$anvil"
        npm install -q --prefix "$anvil" '@foundry-rs/anvil-linux-amd64@1.7.1' >/dev/null
    fi
fi
