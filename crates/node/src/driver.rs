//! Drives one node's sans-IO core over real I/O: the signaling WebSocket,
//! str0m data channels (through `mpc-rtc`), a clock, the user's decision
//! and the keystore on disk.
//!
//! The driver decides nothing about the protocol. It turns socket, channel
//! and timer activity into core [`Event`]s and carries out the core's
//! [`Action`]s, in order, with one exception: a finished wallet is written
//! to the keystore before anything else in that batch (such as
//! `wallet_created`) is sent, so nobody is told a share is stored before it
//! is.
//!
//! This file owns what a run is given and returns, the event loop and the
//! I/O (WebSocket, WebRTC, clock). `session` (driver/session.rs) owns what
//! the run does with the core's milestones: its goal, proposals, the
//! keystore, and when it is done.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use mpc_core::{Action, Command, Config, Event, Node, SignatureResult, WalletResult};
use mpc_keystore::fs::Keystore;
use mpc_keystore::Confirmation;
use mpc_protocol::signal::ServerMessage;
use mpc_protocol::{IceServer, SignedMessage};
use mpc_rtc::{Rtc, RtcConfig, RtcEvent};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::decide;
use crate::display::Remote;
use crate::observer::Observer;

mod session;

/// How a node reaches the world.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// `ws://HOST:PORT/ws`
    pub server: String,
    pub peer_id: String,
    /// Overrides the server's `ice_servers` when set.
    pub ice_servers: Option<Vec<IceServer>>,
    /// The host candidate address for WebRTC.
    pub bind_ip: IpAddr,
    /// Per-phase timeout of the core.
    pub timeout: Duration,
    /// The directory with this node's identity key and pinned peer keys
    /// (the keystore directory).
    pub identity_store: Keystore,
    /// Refuse peer keys that are not pinned yet (no trust on first use).
    pub require_pinned: bool,
    /// How transactions to sign are read: network, fee policy.
    pub signing: mpc_core::payload::SignSettings,
}

/// Where and how a finished wallet is stored.
#[derive(Clone)]
pub struct Storage {
    pub keystore: Keystore,
    pub passphrase: String,
    /// scrypt log2(N) for new wallet files.
    pub work_factor: u8,
}

/// What this run of the node is for.
#[derive(Clone, Debug)]
pub enum Goal {
    /// Give the core this command once registered: `ListPeers` (print and
    /// stop), `Create` (propose a wallet and take part in it) or `Sign`
    /// (propose signing with a stored wallet and take part).
    Command(Command),
    /// Wait for a proposal and take part if accepted: a wallet to create,
    /// or a message to sign with a wallet in the keystore. The policy says
    /// which proposals are considered, and what is settled without asking.
    Join(decide::Policy),
}

/// How a run ended well.
#[derive(Debug)]
pub enum Outcome {
    Peers(Vec<String>),
    Created {
        wallet: Box<WalletResult>,
        keystore_path: PathBuf,
        /// From the proposal (sent or received) until every participant
        /// reported `wallet_created` (or the linger time ran out).
        elapsed: Duration,
    },
    /// A signature this node aggregated and verified.
    Signed(Box<SignatureResult>),
    /// New shares of a wallet, current now that every participant stored
    /// theirs; the old share is erased.
    Refreshed {
        wallet: Box<WalletResult>,
        keystore_path: PathBuf,
    },
    /// This node's lost share, rebuilt by helpers and stored.
    Repaired {
        wallet: Box<WalletResult>,
        keystore_path: PathBuf,
    },
    /// A repair this node helped with: the target stored its share.
    Helped(Helped),
}

/// A repair a helper took part in.
#[derive(Clone, Debug)]
pub struct Helped {
    pub session_id: String,
    pub group_public_key: String,
    pub target: String,
}

