//! What a simulation is asked to do: the network's behaviour
//! ([`NetConfig`]), misbehaving nodes ([`Fault`], [`VanishAt`]), an optional
//! signing session ([`SignPlan`]) and the whole run ([`SimConfig`]). Plain
//! public data; the other modules only read it.

use mpc_protocol::peer::{Curve, SignFormat};

/// Network behaviour. Delays are `(min, max)` in ms, drawn uniformly.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Delay of each relayed message.
    pub relay_delay_ms: (u64, u64),
    /// Probability that a relayed message is delivered twice.
    pub relay_duplicate: f64,
    /// Probability that a relayed message is lost (see the [`sim`](super)
    /// module docs).
    pub relay_loss: f64,
    /// Delay of each data-channel message.
    pub channel_delay_ms: (u64, u64),
    /// Time for the fake WebRTC to produce an offer/answer or open.
    pub connect_delay_ms: (u64, u64),
    /// Time a user takes to answer a proposal.
    pub decision_delay_ms: (u64, u64),
}

impl NetConfig {
    /// Reordering and duplication on the relay, jitter on channels.
    pub fn adverse() -> Self {
        NetConfig {
            relay_delay_ms: (1, 80),
            relay_duplicate: 0.1,
            relay_loss: 0.0,
            channel_delay_ms: (1, 30),
            connect_delay_ms: (5, 60),
            decision_delay_ms: (0, 200),
        }
    }

    /// No delays or faults: for benchmarks.
    pub fn ideal() -> Self {
        NetConfig {
            relay_delay_ms: (0, 0),
            relay_duplicate: 0.0,
            relay_loss: 0.0,
            channel_delay_ms: (0, 0),
            connect_delay_ms: (0, 0),
            decision_delay_ms: (0, 0),
        }
    }
}

/// Where in its run a vanishing node disappears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VanishAt {
    /// Instead of answering the proposal.
    Decision,
    /// Instead of sending its first message of this `type` (e.g. `"share"`).
    Sending(&'static str),
    /// Instead of sending its first message of this `type` (first) in the
    /// session of this id (second), e.g. `("ecdsa_round", "sign-1")`.
    SendingIn(&'static str, &'static str),
}

/// A misbehaving node, by index (node 0 is the initiator).
#[derive(Clone, Debug)]
pub enum Fault {
    /// Declines the proposal.
    Decline {
        /// The node.
        node: usize,
        /// The reason it gives.
        reason: String,
    },
    /// Disappears; `close_channels` says whether its peers notice (channels
    /// close) or only time out.
    Vanish {
        /// The node.
        node: usize,
        /// When.
        at: VanishAt,
        /// Whether its channels close as it goes.
        close_channels: bool,
    },
    /// Sends `to` a share that fails verification.
    #[cfg(feature = "faults")]
    BadShare {
        /// The sender.
        from: usize,
        /// The recipient of the bad share.
        to: usize,
    },
    /// Sends `to` a different round-1 package (with matching shares) than
    /// everyone else.
    #[cfg(feature = "faults")]
    Equivocate {
        /// The equivocator.
        node: usize,
        /// Who gets the other package.
        to: Vec<usize>,
    },
    /// In the signing session, sends `to` a commitment to other nonces
    /// than every other signer gets.
    #[cfg(feature = "faults")]
    SignEquivocate {
        /// The equivocating signer.
        node: usize,
        /// Who gets the other commitment.
        to: Vec<usize>,
    },
    /// In the signing session, sends every other signer a signature share
    /// that fails verification.
    #[cfg(feature = "faults")]
    BadSignatureShare {
        /// The signer.
        node: usize,
    },
    /// Sends its DKG shares unencrypted.
    #[cfg(feature = "faults")]
    PlaintextShares {
        /// The sender.
        node: usize,
    },
    /// The sign proposer sends `to` a proposal whose payload `tamper`
    /// changed (another amount, another destination).
    #[cfg(feature = "faults")]
    TamperProposal {
        /// The lying proposer.
        node: usize,
        /// Who gets the altered proposal.
        to: Vec<usize>,
        /// What it does to the payload.
        tamper: fn(&[u8]) -> Vec<u8>,
    },
    /// A repair helper sends `to` the wallet's public data with another
    /// generation.
    #[cfg(feature = "faults")]
    LieInRepair {
        /// The lying helper.
        node: usize,
        /// Who gets the lie (the target).
        to: Vec<usize>,
    },
}

/// A repair run after the wallet is created.
#[derive(Clone, Debug)]
pub struct RepairPlan {
    /// Node indexes of the helpers; the first proposes.
    pub helpers: Vec<usize>,
    /// The node whose share is rebuilt (its own is not used).
    pub target: usize,
}

/// A signing session run after the wallet is created, over the mesh the
/// DKG left open (channels are reused).
#[derive(Clone, Debug)]
pub struct SignPlan {
    /// Node indexes; the first one proposes.
    pub signers: Vec<usize>,
    /// What they sign.
    pub message: Vec<u8>,
    /// What `message` is.
    pub format: SignFormat,
    /// Builds the payload from the new wallet's group key instead (a
    /// transaction spending from its address), when set.
    pub build: Option<fn(&str) -> Vec<u8>>,
}

impl SignPlan {
    /// `signers` (the first proposes) sign `message` as it is.
    pub fn message(signers: Vec<usize>, message: impl Into<Vec<u8>>) -> Self {
        SignPlan {
            signers,
            message: message.into(),
            format: SignFormat::Message,
            build: None,
        }
    }
}

/// One simulated session.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// How many nodes take part.
    pub participants: usize,
    /// The wallet's threshold.
    pub threshold: u16,
    /// The wallet's curve.
    pub curve: Curve,
    /// The seed every random draw of the run comes from.
    pub seed: u64,
    /// The network's behaviour.
    pub net: NetConfig,
    /// Nodes that misbehave.
    pub faults: Vec<Fault>,
    /// Each node's phase timeout.
    pub timeout_ms: u64,
    /// Keep every message in [`SimReport::log`](super::SimReport::log).
    pub record: bool,
    /// Give up (leaving nodes [`Outcome::Pending`](super::Outcome::Pending))
    /// after this much simulated time.
    pub max_time_ms: u64,
    /// Garbage messages from a non-participant (`mallory`) injected at
    /// random times into random nodes, over the relay and over channels.
    pub noise: usize,
    /// Refresh the wallet once every node holds it: node indexes that
    /// keep a share (the first proposes; any other is removed).
    pub refresh: Option<Vec<usize>>,
    /// Repair a share once every node holds the wallet (instead of a
    /// refresh).
    pub repair: Option<RepairPlan>,
    /// Sign a message once every node holds the wallet (after the
    /// refresh, if one is planned, with the refreshed shares).
    pub sign: Option<SignPlan>,
}

impl SimConfig {
    /// A run on an adverse network, without faults, noise or signing.
    pub fn new(participants: usize, threshold: u16, curve: Curve, seed: u64) -> Self {
        SimConfig {
            participants,
            threshold,
            curve,
            seed,
            net: NetConfig::adverse(),
            faults: Vec::new(),
            timeout_ms: 10_000,
            record: false,
            max_time_ms: 600_000,
            noise: 0,
            refresh: None,
            repair: None,
            sign: None,
        }
    }
}
