//! What a co-signer derives from a Solana transaction before signing: the
//! wallet's signer slot, and the [`SolanaReview`] a person approves (who
//! pays, what each instruction does, warnings).
//!
//! Decoded are the instructions that move SOL or tokens in the usual way
//! (System Transfer, SPL Token and Token-2022 Transfer/TransferChecked), a
//! durable nonce, and the compute budget (the priority fee). Everything
//! else is shown as its program and sizes, with a warning: a signer can't
//! tell what an arbitrary program does with its signature. Instruction
//! data is read as the programs read it: a known prefix, trailing bytes
//! ignored (bincode and `unpack` allow them), so nothing that runs as a
//! transfer is shown as something else.

use std::fmt;

use serde::Serialize;

use super::build::{SYSTEM_ADVANCE_NONCE, SYSTEM_PROGRAM, SYSTEM_TRANSFER};
use super::message::{Instruction, Message, Pubkey, Version};
use super::{base58, SolanaError, SolanaTx};

/// `TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA`
const TOKEN_PROGRAM: Pubkey = [
    0x06, 0xdd, 0xf6, 0xe1, 0xd7, 0x65, 0xa1, 0x93, 0xd9, 0xcb, 0xe1, 0x46, 0xce, 0xeb, 0x79, 0xac,
    0x1c, 0xb4, 0x85, 0xed, 0x5f, 0x5b, 0x37, 0x91, 0x3a, 0x8c, 0xf5, 0x85, 0x7e, 0xff, 0x00, 0xa9,
];

/// `TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb`
const TOKEN_2022_PROGRAM: Pubkey = [
    0x06, 0xdd, 0xf6, 0xe1, 0xee, 0x75, 0x8f, 0xde, 0x18, 0x42, 0x5d, 0xbc, 0xe4, 0x6c, 0xcd, 0xda,
    0xb6, 0x1a, 0xfc, 0x4d, 0x83, 0xb9, 0x0d, 0x27, 0xfe, 0xbd, 0xf9, 0x28, 0xd8, 0xa1, 0x8b, 0xfc,
];

/// `ComputeBudget111111111111111111111111111111`
const COMPUTE_BUDGET_PROGRAM: Pubkey = [
    0x03, 0x06, 0x46, 0x6f, 0xe5, 0x21, 0x17, 0x32, 0xff, 0xec, 0xad, 0xba, 0x72, 0xc3, 0x9b, 0xe7,
    0xbc, 0x8c, 0xe5, 0xbb, 0xc5, 0xf7, 0x12, 0x6b, 0x2c, 0x43, 0x9b, 0x3a, 0x40, 0x00, 0x00, 0x00,
];

// SPL Token instruction tags (the first data byte).
const TOKEN_TRANSFER: u8 = 3;
const TOKEN_TRANSFER_CHECKED: u8 = 12;

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

/// Account `index` of the message as shown.
fn account_name(m: &Message, index: u8) -> String {
    let i = usize::from(index);
    match m.account_keys.get(i) {
        Some(k) => base58(k),
        None => format!(
            "lookup table account #{}",
            i.saturating_sub(m.account_keys.len())
        ),
    }
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    b.try_into().ok().map(u32::from_le_bytes)
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    let b = data.get(at..at.checked_add(8)?)?;
    b.try_into().ok().map(u64::from_le_bytes)
}

fn decode(m: &Message, ix: &Instruction) -> InstructionReview {
    let program = m
        .account_keys
        .get(usize::from(ix.program_id_index))
        .copied()
        .unwrap_or_default();
    // The instruction's k-th account, if it has that many.
    let acc = |k: usize| ix.accounts.get(k).map(|&a| account_name(m, a));
    let data = ix.data.as_slice();
    let decoded = match program {
        SYSTEM_PROGRAM => decode_system(data, &acc),
        TOKEN_PROGRAM | TOKEN_2022_PROGRAM => decode_token(&program, data, &acc),
        COMPUTE_BUDGET_PROGRAM => Some(InstructionReview::ComputeBudget {
            detail: compute_budget(data),
        }),
        _ => None,
    };
    decoded.unwrap_or_else(|| InstructionReview::Unknown {
        program: base58(&program),
        data_len: data.len(),
        accounts: ix.accounts.len(),
    })
}

/// `None` when the data is too short to say which instruction it is.
fn decode_system(data: &[u8], acc: &dyn Fn(usize) -> Option<String>) -> Option<InstructionReview> {
    let instruction = u32_at(data, 0)?;
    let decoded = match instruction {
        SYSTEM_TRANSFER => u64_at(data, 4).and_then(|lamports| {
            Some(InstructionReview::SystemTransfer {
                from: acc(0)?,
                to: acc(1)?,
                lamports,
            })
        }),
        // Accounts: the nonce, the RecentBlockhashes sysvar, the authority.
        SYSTEM_ADVANCE_NONCE => acc(0).zip(acc(2)).map(|(nonce_account, authority)| {
            InstructionReview::SystemAdvanceNonce {
                nonce_account,
                authority,
            }
        }),
        _ => None,
    };
    // Too few accounts or bytes fail on chain; still say which one it is.
    Some(decoded.unwrap_or(InstructionReview::SystemOther {
        instruction,
        data_len: data.len(),
    }))
}

