//! WebRTC data channels for mpc-wallet nodes: a tokio driver for the sans-IO
//! [`str0m`] crate, one reliable ordered data channel per peer.
//!
//! The node's core decides who connects to whom and who offers; this crate
//! only runs the connections:
//!
//! * [`Rtc::connect`] starts a connection to a peer. The offerer creates the
//!   data channel (label [`CHANNEL_LABEL`]) and emits an
//!   [`RtcEvent::Signal`] carrying the offer; the other side waits for it.
//! * Every [`RtcEvent::Signal`] must be delivered to the named peer through
//!   the signaling server's relay; what arrives from the relay goes to
//!   [`Rtc::on_signal`]. The signals are [`WebRtcSignal`]s in the browser's
//!   JSON shapes, so the other side can be Chrome's `RTCPeerConnection`.
//! * [`RtcEvent::Open`] reports an open channel, [`RtcEvent::Message`] a
//!   received text message, [`RtcEvent::Closed`] the end of a connection
//!   (remote close, ICE/DTLS failure, connect timeout, invalid remote SDP).
//!
//! Each connection is one tokio task owning a `str0m::Rtc`, its own UDP
//! socket bound to `bind_ip:0` and a command queue. Its local host candidate
//! is in the SDP (non-trickle); a server-reflexive candidate found through a
//! STUN server is trickled as an `ice-candidate` signal. Remote candidates
//! are taken from the remote SDP and from `ice-candidate` signals alike.
//!
//! # Limitations
//!
//! * TURN is not supported: str0m has no TURN client. `turn:`/`turns:`
//!   entries in [`RtcConfig::ice_servers`] are ignored with a warning.
//! * mDNS (`*.local`) candidates can't be resolved and are ignored; the
//!   connection then relies on the other candidates or on peer-reflexive
//!   discovery (a Chrome peer's address is learnt from its STUN checks).
//! * One local address per connection (the one `bind_ip` names).
//!
//! Message contents are never logged (they may carry secret key shares);
//! only peer ids and states are, through `tracing`. Keep `str0m` and
//! `sctp_proto` logging below `trace` in production.

mod peer;
mod stun;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpc_protocol::relay::WebRtcSignal;
use mpc_protocol::IceServer;
use str0m::config::DtlsCert;
use str0m::crypto::CryptoProvider;
use tokio::sync::mpsc;

/// Label of the data channel the offerer creates.
pub const CHANNEL_LABEL: &str = "mpc";

/// The largest message this node accepts, advertised in its SDP as
/// `a=max-message-size` (str0m's default; Chrome advertises the same).
pub const MAX_MESSAGE_SIZE: usize = 256 * 1024;

/// How many bytes a connection may have queued in SCTP, unacknowledged.
/// Must exceed [`MAX_MESSAGE_SIZE`], or a message of that size would never
/// fit in the buffer.
const SCTP_MAX_BUFFERED: usize = 1024 * 1024;

/// Requested UDP socket buffer sizes (each way).
const UDP_BUFFER_SIZE: usize = 2 * 1024 * 1024;

/// How long a closing connection keeps going to deliver queued messages.
pub const FLUSH_LIMIT: Duration = Duration::from_secs(2);

/// Signals kept for a peer before [`Rtc::connect`] is called for it.
const MAX_EARLY_SIGNALS: usize = 64;
/// Peers for which early signals are kept at once.
const MAX_EARLY_PEERS: usize = 256;

/// Configuration of the driver, shared by all connections.
#[derive(Clone, Debug)]
pub struct RtcConfig {
    /// Local address every connection's UDP socket binds (port 0), and the
    /// host candidate it advertises. `127.0.0.1` (the default) suits tests
    /// on loopback. An unspecified address (`0.0.0.0`) is replaced by the
    /// address of the interface that routes to the internet.
    pub bind_ip: IpAddr,
    /// STUN servers (`stun:host[:port]`) are asked for a server-reflexive
    /// candidate. TURN servers are not supported (see crate docs).
    pub ice_servers: Vec<IceServer>,
    /// A connection whose data channel isn't open this long after
    /// [`Rtc::connect`] is closed with reason "timed out".
    pub connect_timeout: Duration,
}

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ice_servers: Vec::new(),
            connect_timeout: Duration::from_secs(20),
        }
    }
}

