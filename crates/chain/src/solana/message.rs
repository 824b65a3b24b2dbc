//! Solana's wire format: compact-u16 ("shortvec") lengths, legacy and v0
//! messages, and transactions (a shortvec count of 64-byte signatures,
//! then the message).
//!
//! A message is checked as the runtime's `sanitize` checks it (a writable
//! fee payer, header counts within the keys, programs among the static
//! keys and not the payer, every account index in range, lookup tables
//! that load something), and static account keys may not repeat (the
//! runtime refuses those too, when it locks the accounts). The bytes of
//! the message are kept as received: they are what ed25519 signs.

use base64::Engine as _;

use super::SolanaError;

/// Solana's packet size (1280-byte IPv6 MTU, less 48 bytes of headers):
/// the largest serialized transaction a validator accepts.
pub const MAX_TRANSACTION_BYTES: usize = 1232;

/// The first byte of a versioned message: the high bit, then the version.
const VERSION_PREFIX: u8 = 0x80;

pub(crate) type Pubkey = [u8; 32];

/// Account indexes are one byte.
const MAX_ACCOUNTS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    Legacy,
    V0,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// The first this many account keys sign, the fee payer first.
    pub(crate) num_required_signatures: u8,
    /// The last this many of the signers are readonly.
    pub(crate) num_readonly_signed: u8,
    /// The last this many static keys (not signers) are readonly.
    pub(crate) num_readonly_unsigned: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Instruction {
    /// Index of the program among the static account keys.
    pub(crate) program_id_index: u8,
    /// Indexes into the static keys, then the accounts lookups load.
    pub(crate) accounts: Vec<u8>,
    pub(crate) data: Vec<u8>,
}

/// A v0 address table lookup: accounts loaded, on chain, from the table
/// at `account_key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lookup {
    pub(crate) account_key: Pubkey,
    pub(crate) writable_indexes: Vec<u8>,
    pub(crate) readonly_indexes: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) version: Version,
    pub(crate) header: Header,
    pub(crate) account_keys: Vec<Pubkey>,
    pub(crate) recent_blockhash: [u8; 32],
    pub(crate) instructions: Vec<Instruction>,
    /// Always empty for a legacy message.
    pub(crate) lookups: Vec<Lookup>,
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], SolanaError> {
        if n > self.rest.len() {
            return Err(SolanaError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SolanaError> {
        self.bytes(N)?
            .try_into()
            .map_err(|_| SolanaError::Truncated)
    }

    fn u8(&mut self) -> Result<u8, SolanaError> {
        let [b] = self.array()?;
        Ok(b)
    }

    /// A compact-u16: 7 bits a byte, least significant first, at most 3
    /// bytes. Like the runtime, refuses a value above u16::MAX and
    /// non-canonical encodings (a last byte of zero after the first).
    fn shortvec(&mut self) -> Result<usize, SolanaError> {
        let mut value = 0usize;
        for i in 0..3 {
            let byte = self.u8()?;
            if byte == 0 && i > 0 {
                return Err(SolanaError::BadShortVec);
            }
            value |= usize::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return if value > usize::from(u16::MAX) {
                    Err(SolanaError::BadShortVec)
                } else {
                    Ok(value)
                };
            }
        }
        Err(SolanaError::BadShortVec)
    }

    /// A shortvec length, then that many bytes.
    fn var_bytes(&mut self) -> Result<&'a [u8], SolanaError> {
        let n = self.shortvec()?;
        self.bytes(n)
    }

    fn remaining(&self) -> usize {
        self.rest.len()
    }
}

/// Appends `n` as a compact-u16. Every length written here is one read
/// (so at most u16::MAX) or one of a message built in this crate.
pub(crate) fn write_shortvec(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn write_var_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_shortvec(out, b.len());
    out.extend_from_slice(b);
}

fn bad_header(why: impl Into<String>) -> SolanaError {
    SolanaError::BadHeader(why.into())
}

