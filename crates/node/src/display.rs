//! Text that came from elsewhere (a peer, the signaling server, a wallet
//! file) on its way to the terminal.
//!
//! Such text may carry control characters: an ANSI escape that erases the
//! line or moves the cursor, a carriage return that overwrites what was
//! printed, a newline that starts a line that looks like ours. Every path
//! that prints a remote string goes through [`sanitize`] or [`Remote`],
//! which escape them (`\x1b`, `\r`, `\u{9b}`) and keep printable Unicode.
//! `--json` output is left to serde, which escapes the C0 controls (ESC
//! included) but not DEL or C1: it is for programs, not terminals.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use mpc_core::payload::Review;
use mpc_protocol::peer::{SessionProposal, SignProposal};

/// Whether `c` must not reach a terminal as it is: the C0 controls
/// (newline and tab included), DEL and the C1 controls, which between them
/// start every ANSI escape sequence, and the Unicode controls that reorder
/// or break the text shown (bidirectional overrides and isolates, line and
/// paragraph separators).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `s` with every control character escaped; borrowed when there is none.
/// A backslash is left as it is, so sanitizing twice changes nothing.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) && u32::from(c) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Shows a remote value (a string, or an error carrying one) sanitized:
/// `println!("{}", Remote(peer_id))`.
pub struct Remote<T>(pub T);

impl<T: fmt::Display> fmt::Display for Remote<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&sanitize(&self.0.to_string()))
    }
}

fn owned(s: &str) -> String {
    sanitize(s).into_owned()
}

/// The core's one-line description of a key-generation proposal, with
/// every field the proposer chose escaped.
pub fn describe(from: &str, p: &SessionProposal) -> String {
    owned(&mpc_core::describe::describe(from, p))
}

/// The core's description of a signing request (several lines: the line
/// breaks are its own), with every field the proposer chose escaped first.
/// A transaction's review is this node's own decoding, escaped line by
/// line all the same.
pub fn describe_sign(
    from: &str,
    p: &SignProposal,
    wallet_id: Option<&str>,
    review: Option<&Review>,
) -> String {
    let p = SignProposal {
        generation: 0,
        session_id: owned(&p.session_id),
        group_public_key: owned(&p.group_public_key),
        message_hex: owned(&p.message_hex),
        signers: p.signers.iter().map(|s| owned(s)).collect(),
        keys: p.keys.clone(),
        format: p.format,
    };
    let wallet_id = wallet_id.map(owned);
    let text = mpc_core::describe::describe_sign(&owned(from), &p, wallet_id.as_deref(), review);
    text.lines().map(owned).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_printable_text_kept() {
        assert!(matches!(sanitize("cli2 déclina ✓ 签名"), Cow::Borrowed(_)));
        assert_eq!(
            sanitize("\x1b[2K\rwallet created: bc1pevil\n"),
            "\\x1b[2K\\rwallet created: bc1pevil\\n"
        );
        assert_eq!(
            sanitize("a\u{7f}b\u{9b}31mc\u{0}"),
            "a\\x7fb\\u{9b}31mc\\x00"
        );
        assert_eq!(sanitize("tab\there"), "tab\\there");
        // Bidi overrides reorder what the eye reads.
        assert_eq!(sanitize("abc\u{202e}fed"), "abc\\u{202e}fed");
        let once = sanitize("\x1b]0;title\x07").into_owned();
        assert_eq!(sanitize(&once), once.as_str());
        assert_eq!(Remote("x\x1by").to_string(), "x\\x1by");
    }

    #[test]
    fn a_signing_request_keeps_its_own_line_breaks_only() {
        let p = SignProposal {
            generation: 0,
            session_id: "s\x1b[2K".into(),
            group_public_key: "02ab".into(),
            message_hex: hex::encode("hi"),
            signers: vec!["cli1".into(), "cli2\r".into()],
            keys: None,
            format: Default::default(),
        };
        let text = describe_sign("cli1\n", &p, Some("w\x1b"), None);
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text:?}");
        assert!(
            text.contains("s\\x1b[2K") && text.contains("cli2\\r"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 3, "{text}");
    }
}
