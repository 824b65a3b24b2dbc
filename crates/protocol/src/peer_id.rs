//! Peer id syntax, shared by the server (which enforces it) and the nodes.

/// Longest accepted peer id, in bytes (all allowed characters are ASCII).
pub const MAX_PEER_ID_LEN: usize = 64;

/// Why a string is not a valid peer id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerIdError {
    #[error("peer_id must not be empty")]
    Empty,
    #[error("peer_id is longer than {MAX_PEER_ID_LEN} characters")]
    TooLong,
    #[error("peer_id may contain only A-Z, a-z, 0-9, '.', '_' and '-'")]
    BadCharacter,
}

/// A peer id is 1–64 characters of `[A-Za-z0-9._-]`.
///
/// ```
/// assert!(mpc_protocol::validate_peer_id("chrome1").is_ok());
/// assert!(mpc_protocol::validate_peer_id("bad id").is_err());
/// ```
pub fn validate_peer_id(id: &str) -> Result<(), PeerIdError> {
    if id.is_empty() {
        return Err(PeerIdError::Empty);
    }
    if id.len() > MAX_PEER_ID_LEN {
        return Err(PeerIdError::TooLong);
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(PeerIdError::BadCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        assert_eq!(validate_peer_id(""), Err(PeerIdError::Empty));
        assert_eq!(validate_peer_id(&"a".repeat(64)), Ok(()));
        assert_eq!(validate_peer_id(&"a".repeat(65)), Err(PeerIdError::TooLong));
        assert_eq!(validate_peer_id("a b"), Err(PeerIdError::BadCharacter));
        assert_eq!(validate_peer_id("é"), Err(PeerIdError::BadCharacter));
        assert_eq!(validate_peer_id("A-z_0.9"), Ok(()));
    }
}
