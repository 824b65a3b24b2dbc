//! What a finished DKG hands to the driver: the node's key share and the
//! group's public data, with the curve chosen at run time.
//!
//! The secret half ([`SecretKeyPackage`]) never prints itself: its `Debug`
//! is redacted, and frost zeroizes the signing share when it is dropped.

use std::collections::BTreeMap;

use mpc_protocol::peer::{Curve, SignFormat};
use zeroize::Zeroizing;

use crate::payload::SignedTransaction;

/// A frost key package for one of the supported curves.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyPackage {
    /// A secp256k1 package, for Taproot (BIP340) signatures.
    Secp256k1(frost_secp256k1_tr::keys::KeyPackage),
    /// An ed25519 package.
    Ed25519(frost_ed25519::keys::KeyPackage),
    /// A DKLs23 share, for Ethereum's ECDSA.
    Secp256k1Ecdsa(EcdsaShare),
}

/// A frost public key package (group key plus every verifying share).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKeyPackage {
    /// A secp256k1 package, for Taproot (BIP340) signatures.
    Secp256k1(frost_secp256k1_tr::keys::PublicKeyPackage),
    /// An ed25519 package.
    Ed25519(frost_ed25519::keys::PublicKeyPackage),
    /// DKLs23's group key and verifying shares.
    Secp256k1Ecdsa(EcdsaPublic),
}

/// This node's DKLs23 party state: the key share and the multiplication
/// setup with every other party. Never printed; wiped when dropped (by
/// dkls23 itself).
#[derive(Clone)]
pub struct EcdsaShare(Box<dkls23_secp256k1::Party>);

impl EcdsaShare {
    pub(crate) fn new(party: dkls23_secp256k1::Party) -> Self {
        EcdsaShare(Box::new(party))
    }

    pub(crate) fn party(&self) -> &dkls23_secp256k1::Party {
        &self.0
    }

    /// The group key, 33 bytes of compressed SEC1.
    pub fn group_public_key(&self) -> Vec<u8> {
        use k256::elliptic_curve::sec1::ToSec1Point;
        self.0.pk.to_sec1_point(true).as_bytes().to_vec()
    }

    /// [`ECDSA_SHARE_HEADER`], then dkls23's party state in postcard.
    #[allow(clippy::expect_used)] // dkls23's own state always serializes
    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(ECDSA_SHARE_HEADER.to_vec());
        let body =
            Zeroizing::new(postcard::to_allocvec(&*self.0).expect("serializable DKLs23 party"));
        out.extend_from_slice(&body);
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let body = versioned(bytes, ECDSA_SHARE_HEADER, "share")?;
        postcard::from_bytes(body)
            .map(EcdsaShare::new)
            .map_err(|_| "not a secp256k1-ecdsa key package".into())
    }
}

/// What an ECDSA share's stored bytes start with: "dkls", then the
/// version of the layout after it (1: dkls23-secp256k1 0.6's `Party`,
/// postcard). A later dkls23 whose state differs gets a new version, so
/// an old reader refuses it by name instead of misreading it.
pub const ECDSA_SHARE_HEADER: &[u8] = b"dkls\x01";

/// The stored form of an ECDSA public key package: the same header
/// scheme, then dkls23's `PublicKeyPackage` as JSON.
pub const ECDSA_PUBLIC_HEADER: &[u8] = b"dkls\x01";

/// `bytes` after `header`, or which version they claim if not this one.
fn versioned<'a>(bytes: &'a [u8], header: &[u8], what: &str) -> Result<&'a [u8], String> {
    let Some((version, magic)) = header.split_last() else {
        return Err("empty header".into());
    };
    match bytes.strip_prefix(header) {
        Some(body) => Ok(body),
        None => match bytes.strip_prefix(magic).and_then(|r| r.first()) {
            Some(v) => Err(format!(
                "a DKLs23 {what} of format version {v}; this program reads version {version}"
            )),
            None => Err(format!("not a secp256k1-ecdsa {what}: no DKLs23 header")),
        },
    }
}

impl PartialEq for EcdsaShare {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.to_bytes().ct_eq(&other.to_bytes()).into()
    }
}

impl Eq for EcdsaShare {}

/// DKLs23's public key package: the group key and each party's share of it.
#[derive(Clone, Debug)]
pub struct EcdsaPublic(Box<dkls23_secp256k1::PublicKeyPackage>);

impl EcdsaPublic {
    pub(crate) fn new(package: dkls23_secp256k1::PublicKeyPackage) -> Self {
        EcdsaPublic(Box::new(package))
    }

