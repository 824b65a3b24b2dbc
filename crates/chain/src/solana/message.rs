//! Solana's wire format: compact-u16 ("shortvec") lengths, and legacy and
//! v0 messages ([`super::transaction`] wraps them in signatures).
//!
//! A message is checked as the runtime's `sanitize` checks it (a writable
//! fee payer, header counts within the keys, programs among the static
//! keys and not the payer, every account index in range, lookup tables
//! that load something), and static account keys may not repeat (the
//! runtime refuses those too, when it locks the accounts). The bytes of
//! the message are kept as received: they are what ed25519 signs.

use super::SolanaError;

/// Solana's packet size (1280-byte IPv6 MTU, less 48 bytes of headers):
/// the largest serialized transaction a validator accepts.
pub const MAX_TRANSACTION_BYTES: usize = 1232;

/// The first byte of a versioned message: the high bit, then the version.
pub(crate) const VERSION_PREFIX: u8 = 0x80;

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

/// Reads the wire format front to back; `rest` is what is left.
pub(crate) struct Reader<'a> {
    pub(crate) rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], SolanaError> {
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
    pub(crate) fn shortvec(&mut self) -> Result<usize, SolanaError> {
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

pub(crate) fn bad_header(why: impl Into<String>) -> SolanaError {
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
