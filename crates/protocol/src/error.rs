//! The one error type for every parse in this crate.

/// Why a JSON text is not a valid message. The `Display` text is meant for
/// the `error` field sent back to a client, so it is short and specific.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or a field has the wrong JSON type.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A JSON object without a string `type`.
    #[error("message has no \"type\" field")]
    MissingType,
    /// A `type` this protocol does not know.
    #[error("unknown message type \"{0}\"")]
    UnknownType(String),
    /// A known `type` without one of its required fields.
    #[error("\"{kind}\" message is missing field \"{field}\"")]
    MissingField {
        kind: &'static str,
        field: &'static str,
    },
}

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> Self {
        ParseError::Json(e.to_string())
    }
}
