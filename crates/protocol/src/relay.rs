//! What nodes put inside a relay's `data`: WebRTC signaling, or a peer
//! message sent before a data channel exists.
//!
//! The signaling server never parses this; only nodes do.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ParseError, PeerMessage};

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
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RelayData {
    WebRtc(WebRtcSignal),
    Peer(PeerMessage),
}

impl RelayData {
    /// Parses relay data; the `type` decides which family it is.
    pub fn from_json(text: &str) -> Result<Self, ParseError> {
        let value: Value = serde_json::from_str(text)?;
        let kind = match value.get("type") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(ParseError::MissingType),
        };
        if WebRtcSignal::TYPES.contains(&kind) {
            Ok(RelayData::WebRtc(serde_json::from_value(value)?))
        } else {
            Ok(RelayData::Peer(PeerMessage::from_value(value)?))
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("serializable message")
    }
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
            RelayData::WebRtc(WebRtcSignal::IceCandidate {
                sdp_m_line_index: Some(0),
                ..
            })
        ));
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
