//! The wire format of mpc-wallet, and the one place it is defined.
//!
//! Three families of JSON messages travel between the parts of the system:
//!
//! * [`signal`]: client ↔ signaling server over WebSocket (`register`,
//!   `list_peers`, `peers`, `relay`, `error`, plus our additions
//!   `challenge`, `registered`, `peer_joined`, `peer_left` and the optional
//!   identity fields of `register`, `list_peers` and `peers`).
//! * [`relay`]: what nodes put inside a relay's opaque `data`: WebRTC
//!   signaling (`offer`, `answer`, `ice-candidate`) or a [`peer`] message.
//! * [`peer`]: node ↔ node application messages, `{"type", "payload"}`,
//!   sent over a WebRTC data channel or through the relay.
//!
//! Every shape is pinned by JSON fixtures copied from the user's spec
//! (`tests/fixtures`). Parsing never panics: unknown fields are ignored and
//! an unknown `type` is a typed [`ParseError::UnknownType`].
//!
//! ```
//! use mpc_protocol::signal::{ClientMessage, ServerMessage};
//!
//! let msg = ClientMessage::from_json(r#"{"type":"register","peer_id":"cli1"}"#).unwrap();
//! assert_eq!(msg, ClientMessage::Register { peer_id: "cli1".into(), pubkey: None, signature: None });
//!
//! let reply = ServerMessage::Peers { peers: vec!["cli1".into(), "cli2".into()], keys: None };
//! assert_eq!(reply.to_json(), r#"{"type":"peers","peers":["cli1","cli2"]}"#);
//! ```

mod error;
pub mod peer;
pub mod peer_id;
pub mod relay;
pub mod signal;

pub use error::ParseError;
pub use peer::{PeerMessage, SignedMessage};
pub use peer_id::{validate_peer_id, PeerIdError, MAX_PEER_ID_LEN};
pub use relay::RelayData;
pub use signal::{ClientMessage, IceServer, PeersPage, ServerMessage, MAX_LIST_IDS};
