//! What a signing session signs, which every signer derives itself from
//! the proposal ("what you sign, you derive"): the message as it is, or the
//! BIP341 sighash of each PSBT input that pays the wallet, or a Solana
//! transaction's message when the wallet is one of its signers. Also the decoded
//! review its user is shown, and the finished transaction once the
//! signatures exist. The CLI and the extension both get these from here.

use base64::Engine as _;
use mpc_chain::bitcoin::{self, Plan, Psbt, PsbtError};
use mpc_chain::ethereum::{self, Eip1559Tx, EthError, EthReview};
use mpc_chain::solana::{self, SolanaError, SolanaTx};
use mpc_protocol::peer::{Curve, SignFormat};
use serde::Serialize;

pub use mpc_chain::bitcoin::{Network, Policy};

/// Most messages one session signs (a PSBT's wallet inputs): each costs a
/// commitment and a share in every signer's messages.
pub const MAX_SIGN_MESSAGES: usize = 100;

/// How a node reads transactions it is asked to sign.
#[derive(Clone, Debug, Default)]
pub struct SignSettings {
    /// The Bitcoin network addresses are shown for.
    pub network: Network,
    /// When a fee is flagged as high.
    pub policy: Policy,
}

/// Why a proposal's payload can't be signed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The PSBT is malformed or can't be signed as it is.
    #[error("{0}")]
    Psbt(PsbtError),
    /// The Solana transaction is malformed, or not the wallet's to sign.
    #[error("{0}")]
    Solana(SolanaError),
    /// The Ethereum transaction is malformed.
    #[error("{0}")]
    Ethereum(EthError),
    /// A transaction for a chain the wallet's curve does not sign for.
    #[error("this transaction needs a {needs} wallet, not a {wallet} one")]
    WrongCurve {
        /// The wallet's curve.
        wallet: Curve,
        /// The curve the transaction's chain signs with.
        needs: Curve,
    },
    /// The group key is not a key of its curve (no Taproot output key, or
    /// not 32 bytes of ed25519).
    #[error("the group key is not a valid wallet key")]
    BadGroupKey,
    /// An ECDSA wallet signs only Ethereum messages and transactions,
    /// each hashed as its format says.
    #[error("an Ethereum wallet signs an Ethereum message or transaction, not raw bytes")]
    NeedsEthereumFormat,
    /// More inputs to sign than [`MAX_SIGN_MESSAGES`].
    #[error("{0} inputs to sign; at most {MAX_SIGN_MESSAGES} in one session")]
    TooManyInputs(usize),
}

/// What a user is shown of a transaction, decoded by this node.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "chain", rename_all = "snake_case")]
pub enum Review {
    /// A Bitcoin transaction from a PSBT.
    Bitcoin(Box<bitcoin::Review>),
    /// A Solana transaction or message.
    Solana(Box<solana::SolanaReview>),
    /// An Ethereum EIP-1559 transaction.
    Ethereum(Box<EthReview>),
    /// EIP-712 typed data.
    EthereumTypedData(Box<ethereum::TypedReview>),
}

impl std::fmt::Display for Review {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Review::Bitcoin(r) => r.fmt(f),
            Review::Solana(r) => r.fmt(f),
            Review::Ethereum(r) => r.fmt(f),
            Review::EthereumTypedData(r) => r.fmt(f),
        }
    }
}

/// The messages a proposal's payload makes this node sign.
#[derive(Clone, Debug)]
pub(crate) struct Derived {
    pub format: SignFormat,
    /// The proposal's bytes: the message itself, or the PSBT.
    pub payload: Vec<u8>,
    /// What FROST signs, in order.
    pub messages: Vec<Vec<u8>>,
    /// For a transaction: what the user is shown.
    pub review: Option<Review>,
    decoded: Decoded,
}

/// What the signatures are put into at the end.
#[derive(Clone, Debug)]
enum Decoded {
    Message,
    /// The input and sighash type of each message.
    Bitcoin(Box<Plan>),
    /// The transaction and the wallet's signer slot in it.
    Solana(Box<SolanaTx>, usize),
    /// An EIP-191 message or EIP-712 typed data: v is 27 or 28.
    EthereumMessage,
    /// An EIP-1559 transaction.
    Ethereum(Box<Eip1559Tx>),
}

fn needs(wallet: Curve, needs: Curve) -> Result<(), PayloadError> {
    if wallet == needs {
        Ok(())
    } else {
        Err(PayloadError::WrongCurve { wallet, needs })
    }
}