    /// [`ECDSA_PUBLIC_HEADER`], then dkls23's package as JSON.
    #[allow(clippy::expect_used)] // dkls23's own package always serializes
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = ECDSA_PUBLIC_HEADER.to_vec();
        out.extend(serde_json::to_vec(&*self.0).expect("serializable DKLs23 package"));
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let body = versioned(bytes, ECDSA_PUBLIC_HEADER, "public key package")?;
        serde_json::from_slice(body)
            .map(EcdsaPublic::new)
            .map_err(|_| "not a secp256k1-ecdsa public key package".into())
    }

    fn group_public_key(&self) -> Vec<u8> {
        use k256::elliptic_curve::sec1::ToSec1Point;
        self.0
            .verifying_key()
            .to_sec1_point(true)
            .as_bytes()
            .to_vec()
    }
}

impl PartialEq for EcdsaPublic {
    fn eq(&self, other: &Self) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}

impl Eq for EcdsaPublic {}

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

    /// The curve this share is on.
    pub fn curve(&self) -> Curve {
        match self.0 {
            KeyPackage::Secp256k1(_) => Curve::Secp256k1,
            KeyPackage::Ed25519(_) => Curve::Ed25519,
            KeyPackage::Secp256k1Ecdsa(_) => Curve::Secp256k1Ecdsa,
        }
    }

    /// frost's own serialization, in a buffer that is wiped when dropped.
    #[allow(clippy::expect_used)] // a package frost made, never peer input
    pub fn serialize(&self) -> Zeroizing<Vec<u8>> {
        // Serializing a package frost produced cannot fail.
        Zeroizing::new(match &self.0 {
            KeyPackage::Secp256k1(k) => k.serialize().expect("serializable key package"),
            KeyPackage::Ed25519(k) => k.serialize().expect("serializable key package"),
            KeyPackage::Secp256k1Ecdsa(k) => return k.to_bytes(),
        })
    }
}

impl std::fmt::Debug for SecretKeyPackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKeyPackage({}, <redacted>)", self.curve())
    }
}

impl SecretKeyPackage {
    /// Reads frost's serialization (as stored in the keystore).
    pub fn deserialize(curve: Curve, bytes: &[u8]) -> Result<Self, String> {
        let bad = format!("not a {curve} key package");
        let inner = match curve {
            Curve::Secp256k1 => frost_secp256k1_tr::keys::KeyPackage::deserialize(bytes)
                .map(KeyPackage::Secp256k1)
                .map_err(|_| bad.clone())?,
            Curve::Ed25519 => frost_ed25519::keys::KeyPackage::deserialize(bytes)
                .map(KeyPackage::Ed25519)
                .map_err(|_| bad.clone())?,
            Curve::Secp256k1Ecdsa => KeyPackage::Secp256k1Ecdsa(EcdsaShare::from_bytes(bytes)?),
        };
        Ok(SecretKeyPackage(inner))
    }
}

impl PublicKeyPackage {
    /// Reads frost's serialization (as stored in the keystore metadata).
    pub fn deserialize(curve: Curve, bytes: &[u8]) -> Result<Self, String> {
        let bad = format!("not a {curve} public key package");
        Ok(match curve {
            Curve::Secp256k1 => frost_secp256k1_tr::keys::PublicKeyPackage::deserialize(bytes)
                .map(PublicKeyPackage::Secp256k1)
                .map_err(|_| bad.clone())?,
            Curve::Ed25519 => frost_ed25519::keys::PublicKeyPackage::deserialize(bytes)
                .map(PublicKeyPackage::Ed25519)
                .map_err(|_| bad.clone())?,
            Curve::Secp256k1Ecdsa => {
                PublicKeyPackage::Secp256k1Ecdsa(EcdsaPublic::from_bytes(bytes)?)
            }
        })
    }

    /// Hex of the group verifying key, as `wallet_created` and the keystore
    /// carry it.
    pub fn group_public_key(&self) -> String {
        let bytes = match self {
            PublicKeyPackage::Secp256k1(p) => p.verifying_key().serialize().ok(),
            PublicKeyPackage::Ed25519(p) => p.verifying_key().serialize().ok(),
            PublicKeyPackage::Secp256k1Ecdsa(p) => Some(p.group_public_key()),
        };
        hex::encode(bytes.unwrap_or_default())
    }

    /// frost's own serialization.
    #[allow(clippy::expect_used)] // a package frost made, never peer input
    pub fn serialize(&self) -> Vec<u8> {
        match self {
            PublicKeyPackage::Secp256k1(p) => p.serialize().expect("serializable package"),
            PublicKeyPackage::Ed25519(p) => p.serialize().expect("serializable package"),
            PublicKeyPackage::Secp256k1Ecdsa(p) => p.to_bytes(),
        }
    }
}

