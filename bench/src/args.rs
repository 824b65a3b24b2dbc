//! The command line: every flag, its default, and the targets and scenarios
//! it names.

use std::path::PathBuf;

use clap::Parser;

/// Benchmark mpc-signal against matchbox_server 0.15 and PeerJS server
/// 1.0.2 (spawns each itself).
#[derive(Parser, Debug, Clone)]
#[command(about)]
pub struct Args {
    /// Servers to measure, comma-separated: ours, peerjs, floor (a bare
    /// epoll relay in this binary: the least a relay can cost here; cpu
    /// scenario only), cluster (two mpc-signal instances sharing a
    /// redis-server, each pair split across them; costs are all three
    /// processes together), matchbox (matchbox_server 0.15, a room per
    /// pair; no latency scenario).
    #[arg(long, default_value = "ours,matchbox,peerjs", value_delimiter = ',')]
    pub targets: Vec<Target>,
    /// Scenarios, comma-separated: cpu, idle, latency, connect.
    #[arg(
        long,
        default_value = "cpu,idle,latency,connect",
        value_delimiter = ','
    )]
    pub scenarios: Vec<Scenario>,
    /// Repetitions of every (scenario, target); the summary takes medians.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Measured seconds of the cpu and latency scenarios.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Warm-up seconds before measuring (cpu, latency).
    #[arg(long, default_value_t = 3.0)]
    pub warmup: f64,
    /// Pairs in the closed-loop cpu scenario (2 connections each).
    #[arg(long, default_value_t = 500)]
    pub pairs: usize,
    /// Messages in flight per pair in the cpu scenario: the first of each
    /// pair sends this many, then both echo each one they receive.
    #[arg(long, default_value_t = 1)]
    pub window: usize,
    /// Pairs in the open-loop latency scenario.
    #[arg(long, default_value_t = 500)]
    pub latency_pairs: usize,
    /// Aggregate send rate of the latency scenario, messages/s.
    #[arg(long, default_value_t = 12_000.0)]
    pub rate: f64,
    /// Size of the relayed `data` / `payload` JSON object, bytes.
    #[arg(long, default_value_t = 200)]
    pub payload_bytes: usize,
    /// Idle registered connections in the idle scenario.
    #[arg(long, default_value_t = 10_000)]
    pub idle_conns: usize,
    /// list_peers round trips timed in the idle scenario.
    #[arg(long, default_value_t = 20)]
    pub list_rounds: usize,
    /// Connections opened in the connect scenario.
    #[arg(long, default_value_t = 2_000)]
    pub connect_count: usize,
    /// Connections in flight at once while connecting.
    #[arg(long, default_value_t = 50)]
    pub connect_concurrency: usize,
    /// The mpc-signal binary.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/mpc-signal"))]
    pub server_bin: PathBuf,
    /// Tokio worker threads of mpc-signal (node is single-threaded).
    #[arg(long, default_value_t = 1)]
    pub server_threads: usize,
    /// RUST_LOG for mpc-signal (its default `info` logs every connect and disconnect).
    #[arg(long, default_value = "warn")]
    pub server_log: String,
    /// Folder holding PeerJS's server.js and node_modules.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/peerjs"))]
    pub peerjs_dir: PathBuf,
    /// Write the JSON summary here too (it always goes to stdout).
    #[arg(long)]
    pub json_out: Option<PathBuf>,
    /// Run mpc-signal under callgrind (cpu scenario): reports the server's
    /// user-space instructions per relayed message, counted only while
    /// measuring. Deterministic where CPU time is noisy; slow (use a short
    /// --duration and few --pairs).
    #[arg(long)]
    pub callgrind: bool,
    /// matchbox_server 0.15 (`cargo install matchbox_server@0.15.0`):
    /// this path, else `matchbox_server` on PATH or in ~/.cargo/bin.
    #[arg(long)]
    pub matchbox_bin: Option<PathBuf>,
    /// Run as the floor server (what `--targets floor` spawns).
    #[arg(long, hide = true)]
    pub floor_server: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Ours,
    Peerjs,
    Floor,
    Cluster,
    Matchbox,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Ours => "ours",
            Target::Peerjs => "peerjs",
            Target::Floor => "floor",
            Target::Cluster => "cluster",
            Target::Matchbox => "matchbox",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Cpu,
    Idle,
    Latency,
    Connect,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Cpu => "cpu",
            Scenario::Idle => "idle",
            Scenario::Latency => "latency",
            Scenario::Connect => "connect",
        }
    }
}
