//! What a co-signer derives from a PSBT before signing: which inputs are
//! the wallet's, their sighashes, and the [`Review`] a person approves
//! (amounts, addresses, change, fee, warnings under a [`Policy`]).
//!
//! Nothing here trusts the PSBT's creator: "ours" and "change" are decided
//! by comparing scripts with the wallet's own output key, and amounts come
//! from the spent outputs the PSBT must carry (and that the Taproot sighash
//! commits to, so a lie about them makes the signature invalid).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::psbt::InputFields;
use super::sighash::{self, Precomputed, SighashError};
use super::tx::{self, TxOut, MAX_MONEY};
use super::{Network, Psbt, PsbtError};

/// The fee a signer accepts without a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Largest fee, in hundredths of a percent of what is sent (of all
    /// outputs when nothing leaves the wallet), before [`Warning::HighFee`].
    pub max_fee_basis_points: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_fee_basis_points: 500,
        }
    }
}

/// One input as the signer sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputReview {
    pub index: usize,
    /// `txid:vout` of the spent output.
    pub prevout: String,
    /// Satoshis.
    pub amount: u64,
    /// The spent output's address, when its script has one.
    pub address: Option<String>,
    /// Spends the wallet's own P2TR output.
    pub ours: bool,
    /// The Taproot hash type this wallet signs it with (0 = DEFAULT). For
    /// inputs it does not sign, the PSBT's requested type if it fits a
    /// byte, else 0.
    pub sighash_type: u8,
}

/// One output as the signer sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutputReview {
    pub index: usize,
    /// Satoshis.
    pub amount: u64,
    pub address: Option<String>,
    pub script_hex: String,
    /// Pays the wallet's own P2TR script.
    pub change: bool,
}

/// Something a person should look at before approving.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "warning", rename_all = "snake_case")]
pub enum Warning {
    /// The fee is above the policy's share of what is sent.
    HighFee { fee: u64, limit: u64 },
    /// An input of ours signs with a type other than SIGHASH_DEFAULT, so
    /// the signature covers less (or other) than the whole transaction.
    UnusualSighash { input: usize, sighash_type: u8 },
    /// The locktime is a timestamp and is enforced (some input's sequence
    /// is below 0xffffffff): the transaction can't be mined before it.
    /// Block heights are not warned about: wallets set the current height
    /// on nearly every transaction (anti fee sniping), and the signer does
    /// not know the chain tip to tell a far one.
    TimeLocked { locktime: u32 },
    /// Another party's input is not signed yet: its witness is counted as
    /// empty, so vsize is a lower bound and the real fee rate is lower
    /// than shown.
    ForeignInputNotFinal { input: usize },
    /// Inputs this wallet does not sign (reported, left untouched).
    ForeignInputs { inputs: Vec<usize> },
    /// No address: OP_RETURN or a non-standard script.
    UnknownOutputScript { output: usize },
    /// Ours but already finalized: not signed again.
    AlreadyFinal { input: usize },
}

/// Everything shown to the person approving a signature.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Review {
    pub txid: String,
    pub version: i32,
    pub locktime: u32,
    pub inputs: Vec<InputReview>,
    pub outputs: Vec<OutputReview>,
    pub total_in: u64,
    pub total_out: u64,
    pub fee: u64,
    /// Sum of the outputs that are not change.
    pub sent: u64,
    /// Of the finished transaction: this wallet's inputs with their
    /// key-path witness (64 bytes, 65 with a sighash type byte), other
    /// inputs with their final fields, or empty if they have none.
    pub vsize: u64,
    /// sat/vB × 1000, rounded down.
    pub fee_rate_milli: u64,
    pub warnings: Vec<Warning>,
}

/// One sighash the group must sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToSign {
    pub input: usize,
    /// BIP341 key-path sighash: the 32-byte message of the Schnorr
    /// signature.
    pub sighash: [u8; 32],
    /// 0 (DEFAULT: a 64-byte signature), else the byte appended to it.
    pub sighash_type: u8,
}

