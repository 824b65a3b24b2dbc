#!/usr/bin/env bash
# Benchmarks the mpc-signal signaling server against matchbox_server 0.15
# and PeerJS server 1.0.2 in the same run (interleaved, several
# repetitions, medians). Not part of the test suite. Loopback only; every
# scenario stops by itself.
#
#   bench/run.sh                    # everything, 5 repetitions
#   REPS=3 bench/run.sh             # fewer repetitions
#   bench/run.sh --scenarios cpu    # extra flags go to mpc-bench (see --help)
#   NICE=-10 bench/run.sh           # run both servers and the client at a higher
#                                   # priority than other work on a shared machine
#
# Writes the JSON summary to target/bench/signal.json and the table to
# target/bench/signal.md. Needs cargo, node and npm. matchbox skips the
# latency scenario (it names peers itself, so senders can't address
# receivers in advance), and its idle run has no peer list to time.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

cargo build --release -p mpc-signal -p mpc-bench

if [ ! -d bench/peerjs/node_modules/peer ]; then
  (cd bench/peerjs && npm ci --no-audit --no-fund)
fi
# matchbox_server 0.15, the third server of every run (--matchbox-bin).
if ! command -v matchbox_server >/dev/null && [ ! -x "$HOME/.cargo/bin/matchbox_server" ]; then
  cargo install --locked matchbox_server@0.15.0
fi

# 10k server sockets plus 10k client sockets: raise the open-file limit
# (mpc-bench raises its soft limit to the hard one too; children inherit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
  echo "warning: open-file limit $(ulimit -n) is below 10100; the idle scenario needs more" >&2
fi

mkdir -p target/bench
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load before: $(cat /proc/loadavg)"
prio=()
if [ -n "${NICE:-}" ]; then prio=(nice -n "$NICE"); fi
bin="${CARGO_TARGET_DIR:-target}/release"
"${prio[@]}" "$bin/mpc-bench" --server-bin "$bin/mpc-signal" --reps "${REPS:-5}" --json-out target/bench/signal.json "$@" \
  | tee target/bench/signal.out
# The human table follows the JSON in the output.
sed -n '/^medians of/,$p' target/bench/signal.out > target/bench/signal.md
echo "load after: $(cat /proc/loadavg)"
echo "wrote target/bench/signal.json and target/bench/signal.md"
