//! The exact bytes an identity key signs. Each kind of statement starts
//! with its own domain tag and separates variable fields with NUL (which
//! no peer id, hex string or JSON text of ours contains unescaped), so a
//! signature made for one purpose never verifies for another.

fn build(tag: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tag.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    out.extend_from_slice(tag.as_bytes());
    for p in parts {
        out.push(0);
        out.extend_from_slice(p);
    }
    out
}

/// Registration: the server's challenge nonce and the peer id claimed.
/// Replayable to another server (review finding 16): kept only for
/// clients that do not name the server, see [`register_at`].
pub fn register(challenge: &[u8], peer_id: &str) -> Vec<u8> {
    build("mpc-wallet/register/v1", &[challenge, peer_id.as_bytes()])
}

/// Registration bound to the server it is for: `server` is the host (and
/// port, as in the URL) the client connected to, lowercase. A server that
/// passes another server's challenge on cannot use the answer there.
pub fn register_at(challenge: &[u8], peer_id: &str, server: &str) -> Vec<u8> {
    build(
        "mpc-wallet/register/v2",
        &[
            challenge,
            peer_id.as_bytes(),
            server.to_ascii_lowercase().as_bytes(),
        ],
    )
}

/// A peer message from `from` to `to`; `message` is its canonical JSON
/// (see `mpc_protocol::peer::SignedMessage`).
pub fn peer_message(from: &str, to: &str, message: &str) -> Vec<u8> {
    build(
        "mpc-wallet/peer-message/v1",
        &[from.as_bytes(), to.as_bytes(), message.as_bytes()],
    )
}

/// The DTLS fingerprints in an SDP offer or answer from `from` to `to`.
pub fn dtls_fingerprint(from: &str, to: &str, fingerprints: &str) -> Vec<u8> {
    build(
        "mpc-wallet/dtls-fingerprint/v1",
        &[from.as_bytes(), to.as_bytes(), fingerprints.as_bytes()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_cannot_slide() {
        assert_ne!(peer_message("ab", "c", "m"), peer_message("a", "bc", "m"));
        assert_ne!(register(b"x", "a"), dtls_fingerprint("x", "a", ""));
    }
}
