//! What a driver sees of a node: the settings it chooses ([`Config`]),
//! what it feeds in ([`Event`], [`Command`]) and what comes out
//! ([`Action`], [`Progress`]).

use mpc_identity::{IdentityKey, KnownPeers, PublicKey};
use mpc_protocol::peer::{Curve, SessionProposal, SignProposal};
use mpc_protocol::relay::WebRtcSignal;
use mpc_protocol::signal::{ClientMessage, ServerMessage};
use mpc_protocol::SignedMessage;

use crate::session::{AbortReason, DEFAULT_TIMEOUT_MS};
use crate::trust::NewKey;
use crate::wallet::{SignatureResult, SigningWallet, WalletResult};

/// Settings a driver chooses.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's peer id (as registered with the signaling server).
    pub peer_id: String,
    /// How long each phase (negotiation including the user's decision, mesh,
    /// DKG) may take before the session aborts, in ms.
    pub timeout_ms: u64,
    /// Most relayed messages held for sessions whose proposal has not
    /// arrived yet (the relay may reorder a response before its proposal).
    pub max_pending: usize,
    /// This node's long-term identity key. `None` draws one from the seed
    /// (simulations and tests); a wallet passes its stored key.
    pub identity: Option<IdentityKey>,
    /// Pinned identity keys of other peers (the address book).
    pub known_peers: KnownPeers,
    /// Refuse keys that are not pinned yet instead of trusting them on
    /// first use.
    pub require_pinned: bool,
}

impl Config {
    pub fn new(peer_id: impl Into<String>) -> Self {
        Config {
            peer_id: peer_id.into(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_pending: 1024,
            identity: None,
            known_peers: KnownPeers::new(),
            require_pinned: false,
        }
    }
}

/// Something the local user or application asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Send `register` with this node's peer id.
    Register,
    /// Send `list_peers`.
    ListPeers,
    /// Propose a new wallet to `participants` (which must include this
    /// node). Without a `session_id`, one is drawn from the RNG.
    Create {
        session_id: Option<String>,
        participants: Vec<String>,
        threshold: u16,
        curve: Curve,
    },
    /// Propose signing `message` with `wallet` to `signers` (which must
    /// include this node, be wallet participants and number at least the
    /// threshold). Without a `session_id`, one is drawn from the RNG.
    Sign {
        session_id: Option<String>,
        wallet: Box<SigningWallet>,
        message: Vec<u8>,
        signers: Vec<String>,
    },
    /// Abandon the active session.
    Cancel { session_id: String },
}

/// Everything that can happen to a node.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Command(Command),
    /// A message from the signaling server; relayed peer messages and WebRTC
    /// signals arrive as [`ServerMessage::Relay`].
    Signal(ServerMessage),
    /// A message arrived on the data channel from `from`.
    PeerMessage {
        from: String,
        msg: SignedMessage,
    },
    /// The data channel to this peer opened.
    ChannelOpen(String),
    /// The data channel to this peer closed or failed.
    ChannelClosed(String),
    /// The current time in ms (any monotonic origin). Drivers send it at
    /// least every second, or at [`Node::next_deadline`].
    Tick(u64),
    /// The user's (or a policy's) answer to [`Progress::NeedsDecision`].
    Decision {
        session_id: String,
        accept: bool,
        reason: Option<String>,
    },
    /// The answer to [`Progress::NeedsSignDecision`]: `Some(wallet)` (the
    /// wallet whose group key the proposal names, with this node's key
    /// package) accepts; `None` declines with `reason`.
    SignDecision {
        session_id: String,
        wallet: Option<Box<SigningWallet>>,
        reason: Option<String>,
    },
    /// The driver's own WebRTC offer, answer or candidate for `to`; the core
    /// routes it through the relay.
    LocalSignal {
        to: String,
        signal: WebRtcSignal,
    },
}

/// Everything a node can ask its driver to do or know.
#[derive(Clone, Debug)]
pub enum Action {
    /// Send to the signaling server (relay, register, list_peers).
    SendSignal(ClientMessage),
    /// Send over the data channel to `to` (already signed).
    SendPeer {
        to: String,
        msg: SignedMessage,
    },
    /// Pin `key` for `peer` in the address book: its first use, shown to
    /// the user (in the proposal they accepted, or the session they began).
    PinKey {
        peer: String,
        key: PublicKey,
    },
    /// Set up a WebRTC connection to `peer`: as the offerer (create the data
    /// channel, send an offer), or expecting an offer from it.
    Connect {
        peer: String,
        offerer: bool,
    },
    /// Feed this remote offer, answer or candidate into the connection to
    /// `from`.
    WebRtcSignal {
        from: String,
        signal: WebRtcSignal,
    },
    Progress(Progress),
    /// The DKG succeeded and every `ready` hash matched: store this.
    Finished(Box<WalletResult>),
    /// A signing session produced this signature, and this node verified it
    /// under the group key.
    Signed(Box<SignatureResult>),
    Aborted {
        session_id: String,
        reason: AbortReason,
    },
    /// An input was ignored; for logs, never an error of this node.
    Rejected {
        from: Option<String>,
        session_id: Option<String>,
        reason: String,
    },
}

/// Milestones for a user interface.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    Registered {
        peer_id: String,
    },
    Peers {
        peers: Vec<String>,
    },
    ServerError {
        error: String,
    },
    /// A valid proposal arrived: answer with [`Event::Decision`].
    NeedsDecision {
        from: String,
        proposal: SessionProposal,
        /// Participants whose keys are not pinned yet: accepting pins them.
        new_keys: Vec<NewKey>,
    },
    /// `accepted` of `total` participants (initiator included) have accepted.
    Accepted {
        session_id: String,
        peer: String,
        accepted: usize,
        total: usize,
    },
    /// Channels open so far, out of those needed.
    Mesh {
        session_id: String,
        open: usize,
        needed: usize,
    },
    /// `mesh_ready` received from `ready` of `needed` peers.
    MeshReady {
        session_id: String,
        ready: usize,
        needed: usize,
    },
    /// 1: commitment broadcast; 2: shares sent; 3: `ready` sent.
    DkgRound {
        session_id: String,
        round: u8,
    },
    /// A peer reported `wallet_created` with the same group key.
    PeerStored {
        session_id: String,
        peer: String,
    },
    /// A valid `sign_proposal` arrived: find the wallet with its
    /// `group_public_key`, show the message, and answer with
    /// [`Event::SignDecision`].
    NeedsSignDecision {
        from: String,
        proposal: SignProposal,
        /// Signers whose keys are not pinned yet: accepting pins them.
        new_keys: Vec<NewKey>,
    },
    /// 1: signing commitment broadcast; 2: signature share sent;
    /// 3: signature aggregated and verified.
    SignRound {
        session_id: String,
        round: u8,
    },
    /// A signer reported `signature_created` with the same signature.
    PeerSigned {
        session_id: String,
        peer: String,
    },
}
