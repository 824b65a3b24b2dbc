//! Bitcoin's consensus encoding, as far as a PSBT needs it: the bounded
//! reader every parser here uses, compact sizes, transactions (the unsigned
//! one, without witnesses; a `non_witness_utxo`, with or without), their
//! txid and the size of a finished transaction.

use sha2::{Digest, Sha256};

/// The most satoshis there will ever be (21 million BTC). An amount or a sum
/// of outputs above it is no valid transaction.
pub(crate) const MAX_MONEY: u64 = 21_000_000 * 100_000_000;

/// Why bytes are not the encoding they should be. The PSBT layer turns it
/// into a [`super::PsbtError`] that names the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The bytes ended inside a value.
    Truncated,
    /// Anything else, said in words.
    Invalid(&'static str),
}

/// A cursor over untrusted bytes: every read is checked against what is
/// left, so no length read from the input can make it panic or allocate
/// more than the input holds.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A compact size, which must be minimally encoded (as Bitcoin Core
    /// requires): otherwise re-serializing would not give the same bytes.
    pub(crate) fn compact_size(&mut self) -> Result<u64, DecodeError> {
        let (n, min) = match self.u8()? {
            0xfd => (u64::from(u16::from_le_bytes(self.array()?)), 0xfd),
            0xfe => (u64::from(u32::from_le_bytes(self.array()?)), 0x1_0000),
            0xff => (u64::from_le_bytes(self.array()?), 0x1_0000_0000),
            small => return Ok(u64::from(small)),
        };
        if n < min {
            return Err(DecodeError::Invalid("non-minimal compact size"));
        }
        Ok(n)
    }

    /// A length or count that must fit in what is left, `unit` bytes at
    /// least per item: checked before anything is allocated for it.
    pub(crate) fn count(&mut self, unit: usize) -> Result<usize, DecodeError> {
        let n = self.compact_size()?;
        let n = usize::try_from(n).map_err(|_| DecodeError::Truncated)?;
        match n.checked_mul(unit) {
            Some(need) if need <= self.rest.len() => Ok(n),
            _ => Err(DecodeError::Truncated),
        }
    }

    /// Compact-size-prefixed bytes.
    pub(crate) fn var_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.count(1)?;
        self.bytes(n)
    }
}

