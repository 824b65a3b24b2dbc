//! `mpc-bench`: load generator for the mpc-signal signaling server, measured
//! against PeerJS server 1.0.2 in the same run.
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

mod floor;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Res<T> = Result<T, String>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const RECV_TIMEOUT: Duration = Duration::from_secs(15);
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(240);

/// Benchmark mpc-signal against PeerJS server 1.0.2 (spawns both itself).
#[derive(Parser, Debug, Clone)]
#[command(about)]
struct Args {
    /// Servers to measure, comma-separated: ours, peerjs, floor (a bare
    /// epoll relay in this binary: the least a relay can cost here; cpu
    /// scenario only), cluster (two mpc-signal instances sharing a
    /// redis-server, each pair split across them; costs are all three
    /// processes together).
    #[arg(long, default_value = "ours,peerjs", value_delimiter = ',')]
    targets: Vec<Target>,
    /// Scenarios, comma-separated: cpu, idle, latency, connect.
    #[arg(
        long,
        default_value = "cpu,idle,latency,connect",
        value_delimiter = ','
    )]
    scenarios: Vec<Scenario>,
    /// Repetitions of every (scenario, target); the summary takes medians.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Measured seconds of the cpu and latency scenarios.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds before measuring (cpu, latency).
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Pairs in the closed-loop cpu scenario (2 connections each).
    #[arg(long, default_value_t = 500)]
    pairs: usize,
    /// Pairs in the open-loop latency scenario.
    #[arg(long, default_value_t = 500)]
    latency_pairs: usize,
    /// Aggregate send rate of the latency scenario, messages/s.
    #[arg(long, default_value_t = 12_000.0)]
    rate: f64,
    /// Size of the relayed `data` / `payload` JSON object, bytes.
    #[arg(long, default_value_t = 200)]
    payload_bytes: usize,
    /// Idle registered connections in the idle scenario.
    #[arg(long, default_value_t = 10_000)]
    idle_conns: usize,
    /// list_peers round trips timed in the idle scenario.
    #[arg(long, default_value_t = 20)]
    list_rounds: usize,
    /// Connections opened in the connect scenario.
    #[arg(long, default_value_t = 2_000)]
    connect_count: usize,
    /// Connections in flight at once while connecting.
    #[arg(long, default_value_t = 50)]
    connect_concurrency: usize,
    /// The mpc-signal binary.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/mpc-signal"))]
    server_bin: PathBuf,
    /// Tokio worker threads of mpc-signal (node is single-threaded).
    #[arg(long, default_value_t = 1)]
    server_threads: usize,
    /// RUST_LOG for mpc-signal (its default `info` logs every connect and disconnect).
    #[arg(long, default_value = "warn")]
    server_log: String,
    /// Folder holding PeerJS's server.js and node_modules.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/peerjs"))]
    peerjs_dir: PathBuf,
    /// Write the JSON summary here too (it always goes to stdout).
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Run mpc-signal under callgrind (cpu scenario): reports the server's
    /// user-space instructions per relayed message, counted only while
    /// measuring. Deterministic where CPU time is noisy; slow (use a short
    /// --duration and few --pairs).
    #[arg(long)]
    callgrind: bool,
    /// Run as the floor server (what `--targets floor` spawns).
    #[arg(long, hide = true)]
    floor_server: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Target {
    Ours,
    Peerjs,
    Floor,
    Cluster,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Ours => "ours",
            Target::Peerjs => "peerjs",
            Target::Floor => "floor",
            Target::Cluster => "cluster",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    Cpu,
    Idle,
    Latency,
    Connect,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Cpu => "cpu",
            Scenario::Idle => "idle",
            Scenario::Latency => "latency",
            Scenario::Connect => "connect",
        }
    }
}

/// One scenario's measurements: metric name → value.
type Metrics = BTreeMap<&'static str, f64>;

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

struct Sample {
    target: Target,
    scenario: Scenario,
    rep: usize,
    metrics: Metrics,
}

