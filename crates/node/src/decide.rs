//! A joiner's decisions: which proposals a `join` run considers, what it
//! settles without asking ([`Policy`]: the flags of `join`), how a yes or
//! a no (or a reason to refuse unasked) becomes the core's answer to a
//! key-generation proposal or a signing request, which wallet a request
//! signs with, and the y/N question that asks a person.
//!
//! Taking part in a key generation and signing are separate decisions:
//! `--accept-keygen` (alias `--yes`) never approves a signature. A
//! signature is approved unasked only by a [`SignRule`] that names what it
//! signs; anything else an unattended run refuses, saying why.

use std::io::{BufRead, Write};

use mpc_core::Event;
use mpc_keystore::fs::Keystore;
use mpc_keystore::wallet::open_signing_wallet;
use mpc_keystore::KeyShareFile;
use mpc_protocol::peer::SignFormat;

/// Why this node refuses a proposal or a signing request. `Display` is the
/// reason sent to the proposer, who prints it after "PEER declined: ".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The person at the terminal said no.
    #[error("declined by user")]
    ByUser,
    /// Not from the peer `--from` named, or while busy (see [`considers`]).
    #[error("not expecting a proposal from this peer")]
    Unexpected,
    /// An unattended run without `--accept-keygen` got a key generation.
    #[error("this node takes part in key generation unattended only with --accept-keygen")]
    KeygenNotApproved,
    /// An unattended run got a signing request no [`SignRule`] allows.
    #[error(
        "signing not approved: this node signs unattended only what its \
         --approve-message, --approve-message-hex, --approve-psbt, \
         --approve-solana, --approve-eth-tx, --approve-typed-data or \
         --approve-wallet name, \
         and none matches this request"
    )]
    SignNotApproved,
    /// An unattended run got a refresh no `--approve-refresh` names.
    #[error("refresh not approved: this node takes part unattended only in refreshes of the wallets --approve-refresh names")]
    RefreshNotApproved,
    /// An unattended run got a repair no `--approve-repair` or
    /// `--accept-repair` covers.
    #[error("repair not approved: this node helps unattended only with the wallets --approve-repair names, and is repaired unattended only with --accept-repair")]
    RepairNotApproved,
    /// An unattended helper, asked to help a target whose key is new here.
    #[error("{0}'s identity key is not pinned here: this node helps only a known peer unattended (check the fingerprint, then `mpc-wallet trust {0} KEY`)")]
    TargetNotPinned(String),
    /// The target of a repair already holds the wallet.
    #[error("this node already holds wallet {0}: a repair does not replace a share")]
    AlreadyHeld(String),
    /// The run has nowhere to find a wallet.
    #[error("this node has no keystore")]
    NoKeystore,
    /// The keystore holds no wallet with the request's group key.
    #[error("{me} has no wallet with group key {group_key}")]
    NoWallet { me: String, group_key: String },
    /// The wallet's share does not open (wrong passphrase, damaged file).
    #[error("{0}")]
    CannotOpen(String),
}

/// A signing request this node approves without asking.
///
/// This is where transaction policies go: a rule that parses what is
/// signed (a Taproot sighash with its PSBT, a Solana message) and allows
/// it by amount or destination will be another variant, checked in
/// [`SignRule::allows`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignRule {
    /// Exactly these bytes, with any wallet of this keystore
    /// (`--approve-message TEXT`, `--approve-message-hex HEX`).
    Message(Vec<u8>),
    /// Exactly this PSBT, with any wallet of this keystore
    /// (`--approve-psbt FILE`): the inputs it signs are the sighashes this
    /// node derives from it, never a hash a peer sent.
    Psbt(Vec<u8>),
    /// Exactly this unsigned EIP-1559 transaction, with any wallet of this
    /// keystore (`--approve-eth-tx JSON`).
    EthTx(Vec<u8>),
    /// EIP-712 typed data with exactly this signing hash, with any wallet
    /// of this keystore (`--approve-typed-data FILE`): the same data
    /// however its JSON is spaced.
    TypedData([u8; 32]),
    /// A Solana transaction with exactly this message, with any wallet of
    /// this keystore (`--approve-solana`): other signers' signatures in a
    /// proposed transaction do not matter, only what this one signs.
    Solana(Vec<u8>),
    /// Anything at all with the wallet of this group key
    /// (`--approve-wallet W --i-understand-this-signs-anything`): any one
    /// other participant can then sign what it wants.
    AnyMessage { group_key: String },
}

