//! What a co-signer is shown of an EIP-1559 transaction.

use serde::Serialize;

use super::{checksum_address, Eip1559Tx};

/// What the calldata does, as far as this wallet can tell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Call {
    /// No calldata: a plain transfer of ETH.
    None,
    /// ERC-20 `transfer(address,uint256)`.
    Erc20Transfer {
        /// The token contract (the transaction's `to`).
        token: String,
        /// Who receives the tokens.
        to: String,
        /// In the token's smallest unit (decimal).
        amount: String,
    },
    /// ERC-20 `approve(address,uint256)`.
    Erc20Approve {
        /// The token contract.
        token: String,
        /// Who may spend.
        spender: String,
        /// In the token's smallest unit (decimal); `unlimited` for 2^256-1.
        amount: String,
    },
    /// Any other call: its 4-byte selector and length.
    Other {
        /// `0x` and 8 hex digits; empty when there are fewer than 4 bytes.
        selector: String,
        /// Calldata length in bytes.
        len: usize,
    },
}

/// An EIP-1559 transaction as its signer is shown it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EthReview {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// EIP-55 recipient, or `None` for a contract deployment.
    pub to: Option<String>,
    /// Wei sent, in decimal.
    pub value_wei: String,
    /// The same in ETH, exact.
    pub value_eth: String,
    /// The sender's nonce.
    pub nonce: u64,
    /// Gas limit.
    pub gas: u64,
    /// Fee cap per gas, in gwei (exact).
    pub max_fee_per_gas_gwei: String,
    /// Tip per gas, in gwei (exact).
    pub max_priority_fee_per_gas_gwei: String,
    /// The most the fee can be: gas × fee cap, in ETH.
    pub max_fee_eth: String,
    /// What the calldata does.
    pub call: Call,
    /// How many access list entries it carries.
    pub access_list_entries: usize,
}

/// `n / 10^decimals` exactly, without trailing zeros.
fn units(n: u128, decimals: u32) -> String {
    let scale = 10u128.pow(decimals);
    let (whole, frac) = (n / scale, n % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0width$}", width = decimals as usize);
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// A 32-byte ABI word as a decimal, or `unlimited` for 2^256-1.
fn uint_word(word: &[u8]) -> String {
    if word.iter().all(|b| *b == 0xff) {
        return "unlimited".into();
    }
    // Decimal of a 256-bit big-endian number by repeated division.
    let mut digits = Vec::new();
    let mut n: Vec<u8> = word.to_vec();
    while n.iter().any(|b| *b != 0) {
        let mut rem = 0u32;
        for b in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = u8::try_from(cur / 10).unwrap_or(0);
            rem = cur % 10;
        }
        digits.push(char::from(b'0' + u8::try_from(rem).unwrap_or(0)));
    }
    if digits.is_empty() {
        return "0".into();
    }
    digits.iter().rev().collect()
}

/// An ABI-encoded address word: 12 zero bytes, then the address.
fn address_word(word: &[u8]) -> Option<String> {
    let (zeros, addr) = word.split_at_checked(12)?;
    if zeros.iter().any(|b| *b != 0) {
        return None;
    }
    Some(checksum_address(&<[u8; 20]>::try_from(addr).ok()?))
}

fn decode_call(tx: &Eip1559Tx) -> Call {
    let data = &tx.data;
    if data.is_empty() {
        return Call::None;
    }
    let other = || Call::Other {
        selector: data
            .get(..4)
            .map(|s| format!("0x{}", hex::encode(s)))
            .unwrap_or_default(),
        len: data.len(),
    };
    let (Some(selector), Some(token)) = (data.get(..4), tx.to.as_ref()) else {
        return other();
    };
    // Exactly two words: anything else is shown as an unknown call.
    let (Some(a), Some(b)) = (data.get(4..36), data.get(36..68)) else {
        return other();
    };
    if data.len() != 68 {
        return other();
    }
    let token = checksum_address(token);
    match (selector, address_word(a)) {
        ([0xa9, 0x05, 0x9c, 0xbb], Some(to)) => Call::Erc20Transfer {
            token,
            to,
            amount: uint_word(b),
        },
        ([0x09, 0x5e, 0xa7, 0xb3], Some(spender)) => Call::Erc20Approve {
            token,
            spender,
            amount: uint_word(b),
        },
        _ => other(),
    }
}