impl Message {
    /// Decodes exactly `bytes` as one message, and checks it.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Message, SolanaError> {
        let mut r = Reader::new(bytes);
        let version = match r.rest.first() {
            Some(&p) if p & VERSION_PREFIX != 0 => {
                r.u8()?;
                match p & !VERSION_PREFIX {
                    0 => Version::V0,
                    v => return Err(SolanaError::UnsupportedVersion(v)),
                }
            }
            _ => Version::Legacy,
        };
        let header = Header {
            num_required_signatures: r.u8()?,
            num_readonly_signed: r.u8()?,
            num_readonly_unsigned: r.u8()?,
        };
        let n_keys = r.shortvec()?;
        let keys = r.bytes(n_keys.checked_mul(32).ok_or(SolanaError::Truncated)?)?;
        let account_keys = keys
            .chunks_exact(32)
            .map(|k| k.try_into().map_err(|_| SolanaError::Truncated))
            .collect::<Result<Vec<Pubkey>, _>>()?;
        let recent_blockhash = r.array()?;

        // Capacities are bounded by what is left: an instruction takes at
        // least 3 bytes, a lookup 35.
        let n_ix = r.shortvec()?;
        let mut instructions = Vec::with_capacity(n_ix.min(r.remaining() / 3));
        for _ in 0..n_ix {
            let program_id_index = r.u8()?;
            let accounts = r.var_bytes()?.to_vec();
            let data = r.var_bytes()?.to_vec();
            instructions.push(Instruction {
                program_id_index,
                accounts,
                data,
            });
        }
        let mut lookups = Vec::new();
        if version == Version::V0 {
            let n = r.shortvec()?;
            lookups.reserve(n.min(r.remaining() / 35));
            for _ in 0..n {
                let account_key = r.array()?;
                let writable_indexes = r.var_bytes()?.to_vec();
                let readonly_indexes = r.var_bytes()?.to_vec();
                lookups.push(Lookup {
                    account_key,
                    writable_indexes,
                    readonly_indexes,
                });
            }
        }
        if r.remaining() != 0 {
            return Err(SolanaError::TrailingBytes);
        }
        let message = Message {
            version,
            header,
            account_keys,
            recent_blockhash,
            instructions,
            lookups,
        };
        message.check()?;
        Ok(message)
    }

    /// The runtime's sanitize rules, and no repeated static key.
    fn check(&self) -> Result<(), SolanaError> {
        let h = &self.header;
        let keys = self.account_keys.len();
        if h.num_required_signatures == 0 {
            return Err(bad_header("no signer: the fee payer must sign"));
        }
        if h.num_readonly_signed >= h.num_required_signatures {
            return Err(bad_header(format!(
                "{} of its {} signers are readonly: the fee payer must be writable",
                h.num_readonly_signed, h.num_required_signatures
            )));
        }
        let described =
            usize::from(h.num_required_signatures) + usize::from(h.num_readonly_unsigned);
        if described > keys {
            return Err(bad_header(format!(
                "its header counts {} signers and {} readonly non-signers, but there are {keys} account keys",
                h.num_required_signatures, h.num_readonly_unsigned
            )));
        }
        for (i, k) in self.account_keys.iter().enumerate() {
            if let Some(j) = self.account_keys.iter().take(i).position(|x| x == k) {
                return Err(bad_header(format!(
                    "account key {i} repeats account key {j}"
                )));
            }
        }
        for (i, l) in self.lookups.iter().enumerate() {
            if l.writable_indexes.is_empty() && l.readonly_indexes.is_empty() {
                return Err(bad_header(format!(
                    "address table lookup {i} loads no account"
                )));
            }
        }
        let total = self.num_accounts();
        if total > MAX_ACCOUNTS {
            return Err(bad_header(format!(
                "{total} accounts; account indexes are one byte"
            )));
        }
        for (index, ix) in self.instructions.iter().enumerate() {
            let bad = |detail: String| SolanaError::BadInstruction { index, detail };
            let p = usize::from(ix.program_id_index);
            if p == 0 {
                return Err(bad("its program is the fee payer".into()));
            }
            // v0 too: a program must be a static key, so what runs can be
            // read off the message without chain data.
            if p >= keys {
                return Err(bad(format!(
                    "program index {p}, but there are {keys} static account keys"
                )));
            }
            if let Some(a) = ix.accounts.iter().find(|a| usize::from(**a) >= total) {
                return Err(bad(format!(
                    "account index {a}, but the message has {total} accounts"
                )));
            }
        }
        Ok(())
    }

    /// Static keys and the accounts the lookups load.
    pub(crate) fn num_accounts(&self) -> usize {
        self.account_keys.len() + self.num_loaded()
    }

    /// Accounts loaded by lookups: indexes past the static keys.
    pub(crate) fn num_loaded(&self) -> usize {
        self.lookups
            .iter()
            .map(|l| l.writable_indexes.len() + l.readonly_indexes.len())
            .sum()
    }

    pub(crate) fn num_signers(&self) -> usize {
        usize::from(self.header.num_required_signatures)
    }

    /// The wire encoding: [`Message::decode`] of it gives this message back.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.version == Version::V0 {
            out.push(VERSION_PREFIX);
        }
        out.push(self.header.num_required_signatures);
        out.push(self.header.num_readonly_signed);
        out.push(self.header.num_readonly_unsigned);
        write_shortvec(&mut out, self.account_keys.len());
        for k in &self.account_keys {
            out.extend_from_slice(k);
        }
        out.extend_from_slice(&self.recent_blockhash);
        write_shortvec(&mut out, self.instructions.len());
        for ix in &self.instructions {
            out.push(ix.program_id_index);
            write_var_bytes(&mut out, &ix.accounts);
            write_var_bytes(&mut out, &ix.data);
        }
        if self.version == Version::V0 {
            write_shortvec(&mut out, self.lookups.len());
            for l in &self.lookups {
                out.extend_from_slice(&l.account_key);
                write_var_bytes(&mut out, &l.writable_indexes);
                write_var_bytes(&mut out, &l.readonly_indexes);
            }
        }
        out
    }
}

