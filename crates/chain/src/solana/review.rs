//! What a co-signer derives from a Solana transaction before signing: the
//! wallet's signer slot, and the [`SolanaReview`] a person approves (who
//! pays, what each instruction does, warnings).
//!
//! Which instructions are decoded, and how, is `programs`. Anything else
//! is shown as its program and sizes, with a warning: a signer can't tell
//! what an arbitrary program does with its signature.

use std::fmt;

use serde::Serialize;

use super::message::Version;
use super::programs::{decode, system_instruction_name, token_program_name};
use super::{base58, SolanaError, SolanaTx};

const LAMPORTS_PER_SOL: u64 = 1_000_000_000;

/// One instruction as the signer sees it. Accounts are base58 addresses,
/// or `lookup table account #k` for the k-th account a v0 message loads
/// from its lookup tables (writable ones of every table first, then the
/// readonly ones, as the runtime orders them), which can't be seen
/// offline.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InstructionReview {
    /// System program Transfer.
    SystemTransfer {
        from: String,
        to: String,
        lamports: u64,
    },
    /// System program AdvanceNonceAccount.
    SystemAdvanceNonce {
        nonce_account: String,
        authority: String,
    },
    /// Any other System program instruction, by number.
    SystemOther { instruction: u32, data_len: usize },
    /// SPL Token or Token-2022 Transfer: a raw amount, decimals unknown.
    TokenTransfer {
        program: String,
        source: String,
        destination: String,
        authority: String,
        amount: u64,
    },
    /// SPL Token or Token-2022 TransferChecked: the mint's decimals are
    /// stated (and checked on chain).
    TokenTransferChecked {
        program: String,
        source: String,
        mint: String,
        destination: String,
        authority: String,
        amount: u64,
        decimals: u8,
    },
    /// A compute budget instruction, in words.
    ComputeBudget { detail: String },
    /// Not decoded.
    Unknown {
        program: String,
        data_len: usize,
        accounts: usize,
    },
}

/// Something a person should look at before approving.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "warning", rename_all = "snake_case")]
pub enum SolanaWarning {
    /// Instruction `index` calls a program (or a System or token
    /// instruction) this signer does not decode.
    UnknownProgram { index: usize, program: String },
    /// A v0 message loads accounts from lookup tables: their addresses
    /// are on chain, and the signer can't see them offline.
    LookupTables { count: usize },
    /// Another signer pays the fee: the wallet co-signs someone else's
    /// transaction.
    WalletNotFeePayer,
    /// The first instruction advances a durable nonce: the transaction
    /// does not expire with its blockhash, it stays valid until used.
    DurableNonce,
}

/// Everything shown to the person approving a signature.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SolanaReview {
    /// `legacy` or `v0`.
    pub version: String,
    /// Base58, as are all addresses and the blockhash.
    pub fee_payer: String,
    pub wallet_is_fee_payer: bool,
    /// With a durable nonce, the nonce's stored value.
    pub recent_blockhash: String,
    /// The required signers, in slot order.
    pub signers: Vec<String>,
    pub instructions: Vec<InstructionReview>,
    /// How many address lookup tables a v0 message uses.
    pub lookup_tables: usize,
    pub warnings: Vec<SolanaWarning>,
}

/// What [`plan`] found: the review, the bytes to sign once it is approved,
/// and the slot the signature goes in.
#[derive(Clone, Debug, PartialEq)]
pub struct SolanaPlan {
    pub review: SolanaReview,
    /// The message: what the group's ed25519 signature covers.
    pub message: Vec<u8>,
    /// For [`SolanaTx::with_signature`].
    pub signer_index: usize,
}

/// Everything a co-signer derives itself: refuses
/// ([`SolanaError::NotASigner`]) unless `wallet` (the 32-byte ed25519
/// group key, which is the wallet's address) is among the required
/// signers, and decodes the message for review.
pub fn plan(tx: &SolanaTx, wallet: &[u8; 32]) -> Result<SolanaPlan, SolanaError> {
    let signer_index = tx.signer_index(wallet).ok_or(SolanaError::NotASigner)?;
    let m = tx.message();
    let instructions: Vec<InstructionReview> =
        m.instructions.iter().map(|ix| decode(m, ix)).collect();

    let mut warnings = Vec::new();
    if matches!(
        instructions.first(),
        Some(InstructionReview::SystemAdvanceNonce { .. })
    ) {
        warnings.push(SolanaWarning::DurableNonce);
    }
    for (index, ix) in instructions.iter().enumerate() {
        if let InstructionReview::Unknown { program, .. } = ix {
            warnings.push(SolanaWarning::UnknownProgram {
                index,
                program: program.clone(),
            });
        }
    }
    if !m.lookups.is_empty() {
        warnings.push(SolanaWarning::LookupTables {
            count: m.lookups.len(),
        });
    }
    if signer_index != 0 {
        warnings.push(SolanaWarning::WalletNotFeePayer);
    }

    let signers = m
        .account_keys
        .iter()
        .take(m.num_signers())
        .map(base58)
        .collect();
    Ok(SolanaPlan {
        review: SolanaReview {
            version: match m.version {
                Version::Legacy => "legacy",
                Version::V0 => "v0",
            }
            .to_string(),
            // Parsing checked there is a signer, so a fee payer.
            fee_payer: m.account_keys.first().map(base58).unwrap_or_default(),
            wallet_is_fee_payer: signer_index == 0,
            recent_blockhash: base58(&m.recent_blockhash),
            signers,
            instructions,
            lookup_tables: m.lookups.len(),
            warnings,
        },
        message: tx.message_bytes().to_vec(),
        signer_index,
    })
}

