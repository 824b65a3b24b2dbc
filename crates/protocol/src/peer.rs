//! Node ↔ node application messages: `{"type": "...", "payload": {...}}`.
//!
//! They travel over a WebRTC data channel, or inside a relay's `data` while
//! no channel exists yet (session negotiation). The spec names `ack`,
//! `session_proposal`, `channel_open`, `mesh_ready`, `commitment`, `share`,
//! `ready` and `wallet_created`; we add `session_response` and
//! `session_abort`. Fields beyond the spec's examples are optional, so every
//! spec example parses and serializes back unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ParseError;

/// The generic spec shape `{ "type": "<msg_type>", "payload": { ... } }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppMessage {
    #[serde(rename = "type")]
    pub msg_type: String,
    #[serde(default)]
    pub payload: Value,
}

/// The signature schemes a wallet can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Curve {
    /// FROST(secp256k1, SHA-256) with BIP340/BIP341 Taproot tweaks.
    Secp256k1,
    /// FROST(Ed25519, SHA-512).
    Ed25519,
    /// Threshold ECDSA on secp256k1 (DKLs23), for Ethereum.
    #[serde(rename = "secp256k1-ecdsa")]
    Secp256k1Ecdsa,
}

impl Curve {
    pub fn as_str(self) -> &'static str {
        match self {
            Curve::Secp256k1 => "secp256k1",
            Curve::Ed25519 => "ed25519",
            Curve::Secp256k1Ecdsa => "secp256k1-ecdsa",
        }
    }
}

impl std::fmt::Display for Curve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Curve {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "secp256k1" => Ok(Curve::Secp256k1),
            "ed25519" => Ok(Curve::Ed25519),
            "secp256k1-ecdsa" => Ok(Curve::Secp256k1Ecdsa),
            _ => Err(format!(
                "unknown curve {s:?} (expected \"secp256k1\", \"ed25519\" or \"secp256k1-ecdsa\")"
            )),
        }
    }
}

/// `ack`: acknowledges a message by id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub msg_id: String,
}

/// `session_proposal`: the initiator's offer to create a wallet.
///
/// `curve` and `initiator` are absent from the spec's example; a node treats
/// a missing curve as `secp256k1` and a missing initiator as the sender.
/// `curve` stays a string on the wire so that an unknown curve is a reasoned
/// decline rather than an unparseable message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionProposal {
    pub session_id: String,
    pub total: u16,
    pub threshold: u16,
    pub participants: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    /// Participant → hex Ed25519 identity key. Every later message of the
    /// session must be signed by its sender's key from this map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<BTreeMap<String, String>>,
}

/// `session_response`: one participant's answer, sent to every participant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionResponse {
    pub session_id: String,
    pub accepted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Ours: SHA-256 (hex) of the proposal this answers, as JSON, so an
    /// answer to another proposal with the same session id cannot end
    /// this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal_hash: Option<String>,
}

/// `session_abort`: a node gives up on a session and says why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionAbort {
    pub session_id: String,
    pub reason: String,
}

/// `channel_open`: the sender's data channel to `peer_id` is open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelOpen {
    pub peer_id: String,
}

/// `mesh_ready`: the sender has open channels to every participant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshReady {
    pub session_id: String,
}

/// `commitment`: a DKG round-1 package, broadcast.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitment {
    /// Hex of the serialized round-1 package.
    pub data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Hex of the sender's X25519 key for this session: shares to the
    /// sender are encrypted to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enc_key: Option<String>,
}

/// `share`: a DKG round-2 package for exactly one recipient.
///
/// `Debug` never prints `data`: it is a secret share.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// Hex of the serialized round-2 package; with `enc`, hex of its
    /// ciphertext (`nonce ‖ sealed box`).
    pub data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The encryption scheme of `data`: `x25519-xchacha20poly1305`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enc: Option<String>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field(
                "data",
                &format_args!("<redacted {} chars>", self.data.len()),
            )
            .field("session_id", &self.session_id)
            .field("enc", &self.enc)
            .finish()
    }
}

/// `ready`: the sender finished the DKG; `transcript_hash` lets every node
/// check that all saw the same commitments and group key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript_hash: Option<String>,
    /// Peer id → hex SHA-256 of the round-1 package the sender used for that
    /// participant. When transcript hashes differ, comparing these names the
    /// participant who sent different commitments to different peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment_digests: Option<BTreeMap<String, String>>,
}

