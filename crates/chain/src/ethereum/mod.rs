//! Ethereum: EIP-712 typed data, EIP-1559 transactions (from the JSON-RPC object a dApp hands a
//! wallet, and as the `0x02 ‖ rlp(...)` bytes co-signers are sent), their
//! signing hash and signed encoding, EIP-191 `personal_sign` hashes, EIP-55
//! addresses, and the review a co-signer is shown: recipient, value in ETH,
//! fees, chain id, and calldata by its selector, with ERC-20 `transfer` and
//! `approve` decoded.
//!
//! Every signer decodes the transaction and computes its hash itself.

mod json;
mod review;
mod typed;

use alloy_rlp::{Decodable, Encodable, Header};
use sha3::{Digest, Keccak256};

pub use json::{parse_request, TxRequest};
pub use review::{Call, EthReview};
pub use typed::{typed_data_hash, TypedReview, MAX_TYPED_DATA_LEN};

/// EIP-2718 type byte of an EIP-1559 transaction.
const EIP1559: u8 = 0x02;
/// Most calldata a co-signer is asked to sign (a large contract deploy).
pub const MAX_DATA_LEN: usize = 128 * 1024;

/// Why an Ethereum payload can't be signed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EthError {
    /// The bytes are not an unsigned EIP-1559 transaction.
    #[error("not an unsigned EIP-1559 transaction: {0}")]
    Rlp(String),
    /// A field of the JSON transaction is missing or malformed.
    #[error("field {field}: {detail}")]
    Field {
        /// The JSON-RPC name of the field.
        field: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The JSON is not a transaction object.
    #[error("not a transaction object: {0}")]
    Json(String),
    /// Only EIP-1559 (type 2) transactions are signed.
    #[error("transaction type {0} is not supported (only EIP-1559, type 0x2)")]
    Type(u64),
    /// The calldata is longer than [`MAX_DATA_LEN`].
    #[error("{0} bytes of calldata; at most {MAX_DATA_LEN}")]
    DataTooLong(usize),
    /// EIP-712 typed data that does not parse or encode.
    #[error("not EIP-712 typed data: {0}")]
    TypedData(String),
    /// The transaction's fee cap is below its priority fee.
    #[error("maxPriorityFeePerGas is above maxFeePerGas")]
    FeeOrder,
}

/// One access list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessItem {
    /// The contract.
    pub address: [u8; 20],
    /// Its storage slots.
    pub storage_keys: Vec<[u8; 32]>,
}

/// An unsigned EIP-1559 transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eip1559Tx {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The sender's nonce.
    pub nonce: u64,
    /// Tip per gas, in wei.
    pub max_priority_fee_per_gas: u128,
    /// Fee cap per gas, in wei.
    pub max_fee_per_gas: u128,
    /// Gas limit.
    pub gas: u64,
    /// The recipient; `None` deploys a contract.
    pub to: Option<[u8; 20]>,
    /// Wei sent.
    pub value: u128,
    /// Calldata.
    pub data: Vec<u8>,
    /// EIP-2930 access list.
    pub access_list: Vec<AccessItem>,
}

fn rlp_err(e: alloy_rlp::Error) -> EthError {
    EthError::Rlp(e.to_string())
}

impl Eip1559Tx {
    fn fields_len(&self) -> usize {
        self.chain_id.length()
            + self.nonce.length()
            + self.max_priority_fee_per_gas.length()
            + self.max_fee_per_gas.length()
            + self.gas.length()
            + self.to.as_ref().map_or(&[][..], |a| &a[..]).length()
            + self.value.length()
            + self.data.as_slice().length()
            + access_list_len(&self.access_list)
    }

    fn encode_fields(&self, out: &mut Vec<u8>) {
        self.chain_id.encode(out);
        self.nonce.encode(out);
        self.max_priority_fee_per_gas.encode(out);
        self.max_fee_per_gas.encode(out);
        self.gas.encode(out);
        self.to.as_ref().map_or(&[][..], |a| &a[..]).encode(out);
        self.value.encode(out);
        self.data.as_slice().encode(out);
        encode_access_list(&self.access_list, out);
    }

    /// `0x02 ‖ rlp([chainId, nonce, tip, feeCap, gas, to, value, data,
    /// accessList])`: what co-signers are sent and what is hashed.
    pub fn unsigned_bytes(&self) -> Vec<u8> {
        let mut out = vec![EIP1559];
        list_header(self.fields_len()).encode(&mut out);
        self.encode_fields(&mut out);
        out
    }

