//! One WebSocket connection: sends the challenge, reads client messages,
//! answers them, drains the connection's outbox, pings, and enforces the
//! per-connection limits.
//!
//! Everything for a connection runs in one task, so an idle connection
//! costs one task, one small outbox and the socket's buffers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use mpc_identity::{statement, PublicKey};
use mpc_protocol::{validate_peer_id, ClientMessage, ParseError, ServerMessage};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use std::sync::atomic::Ordering::Relaxed;

use crate::metrics::{ErrorKind, Metrics};
use crate::rate_limit::TokenBucket;
use crate::registry::{push_text, ConnId, Delivery, Handle, Refusal};
use crate::AppState;

/// WebSocket close codes (RFC 6455 §7.4.1).
mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const INTERNAL: u16 = 1011;
}

/// Why a connection ended; logged and, where it is the server's choice,
/// sent as the close frame.
enum End {
    ClientClosed,
    Shutdown,
    Kicked,
    /// This instance lost its place in the cluster (Redis).
    RegistryLost,
    Idle,
    /// The client read nothing for the stall timeout.
    Stalled,
    /// The client did not register in time.
    RegisterTimeout,
    TooBig,
    RateLimited,
    NoRandomness,
    SocketError(String),
}

/// Per-connection state that outlives a single message.
struct Conn {
    id: ConnId,
    /// This connection's challenge: a signed `register` signs it.
    nonce: [u8; 32],
    peer_id: Option<Box<str>>,
    /// Where it connects from, as the per-source limits count it.
    source: std::net::IpAddr,
    /// The `Host` it asked for: the server a signed `register` must name.
    host: Option<Box<str>>,
    bucket: TokenBucket,
    strikes: u32,
    outbox: crate::outbox::Sender,
    kick: CancellationToken,
    /// The cluster's reset count when this connection registered.
    resets: u64,
}