/// Lamports as SOL with all 9 decimals: `0.001000000 SOL`.
fn sol(lamports: u64) -> String {
    format!(
        "{}.{:09} SOL",
        lamports / LAMPORTS_PER_SOL,
        lamports % LAMPORTS_PER_SOL
    )
}

/// A raw token amount with `decimals` decimals: `2.500000` for 2500000
/// and 6.
fn with_decimals(amount: u64, decimals: u8) -> String {
    let digits = amount.to_string();
    let d = usize::from(decimals);
    if d == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = d + 1);
    let (int, frac) = padded.split_at(padded.len().saturating_sub(d));
    format!("{int}.{frac}")
}

impl fmt::Display for InstructionReview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstructionReview::SystemTransfer { from, to, lamports } => write!(
                f,
                "transfer {} ({lamports} lamport{}) from {from} to {to}",
                sol(*lamports),
                if *lamports == 1 { "" } else { "s" }
            ),
            InstructionReview::SystemAdvanceNonce {
                nonce_account,
                authority,
            } => write!(
                f,
                "advance durable nonce {nonce_account} (authority {authority})"
            ),
            InstructionReview::SystemOther {
                instruction,
                data_len,
            } => write!(
                f,
                "system instruction {instruction} ({}): {data_len} bytes of data (not decoded)",
                system_instruction_name(*instruction)
            ),
            InstructionReview::TokenTransfer {
                program,
                source,
                destination,
                authority,
                amount,
            } => write!(
                f,
                "token transfer of {amount} (raw amount, decimals not stated) from {source} to {destination}, authority {authority} ({})",
                token_program_name(program)
            ),
            InstructionReview::TokenTransferChecked {
                program,
                source,
                mint,
                destination,
                authority,
                amount,
                decimals,
            } => write!(
                f,
                "token transfer of {} ({amount} raw, {decimals} decimals) of mint {mint} from {source} to {destination}, authority {authority} ({})",
                with_decimals(*amount, *decimals),
                token_program_name(program)
            ),
            InstructionReview::ComputeBudget { detail } => write!(f, "compute budget: {detail}"),
            InstructionReview::Unknown {
                program,
                data_len,
                accounts,
            } => write!(
                f,
                "unknown program {program}: {data_len} bytes of data, {accounts} accounts (not decoded)"
            ),
        }
    }
}

impl fmt::Display for SolanaWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SolanaWarning::UnknownProgram { index, program } => write!(
                f,
                "instruction #{index} (program {program}) is not decoded: sign only if you know what it does"
            ),
            SolanaWarning::LookupTables { count } => {
                let (tables, they) = if *count == 1 {
                    ("table", "it loads")
                } else {
                    ("tables", "they load")
                };
                write!(
                    f,
                    "{count} address lookup {tables}: the accounts {they} are on chain and can't be checked here"
                )
            }
            SolanaWarning::WalletNotFeePayer => write!(
                f,
                "this wallet does not pay the fee: it co-signs another payer's transaction"
            ),
            SolanaWarning::DurableNonce => write!(
                f,
                "the first instruction advances a durable nonce: the transaction does not expire, it stays valid until the nonce is used"
            ),
        }
    }
}

impl fmt::Display for SolanaReview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Solana transaction ({})", self.version)?;
        let whose = if self.wallet_is_fee_payer {
            "(this wallet)"
        } else {
            "(not this wallet)"
        };
        writeln!(f, "fee payer {} {whose}", self.fee_payer)?;
        writeln!(f, "signers {}", self.signers.join(", "))?;
        if self.warnings.contains(&SolanaWarning::DurableNonce) {
            writeln!(
                f,
                "recent blockhash {} (the durable nonce's value)",
                self.recent_blockhash
            )?;
        } else {
            writeln!(f, "recent blockhash {}", self.recent_blockhash)?;
        }
        if self.lookup_tables > 0 {
            writeln!(f, "address lookup tables: {}", self.lookup_tables)?;
        }
        writeln!(f, "instructions:")?;
        for (i, ix) in self.instructions.iter().enumerate() {
            writeln!(f, "  #{i} {ix}")?;
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
    fn amounts_read_as_people_write_them() {
        assert_eq!(sol(1_000_000), "0.001000000 SOL");
        assert_eq!(sol(u64::MAX), "18446744073.709551615 SOL");
        assert_eq!(with_decimals(2_500_000, 6), "2.500000");
        assert_eq!(with_decimals(5, 3), "0.005");
        assert_eq!(with_decimals(5, 0), "5");
        assert_eq!(with_decimals(u64::MAX, 255).len(), 257);
    }
}
