//! Addresses for a wallet's group public key.
//!
//! * secp256k1 wallets → a Bitcoin Taproot (P2TR, bech32m) address. frost's
//!   secp256k1-tr DKG already applied the BIP341 key-path tweak, so the
//!   group key *is* the output key Q and is encoded as it is. Tweaking it
//!   again (`Address::p2tr`) would give an address nobody can spend from.
//! * ed25519 wallets → a Solana address (base58 of the 32-byte key).
//!
//! * secp256k1-ecdsa wallets (DKLs23) → an Ethereum address: the last 20
//!   bytes of keccak256 of the uncompressed key, in EIP-55 checksum form.
//!   A FROST (Schnorr) key has none: it can't sign Ethereum transactions.
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

mod descriptor;
pub use descriptor::{descriptor_checksum, rawtr_descriptor};

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

/// The address of any standard output script, or `None` for scripts that
/// have none (OP_RETURN, bare multisig, P2PK, anything non-standard):
///
/// * P2PKH, P2SH: base58check with the network's version byte;
/// * segwit v0 (20- or 32-byte program): bech32 (BIP173);
/// * segwit v1..=v16 (2..=40-byte program): bech32m (BIP350).
///
/// Pure Rust, so a signer shows the same addresses in wasm32.
pub fn script_address(script_pubkey: &[u8], network: Network) -> Option<String> {
    // (P2PKH, P2SH) version bytes.
    let (pkh, sh) = match network {
        Network::Bitcoin => (0x00, 0x05),
        Network::Testnet | Network::Signet | Network::Regtest => (0x6f, 0xc4),
    };
    let base58 =
        |version: u8, hash: &[u8]| bs58::encode(hash).with_check_version(version).into_string();
    match script_pubkey {
        // OP_DUP OP_HASH160 <20> OP_EQUALVERIFY OP_CHECKSIG
        [0x76, 0xa9, 0x14, hash @ .., 0x88, 0xac] if hash.len() == 20 => Some(base58(pkh, hash)),
        // OP_HASH160 <20> OP_EQUAL
        [0xa9, 0x14, hash @ .., 0x87] if hash.len() == 20 => Some(base58(sh, hash)),
        // OP_n <direct push of the whole rest>: a witness program (BIP141).
        [op, len, program @ ..] if usize::from(*len) == program.len() => {
            let version = match *op {
                0x00 => 0,
                0x51..=0x60 => op - 0x50,
                _ => return None,
            };
            let hrp = bech32::Hrp::parse(network.hrp()).ok()?;
            let version = bech32::Fe32::try_from(version).ok()?;
            // Refuses v0 programs other than 20 or 32 bytes, and any
            // outside 2..=40.
            bech32::segwit::encode(hrp, version, program).ok()
        }
        _ => None,
    }
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethereum: Option<String>,
}