/// What [`plan`] found: the review, and the sighashes to sign once it is
/// approved.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub review: Review,
    pub to_sign: Vec<ToSign>,
}

/// Everything a co-signer derives itself from the PSBT: which inputs pay
/// `output_key` (the wallet's x-only Taproot output key Q, script
/// `OP_1 <32 bytes>`), each one's BIP341 key-path sighash (SIGHASH_DEFAULT
/// unless its PSBT_IN_SIGHASH_TYPE says otherwise), and the review.
///
/// Every input's spent output must be known, ours or not, since the
/// Taproot sighash commits to all of them: else
/// [`PsbtError::MissingUtxo`] for the first one missing. Inputs of ours
/// that are already final are reported ([`Warning::AlreadyFinal`]) and not
/// signed again; [`PsbtError::NothingToSign`] when no input is ours.
pub fn plan(
    psbt: &Psbt,
    output_key: &[u8; 32],
    network: Network,
    policy: &Policy,
) -> Result<Plan, PsbtError> {
    let tx = psbt.unsigned_tx();
    let fields: Vec<&InputFields> = psbt.input_fields().collect();
    let spent = fields
        .iter()
        .enumerate()
        .map(|(i, f)| f.spent().ok_or(PsbtError::MissingUtxo { input: i }))
        .collect::<Result<Vec<&TxOut>, _>>()?;

    let mut ours_script = vec![0x51, 0x20];
    ours_script.extend_from_slice(output_key);

    let mut inputs = Vec::with_capacity(spent.len());
    let mut signing: Vec<(usize, u8)> = Vec::new();
    let mut warnings = Vec::new();
    let mut foreign = Vec::new();
    let mut script_sig_lens = Vec::with_capacity(spent.len());
    let mut witness_lens = Vec::with_capacity(spent.len());
    let mut total_in: u64 = 0;
    for (i, ((txin, f), out)) in tx.inputs.iter().zip(&fields).zip(&spent).enumerate() {
        let ours = out.script_pubkey == ours_script;
        let requested = f.sighash_type.unwrap_or(0);
        let mut sighash_type = u8::try_from(requested).unwrap_or(0);
        let final_lens = (
            f.final_script_sig.as_ref().map_or(0, |s| s.len() as u64),
            f.final_script_witness
                .as_ref()
                .map_or(0, |w| w.len() as u64),
        );
        let (script_sig_len, witness_len) = if ours && !f.is_final() {
            sighash_type =
                sighash::valid_taproot_type(requested).ok_or(PsbtError::UnknownSighash {
                    input: i,
                    value: requested,
                })?;
            signing.push((i, sighash_type));
            if sighash_type != sighash::SIGHASH_DEFAULT {
                warnings.push(Warning::UnusualSighash {
                    input: i,
                    sighash_type,
                });
            }
            // Stack count, signature length, signature (+ type byte).
            let sig = if sighash_type == sighash::SIGHASH_DEFAULT {
                64
            } else {
                65
            };
            (0, 2 + sig)
        } else {
            if ours {
                warnings.push(Warning::AlreadyFinal { input: i });
            } else {
                foreign.push(i);
                if !f.is_final() {
                    warnings.push(Warning::ForeignInputNotFinal { input: i });
                }
            }
            final_lens
        };
        script_sig_lens.push(script_sig_len);
        witness_lens.push(witness_len);
        // Each amount is at most 21M BTC; a PSBT whose inputs add up to
        // more is lying about them.
        total_in = total_in
            .checked_add(out.value)
            .filter(|t| *t <= MAX_MONEY)
            .ok_or(PsbtError::BadField {
                map: format!("input {i}"),
                field: "amount",
            })?;
        inputs.push(InputReview {
            index: i,
            prevout: format!("{}:{}", tx::txid_hex(&txin.prev_txid), txin.vout),
            amount: out.value,
            address: mpc_address::script_address(&out.script_pubkey, network),
            ours,
            sighash_type,
        });
    }
    if !inputs.iter().any(|i| i.ours) {
        return Err(PsbtError::NothingToSign);
    }
    if !foreign.is_empty() {
        warnings.push(Warning::ForeignInputs { inputs: foreign });
    }

    let pre = Precomputed::new(tx, &spent);
    let to_sign = signing
        .into_iter()
        .map(|(input, sighash_type)| {
            let sighash =
                sighash::key_spend(tx, &spent, &pre, input, sighash_type).map_err(|e| match e {
                    SighashError::SingleWithoutOutput => {
                        PsbtError::SighashSingleWithoutOutput { input }
                    }
                    SighashError::NoInput => PsbtError::MissingUtxo { input },
                })?;
            Ok(ToSign {
                input,
                sighash,
                sighash_type,
            })
        })
        .collect::<Result<Vec<_>, PsbtError>>()?;

    let mut outputs = Vec::with_capacity(tx.outputs.len());
    // The unsigned tx's outputs were checked to add up to at most 21M BTC.
    let (mut total_out, mut sent) = (0u64, 0u64);
    for (i, out) in tx.outputs.iter().enumerate() {
        let change = out.script_pubkey == ours_script;
        let address = mpc_address::script_address(&out.script_pubkey, network);
        if address.is_none() {
            warnings.push(Warning::UnknownOutputScript { output: i });
        }
        total_out = total_out.saturating_add(out.value);
        if !change {
            sent = sent.saturating_add(out.value);
        }
        outputs.push(OutputReview {
            index: i,
            amount: out.value,
            address,
            script_hex: hex::encode(&out.script_pubkey),
            change,
        });
    }
    let fee = total_in.checked_sub(total_out).ok_or_else(|| {
        PsbtError::BadUnsignedTx(format!(
            "outputs ({total_out} sat) exceed the inputs ({total_in} sat)"
        ))
    })?;

    let vsize = tx::vsize(tx, &script_sig_lens, &witness_lens);
    let fee_rate_milli =
        u64::try_from(u128::from(fee) * 1000 / u128::from(vsize.max(1))).unwrap_or(u64::MAX);
    let base = if sent > 0 { sent } else { total_out };
    let limit = u64::try_from(u128::from(base) * u128::from(policy.max_fee_basis_points) / 10_000)
        .unwrap_or(u64::MAX);
    if fee > limit {
        warnings.push(Warning::HighFee { fee, limit });
    }
    let enforced = tx.inputs.iter().any(|i| i.sequence != 0xffff_ffff);
    if tx.locktime >= 500_000_000 && enforced {
        warnings.push(Warning::TimeLocked {
            locktime: tx.locktime,
        });
    }

    Ok(Plan {
        review: Review {
            txid: psbt.txid(),
            version: tx.version,
            locktime: tx.locktime,
            inputs,
            outputs,
            total_in,
            total_out,
            fee,
            sent,
            vsize,
            fee_rate_milli,
            warnings,
        },
        to_sign,
    })
}