impl SignRule {
    /// Whether this rule approves signing `message` (of `format`) with
    /// the wallet of `group_key`.
    pub fn allows(&self, group_key: &str, format: SignFormat, message: &[u8]) -> bool {
        match self {
            // The same text, as raw bytes or as an Ethereum personal_sign.
            SignRule::Message(m) => {
                matches!(format, SignFormat::Message | SignFormat::EthereumMessage) && m == message
            }
            SignRule::EthTx(t) => format == SignFormat::EthereumTransaction && t == message,
            SignRule::TypedData(h) => {
                format == SignFormat::EthereumTypedData
                    && mpc_chain::ethereum::typed_data_hash(message).is_ok_and(|(m, _)| m == *h)
            }
            SignRule::Psbt(p) => format == SignFormat::BitcoinPsbt && p == message,
            SignRule::Solana(m) => {
                format == SignFormat::SolanaTransaction
                    && mpc_chain::solana::SolanaTx::from_bytes(message)
                        .is_ok_and(|tx| tx.message_bytes() == m.as_slice())
            }
            SignRule::AnyMessage { group_key: k } => k.eq_ignore_ascii_case(group_key),
        }
    }
}

/// What a `join` run settles without asking: its flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Only proposals from this peer (`--from`).
    pub from: Option<String>,
    /// Take part in key generation unasked (`--accept-keygen`, `--yes`).
    pub accept_keygen: bool,
    /// Signing requests approved unasked.
    pub sign: Vec<SignRule>,
    /// Group keys of wallets whose refresh is taken part in unasked
    /// (`--approve-refresh WALLET`).
    pub refresh: Vec<String>,
    /// Group keys of wallets this node helps repair unasked
    /// (`--approve-repair WALLET`).
    pub repair: Vec<String>,
    /// Take part unasked as the target of a repair (`--accept-repair`).
    pub accept_repair: bool,
    /// Ask the person at the terminal what the rules above do not settle.
    /// When `false` (an unattended run), refuse it instead.
    pub ask: bool,
}

/// What to do with a proposal or a signing request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Refuse(Refusal),
    /// Ask the person at the terminal.
    Ask,
}

impl Policy {
    /// A `join` run with these flags: it asks what they do not settle only
    /// if none was given, so that an unattended run never waits on stdin.
    pub fn new(from: Option<String>, accept_keygen: bool, sign: Vec<SignRule>) -> Policy {
        let ask = !accept_keygen && sign.is_empty();
        Policy {
            from,
            accept_keygen,
            sign,
            refresh: Vec::new(),
            repair: Vec::new(),
            accept_repair: false,
            ask,
        }
    }

    /// [`Policy::new`], also taking part unasked in refreshes of the
    /// wallets with these group keys.
    pub fn with_refresh(mut self, group_keys: Vec<String>) -> Policy {
        self.ask = self.ask && group_keys.is_empty();
        self.refresh = group_keys;
        self
    }

    /// [`Policy::with_refresh`], for repairs: helping with these wallets,
    /// and being the target.
    pub fn with_repair(mut self, group_keys: Vec<String>, accept_target: bool) -> Policy {
        self.ask = self.ask && group_keys.is_empty() && !accept_target;
        self.repair = group_keys;
        self.accept_repair = accept_target;
        self
    }

    /// What to answer a repair of the wallet of `group_key`, as its
    /// `target` or a helper.
    pub fn repair(&self, group_key: &str, target: bool) -> Verdict {
        let approved = if target {
            self.accept_repair
        } else {
            self.repair
                .iter()
                .any(|k| k.eq_ignore_ascii_case(group_key))
        };
        if approved {
            Verdict::Accept
        } else if self.ask {
            Verdict::Ask
        } else {
            Verdict::Refuse(Refusal::RepairNotApproved)
        }
    }

    /// What to answer a refresh of the wallet of `group_key`.
    pub fn refresh(&self, group_key: &str) -> Verdict {
        if self
            .refresh
            .iter()
            .any(|k| k.eq_ignore_ascii_case(group_key))
        {
            Verdict::Accept
        } else if self.ask {
            Verdict::Ask
        } else {
            Verdict::Refuse(Refusal::RefreshNotApproved)
        }
    }

    /// What to answer a key-generation proposal.
    pub fn keygen(&self) -> Verdict {
        match (self.accept_keygen, self.ask) {
            (true, _) => Verdict::Accept,
            (false, true) => Verdict::Ask,
            (false, false) => Verdict::Refuse(Refusal::KeygenNotApproved),
        }
    }

    /// What to answer a request to sign `message` (of `format`) with the
    /// wallet of `group_key`. Accepting key generation has no say here.
    pub fn sign(&self, group_key: &str, format: SignFormat, message: &[u8]) -> Verdict {
        if self
            .sign
            .iter()
            .any(|r| r.allows(group_key, format, message))
        {
            Verdict::Accept
        } else if self.ask {
            Verdict::Ask
        } else {
            Verdict::Refuse(Refusal::SignNotApproved)
        }
    }
}