pub(super) fn review(tx: &Eip1559Tx) -> EthReview {
    EthReview {
        chain_id: tx.chain_id,
        to: tx.to.as_ref().map(checksum_address),
        value_wei: tx.value.to_string(),
        value_eth: units(tx.value, 18),
        nonce: tx.nonce,
        gas: tx.gas,
        max_fee_per_gas_gwei: units(tx.max_fee_per_gas, 9),
        max_priority_fee_per_gas_gwei: units(tx.max_priority_fee_per_gas, 9),
        max_fee_eth: units(tx.max_fee_per_gas.saturating_mul(u128::from(tx.gas)), 18),
        call: decode_call(tx),
        access_list_entries: tx.access_list.len(),
    }
}

impl std::fmt::Display for EthReview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Ethereum transaction (EIP-1559) on chain id {}",
            self.chain_id
        )?;
        match &self.to {
            Some(to) => writeln!(f, "  to:        {to}")?,
            None => writeln!(f, "  to:        (none: deploys a contract)")?,
        }
        writeln!(f, "  value:     {} ETH", self.value_eth)?;
        match &self.call {
            Call::None => {}
            Call::Erc20Transfer { token, to, amount } => {
                writeln!(f, "  call:      ERC-20 transfer of {amount} (smallest units) of token {token} to {to}")?
            }
            Call::Erc20Approve {
                token,
                spender,
                amount,
            } => writeln!(
                f,
                "  call:      ERC-20 approve: {spender} may spend {amount} (smallest units) of token {token}"
            )?,
            Call::Other { selector, len } => {
                writeln!(f, "  call:      unknown contract call, selector {selector}, {len} bytes")?
            }
        }
        if self.access_list_entries > 0 {
            writeln!(f, "  access list: {} entries", self.access_list_entries)?;
        }
        writeln!(f, "  nonce:     {}", self.nonce)?;
        writeln!(
            f,
            "  fees:      up to {} gwei/gas (tip {} gwei), gas limit {}",
            self.max_fee_per_gas_gwei, self.max_priority_fee_per_gas_gwei, self.gas
        )?;
        write!(f, "  max fee:   {} ETH", self.max_fee_eth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact() {
        assert_eq!(units(1_500_000_000_000_000_000, 18), "1.5");
        assert_eq!(units(1, 18), "0.000000000000000001");
        assert_eq!(units(0, 9), "0");
        let mut w = [0u8; 32];
        w[31] = 0xe8;
        w[30] = 0x03;
        assert_eq!(uint_word(&w), "1000");
        assert_eq!(uint_word(&[0xff; 32]), "unlimited");
    }

    #[test]
    fn erc20_transfer_is_decoded() {
        let mut data = vec![0xa9, 0x05, 0x9c, 0xbb];
        data.extend([0u8; 12]);
        data.extend([0x11u8; 20]);
        let mut amount = [0u8; 32];
        amount[31] = 7;
        data.extend(amount);
        let tx = Eip1559Tx {
            chain_id: 1,
            nonce: 3,
            max_priority_fee_per_gas: 1,
            max_fee_per_gas: 2,
            gas: 60_000,
            to: Some([0x22; 20]),
            value: 0,
            data,
            access_list: vec![],
        };
        let r = tx.review();
        assert!(matches!(r.call, Call::Erc20Transfer { ref amount, .. } if amount == "7"));
        assert!(r.to_string().contains("ERC-20 transfer of 7"));
        let mut other = tx.clone();
        other.data.push(0);
        assert!(matches!(other.review().call, Call::Other { len: 69, .. }));
    }
}