pub(crate) fn write_compact_size(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

pub(crate) fn compact_size_len(n: u64) -> u64 {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

pub(crate) fn write_var_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_compact_size(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) fn sha256d(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(bytes)).into()
}

/// A txid in the order block explorers and `bitcoin-cli` show it.
pub(crate) fn txid_hex(txid: &[u8; 32]) -> String {
    let mut display = *txid;
    display.reverse();
    hex::encode(display)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TxIn {
    /// The spent transaction's id, in internal (hash) byte order.
    pub(crate) prev_txid: [u8; 32],
    pub(crate) vout: u32,
    pub(crate) script_sig: Vec<u8>,
    pub(crate) sequence: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TxOut {
    pub(crate) value: u64,
    pub(crate) script_pubkey: Vec<u8>,
}

impl TxOut {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<TxOut, DecodeError> {
        let value = r.u64()?;
        if value > MAX_MONEY {
            return Err(DecodeError::Invalid("amount above 21 million BTC"));
        }
        let script_pubkey = r.var_bytes()?.to_vec();
        Ok(TxOut {
            value,
            script_pubkey,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.value.to_le_bytes());
        write_var_bytes(out, &self.script_pubkey);
    }
}

/// A transaction without its witnesses (which only a `non_witness_utxo` may
/// carry, and nothing here needs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tx {
    pub(crate) version: i32,
    pub(crate) inputs: Vec<TxIn>,
    pub(crate) outputs: Vec<TxOut>,
    pub(crate) locktime: u32,
}

// Smallest encodings: an input is outpoint (36) + empty script (1) +
// sequence (4); an output is amount (8) + empty script (1).
const MIN_TXIN: usize = 41;
const MIN_TXOUT: usize = 9;

impl Tx {
    /// Decodes exactly `bytes` as one transaction. With `allow_witness`
    /// false (the PSBT's unsigned tx) the BIP144 marker is refused; a
    /// transaction without inputs is refused either way, since its
    /// encoding would read as that marker.
    pub(crate) fn decode(bytes: &[u8], allow_witness: bool) -> Result<Tx, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = i32::from_le_bytes(r.array()?);
        let mut n_in = r.count(MIN_TXIN)?;
        let mut segwit = false;
        if n_in == 0 {
            if r.peek() != Some(1) {
                return Err(DecodeError::Invalid("transaction has no inputs"));
            }
            if !allow_witness {
                return Err(DecodeError::Invalid("witness serialization"));
            }
            r.u8()?;
            segwit = true;
            n_in = r.count(MIN_TXIN)?;
            if n_in == 0 {
                return Err(DecodeError::Invalid("transaction has no inputs"));
            }
        }
        let mut inputs = Vec::with_capacity(n_in);
        for _ in 0..n_in {
            let prev_txid = r.array()?;
            let vout = r.u32()?;
            let script_sig = r.var_bytes()?.to_vec();
            let sequence = r.u32()?;
            inputs.push(TxIn {
                prev_txid,
                vout,
                script_sig,
                sequence,
            });
        }
        let n_out = r.count(MIN_TXOUT)?;
        let mut outputs = Vec::with_capacity(n_out);
        let mut total: u64 = 0;
        for _ in 0..n_out {
            let out = TxOut::decode(&mut r)?;
            total = total
                .checked_add(out.value)
                .filter(|t| *t <= MAX_MONEY)
                .ok_or(DecodeError::Invalid(
                    "outputs add up to more than 21 million BTC",
                ))?;
            outputs.push(out);
        }
        if segwit {
            // Skipped, not kept: nothing here reads a previous
            // transaction's witnesses.
            for _ in 0..n_in {
                let items = r.count(1)?;
                for _ in 0..items {
                    r.var_bytes()?;
                }
            }
        }
        let locktime = r.u32()?;
        if !r.is_empty() {
            return Err(DecodeError::Invalid("trailing bytes after the transaction"));
        }
        Ok(Tx {
            version,
            inputs,
            outputs,
            locktime,
        })
    }

    /// The encoding without witnesses, with each input's scriptSig taken
    /// from `script_sigs` when given (the finished transaction), else its
    /// own.
    pub(crate) fn encode_base(&self, out: &mut Vec<u8>, script_sigs: Option<&[&[u8]]>) {
        out.extend_from_slice(&self.version.to_le_bytes());
        write_compact_size(out, self.inputs.len() as u64);
        for (i, input) in self.inputs.iter().enumerate() {
            out.extend_from_slice(&input.prev_txid);
            out.extend_from_slice(&input.vout.to_le_bytes());
            let script = script_sigs
                .and_then(|s| s.get(i).copied())
                .unwrap_or(&input.script_sig);
            write_var_bytes(out, script);
            out.extend_from_slice(&input.sequence.to_le_bytes());
        }
        write_compact_size(out, self.outputs.len() as u64);
        for output in &self.outputs {
            output.encode(out);
        }
        out.extend_from_slice(&self.locktime.to_le_bytes());
    }

    /// The txid (internal byte order): hash of the encoding without
    /// witnesses.
    pub(crate) fn txid(&self) -> [u8; 32] {
        let mut buf = Vec::new();
        self.encode_base(&mut buf, None);
        sha256d(&buf)
    }

    /// The network encoding of the finished transaction: `script_sigs` and
    /// `witnesses` (each a serialized witness stack, compact-size item count
    /// first) per input. Without any non-empty witness it is the legacy
    /// encoding, as BIP144 requires.
    pub(crate) fn encode_final(&self, script_sigs: &[&[u8]], witnesses: &[&[u8]]) -> Vec<u8> {
        let has_witness = witnesses.iter().any(|w| !is_empty_witness(w));
        let mut out = Vec::new();
        if !has_witness {
            self.encode_base(&mut out, Some(script_sigs));
            return out;
        }
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&[0x00, 0x01]);
        let mut base = Vec::new();
        self.encode_base(&mut base, Some(script_sigs));
        // The base encoding minus its version (4) and locktime (4) is the
        // inputs and outputs, in the same order BIP144 wants them.
        let body = base
            .get(4..base.len().saturating_sub(4))
            .unwrap_or_default();
        out.extend_from_slice(body);
        for i in 0..self.inputs.len() {
            match witnesses.get(i) {
                Some(w) if !w.is_empty() => out.extend_from_slice(w),
                _ => out.push(0x00),
            }
        }
        out.extend_from_slice(&self.locktime.to_le_bytes());
        out
    }
}

/// A serialized witness stack with no items (or no bytes at all).
pub(crate) fn is_empty_witness(w: &[u8]) -> bool {
    matches!(w, [] | [0])
}

/// Checks that `bytes` is exactly one serialized witness stack.
pub(crate) fn check_witness(bytes: &[u8]) -> Result<(), DecodeError> {
    let mut r = Reader::new(bytes);
    let items = r.count(1)?;
    for _ in 0..items {
        r.var_bytes()?;
    }
    if r.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::Invalid("trailing bytes after the witness"))
    }
}

