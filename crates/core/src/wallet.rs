//! What a finished DKG hands to the driver: the node's key share and the
//! group's public data, with the curve chosen at run time.
//!
//! The secret half ([`SecretKeyPackage`]) never prints itself: its `Debug`
//! is redacted, and frost zeroizes the signing share when it is dropped.

use mpc_protocol::peer::Curve;
use zeroize::Zeroizing;

/// A frost key package for one of the supported curves.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyPackage {
    Secp256k1(frost_secp256k1_tr::keys::KeyPackage),
    Ed25519(frost_ed25519::keys::KeyPackage),
}

/// A frost public key package (group key plus every verifying share).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKeyPackage {
    Secp256k1(frost_secp256k1_tr::keys::PublicKeyPackage),
    Ed25519(frost_ed25519::keys::PublicKeyPackage),
}

/// This node's long-lived secret key share. `Debug` prints only the curve.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKeyPackage(KeyPackage);

impl SecretKeyPackage {
    pub(crate) fn new(inner: KeyPackage) -> Self {
        SecretKeyPackage(inner)
    }

    /// The key package itself, for signing or for the keystore.
    pub fn expose(&self) -> &KeyPackage {
        &self.0
    }

    pub fn curve(&self) -> Curve {
        match self.0 {
            KeyPackage::Secp256k1(_) => Curve::Secp256k1,
            KeyPackage::Ed25519(_) => Curve::Ed25519,
        }
    }

    /// frost's own serialization, in a buffer that is wiped when dropped.
    pub fn serialize(&self) -> Zeroizing<Vec<u8>> {
        // Serializing a package frost produced cannot fail.
        Zeroizing::new(match &self.0 {
            KeyPackage::Secp256k1(k) => k.serialize().expect("serializable key package"),
            KeyPackage::Ed25519(k) => k.serialize().expect("serializable key package"),
        })
    }
}

impl std::fmt::Debug for SecretKeyPackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKeyPackage({}, <redacted>)", self.curve())
    }
}

impl PublicKeyPackage {
    pub fn serialize(&self) -> Vec<u8> {
        match self {
            PublicKeyPackage::Secp256k1(p) => p.serialize().expect("serializable package"),
            PublicKeyPackage::Ed25519(p) => p.serialize().expect("serializable package"),
        }
    }
}

/// A wallet share produced by one successful DKG session.
#[derive(Clone, Debug)]
pub struct WalletResult {
    pub session_id: String,
    pub curve: Curve,
    pub threshold: u16,
    /// Sorted; FROST identifier `i` belongs to `participants[i - 1]`.
    pub participants: Vec<String>,
    /// This node's FROST identifier (1-based index in `participants`).
    pub identifier: u16,
    pub key_package: SecretKeyPackage,
    pub public_key_package: PublicKeyPackage,
    /// Hex of frost's group verifying key: 33-byte compressed SEC1 for
    /// secp256k1 (already the BIP341-tweaked Taproot output key), 32 bytes
    /// for ed25519.
    pub group_public_key: String,
    /// SHA-256 of the DKG transcript every participant agreed on.
    pub transcript_hash: String,
}

impl WalletResult {
    /// The 32-byte x-only Taproot output key (secp256k1 only), in hex.
    pub fn taproot_output_key(&self) -> Option<String> {
        match self.curve {
            Curve::Secp256k1 => self.group_public_key.get(2..).map(str::to_string),
            Curve::Ed25519 => None,
        }
    }
}
