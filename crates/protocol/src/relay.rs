//! What nodes put inside a relay's `data`: WebRTC signaling, or a peer
//! message sent before a data channel exists.
//!
//! The signaling server never parses this; only nodes do. Either kind may
//! carry a top-level `"sig"`: for a peer message, its sender's signature
//! (see [`SignedMessage`]); for an offer or answer, the sender's signature
//! over the SDP's DTLS fingerprints (see [`sdp_fingerprints`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::peer::{take_sig, with_sig, SignedMessage};
use crate::ParseError;

/// WebRTC connection setup, in the browser's field names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WebRtcSignal {
    /// `{"type":"offer","sdp":"..."}`
    Offer { sdp: String },
    /// `{"type":"answer","sdp":"..."}`
    Answer { sdp: String },
    /// `{"type":"ice-candidate","candidate":"candidate:...","sdpMid":"0"}`
    IceCandidate {
        candidate: String,
        #[serde(rename = "sdpMid", default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
        #[serde(
            rename = "sdpMLineIndex",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        sdp_m_line_index: Option<u16>,
    },
}

impl WebRtcSignal {
    pub const TYPES: &'static [&'static str] = &["offer", "answer", "ice-candidate"];
}

/// A relay's `data`, as nodes read it.
#[derive(Clone, Debug, PartialEq)]
pub enum RelayData {
    WebRtc {
        signal: WebRtcSignal,
        sig: Option<String>,
    },
    Peer(SignedMessage),
}

impl RelayData {
    /// Parses relay data; the `type` decides which family it is.
    pub fn from_json(text: &str) -> Result<Self, ParseError> {
        let mut value: Value = serde_json::from_str(text)?;
        let kind = match value.get("type") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(ParseError::MissingType),
        };
        if WebRtcSignal::TYPES.contains(&kind) {
            let sig = take_sig(&mut value)?;
            Ok(RelayData::WebRtc {
                signal: serde_json::from_value(value)?,
                sig,
            })
        } else {
            Ok(RelayData::Peer(SignedMessage::from_value(value)?))
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            RelayData::Peer(m) => m.to_value(),
            RelayData::WebRtc { signal, sig } => with_sig(
                serde_json::to_value(signal).expect("serializable signal"),
                sig.as_deref(),
            ),
        }
    }

    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }
}

impl Serialize for RelayData {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

/// The DTLS fingerprints an SDP commits to: every `a=fingerprint:` line,
/// trimmed and lowercased, joined by `\n`. This is what an identity key
/// signs for an offer or answer; `None` if the SDP has none.
///
/// ```
/// let sdp = "v=0\r\na=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\n";
/// assert_eq!(mpc_protocol::relay::sdp_fingerprints(sdp).as_deref(), Some("a=fingerprint:sha-256 ab:cd"));
/// ```
pub fn sdp_fingerprints(sdp: &str) -> Option<String> {
    let lines: Vec<String> = sdp
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("a=fingerprint:"))
        .map(str::to_ascii_lowercase)
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatches_on_type() {
        let c = RelayData::from_json(
            r#"{"type":"ice-candidate","candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}"#,
        )
        .unwrap();
        assert!(matches!(
            c,
            RelayData::WebRtc {
                signal: WebRtcSignal::IceCandidate {
                    sdp_m_line_index: Some(0),
                    ..
                },
                sig: None
            }
        ));
        let o = RelayData::from_json(r#"{"type":"offer","sdp":"v=0","sig":"ab"}"#).unwrap();
        assert_eq!(o.to_json(), r#"{"type":"offer","sdp":"v=0","sig":"ab"}"#);
        assert!(matches!(o, RelayData::WebRtc { sig: Some(_), .. }));
        assert!(matches!(
            RelayData::from_json(r#"{"type":"mesh_ready","payload":{"session_id":"s"}}"#),
            Ok(RelayData::Peer(_))
        ));
        assert_eq!(
            RelayData::from_json(r#"{"type":"pranswer","sdp":""}"#),
            Err(ParseError::UnknownType("pranswer".into()))
        );
    }
}
