//! Addresses for a wallet's group public key.
//!
//! * secp256k1 wallets → a Bitcoin Taproot (P2TR, bech32m) address. frost's
//!   secp256k1-tr DKG already applied the BIP341 key-path tweak, so the
//!   group key *is* the output key Q and is encoded as it is. Tweaking it
//!   again (`Address::p2tr`) would give an address nobody can spend from.
//! * ed25519 wallets → a Solana address (base58 of the 32-byte key).
//!
//! There is no Ethereum address: a Schnorr key can't sign Ethereum
//! transactions.
//!
//! ```
//! use mpc_address::{solana_address, taproot_address, Network};
//! assert_eq!(solana_address(&"00".repeat(32)).unwrap(), "11111111111111111111111111111111");
//! let q = "a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c";
//! assert_eq!(
//!     taproot_address(q, Network::Bitcoin).unwrap(),
//!     "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"
//! );
//! ```

use serde::{Deserialize, Serialize};

/// Which Bitcoin network an address is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    #[default]
    Bitcoin,
    Testnet,
    Signet,
    Regtest,
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bitcoin" | "mainnet" => Ok(Network::Bitcoin),
            "testnet" => Ok(Network::Testnet),
            "signet" => Ok(Network::Signet),
            "regtest" => Ok(Network::Regtest),
            _ => Err(format!(
                "unknown network {s:?} (expected mainnet, testnet, signet or regtest)"
            )),
        }
    }
}

impl Network {
    fn hrp(self) -> &'static str {
        match self {
            Network::Bitcoin => "bc",
            Network::Testnet | Network::Signet => "tb",
            Network::Regtest => "bcrt",
        }
    }
}

/// Why a key can't be turned into an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("group key is not hex")]
    NotHex,
    #[error("group key has {0} bytes; expected {1}")]
    Length(usize, &'static str),
    #[error("group key is not a valid secp256k1 point")]
    NotOnCurve,
    #[error("unknown curve {0:?}")]
    UnknownCurve(String),
}

/// The x-only output key Q from a 33-byte compressed or 32-byte x-only key.
pub fn taproot_output_key(group_key_hex: &str) -> Result<[u8; 32], AddressError> {
    let bytes = hex::decode(group_key_hex).map_err(|_| AddressError::NotHex)?;
    let x = match bytes.len() {
        33 if bytes[0] == 2 || bytes[0] == 3 => &bytes[1..],
        32 => &bytes[..],
        n => return Err(AddressError::Length(n, "33 (compressed) or 32 (x-only)")),
    };
    Ok(x.try_into().expect("32 bytes"))
}

/// The P2TR address whose witness program is the group key's x coordinate.
pub fn taproot_address(group_key_hex: &str, network: Network) -> Result<String, AddressError> {
    let q = taproot_output_key(group_key_hex)?;
    #[cfg(not(target_arch = "wasm32"))]
    {
        native::p2tr(&q, network)
    }
    #[cfg(target_arch = "wasm32")]
    {
        Ok(bech32m_p2tr(&q, network))
    }
}

/// Segwit v1 with the bech32 crate alone (no libsecp256k1). Doesn't check
/// that Q is on the curve; DKG output always is.
pub fn bech32m_p2tr(q: &[u8; 32], network: Network) -> String {
    let hrp = bech32::Hrp::parse(network.hrp()).expect("valid hrp");
    bech32::segwit::encode_v1(hrp, q).expect("32-byte program")
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::{AddressError, Network};
    use bitcoin::key::{TweakedPublicKey, XOnlyPublicKey};

    pub fn p2tr(q: &[u8; 32], network: Network) -> Result<String, AddressError> {
        let xonly = XOnlyPublicKey::from_slice(q).map_err(|_| AddressError::NotOnCurve)?;
        // frost-secp256k1-tr's DKG already tweaked the key: do not tweak again.
        let output_key = TweakedPublicKey::dangerous_assume_tweaked(xonly);
        let net = match network {
            Network::Bitcoin => bitcoin::Network::Bitcoin,
            Network::Testnet => bitcoin::Network::Testnet,
            Network::Signet => bitcoin::Network::Signet,
            Network::Regtest => bitcoin::Network::Regtest,
        };
        Ok(bitcoin::Address::p2tr_tweaked(output_key, net).to_string())
    }
}