/// Whether a `join` run considers a proposal from `from`: only while it has
/// no session yet (`busy`), and only from `only_from` if it named a peer.
pub fn considers(only_from: Option<&str>, busy: bool, from: &str) -> bool {
    !busy && only_from.is_none_or(|f| f == from)
}

/// The answer of the person at the terminal to a key-generation proposal.
pub fn answer(session_id: String, accept: bool) -> Event {
    if accept {
        Event::Decision {
            session_id,
            accept,
            reason: None,
        }
    } else {
        refuse(session_id, Refusal::ByUser)
    }
}

/// Refuses a key-generation proposal, saying why.
pub fn refuse(session_id: String, reason: Refusal) -> Event {
    Event::Decision {
        session_id,
        accept: false,
        reason: Some(reason.to_string()),
    }
}

/// Refuses a signing request, saying why.
pub fn decline_sign(session_id: &str, reason: Refusal) -> Event {
    Event::SignDecision {
        session_id: session_id.to_string(),
        wallet: None,
        reason: Some(reason.to_string()),
    }
}

/// The wallet a signing request names by its group key; a prefix or an id
/// that happens to match is not enough.
pub fn wallet_for(keystore: &Keystore, group_key: &str, me: &str) -> Result<KeyShareFile, Refusal> {
    keystore
        .find(group_key)
        .ok()
        .map(|(_, file)| file)
        .filter(|f| f.metadata.group_public_key.eq_ignore_ascii_case(group_key))
        .ok_or_else(|| Refusal::NoWallet {
            me: me.to_string(),
            group_key: group_key.to_string(),
        })
}

/// The answer to a signing request: the wallet's key package once it was
/// approved (`Ok`) and the passphrase opens it, else why not.
pub fn sign_answer(
    session_id: &str,
    approved: Result<(), Refusal>,
    file: &KeyShareFile,
    passphrase: &str,
) -> Event {
    match opened(approved, file, passphrase) {
        Ok(w) => Event::SignDecision {
            session_id: session_id.to_string(),
            wallet: Some(Box::new(w)),
            reason: None,
        },
        Err(reason) => decline_sign(session_id, reason),
    }
}

/// The wallet's key package, once approved and the passphrase opens it.
fn opened(
    approved: Result<(), Refusal>,
    file: &KeyShareFile,
    passphrase: &str,
) -> Result<mpc_core::SigningWallet, Refusal> {
    approved.and_then(|()| open_signing_wallet(file, passphrase).map_err(Refusal::CannotOpen))
}

/// Refuses a refresh, saying why.
pub fn decline_refresh(session_id: &str, reason: Refusal) -> Event {
    Event::RefreshDecision {
        session_id: session_id.to_string(),
        wallet: None,
        reason: Some(reason.to_string()),
    }
}

/// The answer to a refresh: the wallet's current key package once it was
/// approved and the passphrase opens it, else why not.
pub fn refresh_answer(
    session_id: &str,
    approved: Result<(), Refusal>,
    file: &KeyShareFile,
    passphrase: &str,
) -> Event {
    match opened(approved, file, passphrase) {
        Ok(w) => Event::RefreshDecision {
            session_id: session_id.to_string(),
            wallet: Some(Box::new(w)),
            reason: None,
        },
        Err(reason) => decline_refresh(session_id, reason),
    }
}

/// Refuses a repair, saying why.
pub fn decline_repair(session_id: &str, reason: Refusal) -> Event {
    Event::RepairDecision {
        session_id: session_id.to_string(),
        accept: false,
        wallet: None,
        reason: Some(reason.to_string()),
    }
}

/// The answer to a repair: a helper's key package (`file`) once approved
/// and opened; the target's plain yes.
pub fn repair_answer(
    session_id: &str,
    approved: Result<(), Refusal>,
    file: Option<&KeyShareFile>,
    passphrase: &str,
) -> Event {
    let wallet = match file {
        Some(f) => opened(approved, f, passphrase).map(Some),
        None => approved.map(|()| None),
    };
    match wallet {
        Ok(wallet) => Event::RepairDecision {
            session_id: session_id.to_string(),
            accept: true,
            wallet: wallet.map(Box::new),
            reason: None,
        },
        Err(reason) => decline_repair(session_id, reason),
    }
}

