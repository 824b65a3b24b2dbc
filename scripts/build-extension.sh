#!/usr/bin/env bash
# Builds the Chrome extension, unpacked, into ${EXTENSION_OUT:-build/extension}:
#   1. the wasm crate (crates/wasm) for wasm32-unknown-unknown: rustup's
#      target where present, else Debian's rustc-web with -Zbuild-std
#      (see shared/notes/toolchain.md);
#   2. wasm-bindgen --target web (the CLI is installed at exactly the
#      version pinned in crates/wasm/Cargo.toml, once, into ~/.cargo/bin);
#   3. extension/ sources copied beside the generated glue.
# No bundler: the extension loads plain ES modules.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=wasm32-unknown-unknown
TARGET_DIR=${CARGO_TARGET_DIR:-target}
OUT=${EXTENSION_OUT:-build/extension}
WBG_VERSION=$(sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' crates/wasm/Cargo.toml)

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WBG_VERSION" ]; then
    echo "build-extension: installing wasm-bindgen-cli $WBG_VERSION (once; takes minutes)"
    # A light release profile: the CLI only rewrites one small .wasm, and
    # this install is a large part of a new machine's first test run.
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        cargo install wasm-bindgen-cli --version "$WBG_VERSION"
fi

# k256 0.14 (DKLs23's curve) picks its 64-bit field through `cpubits`,
# which promotes wasm32 to 64 bits; wasm has no 64x64->128 multiply, so
# the 32-bit field is about twice as fast here (BENCHMARKS.md, Ethereum).
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--cfg cpubits=\"32\" ${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:-}"

if rustup target list --installed 2>/dev/null | grep -q "^$TARGET\$"; then
    cargo build --release --target "$TARGET" -p mpc-wasm
else
    if ! dpkg -s rustc-web cargo-web rust-web-src lld >/dev/null 2>&1; then
        echo "build-extension: installing Debian rustc-web, cargo-web, rust-web-src and lld"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src lld
    fi
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld \
        /usr/bin/cargo build --release --target "$TARGET" \
        -Zbuild-std=std,panic_abort -p mpc-wasm
fi

wasm="$TARGET_DIR/$TARGET/release/mpc_wasm.wasm"
rm -rf "$OUT"
mkdir -p "$OUT/wasm"
wasm-bindgen --target web --no-typescript --out-dir "$OUT/wasm" "$wasm"
cp -r extension/src/. "$OUT/"
echo "build-extension: OK $OUT ($(du -sh "$OUT" | cut -f1); wasm $(stat -c %s "$OUT/wasm/mpc_wasm_bg.wasm") bytes)"
