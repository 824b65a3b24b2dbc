//! Client ↔ signaling-server messages (WebSocket text frames).
//!
//! The spec's messages are `register`, `list_peers`, `peers`, `relay` and
//! `error`. Our additions, all backward compatible:
//!
//! * `registered {peer_id, ice_servers}`: the answer to `register`, so a
//!   client knows it succeeded and which STUN/TURN servers to use.
//! * `list_peers {watch: true}` opts into presence push: `peer_joined` and
//!   `peer_left`.
//! * `challenge {nonce}`: the server's first frame on every connection;
//!   `nonce` is 32 random bytes as 64 lowercase hex digits, fresh per
//!   connection. A client that does not authenticate ignores it.
//! * `register {pubkey, signature}`: optional identity proof. `pubkey` is
//!   the hex Ed25519 identity key, `signature` the hex signature over
//!   `mpc_identity::statement::register_at(hex_decode(nonce), peer_id,
//!   server_host)`, the host as the client wrote it in its URL (the older
//!   `register(nonce, peer_id)` only with `--accept-unbound-register`). A
//!   server started with `--require-auth` accepts only signed registrations;
//!   either way a peer id registered with a key stays bound to that key for
//!   a while after its holder leaves (`docs/protocol.md`).
//! * `list_peers {keys: true}` asks for the identity keys too: the `peers`
//!   answer then carries `keys: {peer_id: hex_pubkey}` for every listed peer
//!   that registered with a key (`{}` if none did; a server without keys
//!   support leaves `keys` out).
//! * `peer_joined {pubkey}`: the joiner's identity key, when it registered
//!   with one.
//! * `list_peers {ids: [...]}` lists only those of `ids` that are online
//!   (at most [`MAX_LIST_IDS`]); without `ids` the list comes in pages
//!   that each fit the server's frame limit: a page that is not the last
//!   carries `next`, and `list_peers {after: next}` asks for the following
//!   one. [`PeersPage`] reads a page with its `next`.
//!
//! Every addition is optional or a new type, so the spec's messages parse
//! and serialize exactly as before: `{"type":"peers","peers":[...]}` has
//! no `keys`, `{"type":"list_peers"}` asks for neither `watch` nor `keys`.
//!
//! Relay `data` is kept as [`RawJson`]: the server forwards the exact bytes
//! it received and never builds a JSON tree from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ParseError;

/// JSON kept as its original text. Equality compares the text.
///
/// `Debug` prints only the length: relay payloads must never reach logs.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// Wraps a JSON text after checking that it is JSON.
    pub fn from_string(json: String) -> Result<Self, ParseError> {
        Ok(RawJson(RawValue::from_string(json)?))
    }

    /// Serializes any value into raw JSON.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Self {
        // Serializing our own types to a string cannot fail.
        RawJson(serde_json::value::to_raw_value(value).expect("serializable value"))
    }

    /// The JSON text exactly as received.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl std::fmt::Debug for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawJson(<{} bytes>)", self.get().len())
    }
}