/// `wallet_created`: the sender stored its share of `pubkey`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletCreated {
    pub session_id: String,
    /// Hex of the group public key.
    pub pubkey: String,
    /// Ours: from a participant a repair added, its verifying share
    /// (hex), for the others to check and add to their wallets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifying_share: Option<String>,
}

/// `sign_proposal`: the proposer asks `signers` (itself included) to sign
/// `message_hex` with the wallet whose group key is `group_public_key`.
/// Sent through the relay, like `session_proposal`; each signer answers
/// with a `session_response` to every other signer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignProposal {
    pub session_id: String,
    /// Hex of the wallet's group verifying key, as in `wallet_created`.
    pub group_public_key: String,
    /// Hex of the thing to sign: the exact bytes, or (see `format`) a
    /// transaction each signer decodes and derives its messages from.
    pub message_hex: String,
    /// Peer ids of every signer, the proposer included.
    pub signers: Vec<String>,
    /// Signer → hex Ed25519 identity key, as in `session_proposal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<BTreeMap<String, String>>,
    /// Ours: what `message_hex` is. Absent means [`SignFormat::Message`].
    #[serde(default, skip_serializing_if = "SignFormat::is_message")]
    pub format: SignFormat,
    /// Ours: the generation of the shares to sign with (0, absent, until
    /// the wallet's first refresh). Shares of different generations do
    /// not combine, so a signer holding another one declines.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `refresh_proposal` (ours): every participant gets a new share of the
/// same key, so the address stays; the old shares stop combining with the
/// new ones. A wallet participant not in `participants` is removed.
/// Sent through the relay; answered, meshed and run like a key
/// generation (`commitment`, `share`, `ready`), then `refresh_committed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshProposal {
    pub session_id: String,
    /// Hex of the wallet's group verifying key.
    pub group_public_key: String,
    /// `"secp256k1"` or `"ed25519"`, as in `session_proposal`.
    pub curve: String,
    /// Unchanged by a refresh.
    pub threshold: u16,
    /// Who keeps a share, proposer included: sorted wallet participants.
    pub participants: Vec<String>,
    /// The generation of the shares being replaced; the new ones are the
    /// next.
    pub generation: u32,
    /// Participant → hex Ed25519 identity key, as in `session_proposal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<BTreeMap<String, String>>,
}

/// `refresh_committed` (ours): the sender stored its new share, still
/// pending. Once a node has one from every other participant it erases
/// its old share; until then the old one stays in use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshCommitted {
    pub session_id: String,
    /// Hex of the (unchanged) group key.
    pub group_public_key: String,
    /// The new shares' generation.
    pub generation: u32,
}

/// What a `sign_proposal` carries. A signer never signs a hash a peer
/// handed it: for a transaction, each signer computes what it signs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignFormat {
    /// The bytes themselves, signed as they are.
    #[default]
    Message,
    /// A BIP174 PSBT: one BIP341 key-path signature for every input that
    /// pays the wallet, each over the sighash the signer computes itself.
    BitcoinPsbt,
    /// A Solana transaction or bare message (legacy or v0): one ed25519
    /// signature over the message, for the wallet's signer slot.
    SolanaTransaction,
    /// Ours: an EIP-191 `personal_sign` message, as its bytes; each signer
    /// hashes it with the Ethereum prefix itself.
    EthereumMessage,
    /// Ours: EIP-712 typed data (`eth_signTypedData_v4`), as its JSON;
    /// each signer computes its signing hash itself.
    EthereumTypedData,
    /// Ours: an unsigned EIP-1559 transaction (`0x02 ‖ rlp(...)`); each
    /// signer decodes it and computes its signing hash.
    EthereumTransaction,
}

impl SignFormat {
    pub fn is_message(&self) -> bool {
        *self == SignFormat::Message
    }

    /// Whether this is signed by an Ethereum (ECDSA) wallet.
    pub fn is_ethereum(&self) -> bool {
        matches!(
            self,
            SignFormat::EthereumMessage
                | SignFormat::EthereumTypedData
                | SignFormat::EthereumTransaction
        )
    }
}