    /// The signing hash: keccak256 of [`Eip1559Tx::unsigned_bytes`].
    pub fn signing_hash(&self) -> [u8; 32] {
        keccak(&self.unsigned_bytes())
    }

    /// Decodes [`Eip1559Tx::unsigned_bytes`], canonical RLP only, with
    /// nothing after it.
    pub fn from_unsigned_bytes(bytes: &[u8]) -> Result<Self, EthError> {
        let (first, rest) = bytes
            .split_first()
            .ok_or_else(|| EthError::Rlp("empty".into()))?;
        if *first != EIP1559 {
            return Err(EthError::Type(u64::from(*first)));
        }
        let mut buf = rest;
        let header = Header::decode(&mut buf).map_err(rlp_err)?;
        if !header.list || header.payload_length != buf.len() {
            return Err(EthError::Rlp("not one list of the whole length".into()));
        }
        let tx = Eip1559Tx {
            chain_id: u64::decode(&mut buf).map_err(rlp_err)?,
            nonce: u64::decode(&mut buf).map_err(rlp_err)?,
            max_priority_fee_per_gas: u128::decode(&mut buf).map_err(rlp_err)?,
            max_fee_per_gas: u128::decode(&mut buf).map_err(rlp_err)?,
            gas: u64::decode(&mut buf).map_err(rlp_err)?,
            to: {
                let to = Header::decode_bytes(&mut buf, false).map_err(rlp_err)?;
                match to.len() {
                    0 => None,
                    20 => <[u8; 20]>::try_from(to).ok(),
                    n => return Err(EthError::Rlp(format!("a {n}-byte recipient"))),
                }
            },
            value: u128::decode(&mut buf).map_err(rlp_err)?,
            data: Header::decode_bytes(&mut buf, false)
                .map_err(rlp_err)?
                .to_vec(),
            access_list: decode_access_list(&mut buf)?,
        };
        if !buf.is_empty() {
            return Err(EthError::Rlp("fields after the access list".into()));
        }
        tx.check()?;
        // Only the canonical encoding is signed: what was sent must be
        // exactly what is hashed.
        if tx.unsigned_bytes() != bytes {
            return Err(EthError::Rlp("not canonical".into()));
        }
        Ok(tx)
    }

    fn check(&self) -> Result<(), EthError> {
        if self.data.len() > MAX_DATA_LEN {
            return Err(EthError::DataTooLong(self.data.len()));
        }
        if self.max_priority_fee_per_gas > self.max_fee_per_gas {
            return Err(EthError::FeeOrder);
        }
        Ok(())
    }

    /// The signed transaction, as `eth_sendRawTransaction` takes it, from
    /// the 65-byte `r ‖ s ‖ recovery id` signature of its signing hash.
    pub fn signed_bytes(&self, sig: &[u8; 65]) -> Vec<u8> {
        let (r, rest) = sig.split_at(32);
        let (s, v) = rest.split_at(32);
        let y_parity = u8::from(v.first().is_some_and(|v| *v & 1 == 1));
        let r = strip(r);
        let s = strip(s);
        let len = self.fields_len() + y_parity.length() + r.length() + s.length();
        let mut out = vec![EIP1559];
        list_header(len).encode(&mut out);
        self.encode_fields(&mut out);
        y_parity.encode(&mut out);
        r.encode(&mut out);
        s.encode(&mut out);
        out
    }

    /// The user-facing review of this transaction.
    pub fn review(&self) -> EthReview {
        review::review(self)
    }
}

/// r and s are RLP integers: no leading zero bytes.
fn strip(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b.get(i..).unwrap_or_default()
}

/// What an RLP list header says for a payload of `payload` bytes.
fn list_header(payload: usize) -> Header {
    Header {
        list: true,
        payload_length: payload,
    }
}

/// An RLP list of `payload` bytes, header included.
fn list_len(payload: usize) -> usize {
    list_header(payload).length() + payload
}

fn keys_len(item: &AccessItem) -> usize {
    item.storage_keys.iter().map(|k| k[..].length()).sum()
}

fn item_len(item: &AccessItem) -> usize {
    item.address[..].length() + list_len(keys_len(item))
}

fn access_list_payload(list: &[AccessItem]) -> usize {
    list.iter().map(|i| list_len(item_len(i))).sum()
}

fn access_list_len(list: &[AccessItem]) -> usize {
    list_len(access_list_payload(list))
}