/// One STUN or TURN server, in the browser's `RTCIceServer` shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    #[serde(deserialize_with = "one_or_many")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl IceServer {
    /// Parses an operator's `--ice-server` value: `stun:host:port`, or
    /// `turn:user:pass@host:port[?transport=udp]` (also `turns:`).
    ///
    /// ```
    /// use mpc_protocol::IceServer;
    /// let t = IceServer::parse_url("turn:alice:s3cret@turn.example.org:3478").unwrap();
    /// assert_eq!(t.urls, vec!["turn:turn.example.org:3478"]);
    /// assert_eq!(t.username.as_deref(), Some("alice"));
    /// ```
    pub fn parse_url(url: &str) -> Result<IceServer, String> {
        let (scheme, rest) = url
            .split_once(':')
            .ok_or_else(|| format!("ICE server URL {url:?} has no scheme"))?;
        match scheme {
            "stun" | "stuns" => {
                if rest.is_empty() || rest.contains('@') {
                    return Err(format!("STUN URL {url:?} must be stun:host[:port]"));
                }
                Ok(IceServer {
                    urls: vec![url.to_string()],
                    username: None,
                    credential: None,
                })
            }
            "turn" | "turns" => {
                let (creds, host) = rest
                    .rsplit_once('@')
                    .ok_or_else(|| format!("TURN URL {url:?} needs user:password@host"))?;
                let (user, pass) = creds
                    .split_once(':')
                    .ok_or_else(|| format!("TURN URL {url:?} needs user:password@host"))?;
                if host.is_empty() || user.is_empty() {
                    return Err(format!("TURN URL {url:?} needs user:password@host"));
                }
                Ok(IceServer {
                    urls: vec![format!("{scheme}:{host}")],
                    username: Some(user.to_string()),
                    credential: Some(pass.to_string()),
                })
            }
            _ => Err(format!(
                "ICE server URL {url:?} must start with stun:, stuns:, turn: or turns:"
            )),
        }
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Client → server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", try_from = "ClientEnvelope")]
pub enum ClientMessage {
    /// `{"type":"register","peer_id":"cli1"}`
    Register {
        peer_id: String,
        /// Hex Ed25519 identity key (optional; authenticated registration).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pubkey: Option<String>,
        /// Hex Ed25519 signature over
        /// `mpc_identity::statement::register_at(challenge nonce, peer_id,
        /// server host)` (the older `register(nonce, peer_id)` only where
        /// the server accepts unbound registrations).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// `{"type":"list_peers"}`; with `"watch":true` also subscribes to
    /// `peer_joined` / `peer_left`; with `"keys":true` the answer carries
    /// the listed peers' identity keys.
    ///
    /// `ids` lists only those peers (the ones online); `after` asks for
    /// the page of the full list that follows the id a `peers` page named
    /// as its `next` (ignored with `ids`).
    ListPeers {
        #[serde(default, skip_serializing_if = "is_false")]
        watch: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        keys: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ids: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    /// `{"type":"relay","to":"cli2","data":{...}}`
    Relay { to: String, data: RawJson },
}

impl ClientMessage {
    /// The names of every client message type.
    pub const TYPES: &'static [&'static str] = &["register", "list_peers", "relay"];

    /// Parses one WebSocket text frame.
    pub fn from_json(text: &str) -> Result<Self, ParseError> {
        let env: ClientEnvelope = serde_json::from_str(text)?;
        ClientMessage::try_from(env)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("serializable message")
    }
}

/// Every field any client message may carry; [`ClientMessage`] is built
/// from it so that a missing field or unknown type gets a precise error.
#[derive(Deserialize)]
struct ClientEnvelope {
    #[serde(rename = "type")]
    kind: Option<String>,
    peer_id: Option<String>,
    pubkey: Option<String>,
    signature: Option<String>,
    watch: Option<bool>,
    keys: Option<bool>,
    ids: Option<Vec<String>>,
    after: Option<String>,
    to: Option<String>,
    data: Option<RawJson>,
}

impl TryFrom<ClientEnvelope> for ClientMessage {
    type Error = ParseError;

    fn try_from(e: ClientEnvelope) -> Result<Self, ParseError> {
        let kind = e.kind.ok_or(ParseError::MissingType)?;
        match kind.as_str() {
            "register" => Ok(ClientMessage::Register {
                peer_id: required("register", "peer_id", e.peer_id)?,
                pubkey: e.pubkey,
                signature: e.signature,
            }),
            "list_peers" => Ok(ClientMessage::ListPeers {
                watch: e.watch.unwrap_or(false),
                keys: e.keys.unwrap_or(false),
                ids: e.ids,
                after: e.after,
            }),
            "relay" => Ok(ClientMessage::Relay {
                to: required("relay", "to", e.to)?,
                data: required("relay", "data", e.data)?,
            }),
            _ => Err(ParseError::UnknownType(kind)),
        }
    }
}

/// The most ids one `list_peers` may name in `ids`.
pub const MAX_LIST_IDS: usize = 256;

/// A `peers` answer with the paging cursor our server adds: `next`, the
/// last id of this page, when more may follow (send `list_peers` with
/// `after: next`). [`ServerMessage::Peers`] reads the same text without
/// `next` (the spec's shape plus `keys`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeersPage {
    pub peers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl PeersPage {
    /// Parses a `peers` message; any other type is
    /// [`ParseError::UnknownType`].
    pub fn from_json(text: &str) -> Result<Self, ParseError> {
        let e: ServerEnvelope = serde_json::from_str(text)?;
        match e.kind.as_deref() {
            None => Err(ParseError::MissingType),
            Some("peers") => Ok(PeersPage {
                peers: required("peers", "peers", e.peers)?,
                keys: e.keys,
                next: e.next,
            }),
            Some(other) => Err(ParseError::UnknownType(other.to_string())),
        }
    }

    /// `{"type":"peers",...}`, `next` only when set.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Tagged<'a> {
            r#type: &'static str,
            #[serde(flatten)]
            page: &'a PeersPage,
        }
        serde_json::to_string(&Tagged {
            r#type: "peers",
            page: self,
        })
        .expect("serializable message")
    }
}