/// `sign_commitment`: a FROST signing round-1 commitment (hiding and
/// binding nonce commitments), broadcast to every other signer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignCommitment {
    pub session_id: String,
    /// Hex of frost's serialized `SigningCommitments`.
    pub data: String,
    /// Ours: the commitments for the session's second and later messages
    /// (a PSBT's inputs), in order; one fresh nonce pair per message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<String>,
}

/// `signature_share`: a FROST signing round-2 share, broadcast to every
/// other signer (each signer aggregates for itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureShare {
    pub session_id: String,
    /// Hex of frost's serialized `SignatureShare`.
    pub data: String,
    /// Ours: the shares for the second and later messages, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<String>,
    /// Ours: SHA-256 (hex) of the signing packages (every signer's
    /// commitments and the messages, concatenated in order) this share was
    /// made over. A share over
    /// another package than the receiver's says a signer sent different
    /// commitments to different signers; it is no evidence against the
    /// share's sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_digest: Option<String>,
}

/// `signature_created`: the sender aggregated and verified this signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureCreated {
    pub session_id: String,
    /// Hex of the 64-byte signature (BIP340 for secp256k1, RFC 8032 for
    /// ed25519); for several messages, their signatures concatenated.
    pub signature: String,
}

/// `repair_proposal` (ours): `helpers` (at least the threshold of the
/// wallet's participants) rebuild the share of `target`, who lost it, with
/// frost's repairable threshold scheme. No helper learns the share.
/// Sent through the relay to the helpers and the target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairProposal {
    pub session_id: String,
    /// Hex of the wallet's group verifying key.
    pub group_public_key: String,
    /// `"secp256k1"` or `"ed25519"`.
    pub curve: String,
    pub threshold: u16,
    /// Sorted wallet participants that help, proposer included.
    pub helpers: Vec<String>,
    /// The participant whose share is rebuilt.
    pub target: String,
    /// The generation of the helpers' shares (the target's is the same).
    pub generation: u32,
    /// Participant → hex Ed25519 identity key, target included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<BTreeMap<String, String>>,
}

/// `repair_key` (ours): the sender's X25519 key for this repair's sealed
/// messages, and, from a helper, the wallet's public data, which the
/// target takes only if every helper sends the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairKey {
    pub session_id: String,
    /// Hex X25519 public key.
    pub enc_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet: Option<WalletPublic>,
}

/// A wallet's public data, as a repair hands it to the target.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WalletPublic {
    /// Sorted peer ids of everyone holding a share.
    pub participants: Vec<String>,
    /// Each participant's FROST identifier.
    pub identifiers: BTreeMap<String, u16>,
    pub generation: u32,
    /// Hex of frost's serialized public key package.
    pub public_key_package: String,
}

/// `repair_delta` (ours): a helper's delta for another helper, sealed to
/// its `enc_key` (as DKG shares are).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairDelta {
    pub session_id: String,
    /// Hex of `nonce ‖ ciphertext`.
    pub data: String,
    pub enc: String,
}

/// `repair_sigma` (ours): a helper's sum of deltas, sealed to the target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairSigma {
    pub session_id: String,
    /// Hex of `nonce ‖ ciphertext`.
    pub data: String,
    pub enc: String,
}

/// `ecdsa_round` (ours): one round of a DKLs23 key generation or signing
/// (Ethereum wallets), sent to each other participant over its channel.
/// Round 0 carries only this session's encryption key (hex); each later round
/// the part that is the same for every peer and the part for this peer
/// alone, sealed to the key it sent in round 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcdsaRound {
    pub session_id: String,
    pub round: u8,
    /// Round 0: hex X25519 key that direct parts to the sender are sealed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enc_key: Option<String>,
    /// Base64 of the part every peer gets. (Base64, not hex: DKLs23's
    /// multiplication setup is 143 kB a peer, and a data channel message
    /// is at most 256 kB.)
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub broadcast: String,
    /// Base64 of `nonce ‖ ciphertext`: the part for the recipient alone.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sealed: String,
    /// The sealing scheme, as in `share`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enc: Option<String>,
}