/// Runs a connection to its end. `_permit` holds a connection slot and a
/// shutdown-tracker token until this returns.
pub async fn run<P: Send>(
    mut socket: WebSocket,
    state: Arc<AppState>,
    remote: SocketAddr,
    host: Option<Box<str>>,
    id: ConnId,
    _permit: P,
) {
    let cfg = &state.config;
    let (tx, mut rx) = crate::outbox::channel(cfg.effective_outbox_bytes());
    let kick = state.shutdown.child_token();
    let mut nonce = [0u8; 32];
    let rng = getrandom::getrandom(&mut nonce);
    let mut conn = Conn {
        id,
        nonce,
        peer_id: None,
        source: crate::rate_limit::source_of(remote.ip()),
        host,
        bucket: TokenBucket::new(cfg.rate_limit_per_sec, cfg.rate_limit_burst, Instant::now()),
        strikes: 0,
        outbox: tx,
        kick: kick.clone(),
        resets: 0,
    };
    info!(conn = id, %remote, "connected");

    let ping_every = cfg.effective_ping_interval();
    let stall = cfg.stall_timeout;
    let mut last_heard = tokio::time::Instant::now();
    let register_by = last_heard + cfg.register_timeout;
    let mut next_ping = last_heard + ping_every;
    // The earliest of: the next ping, the idle deadline and, until it
    // registers, the registration deadline.
    let wake =
        |next_ping: tokio::time::Instant, last_heard: tokio::time::Instant, registered: bool| {
            let at = std::cmp::min(next_ping, last_heard + cfg.idle_timeout);
            if registered {
                at
            } else {
                at.min(register_by)
            }
        };
    let timer = tokio::time::sleep_until(wake(next_ping, last_heard, false));
    tokio::pin!(timer);

    // The challenge is the connection's first frame, before any answer.
    let challenge = push_text(&ServerMessage::Challenge {
        nonce: hex::encode(conn.nonce),
    });
    let first = match rng {
        Err(e) => {
            error!(conn = id, "no randomness for the challenge: {e}");
            Err(End::NoRandomness)
        }
        Ok(()) => send(&mut socket, &kick, stall, Message::Text(challenge)).await,
    };

    // One waiter for the connection's life: a fresh `cancelled()` per loop
    // turn would lock the token's tree twice per message.
    let kicked = kick.cancelled();
    tokio::pin!(kicked);
    let end = if let Err(end) = first {
        end
    } else {
        loop {
            tokio::select! {
                biased;
                _ = &mut kicked => break End::Kicked,
                _ = &mut timer => {
                    let now = tokio::time::Instant::now();
                    if now >= last_heard + cfg.idle_timeout {
                        state.metrics.error(ErrorKind::IdleTimeout);
                        break End::Idle;
                    }
                    if conn.peer_id.is_none() && now >= register_by {
                        state.metrics.error(ErrorKind::RegisterTimeout);
                        break End::RegisterTimeout;
                    }
                    if now >= next_ping {
                        if let Err(e) = send(&mut socket, &kick, stall, Message::Ping(Default::default())).await {
                            break e;
                        }
                        next_ping = now + ping_every;
                    }
                    timer.as_mut().reset(wake(next_ping, last_heard, conn.peer_id.is_some()));
                }
                text = rx.recv() => {
                    if let Err(e) = send_queued(&mut socket, &kick, stall, text, &mut rx).await {
                        break e;
                    }
                }
                incoming = socket.recv() => {
                    last_heard = tokio::time::Instant::now();
                    let msg = match incoming {
                        None => break End::ClientClosed,
                        Some(Ok(msg)) => msg,
                        Some(Err(e)) => break classify(e),
                    };
                    let reply = match msg {
                        Message::Text(text) => handle_text(&state, &mut conn, &text).await,
                        Message::Binary(_) => {
                            state.metrics.error(ErrorKind::BinaryFrame);
                            Reply::Send(err_text("binary frames are not supported; send JSON text frames"))
                        }
                        Message::Ping(_) | Message::Pong(_) => Reply::None,
                        Message::Close(_) => break End::ClientClosed,
                    };
                    match reply {
                        Reply::None => {}
                        Reply::Send(text) => {
                            if let Err(e) = send(&mut socket, &kick, stall, Message::Text(text)).await {
                                break e;
                            }
                        }
                        Reply::Close(end) => break end,
                    }
                }
            }
        }
    };

    // One kick token serves three causes; tell them apart here, wherever
    // the kick was noticed (the loop, or a send that was waiting).
    let end = match end {
        End::Kicked if state.shutdown.is_cancelled() => End::Shutdown,
        End::Kicked
            if state
                .cluster
                .as_ref()
                .is_some_and(|c| c.resets() > conn.resets) =>
        {
            End::RegistryLost
        }
        end => end,
    };
    if let Some(peer_id) = &conn.peer_id {
        state.registry.unregister(peer_id, conn.id, &state.metrics);
        if let Some(cluster) = &state.cluster {
            Box::pin(cluster.release(peer_id, conn.id)).await;
        }
    }
    match end {
        End::TooBig => state.metrics.error(ErrorKind::MessageTooBig),
        End::Stalled => state.metrics.error(ErrorKind::SlowConsumer),
        _ => {}
    }
    let frame = match &end {
        End::Shutdown => Some((close::GOING_AWAY, "server shutting down")),
        End::Kicked => Some((close::POLICY, "disconnected by the server")),
        End::RegistryLost => Some((close::TRY_AGAIN_LATER, "server lost its shared registry")),
        End::Idle => Some((close::GOING_AWAY, "idle timeout")),
        // It reads nothing, so this close frame most likely never arrives.
        End::Stalled => Some((close::POLICY, "not reading")),
        End::RegisterTimeout => Some((close::POLICY, "register first")),
        End::TooBig => Some((close::TOO_BIG, "message too big")),
        End::RateLimited => Some((close::POLICY, "rate limit exceeded")),
        End::NoRandomness => Some((close::INTERNAL, "server error")),
        End::ClientClosed | End::SocketError(_) => None,
    };
    if let Some((code, reason)) = frame {
        // Best effort, bounded: the peer may be gone or not reading.
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }));
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), socket.send(close)).await;
    }
    let why = match &end {
        End::ClientClosed => "client closed",
        End::Shutdown => "shutdown",
        End::Kicked => "kicked",
        End::RegistryLost => "lost the shared registry",
        End::Idle => "idle timeout",
        End::Stalled => "not reading (stall timeout)",
        End::RegisterTimeout => "registration timeout",
        End::TooBig => "message too big",
        End::RateLimited => "rate limit",
        End::NoRandomness => "no randomness",
        End::SocketError(e) => e.as_str(),
    };
    info!(
        conn = id,
        peer_id = conn.peer_id.as_deref().unwrap_or("-"),
        reason = why,
        "disconnected"
    );
}