/// A wallet share produced by one successful DKG or refresh session.
#[derive(Clone, Debug)]
pub struct WalletResult {
    /// The DKG session that made the wallet.
    pub session_id: String,
    /// The wallet's curve.
    pub curve: Curve,
    /// How many participants it takes to sign.
    pub threshold: u16,
    /// Sorted: everyone who holds a share.
    pub participants: Vec<String>,
    /// This node's FROST identifier.
    pub identifier: u16,
    /// Every participant's FROST identifier (see [`SigningWallet`]).
    pub identifiers: BTreeMap<String, u16>,
    /// 0 from a key generation; a refresh makes the next.
    pub generation: u32,
    /// This node's secret key share.
    pub key_package: SecretKeyPackage,
    /// The group key and every participant's verifying share.
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
            Curve::Ed25519 | Curve::Secp256k1Ecdsa => None,
        }
    }
}

/// What a signer needs of a wallet: its public data and this node's
/// secret key package. `Debug` never shows the key package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningWallet {
    /// The wallet's curve.
    pub curve: Curve,
    /// How many participants it takes to sign.
    pub threshold: u16,
    /// Sorted: everyone who holds a share.
    pub participants: Vec<String>,
    /// Each participant's FROST identifier: its 1-based position in the
    /// participants of the key generation, kept when a refresh removes
    /// others.
    pub identifiers: BTreeMap<String, u16>,
    /// How many refreshes the shares have been through: shares of
    /// different generations do not combine.
    pub generation: u32,
    /// Hex of the group verifying key.
    pub group_public_key: String,
    /// The group key and every participant's verifying share.
    pub public_key_package: PublicKeyPackage,
    /// This node's secret key share.
    pub key_package: SecretKeyPackage,
}

impl SigningWallet {
    /// From a keystore's fields: curve, threshold, participants, the hex
    /// public key package and the decrypted key package bytes. Checks that
    /// they belong together.
    pub fn from_parts(
        curve: Curve,
        threshold: u16,
        participants: Vec<String>,
        public_key_package_hex: &str,
        key_package: &[u8],
    ) -> Result<Self, String> {
        let public = hex::decode(public_key_package_hex)
            .map_err(|_| "public key package is not hex".to_string())
            .and_then(|b| PublicKeyPackage::deserialize(curve, &b))?;
        let key = SecretKeyPackage::deserialize(curve, key_package)?;
        let same_key = match (key.expose(), &public) {
            (KeyPackage::Secp256k1(k), PublicKeyPackage::Secp256k1(p)) => {
                k.verifying_key() == p.verifying_key()
            }
            (KeyPackage::Ed25519(k), PublicKeyPackage::Ed25519(p)) => {
                k.verifying_key() == p.verifying_key()
            }
            (KeyPackage::Secp256k1Ecdsa(k), PublicKeyPackage::Secp256k1Ecdsa(p)) => {
                k.group_public_key() == p.group_public_key()
            }
            _ => false,
        };
        if !same_key {
            return Err("key package and public key package disagree".into());
        }
        let mut participants = participants;
        participants.sort();
        Ok(SigningWallet {
            curve,
            threshold,
            identifiers: positions(&participants),
            generation: 0,
            participants,
            group_public_key: public.group_public_key(),
            public_key_package: public,
            key_package: key,
        })
    }
}

/// The identifiers of a key generation's sorted `participants`.
pub fn positions(participants: &[String]) -> BTreeMap<String, u16> {
    participants
        .iter()
        .zip(1u16..)
        .map(|(p, i)| (p.clone(), i))
        .collect()
}

impl SigningWallet {
    /// `participants`' FROST identifiers, in their order.
    pub fn identifiers_of(&self, participants: &[String]) -> Result<Vec<(String, u16)>, String> {
        participants
            .iter()
            .map(|p| {
                self.identifiers
                    .get(p)
                    .map(|i| (p.clone(), *i))
                    .ok_or_else(|| format!("{p} is not a wallet participant"))
            })
            .collect()
    }
}

impl From<&WalletResult> for SigningWallet {
    fn from(w: &WalletResult) -> Self {
        SigningWallet {
            curve: w.curve,
            threshold: w.threshold,
            identifiers: w.identifiers.clone(),
            generation: w.generation,
            participants: w.participants.clone(),
            group_public_key: w.group_public_key.clone(),
            public_key_package: w.public_key_package.clone(),
            key_package: w.key_package.clone(),
        }
    }
}

/// A signature every signer aggregated and verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureResult {
    /// The signing session.
    pub session_id: String,
    /// The wallet's curve.
    pub curve: Curve,
    /// Hex of the group verifying key.
    pub group_public_key: String,
    /// The proposal's bytes: the message signed, or the transaction.
    pub message: Vec<u8>,
    /// What `message` is.
    pub format: SignFormat,
    /// Sorted peer ids of the signers.
    pub signers: Vec<String>,
    /// 64 bytes: BIP340 (x-only R, s) for secp256k1, R || s for ed25519;
    /// for several messages, their signatures concatenated.
    pub signature: Vec<u8>,
    /// Each message's signature, in order.
    pub signatures: Vec<Vec<u8>>,
    /// For a transaction: it, with the signatures in place.
    pub transaction: Option<SignedTransaction>,
}
