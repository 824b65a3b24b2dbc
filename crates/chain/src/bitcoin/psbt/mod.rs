//! PSBT version 0 (BIP174): parsing and serializing. Key-path finalizing
//! and extracting the finished transaction are `finalize`.
//!
//! Every key-value pair is kept as it was read, in order, unknown ones
//! included: a PSBT goes from wallet to signer and back, and whatever this
//! module does not change must come back byte for byte. Only the fields a
//! signer relies on are decoded (and so checked): the unsigned tx, the
//! UTXOs, the sighash type and the final scripts.

use std::collections::HashSet;

use base64::Engine as _;

use super::tx::{self, check_witness, DecodeError, Reader, Tx, TxOut};
use super::PsbtError;

mod finalize;

/// The largest PSBT accepted: far above any PSBT a wallet builds, small
/// enough that parsing one costs nothing.
pub(crate) const MAX_PSBT_BYTES: usize = 1 << 20;

const MAGIC: &[u8; 5] = b"psbt\xff";

// Key types (BIP174, BIP371) this module reads or writes.
const GLOBAL_UNSIGNED_TX: u8 = 0x00;
const GLOBAL_VERSION: u8 = 0xfb;
const IN_NON_WITNESS_UTXO: u8 = 0x00;
const IN_WITNESS_UTXO: u8 = 0x01;
const IN_SIGHASH_TYPE: u8 = 0x03;
const IN_FINAL_SCRIPTSIG: u8 = 0x07;
const IN_FINAL_SCRIPTWITNESS: u8 = 0x08;
const IN_TAP_KEY_SIG: u8 = 0x13;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pair {
    /// Key type and key data, as read.
    key: Vec<u8>,
    value: Vec<u8>,
}

impl Pair {
    /// The pair whose key is exactly this one-byte type (no key data).
    fn is(&self, key_type: u8) -> bool {
        self.key.as_slice() == [key_type]
    }
}

/// The fields of an input map a signer relies on, decoded from its pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct InputFields {
    pub(crate) witness_utxo: Option<TxOut>,
    /// The spent output, taken from `non_witness_utxo` once its txid and
    /// the prevout's index were checked.
    pub(crate) non_witness_spent: Option<TxOut>,
    pub(crate) sighash_type: Option<u32>,
    pub(crate) final_script_sig: Option<Vec<u8>>,
    /// The serialized witness stack, as the PSBT carries it.
    pub(crate) final_script_witness: Option<Vec<u8>>,
}

impl InputFields {
    /// The output this input spends, if the PSBT says.
    pub(crate) fn spent(&self) -> Option<&TxOut> {
        self.witness_utxo
            .as_ref()
            .or(self.non_witness_spent.as_ref())
    }