/// What to do after handling one message.
enum Reply {
    None,
    Send(Utf8Bytes),
    Close(End),
}

fn err_text(text: impl Into<String>) -> Utf8Bytes {
    push_text(&ServerMessage::error(text))
}

/// Answers one text message. Its Redis calls (cluster only) are boxed: an
/// idle connection's task is as big as its largest await, and a Redis
/// call's future is about 1 KiB (BENCHMARKS.md, RSS per idle connection).
async fn handle_text(state: &AppState, conn: &mut Conn, text: &str) -> Reply {
    let m = &state.metrics;
    m.messages_received.fetch_add(1, Relaxed);

    if !conn.bucket.try_take(Instant::now()) {
        m.error(ErrorKind::RateLimited);
        conn.strikes += 1;
        if conn.strikes >= state.config.rate_limit_strikes {
            return Reply::Close(End::RateLimited);
        }
        return Reply::Send(err_text(format!(
            "rate limit exceeded: at most {} messages/s (burst {}); message dropped",
            state.config.rate_limit_per_sec, state.config.rate_limit_burst
        )));
    }
    conn.strikes = 0;

    let msg = match ClientMessage::from_json(text) {
        Ok(msg) => msg,
        Err(e) => {
            m.error(match e {
                ParseError::Json(_) | ParseError::MissingType => ErrorKind::InvalidJson,
                ParseError::UnknownType(_) => ErrorKind::UnknownType,
                ParseError::MissingField { .. } => ErrorKind::MissingField,
            });
            return Reply::Send(err_text(e.to_string()));
        }
    };

    match (msg, &conn.peer_id) {
        (
            ClientMessage::Register {
                peer_id,
                pubkey,
                signature,
            },
            None,
        ) => {
            if let Err(e) = validate_peer_id(&peer_id) {
                m.error(ErrorKind::InvalidPeerId);
                return Reply::Send(err_text(format!("invalid peer_id: {e}")));
            }
            let key = match check_proof(state, conn, &peer_id, pubkey, signature) {
                Ok(key) => key,
                Err(e) => {
                    m.error(ErrorKind::Auth);
                    debug!(conn = conn.id, %peer_id, "register refused: {e}");
                    return Reply::Send(err_text(e));
                }
            };
            let handle = Handle {
                conn: conn.id,
                outbox: conn.outbox.clone(),
                kick: conn.kick.clone(),
            };
            // A signed register may bind a new id: that takes one of this
            // source's tokens, given back if no new binding is made.
            let token = key.is_some() && state.per_source.take_binding(conn.source, Instant::now());
            let may_bind = key.is_none() || token;
            let outcome = if let Some(cluster) = &state.cluster {
                // Held here first (pending), so a relay that follows the
                // cluster-wide join at once finds it; announced once Redis
                // agrees.
                conn.resets = cluster.resets();
                match state.registry.reserve(&peer_id, handle, key) {
                    Err(refusal) => Err(refusal),
                    Ok(()) => {
                        let claim = cluster.claim(&peer_id, conn.id, key.as_ref(), may_bind);
                        match Box::pin(claim).await {
                            Ok(Ok(new)) => {
                                state.registry.confirm(&peer_id, conn.id, m);
                                Ok(new)
                            }
                            Ok(Err(refusal)) => {
                                state.registry.unreserve(&peer_id, conn.id);
                                Err(refusal)
                            }
                            Err(e) => {
                                state.registry.unreserve(&peer_id, conn.id);
                                if token {
                                    state.per_source.refund_binding(conn.source);
                                }
                                return unavailable(m, conn, "register", e);
                            }
                        }
                    }
                }
            } else {
                state.registry.register(&peer_id, handle, key, may_bind, m)
            };
            if token && outcome != Ok(true) {
                state.per_source.refund_binding(conn.source);
            }
            if let Err(refusal) = outcome {
                return refused(m, conn, &peer_id, key.is_some(), refusal);
            }
            match &key {
                Some(k) => info!(
                    conn = conn.id,
                    %peer_id,
                    key = %k.fingerprint(),
                    "registered (authenticated)"
                ),
                None => info!(conn = conn.id, %peer_id, "registered (unauthenticated)"),
            }
            conn.peer_id = Some(peer_id.as_str().into());
            Reply::Send(push_text(&ServerMessage::Registered {
                peer_id,
                ice_servers: state.config.ice_servers.clone(),
            }))
        }
        (ClientMessage::Register { .. }, Some(current)) => {
            m.error(ErrorKind::AlreadyRegistered);
            Reply::Send(err_text(format!(
                "already registered as \"{current}\" on this connection"
            )))
        }
        (_, None) => {
            m.error(ErrorKind::NotRegistered);
            Reply::Send(err_text(
                "not registered: send {\"type\":\"register\",\"peer_id\":...} first",
            ))
        }
        (
            ClientMessage::ListPeers {
                watch,
                keys,
                ids,
                after,
            },
            Some(_),
        ) => {
            let limit = state.config.max_message_bytes;
            let most = crate::registry::max_list_ids(limit);
            if ids.as_ref().is_some_and(|ids| ids.len() > most) {
                m.error(ErrorKind::TooManyIds);
                return Reply::Send(err_text(format!(
                    "list_peers: at most {most} ids; ask in several lists"
                )));
            }
            // (Again, if a watcher was unsubscribed for falling behind.)
            let subscribe = watch.then(|| Handle {
                conn: conn.id,
                outbox: conn.outbox.clone(),
                kick: conn.kick.clone(),
            });
            let query = crate::registry::ListQuery { keys, ids, after };
            let Some(cluster) = &state.cluster else {
                return Reply::Send(state.registry.list(subscribe, &query, limit));
            };
            // Subscribed before listing, so no join is missed (one may
            // be heard twice).
            if let Some(h) = subscribe {
                state.registry.watch(h);
            }
            match Box::pin(cluster.list(&query, limit)).await {
                Ok(page) => Reply::Send(page),
                Err(e) => unavailable(m, conn, "list_peers", e),
            }
        }
        (ClientMessage::Relay { to, data }, Some(from)) => {
            let len = data.get().len() as u64;
            let out = Utf8Bytes::from(ServerMessage::relay_json(from, &data));
            let local = match &state.cluster {
                None => state.registry.deliver(&to, out, m),
                Some(cluster) => match state.registry.deliver(&to, out.clone(), m) {
                    Delivery::Gone => match Box::pin(cluster.relay(&to, &out)).await {
                        Ok(true) => {
                            m.cluster_relays_out.fetch_add(1, Relaxed);
                            return Reply::None;
                        }
                        Ok(false) => Delivery::Gone,
                        Err(e) => return unavailable(m, conn, "relay", e),
                    },
                    other => other,
                },
            };
            if local == Delivery::Queued {
                m.messages_relayed.fetch_add(1, Relaxed);
                m.bytes_relayed.fetch_add(len, Relaxed);
            } else if local == Delivery::Gone {
                m.error(ErrorKind::UnknownPeer);
            }
            match local.message(&to) {
                None => Reply::None,
                Some(text) => Reply::Send(err_text(text)),
            }
        }
    }
}