/// What the driver reports, through the channel given to [`Rtc::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RtcEvent {
    /// Send `signal` to `peer` through the signaling relay.
    Signal { peer: String, signal: WebRtcSignal },
    /// The data channel to `peer` is open: [`Rtc::send`] delivers now.
    ///
    /// Fingerprints are DTLS certificate fingerprints in SDP form
    /// (`sha-256 AB:CD:...`). The local one is the same for every
    /// connection of this [`Rtc`] ([`Rtc::local_fingerprint`]); the remote
    /// one is from the remote SDP, and DTLS verified the peer holds it.
    Open {
        peer: String,
        local_fingerprint: String,
        remote_fingerprint: String,
    },
    /// A text message from `peer`, in order.
    Message { peer: String, text: String },
    /// The connection to `peer` is gone; `reason` says why. Not emitted
    /// for [`Rtc::close`]. After this, [`Rtc::connect`] may be called again.
    Closed { peer: String, reason: String },
}

/// Errors of the driver's API calls. Failures of a connection itself are
/// reported as [`RtcEvent::Closed`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("already connected or connecting to peer {0}")]
    AlreadyConnected(String),
    #[error("no connection to peer {0}")]
    UnknownPeer(String),
    #[error("message of {len} bytes exceeds the maximum of {max} bytes for peer {peer}")]
    MessageTooLarge {
        peer: String,
        len: usize,
        max: usize,
    },
    #[error("could not bind a UDP socket on {ip}: {source}")]
    Bind {
        ip: IpAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("this driver has been shut down")]
    Shutdown,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Commands from the API to a connection's task.
#[derive(Debug)]
enum Command {
    Signal(WebRtcSignal),
    Send(String),
    Close,
}

struct PeerHandle {
    /// Distinguishes a connection from a later one to the same peer.
    serial: u64,
    commands: mpsc::UnboundedSender<Command>,
    /// The remote's `a=max-message-size` (capped by our send buffer), or 0
    /// while the remote SDP is unknown.
    max_send: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Peers {
    next_serial: u64,
    live: HashMap<String, PeerHandle>,
    /// Signals that arrived before [`Rtc::connect`] for that peer.
    early: HashMap<String, Vec<WebRtcSignal>>,
    shut_down: bool,
}

/// Shared by the API and the tasks.
struct Shared {
    config: RtcConfig,
    bind_ip: IpAddr,
    crypto: Arc<CryptoProvider>,
    cert: DtlsCert,
    local_fingerprint: String,
    events: mpsc::Sender<RtcEvent>,
    peers: Mutex<Peers>,
}

impl Shared {
    fn peers(&self) -> std::sync::MutexGuard<'_, Peers> {
        // A panic while holding the lock leaves consistent data behind.
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets a connection's handle, if it's still the current one.
    fn remove(&self, peer: &str, serial: u64) {
        let mut peers = self.peers();
        if peers.live.get(peer).is_some_and(|h| h.serial == serial) {
            peers.live.remove(peer);
        }
    }
}

/// The WebRTC driver of one node: its connections, one per peer.
///
/// Must be created and used inside a tokio runtime. Dropping it closes all
/// connections.
pub struct Rtc {
    shared: Arc<Shared>,
    /// Each connection task holds a clone; [`Rtc::shutdown`] waits until
    /// all are dropped.
    alive_tx: Option<mpsc::Sender<()>>,
    alive_rx: mpsc::Receiver<()>,
}

impl Rtc {
    /// Creates the driver; its events go to `events`. Generates the node's
    /// DTLS certificate, used for all its connections.
    pub fn new(config: RtcConfig, events: mpsc::Sender<RtcEvent>) -> Self {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto
            .dtls_provider
            .generate_certificate()
            .expect("the aws-lc-rs backend generates DTLS certificates");
        let local_fingerprint = peer::local_fingerprint(&crypto, &cert);
        let bind_ip = resolve_bind_ip(config.bind_ip);
        for server in &config.ice_servers {
            for url in &server.urls {
                if url.starts_with("turn") {
                    tracing::warn!(%url, "TURN is not supported by str0m; ignoring this server");
                }
            }
        }
        let (alive_tx, alive_rx) = mpsc::channel(1);
        Rtc {
            alive_tx: Some(alive_tx),
            alive_rx,
            shared: Arc::new(Shared {
                config,
                bind_ip,
                crypto,
                cert,
                local_fingerprint,
                events,
                peers: Mutex::new(Peers::default()),
            }),
        }
    }

