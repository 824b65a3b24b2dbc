//! Human text for proposals and milestones, shared by every user interface
//! (the CLI's terminal and the extension's popup say the same things).

use mpc_identity::PublicKey;
use mpc_protocol::peer::{SessionProposal, SignProposal};

use crate::node::Progress;
use crate::payload::Review;
use crate::trust::NewKey;

/// One line describing a proposal, for prompts and logs.
pub fn describe(from: &str, p: &SessionProposal) -> String {
    format!(
        "session {} from {}: {}-of-{} {} wallet with participants {}",
        p.session_id,
        p.initiator.as_deref().unwrap_or(from),
        p.threshold,
        p.total,
        p.curve.as_deref().unwrap_or("secp256k1"),
        with_fingerprints(&p.participants, p.keys.as_ref())
    )
}

/// `cli1 [3f2a 9c01 77d4 e5b0 1a2b 3c4d 5e6f 7081], cli2 [...]`: each peer with the fingerprint
/// of the identity key a proposal lists for it, to compare out of band.
pub fn with_fingerprints(
    peers: &[String],
    keys: Option<&std::collections::BTreeMap<String, String>>,
) -> String {
    peers
        .iter()
        .map(|p| {
            match keys
                .and_then(|k| k.get(p))
                .and_then(|k| k.parse::<PublicKey>().ok())
            {
                Some(k) => format!("{p} [{}]", k.fingerprint()),
                None => p.clone(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The warning for keys shown for the first time: the proposer's own key
/// is what it signed the proposal with, but every other new key is vouched
/// for by the proposer alone (review finding 2), so the user should
/// compare those fingerprints out of band before relying on them.
pub fn vouched_note(from: &str, new_keys: &[NewKey]) -> Option<String> {
    let others: Vec<&str> = new_keys
        .iter()
        .map(|k| k.peer.as_str())
        .filter(|p| *p != from)
        .collect();
    (!others.is_empty()).then(|| {
        format!(
            "new keys for {}: vouched for only by {from}, who proposed this; \
             compare their fingerprints out of band (they are pinned only if \
             the session completes)",
            others.join(", ")
        )
    })
}

/// The notice for a key pinned on first use.
pub fn pinned_text(peer: &str, key: &PublicKey) -> String {
    format!(
        "pinned {peer}'s identity key on first use: fingerprint {} \
         (compare with `mpc-wallet identity` on {peer})",
        key.fingerprint()
    )
}

/// The message of a sign proposal as text, if it is printable UTF-8.
pub fn printable_text(message: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(message).ok()?;
    (!text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() || c == '\n' || c == '\t'))
    .then_some(text)
}

/// What a sign proposal asks, for prompts and logs: the wallet, the
/// signers, and what is signed: a transaction as this node decoded it
/// (`review`), or the message in hex and, if printable, as text.
pub fn describe_sign(
    from: &str,
    p: &SignProposal,
    wallet_id: Option<&str>,
    review: Option<&Review>,
) -> String {
    if let Some(review) = review {
        let body = review.to_string();
        let what = match review {
            Review::EthereumTypedData(_) => "typed data",
            _ => "a transaction",
        };
        return format!(
            "session {} from {from}: sign {what} with wallet {} (signers {})\n    {}",
            p.session_id,
            wallet_id.unwrap_or(&p.group_public_key),
            with_fingerprints(&p.signers, p.keys.as_ref()),
            body.trim_end().replace('\n', "\n    ")
        );
    }
    let message = hex::decode(&p.message_hex).unwrap_or_default();
    let mut s = format!(
        "session {} from {from}: sign {} bytes with wallet {} (signers {})\n    message hex:  {}",
        p.session_id,
        message.len(),
        wallet_id.unwrap_or(&p.group_public_key),
        with_fingerprints(&p.signers, p.keys.as_ref()),
        p.message_hex
    );
    if let Some(text) = printable_text(&message) {
        s.push_str(&format!("\n    message text: {text:?}"));
    }
    if p.format == mpc_protocol::peer::SignFormat::EthereumMessage {
        s.push_str("\n    signed as:    an Ethereum personal_sign message (EIP-191)");
    }
    s
}

fn with_note(text: String, note: Option<String>) -> String {
    match note {
        Some(n) => format!("{text}\n    {n}"),
        None => text,
    }
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Progress::Registered { peer_id } => format!("registered as {peer_id}"),
            Progress::Peers { peers } => format!("{} peers online", peers.len()),
            Progress::ServerError { error } => format!("server error: {error}"),
            Progress::NeedsDecision {
                from,
                proposal,
                new_keys,
            } => with_note(
                format!("proposal received: {}", describe(from, proposal)),
                vouched_note(from, new_keys),
            ),
            Progress::Accepted {
                accepted, total, ..
            } => format!("accepted {accepted}/{total}"),
            Progress::Mesh { open, needed, .. } => format!("mesh {open}/{needed} channels open"),
            Progress::MeshReady { ready, needed, .. } => format!("mesh ready {ready}/{needed}"),
            Progress::DkgRound { round, .. } => format!("DKG round {round}"),
            Progress::PeerStored { peer, .. } => format!("{peer} stored its share"),
            Progress::NeedsSignDecision {
                from,
                proposal,
                new_keys,
                review,
            } => with_note(
                format!(
                    "sign proposal received: {}",
                    describe_sign(from, proposal, None, review.as_ref())
                ),
                vouched_note(from, new_keys),
            ),
            Progress::SignatureVerified { .. } => "signature aggregated and verified".into(),
            Progress::SignRound { round, .. } => format!("signing round {round}"),
            Progress::PeerSigned { peer, .. } => format!("{peer} verified the signature"),
            Progress::NeedsRefreshDecision { from, proposal, .. } => format!(
                "refresh proposal received from {from}: new shares of wallet {} for {} (generation {})",
                proposal.group_public_key,
                proposal.participants.join(", "),
                proposal.generation + 1
            ),
            Progress::PeerCommitted { peer, .. } => format!("{peer} stored its new share"),
            Progress::NeedsRepairDecision { from, proposal, .. } => format!(
                "repair proposal received from {from}: {} rebuild the share of {} in wallet {}",
                proposal.helpers.join(", "),
                proposal.target,
                proposal.group_public_key
            ),
        };
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpc_identity::IdentityKey;

    fn new_key(peer: &str) -> NewKey {
        NewKey {
            peer: peer.into(),
            key: IdentityKey::from_seed([peer.len() as u8; 32]).public_key(),
        }
    }

    #[test]
    fn keys_the_proposer_vouches_for_are_flagged() {
        assert_eq!(vouched_note("cli1", &[new_key("cli1")]), None);
        let note = vouched_note("cli1", &[new_key("cli1"), new_key("chrome1")]).unwrap();
        assert!(
            note.starts_with("new keys for chrome1: vouched for only by cli1"),
            "{note}"
        );
    }
}