macro_rules! peer_messages {
    ($( $(#[$meta:meta])* $variant:ident($payload:ty) = $name:literal, )*) => {
        /// Every typed peer message. The `type` names live only here.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "payload")]
        pub enum PeerMessage {
            $( $(#[$meta])* #[serde(rename = $name)] $variant($payload), )*
        }

        impl PeerMessage {
            /// The `type` of every peer message.
            pub const TYPES: &'static [&'static str] = &[$($name),*];

            /// This message's `type`.
            pub fn msg_type(&self) -> &'static str {
                match self { $( PeerMessage::$variant(_) => $name, )* }
            }
        }
    };
}

peer_messages! {
    Ack(Ack) = "ack",
    SessionProposal(SessionProposal) = "session_proposal",
    SessionResponse(SessionResponse) = "session_response",
    SessionAbort(SessionAbort) = "session_abort",
    ChannelOpen(ChannelOpen) = "channel_open",
    MeshReady(MeshReady) = "mesh_ready",
    Commitment(Commitment) = "commitment",
    Share(Share) = "share",
    Ready(Ready) = "ready",
    WalletCreated(WalletCreated) = "wallet_created",
    SignProposal(SignProposal) = "sign_proposal",
    SignCommitment(SignCommitment) = "sign_commitment",
    SignatureShare(SignatureShare) = "signature_share",
    SignatureCreated(SignatureCreated) = "signature_created",
    RefreshProposal(RefreshProposal) = "refresh_proposal",
    RefreshCommitted(RefreshCommitted) = "refresh_committed",
    RepairProposal(RepairProposal) = "repair_proposal",
    RepairKey(RepairKey) = "repair_key",
    RepairDelta(RepairDelta) = "repair_delta",
    RepairSigma(RepairSigma) = "repair_sigma",
    EcdsaRound(EcdsaRound) = "ecdsa_round",
}

impl PeerMessage {
    /// Parses one message; an unknown `type` is [`ParseError::UnknownType`].
    pub fn from_json(text: &str) -> Result<Self, ParseError> {
        Self::from_value(serde_json::from_str(text)?)
    }

    /// As [`PeerMessage::from_json`], from an already parsed value.
    pub fn from_value(value: Value) -> Result<Self, ParseError> {
        let kind = match value.get("type") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(ParseError::MissingType),
        };
        if !Self::TYPES.contains(&kind) {
            return Err(ParseError::UnknownType(kind.to_string()));
        }
        if value.get("payload").is_none() {
            return Err(ParseError::MissingField {
                kind: Self::TYPES.iter().find(|t| **t == kind).expect("known"),
                field: "payload",
            });
        }
        Ok(serde_json::from_value(value)?)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("serializable message")
    }

    /// The session this message belongs to, where it names one.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            PeerMessage::SessionProposal(p) => Some(&p.session_id),
            PeerMessage::SessionResponse(p) => Some(&p.session_id),
            PeerMessage::SessionAbort(p) => Some(&p.session_id),
            PeerMessage::MeshReady(p) => Some(&p.session_id),
            PeerMessage::Ready(p) => Some(&p.session_id),
            PeerMessage::WalletCreated(p) => Some(&p.session_id),
            PeerMessage::SignProposal(p) => Some(&p.session_id),
            PeerMessage::SignCommitment(p) => Some(&p.session_id),
            PeerMessage::SignatureShare(p) => Some(&p.session_id),
            PeerMessage::SignatureCreated(p) => Some(&p.session_id),
            PeerMessage::RefreshProposal(p) => Some(&p.session_id),
            PeerMessage::RefreshCommitted(p) => Some(&p.session_id),
            PeerMessage::RepairProposal(p) => Some(&p.session_id),
            PeerMessage::RepairKey(p) => Some(&p.session_id),
            PeerMessage::RepairDelta(p) => Some(&p.session_id),
            PeerMessage::RepairSigma(p) => Some(&p.session_id),
            PeerMessage::EcdsaRound(p) => Some(&p.session_id),
            PeerMessage::Commitment(p) => p.session_id.as_deref(),
            PeerMessage::Share(p) => p.session_id.as_deref(),
            PeerMessage::Ack(_) | PeerMessage::ChannelOpen(_) => None,
        }
    }
}

