//! One connection: a tokio task owning a `str0m::Rtc` and its UDP socket.
//!
//! The loop follows str0m's run-loop contract: one mutation (a datagram, a
//! timeout, a signal, a candidate, a channel write), then `poll_output`
//! drained to `Output::Timeout`, then wait for the next input.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mpc_protocol::relay::WebRtcSignal;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::config::DtlsCert;
use str0m::crypto::CryptoProvider;
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::stun::{self, Gatherer};
use crate::{Command, RtcEvent, Shared, CHANNEL_LABEL, MAX_MESSAGE_SIZE, SCTP_MAX_BUFFERED};

/// Why a connection ended, for [`RtcEvent::Closed`].
type Reason = String;

/// The max-message-size a peer that advertises none accepts (RFC 8841 §6).
const DEFAULT_REMOTE_MAX_MESSAGE_SIZE: usize = 64 * 1024;

fn new_rtc(crypto: &Arc<CryptoProvider>, cert: &DtlsCert) -> str0m::Rtc {
    str0m::RtcConfig::new()
        .set_crypto_provider(crypto.clone())
        .set_dtls_cert(cert.clone())
        .set_sctp_max_buffered_amount(SCTP_MAX_BUFFERED)
        .set_sctp_max_message_size(MAX_MESSAGE_SIZE as u32)
        .build(Instant::now())
}

/// The fingerprint, in SDP form, of the certificate `cert`.
pub(crate) fn local_fingerprint(crypto: &Arc<CryptoProvider>, cert: &DtlsCert) -> String {
    new_rtc(crypto, cert)
        .direct_api()
        .local_dtls_fingerprint()
        .to_string()
}

/// Runs a connection until it fails or is closed, then reports it.
/// `_alive` is held until the task ends (see `Rtc::shutdown`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    _alive: mpsc::Sender<()>,
    shared: Arc<Shared>,
    peer: String,
    serial: u64,
    offerer: bool,
    socket: UdpSocket,
    commands: mpsc::UnboundedReceiver<Command>,
    max_send: Arc<AtomicUsize>,
) {
    let rtc = new_rtc(&shared.crypto, &shared.cert);
    let mut conn = Conn {
        shared: shared.clone(),
        peer: peer.clone(),
        rtc,
        socket,
        local_addr: None,
        offerer,
        pending_offer: None,
        remote_sdp_seen: false,
        candidates: VecDeque::new(),
        mid: None,
        channel: None,
        open: false,
        ice_connected: false,
        outbox: VecDeque::new(),
        max_send,
        stun: Gatherer::idle(),
        closing: false,
        flush_until: None,
        kick: false,
    };
    let outcome = conn.run(commands).await;
    shared.remove(&peer, serial);
    match outcome {
        Some(reason) => {
            tracing::info!(peer, %reason, "connection closed");
            let _ = shared.events.send(RtcEvent::Closed { peer, reason }).await;
        }
        None => tracing::debug!(peer, "connection closed locally"),
    }
}

struct Conn {
    shared: Arc<Shared>,
    peer: String,
    rtc: str0m::Rtc,
    socket: UdpSocket,
    local_addr: Option<SocketAddr>,
    offerer: bool,
    /// The offer we made, until the answer arrives.
    pending_offer: Option<SdpPendingOffer>,
    /// Whether the remote's offer or answer has been applied.
    remote_sdp_seen: bool,
    /// Remote candidates from `ice-candidate` signals, not yet applied
    /// (each is a separate mutation; none before the remote SDP).
    candidates: VecDeque<Candidate>,
    /// `a=mid` of our data m-line, for trickled candidates.
    mid: Option<String>,
    channel: Option<ChannelId>,
    open: bool,
    ice_connected: bool,
    /// Messages not yet accepted by the data channel.
    outbox: VecDeque<String>,
    max_send: Arc<AtomicUsize>,
    stun: Gatherer,
    /// Set once we close: events are no longer reported.
    closing: bool,
    /// Set by a close request: deliver what's queued until then, then close.
    flush_until: Option<tokio::time::Instant>,
    /// Feed the engine a timeout: str0m doesn't schedule one after some
    /// mutations (after `accept_offer` it waits for the peer's checks, which
    /// never come if the peer has no usable candidate of ours).
    kick: bool,
}