/// Derives what `payload` (of `format`) makes a wallet of `curve` and
/// `group_key_hex` sign.
pub(crate) fn derive(
    format: SignFormat,
    payload: Vec<u8>,
    curve: Curve,
    group_key_hex: &str,
    settings: &SignSettings,
) -> Result<Derived, PayloadError> {
    match format {
        SignFormat::Message if curve == Curve::Secp256k1Ecdsa => {
            Err(PayloadError::NeedsEthereumFormat)
        }
        SignFormat::Message => Ok(Derived {
            format,
            messages: vec![payload.clone()],
            payload,
            review: None,
            decoded: Decoded::Message,
        }),
        SignFormat::BitcoinPsbt => {
            needs(curve, Curve::Secp256k1)?;
            let q = mpc_address::taproot_output_key(group_key_hex)
                .map_err(|_| PayloadError::BadGroupKey)?;
            let psbt = Psbt::from_bytes(&payload).map_err(PayloadError::Psbt)?;
            let plan = bitcoin::plan(&psbt, &q, settings.network, &settings.policy)
                .map_err(PayloadError::Psbt)?;
            if plan.to_sign.len() > MAX_SIGN_MESSAGES {
                return Err(PayloadError::TooManyInputs(plan.to_sign.len()));
            }
            Ok(Derived {
                format,
                messages: plan.to_sign.iter().map(|t| t.sighash.to_vec()).collect(),
                review: Some(Review::Bitcoin(Box::new(plan.review.clone()))),
                payload,
                decoded: Decoded::Bitcoin(Box::new(plan)),
            })
        }
        SignFormat::SolanaTransaction => {
            needs(curve, Curve::Ed25519)?;
            let wallet: [u8; 32] = hex::decode(group_key_hex)
                .ok()
                .and_then(|k| k.try_into().ok())
                .ok_or(PayloadError::BadGroupKey)?;
            let tx = SolanaTx::from_bytes(&payload).map_err(PayloadError::Solana)?;
            let plan = solana::plan(&tx, &wallet).map_err(PayloadError::Solana)?;
            Ok(Derived {
                format,
                messages: vec![plan.message],
                review: Some(Review::Solana(Box::new(plan.review))),
                payload,
                decoded: Decoded::Solana(Box::new(tx), plan.signer_index),
            })
        }
        SignFormat::EthereumMessage => {
            needs(curve, Curve::Secp256k1Ecdsa)?;
            Ok(Derived {
                format,
                messages: vec![ethereum::personal_message_hash(&payload).to_vec()],
                payload,
                review: None,
                decoded: Decoded::EthereumMessage,
            })
        }
        SignFormat::EthereumTypedData => {
            needs(curve, Curve::Secp256k1Ecdsa)?;
            let (hash, review) =
                ethereum::typed_data_hash(&payload).map_err(PayloadError::Ethereum)?;
            Ok(Derived {
                format,
                messages: vec![hash.to_vec()],
                review: Some(Review::EthereumTypedData(Box::new(review))),
                payload,
                decoded: Decoded::EthereumMessage,
            })
        }
        SignFormat::EthereumTransaction => {
            needs(curve, Curve::Secp256k1Ecdsa)?;
            let tx = Eip1559Tx::from_unsigned_bytes(&payload).map_err(PayloadError::Ethereum)?;
            Ok(Derived {
                format,
                messages: vec![tx.signing_hash().to_vec()],
                review: Some(Review::Ethereum(Box::new(tx.review()))),
                payload,
                decoded: Decoded::Ethereum(Box::new(tx)),
            })
        }
    }
}

/// What `payload` would make a wallet sign, as its user is shown it: a
/// proposer's check before it sends anything.
pub fn review(
    format: SignFormat,
    payload: &[u8],
    curve: Curve,
    group_key_hex: &str,
    settings: &SignSettings,
) -> Result<Option<Review>, PayloadError> {
    derive(format, payload.to_vec(), curve, group_key_hex, settings).map(|d| d.review)
}

/// A transaction with every signature this wallet gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "chain", rename_all = "snake_case")]
pub enum SignedTransaction {
    /// A Bitcoin PSBT.
    Bitcoin {
        /// The PSBT with this wallet's inputs finalized, in base64.
        psbt: String,
        /// The raw transaction in hex, once every input is final.
        tx_hex: Option<String>,
        /// The transaction id.
        txid: String,
        /// The inputs this wallet signed.
        signed_inputs: Vec<usize>,
    },
    /// A signed EIP-1559 transaction.
    Ethereum {
        /// `0x` hex of what `eth_sendRawTransaction` takes.
        raw_tx: String,
        /// `0x` hex of its keccak256: the transaction hash.
        tx_hash: String,
    },
    /// A Solana transaction.
    Solana {
        /// The transaction with the wallet's signature in its slot, in
        /// base64 (other signers' slots as they were given).
        transaction: String,
        /// The wallet's signature in base58, which is also the
        /// transaction id once the wallet pays the fee.
        signature: String,
    },
}