/// Satoshis as BTC with all 8 decimals: `0.00150000 BTC`.
fn btc(sat: u64) -> String {
    format!("{}.{:08} BTC", sat / 100_000_000, sat % 100_000_000)
}

/// sat/vB from thousandths, without trailing zeros: `12.5`, `3`.
fn rate(milli: u64) -> String {
    let s = format!("{}.{:03}", milli / 1000, milli % 1000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn sighash_name(t: u8) -> &'static str {
    match t {
        0x00 => "DEFAULT",
        0x01 => "ALL",
        0x02 => "NONE",
        0x03 => "SINGLE",
        0x81 => "ALL|ANYONECANPAY",
        0x82 => "NONE|ANYONECANPAY",
        0x83 => "SINGLE|ANYONECANPAY",
        _ => "unknown",
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::HighFee { fee, limit } => write!(
                f,
                "the fee {} is above this wallet's limit of {}",
                btc(*fee),
                btc(*limit)
            ),
            Warning::UnusualSighash {
                input,
                sighash_type,
            } => {
                let what = match sighash_type & 0x83 {
                    0x01 => "commits to the whole transaction, like DEFAULT",
                    0x02 => "does not commit to the outputs: anyone can change where the money goes",
                    0x03 => "commits only to the output at the same index",
                    0x81 => "commits only to this input: others can be added",
                    0x82 => "commits to neither the other inputs nor the outputs",
                    _ => "commits only to this input and the output at its index",
                };
                write!(
                    f,
                    "input {input} is signed with SIGHASH_{} ({sighash_type:#04x}), which {what}",
                    sighash_name(*sighash_type)
                )
            }
            Warning::TimeLocked { locktime } => write!(
                f,
                "the transaction can't be mined before unix time {locktime} (its locktime)"
            ),
            Warning::ForeignInputNotFinal { input } => write!(
                f,
                "input {input} is not signed yet: the size is a lower bound, so the real fee rate is lower than shown"
            ),
            Warning::ForeignInputs { inputs } => {
                let list: Vec<String> = inputs.iter().map(|i| i.to_string()).collect();
                let (noun, verb) = if inputs.len() == 1 {
                    ("input", "is")
                } else {
                    ("inputs", "are")
                };
                write!(
                    f,
                    "{noun} {} {verb} not this wallet's: left unsigned, for their owners to sign",
                    list.join(", ")
                )
            }
            Warning::UnknownOutputScript { output } => write!(
                f,
                "output {output} has no address (OP_RETURN data or a non-standard script)"
            ),
            Warning::AlreadyFinal { input } => write!(
                f,
                "input {input} is this wallet's but already finalized: it is not signed again"
            ),
        }
    }
}