fn decode_token(
    program: &Pubkey,
    data: &[u8],
    acc: &dyn Fn(usize) -> Option<String>,
) -> Option<InstructionReview> {
    let program = base58(program);
    match *data.first()? {
        TOKEN_TRANSFER => Some(InstructionReview::TokenTransfer {
            amount: u64_at(data, 1)?,
            source: acc(0)?,
            destination: acc(1)?,
            authority: acc(2)?,
            program,
        }),
        TOKEN_TRANSFER_CHECKED => Some(InstructionReview::TokenTransferChecked {
            amount: u64_at(data, 1)?,
            decimals: *data.get(9)?,
            source: acc(0)?,
            mint: acc(1)?,
            destination: acc(2)?,
            authority: acc(3)?,
            program,
        }),
        _ => None,
    }
}

/// A compute budget instruction in words. These are borsh, read whole:
/// the runtime refuses the transaction if one has other bytes.
fn compute_budget(data: &[u8]) -> String {
    let u32_arg = || u32_at(data, 1).filter(|_| data.len() == 5);
    let Some(&tag) = data.first() else {
        return "no data (malformed: the transaction fails)".into();
    };
    let decoded = match tag {
        1 => u32_arg().map(|n| format!("request heap frame {n} bytes")),
        2 => u32_arg().map(|n| format!("set compute unit limit {n}")),
        3 => u64_at(data, 1)
            .filter(|_| data.len() == 9)
            .map(|n| format!("set compute unit price {n} micro-lamports per unit")),
        4 => u32_arg().map(|n| format!("set loaded accounts data size limit {n} bytes")),
        _ => return format!("instruction {tag}"),
    };
    decoded.unwrap_or_else(|| {
        format!(
            "instruction {tag} with {} bytes of data (malformed: the transaction fails)",
            data.len()
        )
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

/// The token program's name, for the few shown.
fn token_program_name(program: &str) -> String {
    if program == base58(&TOKEN_PROGRAM) {
        "SPL Token".into()
    } else if program == base58(&TOKEN_2022_PROGRAM) {
        "Token-2022".into()
    } else {
        program.to_string()
    }
}

fn system_instruction_name(n: u32) -> &'static str {
    match n {
        0 => "CreateAccount",
        1 => "Assign",
        2 => "Transfer",
        3 => "CreateAccountWithSeed",
        4 => "AdvanceNonceAccount",
        5 => "WithdrawNonceAccount",
        6 => "InitializeNonceAccount",
        7 => "AuthorizeNonceAccount",
        8 => "Allocate",
        9 => "AllocateWithSeed",
        10 => "AssignWithSeed",
        11 => "TransferWithSeed",
        12 => "UpgradeNonceAccount",
        _ => "unknown",
    }
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

    #[test]
    fn program_ids_are_the_ones_named() {
        for (key, name) in [
            (TOKEN_PROGRAM, "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"),
            (
                TOKEN_2022_PROGRAM,
                "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb",
            ),
            (
                COMPUTE_BUDGET_PROGRAM,
                "ComputeBudget111111111111111111111111111111",
            ),
            (SYSTEM_PROGRAM, "11111111111111111111111111111111"),
        ] {
            assert_eq!(base58(&key), name);
        }
    }

    #[test]
    fn instruction_data_is_read_as_the_programs_read_it() {
        // Trailing bytes are ignored by the System program (bincode) and
        // SPL Token (`unpack`): still a transfer.
        let mut transfer = SYSTEM_TRANSFER.to_le_bytes().to_vec();
        transfer.extend_from_slice(&7u64.to_le_bytes());
        transfer.push(0xee);
        let acc = |k: usize| Some(format!("a{k}"));
        assert_eq!(
            decode_system(&transfer, &acc),
            Some(InstructionReview::SystemTransfer {
                from: "a0".into(),
                to: "a1".into(),
                lamports: 7
            })
        );
        // Too short to hold the amount, or too few accounts: named, not
        // decoded.
        let none = |_: usize| -> Option<String> { None };
        assert_eq!(
            decode_system(&transfer[..8], &acc),
            Some(InstructionReview::SystemOther {
                instruction: 2,
                data_len: 8
            })
        );
        assert!(matches!(
            decode_system(&transfer, &none),
            Some(InstructionReview::SystemOther { instruction: 2, .. })
        ));
        assert_eq!(decode_system(&[2, 0], &acc), None);
        let mut checked = vec![TOKEN_TRANSFER_CHECKED];
        checked.extend_from_slice(&9u64.to_le_bytes());
        assert_eq!(decode_token(&TOKEN_PROGRAM, &checked, &acc), None);
        checked.extend_from_slice(&[2, 0xee]);
        assert!(matches!(
            decode_token(&TOKEN_PROGRAM, &checked, &acc),
            Some(InstructionReview::TokenTransferChecked {
                amount: 9,
                decimals: 2,
                ..
            })
        ));
        // Compute budget instructions are borsh, read whole.
        assert_eq!(
            compute_budget(&[2, 0x40, 0x0d, 0x03, 0x00]),
            "set compute unit limit 200000"
        );
        assert_eq!(
            compute_budget(&[2, 0x40, 0x0d, 0x03, 0x00, 0x00]),
            "instruction 2 with 6 bytes of data (malformed: the transaction fails)"
        );
        assert_eq!(
            compute_budget(&[1, 0, 0, 1, 0]),
            "request heap frame 65536 bytes"
        );
        assert_eq!(compute_budget(&[9]), "instruction 9");
        assert_eq!(
            compute_budget(&[]),
            "no data (malformed: the transaction fails)"
        );
    }
}