    pub(crate) fn is_final(&self) -> bool {
        self.final_script_sig.is_some() || self.final_script_witness.is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Input {
    pairs: Vec<Pair>,
    fields: InputFields,
}

/// A parsed PSBT (version 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Psbt {
    global: Vec<Pair>,
    inputs: Vec<Input>,
    outputs: Vec<Vec<Pair>>,
    tx: Tx,
}

impl Psbt {
    /// Parses a binary PSBT.
    pub fn from_bytes(b: &[u8]) -> Result<Psbt, PsbtError> {
        if b.len() > MAX_PSBT_BYTES {
            return Err(PsbtError::TooLarge {
                bytes: b.len(),
                max: MAX_PSBT_BYTES,
            });
        }
        let rest = b.strip_prefix(MAGIC).ok_or(PsbtError::BadMagic)?;
        let mut r = Reader::new(rest);

        let global = read_map(&mut r, "global")?.ok_or(PsbtError::MissingUnsignedTx)?;
        // The version comes first: a v2 PSBT has no unsigned tx at all.
        if let Some(p) = global
            .iter()
            .find(|p| p.key.first() == Some(&GLOBAL_VERSION))
        {
            let v: [u8; 4] = p
                .value
                .as_slice()
                .try_into()
                .ok()
                .filter(|_| p.is(GLOBAL_VERSION))
                .ok_or_else(|| bad("global", "version"))?;
            let v = u32::from_le_bytes(v);
            if v != 0 {
                return Err(PsbtError::UnsupportedVersion(v));
            }
        }
        let unsigned = global
            .iter()
            .find(|p| p.key.first() == Some(&GLOBAL_UNSIGNED_TX))
            .ok_or(PsbtError::MissingUnsignedTx)?;
        if !unsigned.is(GLOBAL_UNSIGNED_TX) {
            return Err(bad("global", "unsigned_tx"));
        }
        let tx = Tx::decode(&unsigned.value, false).map_err(|e| match e {
            DecodeError::Truncated => PsbtError::BadUnsignedTx("truncated".into()),
            DecodeError::Invalid("witness serialization") => PsbtError::UnsignedTxHasScripts,
            DecodeError::Invalid(why) => PsbtError::BadUnsignedTx(why.into()),
        })?;
        if tx.inputs.iter().any(|i| !i.script_sig.is_empty()) {
            return Err(PsbtError::UnsignedTxHasScripts);
        }

        let mut inputs = Vec::with_capacity(tx.inputs.len().min(r.remaining()));
        for (i, txin) in tx.inputs.iter().enumerate() {
            let name = format!("input {i}");
            let pairs = read_map(&mut r, &name)?.ok_or(PsbtError::CountMismatch {
                maps: i,
                tx: tx.inputs.len(),
                what: "inputs",
            })?;
            let fields = decode_input(&pairs, i, &txin.prev_txid, txin.vout)?;
            inputs.push(Input { pairs, fields });
        }
        let mut outputs = Vec::with_capacity(tx.outputs.len().min(r.remaining()));
        for i in 0..tx.outputs.len() {
            let pairs =
                read_map(&mut r, &format!("output {i}"))?.ok_or(PsbtError::CountMismatch {
                    maps: i,
                    tx: tx.outputs.len(),
                    what: "outputs",
                })?;
            outputs.push(pairs);
        }
        if !r.is_empty() {
            // More maps than outputs: count them to say how many.
            let mut maps = tx.outputs.len();
            while read_map(&mut r, "output")?.is_some() {
                maps += 1;
            }
            return Err(PsbtError::CountMismatch {
                maps,
                tx: tx.outputs.len(),
                what: "outputs",
            });
        }
        Ok(Psbt {
            global,
            inputs,
            outputs,
            tx,
        })
    }

    /// Parses a base64 PSBT (the form `bitcoin-cli` and most wallets use),
    /// ignoring ASCII whitespace around it.
    pub fn from_base64(s: &str) -> Result<Psbt, PsbtError> {
        let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
        // Refused before decoding, so a huge string is never decoded.
        let decoded_len = s.len() / 4 * 3;
        if decoded_len > MAX_PSBT_BYTES + 3 {
            return Err(PsbtError::TooLarge {
                bytes: decoded_len,
                max: MAX_PSBT_BYTES,
            });
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|_| PsbtError::NotBase64)?;
        Psbt::from_bytes(&bytes)
    }

    /// The binary PSBT: every pair as read (or as finalizing left it).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        write_map(&mut out, &self.global);
        for input in &self.inputs {
            write_map(&mut out, &input.pairs);
        }
        for output in &self.outputs {
            write_map(&mut out, output);
        }
        out
    }

    /// [`Psbt::to_bytes`] in base64.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.to_bytes())
    }

    /// How many inputs the transaction has.
    pub fn input_count(&self) -> usize {
        self.inputs.len()
    }

    /// The unsigned transaction's txid, hex in display (reversed) order.
    /// Signing does not change it: Taproot key-path spends are segwit.
    pub fn txid(&self) -> String {
        tx::txid_hex(&self.tx.txid())
    }

    pub(crate) fn unsigned_tx(&self) -> &Tx {
        &self.tx
    }

    pub(crate) fn input_fields(&self) -> impl ExactSizeIterator<Item = &InputFields> {
        self.inputs.iter().map(|i| &i.fields)
    }
}

