//! A joiner's decisions: which proposals a `join` run considers, how its
//! yes or no (or a reason to refuse unasked) becomes the core's answer to a
//! key-generation proposal or a signing request, which wallet a request
//! signs with, and the y/N question that asks a person.

use std::io::{BufRead, Write};

use mpc_core::Event;
use mpc_keystore::fs::Keystore;
use mpc_keystore::wallet::open_signing_wallet;
use mpc_keystore::KeyShareFile;

/// What the proposer reads when the user says no.
const DECLINED: &str = "declined by user";

/// Why a proposal is refused without asking (see [`considers`]).
pub const UNEXPECTED: &str = "not expecting a proposal from this peer";

/// Whether a `join` run considers a proposal from `from`: only while it has
/// no session yet (`busy`), and only from `only_from` if it named a peer.
pub fn considers(only_from: Option<&str>, busy: bool, from: &str) -> bool {
    !busy && only_from.is_none_or(|f| f == from)
}

/// The answer to a key-generation proposal.
pub fn answer(session_id: String, accept: bool) -> Event {
    Event::Decision {
        session_id,
        accept,
        reason: (!accept).then(|| DECLINED.to_string()),
    }
}

/// Refuses a key-generation proposal without asking, saying why.
pub fn refuse(session_id: String, reason: &str) -> Event {
    Event::Decision {
        session_id,
        accept: false,
        reason: Some(reason.to_string()),
    }
}

/// Refuses a signing request, saying why.
pub fn decline_sign(session_id: &str, reason: String) -> Event {
    Event::SignDecision {
        session_id: session_id.to_string(),
        wallet: None,
        reason: Some(reason),
    }
}

/// The wallet a signing request names by its group key; a prefix or an id
/// that happens to match is not enough. `Err` is the reason to decline.
pub fn wallet_for(keystore: &Keystore, group_key: &str, me: &str) -> Result<KeyShareFile, String> {
    keystore
        .find(group_key)
        .ok()
        .map(|(_, file)| file)
        .filter(|f| f.metadata.group_public_key.eq_ignore_ascii_case(group_key))
        .ok_or_else(|| format!("{me} has no wallet with group key {group_key}"))
}

/// The answer to a signing request: the wallet's key package if the user
/// said yes and the passphrase opens it, else why not.
pub fn sign_answer(session_id: &str, accept: bool, file: &KeyShareFile, passphrase: &str) -> Event {
    if !accept {
        return decline_sign(session_id, DECLINED.into());
    }
    match open_signing_wallet(file, passphrase) {
        Ok(w) => Event::SignDecision {
            session_id: session_id.to_string(),
            wallet: Some(Box::new(w)),
            reason: None,
        },
        Err(e) => decline_sign(session_id, e),
    }
}

/// Writes `question` and `[y/N] ` to stderr (stdout is for results) and
/// reads a line: only a yes is a yes. Blocks.
pub fn confirm(question: &str) -> bool {
    let mut err = std::io::stderr();
    let _ = write!(err, "{question}[y/N] ");
    let _ = err.flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_run_considers_one_proposal_from_the_peer_it_named() {
        assert!(considers(None, false, "cli1"));
        assert!(considers(Some("cli1"), false, "cli1"));
        assert!(!considers(Some("cli1"), false, "cli2"));
        assert!(!considers(None, true, "cli1"));
    }

    #[test]
    fn only_a_no_carries_the_decline_reason() {
        let yes = answer("s".into(), true);
        assert!(matches!(
            yes,
            Event::Decision {
                accept: true,
                reason: None,
                ..
            }
        ));
        let no = answer("s".into(), false);
        assert!(
            matches!(no, Event::Decision { accept: false, reason: Some(r), .. } if r == DECLINED)
        );
    }
}