impl Derived {
    /// An ECDSA signature (`r ‖ s ‖ recovery id`) as this format gives it:
    /// `v` is 27 or 28 for `personal_sign` and typed data, the y parity
    /// for a transaction.
    pub fn ethereum_signature(&self, mut sig: [u8; 65]) -> [u8; 65] {
        if let (Decoded::EthereumMessage, Some(v)) = (&self.decoded, sig.last_mut()) {
            *v += 27;
        }
        sig
    }

    /// The transaction with `signatures` (one per message, 64 bytes each)
    /// in place; `None` for a plain message.
    pub fn finish(
        &self,
        signatures: &[Vec<u8>],
    ) -> Result<Option<SignedTransaction>, PayloadError> {
        match &self.decoded {
            Decoded::Message | Decoded::EthereumMessage => Ok(None),
            Decoded::Ethereum(tx) => {
                let sig: [u8; 65] = signatures
                    .first()
                    .and_then(|s| s.as_slice().try_into().ok())
                    .ok_or(PayloadError::Ethereum(EthError::Rlp(
                        "no 65-byte signature".into(),
                    )))?;
                let raw = tx.signed_bytes(&sig);
                Ok(Some(SignedTransaction::Ethereum {
                    tx_hash: format!("0x{}", hex::encode(ethereum::keccak(&raw))),
                    raw_tx: format!("0x{}", hex::encode(raw)),
                }))
            }
            Decoded::Bitcoin(plan) => finish_psbt(&self.payload, plan, signatures)
                .map(Some)
                .map_err(PayloadError::Psbt),
            Decoded::Solana(tx, slot) => {
                let sig: [u8; 64] = signatures
                    .first()
                    .and_then(|s| s.as_slice().try_into().ok())
                    .ok_or(PayloadError::Solana(SolanaError::BadSignerIndex))?;
                let signed = tx
                    .with_signature(*slot, &sig)
                    .map_err(PayloadError::Solana)?;
                Ok(Some(SignedTransaction::Solana {
                    transaction: base64::engine::general_purpose::STANDARD.encode(signed),
                    signature: bs58::encode(sig).into_string(),
                }))
            }
        }
    }
}

