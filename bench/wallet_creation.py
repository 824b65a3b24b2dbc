#!/usr/bin/env python3
"""Wallet creation wall time, each node a separate `mpc-wallet` process.

For each size, an `mpc-signal` process and n-1 `mpc-wallet join --yes`
processes are started and registered first; then `mpc-wallet create` runs.
The figure is the creator's `elapsed_ms`: from sending the proposal until
every participant has reported `wallet_created` (i.e. stored its share).
Process start-up is outside the measured interval. Also printed: the
median CPU time (user + system) of one joiner process, start-up included.

usage: bench/wallet_creation.py [--reps 5] [--sizes 3:2,10:7,20:14] [--log-n 12]
                                [--chain bitcoin|solana|ethereum]
Needs release binaries: cargo build --release -p mpc-signal -p mpc-node
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
WALLET = os.path.join(TARGET, "release", "mpc-wallet")
SIGNAL = os.path.join(TARGET, "release", "mpc-signal")


def start_server():
    p = subprocess.Popen([SIGNAL, "--listen", "127.0.0.1:0", "--rate-limit-per-sec", "0",
                          # every run has fresh identities under the same ids
                          "--key-binding-secs", "0",
                          # and many of them from one address
                          "--new-bindings-per-ip-per-min", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env={**os.environ, "RUST_LOG": "warn"})
    line = p.stdout.readline().strip()
    assert line.startswith("listening on "), line
    return p, "ws://%s/ws" % line.split()[-1]


def peers(url, tmp):
    out = subprocess.run([WALLET, "--server", url, "--json", "--keystore",
                          os.path.join(tmp, "observer"), "peers"],
                         capture_output=True, text=True, timeout=20)
    return json.loads(out.stdout)["peers"] if out.returncode == 0 else []


def one_run(url, n, t, log_n, chain, tmp):
    ids = ["node%02d" % i for i in range(1, n + 1)]
    env = {**os.environ, "MPC_WALLET_PASSPHRASE": "bench", "MPC_WALLET_SCRYPT_LOG_N": str(log_n),
           "RUST_LOG": "error"}
    joiners = [subprocess.Popen([WALLET, "--server", url, "--peer-id", i, "--keystore",
                                 os.path.join(tmp, i), "--json", "join", "--yes"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
               for i in ids[1:]]
    deadline = time.time() + 60
    while not set(ids[1:]) <= set(peers(url, tmp)):
        if time.time() > deadline:
            raise RuntimeError("joiners never registered")
        time.sleep(0.05)
    out = subprocess.run([WALLET, "--server", url, "--peer-id", ids[0], "--keystore",
                          os.path.join(tmp, ids[0]), "--json", "create", "--participants",
                          ",".join(ids), "--threshold", str(t), "--chain", chain],
                         capture_output=True, text=True, env=env, timeout=120)
    cpu = []
    for j in joiners:
        # wait4 reaps the joiner with its own rusage: CPU of the whole
        # process, start-up and scrypt included
        _, status, ru = os.wait4(j.pid, 0)
        j.returncode = os.waitstatus_to_exitcode(status)
        cpu.append((ru.ru_utime + ru.ru_stime) * 1000)
    if out.returncode != 0:
        raise RuntimeError("create failed: " + out.stderr)
    return json.loads(out.stdout)["elapsed_ms"], statistics.median(cpu)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sizes", default="3:2,10:7,20:14")
    ap.add_argument("--log-n", type=int, default=12,
                    help="scrypt work factor for the stored share (default keystore: 18)")
    ap.add_argument("--chain", default="bitcoin", choices=["bitcoin", "solana", "ethereum"])
    a = ap.parse_args()
    for b in (WALLET, SIGNAL):
        if not os.path.exists(b):
            sys.exit("missing %s: cargo build --release -p mpc-signal -p mpc-node" % b)
    results = {}
    for size in a.sizes.split(","):
        n, t = map(int, size.split(":"))
        server, url = start_server()
        times, cpus = [], []
        try:
            for _ in range(a.reps):
                tmp = tempfile.mkdtemp(prefix="mpc-bench-")
                try:
                    wall, cpu = one_run(url, n, t, a.log_n, a.chain, tmp)
                    times.append(wall)
                    cpus.append(cpu)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
        finally:
            server.kill()
        results["%d-of-%d" % (t, n)] = {"elapsed_ms": times, "joiner_cpu_ms": cpus}
        print("%s %d-of-%d: median %.0f ms (min %.0f, max %.0f; %d runs; scrypt log_n %d); "
              "CPU per joiner process median %.0f ms" % (
                  a.chain, t, n, statistics.median(times), min(times), max(times), len(times),
                  a.log_n, statistics.median(cpus)), flush=True)
    print(json.dumps({"chain": a.chain, "log_n": a.log_n, "results": results}))


if __name__ == "__main__":
    main()