/// An address in EIP-55 mixed-case checksum form.
pub fn eip55(address: &[u8; 20]) -> String {
    use sha3::{Digest, Keccak256};
    let lower = hex::encode(address);
    let hash = Keccak256::digest(lower.as_bytes());
    let mut out = String::from("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = hash
            .get(i / 2)
            .map_or(0, |b| if i % 2 == 0 { b >> 4 } else { b & 0x0f });
        out.push(if c.is_ascii_alphabetic() && nibble >= 8 {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    out
}

/// The 20-byte Ethereum address of a 33-byte compressed secp256k1 key.
pub fn ethereum_address_bytes(group_key_hex: &str) -> Result<[u8; 20], AddressError> {
    use k256::elliptic_curve::sec1::{FromSec1Point, ToSec1Point};
    use sha3::{Digest, Keccak256};
    let bytes = hex::decode(group_key_hex).map_err(|_| AddressError::NotHex)?;
    if bytes.len() != 33 {
        return Err(AddressError::Length(bytes.len(), "33 (compressed)"));
    }
    let point = k256::Sec1Point::from_bytes(&bytes).map_err(|_| AddressError::NotOnCurve)?;
    let affine: Option<k256::AffinePoint> = k256::AffinePoint::from_sec1_point(&point).into();
    let affine = affine.ok_or(AddressError::NotOnCurve)?;
    let full = affine.to_sec1_point(false);
    let hash = Keccak256::digest(full.as_bytes().get(1..).unwrap_or_default());
    let mut a = [0u8; 20];
    a.copy_from_slice(hash.get(12..).unwrap_or(&[0; 20]));
    Ok(a)
}

/// The EIP-55 Ethereum address of a 33-byte compressed secp256k1 key.
pub fn ethereum_address(group_key_hex: &str) -> Result<String, AddressError> {
    ethereum_address_bytes(group_key_hex).map(|a| eip55(&a))
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
            ..Addresses::default()
        }),
        "ed25519" => Ok(Addresses {
            solana: Some(solana_address(group_key_hex)?),
            ..Addresses::default()
        }),
        "secp256k1-ecdsa" => Ok(Addresses {
            ethereum: Some(ethereum_address(group_key_hex)?),
            ..Addresses::default()
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
    fn ethereum_address_of_a_known_key() {
        // The secp256k1 generator G (private key 1): its address is
        // well known.
        let g = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
        assert_eq!(
            ethereum_address(g).unwrap(),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
        );
        assert_eq!(
            ethereum_address("02"),
            Err(AddressError::Length(1, "33 (compressed)"))
        );
        assert!(ethereum_address(&"05".repeat(33)).is_err());
    }

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

    const NETWORKS: [Network; 4] = [
        Network::Bitcoin,
        Network::Testnet,
        Network::Signet,
        Network::Regtest,
    ];

    fn rust_bitcoin_net(n: Network) -> bitcoin::Network {
        match n {
            Network::Bitcoin => bitcoin::Network::Bitcoin,
            Network::Testnet => bitcoin::Network::Testnet,
            Network::Signet => bitcoin::Network::Signet,
            Network::Regtest => bitcoin::Network::Regtest,
        }
    }

    #[test]
    fn script_addresses_agree_with_rust_bitcoin() {
        let h20 = [0x5au8; 20];
        let h32 = [0xa5u8; 32];
        let mut scripts: Vec<(&str, Vec<u8>)> = vec![
            (
                "p2pkh",
                [&[0x76, 0xa9, 0x14][..], &h20, &[0x88, 0xac]].concat(),
            ),
            ("p2sh", [&[0xa9, 0x14][..], &h20, &[0x87]].concat()),
            ("p2wpkh", [&[0x00, 0x14][..], &h20].concat()),
            ("p2wsh", [&[0x00, 0x20][..], &h32].concat()),
            ("p2tr", [&[0x51, 0x20][..], &h32].concat()),
            ("v1 short", vec![0x51, 0x02, 0xab, 0xcd]),
            ("v16 40 bytes", [&[0x60, 0x28][..], &[7; 40]].concat()),
        ];
        for v in 2..=15u8 {
            scripts.push(("future version", [&[0x50 + v, 0x10][..], &[v; 16]].concat()));
        }
        for net in NETWORKS {
            for (kind, spk) in &scripts {
                let ours = script_address(spk, net);
                let theirs = bitcoin::Address::from_script(
                    bitcoin::Script::from_bytes(spk),
                    rust_bitcoin_net(net),
                )
                .map(|a| a.to_string())
                .ok();
                assert!(ours.is_some(), "{kind} on {net:?}");
                assert_eq!(ours, theirs, "{kind} on {net:?}");
            }
        }
        // Known mainnet strings (BIP173's P2WPKH example and the genesis
        // coinbase key's hash as P2PKH).
        let wpkh = hex::decode("0014751e76e8199196d454941c45d1b3a323f1433bd6").unwrap();
        assert_eq!(
            script_address(&wpkh, Network::Bitcoin).as_deref(),
            Some("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")
        );
        let pkh = hex::decode("76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac").unwrap();
        assert_eq!(
            script_address(&pkh, Network::Bitcoin).as_deref(),
            Some("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
        );
        assert!(script_address(&pkh, Network::Testnet)
            .unwrap()
            .starts_with(['m', 'n']));
        let q: [u8; 32] = hex::decode(BIP86_Q).unwrap().try_into().unwrap();
        let p2tr = [&[0x51, 0x20][..], &q].concat();
        assert_eq!(
            script_address(&p2tr, Network::Bitcoin).as_deref(),
            Some(BIP86_ADDR)
        );
    }

    #[test]
    fn scripts_without_an_address() {
        let h20 = [1u8; 20];
        let none: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x6a, 0x04, 1, 2, 3, 4],           // OP_RETURN
            [&[0x00, 0x15][..], &[1; 21]].concat(), // v0, 21 bytes
            vec![0x51, 0x01, 0xaa],                 // v1, 1 byte
            [&[0x51, 0x29][..], &[1; 41]].concat(), // v1, 41 bytes
            [&[0x51, 0x20][..], &[1; 31]].concat(), // push longer than the rest
            [&[0x4f, 0x14][..], &h20].concat(),     // OP_1NEGATE is no version
            [&[0x76, 0xa9, 0x14][..], &h20, &[0x88]].concat(), // P2PKH missing CHECKSIG
            [&[0xa9, 0x14][..], &h20, &[0x87, 0x00]].concat(),
            [&[0x21][..], &[2; 33], &[0xac]].concat(), // P2PK
        ];
        for spk in none {
            assert_eq!(
                script_address(&spk, Network::Bitcoin),
                None,
                "{}",
                hex::encode(&spk)
            );
            assert!(bitcoin::Address::from_script(
                bitcoin::Script::from_bytes(&spk),
                bitcoin::Network::Bitcoin
            )
            .is_err());
        }
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
