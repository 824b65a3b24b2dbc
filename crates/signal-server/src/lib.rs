//! `mpc-signal`: the signaling server of mpc-wallet.
//!
//! It registers peer ids, lists them, and relays opaque `data` between them
//! over WebSocket, exactly as the user's protocol document describes. It
//! keeps no session state: nodes negotiate sessions among themselves.
//!
//! Authenticated registration: every connection first receives a
//! `challenge`; a `register` may carry an identity `pubkey` and a
//! `signature` over that challenge and the peer id. With
//! [`Config::require_auth`] only signed registrations are accepted. A peer
//! id registered with a key stays bound to it for [`Config::key_binding`]
//! after its holder leaves, so another key cannot take the id over.
//!
//! Modules: [`config`] (operator limits), [`registry`] (who is online),
//! [`cluster`] (the Redis backend shared by several instances),
//! [`connection`] (one WebSocket's life), [`rate_limit`], [`metrics`].
//!
//! Embedding it (the `demo` and the tests do):
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let server = mpc_signal::SignalServer::bind("127.0.0.1:0".parse().unwrap(), Default::default()).await?;
//! println!("nodes connect to {}", server.ws_url());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

pub mod cluster;
pub mod config;
pub mod connection;
pub mod metrics;
pub mod outbox;
pub mod rate_limit;
pub mod registry;

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use cluster::{Cluster, ClusterConfig};
pub use config::Config;
use metrics::{ErrorKind, Metrics};
use registry::Registry;

/// Shared by every connection.
pub struct AppState {
    pub config: Config,
    /// This instance's connections (in a cluster), or every registration.
    pub registry: Registry,
    /// The shared registry, when this instance is one of a cluster.
    pub cluster: Option<Arc<Cluster>>,
    pub metrics: Metrics,
    /// Connections and new key bindings per source address.
    pub per_source: rate_limit::PerSource,
    /// Cancelled once at shutdown; every connection's kick token is a child.
    pub shutdown: CancellationToken,
    connections: TaskTracker,
    next_conn: AtomicU64,
}

impl AppState {
    /// The state of a server with the in-memory registry only
    /// (`config.cluster` is ignored; see [`AppState::start`]).
    pub fn new(config: Config) -> Self {
        AppState {
            registry: Registry::new(config.key_binding, config.max_key_bindings),
            cluster: None,
            per_source: rate_limit::PerSource::new(
                config.max_connections_per_ip,
                config.new_bindings_per_ip_per_min,
            ),
            config,
            metrics: Metrics::default(),
            shutdown: CancellationToken::new(),
            connections: TaskTracker::new(),
            next_conn: AtomicU64::new(1),
        }
    }
}

impl AppState {
    /// The state for `config`: with `config.cluster`, connects to Redis,
    /// joins the cluster and starts its background work (which ends at
    /// shutdown).
    pub async fn start(config: Config) -> Result<Arc<Self>, cluster::Unavailable> {
        let Some(cc) = config.cluster.clone() else {
            return Ok(Arc::new(AppState::new(config)));
        };
        let cluster =
            Arc::new(Cluster::connect(cc, config.key_binding, config.max_key_bindings).await?);
        tracing::info!(instance = cluster.instance(), "joined the cluster");
        let mut state = AppState::new(config);
        // Bindings live in Redis, which counts them against the cap;
        // locally only the held ones, briefly.
        state.registry = Registry::new(Duration::ZERO, usize::MAX);
        state.cluster = Some(cluster.clone());
        let state = Arc::new(state);
        tokio::spawn(cluster::run(state.clone(), cluster));
        Ok(state)
    }
}

/// The HTTP routes: `/ws`, `/healthz`, `/metrics`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ws", get(ws_handler))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_handler))
        .with_state(state)
}

/// 200 `ok`; 503 while a cluster instance has lost Redis, so a load
/// balancer sends new clients elsewhere.
async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    match &state.cluster {
        Some(c) if !c.healthy() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "shared registry (Redis) unreachable\n",
        )
            .into_response(),
        _ => "ok".into_response(),
    }
}

async fn metrics_handler(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(
            state.registry.len(),
            state.registry.key_bindings(),
            state.cluster.as_ref().map(|c| c.healthy()),
        ),
    )
}