impl fmt::Display for Review {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "transaction {} (version {})", self.txid, self.version)?;
        writeln!(f, "inputs:")?;
        for i in &self.inputs {
            let whose = if i.ours {
                "(this wallet)"
            } else {
                "(not this wallet: left unsigned)"
            };
            let address = i
                .address
                .as_deref()
                .map(|a| format!(" {a}"))
                .unwrap_or_default();
            writeln!(
                f,
                "  #{} {}{address} {} {whose}",
                i.index,
                i.prevout,
                btc(i.amount)
            )?;
        }
        writeln!(f, "total in {}", btc(self.total_in))?;
        writeln!(f, "outputs:")?;
        for o in &self.outputs {
            let to = match &o.address {
                Some(a) => a.clone(),
                None => format!("script {}", o.script_hex),
            };
            let change = if o.change {
                " (change back to this wallet)"
            } else {
                ""
            };
            writeln!(f, "  #{} {to} {}{change}", o.index, btc(o.amount))?;
        }
        writeln!(f, "total out {}", btc(self.total_out))?;
        writeln!(f, "sent {}", btc(self.sent))?;
        writeln!(
            f,
            "fee {} ({} sat/vB, vsize {})",
            btc(self.fee),
            rate(self.fee_rate_milli),
            self.vsize
        )?;
        match self.locktime {
            0 => writeln!(f, "locktime 0 (none)")?,
            t if t < 500_000_000 => writeln!(f, "locktime {t} (block height)")?,
            t => writeln!(f, "locktime {t} (unix time)")?,
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_rates_read_as_people_write_them() {
        assert_eq!(btc(150_000), "0.00150000 BTC");
        assert_eq!(btc(2_100_000_000_000_000), "21000000.00000000 BTC");
        assert_eq!(rate(12_500), "12.5");
        assert_eq!(rate(3_000), "3");
        assert_eq!(rate(1), "0.001");
        assert_eq!(Policy::default().max_fee_basis_points, 500);
    }
}