fn finish_psbt(
    payload: &[u8],
    plan: &Plan,
    signatures: &[Vec<u8>],
) -> Result<SignedTransaction, PsbtError> {
    let mut psbt = Psbt::from_bytes(payload)?;
    let sigs: Vec<(usize, Vec<u8>)> = plan
        .to_sign
        .iter()
        .zip(signatures)
        .map(|(t, s)| {
            let mut sig = s.clone();
            // BIP341: a 65th byte names any type but SIGHASH_DEFAULT.
            if t.sighash_type != 0 {
                sig.push(t.sighash_type);
            }
            (t.input, sig)
        })
        .collect();
    psbt.finalize_key_path(&sigs)?;
    let tx_hex = psbt.extract_tx().ok().map(hex::encode);
    Ok(SignedTransaction::Bitcoin {
        psbt: psbt.to_base64(),
        tx_hex,
        txid: psbt.txid(),
        signed_inputs: plan.to_sign.iter().map(|t| t.input).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_psbt_needs_a_taproot_wallet_and_a_real_psbt() {
        let s = SignSettings::default();
        let key = format!("02{}", "11".repeat(32));
        let e = derive(SignFormat::BitcoinPsbt, vec![1], Curve::Ed25519, &key, &s);
        assert_eq!(
            e.unwrap_err(),
            PayloadError::WrongCurve {
                wallet: Curve::Ed25519,
                needs: Curve::Secp256k1
            }
        );
        let e = derive(
            SignFormat::BitcoinPsbt,
            b"psbt".to_vec(),
            Curve::Secp256k1,
            &key,
            &s,
        );
        assert_eq!(e.unwrap_err(), PayloadError::Psbt(PsbtError::BadMagic));
        // A message is signed as it is, with nothing to review.
        let d = derive(SignFormat::Message, b"hi".to_vec(), Curve::Ed25519, "", &s).unwrap();
        assert_eq!(d.finish(&[vec![0; 64]]), Ok(None));
        assert_eq!((d.messages, d.review), (vec![b"hi".to_vec()], None));
    }

    #[test]
    fn ethereum_payloads_are_hashed_by_the_signer() {
        let s = SignSettings::default();
        let key = format!("02{}", "11".repeat(32));
        let ecdsa = Curve::Secp256k1Ecdsa;
        // Raw bytes are refused: an ECDSA wallet would sign a handed hash.
        let e = derive(SignFormat::Message, vec![0; 32], ecdsa, &key, &s);
        assert_eq!(e.unwrap_err(), PayloadError::NeedsEthereumFormat);
        // A FROST wallet signs no Ethereum payload, and the reverse.
        let e = derive(
            SignFormat::EthereumMessage,
            b"hi".to_vec(),
            Curve::Secp256k1,
            &key,
            &s,
        );
        assert!(matches!(e, Err(PayloadError::WrongCurve { .. })));
        let e = derive(SignFormat::BitcoinPsbt, vec![1], ecdsa, &key, &s);
        assert!(matches!(e, Err(PayloadError::WrongCurve { .. })));
        let d = derive(SignFormat::EthereumMessage, b"hi".to_vec(), ecdsa, &key, &s).unwrap();
        assert_eq!(
            d.messages,
            vec![ethereum::personal_message_hash(b"hi").to_vec()]
        );
        assert_eq!(d.ethereum_signature([0; 65])[64], 27);
        let tx = Eip1559Tx {
            chain_id: 1,
            nonce: 0,
            max_priority_fee_per_gas: 1,
            max_fee_per_gas: 2,
            gas: 21_000,
            to: Some([3; 20]),
            value: 5,
            data: vec![],
            access_list: vec![],
        };
        let d = derive(
            SignFormat::EthereumTransaction,
            tx.unsigned_bytes(),
            ecdsa,
            &key,
            &s,
        )
        .unwrap();
        assert_eq!(d.messages, vec![tx.signing_hash().to_vec()]);
        assert!(matches!(d.review, Some(Review::Ethereum(_))));
        let mut sig = [0u8; 65];
        sig[64] = 1;
        assert_eq!(d.ethereum_signature(sig)[64], 1, "y parity as it is");
        match d.finish(&[sig.to_vec()]) {
            Ok(Some(SignedTransaction::Ethereum { raw_tx, tx_hash })) => {
                let raw = hex::decode(&raw_tx[2..]).unwrap();
                assert_eq!(raw, tx.signed_bytes(&sig));
                assert_eq!(
                    tx_hash,
                    format!("0x{}", hex::encode(ethereum::keccak(&raw)))
                );
            }
            other => panic!("{other:?}"),
        }
        let e = derive(
            SignFormat::EthereumTransaction,
            vec![2, 0xc0],
            ecdsa,
            &key,
            &s,
        );
        assert!(matches!(e, Err(PayloadError::Ethereum(_))));
    }

    #[test]
    fn a_solana_message_is_signed_in_the_wallets_slot() {
        let s = SignSettings::default();
        let wallet = [7u8; 32];
        let to = [9u8; 32];
        let msg = solana::transfer_message(&wallet, &to, 5, &[1; 32], None);
        let e = derive(
            SignFormat::SolanaTransaction,
            msg.clone(),
            Curve::Secp256k1,
            &hex::encode(wallet),
            &s,
        );
        assert!(matches!(e, Err(PayloadError::WrongCurve { .. })));
        // Someone else's transfer: the wallet is no signer of it.
        let other = solana::transfer_message(&to, &wallet, 5, &[1; 32], None);
        let e = derive(
            SignFormat::SolanaTransaction,
            other,
            Curve::Ed25519,
            &hex::encode(wallet),
            &s,
        );
        assert_eq!(
            e.unwrap_err(),
            PayloadError::Solana(SolanaError::NotASigner)
        );
        let d = derive(
            SignFormat::SolanaTransaction,
            msg.clone(),
            Curve::Ed25519,
            &hex::encode(wallet),
            &s,
        )
        .unwrap();
        assert_eq!(d.messages, vec![msg.clone()]);
        assert!(matches!(d.review, Some(Review::Solana(_))));
        let Some(SignedTransaction::Solana { transaction, .. }) = d.finish(&[vec![3; 64]]).unwrap()
        else {
            panic!("no Solana transaction");
        };
        let signed = SolanaTx::from_base64(&transaction).unwrap();
        assert_eq!(signed.signatures(), &[[3u8; 64]]);
        assert_eq!(signed.message_bytes(), &msg[..]);
    }
}