/// The answer to a refused `register`.
fn refused(m: &Metrics, conn: &Conn, peer_id: &str, signed: bool, refusal: Refusal) -> Reply {
    match refusal {
        Refusal::Taken => m.error(ErrorKind::PeerIdTaken),
        Refusal::BoundToOtherKey | Refusal::BoundNeedsSignature => {
            m.error(ErrorKind::PeerIdBound);
            info!(
                conn = conn.id,
                %peer_id,
                signed,
                "register refused: peer_id is bound to an identity key"
            );
        }
        Refusal::BindingsFull => {
            m.error(ErrorKind::BindingsFull);
            debug!(conn = conn.id, %peer_id, "register refused: the key bindings are full");
        }
        Refusal::BindingRateLimited => {
            m.error(ErrorKind::BindingRateLimited);
            info!(conn = conn.id, %peer_id, source = %conn.source, "register refused: new bindings rate-limited");
        }
    }
    Reply::Send(err_text(refusal.message(peer_id)))
}

/// The answer when the cluster's shared registry cannot be reached.
fn unavailable(m: &Metrics, conn: &Conn, what: &str, e: crate::cluster::Unavailable) -> Reply {
    m.error(ErrorKind::RegistryUnavailable);
    warn!(conn = conn.id, "{what}: {e}");
    Reply::Send(err_text(format!("{what} failed: {e}; try again")))
}

