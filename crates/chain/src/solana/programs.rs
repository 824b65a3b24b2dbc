//! The programs a signer decodes, read as the programs read their data:
//! System Transfer and AdvanceNonceAccount, SPL Token and Token-2022
//! Transfer/TransferChecked, and the compute budget (the priority fee).
//! A known prefix is matched and trailing bytes are ignored (bincode and
//! `unpack` allow them), so nothing that runs as a transfer is shown as
//! something else.

use super::base58;
use super::build::{SYSTEM_ADVANCE_NONCE, SYSTEM_PROGRAM, SYSTEM_TRANSFER};
use super::message::{Instruction, Message, Pubkey};
use super::review::InstructionReview;

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

pub(super) fn decode(m: &Message, ix: &Instruction) -> InstructionReview {
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

/// The token program's name, for the few shown.
pub(super) fn token_program_name(program: &str) -> String {
    if program == base58(&TOKEN_PROGRAM) {
        "SPL Token".into()
    } else if program == base58(&TOKEN_2022_PROGRAM) {
        "Token-2022".into()
    } else {
        program.to_string()
    }
}

pub(super) fn system_instruction_name(n: u32) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

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
