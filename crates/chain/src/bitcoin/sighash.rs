//! BIP341 signature messages for Taproot key-path spends (ext_flag 0, no
//! annex), every sighash type.
//!
//! The hashes over all prevouts, amounts, scripts, sequences and outputs
//! are computed once per transaction ([`Precomputed`]), not once per input:
//! otherwise signing n inputs would hash O(n²) bytes.

use sha2::{Digest, Sha256};

use super::tx::{write_var_bytes, Tx, TxOut};

pub(crate) const SIGHASH_DEFAULT: u8 = 0x00;
const SIGHASH_NONE: u8 = 0x02;
const SIGHASH_SINGLE: u8 = 0x03;
const SIGHASH_ANYONECANPAY: u8 = 0x80;

/// The hash types BIP341 defines; any other is invalid for Taproot.
pub(crate) fn valid_taproot_type(t: u32) -> Option<u8> {
    match t {
        0x00..=0x03 | 0x81..=0x83 => u8::try_from(t).ok(),
        _ => None,
    }
}

/// BIP341's transaction-wide single SHA256s.
pub(crate) struct Precomputed {
    prevouts: [u8; 32],
    amounts: [u8; 32],
    script_pubkeys: [u8; 32],
    sequences: [u8; 32],
    outputs: [u8; 32],
    /// SHA256 state after SHA256("TapSighash") twice: the tagged-hash
    /// prefix, hashed once.
    tagged: Sha256,
}

impl Precomputed {
    /// `spent` is the output each input spends, in input order.
    pub(crate) fn new(tx: &Tx, spent: &[&TxOut]) -> Precomputed {
        let mut prevouts = Sha256::new();
        let mut sequences = Sha256::new();
        for input in &tx.inputs {
            prevouts.update(input.prev_txid);
            prevouts.update(input.vout.to_le_bytes());
            sequences.update(input.sequence.to_le_bytes());
        }
        let mut amounts = Sha256::new();
        let mut script_pubkeys = Sha256::new();
        let mut buf = Vec::new();
        for out in spent {
            amounts.update(out.value.to_le_bytes());
            buf.clear();
            write_var_bytes(&mut buf, &out.script_pubkey);
            script_pubkeys.update(&buf);
        }
        let mut outputs = Sha256::new();
        for out in &tx.outputs {
            buf.clear();
            out.encode(&mut buf);
            outputs.update(&buf);
        }
        let tag = Sha256::digest(b"TapSighash");
        let mut tagged = Sha256::new();
        tagged.update(tag);
        tagged.update(tag);
        Precomputed {
            prevouts: prevouts.finalize().into(),
            amounts: amounts.finalize().into(),
            script_pubkeys: script_pubkeys.finalize().into(),
            sequences: sequences.finalize().into(),
            outputs: outputs.finalize().into(),
            tagged,
        }
    }
}

/// Why no sighash can be made; the caller names the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SighashError {
    /// SIGHASH_SINGLE at an index with no output.
    SingleWithoutOutput,
    /// No such input, or no spent output for it.
    NoInput,
}