    /// Closes every connection after its queued messages are delivered
    /// (at most [`FLUSH_LIMIT`] each), and waits for that. Use it before a
    /// process exits, so a last message (`wallet_created`, an abort) isn't
    /// lost.
    pub async fn shutdown(mut self) {
        self.close_all();
        self.alive_tx = None;
        let _ =
            tokio::time::timeout(FLUSH_LIMIT + Duration::from_secs(1), self.alive_rx.recv()).await;
    }

    fn close_all(&self) {
        let mut peers = self.shared.peers();
        peers.shut_down = true;
        peers.early.clear();
        for (_, handle) in peers.live.drain() {
            let _ = handle.commands.send(Command::Close);
        }
    }

    /// The DTLS fingerprint of this node's certificate, in SDP form
    /// (`sha-256 AB:CD:...`), the same for all its connections.
    pub fn local_fingerprint(&self) -> &str {
        &self.shared.local_fingerprint
    }

    /// Starts a connection to `peer`. As `offerer`, creates the data channel
    /// and emits the offer as [`RtcEvent::Signal`]; otherwise waits for the
    /// peer's offer (signals from it that arrived before this call are
    /// replayed). Fails if a connection to `peer` exists already.
    pub fn connect(&self, peer: &str, offerer: bool) -> Result<()> {
        let ip = self.shared.bind_ip;
        let socket = bind_udp(ip).map_err(|source| Error::Bind { ip, source })?;

        let (tx, rx) = mpsc::unbounded_channel();
        let max_send = Arc::new(AtomicUsize::new(0));
        let serial = {
            let mut peers = self.shared.peers();
            if peers.shut_down {
                return Err(Error::Shutdown);
            }
            if peers.live.contains_key(peer) {
                return Err(Error::AlreadyConnected(peer.to_string()));
            }
            let early = peers.early.remove(peer).unwrap_or_default();
            if offerer && !early.is_empty() {
                tracing::debug!(peer, "discarding an early offer: this side offers");
            } else {
                for signal in early {
                    let _ = tx.send(Command::Signal(signal));
                }
            }
            peers.next_serial += 1;
            let serial = peers.next_serial;
            peers.live.insert(
                peer.to_string(),
                PeerHandle {
                    serial,
                    commands: tx,
                    max_send: max_send.clone(),
                },
            );
            serial
        };
        tracing::debug!(peer, offerer, "connecting");
        let alive = self.alive_tx.clone().ok_or(Error::Shutdown)?;
        tokio::spawn(peer::run(
            alive,
            self.shared.clone(),
            peer.to_string(),
            serial,
            offerer,
            socket,
            rx,
            max_send,
        ));
        Ok(())
    }

    /// Hands over a signal that `peer` sent through the relay. An offer
    /// (and candidates after it) from a peer not connected yet is kept
    /// until [`Rtc::connect`] for it, within limits; other signals for no
    /// connection are dropped with [`Error::UnknownPeer`]. Problems with the signal's content (an invalid
    /// SDP, say) end the connection with [`RtcEvent::Closed`]; unusable
    /// candidates (`.local` mDNS names) are ignored.
    pub fn on_signal(&self, peer: &str, signal: WebRtcSignal) -> Result<()> {
        let mut peers = self.shared.peers();
        if peers.shut_down {
            return Err(Error::Shutdown);
        }
        if let Some(handle) = peers.live.get(peer) {
            // A send error means the task is ending; it reports Closed.
            let _ = handle.commands.send(Command::Signal(signal));
            return Ok(());
        }
        // Only an offer, and candidates after it, can precede our connect;
        // anything else is left over from a closed connection.
        let fresh = match signal {
            WebRtcSignal::Offer { .. } => true,
            WebRtcSignal::IceCandidate { .. } if peers.early.contains_key(peer) => false,
            _ => {
                tracing::debug!(peer, "dropping a signal for no connection");
                return Err(Error::UnknownPeer(peer.to_string()));
            }
        };
        if !peers.early.contains_key(peer) && peers.early.len() >= MAX_EARLY_PEERS {
            tracing::warn!(peer, "too many unknown peers signaling; dropping signal");
            return Err(Error::UnknownPeer(peer.to_string()));
        }
        let queue = peers.early.entry(peer.to_string()).or_default();
        if fresh {
            // A new offer replaces an older one.
            queue.clear();
        }
        if queue.len() >= MAX_EARLY_SIGNALS {
            tracing::warn!(peer, "too many early signals; dropping signal");
            return Err(Error::UnknownPeer(peer.to_string()));
        }
        tracing::debug!(peer, "keeping a signal until connect");
        queue.push(signal);
        Ok(())
    }

