//! The servers under test: starting them as child processes on loopback,
//! reading their CPU time and memory from /proc, and stopping them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

use crate::args::{Args, Target};
use crate::Res;

/// The server under test: one child process on 127.0.0.1, or for
/// `cluster` two mpc-signal instances and the redis-server they share.
pub struct Server {
    pub target: Target,
    /// Every process whose CPU time and memory count.
    procs: Vec<Proc>,
    /// Where clients connect: connection `i` goes to `addrs[i % len]`.
    pub addrs: Vec<SocketAddr>,
    pub log: PathBuf,
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

    /// Reads stdout to its end, for a server that prints no address.
    fn drain_stdout(&mut self) {
        if let Some(stdout) = self.child.stdout.take() {
            let mut lines = BufReader::new(stdout).lines();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        }
    }
}

fn matchbox_bin(args: &Args) -> PathBuf {
    if let Some(p) = &args.matchbox_bin {
        return p.clone();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let installed = home.join(".cargo/bin/matchbox_server");
    if installed.exists() {
        installed
    } else {
        PathBuf::from("matchbox_server")
    }
}

impl Server {
    pub async fn spawn(args: &Args, target: Target) -> Res<Server> {
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
            Target::Matchbox => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map_err(|e| format!("a free port: {e}"))?
                    .port();
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let mut c = Command::new(matchbox_bin(args));
                c.arg(addr.to_string())
                    // #[tokio::main] reads it: as many workers as ours has.
                    .env("TOKIO_WORKER_THREADS", args.server_threads.to_string())
                    .env("RUST_LOG", &args.server_log);
                let mut p = Proc::spawn(c, &log).map_err(|e| {
                    format!("{e} (cargo install matchbox_server@0.15.0, or --matchbox-bin)")
                })?;
                p.drain_stdout();
                let t0 = Instant::now();
                while tokio::net::TcpStream::connect(addr).await.is_err() {
                    if t0.elapsed() > Duration::from_secs(10) {
                        return Err(format!("matchbox_server did not listen on {addr} in 10 s"));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                server.addrs.push(addr);
                server.procs.push(p);
            }
        }
        Ok(server)
    }

    /// The first instance's address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The first process: the mpc-signal that `--callgrind` runs under valgrind.
    pub fn pid(&self) -> u32 {
        self.procs[0].pid
    }

    /// utime + stime of every process (all threads), seconds.
    pub fn cpu_secs(&self) -> Res<f64> {
        let mut total = 0.0;
        for p in &self.procs {
            total += proc_cpu_secs(p.pid)?;
        }
        Ok(total)
    }

    /// VmRSS of every process, KiB.
    pub fn rss_kib(&self) -> Res<u64> {
        let mut total = 0;
        for p in &self.procs {
            total += proc_rss_kib(p.pid)?;
        }
        Ok(total)
    }

    pub fn check_alive(&mut self) -> Res<()> {
        for p in &mut self.procs {
            match p.child.try_wait() {
                Ok(None) => {}
                Ok(Some(st)) => return Err(format!("server exited: {st}")),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }

    pub async fn stop(mut self) {
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