/// A Solana transaction or bare message, as a signer was handed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolanaTx {
    /// One per required signer when a transaction was given (all zero
    /// bytes for a slot not signed yet); empty for a bare message.
    signatures: Vec<[u8; 64]>,
    /// The message exactly as received.
    message_bytes: Vec<u8>,
    message: Message,
}

/// Why the bytes did not read as a transaction: whether they looked like
/// one (so its error, not the bare message's, is the one to report).
struct NotTransaction {
    looked_like_one: bool,
    error: SolanaError,
}

impl SolanaTx {
    /// A serialized transaction (as `solana ... --sign-only` and dApps give
    /// it, base64-decoded) or a bare message (`--dump-transaction-message`).
    ///
    /// The transaction layout is tried first: a shortvec count n ≥ 1, n
    /// signatures of 64 bytes, then a message that ends where the bytes do
    /// and requires exactly n signatures. Anything else must be a bare
    /// message. Either way what is signed (the message) is what is reviewed,
    /// so bytes that happened to read both ways could not make the wallet
    /// sign something other than it showed.
    ///
    /// At most [`MAX_TRANSACTION_BYTES`], counting for a bare message the
    /// signature slots the signed transaction will need.
    pub fn from_bytes(b: &[u8]) -> Result<SolanaTx, SolanaError> {
        if b.len() > MAX_TRANSACTION_BYTES {
            return Err(SolanaError::TooLarge {
                bytes: b.len(),
                max: MAX_TRANSACTION_BYTES,
            });
        }
        let not_tx = match Self::transaction(b) {
            Ok(tx) => return Ok(tx),
            Err(e) => e,
        };
        let message = match Message::decode(b) {
            Ok(m) => m,
            Err(_) if not_tx.looked_like_one => return Err(not_tx.error),
            Err(e) => return Err(e),
        };
        let tx = SolanaTx {
            signatures: Vec::new(),
            message_bytes: b.to_vec(),
            message,
        };
        let signed = tx.signed_len();
        if signed > MAX_TRANSACTION_BYTES {
            return Err(SolanaError::TooLarge {
                bytes: signed,
                max: MAX_TRANSACTION_BYTES,
            });
        }
        Ok(tx)
    }