    /// Sends a text message to `peer` on its data channel, reliably and in
    /// order. Messages sent before the channel opens are queued and go out
    /// once it does; so are messages that don't fit SCTP's send buffer
    /// (backpressure). Fails for an unknown peer, or a message larger than
    /// the peer accepts (its `a=max-message-size`, 64 KiB if it names none;
    /// at most [`MAX_MESSAGE_SIZE`]).
    pub fn send(&self, peer: &str, text: String) -> Result<()> {
        let peers = self.shared.peers();
        let handle = peers
            .live
            .get(peer)
            .ok_or_else(|| Error::UnknownPeer(peer.to_string()))?;
        let max = match handle.max_send.load(Ordering::Relaxed) {
            0 => MAX_MESSAGE_SIZE,
            max => max,
        };
        if text.len() > max {
            return Err(Error::MessageTooLarge {
                peer: peer.to_string(),
                len: text.len(),
                max,
            });
        }
        handle
            .commands
            .send(Command::Send(text))
            .map_err(|_| Error::UnknownPeer(peer.to_string()))
    }

    /// Closes the connection to `peer` (the peer sees it closed), and drops
    /// signals kept for it. Emits no [`RtcEvent::Closed`]: the caller knows.
    pub fn close(&self, peer: &str) {
        let mut peers = self.shared.peers();
        peers.early.remove(peer);
        if let Some(handle) = peers.live.remove(peer) {
            tracing::debug!(peer, "closing");
            let _ = handle.commands.send(Command::Close);
        }
    }

    /// Peers with a connection, open or in progress.
    pub fn peers(&self) -> Vec<String> {
        let mut v: Vec<String> = self.shared.peers().live.keys().cloned().collect();
        v.sort();
        v
    }
}

impl Drop for Rtc {
    fn drop(&mut self) {
        self.close_all();
    }
}

impl std::fmt::Debug for Rtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rtc")
            .field("bind_ip", &self.shared.bind_ip)
            .field("peers", &self.peers())
            .finish()
    }
}

/// A UDP socket on `ip`, any port, with room for bursts: SCTP sends up to
/// its congestion window at once, and a datagram dropped for a full receive
/// buffer costs a retransmission timeout (hundreds of ms).
fn bind_udp(ip: IpAddr) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = SocketAddr::new(ip, 0);
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these (net.core.rmem_max/wmem_max).
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_SIZE);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_SIZE);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// Replaces an unspecified address by the one of the interface that routes
/// to the internet (no packet is sent), or loopback if there is none.
fn resolve_bind_ip(ip: IpAddr) -> IpAddr {
    if !ip.is_unspecified() {
        return ip;
    }
    let (probe, fallback): (SocketAddr, IpAddr) = if ip.is_ipv4() {
        (([8, 8, 8, 8], 53).into(), Ipv4Addr::LOCALHOST.into())
    } else {
        (
            "[2001:4860:4860::8888]:53".parse().expect("valid address"),
            std::net::Ipv6Addr::LOCALHOST.into(),
        )
    };
    StdUdpSocket::bind(SocketAddr::new(ip, 0))
        .and_then(|s| s.connect(probe).and_then(|()| s.local_addr()))
        .map(|a| a.ip())
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, %fallback, "no route to the internet; binding loopback");
            fallback
        })
}
