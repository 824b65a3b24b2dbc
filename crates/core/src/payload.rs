//! What a signing session signs, which every signer derives itself from
//! the proposal ("what you sign, you derive"): the message as it is, or the
//! BIP341 sighash of each PSBT input that pays the wallet. Also the decoded
//! review its user is shown, and the finished transaction once the
//! signatures exist. The CLI and the extension both get these from here.

use mpc_chain::bitcoin::{self, Plan, Psbt, PsbtError};
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
    /// A PSBT for a wallet that is not a Taproot (secp256k1) wallet.
    #[error("a Bitcoin transaction needs a secp256k1 (Taproot) wallet, not {0}")]
    WrongCurve(Curve),
    /// The group key has no Taproot output key.
    #[error("the group key is not a Taproot output key")]
    BadGroupKey,
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
}

impl std::fmt::Display for Review {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Review::Bitcoin(r) => r.fmt(f),
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
    /// For a PSBT: the input and sighash type of each message.
    plan: Option<Plan>,
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
        SignFormat::Message => Ok(Derived {
            format,
            messages: vec![payload.clone()],
            payload,
            review: None,
            plan: None,
        }),
        SignFormat::BitcoinPsbt => {
            if curve != Curve::Secp256k1 {
                return Err(PayloadError::WrongCurve(curve));
            }
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
                plan: Some(plan),
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
}

impl Derived {
    /// The transaction with `signatures` (one per message, 64 bytes each)
    /// in place; `None` for a plain message.
    pub fn finish(&self, signatures: &[Vec<u8>]) -> Result<Option<SignedTransaction>, PsbtError> {
        let Some(plan) = &self.plan else {
            return Ok(None);
        };
        let mut psbt = Psbt::from_bytes(&self.payload)?;
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
        Ok(Some(SignedTransaction::Bitcoin {
            psbt: psbt.to_base64(),
            tx_hex,
            txid: psbt.txid(),
            signed_inputs: plan.to_sign.iter().map(|t| t.input).collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_psbt_needs_a_taproot_wallet_and_a_real_psbt() {
        let s = SignSettings::default();
        let key = format!("02{}", "11".repeat(32));
        let e = derive(SignFormat::BitcoinPsbt, vec![1], Curve::Ed25519, &key, &s);
        assert_eq!(e.unwrap_err(), PayloadError::WrongCurve(Curve::Ed25519));
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
}