/// Why a run failed; `Display` is what the user reads, with what the
/// server or a peer said escaped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot reach the signaling server at {url}: {}", Remote(detail))]
    Connect { url: String, detail: String },
    #[error("signaling server: {}", Remote(.0))]
    Server(String),
    #[error("lost the connection to the signaling server")]
    ServerGone,
    #[error("session {} aborted: {}", Remote(session_id), Remote(reason))]
    Aborted { session_id: String, reason: String },
    #[error("could not store the key share: {0}")]
    Store(String),
    /// Review finding 4: a wallet some participant never confirmed storing.
    #[error(
        "wallet {group_public_key} is NOT confirmed: {missing} never confirmed storing \
         their share ({reason}). Do not fund this address: it may never be spendable"
    )]
    Unconfirmed {
        group_public_key: String,
        missing: String,
        reason: String,
    },
    /// A refresh some participant never confirmed: the old share stays.
    #[error(
        "the refresh of wallet {group_public_key} is not confirmed: {missing} never confirmed \
         storing their new share ({reason}). This node keeps signing with its current share; \
         the new one is kept pending, and is used once a co-signer shows it is in use"
    )]
    RefreshUnconfirmed {
        group_public_key: String,
        missing: String,
        reason: String,
    },
    #[error("{0}")]
    Other(String),
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Runs one node until its goal is reached or fails.
pub async fn run(
    opts: NodeOptions,
    goal: Goal,
    storage: Option<Storage>,
    observer: &mut dyn Observer,
) -> Result<Outcome, NodeError> {
    let (ws, _) = tokio_tungstenite::connect_async(&opts.server)
        .await
        .map_err(|e| NodeError::Connect {
            url: opts.server.clone(),
            detail: e.to_string(),
        })?;
    let mut d = Driver::new(opts, goal, storage, ws)?;
    let result = d.run(observer).await;
    d.shutdown().await;
    result
}

struct Driver {
    opts: NodeOptions,
    goal: Goal,
    storage: Option<Storage>,
    ws: Ws,
    node: Node,
    start: Instant,
    rtc: Option<Rtc>,
    rtc_tx: mpsc::Sender<RtcEvent>,
    rtc_rx: mpsc::Receiver<RtcEvent>,
    decisions_tx: mpsc::Sender<(String, bool)>,
    decisions_rx: mpsc::Receiver<(String, bool)>,
    /// Events from blocking tasks (a sign decision with its decrypted key).
    events_tx: mpsc::Sender<Event>,
    events_rx: mpsc::Receiver<Event>,
    /// Events the driver itself produces (e.g. a failed send).
    internal: Vec<Event>,
    registered: bool,
    /// The proposal this `join` run accepted or is deciding on.
    session: Option<String>,
    peers: Option<Vec<String>>,
    finished: Option<(Box<WalletResult>, PathBuf)>,
    /// Every other participant confirmed storing its share.
    confirmed: bool,
    signed: Option<Box<SignatureResult>>,
    /// This `join` run is the target of a repair: its wallet is rebuilt.
    repair_target: bool,
    /// A repair this node helped with, once the target stored its share.
    helped: Option<Helped>,
    stored_by: usize,
    finished_at: Option<Instant>,
    /// When this node sent or first saw the proposal.
    proposal_at: Option<Instant>,
    /// Test hook (`MPC_WALLET_TEST_STALL_BEFORE=<type>`): stall instead of
    /// sending the first peer message of this type, like a hung process.
    stall_before: Option<String>,
    /// Test hook (`MPC_WALLET_TEST_PAUSE_BEFORE=<type>`): pause 2 s once
    /// before sending the first peer message of this type.
    pause_before: Option<String>,
    /// The signaling server went away after negotiation: the session goes
    /// on over the mesh, and nothing more is sent to the server.
    server_gone: bool,
}

/// After a signature, how long to wait for every signer's
/// `signature_created` before closing the channels anyway. (A new wallet
/// waits for the core's confirmation instead: see `WalletConfirmed`.)
const LINGER: Duration = Duration::from_secs(5);

