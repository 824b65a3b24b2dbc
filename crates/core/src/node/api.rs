//! What a driver sees of a node: the settings it chooses ([`Config`]),
//! what it feeds in ([`Event`], [`Command`]) and what comes out
//! ([`Action`], [`Progress`]).

use mpc_identity::{IdentityKey, KnownPeers, PublicKey};
use mpc_protocol::peer::{
    Curve, RefreshProposal, RepairProposal, SessionProposal, SignFormat, SignProposal,
};
use mpc_protocol::relay::WebRtcSignal;
use mpc_protocol::signal::{ClientMessage, ServerMessage};
use mpc_protocol::SignedMessage;

use crate::payload::{Review, SignSettings};
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
    /// The signaling server's host (and port, as in its URL): a signed
    /// `register` names it, so it cannot be replayed to another server.
    /// `None` signs the older statement, which does not.
    pub server_host: Option<String>,
    /// How transactions this node is asked to sign are read and reviewed.
    pub signing: SignSettings,
}

impl Config {
    /// Settings for `peer_id` with the defaults: [`DEFAULT_TIMEOUT_MS`] per phase,
    /// 1024 pending messages, an identity drawn from the seed, an empty address
    /// book, and trust on first use.
    pub fn new(peer_id: impl Into<String>) -> Self {
        Config {
            peer_id: peer_id.into(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_pending: 1024,
            identity: None,
            known_peers: KnownPeers::new(),
            require_pinned: false,
            server_host: None,
            signing: SignSettings::default(),
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
        /// The session id to use; `None` draws one.
        session_id: Option<String>,
        /// Everyone who will hold a share, this node included.
        participants: Vec<String>,
        /// How many participants it takes to sign.
        threshold: u16,
        /// The curve of the new wallet.
        curve: Curve,
    },
    /// Propose signing `message` with `wallet` to `signers` (which must
    /// include this node, be wallet participants and number at least the
    /// threshold). Without a `session_id`, one is drawn from the RNG.
    Sign {
        /// The session id to use; `None` draws one.
        session_id: Option<String>,
        /// The wallet to sign with, with this node's key package.
        wallet: Box<SigningWallet>,
        /// The bytes to sign, or the transaction (see `format`).
        message: Vec<u8>,
        /// What `message` is: each signer derives what it signs from it.
        format: SignFormat,
        /// Everyone who will sign, this node included.
        signers: Vec<String>,
    },
    /// Propose new shares of `wallet`'s key to `participants` (sorted
    /// wallet participants, this node included, at least the threshold):
    /// a wallet participant left out is removed. Without a `session_id`,
    /// one is drawn from the RNG.
    Refresh {
        /// The session id to use; `None` draws one.
        session_id: Option<String>,
        /// The wallet to refresh, with this node's current key package.
        wallet: Box<SigningWallet>,
        /// Everyone who keeps a share, this node included.
        participants: Vec<String>,
    },
    /// Propose that `helpers` (sorted wallet participants, this node
    /// included, at least the threshold) rebuild the share `target` lost.
    /// Without a `session_id`, one is drawn from the RNG.
    Repair {
        /// The session id to use; `None` draws one.
        session_id: Option<String>,
        /// The wallet, with this node's key package.
        wallet: Box<SigningWallet>,
        /// Who helps, this node included.
        helpers: Vec<String>,
        /// Whose share is rebuilt.
        target: String,
    },
    /// Abandon the active session.
    Cancel {
        /// The session to abandon.
        session_id: String,
    },
}

/// Everything that can happen to a node.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A request from the local user or application.
    Command(Command),
    /// A message from the signaling server; relayed peer messages and WebRTC
    /// signals arrive as [`ServerMessage::Relay`].
    Signal(ServerMessage),
    /// A message arrived on the data channel from `from`.
    PeerMessage {
        /// The peer that sent it.
        from: String,
        /// The message with its signature, not yet verified.
        msg: SignedMessage,
    },
    /// The data channel to this peer opened.
    ChannelOpen(String),
    /// The data channel to this peer closed or failed.
    ChannelClosed(String),
    /// The current time in ms (any monotonic origin). Drivers send it at
    /// least every second, or at [`Node::next_deadline`](crate::Node::next_deadline).
    Tick(u64),
    /// The user's (or a policy's) answer to [`Progress::NeedsDecision`].
    Decision {
        /// The session the proposal opens.
        session_id: String,
        /// Whether to join it.
        accept: bool,
        /// Why, when declining; sent to the proposer.
        reason: Option<String>,
    },
    /// The answer to [`Progress::NeedsSignDecision`]: `Some(wallet)` (the
    /// wallet whose group key the proposal names, with this node's key
    /// package) accepts; `None` declines with `reason`.
    SignDecision {
        /// The signing session the proposal opens.
        session_id: String,
        /// The wallet to sign with, or `None` to decline.
        wallet: Option<Box<SigningWallet>>,
        /// Why, when declining; sent to the proposer.
        reason: Option<String>,
    },
    /// The answer to [`Progress::NeedsRefreshDecision`]: `Some(wallet)`
    /// (the wallet the proposal names, with this node's current key
    /// package) accepts; `None` declines with `reason`.
    RefreshDecision {
        /// The refresh session the proposal opens.
        session_id: String,
        /// The wallet to refresh, or `None` to decline.
        wallet: Option<Box<SigningWallet>>,
        /// Why, when declining; sent to the proposer.
        reason: Option<String>,
    },
    /// The answer to [`Progress::NeedsRepairDecision`]. A helper accepts
    /// with `Some(wallet)`; the target accepts with `accept` alone (it
    /// has no wallet: it is what the repair gives it).
    RepairDecision {
        /// The repair session the proposal opens.
        session_id: String,
        /// Whether to take part.
        accept: bool,
        /// A helper's wallet.
        wallet: Option<Box<SigningWallet>>,
        /// Why, when declining; sent to the proposer.
        reason: Option<String>,
    },
    /// The driver's own WebRTC offer, answer or candidate for `to`; the core
    /// routes it through the relay.
    LocalSignal {
        /// The peer at the other end of the connection.
        to: String,
        /// The offer, answer or candidate.
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
        /// The peer to send to.
        to: String,
        /// The message, signed by this node.
        msg: SignedMessage,
    },
    /// Pin `key` for `peer` in the address book: its first use, shown to
    /// the user (in the proposal they accepted, or the session they began).
    PinKey {
        /// The peer the key belongs to.
        peer: String,
        /// The identity key to pin.
        key: PublicKey,
    },
    /// Set up a WebRTC connection to `peer`: as the offerer (create the data
    /// channel, send an offer), or expecting an offer from it.
    Connect {
        /// The peer to connect to.
        peer: String,
        /// Whether this node makes the offer.
        offerer: bool,
    },
    /// Feed this remote offer, answer or candidate into the connection to
    /// `from`.
    WebRtcSignal {
        /// The peer that sent it.
        from: String,
        /// The offer, answer or candidate to apply.
        signal: WebRtcSignal,
    },
    /// A milestone to show the user.
    Progress(Progress),
    /// The DKG succeeded and every `ready` hash matched: store this.
    Finished(Box<WalletResult>),
    /// Every other participant confirmed (with a signed `wallet_created`
    /// naming the same group key) that it stored its share: only now is
    /// the wallet safe to fund.
    WalletConfirmed {
        /// The key generation session.
        session_id: String,
        /// The wallet's group key (hex).
        group_public_key: String,
    },
    /// Not every participant confirmed storing its share, before the
    /// timeout or because one aborted after this node finished: do not
    /// fund this wallet.
    WalletUnconfirmed {
        /// The key generation session.
        session_id: String,
        /// The wallet's group key (hex).
        group_public_key: String,
        /// The participants that never confirmed.
        missing: Vec<String>,
        /// Why confirmation ended.
        reason: AbortReason,
    },
    /// A refresh agreed on new shares: store this one as pending, next to
    /// the current one, before anything else of this batch is sent (the
    /// batch tells the others it is stored). The current share stays in
    /// use until [`Action::RefreshConfirmed`].
    Refreshed(Box<WalletResult>),
    /// Every other participant confirmed (a signed `refresh_committed`)
    /// that it stored its new share: make the pending share current and
    /// erase the old one.
    RefreshConfirmed {
        /// The refresh session.
        session_id: String,
        /// The wallet's group key (hex), unchanged.
        group_public_key: String,
        /// The new shares' generation.
        generation: u32,
    },
    /// Not every participant confirmed its new share: keep signing with the
    /// current one, and keep the pending one (a participant that did get
    /// every confirmation uses the new generation; a signing request
    /// naming it shows which).
    RefreshUnconfirmed {
        /// The refresh session.
        session_id: String,
        /// The wallet's group key (hex).
        group_public_key: String,
        /// The pending shares' generation.
        generation: u32,
        /// The participants that never confirmed.
        missing: Vec<String>,
        /// Why confirmation ended.
        reason: AbortReason,
    },
    /// A repair added a participant: store this wallet (this node's share,
    /// unchanged, with the new participant's name, identifier and
    /// verifying share) in place of the wallet's file.
    ParticipantAdded(Box<WalletResult>),
    /// A repair this node helped with is over: the target rebuilt its
    /// share, checked it and stored it.
    Repaired {
        /// The repair session.
        session_id: String,
        /// The wallet's group key (hex).
        group_public_key: String,
        /// Whose share was rebuilt.
        target: String,
    },
    /// A signing session produced this signature, and this node verified it
    /// under the group key.
    Signed(Box<SignatureResult>),
    /// The session ended without a wallet or signature.
    Aborted {
        /// The session that ended.
        session_id: String,
        /// Why it ended.
        reason: AbortReason,
    },
    /// An input was ignored; for logs, never an error of this node.
    Rejected {
        /// The peer that sent the input, if any.
        from: Option<String>,
        /// The session it named, if any.
        session_id: Option<String>,
        /// Why it was ignored.
        reason: String,
    },
}

/// Milestones for a user interface.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// The signaling server accepted this node's registration.
    Registered {
        /// The peer id it registered.
        peer_id: String,
    },
    /// The signaling server listed the peers online.
    Peers {
        /// Their peer ids.
        peers: Vec<String>,
    },
    /// The signaling server reported an error, or sent something unreadable.
    ServerError {
        /// What went wrong.
        error: String,
    },
    /// A valid proposal arrived: answer with [`Event::Decision`].
    NeedsDecision {
        /// The proposing peer.
        from: String,
        /// The proposal as received.
        proposal: SessionProposal,
        /// Participants whose keys are not pinned yet: accepting pins them.
        new_keys: Vec<NewKey>,
    },
    /// `accepted` of `total` participants (initiator included) have accepted.
    Accepted {
        /// The session.
        session_id: String,
        /// The participant who just accepted.
        peer: String,
        /// Participants who have accepted so far.
        accepted: usize,
        /// Participants in all.
        total: usize,
    },
    /// Channels open so far, out of those needed.
    Mesh {
        /// The session.
        session_id: String,
        /// Channels open so far.
        open: usize,
        /// Channels this node needs.
        needed: usize,
    },
    /// `mesh_ready` received from `ready` of `needed` peers.
    MeshReady {
        /// The session.
        session_id: String,
        /// Peers that have sent `mesh_ready`.
        ready: usize,
        /// Peers this node waits for.
        needed: usize,
    },
    /// 1: commitment broadcast; 2: shares sent; 3: `ready` sent.
    DkgRound {
        /// The session.
        session_id: String,
        /// The round just reached.
        round: u8,
    },
    /// A peer reported `wallet_created` with the same group key.
    PeerStored {
        /// The session.
        session_id: String,
        /// The peer that stored the wallet.
        peer: String,
    },
    /// A valid `sign_proposal` arrived: find the wallet with its
    /// `group_public_key`, show the message, and answer with
    /// [`Event::SignDecision`].
    NeedsSignDecision {
        /// The proposing peer.
        from: String,
        /// The proposal as received.
        proposal: SignProposal,
        /// Signers whose keys are not pinned yet: accepting pins them.
        new_keys: Vec<NewKey>,
        /// For a transaction: what it does, as this node decoded it.
        review: Option<Review>,
    },
    /// A valid `refresh_proposal` arrived: find the wallet with its
    /// `group_public_key`, show what changes, and answer with
    /// [`Event::RefreshDecision`].
    NeedsRefreshDecision {
        /// The proposing peer.
        from: String,
        /// The proposal as received.
        proposal: RefreshProposal,
        /// Participants whose keys are not pinned yet: accepting pins them.
        new_keys: Vec<NewKey>,
    },
    /// A valid `repair_proposal` arrived. A helper finds the wallet by its
    /// `group_public_key`; the target has none. Answer with
    /// [`Event::RepairDecision`].
    NeedsRepairDecision {
        /// The proposing peer.
        from: String,
        /// The proposal as received.
        proposal: RepairProposal,
        /// Participants whose keys are not pinned yet: accepting pins them.
        new_keys: Vec<NewKey>,
    },
    /// A participant reported `refresh_committed`: it stored its new share.
    PeerCommitted {
        /// The session.
        session_id: String,
        /// The peer that stored its new share.
        peer: String,
    },
    /// The signing round this node just sent. FROST: 1 the commitment,
    /// 2 the signature share. DKLs23 (Ethereum wallets): its rounds 1–3.
    SignRound {
        /// The session.
        session_id: String,
        /// The round just sent.
        round: u8,
    },
    /// This node holds the signature, verified under the group key.
    SignatureVerified {
        /// The session.
        session_id: String,
    },
    /// A signer reported `signature_created` with the same signature.
    PeerSigned {
        /// The session.
        session_id: String,
        /// The signer that reported it.
        peer: String,
    },
}
