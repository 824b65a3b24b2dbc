//! Key-path finalizing (BIP174, BIP371) and extracting the finished
//! transaction: what turns the group's signatures into the transaction to
//! broadcast, leaving every pair it does not own as it was.

use std::collections::HashSet;

use super::{tx, Pair, Psbt, IN_FINAL_SCRIPTSIG, IN_FINAL_SCRIPTWITNESS};
use crate::bitcoin::PsbtError;

/// Input key types a finalizer clears (BIP174 "all other data except the
/// UTXO and unknown fields"): partial sigs, sighash type, redeem/witness
/// scripts, BIP32 paths (0x02..=0x06), proof-of-reserves and hash
/// preimages (0x09..=0x0d), the PSBTv2 input fields (0x0e..=0x12), the
/// Taproot fields of BIP371 (0x13..=0x18) and MuSig2's of BIP373
/// (0x19..=0x1c). Proprietary (0xfc) and unassigned types are kept.
fn cleared_on_finalize(key_type: u8) -> bool {
    matches!(key_type, 0x02..=0x06 | 0x09..=0x1c)
}

impl Psbt {
    /// Sets PSBT_IN_TAP_KEY_SIG for each `(input index, signature)` and
    /// finalizes those inputs (BIP174, BIP371): PSBT_IN_FINAL_SCRIPTWITNESS
    /// becomes the one-item stack `[signature]`, and every other field of
    /// the input is cleared except the UTXOs, the final fields, proprietary
    /// and unknown ones. (The key signature is itself one of the cleared
    /// fields, so it goes straight into the witness.)
    ///
    /// A signature is 64 bytes for SIGHASH_DEFAULT, else 65 ending in the
    /// input's PSBT_IN_SIGHASH_TYPE (BIP341: the sighash commits to that
    /// byte, so any other length or type byte can't verify). Nothing is
    /// changed unless every signature fits its input.
    pub fn finalize_key_path(&mut self, sigs: &[(usize, Vec<u8>)]) -> Result<(), PsbtError> {
        let mut seen = HashSet::new();
        for (index, sig) in sigs {
            let input = self
                .inputs
                .get(*index)
                .ok_or(PsbtError::BadSignature { input: *index })?;
            let fits = match (input.fields.sighash_type, sig.len()) {
                (None | Some(0), 64) => true,
                (Some(t), 65) => t != 0 && sig.last().map(|b| u32::from(*b)) == Some(t),
                _ => false,
            };
            if !fits || !seen.insert(*index) {
                return Err(PsbtError::BadSignature { input: *index });
            }
        }
        for (index, sig) in sigs {
            let Some(input) = self.inputs.get_mut(*index) else {
                continue;
            };
            // The old final fields go too: a key-path spend has an empty
            // scriptSig and this witness alone.
            input.pairs.retain(|p| {
                p.key.first().is_none_or(|&t| {
                    !cleared_on_finalize(t)
                        && t != IN_FINAL_SCRIPTSIG
                        && t != IN_FINAL_SCRIPTWITNESS
                })
            });
            let mut witness = Vec::with_capacity(sig.len() + 2);
            tx::write_compact_size(&mut witness, 1);
            tx::write_var_bytes(&mut witness, sig);
            // In key order, where rust-bitcoin and Core would put it.
            let at = input
                .pairs
                .iter()
                .position(|p| p.key.as_slice() > [IN_FINAL_SCRIPTWITNESS].as_slice())
                .unwrap_or(input.pairs.len());
            input.pairs.insert(
                at,
                Pair {
                    key: vec![IN_FINAL_SCRIPTWITNESS],
                    value: witness.clone(),
                },
            );
            input.fields.sighash_type = None;
            input.fields.final_script_sig = None;
            input.fields.final_script_witness = Some(witness);
        }
        Ok(())
    }

    /// The finished transaction's network serialization (with witnesses),
    /// once every input has a final scriptSig or witness.
    pub fn extract_tx(&self) -> Result<Vec<u8>, PsbtError> {
        let not_final: Vec<usize> = (0..self.inputs.len())
            .filter(|i| !self.inputs.get(*i).is_some_and(|x| x.fields.is_final()))
            .collect();
        if !not_final.is_empty() {
            return Err(PsbtError::NotFinal { inputs: not_final });
        }
        let script_sigs: Vec<&[u8]> = self
            .inputs
            .iter()
            .map(|i| i.fields.final_script_sig.as_deref().unwrap_or_default())
            .collect();
        let witnesses: Vec<&[u8]> = self
            .inputs
            .iter()
            .map(|i| i.fields.final_script_witness.as_deref().unwrap_or_default())
            .collect();
        Ok(self.tx.encode_final(&script_sigs, &witnesses))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{build, unsigned_tx, witness_utxo};
    use super::super::IN_SIGHASH_TYPE;
    use super::*;
    use crate::bitcoin::tx::Tx;

    #[test]
    fn finalize_keeps_utxo_and_unknown_clears_the_rest() {
        let tx = unsigned_tx(2, 1);
        let maps = vec![
            vec![
                witness_utxo(10_000),
                (vec![IN_SIGHASH_TYPE], vec![0x81, 0, 0, 0]),
                (vec![0x16, 1, 2], vec![3]),
                (vec![0x17], vec![4; 32]),
                (vec![0x42], vec![5]),
                (vec![0xfc, 0], vec![6]),
            ],
            vec![witness_utxo(20_000)],
            vec![(vec![0x05, 1], vec![2])],
        ];
        let mut psbt = Psbt::from_bytes(&build(&tx, &[], &maps)).unwrap();
        assert_eq!(
            psbt.extract_tx(),
            Err(PsbtError::NotFinal { inputs: vec![0, 1] })
        );

        // Length must match the sighash type; nothing changes on error.
        let before = psbt.clone();
        for sigs in [
            vec![(0, vec![1; 64])],
            vec![(0, vec![1; 65])],
            vec![(1, vec![1; 65])],
            vec![(2, vec![1; 64])],
            vec![(1, vec![1; 64]), (1, vec![2; 64])],
            vec![(1, vec![1; 64]), (0, vec![0x81; 66])],
        ] {
            let i = sigs.last().unwrap().0;
            assert_eq!(
                psbt.finalize_key_path(&sigs),
                Err(PsbtError::BadSignature { input: i })
            );
            assert_eq!(psbt, before);
        }

        let mut sig0 = vec![0xab; 64];
        sig0.push(0x81);
        psbt.finalize_key_path(&[(0, sig0.clone()), (1, vec![0xcd; 64])])
            .unwrap();
        let keys: Vec<&[u8]> = psbt.inputs[0]
            .pairs
            .iter()
            .map(|p| p.key.as_slice())
            .collect();
        assert_eq!(keys, [&[0x01][..], &[0x08], &[0x42], &[0xfc, 0]]);
        let mut witness = vec![1, 65];
        witness.extend_from_slice(&sig0);
        assert_eq!(psbt.inputs[0].pairs[1].value, witness);
        // Output maps are untouched; re-parsing gives the same PSBT.
        assert_eq!(psbt.outputs, before.outputs);
        assert_eq!(Psbt::from_bytes(&psbt.to_bytes()).unwrap(), psbt);

        let raw = psbt.extract_tx().unwrap();
        let decoded = Tx::decode(&raw, true).unwrap();
        assert_eq!(decoded, tx);
        assert_eq!(psbt.txid(), tx::txid_hex(&tx.txid()));
    }
}
