//! `mpc-bench`: load generator for the mpc-signal signaling server, measured
//! against matchbox_server 0.15 and PeerJS server 1.0.2 in the same run.
//!
//! It spawns each server itself as a child process (fresh per scenario and
//! repetition) on 127.0.0.1, so it can read the server's CPU time
//! (`/proc/<pid>/stat` utime+stime) and resident memory
//! (`/proc/<pid>/status` VmRSS). Targets are interleaved within each
//! repetition (and their order alternates between repetitions) so that
//! background load on a shared machine hits both alike; the summary quotes
//! the median over repetitions.
//!
//! Scenarios:
//! - `cpu`: closed-loop ping-pong over N pairs; server CPU per delivered message.
//! - `idle`: RSS per idle registered connection at 10k, and the cost of
//!   `list_peers` with 10k registered (PeerJS: `GET /peerjs/peers`).
//! - `latency`: open-loop relay at a fixed aggregate rate; one-way latency
//!   measured from the intended send time (no coordinated omission).
//! - `connect`: connections (TCP + WebSocket upgrade + register + reply) per second.
//!
//! Loopback only: every address it dials is the 127.0.0.1 port that the
//! spawned server printed. Every loop is bounded in count and time.

mod args;
mod client;
mod floor;
mod report;
mod scenario;
mod server;

use std::process::ExitCode;

use clap::Parser;

use args::Args;
use report::Sample;

type Res<T> = Result<T, String>;

fn main() -> ExitCode {
    let args = Args::parse();
    if args.floor_server {
        return match floor::serve() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: floor server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.reps == 0 || args.pairs == 0 || args.latency_pairs == 0 || args.rate <= 0.0 {
        eprintln!("error: --reps, --pairs, --latency-pairs and --rate must be positive");
        return ExitCode::from(2);
    }
    match raise_nofile() {
        Ok(n) => eprintln!("open-file limit: {n}"),
        Err(e) => eprintln!("warning: cannot raise the open-file limit: {e}"),
    }
    // One client thread, like the server's one worker: the client must stay
    // light so it does not starve the server on a 2-core machine.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Raises RLIMIT_NOFILE's soft limit to the hard limit; children inherit it.
fn raise_nofile() -> Res<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a stack struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
    }
    Ok(lim.rlim_cur)
}

async fn run(args: Args) -> Res<()> {
    let before = report::Before::now();
    let mut samples = Vec::new();
    for rep in 0..args.reps {
        for &scenario in &args.scenarios {
            // Alternate the order so neither target always runs first.
            let mut order = args.targets.clone();
            if rep % 2 == 1 {
                order.reverse();
            }
            for target in order {
                if target == args::Target::Matchbox && scenario == args::Scenario::Latency {
                    eprintln!(
                        "[rep {}/{}] latency on matchbox: skipped (it names peers itself)",
                        rep + 1,
                        args.reps
                    );
                    continue;
                }
                eprintln!(
                    "[rep {}/{}] {} on {} ...",
                    rep + 1,
                    args.reps,
                    scenario.name(),
                    target.name()
                );
                let metrics = scenario::run(&args, target, scenario).await.map_err(|e| {
                    format!(
                        "{} on {} (rep {}): {e}",
                        scenario.name(),
                        target.name(),
                        rep + 1
                    )
                })?;
                eprintln!("    {}", report::fmt_metrics(&metrics));
                samples.push(Sample {
                    target,
                    scenario,
                    rep,
                    metrics,
                });
            }
        }
    }
    report::output(&args, before, &samples)
}
