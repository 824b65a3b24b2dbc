#!/usr/bin/env bash
# Builds mpc-core for wasm32-unknown-unknown (release), plus the
# `wasm_size` example: a .wasm that runs a whole simulated DKG on both
# curves, so its size is what the core costs a browser bundle.
#
# Where rustup has the wasm32 target (a normal developer machine), plain
# cargo is used. Otherwise (this project's machines: rustup cannot download
# targets) Debian's rustc-web builds std from source with -Zbuild-std; see
# shared/notes/toolchain.md.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=wasm32-unknown-unknown
PROFILE_DIR=${CARGO_TARGET_DIR:-target}/$TARGET/release

if rustup target list --installed 2>/dev/null | grep -q "^$TARGET\$"; then
    echo "build-wasm-core: using rustup's $TARGET target"
    cargo build --release --target "$TARGET" -p mpc-core --lib --example wasm_size
else
    if ! dpkg -s rustc-web cargo-web rust-web-src lld >/dev/null 2>&1; then
        echo "build-wasm-core: installing Debian rustc-web, cargo-web, rust-web-src and lld"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src lld
    fi
    echo "build-wasm-core: using $(/usr/bin/rustc --version) with -Zbuild-std"
    # rustup's cargo comes first in PATH; Debian's compiler must be named,
    # since mixing the two fails.
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld \
        /usr/bin/cargo build --release --target "$TARGET" \
        -Zbuild-std=std,panic_abort -p mpc-core --lib --example wasm_size
fi

lib="$PROFILE_DIR/libmpc_core.rlib"
wasm="$PROFILE_DIR/examples/wasm_size.wasm"
for f in "$lib" "$wasm"; do
    if [ ! -f "$f" ]; then
        echo "build-wasm-core: build finished but $f is missing" >&2
        exit 1
    fi
done
echo "build-wasm-core: OK $lib ($(stat -c %s "$lib") bytes)"
echo "build-wasm-core: OK $wasm ($(stat -c %s "$wasm") bytes; a whole 2-of-3 DKG on both curves, before wasm-bindgen/wasm-opt)"

# The release profile keeps debug info (debug = 1); report the size without
# custom sections (debug info, names), which is what a stripped build ships.
if command -v python3 >/dev/null; then
    python3 - "$wasm" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
def leb(i):
    r = s = 0
    while True:
        x = b[i]; i += 1; r |= (x & 0x7F) << s; s += 7
        if x < 0x80:
            return r, i
i, custom = 8, 0
while i < len(b):
    size, j = leb(i + 1)
    if b[i] == 0:
        custom += j + size - i
    i = j + size
print(f"build-wasm-core: {len(b) - custom} bytes without debug/custom sections")
PY
fi