fn bad(map: &str, field: &'static str) -> PsbtError {
    PsbtError::BadField {
        map: map.to_string(),
        field,
    }
}

/// One key-value map up to its separator; `None` when the bytes end exactly
/// where the map would start.
fn read_map(r: &mut Reader<'_>, name: &str) -> Result<Option<Vec<Pair>>, PsbtError> {
    if r.is_empty() {
        return Ok(None);
    }
    let framing = |e: DecodeError| match e {
        DecodeError::Truncated => PsbtError::Truncated,
        DecodeError::Invalid(_) => bad(name, "compact size"),
    };
    let mut pairs = Vec::new();
    let mut keys = HashSet::new();
    loop {
        let key = r.var_bytes().map_err(framing)?;
        if key.is_empty() {
            return Ok(Some(pairs));
        }
        let value = r.var_bytes().map_err(framing)?;
        if !keys.insert(key) {
            return Err(PsbtError::DuplicateKey {
                map: name.to_string(),
                key: hex::encode(key),
            });
        }
        pairs.push(Pair {
            key: key.to_vec(),
            value: value.to_vec(),
        });
    }
}

fn write_map(out: &mut Vec<u8>, pairs: &[Pair]) {
    for p in pairs {
        tx::write_var_bytes(out, &p.key);
        tx::write_var_bytes(out, &p.value);
    }
    out.push(0x00);
}