/// Checks a `register`'s identity proof against this connection's
/// challenge. `Ok(None)`: unsigned, and the server allows that.
fn check_proof(
    state: &AppState,
    conn: &Conn,
    peer_id: &str,
    pubkey: Option<String>,
    signature: Option<String>,
) -> Result<Option<PublicKey>, String> {
    match (pubkey, signature) {
        (None, None) if state.config.require_auth => Err(
            "register: this server requires a signed registration (pubkey and signature)".into(),
        ),
        (None, None) => Ok(None),
        (Some(_), None) => Err("register: pubkey without signature; send both or neither".into()),
        (None, Some(_)) => Err("register: signature without pubkey; send both or neither".into()),
        (Some(pubkey), Some(signature)) => {
            let key: PublicKey = pubkey
                .parse()
                .map_err(|e| format!("register: invalid pubkey: {e}"))?;
            let sig: mpc_identity::Signature = signature
                .parse()
                .map_err(|e| format!("register: invalid signature: {e}"))?;
            // Bound to this server (v2); the older statement that names
            // no server only when the operator allows it (replayable).
            let hosts: Vec<&str> = if state.config.public_hosts.is_empty() {
                conn.host.as_deref().into_iter().collect()
            } else {
                state
                    .config
                    .public_hosts
                    .iter()
                    .map(String::as_str)
                    .collect()
            };
            let bound = hosts.iter().any(|h| {
                key.verify(&statement::register_at(&conn.nonce, peer_id, h), &sig)
                    .is_ok()
            });
            let unbound = || {
                state.config.accept_unbound_register
                    && key
                        .verify(&statement::register(&conn.nonce, peer_id), &sig)
                        .is_ok()
            };
            if bound || unbound() {
                Ok(Some(key))
            } else {
                Err(
                    "register: signature does not verify for this challenge, peer_id and server"
                        .into(),
                )
            }
        }
    }
}

/// Sends one frame unless the connection is kicked meanwhile, or the
/// socket takes nothing for `stall` (its client reads nothing: such a
/// reader must not pin its task in `send` forever).
async fn send(
    socket: &mut WebSocket,
    kick: &CancellationToken,
    stall: std::time::Duration,
    msg: Message,
) -> Result<(), End> {
    // Biased towards the send: it nearly always completes at once, and
    // then neither the kick nor the timer is polled (no waiter registered).
    tokio::select! {
        biased;
        r = socket.send(msg) => r.map_err(classify),
        _ = kick.cancelled() => Err(End::Kicked),
        _ = tokio::time::sleep(stall) => Err(End::Stalled),
    }
}

/// Most frames one write carries: bounds the time other work waits
/// behind one busy recipient.
const MAX_BATCH: usize = 64;

/// Sends `first` and every frame queued behind it, up to [`MAX_BATCH`],
/// with one flush: one write system call where one per frame was made
/// (tungstenite buffers what `feed` gives it until the flush). Same
/// kick and stall rules as [`send`].
async fn send_queued(
    socket: &mut WebSocket,
    kick: &CancellationToken,
    stall: std::time::Duration,
    first: Utf8Bytes,
    rx: &mut crate::outbox::Receiver,
) -> Result<(), End> {
    use futures_util::SinkExt;
    let write = async {
        socket.feed(Message::Text(first)).await?;
        for _ in 1..MAX_BATCH {
            let Some(text) = rx.try_recv() else { break };
            socket.feed(Message::Text(text)).await?;
        }
        socket.flush().await
    };
    tokio::select! {
        biased;
        r = write => r.map_err(classify),
        _ = kick.cancelled() => Err(End::Kicked),
        _ = tokio::time::sleep(stall) => Err(End::Stalled),
    }
}

fn classify(e: axum::Error) -> End {
    match e.into_inner().downcast::<tungstenite::Error>() {
        Ok(e) if matches!(*e, tungstenite::Error::Capacity(_)) => End::TooBig,
        Ok(e) => End::SocketError(e.to_string()),
        Err(e) => End::SocketError(e.to_string()),
    }
}