/// Virtual size (BIP141): weight / 4 rounded up, where the weight counts
/// the base encoding four times and the witness data (marker, flag and
/// every input's stack) once. `script_sig_lens` and `witness_lens` are per
/// input; a witness length of 0 means an empty stack.
pub(crate) fn vsize(tx: &Tx, script_sig_lens: &[u64], witness_lens: &[u64]) -> u64 {
    let mut base: u64 = 4 + 4;
    base += compact_size_len(tx.inputs.len() as u64);
    for (i, input) in tx.inputs.iter().enumerate() {
        let s = script_sig_lens
            .get(i)
            .copied()
            .unwrap_or(input.script_sig.len() as u64);
        base += 36 + compact_size_len(s) + s + 4;
    }
    base += compact_size_len(tx.outputs.len() as u64);
    for output in &tx.outputs {
        let s = output.script_pubkey.len() as u64;
        base += 8 + compact_size_len(s) + s;
    }
    let mut weight = base * 4;
    if witness_lens.iter().any(|w| *w > 1) {
        weight += 2;
        for i in 0..tx.inputs.len() {
            weight += witness_lens.get(i).copied().filter(|w| *w > 0).unwrap_or(1);
        }
    }
    weight.div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_sizes_round_trip_and_must_be_minimal() {
        for n in [
            0u64,
            0xfc,
            0xfd,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
        ] {
            let mut buf = Vec::new();
            write_compact_size(&mut buf, n);
            assert_eq!(buf.len() as u64, compact_size_len(n));
            assert_eq!(Reader::new(&buf).compact_size(), Ok(n));
        }
        assert_eq!(
            Reader::new(&[0xfd, 0x10, 0x00]).compact_size(),
            Err(DecodeError::Invalid("non-minimal compact size"))
        );
        assert_eq!(
            Reader::new(&[0xfe, 0x01]).compact_size(),
            Err(DecodeError::Truncated)
        );
        // A count claims a million items with three bytes left.
        assert_eq!(
            Reader::new(&[0xfe, 0x40, 0x42, 0x0f, 0x00, 1, 2, 3]).count(1),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn transaction_round_trips_and_refuses_junk() {
        let tx = Tx {
            version: 2,
            inputs: vec![TxIn {
                prev_txid: [7; 32],
                vout: 1,
                script_sig: vec![],
                sequence: 0xffff_fffd,
            }],
            outputs: vec![TxOut {
                value: 1000,
                script_pubkey: vec![0x51, 0x02, 0x4e, 0x73],
            }],
            locktime: 0,
        };
        let mut buf = Vec::new();
        tx.encode_base(&mut buf, None);
        assert_eq!(Tx::decode(&buf, false), Ok(tx.clone()));
        assert_eq!(vsize(&tx, &[0], &[0]), buf.len() as u64);

        let mut trailing = buf.clone();
        trailing.push(0);
        assert!(matches!(
            Tx::decode(&trailing, false),
            Err(DecodeError::Invalid(_))
        ));
        assert_eq!(
            Tx::decode(&buf[..buf.len() - 1], false),
            Err(DecodeError::Truncated)
        );

        let segwit = tx.encode_final(&[&[]], &[&[1, 1, 0xaa]]);
        assert_eq!(Tx::decode(&segwit, true), Ok(tx.clone()));
        assert_eq!(
            Tx::decode(&segwit, false),
            Err(DecodeError::Invalid("witness serialization"))
        );

        let mut rich = tx;
        rich.outputs[0].value = MAX_MONEY + 1;
        let mut buf = Vec::new();
        rich.encode_base(&mut buf, None);
        assert!(matches!(
            Tx::decode(&buf, false),
            Err(DecodeError::Invalid(_))
        ));
    }
}
