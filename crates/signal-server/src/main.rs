//! `mpc-signal`: run the signaling server.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use mpc_protocol::IceServer;
use mpc_signal::{AppState, Config};

/// The mpc-wallet signaling server: register (optionally signed), list_peers, relay.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "MPC_SIGNAL_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Largest accepted message in bytes; larger closes with code 1009.
    #[arg(long, env = "MPC_SIGNAL_MAX_MESSAGE_BYTES", default_value_t = 65536)]
    max_message_bytes: usize,
    /// Sustained messages per second per connection (0 turns it off).
    #[arg(long, env = "MPC_SIGNAL_RATE_LIMIT_PER_SEC", default_value_t = 100)]
    rate_limit_per_sec: u32,
    /// Messages a connection may send in a burst.
    #[arg(long, env = "MPC_SIGNAL_RATE_LIMIT_BURST", default_value_t = 400)]
    rate_limit_burst: u32,
    /// Open connections; past it, new ones get HTTP 503.
    #[arg(long, env = "MPC_SIGNAL_MAX_CONNECTIONS", default_value_t = 20000)]
    max_connections: usize,
    /// Drop a client silent (not even a pong) for this many seconds.
    #[arg(long, env = "MPC_SIGNAL_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    idle_timeout_secs: u64,
    /// Allowed browser Origin (repeatable; comma-separated in the env var).
    /// Without any, every origin is allowed.
    #[arg(long, env = "MPC_SIGNAL_ALLOWED_ORIGIN", value_delimiter = ',')]
    allowed_origin: Vec<String>,
    /// STUN/TURN server for nodes: stun:host:port or
    /// turn:user:pass@host:port (repeatable; comma-separated in the env var).
    #[arg(long, env = "MPC_SIGNAL_ICE_SERVER", value_delimiter = ',', value_parser = IceServer::parse_url)]
    ice_server: Vec<IceServer>,
    /// Accept only signed registrations (register with pubkey and a
    /// signature over the connection's challenge). Env: 1/0, true/false.
    #[arg(long, env = "MPC_SIGNAL_REQUIRE_AUTH", value_parser = clap::builder::BoolishValueParser::new())]
    require_auth: bool,
    /// A host (with port, as clients write it in the URL) that signed
    /// registrations may name; repeatable. Default: the request's Host.
    #[arg(
        long = "public-host",
        env = "MPC_SIGNAL_PUBLIC_HOST",
        value_delimiter = ','
    )]
    public_host: Vec<String>,
    /// Also accept signed registrations that do not name this server
    /// (older clients). Such a signature can be replayed from another
    /// server. Env: 1/0, true/false.
    #[arg(long, env = "MPC_SIGNAL_ACCEPT_UNBOUND_REGISTER", value_parser = clap::builder::BoolishValueParser::new())]
    accept_unbound_register: bool,
    /// Seconds a peer id registered with an identity key stays bound to
    /// that key after its holder disconnects (0: only while connected).
    #[arg(long, env = "MPC_SIGNAL_KEY_BINDING_SECS", default_value_t = 86400)]
    key_binding_secs: u64,
    /// Key bindings kept at most (held and released); when full, a signed
    /// register that would bind a new id is refused (none is dropped early).
    #[arg(long, env = "MPC_SIGNAL_MAX_KEY_BINDINGS", default_value_t = 100000)]
    max_key_bindings: usize,
    /// New key bindings one source address (IPv4 address or IPv6 /64) may
    /// make a minute (0: no limit).
    #[arg(
        long,
        env = "MPC_SIGNAL_NEW_BINDINGS_PER_IP_PER_MIN",
        default_value_t = 10
    )]
    new_bindings_per_ip_per_min: u32,
    /// Open connections from one source address (IPv4 address or IPv6
    /// /64); past it, HTTP 429 (0: no limit).
    #[arg(long, env = "MPC_SIGNAL_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    max_connections_per_ip: usize,
    /// Close a connection that has not registered within this many seconds.
    #[arg(long, env = "MPC_SIGNAL_REGISTER_TIMEOUT_SECS", default_value_t = 10.0)]
    register_timeout_secs: f64,
    /// Bytes of messages queued for one slow reader; a relay past it is
    /// dropped and its sender told the recipient is busy.
    #[arg(long, env = "MPC_SIGNAL_OUTBOX_BYTES", default_value_t = 262144)]
    outbox_bytes: usize,
    /// Drop a client whose socket takes nothing (it reads nothing) for
    /// this many seconds.
    #[arg(long, env = "MPC_SIGNAL_STALL_TIMEOUT_SECS", default_value_t = 20.0)]
    stall_timeout_secs: f64,
    /// Serve as one of several instances sharing this Redis
    /// (redis://host:port/db or unix:///path/redis.sock); without it, the
    /// in-memory registry of this process alone.
    // hide_env_values: `--help` must not print a password in the URL.
    #[arg(long, env = "MPC_SIGNAL_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Prefix of every Redis key and channel (several clusters may share
    /// one Redis).
    #[arg(long, env = "MPC_SIGNAL_REDIS_PREFIX", default_value = "mpc-signal")]
    redis_prefix: String,
    /// An instance that has not renewed its heartbeat in Redis for this
    /// many seconds is dead, and its peer ids are freed.
    #[arg(long, env = "MPC_SIGNAL_INSTANCE_TTL_SECS", default_value_t = 10.0)]
    instance_ttl_secs: f64,
    /// Tokio worker threads (0: one per core).
    #[arg(long, env = "MPC_SIGNAL_THREADS", default_value_t = 0)]
    threads: usize,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if args.threads > 0 {
        rt.worker_threads(args.threads);
    }
    match rt.enable_all().build() {
        Ok(rt) => rt.block_on(run(args)),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // 512: a `peers` page then always holds at least one peer.
    if args.idle_timeout_secs == 0 || args.max_message_bytes < 512 {
        eprintln!("error: --idle-timeout-secs must be > 0 and --max-message-bytes >= 512");
        return std::process::ExitCode::from(2);
    }
    let secs = |v: f64| {
        (0.1..=86_400.0)
            .contains(&v)
            .then(|| Duration::from_secs_f64(v))
    };
    let (Some(register_timeout), Some(stall_timeout)) = (
        secs(args.register_timeout_secs),
        secs(args.stall_timeout_secs),
    ) else {
        eprintln!(
            "error: --register-timeout-secs and --stall-timeout-secs must be between 0.1 and 86400"
        );
        return std::process::ExitCode::from(2);
    };
    if !(args.instance_ttl_secs >= 0.2 && args.instance_ttl_secs <= 3600.0) {
        eprintln!("error: --instance-ttl-secs must be between 0.2 and 3600");
        return std::process::ExitCode::from(2);
    }
    let cluster = args.redis_url.map(|url| mpc_signal::ClusterConfig {
        url,
        prefix: args.redis_prefix,
        instance_ttl: Duration::from_secs_f64(args.instance_ttl_secs),
    });
    let config = Config {
        max_message_bytes: args.max_message_bytes,
        rate_limit_per_sec: args.rate_limit_per_sec,
        rate_limit_burst: args.rate_limit_burst,
        max_connections: args.max_connections,
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        allowed_origins: args.allowed_origin,
        ice_servers: args.ice_server,
        require_auth: args.require_auth,
        public_hosts: args.public_host,
        accept_unbound_register: args.accept_unbound_register,
        key_binding: Duration::from_secs(args.key_binding_secs),
        max_key_bindings: args.max_key_bindings,
        new_bindings_per_ip_per_min: args.new_bindings_per_ip_per_min,
        max_connections_per_ip: args.max_connections_per_ip,
        register_timeout,
        outbox_bytes: args.outbox_bytes,
        stall_timeout,
        cluster,
        ..Config::default()
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    // Joined the cluster (if any) before saying we listen.
    let state = match AppState::start(config).await {
        Ok(state) => state,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().expect("bound socket has an address");
    println!("listening on {addr}");
    let _ = std::io::stdout().flush();

    tracing::info!(
        require_auth = state.config.require_auth,
        key_binding_secs = args.key_binding_secs,
        cluster = state.cluster.as_ref().map(|c| c.instance()).unwrap_or("-"),
        "registration policy"
    );
    match mpc_signal::serve(listener, state, shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("shut down cleanly");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutdown signal received");
}