/// A Solana address: base58 of the 32-byte Ed25519 public key.
pub fn solana_address(group_key_hex: &str) -> Result<String, AddressError> {
    let bytes = hex::decode(group_key_hex).map_err(|_| AddressError::NotHex)?;
    if bytes.len() != 32 {
        return Err(AddressError::Length(bytes.len(), "32"));
    }
    Ok(bs58::encode(bytes).into_string())
}

/// The addresses shown for a wallet, as printed in `--json` output.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addresses {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitcoin_taproot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solana: Option<String>,
}

/// Addresses for a wallet on `curve` (`"secp256k1"` or `"ed25519"`).
pub fn addresses(
    curve: &str,
    group_key_hex: &str,
    network: Network,
) -> Result<Addresses, AddressError> {
    match curve {
        "secp256k1" => Ok(Addresses {
            bitcoin_taproot: Some(taproot_address(group_key_hex, network)?),
            solana: None,
        }),
        "ed25519" => Ok(Addresses {
            bitcoin_taproot: None,
            solana: Some(solana_address(group_key_hex)?),
        }),
        other => Err(AddressError::UnknownCurve(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    // BIP86 test vector: m/86'/0'/0'/0/0.
    const BIP86_Q: &str = "a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c";
    const BIP86_ADDR: &str = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr";

    #[test]
    fn witness_program_is_q_itself() {
        for prefix in ["02", "03", ""] {
            let addr = taproot_address(&format!("{prefix}{BIP86_Q}"), Network::Bitcoin).unwrap();
            assert_eq!(addr, BIP86_ADDR);
            let parsed = bitcoin::Address::from_str(&addr)
                .unwrap()
                .require_network(bitcoin::Network::Bitcoin)
                .unwrap();
            let spk = parsed.script_pubkey();
            assert!(spk.is_p2tr());
            // OP_1 PUSH32 <Q>
            assert_eq!(hex::encode(&spk.as_bytes()[2..]), BIP86_Q);
        }
    }

    #[test]
    fn wasm_path_agrees_with_rust_bitcoin() {
        let q: [u8; 32] = hex::decode(BIP86_Q).unwrap().try_into().unwrap();
        for net in [
            Network::Bitcoin,
            Network::Testnet,
            Network::Signet,
            Network::Regtest,
        ] {
            assert_eq!(
                bech32m_p2tr(&q, net),
                taproot_address(BIP86_Q, net).unwrap()
            );
        }
        assert!(taproot_address(BIP86_Q, Network::Regtest)
            .unwrap()
            .starts_with("bcrt1p"));
        assert!(taproot_address(BIP86_Q, Network::Testnet)
            .unwrap()
            .starts_with("tb1p"));
    }

    #[test]
    fn bad_keys_are_clear_errors() {
        assert_eq!(
            taproot_address("zz", Network::Bitcoin),
            Err(AddressError::NotHex)
        );
        assert!(matches!(
            taproot_address("0011", Network::Bitcoin),
            Err(AddressError::Length(2, _))
        ));
        // x = 0 is not on the curve.
        assert_eq!(
            taproot_address(&"00".repeat(32), Network::Bitcoin),
            Err(AddressError::NotOnCurve)
        );
        assert!(solana_address(&"00".repeat(33)).is_err());
        assert!(addresses("p256", "00", Network::Bitcoin).is_err());
        assert!("mainnet".parse::<Network>().is_ok());
        assert!("litecoin".parse::<Network>().is_err());
    }

    #[test]
    fn solana_vector() {
        // The system program id is the all-zero key.
        assert_eq!(
            solana_address(&"00".repeat(32)).unwrap(),
            "11111111111111111111111111111111"
        );
        let a = addresses("ed25519", &"00".repeat(32), Network::Bitcoin).unwrap();
        assert_eq!(
            a.solana.as_deref(),
            Some("11111111111111111111111111111111")
        );
        assert_eq!(a.bitcoin_taproot, None);
    }
}
