#!/usr/bin/env bash
# The extension's end-to-end tests: Debian's Chromium (installed if
# missing) with the unpacked extension, mpc-signal and mpc-wallet
# processes, all inside a loopback-only network namespace. Screenshots go
# to build/test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
if [ ! -x /usr/bin/chromium ]; then
    echo "test-extension: installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
if ! command -v ip >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
fi
scripts/build-extension.sh
# The very binaries `cargo test --workspace` built (same features): after
# scripts/test.sh's test step this builds nothing.
cargo test --workspace --no-run --quiet
(cd extension/tests && npm ci --no-audit --no-fund --silent)

mkdir -p build/test-artifacts
export MPC_BIN_DIR="$(cd "$TARGET_DIR/debug" && pwd)"
export EXTENSION_DIR="$PWD/build/extension"
export ARTIFACTS_DIR="$PWD/build/test-artifacts"
# A network namespace with only loopback: no candidate or packet leaves.
unshare -n sh -c 'ip link set lo up && exec "$@"' sh \
    node --test --test-concurrency=1 extension/tests/