/// A peer message with its sender's signature: the message's own JSON
/// plus a top-level `"sig"` (hex Ed25519), e.g.
/// `{"type":"mesh_ready","payload":{"session_id":"s"},"sig":"9a1f…"}`.
///
/// The signature covers `mpc_identity::statement::peer_message(from, to,
/// canonical)`, where `canonical` is [`PeerMessage::to_json`] of the typed
/// message: the receiver re-serializes what it parsed, so unknown fields a
/// sender adds are not covered (and are ignored).
#[derive(Clone, Debug, PartialEq)]
pub struct SignedMessage {
    pub msg: PeerMessage,
    pub sig: Option<String>,
}

impl SignedMessage {
    pub fn unsigned(msg: PeerMessage) -> Self {
        SignedMessage { msg, sig: None }
    }

    pub fn from_json(text: &str) -> Result<Self, ParseError> {
        Self::from_value(serde_json::from_str(text)?)
    }

    pub fn from_value(mut value: Value) -> Result<Self, ParseError> {
        let sig = take_sig(&mut value)?;
        Ok(SignedMessage {
            msg: PeerMessage::from_value(value)?,
            sig,
        })
    }

    pub fn to_value(&self) -> Value {
        with_sig(
            serde_json::to_value(&self.msg).expect("serializable message"),
            self.sig.as_deref(),
        )
    }

    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }
}

/// Removes a top-level `"sig"` from a relayed or channel message.
pub(crate) fn take_sig(value: &mut Value) -> Result<Option<String>, ParseError> {
    match value.as_object_mut().and_then(|o| o.remove("sig")) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ParseError::Json("\"sig\" must be a string".into())),
    }
}

/// Adds a top-level `"sig"`, if there is one.
pub(crate) fn with_sig(mut value: Value, sig: Option<&str>) -> Value {
    if let (Some(sig), Some(o)) = (sig, value.as_object_mut()) {
        o.insert("sig".into(), Value::String(sig.to_string()));
    }
    value
}

impl Serialize for SignedMessage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_message_round_trip() {
        let text = r#"{"type":"mesh_ready","payload":{"session_id":"s"},"sig":"abcd"}"#;
        let m = SignedMessage::from_json(text).unwrap();
        assert_eq!(m.sig.as_deref(), Some("abcd"));
        assert_eq!(
            m.msg.to_json(),
            r#"{"type":"mesh_ready","payload":{"session_id":"s"}}"#
        );
        assert_eq!(m.to_json(), text);
        let spec = r#"{"type":"mesh_ready","payload":{"session_id":"s"}}"#;
        assert_eq!(SignedMessage::from_json(spec).unwrap().sig, None);
        assert!(SignedMessage::from_json(
            r#"{"type":"mesh_ready","payload":{"session_id":"s"},"sig":1}"#
        )
        .is_err());
    }

    #[test]
    fn unknown_and_malformed() {
        assert_eq!(
            PeerMessage::from_json(r#"{"type":"gossip","payload":{}}"#),
            Err(ParseError::UnknownType("gossip".into()))
        );
        assert_eq!(
            PeerMessage::from_json(r#"{"payload":{}}"#),
            Err(ParseError::MissingType)
        );
        assert_eq!(
            PeerMessage::from_json(r#"{"type":"ack"}"#),
            Err(ParseError::MissingField {
                kind: "ack",
                field: "payload"
            })
        );
        assert!(matches!(
            PeerMessage::from_json(r#"{"type":"ack","payload":{}}"#),
            Err(ParseError::Json(_))
        ));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let m = PeerMessage::from_json(
            r#"{"type":"mesh_ready","extra":1,"payload":{"session_id":"s","more":true}}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            PeerMessage::MeshReady(MeshReady {
                session_id: "s".into()
            })
        );
    }

    #[test]
    fn share_debug_is_redacted() {
        let m = PeerMessage::Share(Share {
            data: "deadbeefcafe".into(),
            session_id: None,
            enc: None,
        });
        let dbg = format!("{m:?}");
        assert!(!dbg.contains("deadbeef"), "{dbg}");
    }

    #[test]
    fn curve_names() {
        assert_eq!("ed25519".parse::<Curve>(), Ok(Curve::Ed25519));
        assert!("p256"
            .parse::<Curve>()
            .unwrap_err()
            .contains("unknown curve"));
        assert_eq!(Curve::Secp256k1.to_string(), "secp256k1");
    }
}