fn encode_access_list(list: &[AccessItem], out: &mut Vec<u8>) {
    list_header(access_list_payload(list)).encode(out);
    for item in list {
        list_header(item_len(item)).encode(out);
        item.address[..].encode(out);
        list_header(keys_len(item)).encode(out);
        for k in &item.storage_keys {
            k[..].encode(out);
        }
    }
}

fn list_payload<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], EthError> {
    Header::decode_bytes(buf, true).map_err(rlp_err)
}

fn decode_access_list(buf: &mut &[u8]) -> Result<Vec<AccessItem>, EthError> {
    let mut list = list_payload(buf)?;
    let mut out = Vec::new();
    while !list.is_empty() {
        let mut item = list_payload(&mut list)?;
        let address =
            <[u8; 20]>::try_from(Header::decode_bytes(&mut item, false).map_err(rlp_err)?)
                .map_err(|_| EthError::Rlp("an access list address is not 20 bytes".into()))?;
        let mut keys = list_payload(&mut item)?;
        let mut storage_keys = Vec::new();
        while !keys.is_empty() {
            storage_keys.push(
                <[u8; 32]>::try_from(Header::decode_bytes(&mut keys, false).map_err(rlp_err)?)
                    .map_err(|_| EthError::Rlp("a storage key is not 32 bytes".into()))?,
            );
        }
        if !item.is_empty() {
            return Err(EthError::Rlp(
                "an access list entry has extra fields".into(),
            ));
        }
        out.push(AccessItem {
            address,
            storage_keys,
        });
    }
    Ok(out)
}

/// keccak256.
pub fn keccak(bytes: &[u8]) -> [u8; 32] {
    Keccak256::digest(bytes).into()
}

/// The hash EIP-191 `personal_sign` signs:
/// `keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ message)`.
pub fn personal_message_hash(message: &[u8]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(b"\x19Ethereum Signed Message:\n");
    h.update(message.len().to_string().as_bytes());
    h.update(message);
    h.finalize().into()
}

/// An address in EIP-55 mixed-case checksum form.
pub fn checksum_address(address: &[u8; 20]) -> String {
    mpc_address::eip55(address)
}

/// Parses a `0x` address; a mixed-case one must carry a valid EIP-55
/// checksum.
pub fn parse_address(s: &str) -> Result<[u8; 20], String> {
    let hex_part = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or_else(|| format!("{s:?} is not a 0x address"))?;
    let bytes: [u8; 20] = hex::decode(hex_part)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{s:?} is not 20 bytes of hex"))?;
    let mixed = hex_part.chars().any(|c| c.is_ascii_uppercase())
        && hex_part.chars().any(|c| c.is_ascii_lowercase());
    if mixed && checksum_address(&bytes).get(2..) != Some(hex_part) {
        return Err(format!("{s:?} has a wrong EIP-55 checksum"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip55_vectors() {
        // From EIP-55 itself.
        for a in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let b = parse_address(a).unwrap();
            assert_eq!(checksum_address(&b), a);
        }
        assert!(parse_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD").is_err());
    }

    #[test]
    fn personal_sign_hash_of_hello() {
        // keccak256("\x19Ethereum Signed Message:\n5hello"), as eth-account gives it.
        assert_eq!(
            hex::encode(personal_message_hash(b"hello")),
            "50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750"
        );
    }

    fn sample() -> Eip1559Tx {
        Eip1559Tx {
            chain_id: 31337,
            nonce: 0,
            max_priority_fee_per_gas: 1_000_000_000,
            max_fee_per_gas: 2_000_000_000,
            gas: 21_000,
            to: Some([0x11; 20]),
            value: 1_000_000_000_000_000_000,
            data: Vec::new(),
            access_list: vec![AccessItem {
                address: [0x22; 20],
                storage_keys: vec![[0x33; 32]],
            }],
        }
    }

    #[test]
    fn unsigned_round_trip_and_strictness() {
        let tx = sample();
        let bytes = tx.unsigned_bytes();
        assert_eq!(Eip1559Tx::from_unsigned_bytes(&bytes).unwrap(), tx);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Eip1559Tx::from_unsigned_bytes(&longer).is_err());
        let mut legacy = bytes.clone();
        legacy[0] = 0x01;
        assert_eq!(
            Eip1559Tx::from_unsigned_bytes(&legacy),
            Err(EthError::Type(1))
        );
        assert!(Eip1559Tx::from_unsigned_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(Eip1559Tx::from_unsigned_bytes(&[]).is_err());
    }
}