/// Holds one connection slot, counted for its source address too; frees
/// both on drop (also if the upgrade fails).
struct Slot(Arc<AppState>, IpAddr);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.metrics.connections_open.fetch_sub(1, Relaxed);
        self.0.per_source.close(self.1);
    }
}

/// Why no slot was free.
enum NoSlot {
    /// `max_connections` are open.
    Full,
    /// `max_connections_per_ip` are open from this source.
    SourceFull,
}

impl AppState {
    fn take_slot(self: &Arc<Self>, source: IpAddr) -> Result<Slot, NoSlot> {
        if !self.per_source.open(source) {
            return Err(NoSlot::SourceFull);
        }
        let max = self.config.max_connections as u64;
        if self
            .metrics
            .connections_open
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .is_err()
        {
            self.per_source.close(source);
            return Err(NoSlot::Full);
        }
        Ok(Slot(self.clone(), source))
    }
}

async fn ws_handler(
    State(state): State<Arc<AppState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Browsers always send Origin; CLI nodes send none and are allowed.
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = &state.config.allowed_origins;
        if !allowed.is_empty() && !allowed.iter().any(|a| a.as_bytes() == origin.as_bytes()) {
            state.metrics.error(ErrorKind::OriginRejected);
            return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
        }
    }
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let slot = match state.take_slot(rate_limit::source_of(remote.ip())) {
        Ok(slot) => slot,
        Err(NoSlot::Full) => {
            state.metrics.error(ErrorKind::ConnectionLimit);
            return (StatusCode::SERVICE_UNAVAILABLE, "too many connections\n").into_response();
        }
        Err(NoSlot::SourceFull) => {
            state.metrics.error(ErrorKind::SourceConnectionLimit);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "too many connections from this address\n",
            )
                .into_response();
        }
    };
    state.metrics.connections_total.fetch_add(1, Relaxed);
    let id = state.next_conn.fetch_add(1, Relaxed);
    let token = state.connections.token();
    let max = state.config.max_message_bytes;
    // tungstenite allocates and zeroes the whole read buffer up front: 1 KiB
    // holds a typical relay and saves 3 KiB per idle connection over 4 KiB
    // (bench/, BENCHMARKS.md); larger messages just take more reads.
    // What a client's signed register must name (review finding 16).
    let host: Option<Box<str>> = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.to_ascii_lowercase().into_boxed_str());
    // Frames are buffered until the connection's task flushes, so frames
    // queued together leave in one write (connection::send_queued); the
    // buffer grows only while frames wait.
    ws.read_buffer_size(1024)
        .write_buffer_size(WRITE_BATCH_BYTES)
        .max_write_buffer_size(4 * max + 64 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| connection::run(socket, state, remote, host, id, (slot, token)))
}

/// Bytes of frames tungstenite holds before it writes them even unflushed.
const WRITE_BATCH_BYTES: usize = 32 * 1024;

/// Serves until `shutdown` completes, then closes every WebSocket with 1001
/// and waits (at most 4 s) for them to finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let token = state.shutdown.clone();
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    // Relayed messages are small and latency-bound: without TCP_NODELAY a
    // second frame written before the first is ACKed waits for the ACK
    // (Nagle), which the client may delay by up to 40 ms.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            token.cancel();
        })
        .await?;
    state.connections.close();
    let _ = tokio::time::timeout(Duration::from_secs(4), state.connections.wait()).await;
    if let Some(cluster) = &state.cluster {
        cluster.leave().await;
    }
    Ok(())
}

/// A server running in this process, e.g. the demo's embedded server.
pub struct SignalServer {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: CancellationToken,
    task: JoinHandle<io::Result<()>>,
}

impl SignalServer {
    /// Binds `addr` (port 0 picks a free port) and starts serving; with
    /// `config.cluster`, as one instance of that cluster.
    pub async fn bind(addr: SocketAddr, config: Config) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = AppState::start(config).await.map_err(io::Error::other)?;
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(serve(listener, state.clone(), async move {
            stopped.cancelled().await
        }));
        Ok(SignalServer {
            addr,
            state,
            stop,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT/ws`
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Stops accepting, closes every connection, and waits for the server.
    pub async fn shutdown(self) -> io::Result<()> {
        self.stop.cancel();
        self.task.await.map_err(io::Error::other)?
    }
}