impl Driver {
    fn new(
        opts: NodeOptions,
        goal: Goal,
        storage: Option<Storage>,
        ws: Ws,
    ) -> Result<Driver, NodeError> {
        let mut config = Config::new(opts.peer_id.clone());
        config.timeout_ms = opts.timeout.as_millis() as u64;
        config.server_host = mpc_protocol::signal::server_host(&opts.server);
        let store = &opts.identity_store;
        config.identity = Some(
            store
                .identity()
                .map_err(|e| NodeError::Other(e.to_string()))?,
        );
        config.known_peers = store
            .known_peers()
            .map_err(|e| NodeError::Other(e.to_string()))?;
        config.require_pinned = opts.require_pinned;
        config.signing = opts.signing.clone();
        let node = Node::with_os_rng(config, 0)
            .map_err(|e| NodeError::Other(format!("no randomness: {e}")))?;
        let (rtc_tx, rtc_rx) = mpsc::channel(1024);
        let (decisions_tx, decisions_rx) = mpsc::channel(4);
        let (events_tx, events_rx) = mpsc::channel(4);
        Ok(Driver {
            opts,
            goal,
            storage,
            ws,
            node,
            start: Instant::now(),
            rtc: None,
            rtc_tx,
            rtc_rx,
            decisions_tx,
            decisions_rx,
            events_tx,
            events_rx,
            internal: Vec::new(),
            registered: false,
            session: None,
            peers: None,
            finished: None,
            repair_target: false,
            helped: None,
            signed: None,
            stored_by: 0,
            confirmed: false,
            finished_at: None,
            proposal_at: None,
            stall_before: std::env::var("MPC_WALLET_TEST_STALL_BEFORE").ok(),
            pause_before: std::env::var("MPC_WALLET_TEST_PAUSE_BEFORE").ok(),
            server_gone: false,
        })
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    async fn run(&mut self, obs: &mut dyn Observer) -> Result<Outcome, NodeError> {
        self.step(Event::Command(Command::Register), obs).await?;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Some(done) = self.done() {
                return Ok(done);
            }
            let event = tokio::select! {
                frame = self.ws.next(), if !self.server_gone => match frame {
                    Some(Ok(Message::Text(t))) => match ServerMessage::from_json(&t) {
                        Ok(m) => Event::Signal(m),
                        Err(e) => {
                            tracing::warn!("unparseable message from the server: {}", Remote(e));
                            continue;
                        }
                    },
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        if self.finished.is_some() || self.signed.is_some() {
                            // Our share is stored; the server isn't needed.
                            self.finished_at = Some(Instant::now() - LINGER);
                            continue;
                        }
                        if self.node.past_negotiation() {
                            // The mesh carries the session from here.
                            tracing::warn!("lost the signaling server; the session goes on over its data channels");
                            self.server_gone = true;
                            continue;
                        }
                        return Err(NodeError::ServerGone);
                    }
                    Some(Ok(_)) => continue,
                },
                Some(ev) = self.rtc_rx.recv() => match ev {
                    RtcEvent::Signal { peer, signal } => Event::LocalSignal { to: peer, signal },
                    RtcEvent::Open { peer, .. } => Event::ChannelOpen(peer),
                    RtcEvent::Closed { peer, reason } => {
                        tracing::info!(%peer, %reason, "data channel closed");
                        Event::ChannelClosed(peer)
                    }
                    RtcEvent::Message { peer, text } => match SignedMessage::from_json(&text) {
                        Ok(msg) => Event::PeerMessage { from: peer, msg },
                        Err(e) => {
                            tracing::warn!(%peer, "unparseable peer message: {}", Remote(e));
                            continue;
                        }
                    },
                },
                Some((session_id, accept)) = self.decisions_rx.recv() => {
                    decide::answer(session_id, accept)
                }
                Some(ev) = self.events_rx.recv() => ev,
                _ = tick.tick() => Event::Tick(self.now_ms()),
            };
            self.step(event, obs).await?;
        }
    }

    /// Feeds one event (and any the driver generates meanwhile) to the core
    /// and carries out the actions.
    async fn step(&mut self, event: Event, obs: &mut dyn Observer) -> Result<(), NodeError> {
        self.internal.push(event);
        while !self.internal.is_empty() {
            let event = self.internal.remove(0);
            if let Event::Signal(ServerMessage::Registered { ice_servers, .. }) = &event {
                self.make_rtc(ice_servers.clone());
            }
            let mut actions = self.node.handle(event);
            // Store first: wallet_created (refresh_committed) must not
            // precede the stored file.
            if let Some(i) = actions
                .iter()
                .position(|a| matches!(a, Action::Finished(_) | Action::Refreshed(_)))
            {
                match actions.remove(i) {
                    Action::Finished(w) => self.store(w).await?,
                    Action::Refreshed(w) => self.store_pending(w).await?,
                    _ => unreachable!(),
                }
            }
            // Carry out every action, even after an abort, so the abort's
            // own messages to the others go out.
            let mut failed = None;
            for a in actions {
                if let Err(e) = self.act(a, obs).await {
                    failed.get_or_insert(e);
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(())
    }

    async fn act(&mut self, action: Action, obs: &mut dyn Observer) -> Result<(), NodeError> {
        let me = self.opts.peer_id.clone();
        match action {
            Action::SendSignal(msg) => {
                let json = msg.to_json();
                if self.server_gone {
                    tracing::debug!("no signaling server: not sent: {}", Remote(&json));
                    return Ok(());
                }
                obs.sent(&me, "server", false, &json);
                if self.ws.send(Message::text(json)).await.is_err() {
                    if self.node.past_negotiation() {
                        self.server_gone = true;
                        return Ok(());
                    }
                    return Err(NodeError::ServerGone);
                }
            }
            Action::SendPeer { to, msg } => {
                if self.stall_before.as_deref() == Some(msg.msg.msg_type()) {
                    eprintln!("test hook: stalling before {}", msg.msg.msg_type());
                    std::future::pending::<()>().await;
                }
                if self.pause_before.as_deref() == Some(msg.msg.msg_type()) {
                    self.pause_before = None;
                    eprintln!("test hook: pausing before {}", msg.msg.msg_type());
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                let json = msg.to_json();
                obs.sent(&me, &to, true, &json);
                let sent = match &self.rtc {
                    Some(rtc) => rtc.send(&to, json).map_err(|e| e.to_string()),
                    None => Err("no WebRTC driver yet".to_string()),
                };
                if let Err(e) = sent {
                    tracing::warn!(peer = %to, "send failed: {e}");
                    self.internal.push(Event::ChannelClosed(to));
                }
            }
            Action::Connect { peer, offerer } => {
                if let Some(rtc) = &self.rtc {
                    if let Err(e) = rtc.connect(&peer, offerer) {
                        tracing::warn!(%peer, "connect failed: {e}");
                        self.internal.push(Event::ChannelClosed(peer));
                    }
                }
            }
            Action::WebRtcSignal { from, signal } => {
                if let Some(rtc) = &self.rtc {
                    if let Err(e) = rtc.on_signal(&from, signal) {
                        tracing::debug!(peer = %from, "signal ignored: {}", Remote(e));
                    }
                }
            }
            Action::Progress(p) => {
                if let Some(text) = crate::observer::progress_text(&p) {
                    tracing::info!(target: "mpc_wallet::progress", peer_id = %me, "{text}");
                }
                self.on_progress(&p, obs).await?;
                obs.progress(&me, &p);
            }
            Action::PinKey { peer, key } => {
                self.opts
                    .identity_store
                    .pin(&peer, key)
                    .map_err(|e| NodeError::Store(format!("cannot pin {peer}'s key: {e}")))?;
                tracing::info!(target: "mpc_wallet::progress", peer_id = %me,
                    "pinned identity key of {}: {}", Remote(&peer), key.fingerprint());
                obs.pinned(&me, &peer, &key);
            }
            Action::Finished(w) => self.store(w).await?,
            Action::Refreshed(w) => self.store_pending(w).await?,
            Action::RefreshConfirmed { generation, .. } => {
                self.promote(generation)?;
                self.confirmed = true;
            }
            Action::RefreshUnconfirmed {
                group_public_key,
                missing,
                reason,
                ..
            } => {
                return Err(NodeError::RefreshUnconfirmed {
                    group_public_key,
                    missing: missing.join(", "),
                    reason: reason.to_string(),
                });
            }
            Action::WalletConfirmed { .. } => {
                self.record_confirmation(Confirmation::Confirmed)?;
                self.confirmed = true;
            }
            Action::WalletUnconfirmed {
                group_public_key,
                missing,
                reason,
                ..
            } => {
                self.record_confirmation(Confirmation::Unconfirmed {
                    missing: missing.clone(),
                })?;
                return Err(NodeError::Unconfirmed {
                    group_public_key,
                    missing: missing.join(", "),
                    reason: reason.to_string(),
                });
            }
            Action::ParticipantAdded(w) => self.store_updated(w).await?,
            Action::Repaired {
                session_id,
                group_public_key,
                target,
            } => {
                self.helped = Some(Helped {
                    session_id,
                    group_public_key,
                    target,
                });
                self.finished_at = Some(Instant::now());
            }
            Action::Signed(sig) => {
                self.signed = Some(sig);
                self.finished_at = Some(Instant::now());
            }
            Action::Aborted { session_id, reason } => {
                return Err(NodeError::Aborted {
                    session_id,
                    reason: reason.to_string(),
                });
            }
            Action::Rejected {
                from,
                session_id,
                reason,
            } => {
                tracing::debug!(?from, ?session_id, reason = %Remote(&reason), "input rejected");
            }
        }
        Ok(())
    }

    /// The server's ICE servers are used unless the user gave others.
    fn make_rtc(&mut self, from_server: Vec<IceServer>) {
        if self.rtc.is_some() {
            return;
        }
        let config = RtcConfig {
            bind_ip: self.opts.bind_ip,
            ice_servers: self.opts.ice_servers.clone().unwrap_or(from_server),
            ..RtcConfig::default()
        };
        self.rtc = Some(Rtc::new(config, self.rtc_tx.clone()));
    }

    async fn shutdown(&mut self) {
        if let Some(rtc) = self.rtc.take() {
            // Delivers what's queued (e.g. our wallet_created) first.
            rtc.shutdown().await;
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), self.ws.close(None)).await;
    }
}

/// Decrypts a wallet file's key package into what the core signs with.
pub use mpc_keystore::wallet::open_signing_wallet;