/// The BIP341 key-path sighash of input `index` with `hash_type` (one of
/// [`valid_taproot_type`]'s).
pub(crate) fn key_spend(
    tx: &Tx,
    spent: &[&TxOut],
    pre: &Precomputed,
    index: usize,
    hash_type: u8,
) -> Result<[u8; 32], SighashError> {
    let input = tx.inputs.get(index).ok_or(SighashError::NoInput)?;
    let anyone_can_pay = hash_type & SIGHASH_ANYONECANPAY != 0;
    let base = hash_type & 0x03;
    // DEFAULT (0x00) signs like ALL (0x01); only the hash_type byte differs.
    let outputs_all = !matches!(base, SIGHASH_NONE | SIGHASH_SINGLE);

    let mut h = pre.tagged.clone();
    h.update([0x00]); // epoch
    h.update([hash_type]);
    h.update(tx.version.to_le_bytes());
    h.update(tx.locktime.to_le_bytes());
    if !anyone_can_pay {
        h.update(pre.prevouts);
        h.update(pre.amounts);
        h.update(pre.script_pubkeys);
        h.update(pre.sequences);
    }
    if outputs_all {
        h.update(pre.outputs);
    }
    h.update([0x00]); // spend_type: key path (ext_flag 0), no annex
    if anyone_can_pay {
        let prev = spent.get(index).ok_or(SighashError::NoInput)?;
        let mut buf = Vec::with_capacity(36 + 8 + 1 + prev.script_pubkey.len() + 4);
        buf.extend_from_slice(&input.prev_txid);
        buf.extend_from_slice(&input.vout.to_le_bytes());
        prev.encode(&mut buf);
        buf.extend_from_slice(&input.sequence.to_le_bytes());
        h.update(&buf);
    } else {
        let index = u32::try_from(index).map_err(|_| SighashError::NoInput)?;
        h.update(index.to_le_bytes());
    }
    if base == SIGHASH_SINGLE {
        let out = tx
            .outputs
            .get(index)
            .ok_or(SighashError::SingleWithoutOutput)?;
        let mut buf = Vec::new();
        out.encode(&mut buf);
        h.update(Sha256::digest(&buf));
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    // BIP341's wallet test vectors, keyPathSpending (bip341_wallet_vectors.json
    // in Bitcoin Core): 9 inputs, 7 of them signed with every hash type.
    const RAW_UNSIGNED_TX: &str = "02000000097de20cbff686da83a54981d2b9bab3586f4ca7e48f57f5b55963115f3b334e9c010000000000000000d7b7cab57b1393ace2d064f4d4a2cb8af6def61273e127517d44759b6dafdd990000000000fffffffff8e1f583384333689228c5d28eac13366be082dc57441760d957275419a418420000000000fffffffff0689180aa63b30cb162a73c6d2a38b7eeda2a83ece74310fda0843ad604853b0100000000feffffffaa5202bdf6d8ccd2ee0f0202afbbb7461d9264a25e5bfd3c5a52ee1239e0ba6c0000000000feffffff956149bdc66faa968eb2be2d2faa29718acbfe3941215893a2a3446d32acd050000000000000000000e664b9773b88c09c32cb70a2a3e4da0ced63b7ba3b22f848531bbb1d5d5f4c94010000000000000000e9aa6b8e6c9de67619e6a3924ae25696bb7b694bb677a632a74ef7eadfd4eabf0000000000ffffffffa778eb6a263dc090464cd125c466b5a99667720b1c110468831d058aa1b82af10100000000ffffffff0200ca9a3b000000001976a91406afd46bcdfd22ef94ac122aa11f241244a37ecc88ac807840cb0000000020ac9a87f5594be208f8532db38cff670c450ed2fea8fcdefcc9a663f78bab962b0065cd1d";
    const UTXOS: [(&str, u64); 9] = [
        (
            "512053a1f6e454df1aa2776a2814a721372d6258050de330b3c6d10ee8f4e0dda343",
            420000000,
        ),
        (
            "5120147c9c57132f6e7ecddba9800bb0c4449251c92a1e60371ee77557b6620f3ea3",
            462000000,
        ),
        (
            "76a914751e76e8199196d454941c45d1b3a323f1433bd688ac",
            294000000,
        ),
        (
            "5120e4d810fd50586274face62b8a807eb9719cef49c04177cc6b76a9a4251d5450e",
            504000000,
        ),
        (
            "512091b64d5324723a985170e4dc5a0f84c041804f2cd12660fa5dec09fc21783605",
            630000000,
        ),
        ("00147dd65592d0ab2fe0d0257d571abf032cd9db93dc", 378000000),
        (
            "512075169f4001aa68f15bbed28b218df1d0a62cbbcf1188c6665110c293c907b831",
            672000000,
        ),
        (
            "5120712447206d7a5238acc7ff53fbe94a3b64539ad291c7cdbc490b7577e4b17df5",
            546000000,
        ),
        (
            "512077e30a5522dd9f894c3f8b8bd4c4b2cf82ca7da8a3ea6a239655c39c050ab220",
            588000000,
        ),
    ];
    const SIGHASHES: [(usize, u8, &str); 7] = [
        (
            0,
            3,
            "2514a6272f85cfa0f45eb907fcb0d121b808ed37c6ea160a5a9046ed5526d555",
        ),
        (
            1,
            131,
            "325a644af47e8a5a2591cda0ab0723978537318f10e6a63d4eed783b96a71a4d",
        ),
        (
            3,
            1,
            "bf013ea93474aa67815b1b6cc441d23b64fa310911d991e713cd34c7f5d46669",
        ),
        (
            4,
            0,
            "4f900a0bae3f1446fd48490c2958b5a023228f01661cda3496a11da502a7f7ef",
        ),
        (
            6,
            2,
            "15f25c298eb5cdc7eb1d638dd2d45c97c4c59dcaec6679cfc16ad84f30876b85",
        ),
        (
            7,
            130,
            "cd292de50313804dabe4685e83f923d2969577191a3e1d2882220dca88cbeb10",
        ),
        (
            8,
            129,
            "cccb739eca6c13a8a89e6e5cd317ffe55669bbda23f2fd37b0f18755e008edd2",
        ),
    ];

    fn vector() -> (Tx, Vec<TxOut>) {
        let tx = Tx::decode(&hex::decode(RAW_UNSIGNED_TX).unwrap(), false).unwrap();
        let spent = UTXOS
            .iter()
            .map(|(spk, value)| TxOut {
                value: *value,
                script_pubkey: hex::decode(spk).unwrap(),
            })
            .collect();
        (tx, spent)
    }

    #[test]
    fn bip341_key_path_vectors() {
        let (tx, spent) = vector();
        let spent: Vec<&TxOut> = spent.iter().collect();
        let pre = Precomputed::new(&tx, &spent);
        let hex32 = |s: &str| -> [u8; 32] { hex::decode(s).unwrap().try_into().unwrap() };
        // The intermediary hashes the vectors give.
        assert_eq!(
            pre.prevouts,
            hex32("e3b33bb4ef3a52ad1fffb555c0d82828eb22737036eaeb02a235d82b909c4c3f")
        );
        assert_eq!(
            pre.amounts,
            hex32("58a6964a4f5f8f0b642ded0a8a553be7622a719da71d1f5befcefcdee8e0fde6")
        );
        assert_eq!(
            pre.script_pubkeys,
            hex32("23ad0f61ad2bca5ba6a7693f50fce988e17c3780bf2b1e720cfbb38fbdd52e21")
        );
        assert_eq!(
            pre.sequences,
            hex32("18959c7221ab5ce9e26c3cd67b22c24f8baa54bac281d8e6b05e400e6c3a957e")
        );
        assert_eq!(
            pre.outputs,
            hex32("a2e6dab7c1f0dcd297c8d61647fd17d821541ea69c3cc37dcbad7f90d4eb4bc5")
        );
        for (index, hash_type, want) in SIGHASHES {
            assert_eq!(
                key_spend(&tx, &spent, &pre, index, hash_type),
                Ok(hex32(want)),
                "input {index}, hash type {hash_type:#x}"
            );
        }
    }

    #[test]
    fn single_needs_its_output() {
        let (tx, spent) = vector();
        let spent: Vec<&TxOut> = spent.iter().collect();
        let pre = Precomputed::new(&tx, &spent);
        // Two outputs: input 2 has none at its index.
        for t in [SIGHASH_SINGLE, SIGHASH_SINGLE | SIGHASH_ANYONECANPAY] {
            assert_eq!(
                key_spend(&tx, &spent, &pre, 2, t),
                Err(SighashError::SingleWithoutOutput)
            );
        }
        assert!(key_spend(&tx, &spent, &pre, 2, SIGHASH_NONE).is_ok());
        assert_eq!(
            key_spend(&tx, &spent, &pre, 9, SIGHASH_DEFAULT),
            Err(SighashError::NoInput)
        );
        assert_eq!(valid_taproot_type(0x04), None);
        assert_eq!(valid_taproot_type(0x80), None);
        assert_eq!(valid_taproot_type(0x183), None);
        assert_eq!(valid_taproot_type(0x83), Some(0x83));
    }
}