/// A signing request for `generation` while this node's wallet is at the
/// one before, with that generation pending: some participant made it
/// current, which it does only once every participant stored its new
/// share, so this node may too. Returns the file to sign with.
pub fn catch_up(keystore: &Keystore, file: KeyShareFile, generation: u32) -> KeyShareFile {
    let id = file.metadata.id.clone();
    if file.metadata.generation >= generation {
        return file;
    }
    match keystore.pending(&id) {
        Ok(Some(p)) if p.metadata.generation == generation => {
            match keystore.promote(&id, generation) {
                Ok(_) => {
                    tracing::info!(wallet = %id, generation, "a peer signs with the refreshed shares: pending share made current");
                    p
                }
                Err(e) => {
                    tracing::warn!(wallet = %id, "could not make the pending share current: {e}");
                    file
                }
            }
        }
        _ => file,
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

    const MSG: SignFormat = SignFormat::Message;

    const KEY: &str = "02abab";

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
            matches!(no, Event::Decision { accept: false, reason: Some(r), .. } if r == "declined by user")
        );
    }

    #[test]
    fn accepting_key_generation_approves_no_signature() {
        let p = Policy::new(None, true, vec![]);
        assert_eq!(p.keygen(), Verdict::Accept);
        assert_eq!(
            p.sign(KEY, MSG, b"anything"),
            Verdict::Refuse(Refusal::SignNotApproved)
        );
    }

    #[test]
    fn a_signature_is_approved_only_by_a_rule_naming_it() {
        let p = Policy::new(None, false, vec![SignRule::Message(b"hello".to_vec())]);
        assert_eq!(p.sign(KEY, MSG, b"hello"), Verdict::Accept);
        assert_eq!(
            p.sign(KEY, MSG, b"hello!"),
            Verdict::Refuse(Refusal::SignNotApproved)
        );
        // The same bytes as a PSBT are another request.
        assert_eq!(
            p.sign(KEY, SignFormat::BitcoinPsbt, b"hello"),
            Verdict::Refuse(Refusal::SignNotApproved)
        );
        let psbt = Policy::new(None, false, vec![SignRule::Psbt(b"psbt".to_vec())]);
        assert_eq!(
            psbt.sign(KEY, SignFormat::BitcoinPsbt, b"psbt"),
            Verdict::Accept
        );
        assert_eq!(
            psbt.sign(KEY, MSG, b"psbt"),
            Verdict::Refuse(Refusal::SignNotApproved)
        );
        // Unattended: a key generation is refused, not asked about.
        assert_eq!(p.keygen(), Verdict::Refuse(Refusal::KeygenNotApproved));
        let any = SignRule::AnyMessage {
            group_key: KEY.to_uppercase(),
        };
        let p = Policy::new(None, false, vec![any]);
        assert_eq!(p.sign(KEY, MSG, b"whatever"), Verdict::Accept);
        assert_eq!(
            p.sign("03cdcd", MSG, b"whatever"),
            Verdict::Refuse(Refusal::SignNotApproved)
        );
    }

    #[test]
    fn without_flags_a_person_is_asked_everything() {
        let p = Policy::new(Some("cli1".into()), false, vec![]);
        assert_eq!(p.keygen(), Verdict::Ask);
        assert_eq!(p.sign(KEY, MSG, b"x"), Verdict::Ask);
    }

    #[test]
    fn refreshes_and_repairs_are_approved_only_for_the_wallets_named() {
        let p = Policy::new(None, false, vec![]).with_refresh(vec![KEY.into()]);
        assert_eq!(p.refresh(&KEY.to_uppercase()), Verdict::Accept);
        assert_eq!(
            p.refresh("03cdcd"),
            Verdict::Refuse(Refusal::RefreshNotApproved)
        );
        // Approving refreshes approves no repair, and no signature.
        assert_eq!(
            p.repair(KEY, false),
            Verdict::Refuse(Refusal::RepairNotApproved)
        );
        assert_eq!(
            p.sign(KEY, MSG, b"x"),
            Verdict::Refuse(Refusal::SignNotApproved)
        );
        let helper = Policy::new(None, false, vec![]).with_repair(vec![KEY.into()], false);
        assert_eq!(helper.repair(KEY, false), Verdict::Accept);
        // Being repaired is a flag of its own.
        assert_eq!(
            helper.repair(KEY, true),
            Verdict::Refuse(Refusal::RepairNotApproved)
        );
        let target = Policy::new(None, false, vec![]).with_repair(vec![], true);
        assert_eq!(target.repair(KEY, true), Verdict::Accept);
        assert_eq!(
            target.repair(KEY, false),
            Verdict::Refuse(Refusal::RepairNotApproved)
        );
        // Without flags, a person is asked.
        let asked = Policy::new(None, false, vec![])
            .with_refresh(vec![])
            .with_repair(vec![], false);
        assert_eq!(asked.refresh(KEY), Verdict::Ask);
        assert_eq!(asked.repair(KEY, true), Verdict::Ask);
    }
}
