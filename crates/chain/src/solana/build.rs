//! Building a System transfer message, optionally on a durable nonce.
//!
//! Accounts are compiled the way the Solana SDK's `Message::new` compiles
//! them (`CompiledKeys`), so the message is byte for byte what `solana
//! transfer` or solders would build from the same instructions: the fee
//! payer, then the other writable signers, readonly signers, writable
//! non-signers and readonly non-signers, each class sorted by key bytes
//! (the SDK keeps them in a `BTreeMap`); a program is a readonly
//! non-signer unless an instruction also uses it otherwise.

use std::collections::BTreeMap;

use super::message::{Header, Instruction, Message, Pubkey, Version};

/// The System program: all zero bytes, `11111111111111111111111111111111`.
pub(crate) const SYSTEM_PROGRAM: Pubkey = [0; 32];

/// `SysvarRecentB1ockHashes11111111111111111111`, which
/// AdvanceNonceAccount reads.
pub(crate) const RECENT_BLOCKHASHES_SYSVAR: Pubkey = [
    0x06, 0xa7, 0xd5, 0x17, 0x19, 0x2c, 0x56, 0x8e, 0xe0, 0x8a, 0x84, 0x5f, 0x73, 0xd2, 0x97, 0x88,
    0xcf, 0x03, 0x5c, 0x31, 0x45, 0xb2, 0x1a, 0xb3, 0x44, 0xd8, 0x06, 0x2e, 0xa9, 0x40, 0x00, 0x00,
];

// System program instruction numbers (bincode: a u32 LE first).
pub(crate) const SYSTEM_ADVANCE_NONCE: u32 = 4;
pub(crate) const SYSTEM_TRANSFER: u32 = 2;

struct AccountMeta {
    key: Pubkey,
    signer: bool,
    writable: bool,
}

struct Ix {
    program: Pubkey,
    accounts: Vec<AccountMeta>,
    data: Vec<u8>,
}

#[derive(Default)]
struct Meta {
    signer: bool,
    writable: bool,
}

/// A legacy message for a System transfer of `lamports` from `from` (the
/// fee payer and signer) to `to`, valid while `blockhash` is recent.
///
/// With `nonce = Some((nonce_account, authority))` the first instruction is
/// AdvanceNonceAccount, which makes the transaction valid until the nonce
/// is used instead of for ~60 seconds; `blockhash` must then be the value
/// the nonce account stores, and `authority` (normally `from`) signs too.
pub fn transfer_message(
    from: &[u8; 32],
    to: &[u8; 32],
    lamports: u64,
    blockhash: &[u8; 32],
    nonce: Option<(&[u8; 32], &[u8; 32])>,
) -> Vec<u8> {
    let mut ixs = Vec::with_capacity(2);
    if let Some((account, authority)) = nonce {
        ixs.push(Ix {
            program: SYSTEM_PROGRAM,
            accounts: vec![
                meta(account, false, true),
                meta(&RECENT_BLOCKHASHES_SYSVAR, false, false),
                meta(authority, true, false),
            ],
            data: SYSTEM_ADVANCE_NONCE.to_le_bytes().to_vec(),
        });
    }
    let mut data = SYSTEM_TRANSFER.to_le_bytes().to_vec();
    data.extend_from_slice(&lamports.to_le_bytes());
    ixs.push(Ix {
        program: SYSTEM_PROGRAM,
        accounts: vec![meta(from, true, true), meta(to, false, true)],
        data,
    });
    compile(from, &ixs, blockhash).encode()
}

fn meta(key: &Pubkey, signer: bool, writable: bool) -> AccountMeta {
    AccountMeta {
        key: *key,
        signer,
        writable,
    }
}

/// `Message::new_with_blockhash(instructions, Some(payer), blockhash)`.
/// Only called here with a handful of accounts, so indexes fit a byte.
fn compile(payer: &Pubkey, ixs: &[Ix], blockhash: &[u8; 32]) -> Message {
    let mut metas: BTreeMap<Pubkey, Meta> = BTreeMap::new();
    for ix in ixs {
        metas.entry(ix.program).or_default();
        for a in &ix.accounts {
            let m = metas.entry(a.key).or_default();
            m.signer |= a.signer;
            m.writable |= a.writable;
        }
    }
    metas.remove(payer);
    let class = |signer: bool, writable: bool| -> Vec<Pubkey> {
        metas
            .iter()
            .filter(|(_, m)| m.signer == signer && m.writable == writable)
            .map(|(k, _)| *k)
            .collect()
    };
    let (signed_rw, signed_ro) = (class(true, true), class(true, false));
    let (unsigned_rw, unsigned_ro) = (class(false, true), class(false, false));
    let count = |n: usize| u8::try_from(n).unwrap_or(u8::MAX);
    let header = Header {
        num_required_signatures: count(1 + signed_rw.len() + signed_ro.len()),
        num_readonly_signed: count(signed_ro.len()),
        num_readonly_unsigned: count(unsigned_ro.len()),
    };
    let mut account_keys = vec![*payer];
    for class in [signed_rw, signed_ro, unsigned_rw, unsigned_ro] {
        account_keys.extend(class);
    }
    let index = |k: &Pubkey| count(account_keys.iter().position(|x| x == k).unwrap_or(0));
    let instructions = ixs
        .iter()
        .map(|ix| Instruction {
            program_id_index: index(&ix.program),
            accounts: ix.accounts.iter().map(|a| index(&a.key)).collect(),
            data: ix.data.clone(),
        })
        .collect();
    Message {
        version: Version::Legacy,
        header,
        account_keys,
        recent_blockhash: *blockhash,
        instructions,
        lookups: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sysvar_is_the_one_named() {
        assert_eq!(
            super::super::decode_address("SysvarRecentB1ockHashes11111111111111111111"),
            Ok(RECENT_BLOCKHASHES_SYSVAR)
        );
    }

    #[test]
    fn a_self_transfer_has_two_accounts() {
        // The payer's entry absorbs the recipient's, as in the SDK.
        let m = Message::decode(&transfer_message(&[5; 32], &[5; 32], 1, &[0; 32], None));
        let m = m.map(|m| (m.account_keys, m.instructions[0].accounts.clone()));
        assert_eq!(m, Ok((vec![[5; 32], SYSTEM_PROGRAM], vec![0, 0])));
    }
}