    fn transaction(b: &[u8]) -> Result<SolanaTx, NotTransaction> {
        let not = |error| NotTransaction {
            looked_like_one: false,
            error,
        };
        let mut r = Reader::new(b);
        let n = r.shortvec().map_err(not)?;
        if n == 0 {
            return Err(not(bad_header("no signatures")));
        }
        let sigs = r
            .bytes(
                n.checked_mul(64)
                    .ok_or(SolanaError::Truncated)
                    .map_err(not)?,
            )
            .map_err(not)?;
        let rest = r.rest;
        // After the signatures, a header requiring n of them (behind the
        // version byte for a versioned message).
        let required = match rest {
            [p, required, ..] if p & VERSION_PREFIX != 0 => Some(*required),
            [required, ..] => Some(*required),
            [] => None,
        };
        let looked_like_one = required.map(usize::from) == Some(n);
        let message = Message::decode(rest).map_err(|error| NotTransaction {
            looked_like_one,
            error,
        })?;
        if message.num_signers() != n {
            return Err(not(bad_header(format!(
                "{n} signatures for {} signers",
                message.num_signers()
            ))));
        }
        let signatures = sigs
            .chunks_exact(64)
            .map(|s| s.try_into().map_err(|_| not(SolanaError::Truncated)))
            .collect::<Result<Vec<[u8; 64]>, _>>()?;
        Ok(SolanaTx {
            signatures,
            message_bytes: rest.to_vec(),
            message,
        })
    }

    /// [`SolanaTx::from_bytes`] of base64 (standard alphabet, padded),
    /// ignoring ASCII whitespace around it.
    pub fn from_base64(s: &str) -> Result<SolanaTx, SolanaError> {
        let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
        // Refused before decoding, so a huge string is never decoded.
        let decoded_len = s.len() / 4 * 3;
        if decoded_len > MAX_TRANSACTION_BYTES + 3 {
            return Err(SolanaError::TooLarge {
                bytes: decoded_len,
                max: MAX_TRANSACTION_BYTES,
            });
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|_| SolanaError::NotBase64)?;
        SolanaTx::from_bytes(&bytes)
    }

    /// The bytes as received: the transaction, or the bare message.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.signatures.is_empty() {
            self.message_bytes.clone()
        } else {
            encode_transaction(&self.signatures, &self.message_bytes)
        }
    }

    /// Whether a whole transaction was given (else a bare message).
    pub fn is_transaction(&self) -> bool {
        !self.signatures.is_empty()
    }

    /// The signature slots as received, one per required signer; empty for
    /// a bare message.
    pub fn signatures(&self) -> &[[u8; 64]] {
        &self.signatures
    }

    /// What ed25519 signs: the message, exactly as received.
    pub fn message_bytes(&self) -> &[u8] {
        &self.message_bytes
    }

    /// The signature slot of `key`: its position among the first
    /// `num_required_signatures` static account keys.
    pub fn signer_index(&self, key: &[u8; 32]) -> Option<usize> {
        self.message
            .account_keys
            .iter()
            .take(self.message.num_signers())
            .position(|k| k == key)
    }

    /// The serialized transaction with `signature` in slot `index`: the
    /// other slots as received, or all zero (unsigned) for a bare message.
    pub fn with_signature(
        &self,
        index: usize,
        signature: &[u8; 64],
    ) -> Result<Vec<u8>, SolanaError> {
        let mut signatures = if self.signatures.is_empty() {
            vec![[0u8; 64]; self.message.num_signers()]
        } else {
            self.signatures.clone()
        };
        let slot = signatures
            .get_mut(index)
            .ok_or(SolanaError::BadSignerIndex)?;
        *slot = *signature;
        Ok(encode_transaction(&signatures, &self.message_bytes))
    }

    pub(crate) fn message(&self) -> &Message {
        &self.message
    }

    /// The length of the transaction once signed.
    fn signed_len(&self) -> usize {
        let n = self.message.num_signers();
        let mut count = Vec::with_capacity(3);
        write_shortvec(&mut count, n);
        count.len() + 64 * n + self.message_bytes.len()
    }
}