async fn run(args: Args) -> Res<()> {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let load_before = read_trim("/proc/loadavg");
    let mut samples = Vec::new();
    for rep in 0..args.reps {
        for &scenario in &args.scenarios {
            // Alternate the order so neither target always runs first.
            let mut order = args.targets.clone();
            if rep % 2 == 1 {
                order.reverse();
            }
            for target in order {
                eprintln!(
                    "[rep {}/{}] {} on {} ...",
                    rep + 1,
                    args.reps,
                    scenario.name(),
                    target.name()
                );
                let metrics = run_one(&args, target, scenario).await.map_err(|e| {
                    format!(
                        "{} on {} (rep {}): {e}",
                        scenario.name(),
                        target.name(),
                        rep + 1
                    )
                })?;
                eprintln!("    {}", fmt_metrics(&metrics));
                samples.push(Sample {
                    target,
                    scenario,
                    rep,
                    metrics,
                });
            }
        }
    }
    let load_after = read_trim("/proc/loadavg");

    let summary = summarize(&args, &samples);
    let out = json!({
        "machine": {
            "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "cpu_model": cpu_model(),
            "kernel": read_trim("/proc/sys/kernel/osrelease"),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "started_unix": started,
        "config": {
            "reps": args.reps,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "pairs": args.pairs,
            "latency_pairs": args.latency_pairs,
            "rate_per_s": args.rate,
            "payload_bytes": args.payload_bytes,
            "idle_conns": args.idle_conns,
            "connect_count": args.connect_count,
            "connect_concurrency": args.connect_concurrency,
            "server_threads": args.server_threads,
            "server_log": args.server_log,
        },
        "medians": summary,
        "samples": samples.iter().map(|s| json!({
            "target": s.target.name(),
            "scenario": s.scenario.name(),
            "rep": s.rep + 1,
            "metrics": s.metrics,
        })).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
    if let Some(path) = &args.json_out {
        std::fs::write(path, &text).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    println!("{text}");
    println!();
    print_table(&args, &samples);
    Ok(())
}

async fn run_one(args: &Args, target: Target, scenario: Scenario) -> Res<Metrics> {
    let server = Server::spawn(args, target).await?;
    let result = timeout(SCENARIO_TIMEOUT, async {
        match scenario {
            Scenario::Cpu => cpu_scenario(args, &server).await,
            Scenario::Idle => idle_scenario(args, &server).await,
            Scenario::Latency => latency_scenario(args, &server).await,
            Scenario::Connect => connect_scenario(args, &server).await,
        }
    })
    .await
    .unwrap_or_else(|_| Err(format!("scenario did not finish in {SCENARIO_TIMEOUT:?}")));
    let log = server.log.clone();
    let mut server = server;
    let result = match (result, server.check_alive()) {
        (Err(e), Err(dead)) => Err(format!("{e}; {dead}")),
        (r, _) => r,
    };
    server.stop().await;
    // Let the kernel reap the sockets of the last run before the next one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    result.map_err(|e| format!("{e} (server log: {})", log.display()))
}

// ---------------------------------------------------------------- servers

/// The server under test: one child process on 127.0.0.1, or for
/// `cluster` two mpc-signal instances and the redis-server they share.
struct Server {
    target: Target,
    /// Every process whose CPU time and memory count.
    procs: Vec<Proc>,
    /// Where clients connect: connection `i` goes to `addrs[i % len]`.
    addrs: Vec<SocketAddr>,
    log: PathBuf,
    /// The cluster's Redis directory, removed at the end.
    scratch: Option<PathBuf>,
}

struct Proc {
    child: Child,
    pid: u32,
}

impl Proc {
    fn spawn(mut cmd: Command, log: &Path) -> Res<Proc> {
        let log_file =
            std::fs::File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", cmd.as_std().get_program()))?;
        let pid = child.id().ok_or("server exited at once")?;
        Ok(Proc { child, pid })
    }

    /// Reads the `listening on ADDR` line, then keeps draining stdout so
    /// the server never blocks on a full pipe.
    async fn listening(&mut self, log: &Path) -> Res<SocketAddr> {
        let stdout = self.child.stdout.take().ok_or("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = timeout(Duration::from_secs(20), lines.next_line())
            .await
            .map_err(|_| "server printed no `listening on` line in 20 s".to_string())?
            .map_err(|e| format!("reading server stdout: {e}"))?
            .ok_or_else(|| format!("server exited before listening; see {}", log.display()))?;
        let addr: SocketAddr = first
            .strip_prefix("listening on ")
            .and_then(|a| a.trim().parse().ok())
            .ok_or_else(|| format!("unexpected first line from server: {first:?}"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("server listens on {addr}, not loopback; refusing"));
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(addr)
    }
}

impl Server {
    async fn spawn(args: &Args, target: Target) -> Res<Server> {
        let log = std::env::temp_dir().join(format!("mpc-bench-{}.log", target.name()));
        let ours = |extra: &[&str]| {
            let mut c = if args.callgrind {
                let mut c = Command::new("valgrind");
                c.args(["--tool=callgrind", "--instr-atstart=no"])
                    .arg(format!(
                        "--callgrind-out-file={}/mpc-bench-callgrind.%p",
                        std::env::temp_dir().display()
                    ))
                    .arg(&args.server_bin);
                c
            } else {
                Command::new(&args.server_bin)
            };
            c.args(["--listen", "127.0.0.1:0", "--rate-limit-per-sec", "0"])
                .args(["--max-connections", "30000"])
                // Every bench client connects from 127.0.0.1.
                .args(["--max-connections-per-ip", "0"])
                .args(["--new-bindings-per-ip-per-min", "0"])
                .args(["--threads", &args.server_threads.to_string()])
                .args(extra)
                .env("RUST_LOG", &args.server_log);
            c
        };
        let not_built = |e: String| {
            format!(
                "{e} (build it: cargo build --release -p mpc-signal; {})",
                args.server_bin.display()
            )
        };
        let mut server = Server {
            target,
            procs: Vec::new(),
            addrs: Vec::new(),
            log: log.clone(),
            scratch: None,
        };
        match target {
            Target::Ours => {
                let mut p = Proc::spawn(ours(&[]), &log).map_err(not_built)?;
                server.addrs.push(p.listening(&log).await?);
                server.procs.push(p);
            }
            Target::Floor => {
                let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
                let mut c = Command::new(exe);
                c.arg("--floor-server");
                let mut p = Proc::spawn(c, &log)?;
                server.addrs.push(p.listening(&log).await?);
                server.procs.push(p);
            }
            Target::Peerjs => {
                let mut c = Command::new("node");
                c.arg("server.js")
                    .current_dir(&args.peerjs_dir)
                    .env("PORT", "0");
                let mut p = Proc::spawn(c, &log)?;
                server.addrs.push(p.listening(&log).await?);
                server.procs.push(p);
            }
            Target::Cluster => {
                let dir =
                    std::env::temp_dir().join(format!("mpc-bench-redis-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                server.scratch = Some(dir.clone());
                let sock = dir.join("redis.sock");
                let mut c = Command::new("redis-server");
                c.args([
                    "--port",
                    "0",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--unixsocket",
                ])
                .arg(&sock)
                .arg("--dir")
                .arg(&dir);
                let redis = Proc::spawn(c, &dir.join("redis.log"))
                    .map_err(|e| format!("{e} (apt install redis-server)"))?;
                server.procs.push(redis);
                let t0 = Instant::now();
                while std::os::unix::net::UnixStream::connect(&sock).is_err() {
                    if t0.elapsed() > Duration::from_secs(10) {
                        return Err("redis-server did not open its socket in 10 s".into());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let url = format!("unix://{}", sock.display());
                for i in 0..2 {
                    let log_i = log.with_extension(format!("{i}.log"));
                    let mut p =
                        Proc::spawn(ours(&["--redis-url", &url]), &log_i).map_err(not_built)?;
                    server.addrs.push(p.listening(&log_i).await?);
                    server.procs.push(p);
                }
            }
        }
        Ok(server)
    }

    /// The first instance's address.
    fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// utime + stime of every process (all threads), seconds.
    fn cpu_secs(&self) -> Res<f64> {
        let mut total = 0.0;
        for p in &self.procs {
            total += proc_cpu_secs(p.pid)?;
        }
        Ok(total)
    }

    /// VmRSS of every process, KiB.
    fn rss_kib(&self) -> Res<u64> {
        let mut total = 0;
        for p in &self.procs {
            total += proc_rss_kib(p.pid)?;
        }
        Ok(total)
    }

    fn check_alive(&mut self) -> Res<()> {
        for p in &mut self.procs {
            match p.child.try_wait() {
                Ok(None) => {}
                Ok(Some(st)) => return Err(format!("server exited: {st}")),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }

    async fn stop(mut self) {
        // Instances before the Redis they use.
        for p in self.procs.iter_mut().rev() {
            let _ = p.child.start_kill();
            let _ = timeout(Duration::from_secs(5), p.child.wait()).await;
        }
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn proc_cpu_secs(pid: u32) -> Res<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("server gone? /proc/{pid}/stat: {e}"))?;
    let after = &stat[stat.rfind(')').ok_or("bad /proc stat")? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the comm: [0] is field 3 (state); utime is 14, stime 15.
    let ticks: u64 = f
        .get(11..13)
        .ok_or("short /proc stat")?
        .iter()
        .map(|s| s.parse::<u64>().unwrap_or(0))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(ticks as f64 / hz)
}

fn proc_rss_kib(pid: u32) -> Res<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("server gone? /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc status".to_string())
}

// ---------------------------------------------------------------- clients

fn client_config() -> WebSocketConfig {
    // Small buffers: the generator holds up to 10k sockets itself.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Opens a WebSocket and registers `id` (ours: challenge, register →
/// registered; PeerJS: id in the URL → OPEN). TCP_NODELAY on, as browsers do.
async fn connect(target: Target, addr: SocketAddr, id: &str) -> Res<Ws> {
    if !addr.ip().is_loopback() {
        return Err(format!("{addr} is not loopback"));
    }
    let url = match target {
        Target::Ours | Target::Floor | Target::Cluster => format!("ws://{addr}/ws"),
        Target::Peerjs => format!("ws://{addr}/peerjs?key=peerjs&id={id}&token=t{id}"),
    };
    let work = async {
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(client_config()), true)
                .await
                .map_err(|e| format!("connect {url}: {e}"))?;
        if target != Target::Peerjs {
            let reg = format!(r#"{{"type":"register","peer_id":"{id}"}}"#);
            ws.send(Message::text(reg))
                .await
                .map_err(|e| format!("{id}: send register: {e}"))?;
        }
        let mut reply = next_text(&mut ws).await.map_err(|e| format!("{id}: {e}"))?;
        // Ours opens every connection with a challenge (for signed
        // registration); the load generator registers unsigned and skips it.
        if target != Target::Peerjs && reply.starts_with(r#"{"type":"challenge""#) {
            reply = next_text(&mut ws).await.map_err(|e| format!("{id}: {e}"))?;
        }
        let ok = match target {
            Target::Ours | Target::Floor | Target::Cluster => {
                reply.starts_with(r#"{"type":"registered""#)
            }
            Target::Peerjs => reply.starts_with(r#"{"type":"OPEN""#),
        };
        if !ok {
            return Err(format!(
                "{id}: unexpected registration reply {}",
                clip(&reply)
            ));
        }
        Ok(ws)
    };
    timeout(CONNECT_TIMEOUT, work)
        .await
        .map_err(|_| format!("{id}: connect + register timed out after {CONNECT_TIMEOUT:?}"))?
}

/// Opens `ids` with at most `concurrency` in flight; returns them in order.
/// Connects and registers every id; id `i` goes to `addrs[i % len]`, so
/// on a cluster the two ends of each pair are on different instances.
async fn connect_many(
    target: Target,
    addrs: &[SocketAddr],
    ids: &[String],
    concurrency: usize,
) -> Res<Vec<Ws>> {
    let mut out: Vec<(usize, Ws)> = futures_util::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let addr = addrs[i % addrs.len()];
            async move { connect(target, addr, id).await.map(|ws| (i, ws)) }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Res<_>>()?;
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, ws)| ws).collect())
}

/// The next text frame; pings are answered by tungstenite as it reads.
async fn next_text<S>(ws: &mut S) -> Res<Utf8Bytes>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        match ws.next().await {
            None => return Err("connection closed".into()),
            Some(Err(e)) => return Err(format!("websocket error: {e}")),
            Some(Ok(Message::Text(t))) => return Ok(t),
            Some(Ok(Message::Close(f))) => return Err(format!("closed by server: {f:?}")),
            Some(Ok(_)) => {}
        }
    }
}

/// A relay of `data` (a JSON object) to `to`, in the target's protocol.
fn relay_text(target: Target, to: &str, data: &str) -> String {
    match target {
        Target::Ours | Target::Floor | Target::Cluster => {
            format!(r#"{{"type":"relay","to":"{to}","data":{data}}}"#)
        }
        Target::Peerjs => format!(r#"{{"type":"OFFER","dst":"{to}","payload":{data}}}"#),
    }
}

/// Checks that a received frame is a relayed message, not an error.
fn expect_relay(target: Target, text: &str) -> Res<()> {
    let ok = match target {
        Target::Ours | Target::Floor | Target::Cluster => text.starts_with(r#"{"type":"relay""#),
        Target::Peerjs => text.starts_with(r#"{"type":"OFFER""#),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected a relayed message, got {}", clip(text)))
    }
}

/// `{"seq":0,"pad":"xxx…"}` of exactly `bytes` bytes (at least the skeleton).
fn padded_data(prefix: &str, bytes: usize) -> String {
    let skeleton = format!(r#"{{{prefix}"pad":""}}"#);
    let pad = "x".repeat(bytes.saturating_sub(skeleton.len()));
    format!(r#"{{{prefix}"pad":"{pad}"}}"#)
}

fn clip(s: &str) -> String {
    let mut t: String = s.chars().take(160).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

// ---------------------------------------------------------------- scenarios

/// Closed loop: each pair ping-pongs one message; server CPU per delivery.
async fn cpu_scenario(args: &Args, server: &Server) -> Res<Metrics> {
    let t = server.target;
    let ids: Vec<String> = (0..args.pairs)
        .flat_map(|i| [format!("a{i}"), format!("b{i}")])
        .collect();
    let conns = connect_many(t, &server.addrs, &ids, 50).await?;
    let delivered = Arc::new(AtomicU64::new(0));
    let data = padded_data(r#""seq":1,"#, args.payload_bytes);
    let mut tasks = Vec::new();
    let mut it = conns.into_iter();
    for i in 0..args.pairs {
        let (a, b) = (it.next().ok_or("pair")?, it.next().ok_or("pair")?);
        for (ws, to, starts) in [(a, format!("b{i}"), true), (b, format!("a{i}"), false)] {
            let msg = Utf8Bytes::from(relay_text(t, &to, &data));
            let delivered = delivered.clone();
            tasks.push(tokio::spawn(ping_pong(t, ws, msg, starts, delivered)));
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    if args.callgrind {
        callgrind_control(server, "--instr=on").await?;
    }
    let (c0, n0, t0) = (server.cpu_secs()?, delivered.load(Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let (c1, n1, t1) = (server.cpu_secs()?, delivered.load(Relaxed), Instant::now());
    let instructions = if args.callgrind {
        let total = callgrind_total(server).await?;
        callgrind_control(server, "--instr=off").await?;
        Some(total)
    } else {
        None
    };
    let failed = first_failure(&mut tasks).await;
    for h in &tasks {
        h.abort();
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let secs = (t1 - t0).as_secs_f64();
    let msgs = (n1 - n0) as f64;
    if msgs == 0.0 {
        return Err("no message was delivered while measuring".into());
    }
    let cpu = c1 - c0;
    let mut m = Metrics::from([
        ("cpu_us_per_msg", cpu * 1e6 / msgs),
        ("msgs_per_s", msgs / secs),
        ("server_cpu_util", cpu / secs),
    ]);
    if let Some(ir) = instructions {
        // Messages sent while collection was on, ± the 500 in flight.
        m.insert("instr_per_msg", ir / msgs);
    }
    Ok(m)
}

async fn callgrind_control(server: &Server, what: &str) -> Res<()> {
    let pid = server.procs[0].pid.to_string();
    let ok = Command::new("callgrind_control")
        .args([what, &pid])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .map_err(|e| format!("callgrind_control: {e}"))?
        .success();
    if ok {
        Ok(())
    } else {
        Err(format!("callgrind_control {what} {pid} failed"))
    }
}

/// Dumps the server's counts and returns the instructions counted.
async fn callgrind_total(server: &Server) -> Res<f64> {
    callgrind_control(server, "--dump").await?;
    let prefix = format!("mpc-bench-callgrind.{}", server.procs[0].pid);
    let mut total = 0.0;
    for entry in std::fs::read_dir(std::env::temp_dir()).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with(&prefix) {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        eprintln!(
            "    callgrind dump (callgrind_annotate it): {}",
            path.display()
        );
        if let Some(v) = text.lines().find_map(|l| l.strip_prefix("summary: ")) {
            total += v
                .trim()
                .parse::<f64>()
                .map_err(|e| format!("{name}: {e}"))?;
        }
    }
    Ok(total)
}

async fn ping_pong(
    t: Target,
    mut ws: Ws,
    msg: Utf8Bytes,
    starts: bool,
    delivered: Arc<AtomicU64>,
) -> Res<()> {
    if starts {
        ws.send(Message::Text(msg.clone()))
            .await
            .map_err(|e| e.to_string())?;
    }
    loop {
        let text = timeout(RECV_TIMEOUT, next_text(&mut ws))
            .await
            .map_err(|_| format!("no reply in {RECV_TIMEOUT:?}"))??;
        expect_relay(t, &text)?;
        delivered.fetch_add(1, Relaxed);
        ws.send(Message::Text(msg.clone()))
            .await
            .map_err(|e| e.to_string())?;
    }
}

/// The error of the first task that ended (they only end by failing).
async fn first_failure(tasks: &mut [tokio::task::JoinHandle<Res<()>>]) -> Option<String> {
    for h in tasks.iter_mut() {
        if h.is_finished() {
            return Some(match h.await {
                Ok(Ok(())) => "a client task ended early".into(),
                Ok(Err(e)) => format!("client: {e}"),
                Err(e) => format!("client task: {e}"),
            });
        }
    }
    None
}

/// RSS per idle registered connection, and list_peers at that size.
async fn idle_scenario(args: &Args, server: &Server) -> Res<Metrics> {
    let t = server.target;
    // Warm-up: a few connections come and go so lazily built state exists.
    let warm: Vec<String> = (0..10).map(|i| format!("warm{i}")).collect();
    drop(connect_many(t, &server.addrs, &warm, 10).await?);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let base = server.rss_kib()?;

    let ids: Vec<String> = (0..args.idle_conns)
        .map(|i| format!("idle{i:05}"))
        .collect();
    let t0 = Instant::now();
    let mut conns = connect_many(t, &server.addrs, &ids, 100).await?;
    let connect_secs = t0.elapsed().as_secs_f64();
    let mut probe = conns.pop().ok_or("no connections")?;
    // Everyone else keeps reading (ours: pongs to the server's pings) and,
    // for PeerJS, sends the HEARTBEAT its client library sends every 5 s.
    let mut keepers = Vec::with_capacity(conns.len());
    for (i, ws) in conns.into_iter().enumerate() {
        keepers.push(tokio::spawn(keep_idle(t, ws, i)));
    }
    // Quiet: RSS stable within 0.5 % over 1 s, at least 3 s, at most 20 s.
    let mut last = server.rss_kib()?;
    let mut waited = 0;
    let rss = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        waited += 1;
        let now = server.rss_kib()?;
        let stable = now.abs_diff(last) * 200 <= now;
        last = now;
        if (waited >= 3 && stable) || waited >= 20 {
            break now;
        }
    };
    let per_conn_kib = (rss as f64 - base as f64) / args.idle_conns as f64;

    // list_peers with everyone registered.
    let mut rtts = Vec::new();
    let mut size = 0usize;
    for _ in 0..args.list_rounds.max(1) {
        let (rtt, bytes) = match t {
            Target::Ours | Target::Floor | Target::Cluster => list_ours(&mut probe).await?,
            Target::Peerjs => list_peerjs(server.addr()).await?,
        };
        rtts.push(rtt);
        size = bytes;
    }
    let failed = first_failure(&mut keepers).await;
    for h in &keepers {
        h.abort();
    }
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(Metrics::from([
        ("rss_base_mib", base as f64 / 1024.0),
        ("rss_loaded_mib", rss as f64 / 1024.0),
        ("rss_kib_per_conn", per_conn_kib),
        ("connect_10k_per_s", args.idle_conns as f64 / connect_secs),
        ("list_rtt_ms", median(&mut rtts) * 1e3),
        ("list_bytes", size as f64),
    ]))
}

async fn keep_idle(t: Target, ws: Ws, i: usize) -> Res<()> {
    let (mut sink, mut stream) = ws.split();
    let reader = async move {
        loop {
            next_text(&mut stream).await?;
        }
    };
    match t {
        Target::Ours | Target::Floor | Target::Cluster => reader.await,
        Target::Peerjs => {
            let beat = async move {
                // Spread the beats over the 5 s period.
                let phase = Duration::from_millis((i as u64 * 7919) % 5000);
                let mut tick = tokio::time::interval_at(
                    tokio::time::Instant::now() + phase,
                    Duration::from_secs(5),
                );
                loop {
                    tick.tick().await;
                    sink.send(Message::text(r#"{"type":"HEARTBEAT"}"#))
                        .await
                        .map_err(|e| format!("heartbeat: {e}"))?;
                }
            };
            tokio::select! { r = reader => r, r = beat => r }
        }
    }
}

/// One list_peers round trip over an open registered connection.
async fn list_ours(ws: &mut Ws) -> Res<(f64, usize)> {
    let t0 = Instant::now();
    ws.send(Message::text(r#"{"type":"list_peers"}"#))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let text = timeout(RECV_TIMEOUT, next_text(ws))
            .await
            .map_err(|_| "no peers reply".to_string())??;
        if text.starts_with(r#"{"type":"peers""#) {
            return Ok((t0.elapsed().as_secs_f64(), text.len()));
        }
    }
}

/// PeerJS has no list over the socket; its discovery API is
/// `GET /peerjs/peers` (allow_discovery). Timed with a fresh TCP connection.
async fn list_peerjs(addr: SocketAddr) -> Res<(f64, usize)> {
    let t0 = Instant::now();
    let work = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(b"GET /peerjs/peers HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(buf)
    };
    let buf = timeout(RECV_TIMEOUT, work)
        .await
        .map_err(|_| "GET /peerjs/peers timed out".to_string())??;
    let rtt = t0.elapsed().as_secs_f64();
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("bad HTTP reply")?;
    if !buf.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "GET /peerjs/peers: {}",
            clip(&String::from_utf8_lossy(&buf[..head_end]))
        ));
    }
    Ok((rtt, buf.len() - head_end - 4))
}

/// Open loop: a paced driver thread schedules sends at a fixed aggregate
/// rate; latency is measured from the intended send time.
async fn latency_scenario(args: &Args, server: &Server) -> Res<Metrics> {
    let t = server.target;
    let pairs = args.latency_pairs;
    let ids: Vec<String> = (0..pairs)
        .flat_map(|i| [format!("s{i}"), format!("r{i}")])
        .collect();
    let conns = connect_many(t, &server.addrs, &ids, 50).await?;
    let base = Instant::now();
    let warm_ns = (args.warmup * 1e9) as u64;
    let total = ((args.warmup + args.duration) * args.rate) as u64;
    let from_intended = Arc::new(Mutex::new(Vec::<u64>::new()));
    let from_sent = Arc::new(Mutex::new(Vec::<u64>::new()));
    let received = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::with_capacity(pairs);
    let mut tasks = Vec::new();
    let mut it = conns.into_iter();
    for i in 0..pairs {
        let (s, r) = (it.next().ok_or("pair")?, it.next().ok_or("pair")?);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        senders.push(tx);
        tasks.push(tokio::spawn(paced_sender(
            t,
            s,
            format!("r{i}"),
            args.payload_bytes,
            base,
            rx,
        )));
        tasks.push(tokio::spawn(latency_receiver(
            t,
            r,
            base,
            warm_ns,
            from_intended.clone(),
            from_sent.clone(),
            received.clone(),
        )));
    }
    let period_ns = 1e9 / args.rate;
    let driver = std::thread::spawn(move || {
        let mut measured = 0u64;
        let mut max_lag_ns = 0u64;
        for k in 0..total {
            let due = (k as f64 * period_ns) as u64;
            let now = base.elapsed().as_nanos() as u64;
            if due > now {
                std::thread::sleep(Duration::from_nanos(due - now));
            } else if due >= warm_ns {
                max_lag_ns = max_lag_ns.max(now - due);
            }
            if senders[k as usize % senders.len()].send(due).is_err() {
                break;
            }
            if due >= warm_ns {
                measured += 1;
            }
        }
        (measured, max_lag_ns)
    });
    let deadline = Instant::now() + Duration::from_secs_f64(args.warmup + args.duration + 30.0);
    while !driver.is_finished() {
        if Instant::now() > deadline {
            return Err("the send driver did not finish".into());
        }
        if let Some(e) = first_failure(&mut tasks).await {
            return Err(e);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (expected, max_lag_ns) = driver.join().map_err(|_| "driver thread panicked")?;
    // Grace for the last messages in flight.
    let grace = Instant::now() + Duration::from_secs(3);
    while received.load(Relaxed) < expected && Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failed = first_failure(&mut tasks).await;
    for h in &tasks {
        h.abort();
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let mut lat = std::mem::take(&mut *from_intended.lock().map_err(|_| "lock")?);
    let mut svc = std::mem::take(&mut *from_sent.lock().map_err(|_| "lock")?);
    if lat.is_empty() {
        return Err("no message arrived while measuring".into());
    }
    lat.sort_unstable();
    svc.sort_unstable();
    let ms = |v: &[u64], q: f64| pct(v, q) as f64 / 1e6;
    Ok(Metrics::from([
        ("lat_p50_ms", ms(&lat, 0.50)),
        ("lat_p99_ms", ms(&lat, 0.99)),
        ("lat_p999_ms", ms(&lat, 0.999)),
        ("lat_max_ms", ms(&lat, 1.0)),
        ("lat_from_send_p50_ms", ms(&svc, 0.50)),
        ("lat_from_send_p99_ms", ms(&svc, 0.99)),
        ("lat_lost", expected.saturating_sub(lat.len() as u64) as f64),
        ("lat_received_per_s", lat.len() as f64 / args.duration),
        ("driver_max_lag_ms", max_lag_ns as f64 / 1e6),
    ]))
}

async fn paced_sender(
    t: Target,
    ws: Ws,
    to: String,
    payload_bytes: usize,
    base: Instant,
    mut due: tokio::sync::mpsc::UnboundedReceiver<u64>,
) -> Res<()> {
    let (mut sink, mut stream) = ws.split();
    // Drain whatever the server sends this connection (pings get answered).
    let drain = async move {
        loop {
            next_text(&mut stream).await?;
        }
    };
    let send = async move {
        while let Some(intended) = due.recv().await {
            let sent = base.elapsed().as_nanos() as u64;
            let data = padded_data(&format!(r#""i":{intended},"s":{sent},"#), payload_bytes);
            sink.send(Message::text(relay_text(t, &to, &data)))
                .await
                .map_err(|e| format!("send: {e}"))?;
        }
        // The driver is done; keep the connection (and the drain) alive
        // until the scenario aborts this task.
        std::future::pending::<Res<()>>().await
    };
    tokio::select! { r = drain => r, r = send => r }
}

async fn latency_receiver(
    t: Target,
    ws: Ws,
    base: Instant,
    warm_ns: u64,
    from_intended: Arc<Mutex<Vec<u64>>>,
    from_sent: Arc<Mutex<Vec<u64>>>,
    received: Arc<AtomicU64>,
) -> Res<()> {
    let mut ws = ws;
    loop {
        let text = next_text(&mut ws).await?;
        let now = base.elapsed().as_nanos() as u64;
        expect_relay(t, &text)?;
        let intended = field_u64(&text, r#""i":"#).ok_or("no \"i\" in payload")?;
        let sent = field_u64(&text, r#""s":"#).ok_or("no \"s\" in payload")?;
        if intended >= warm_ns {
            from_intended
                .lock()
                .map_err(|_| "lock")?
                .push(now.saturating_sub(intended));
            from_sent
                .lock()
                .map_err(|_| "lock")?
                .push(now.saturating_sub(sent));
            received.fetch_add(1, Relaxed);
        }
    }
}

fn field_u64(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Connections per second: TCP + upgrade + register + reply, bounded concurrency.
async fn connect_scenario(args: &Args, server: &Server) -> Res<Metrics> {
    let t = server.target;
    let ids: Vec<String> = (0..args.connect_count)
        .map(|i| format!("c{i:05}"))
        .collect();
    let c0 = server.cpu_secs()?;
    let t0 = Instant::now();
    let conns = connect_many(t, &server.addrs, &ids, args.connect_concurrency).await?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = server.cpu_secs()? - c0;
    drop(conns);
    Ok(Metrics::from([
        ("connects_per_s", args.connect_count as f64 / secs),
        ("cpu_us_per_connect", cpu * 1e6 / args.connect_count as f64),
    ]))
}

// ---------------------------------------------------------------- summary

fn pct(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median over repetitions of every metric of a target, with all values.
fn med(samples: &[Sample], target: Target, metric: &str) -> Option<(f64, Vec<f64>)> {
    let mut v: Vec<f64> = samples
        .iter()
        .filter(|s| s.target == target)
        .filter_map(|s| s.metrics.get(metric).copied())
        .collect();
    if v.is_empty() {
        return None;
    }
    let all = v.clone();
    Some((median(&mut v), all))
}

fn summarize(args: &Args, samples: &[Sample]) -> Value {
    let mut names: Vec<&'static str> = samples
        .iter()
        .flat_map(|s| s.metrics.keys().copied())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut out = serde_json::Map::new();
    for name in names {
        let mut entry = serde_json::Map::new();
        for &t in &args.targets {
            if let Some((m, all)) = med(samples, t, name) {
                entry.insert(t.name().into(), json!({ "median": m, "reps": all }));
            }
        }
        out.insert(name.into(), Value::Object(entry));
    }
    Value::Object(out)
}

fn print_table(args: &Args, samples: &[Sample]) {
    let get = |t: Target, m: &str| med(samples, t, m).map(|(v, _)| v);
    let cell =
        |t: Target, m: &str, f: &dyn Fn(f64) -> String| get(t, m).map(f).unwrap_or("—".into());
    // Ratio as "how many times better mpc-signal is": PeerJS/ours for costs,
    // ours/PeerJS for rates.
    let ratio = |m: &str, cost: bool| match (get(Target::Ours, m), get(Target::Peerjs, m)) {
        (Some(o), Some(p)) if o > 0.0 && p > 0.0 => {
            format!("{:.1}×", if cost { p / o } else { o / p })
        }
        _ => "—".into(),
    };
    let lat = |t: Target| match (get(t, "lat_p50_ms"), get(t, "lat_p99_ms")) {
        (Some(a), Some(b)) => format!("{a:.2} / {b:.2} ms"),
        _ => "—".into(),
    };
    let list = |t: Target| match (get(t, "list_rtt_ms"), get(t, "list_bytes")) {
        (Some(a), Some(b)) => format!("{a:.2} ms ({:.0} KB)", b / 1000.0),
        _ => "—".into(),
    };
    let (o, p) = (Target::Ours, Target::Peerjs);
    println!(
        "medians of {} repetitions; ratio = how many times better mpc-signal is",
        args.reps
    );
    println!();
    println!("| measure | target | mpc-signal | PeerJS 1.0.2 | ratio |");
    println!("|---|---|---|---|---|");
    println!(
        "| server CPU per relayed {}-byte message ({} conns, {} pairs, closed loop, {} worker thread) | ≤ 5 µs | {} | {} | {} |",
        args.payload_bytes,
        args.pairs * 2,
        args.pairs,
        args.server_threads,
        cell(o, "cpu_us_per_msg", &|v| format!("{v:.2} µs")),
        cell(p, "cpu_us_per_msg", &|v| format!("{v:.2} µs")),
        ratio("cpu_us_per_msg", true)
    );
    println!(
        "| RSS per idle registered connection at {}k | ≤ 5 KB | {} | {} | {} |",
        args.idle_conns / 1000,
        cell(o, "rss_kib_per_conn", &|v| format!("{v:.2} KiB")),
        cell(p, "rss_kib_per_conn", &|v| format!("{v:.2} KiB")),
        ratio("rss_kib_per_conn", true)
    );
    println!(
        "| p50 / p99 latency at {}k msg/s open loop | p99 ≤ 2 ms | {} | {} | {} (p99) |",
        args.rate / 1000.0,
        lat(o),
        lat(p),
        ratio("lat_p99_ms", true)
    );
    println!(
        "| connect rate (conn+register /s) | — | {} | {} | {} |",
        cell(o, "connects_per_s", &|v| format!("{v:.0}/s")),
        cell(p, "connects_per_s", &|v| format!("{v:.0}/s")),
        ratio("connects_per_s", false)
    );
    println!(
        "| list_peers round trip with {}k registered | — | {} | {} | |",
        args.idle_conns / 1000,
        list(o),
        list(p)
    );
    println!();
    println!("all medians:");
    println!();
    println!(
        "| metric | mpc-signal | PeerJS 1.0.2 | floor (bare epoll relay) | cluster (2 instances + Redis) |"
    );
    println!("|---|---|---|---|---|");
    let mut names: Vec<&'static str> = samples
        .iter()
        .flat_map(|s| s.metrics.keys().copied())
        .collect();
    names.sort_unstable();
    names.dedup();
    for n in names {
        let f = |t: Target| match med(samples, t, n) {
            Some((m, all)) => format!(
                "{} [{}]",
                num(m),
                all.iter().map(|&v| num(v)).collect::<Vec<_>>().join(", ")
            ),
            None => "—".into(),
        };
        println!(
            "| {n} | {} | {} | {} | {} |",
            f(o),
            f(p),
            f(Target::Floor),
            f(Target::Cluster)
        );
    }
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn fmt_metrics(m: &Metrics) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={}", num(*v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn cpu_model() -> String {
    read_trim("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_requested_size_and_fields() {
        let d = padded_data(r#""i":123,"s":456,"#, 200);
        assert_eq!(d.len(), 200);
        let v: Value = serde_json::from_str(&d).unwrap();
        assert_eq!(v["i"], 123);
        assert_eq!(field_u64(&d, r#""s":"#), Some(456));
    }

    #[test]
    fn relay_texts_are_json_in_each_protocol() {
        let d = padded_data("", 50);
        let ours: Value = serde_json::from_str(&relay_text(Target::Ours, "p2", &d)).unwrap();
        assert_eq!(ours["type"], "relay");
        assert_eq!(ours["to"], "p2");
        let pj: Value = serde_json::from_str(&relay_text(Target::Peerjs, "p2", &d)).unwrap();
        assert_eq!(pj["type"], "OFFER");
        assert_eq!(pj["dst"], "p2");
    }

    #[test]
    fn percentiles_and_medians() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(pct(&v, 0.5), 500);
        assert_eq!(pct(&v, 0.99), 990);
        assert_eq!(pct(&v, 1.0), 1000);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