/// Server → client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", try_from = "ServerEnvelope")]
pub enum ServerMessage {
    /// Our addition: the first frame on every connection,
    /// `{"type":"challenge","nonce":"<64 hex digits>"}`. A signed
    /// `register` signs this nonce (decoded from hex) and the peer id.
    Challenge { nonce: String },
    /// Our addition: the answer to a successful `register`.
    Registered {
        peer_id: String,
        ice_servers: Vec<IceServer>,
    },
    /// `{"type":"peers","peers":["cli1","cli2"]}`, sorted. `keys` (hex
    /// identity key by peer id) only answers `list_peers` with `keys`.
    Peers {
        peers: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keys: Option<BTreeMap<String, String>>,
    },
    /// `{"type":"relay","from":"cli1","data":{...}}`; `from` is stamped by
    /// the server.
    Relay { from: String, data: RawJson },
    /// `{"type":"error","error":"unknown peer \"x\""}`
    Error { error: String },
    /// Presence push (only to clients that sent `list_peers` with `watch`);
    /// `pubkey` is the joiner's hex identity key if it registered with one.
    PeerJoined {
        peer_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pubkey: Option<String>,
    },
    /// Presence push (only to clients that sent `list_peers` with `watch`).
    PeerLeft { peer_id: String },
}