fn encode_transaction(signatures: &[[u8; 64]], message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + 64 * signatures.len() + message.len());
    write_shortvec(&mut out, signatures.len());
    for s in signatures {
        out.extend_from_slice(s);
    }
    out.extend_from_slice(message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The runtime's own compact-u16 cases (solana-short-vec).
    #[test]
    fn shortvec_round_trips_and_refuses_what_the_runtime_refuses() {
        let cases: &[(usize, &[u8])] = &[
            (0, &[0x00]),
            (0x7f, &[0x7f]),
            (0x80, &[0x80, 0x01]),
            (0xff, &[0xff, 0x01]),
            (0x100, &[0x80, 0x02]),
            (0x3fff, &[0xff, 0x7f]),
            (0x4000, &[0x80, 0x80, 0x01]),
            (0xffff, &[0xff, 0xff, 0x03]),
        ];
        for (n, bytes) in cases {
            let mut out = Vec::new();
            write_shortvec(&mut out, *n);
            assert_eq!(out.as_slice(), *bytes, "{n:#x}");
            let mut r = Reader::new(bytes);
            assert_eq!(r.shortvec(), Ok(*n));
            assert_eq!(r.remaining(), 0);
        }
        let bad: &[&[u8]] = &[
            &[0x80, 0x00],
            &[0x80, 0x80, 0x00],
            &[0xff, 0xff, 0x04],
            &[0x80, 0x80, 0x80, 0x00],
        ];
        for b in bad {
            assert_eq!(
                Reader::new(b).shortvec(),
                Err(SolanaError::BadShortVec),
                "{b:x?}"
            );
        }
        assert_eq!(Reader::new(&[0x80]).shortvec(), Err(SolanaError::Truncated));
        assert_eq!(Reader::new(&[]).shortvec(), Err(SolanaError::Truncated));
    }

    fn two_key_message() -> Message {
        Message {
            version: Version::V0,
            header: Header {
                num_required_signatures: 1,
                num_readonly_signed: 0,
                num_readonly_unsigned: 1,
            },
            account_keys: vec![[1; 32], [2; 32]],
            recent_blockhash: [3; 32],
            instructions: vec![Instruction {
                program_id_index: 1,
                accounts: vec![0, 2],
                data: vec![9; 200],
            }],
            lookups: vec![Lookup {
                account_key: [4; 32],
                writable_indexes: vec![],
                readonly_indexes: vec![7],
            }],
        }
    }

    #[test]
    fn encode_is_what_decode_reads() {
        let m = two_key_message();
        let bytes = m.encode();
        assert_eq!(Message::decode(&bytes), Ok(m.clone()));
        let legacy = Message {
            version: Version::Legacy,
            lookups: vec![],
            instructions: vec![Instruction {
                accounts: vec![0],
                ..m.instructions[0].clone()
            }],
            ..m
        };
        assert_eq!(Message::decode(&legacy.encode()), Ok(legacy));
    }

    #[test]
    fn sanitize_rules() {
        let check = |f: &dyn Fn(&mut Message)| {
            let mut m = two_key_message();
            f(&mut m);
            Message::decode(&m.encode())
        };
        assert!(matches!(
            check(&|m| m.header.num_required_signatures = 0),
            Err(SolanaError::BadHeader(_))
        ));
        assert!(matches!(
            check(&|m| m.header.num_readonly_signed = 1),
            Err(SolanaError::BadHeader(_))
        ));
        assert!(matches!(
            check(&|m| m.header.num_readonly_unsigned = 2),
            Err(SolanaError::BadHeader(_))
        ));
        assert!(matches!(
            check(&|m| m.account_keys[1] = [1; 32]),
            Err(SolanaError::BadHeader(_))
        ));
        assert!(matches!(
            check(&|m| m.lookups[0].readonly_indexes.clear()),
            Err(SolanaError::BadHeader(_))
        ));
        assert!(matches!(
            check(&|m| m.lookups[0].writable_indexes = vec![0; 255]),
            Err(SolanaError::BadHeader(_))
        ));
        assert!(matches!(
            check(&|m| m.instructions[0].program_id_index = 0),
            Err(SolanaError::BadInstruction { index: 0, .. })
        ));
        // Index 2 is the looked-up account: fine for an account, not for a
        // program.
        assert!(matches!(
            check(&|m| m.instructions[0].program_id_index = 2),
            Err(SolanaError::BadInstruction { index: 0, .. })
        ));
        assert!(matches!(
            check(&|m| m.instructions[0].accounts = vec![3]),
            Err(SolanaError::BadInstruction { index: 0, .. })
        ));
    }
}