/// Decodes (and so checks) the fields of input `index`, which spends
/// output `vout` of `prev_txid`.
fn decode_input(
    pairs: &[Pair],
    index: usize,
    prev_txid: &[u8; 32],
    vout: u32,
) -> Result<InputFields, PsbtError> {
    let name = format!("input {index}");
    let mut f = InputFields::default();
    for p in pairs {
        let Some(&key_type) = p.key.first() else {
            continue;
        };
        let field = match key_type {
            IN_NON_WITNESS_UTXO => "non_witness_utxo",
            IN_WITNESS_UTXO => "witness_utxo",
            IN_SIGHASH_TYPE => "sighash_type",
            IN_FINAL_SCRIPTSIG => "final_scriptsig",
            IN_FINAL_SCRIPTWITNESS => "final_scriptwitness",
            IN_TAP_KEY_SIG => "tap_key_sig",
            _ => continue,
        };
        // None of these has key data.
        if p.key.len() != 1 {
            return Err(bad(&name, field));
        }
        match key_type {
            IN_NON_WITNESS_UTXO => {
                let prev = Tx::decode(&p.value, true).map_err(|_| bad(&name, field))?;
                if prev.txid() != *prev_txid {
                    return Err(PsbtError::UtxoMismatch { input: index });
                }
                let spent = usize::try_from(vout)
                    .ok()
                    .and_then(|v| prev.outputs.get(v))
                    .ok_or(PsbtError::UtxoMismatch { input: index })?;
                f.non_witness_spent = Some(spent.clone());
            }
            IN_WITNESS_UTXO => {
                let mut r = Reader::new(&p.value);
                let out = TxOut::decode(&mut r).map_err(|_| bad(&name, field))?;
                if !r.is_empty() {
                    return Err(bad(&name, field));
                }
                f.witness_utxo = Some(out);
            }
            IN_SIGHASH_TYPE => {
                let v: [u8; 4] = p
                    .value
                    .as_slice()
                    .try_into()
                    .map_err(|_| bad(&name, field))?;
                f.sighash_type = Some(u32::from_le_bytes(v));
            }
            IN_FINAL_SCRIPTSIG => f.final_script_sig = Some(p.value.clone()),
            IN_FINAL_SCRIPTWITNESS => {
                check_witness(&p.value).map_err(|_| bad(&name, field))?;
                f.final_script_witness = Some(p.value.clone());
            }
            _ => {
                // PSBT_IN_TAP_KEY_SIG: a BIP340 signature, with or without
                // its sighash byte.
                if !matches!(p.value.len(), 64 | 65) {
                    return Err(bad(&name, field));
                }
            }
        }
    }
    if let (Some(w), Some(n)) = (&f.witness_utxo, &f.non_witness_spent) {
        if w != n {
            return Err(PsbtError::UtxoMismatch { input: index });
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::super::tx::{TxIn, TxOut};
    use super::*;

    pub(super) fn pair(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
        tx::write_var_bytes(out, key);
        tx::write_var_bytes(out, value);
    }

    pub(super) fn unsigned_tx(n_in: usize, n_out: usize) -> Tx {
        Tx {
            version: 2,
            inputs: (0..n_in)
                .map(|i| TxIn {
                    prev_txid: [i as u8 + 1; 32],
                    vout: 0,
                    script_sig: vec![],
                    sequence: 0xffff_fffd,
                })
                .collect(),
            outputs: (0..n_out)
                .map(|_| TxOut {
                    value: 5_000,
                    script_pubkey: vec![0x51, 0x20].into_iter().chain([9; 32]).collect(),
                })
                .collect(),
            locktime: 0,
        }
    }

    /// magic, a global map with `tx` (plus `extra_global` pairs), then one
    /// map per input and output from `maps` (each a list of pairs).
    pub(super) fn build(
        tx: &Tx,
        extra_global: &[(&[u8], &[u8])],
        maps: &[Vec<(Vec<u8>, Vec<u8>)>],
    ) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let mut txb = Vec::new();
        tx.encode_base(&mut txb, None);
        pair(&mut out, &[0x00], &txb);
        for (k, v) in extra_global {
            pair(&mut out, k, v);
        }
        out.push(0);
        for m in maps {
            for (k, v) in m {
                pair(&mut out, k, v);
            }
            out.push(0);
        }
        out
    }

    pub(super) fn witness_utxo(value: u64) -> (Vec<u8>, Vec<u8>) {
        let mut v = Vec::new();
        TxOut {
            value,
            script_pubkey: vec![0x00, 0x14].into_iter().chain([3; 20]).collect(),
        }
        .encode(&mut v);
        (vec![IN_WITNESS_UTXO], v)
    }

    #[test]
    fn round_trips_unknown_and_proprietary_pairs() {
        let tx = unsigned_tx(1, 1);
        let maps = vec![
            vec![
                witness_utxo(10_000),
                (vec![0xfc, 3, b'f', b'o', b'o', 0], vec![1, 2, 3]),
                (vec![0x42, 0xaa], vec![]),
            ],
            vec![(vec![0x99], vec![7; 300])],
        ];
        let bytes = build(
            &tx,
            &[(&[0x01, 0xee], &[0x55]), (&[0xfb], &[0, 0, 0, 0])],
            &maps,
        );
        let psbt = Psbt::from_bytes(&bytes).unwrap();
        assert_eq!(psbt.to_bytes(), bytes);
        assert_eq!(psbt.input_count(), 1);
        let b64 = format!("\n  {}\r\n", psbt.to_base64());
        assert_eq!(Psbt::from_base64(&b64).unwrap(), psbt);
    }

    #[test]
    fn framing_errors_are_named() {
        let tx = unsigned_tx(1, 1);
        let good = build(&tx, &[], &[vec![witness_utxo(1)], vec![]]);
        assert!(Psbt::from_bytes(&good).is_ok());

        assert_eq!(Psbt::from_bytes(b"psbu\xff\x00"), Err(PsbtError::BadMagic));
        assert_eq!(Psbt::from_bytes(b""), Err(PsbtError::BadMagic));
        // Cut inside the last input's value, at every byte.
        for cut in MAGIC.len() + 1..good.len() - 2 {
            let e = Psbt::from_bytes(&good[..cut]).unwrap_err();
            assert!(
                matches!(
                    e,
                    PsbtError::Truncated
                        | PsbtError::CountMismatch { .. }
                        | PsbtError::MissingUnsignedTx
                ),
                "cut at {cut}: {e:?}"
            );
        }
        // Without the output map: the bytes end where it should start.
        assert_eq!(
            Psbt::from_bytes(&good[..good.len() - 1]),
            Err(PsbtError::CountMismatch {
                maps: 0,
                tx: 1,
                what: "outputs"
            })
        );
        // Two more maps than outputs.
        let mut extra = good.clone();
        extra.extend_from_slice(&[0, 0]);
        assert_eq!(
            Psbt::from_bytes(&extra),
            Err(PsbtError::CountMismatch {
                maps: 3,
                tx: 1,
                what: "outputs"
            })
        );
        // A key length claiming far more than is left.
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x7f, 0x00]);
        assert_eq!(Psbt::from_bytes(&huge), Err(PsbtError::Truncated));
        // Non-minimal length.
        let mut nonmin = MAGIC.to_vec();
        nonmin.extend_from_slice(&[0xfd, 0x01, 0x00, 0x00, 0x00]);
        assert!(matches!(
            Psbt::from_bytes(&nonmin),
            Err(PsbtError::BadField {
                field: "compact size",
                ..
            })
        ));

        let big = vec![0u8; MAX_PSBT_BYTES + 1];
        assert_eq!(
            Psbt::from_bytes(&big),
            Err(PsbtError::TooLarge {
                bytes: MAX_PSBT_BYTES + 1,
                max: MAX_PSBT_BYTES
            })
        );
        let big64 = "A".repeat(MAX_PSBT_BYTES / 3 * 4 + 100);
        assert!(matches!(
            Psbt::from_base64(&big64),
            Err(PsbtError::TooLarge { .. })
        ));
        assert_eq!(Psbt::from_base64("cHNidP8=!"), Err(PsbtError::NotBase64));
        assert_eq!(Psbt::from_base64("cHNidP8"), Err(PsbtError::NotBase64));
    }

    #[test]
    fn duplicate_keys_are_refused_in_every_map() {
        let tx = unsigned_tx(1, 1);
        let dup_in = build(&tx, &[], &[vec![witness_utxo(1), witness_utxo(2)], vec![]]);
        assert_eq!(
            Psbt::from_bytes(&dup_in),
            Err(PsbtError::DuplicateKey {
                map: "input 0".into(),
                key: "01".into()
            })
        );
        let dup_global = build(&tx, &[(&[0x00], &[1])], &[vec![], vec![]]);
        assert_eq!(
            Psbt::from_bytes(&dup_global),
            Err(PsbtError::DuplicateKey {
                map: "global".into(),
                key: "00".into()
            })
        );
        let k = vec![0xfc, 0x01];
        let dup_out = build(&tx, &[], &[vec![], vec![(k.clone(), vec![]), (k, vec![1])]]);
        assert_eq!(
            Psbt::from_bytes(&dup_out),
            Err(PsbtError::DuplicateKey {
                map: "output 0".into(),
                key: "fc01".into()
            })
        );
    }

    #[test]
    fn global_map_is_checked() {
        let tx = unsigned_tx(1, 1);
        let v2 = build(&tx, &[(&[0xfb], &[2, 0, 0, 0])], &[vec![], vec![]]);
        assert_eq!(Psbt::from_bytes(&v2), Err(PsbtError::UnsupportedVersion(2)));
        let bad_version = build(&tx, &[(&[0xfb], &[0, 0])], &[vec![], vec![]]);
        assert!(matches!(
            Psbt::from_bytes(&bad_version),
            Err(PsbtError::BadField {
                field: "version",
                ..
            })
        ));

        let mut no_tx = MAGIC.to_vec();
        pair(&mut no_tx, &[0x01, 0x02], &[]);
        no_tx.push(0);
        assert_eq!(Psbt::from_bytes(&no_tx), Err(PsbtError::MissingUnsignedTx));

        let mut scripted = unsigned_tx(1, 1);
        scripted.inputs[0].script_sig = vec![0x51];
        assert_eq!(
            Psbt::from_bytes(&build(&scripted, &[], &[vec![], vec![]])),
            Err(PsbtError::UnsignedTxHasScripts)
        );
        // The unsigned tx in witness serialization.
        let mut out = MAGIC.to_vec();
        pair(&mut out, &[0x00], &tx.encode_final(&[&[]], &[&[1, 1, 0]]));
        out.extend_from_slice(&[0, 0, 0]);
        assert_eq!(Psbt::from_bytes(&out), Err(PsbtError::UnsignedTxHasScripts));

        let mut junk = MAGIC.to_vec();
        pair(&mut junk, &[0x00], &[2, 0, 0]);
        junk.push(0);
        assert!(matches!(
            Psbt::from_bytes(&junk),
            Err(PsbtError::BadUnsignedTx(_))
        ));
    }

    #[test]
    fn input_fields_are_checked() {
        let tx = unsigned_tx(1, 1);
        let with = |p: (Vec<u8>, Vec<u8>)| Psbt::from_bytes(&build(&tx, &[], &[vec![p], vec![]]));
        assert!(matches!(
            with((vec![IN_WITNESS_UTXO], vec![1, 2, 3])),
            Err(PsbtError::BadField {
                field: "witness_utxo",
                ..
            })
        ));
        assert!(matches!(
            with((vec![IN_WITNESS_UTXO, 0], witness_utxo(5).1)),
            Err(PsbtError::BadField {
                field: "witness_utxo",
                ..
            })
        ));
        assert!(matches!(
            with((vec![IN_SIGHASH_TYPE], vec![1])),
            Err(PsbtError::BadField {
                field: "sighash_type",
                ..
            })
        ));
        assert!(matches!(
            with((vec![IN_FINAL_SCRIPTWITNESS], vec![2, 1, 0])),
            Err(PsbtError::BadField {
                field: "final_scriptwitness",
                ..
            })
        ));
        assert!(matches!(
            with((vec![IN_TAP_KEY_SIG], vec![0; 63])),
            Err(PsbtError::BadField {
                field: "tap_key_sig",
                ..
            })
        ));

        // A non_witness_utxo whose txid is not the prevout's, then one that
        // is but lacks the spent index.
        let mut prev = unsigned_tx(1, 1);
        let mut prev_bytes = Vec::new();
        prev.encode_base(&mut prev_bytes, None);
        assert_eq!(
            with((vec![IN_NON_WITNESS_UTXO], prev_bytes)),
            Err(PsbtError::UtxoMismatch { input: 0 })
        );
        prev.locktime = 7;
        let mut spends = unsigned_tx(1, 1);
        spends.inputs[0].prev_txid = prev.txid();
        spends.inputs[0].vout = 1;
        let mut prev_bytes = Vec::new();
        prev.encode_base(&mut prev_bytes, None);
        let nwu = (vec![IN_NON_WITNESS_UTXO], prev_bytes);
        assert_eq!(
            Psbt::from_bytes(&build(&spends, &[], &[vec![nwu.clone()], vec![]])),
            Err(PsbtError::UtxoMismatch { input: 0 })
        );
        spends.inputs[0].vout = 0;
        let ok = Psbt::from_bytes(&build(&spends, &[], &[vec![nwu.clone()], vec![]])).unwrap();
        assert_eq!(ok.inputs[0].fields.spent(), prev.outputs.first());
        // A witness_utxo that disagrees with it.
        assert_eq!(
            Psbt::from_bytes(&build(&spends, &[], &[vec![nwu, witness_utxo(5)], vec![]])),
            Err(PsbtError::UtxoMismatch { input: 0 })
        );
    }
}