impl ServerMessage {
    /// The names of every server message type.
    pub const TYPES: &'static [&'static str] = &[
        "challenge",
        "registered",
        "peers",
        "relay",
        "error",
        "peer_joined",
        "peer_left",
    ];

    /// Parses one WebSocket text frame.
    pub fn from_json(text: &str) -> Result<Self, ParseError> {
        let env: ServerEnvelope = serde_json::from_str(text)?;
        ServerMessage::try_from(env)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("serializable message")
    }

    /// `{"type":"relay","from":..,"data":..}`, byte for byte what
    /// [`ServerMessage::to_json`] writes for a `Relay`, without serde when
    /// `from` is a valid peer id (nothing to escape): the server writes one
    /// per relayed message.
    pub fn relay_json(from: &str, data: &RawJson) -> String {
        if crate::validate_peer_id(from).is_err() {
            return ServerMessage::Relay {
                from: from.to_string(),
                data: data.clone(),
            }
            .to_json();
        }
        let data = data.get();
        let mut out = String::with_capacity(36 + from.len() + data.len());
        out.push_str(r#"{"type":"relay","from":""#);
        out.push_str(from);
        out.push_str(r#"","data":"#);
        out.push_str(data);
        out.push('}');
        out
    }

    /// Shorthand for an `error` message.
    pub fn error(text: impl Into<String>) -> Self {
        ServerMessage::Error { error: text.into() }
    }
}

#[derive(Deserialize)]
struct ServerEnvelope {
    #[serde(rename = "type")]
    kind: Option<String>,
    nonce: Option<String>,
    peer_id: Option<String>,
    pubkey: Option<String>,
    ice_servers: Option<Vec<IceServer>>,
    peers: Option<Vec<String>>,
    keys: Option<BTreeMap<String, String>>,
    next: Option<String>,
    from: Option<String>,
    data: Option<RawJson>,
    error: Option<String>,
}

impl TryFrom<ServerEnvelope> for ServerMessage {
    type Error = ParseError;

    fn try_from(e: ServerEnvelope) -> Result<Self, ParseError> {
        let kind = e.kind.ok_or(ParseError::MissingType)?;
        match kind.as_str() {
            "challenge" => Ok(ServerMessage::Challenge {
                nonce: required("challenge", "nonce", e.nonce)?,
            }),
            "registered" => Ok(ServerMessage::Registered {
                peer_id: required("registered", "peer_id", e.peer_id)?,
                ice_servers: e.ice_servers.unwrap_or_default(),
            }),
            "peers" => Ok(ServerMessage::Peers {
                peers: required("peers", "peers", e.peers)?,
                keys: e.keys,
            }),
            "relay" => Ok(ServerMessage::Relay {
                from: required("relay", "from", e.from)?,
                data: required("relay", "data", e.data)?,
            }),
            "error" => Ok(ServerMessage::Error {
                error: required("error", "error", e.error)?,
            }),
            "peer_joined" => Ok(ServerMessage::PeerJoined {
                peer_id: required("peer_joined", "peer_id", e.peer_id)?,
                pubkey: e.pubkey,
            }),
            "peer_left" => Ok(ServerMessage::PeerLeft {
                peer_id: required("peer_left", "peer_id", e.peer_id)?,
            }),
            _ => Err(ParseError::UnknownType(kind)),
        }
    }
}

fn required<T>(kind: &'static str, field: &'static str, v: Option<T>) -> Result<T, ParseError> {
    v.ok_or(ParseError::MissingField { kind, field })
}

/// The host (and port, as written) of a `ws://` or `wss://` URL: what the
/// WebSocket client sends as `Host`, and what a signed `register` names.
pub fn server_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_typed() {
        assert_eq!(
            ClientMessage::from_json(r#"{"type":"hello"}"#),
            Err(ParseError::UnknownType("hello".into()))
        );
        assert_eq!(
            ClientMessage::from_json(r#"{"peer_id":"a"}"#),
            Err(ParseError::MissingType)
        );
        assert_eq!(
            ClientMessage::from_json(r#"{"type":"relay","data":{}}"#),
            Err(ParseError::MissingField {
                kind: "relay",
                field: "to"
            })
        );
        assert!(matches!(
            ClientMessage::from_json("{not json"),
            Err(ParseError::Json(_))
        ));
        assert!(matches!(
            ClientMessage::from_json(r#"{"type":"register","peer_id":5}"#),
            Err(ParseError::Json(_))
        ));
    }

    #[test]
    fn relay_data_is_kept_verbatim_and_client_from_is_ignored() {
        let text = r#"{"type":"relay","to":"b","from":"mallory","data":{"x": [1, 2 ,3]}}"#;
        let ClientMessage::Relay { to, data } = ClientMessage::from_json(text).unwrap() else {
            panic!("not a relay");
        };
        assert_eq!(to, "b");
        assert_eq!(data.get(), r#"{"x": [1, 2 ,3]}"#);
        let out = ServerMessage::Relay {
            from: "a".into(),
            data,
        };
        assert_eq!(
            out.to_json(),
            r#"{"type":"relay","from":"a","data":{"x": [1, 2 ,3]}}"#
        );
    }

    #[test]
    fn serde_deserialize_goes_through_the_envelope() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"list_peers","watch":true}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::ListPeers {
                watch: true,
                keys: false,
                ids: None,
                after: None,
            }
        );
        let e = serde_json::from_str::<ServerMessage>(r#"{"type":"nope"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown message type"), "{e}");
    }

    #[test]
    fn identity_additions_are_optional_and_spec_shapes_are_unchanged() {
        // The spec's shapes serialize byte for byte as before.
        let peers = ServerMessage::Peers {
            peers: vec!["a".into()],
            keys: None,
        };
        assert_eq!(peers.to_json(), r#"{"type":"peers","peers":["a"]}"#);
        assert_eq!(
            ServerMessage::from_json(r#"{"type":"peers","peers":["a"]}"#).unwrap(),
            peers
        );
        let list = ClientMessage::from_json(r#"{"type":"list_peers"}"#).unwrap();
        assert_eq!(
            list,
            ClientMessage::ListPeers {
                watch: false,
                keys: false,
                ids: None,
                after: None,
            }
        );
        assert_eq!(list.to_json(), r#"{"type":"list_peers"}"#);
        let joined = ServerMessage::PeerJoined {
            peer_id: "a".into(),
            pubkey: None,
        };
        assert_eq!(joined.to_json(), r#"{"type":"peer_joined","peer_id":"a"}"#);

        // The additions.
        let ask = ClientMessage::from_json(r#"{"type":"list_peers","keys":true}"#).unwrap();
        assert_eq!(ask.to_json(), r#"{"type":"list_peers","keys":true}"#);
        let with_keys =
            ServerMessage::from_json(r#"{"type":"peers","peers":["a","b"],"keys":{"a":"aa"}}"#)
                .unwrap();
        let ServerMessage::Peers {
            keys: Some(keys), ..
        } = &with_keys
        else {
            panic!("{with_keys:?}");
        };
        assert_eq!(keys.get("a").map(String::as_str), Some("aa"));
        // Asked for keys, none registered with one: an empty map, not None.
        assert_eq!(
            ServerMessage::Peers {
                peers: vec![],
                keys: Some(BTreeMap::new())
            }
            .to_json(),
            r#"{"type":"peers","peers":[],"keys":{}}"#
        );
        let challenge = ServerMessage::Challenge {
            nonce: "00".repeat(32),
        };
        assert_eq!(
            ServerMessage::from_json(&challenge.to_json()).unwrap(),
            challenge
        );
        assert_eq!(
            ServerMessage::from_json(r#"{"type":"challenge"}"#),
            Err(ParseError::MissingField {
                kind: "challenge",
                field: "nonce"
            })
        );
    }

    #[test]
    fn list_filters_and_pages_are_optional_additions() {
        let ask =
            ClientMessage::from_json(r#"{"type":"list_peers","keys":true,"ids":["cli1","cli2"]}"#)
                .unwrap();
        assert_eq!(
            ask,
            ClientMessage::ListPeers {
                watch: false,
                keys: true,
                ids: Some(vec!["cli1".into(), "cli2".into()]),
                after: None,
            }
        );
        assert_eq!(
            ask.to_json(),
            r#"{"type":"list_peers","keys":true,"ids":["cli1","cli2"]}"#
        );
        let next = ClientMessage::from_json(r#"{"type":"list_peers","after":"m"}"#).unwrap();
        assert!(matches!(next, ClientMessage::ListPeers { after: Some(a), .. } if a == "m"));

        let text = r#"{"type":"peers","peers":["a","b"],"next":"b"}"#;
        let page = PeersPage::from_json(text).unwrap();
        assert_eq!(page.next.as_deref(), Some("b"));
        assert_eq!(page.to_json(), text);
        // The spec's reader sees the same peers and ignores `next`.
        assert_eq!(
            ServerMessage::from_json(text).unwrap(),
            ServerMessage::Peers {
                peers: vec!["a".into(), "b".into()],
                keys: None
            }
        );
        let last = PeersPage {
            peers: vec!["a".into()],
            keys: Some(BTreeMap::new()),
            next: None,
        };
        assert_eq!(
            last.to_json(),
            r#"{"type":"peers","peers":["a"],"keys":{}}"#
        );
        assert_eq!(
            PeersPage::from_json(r#"{"type":"peer_left","peer_id":"a"}"#),
            Err(ParseError::UnknownType("peer_left".into()))
        );
    }

    #[test]
    fn ice_server_urls() {
        let s = IceServer::parse_url("stun:stun.example.org:3478").unwrap();
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"urls":["stun:stun.example.org:3478"]}"#
        );
        let one: IceServer = serde_json::from_str(r#"{"urls":"stun:x:1"}"#).unwrap();
        assert_eq!(one.urls, vec!["stun:x:1"]);
        assert!(IceServer::parse_url("http://x").is_err());
        assert!(IceServer::parse_url("turn:host:3478").is_err());
        let t = IceServer::parse_url("turns:u:p:w@h:5349?transport=tcp").unwrap();
        assert_eq!(t.urls, vec!["turns:h:5349?transport=tcp"]);
        assert_eq!(t.credential.as_deref(), Some("p:w"));
    }

    #[test]
    fn the_fast_relay_json_is_what_serde_writes() {
        let datas = [
            r#"{"n":1}"#,
            r#"{"s":"x\ny \"q\" ü","a":[1,2.5,null,true],"o":{}}"#,
            "[]",
            "\"text\"",
            "42",
        ];
        for from in ["cli1", "a.b_c-D9", &"x".repeat(64), "bad id", "q\"uote", ""] {
            for d in datas {
                let data = RawJson::from_string(d.to_string()).unwrap();
                let serde = ServerMessage::Relay {
                    from: from.to_string(),
                    data: data.clone(),
                }
                .to_json();
                assert_eq!(ServerMessage::relay_json(from, &data), serde, "{from} {d}");
            }
        }
    }

    #[test]
    fn the_server_host_is_the_urls_authority() {
        assert_eq!(
            server_host("ws://127.0.0.1:8787/ws").as_deref(),
            Some("127.0.0.1:8787")
        );
        assert_eq!(
            server_host("wss://Signal.Example/ws?x=1").as_deref(),
            Some("signal.example")
        );
        assert_eq!(server_host("ws://user:pw@h:1/ws").as_deref(), Some("h:1"));
        assert_eq!(server_host("ws:///ws"), None);
    }
}
