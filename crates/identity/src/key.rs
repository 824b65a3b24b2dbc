//! The identity key pair. The secret half never prints and is zeroized on
//! drop (ed25519-dalek's `zeroize` feature); the public half prints as hex
//! and as a short fingerprint for comparing out of band.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::Error;

/// A node's long-term Ed25519 identity key.
#[derive(Clone)]
pub struct IdentityKey(SigningKey);

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityKey({})", self.public_key().fingerprint())
    }
}

impl IdentityKey {
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        IdentityKey(SigningKey::generate(rng))
    }

    /// The key whose secret is `seed` (the 32-byte RFC 8032 private key).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let seed = Zeroizing::new(seed);
        IdentityKey(SigningKey::from_bytes(&seed))
    }

    /// The 32-byte secret, for the keystore to encrypt or store.
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `statement` (build it with [`crate::statement`]).
    pub fn sign(&self, statement: &[u8]) -> Signature {
        Signature(self.0.sign(statement).to_bytes())
    }
}

/// An identity public key; hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

/// How much of SHA-256 over a key its fingerprint shows.
pub const FINGERPRINT_BYTES: usize = 16;

impl PublicKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, Error> {
        VerifyingKey::from_bytes(bytes)
            .map(PublicKey)
            .map_err(|_| Error::BadPublicKey)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// 16 hex digits of SHA-256 over the key, in groups of four, for a
    /// person to compare out of band: `3f2a 9c01 77d4 e5b0`.
    pub fn fingerprint(&self) -> String {
        // 128 bits (review finding 17): 64 were too few against a targeted
        // second preimage. Eight groups of four hex digits, read aloud.
        let d = Sha256::digest(self.0.as_bytes());
        let h = hex::encode(&d[..FINGERPRINT_BYTES]);
        let groups: Vec<&str> = h
            .as_bytes()
            .chunks(4)
            .filter_map(|g| std::str::from_utf8(g).ok())
            .collect();
        groups.join(" ")
    }

    /// Checks `sig` over `statement` (strict: no malleable or small-order
    /// signatures).
    pub fn verify(&self, statement: &[u8], sig: &Signature) -> Result<(), Error> {
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        self.0
            .verify_strict(statement, &sig)
            .map_err(|_| Error::BadSignature)
    }

    /// As [`PublicKey::verify`], with the signature in hex.
    pub fn verify_hex(&self, statement: &[u8], sig_hex: &str) -> Result<(), Error> {
        self.verify(statement, &sig_hex.parse()?)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl FromStr for PublicKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut b).map_err(|_| Error::BadPublicKey)?;
        PublicKey::from_bytes(&b)
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A 64-byte Ed25519 signature; hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", &self.to_hex()[..16])
    }
}

impl FromStr for Signature {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut b = [0u8; 64];
        hex::decode_to_slice(s, &mut b).map_err(|_| Error::BadSignatureEncoding)?;
        Ok(Signature(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_fingerprint() {
        let k = IdentityKey::from_seed([1; 32]).public_key();
        assert_eq!(k.to_hex().parse::<PublicKey>().unwrap(), k);
        let fp = k.fingerprint();
        // 128 bits: eight groups of four hex digits.
        let groups: Vec<&str> = fp.split(' ').collect();
        assert_eq!(groups.len(), 8, "{fp}");
        assert!(groups.iter().all(|g| g.len() == 4), "{fp}");
        let digest = hex::encode(Sha256::digest(k.0.as_bytes()));
        assert_eq!(fp.replace(' ', ""), digest[..32], "{fp}");
        assert_ne!(
            fp,
            IdentityKey::from_seed([2; 32]).public_key().fingerprint()
        );
        assert_eq!("zz".parse::<PublicKey>(), Err(Error::BadPublicKey));
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let k = IdentityKey::from_seed([9; 32]);
        let dbg = format!("{k:?}");
        assert!(!dbg.contains(&hex::encode([9u8; 32])), "{dbg}");
        assert!(!dbg.contains(&hex::encode(k.to_seed().as_slice())), "{dbg}");
    }

    #[test]
    fn tampered_signature_fails() {
        let k = IdentityKey::from_seed([3; 32]);
        let mut sig = k.sign(b"m");
        k.public_key().verify(b"m", &sig).unwrap();
        sig.0[5] ^= 1;
        assert_eq!(k.public_key().verify(b"m", &sig), Err(Error::BadSignature));
        assert_eq!(
            k.public_key().verify_hex(b"m", "abc"),
            Err(Error::BadSignatureEncoding)
        );
    }
}