/// What woke the loop up.
enum Wake {
    Command(Option<Command>),
    Datagram(std::io::Result<(usize, SocketAddr)>),
    Timeout,
    ConnectTimeout,
    StunResolved(Vec<SocketAddr>),
    StunDue,
}

impl Conn {
    /// `None` if closed locally, else why it failed.
    async fn run(&mut self, mut commands: mpsc::UnboundedReceiver<Command>) -> Option<Reason> {
        let deadline = tokio::time::Instant::now() + self.shared.config.connect_timeout;
        let mut stun_resolve = self.start_stun_resolve();
        if let Err(reason) = self.start().await {
            return Some(reason);
        }
        let mut buf = vec![0u8; 2048];
        loop {
            let timeout = match self.drain().await {
                Ok(t) => t,
                Err(reason) => return Some(reason),
            };
            if !self.rtc.is_alive() {
                return Some("the connection was closed".into());
            }
            match self.next_mutation() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(reason) => return Some(reason),
            }
            if let Some(until) = self.flush_until {
                if self.flushed() || tokio::time::Instant::now() >= until {
                    self.close().await;
                    return None;
                }
            }
            let flushing = self.flush_until.is_some();
            let stun_due = self.stun.deadline();
            let wake = tokio::select! {
                c = commands.recv(), if !flushing => Wake::Command(c),
                _ = async { tokio::time::sleep_until(self.flush_until.expect("guarded")).await },
                    if flushing => Wake::Timeout,
                r = self.socket.recv_from(&mut buf) => Wake::Datagram(r),
                _ = tokio::time::sleep_until(timeout.into()) => Wake::Timeout,
                _ = tokio::time::sleep_until(deadline), if !self.open => Wake::ConnectTimeout,
                r = async { stun_resolve.as_mut().expect("guarded").await }, if stun_resolve.is_some() => {
                    Wake::StunResolved(r.unwrap_or_default())
                }
                _ = async { tokio::time::sleep_until(stun_due.expect("guarded").into()).await },
                    if stun_due.is_some() => Wake::StunDue,
            };
            let result = match wake {
                Wake::Command(None) => {
                    self.close().await;
                    return None;
                }
                Wake::Command(Some(Command::Close)) => {
                    if !self.open || self.flushed() {
                        self.close().await;
                        return None;
                    }
                    self.flush_until = Some(tokio::time::Instant::now() + crate::FLUSH_LIMIT);
                    Ok(())
                }
                Wake::Command(Some(Command::Signal(signal))) => self.on_signal(signal).await,
                Wake::Command(Some(Command::Send(text))) => {
                    self.outbox.push_back(text);
                    Ok(())
                }
                Wake::Datagram(Ok((n, source))) => self.on_datagram(&buf[..n], source).await,
                Wake::Datagram(Err(e)) => {
                    // E.g. an ICMP error surfaced on the socket; ICE copes.
                    tracing::debug!(peer = %self.peer, error = %e, "UDP receive error");
                    Ok(())
                }
                Wake::Timeout => self.input(Input::Timeout(Instant::now())),
                Wake::ConnectTimeout => Err(format!(
                    "timed out after {:?} waiting for the data channel to open",
                    self.shared.config.connect_timeout
                )),
                Wake::StunResolved(servers) => {
                    stun_resolve = None;
                    if let Some(local) = self.local_addr {
                        self.stun = Gatherer::new(servers, local);
                    }
                    Ok(())
                }
                Wake::StunDue => {
                    for (to, request) in self.stun.due(Instant::now()) {
                        if let Err(e) = self.socket.send_to(&request, to).await {
                            tracing::debug!(peer = %self.peer, %to, error = %e, "STUN send failed");
                        }
                    }
                    Ok(())
                }
            };
            if let Err(reason) = result {
                return Some(reason);
            }
        }
    }

    /// Adds the host candidate; as offerer, creates the channel and offers.
    async fn start(&mut self) -> Result<(), Reason> {
        let local = self
            .socket
            .local_addr()
            .map_err(|e| format!("UDP socket has no local address: {e}"))?;
        self.local_addr = Some(local);
        let host = Candidate::host(local, "udp")
            .map_err(|e| format!("can't use {local} as a host candidate: {e}"))?;
        self.rtc.add_local_candidate(host);
        self.drain().await?;
        if !self.offerer {
            return Ok(());
        }
        let mut api = self.rtc.sdp_api();
        let id = api.add_channel_with_config(ChannelConfig {
            label: CHANNEL_LABEL.to_string(),
            ordered: true,
            reliability: Reliability::Reliable,
            negotiated: None,
            protocol: String::new(),
        });
        let (offer, pending) = api.apply().ok_or("str0m made no offer")?;
        self.channel = Some(id);
        self.pending_offer = Some(pending);
        let sdp = offer.to_sdp_string();
        self.mid = find_mid(&sdp);
        tracing::debug!(peer = %self.peer, "sending offer");
        self.emit(RtcEvent::Signal {
            peer: self.peer.clone(),
            signal: WebRtcSignal::Offer { sdp },
        })
        .await
    }

    /// Resolves the STUN servers' names off the loop.
    fn start_stun_resolve(&self) -> Option<oneshot::Receiver<Vec<SocketAddr>>> {
        let hosts = stun::stun_hosts(&self.shared.config.ice_servers);
        if hosts.is_empty() {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let mut addrs = Vec::new();
            for host in hosts {
                let lookup = tokio::net::lookup_host(host.clone());
                match tokio::time::timeout(std::time::Duration::from_secs(3), lookup).await {
                    Ok(Ok(found)) => addrs.extend(found),
                    _ => tracing::debug!(%host, "could not resolve STUN server"),
                }
            }
            let _ = tx.send(addrs);
        });
        Some(rx)
    }

    /// Drains `poll_output` to the next timeout.
    async fn drain(&mut self) -> Result<Instant, Reason> {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => return Ok(t),
                Ok(Output::Transmit(t)) => {
                    if let Err(e) = self.socket.send_to(&t.contents, t.destination).await {
                        tracing::debug!(peer = %self.peer, to = %t.destination, error = %e, "UDP send failed");
                    }
                }
                Ok(Output::Event(event)) => self.on_event(event).await?,
                Err(e) => return Err(format!("WebRTC error: {e}")),
            }
        }
    }

    /// Performs one pending mutation, if any: a remote candidate, or a
    /// queued message the channel accepts. `Ok(true)` if it did.
    fn next_mutation(&mut self) -> Result<bool, Reason> {
        if self.kick {
            self.kick = false;
            self.input(Input::Timeout(Instant::now()))?;
            return Ok(true);
        }
        if self.remote_sdp_seen {
            if let Some(c) = self.candidates.pop_front() {
                tracing::debug!(peer = %self.peer, "adding a remote candidate");
                self.rtc.add_remote_candidate(c);
                self.kick = true;
                return Ok(true);
            }
        }
        let (Some(id), Some(text)) = (self.channel.filter(|_| self.open), self.outbox.front())
        else {
            return Ok(false);
        };
        let max = self.max_send.load(Ordering::Relaxed);
        if text.len() > max {
            return Err(format!(
                "a message of {} bytes exceeds the peer's max-message-size of {max} bytes",
                text.len()
            ));
        }
        let mut channel = self
            .rtc
            .channel(id)
            .ok_or("the data channel is no longer available")?;
        // `false`: SCTP's send buffer is full; retry after the next input.
        match channel.write(false, text.as_bytes()) {
            Ok(true) => {
                self.outbox.pop_front();
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => Err(format!("data channel write failed: {e}")),
        }
    }

    fn input(&mut self, input: Input) -> Result<(), Reason> {
        self.rtc
            .handle_input(input)
            .map_err(|e| format!("WebRTC error: {e}"))
    }

    async fn on_datagram(&mut self, packet: &[u8], source: SocketAddr) -> Result<(), Reason> {
        let Some(local) = self.local_addr else {
            return Ok(());
        };
        if let Some(mapped) = self.stun.handle(packet, source) {
            return self.add_reflexive(mapped, local).await;
        }
        let Ok(contents) = DatagramRecv::try_from(packet) else {
            tracing::trace!(peer = %self.peer, %source, "ignoring a non-WebRTC datagram");
            return Ok(());
        };
        self.input(Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: local,
                contents,
            },
        ))
    }

    /// Adds a server-reflexive candidate and trickles it to the peer.
    async fn add_reflexive(&mut self, mapped: SocketAddr, local: SocketAddr) -> Result<(), Reason> {
        if mapped == local {
            return Ok(());
        }
        let Ok(c) = Candidate::server_reflexive(mapped, local, "udp") else {
            return Ok(());
        };
        let Some(added) = self.rtc.add_local_candidate(c) else {
            return Ok(());
        };
        let candidate = added.to_sdp_string();
        tracing::debug!(peer = %self.peer, "trickling a server-reflexive candidate");
        self.emit(RtcEvent::Signal {
            peer: self.peer.clone(),
            signal: WebRtcSignal::IceCandidate {
                candidate,
                sdp_mid: Some(self.mid.clone().unwrap_or_else(|| "0".into())),
                sdp_m_line_index: Some(0),
            },
        })
        .await
    }

    async fn on_signal(&mut self, signal: WebRtcSignal) -> Result<(), Reason> {
        match signal {
            WebRtcSignal::Offer { sdp } => {
                if self.offerer {
                    return Err("the peer sent an offer, but this side is the offerer".into());
                }
                let offer = SdpOffer::from_sdp_string(&sdp)
                    .map_err(|e| format!("invalid SDP offer from the peer: {e}"))?;
                self.set_max_send(&sdp);
                let answer = self
                    .rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .map_err(|e| format!("can't accept the peer's SDP offer: {e}"))?;
                self.remote_sdp_seen = true;
                self.kick = true;
                let sdp = answer.to_sdp_string();
                self.mid = find_mid(&sdp);
                tracing::debug!(peer = %self.peer, "sending answer");
                self.emit(RtcEvent::Signal {
                    peer: self.peer.clone(),
                    signal: WebRtcSignal::Answer { sdp },
                })
                .await
            }
            WebRtcSignal::Answer { sdp } => {
                let Some(pending) = self.pending_offer.take() else {
                    return Err("the peer sent an answer to no offer".into());
                };
                let answer = SdpAnswer::from_sdp_string(&sdp)
                    .map_err(|e| format!("invalid SDP answer from the peer: {e}"))?;
                self.set_max_send(&sdp);
                self.rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .map_err(|e| format!("can't accept the peer's SDP answer: {e}"))?;
                self.remote_sdp_seen = true;
                self.kick = true;
                tracing::debug!(peer = %self.peer, "answer applied");
                Ok(())
            }
            WebRtcSignal::IceCandidate { candidate, .. } => {
                if let Some(c) = parse_candidate(&self.peer, &candidate) {
                    self.candidates.push_back(c);
                }
                Ok(())
            }
        }
    }

    /// Records what the peer accepts, from `a=max-message-size`.
    fn set_max_send(&self, sdp: &str) {
        let advertised = sdp
            .lines()
            .find_map(|l| l.trim().strip_prefix("a=max-message-size:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(DEFAULT_REMOTE_MAX_MESSAGE_SIZE);
        // 0 means "no limit"; ours is what SCTP can buffer.
        let max = match advertised {
            0 => SCTP_MAX_BUFFERED,
            n => n.min(SCTP_MAX_BUFFERED),
        };
        self.max_send.store(max, Ordering::Relaxed);
    }

    async fn on_event(&mut self, event: Event) -> Result<(), Reason> {
        if self.closing {
            return Ok(());
        }
        match event {
            Event::IceConnectionStateChange(state) => {
                tracing::debug!(peer = %self.peer, ?state, "ICE state");
                match state {
                    IceConnectionState::Connected | IceConnectionState::Completed => {
                        self.ice_connected = true;
                    }
                    // Before the first connection, more candidates may still
                    // come; the connect timeout bounds the wait.
                    IceConnectionState::Disconnected if self.ice_connected => {
                        return Err("ICE disconnected".into());
                    }
                    _ => {}
                }
            }
            Event::Connected => tracing::debug!(peer = %self.peer, "DTLS connected"),
            Event::ChannelOpen(id, _label) => {
                if self.open {
                    tracing::debug!(peer = %self.peer, "ignoring an extra data channel");
                    return Ok(());
                }
                if self.channel.is_some_and(|ours| ours != id) {
                    tracing::debug!(peer = %self.peer, "ignoring a channel that isn't ours");
                    return Ok(());
                }
                self.channel = Some(id);
                self.open = true;
                let api = self.rtc.direct_api();
                let local_fingerprint = api.local_dtls_fingerprint().to_string();
                let remote_fingerprint = api
                    .remote_dtls_fingerprint()
                    .map(|f| f.to_string())
                    .unwrap_or_default();
                tracing::info!(peer = %self.peer, "data channel open");
                self.emit(RtcEvent::Open {
                    peer: self.peer.clone(),
                    local_fingerprint,
                    remote_fingerprint,
                })
                .await?;
            }
            Event::ChannelData(data) => match String::from_utf8(data.data) {
                Ok(text) => {
                    self.emit(RtcEvent::Message {
                        peer: self.peer.clone(),
                        text,
                    })
                    .await?
                }
                Err(e) => tracing::warn!(
                    peer = %self.peer,
                    bytes = e.as_bytes().len(),
                    "dropping a message that isn't UTF-8 text"
                ),
            },
            Event::ChannelClose(id) if Some(id) == self.channel => {
                return Err("the peer closed the data channel".into());
            }
            Event::Closed => return Err("the peer closed the connection".into()),
            _ => {}
        }
        Ok(())
    }

    async fn emit(&self, event: RtcEvent) -> Result<(), Reason> {
        if self.flush_until.is_some() {
            // Closing: the driver may be gone; keep flushing regardless.
            let _ = self.shared.events.try_send(event);
            return Ok(());
        }
        self.shared
            .events
            .send(event)
            .await
            .map_err(|_| "the driver's event receiver is gone".into())
    }

    /// Nothing queued here or unacknowledged in SCTP.
    fn flushed(&mut self) -> bool {
        if !self.outbox.is_empty() {
            return false;
        }
        match self.channel.and_then(|id| self.rtc.channel(id)) {
            Some(mut ch) => ch.buffered_amount() == 0,
            None => true,
        }
    }

    /// Tells the peer we're closing (SCTP shutdown, DTLS close_notify).
    async fn close(&mut self) {
        self.closing = true;
        if self.rtc.close().is_ok() {
            let _ = self.drain().await;
        }
    }
}

/// The `a=mid` of an SDP's first m-line.
fn find_mid(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=mid:"))
        .map(str::to_string)
}

/// A remote candidate from an `ice-candidate` signal, if usable.
fn parse_candidate(peer: &str, s: &str) -> Option<Candidate> {
    let s = s.trim();
    let s = s.strip_prefix("a=").unwrap_or(s);
    if s.is_empty() {
        // The browser's end-of-candidates.
        return None;
    }
    match Candidate::from_sdp_string(s) {
        Ok(c) => Some(c),
        Err(_)
            if s.split_whitespace()
                .nth(4)
                .is_some_and(|a| a.ends_with(".local")) =>
        {
            tracing::debug!(peer, "ignoring an mDNS (.local) candidate");
            None
        }
        Err(e) => {
            tracing::debug!(peer, error = %e, "ignoring an unusable candidate");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates() {
        let c = parse_candidate(
            "p",
            "candidate:842163049 1 udp 1677729535 127.0.0.1 50000 typ host generation 0 ufrag Ab12 network-id 1 network-cost 10",
        )
        .unwrap();
        assert_eq!(c.addr(), "127.0.0.1:50000".parse().unwrap());
        assert!(parse_candidate("p", "a=candidate:1 1 udp 2 10.0.0.1 9 typ host").is_some());
        assert!(parse_candidate(
            "p",
            "candidate:1 1 udp 2113937151 0f7c2e3a-9a47-4a11-9c52-1c44a5b0c7de.local 54321 typ host generation 0"
        )
        .is_none());
        assert!(parse_candidate("p", "").is_none());
        assert!(parse_candidate("p", "garbage").is_none());
    }

    #[test]
    fn mid() {
        assert_eq!(
            find_mid("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n"),
            Some("0".into())
        );
    }
}
