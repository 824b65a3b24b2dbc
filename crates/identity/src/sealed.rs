//! End-to-end encryption of a DKG round-2 share to its recipient: each
//! node draws a fresh X25519 key per session, announces its public half in
//! its signed round-1 `commitment`, and shares travel as
//! `nonce ‖ XChaCha20-Poly1305(ciphertext)` under the X25519 shared key
//! (`crypto_box::ChaChaBox`). Both keys are fresh per session, so a
//! ciphertext opens only for its one recipient in its one session, and
//! only as coming from its one sender (the box authenticates both ends).

use crypto_box::aead::Aead;
use crypto_box::{ChaChaBox, Nonce};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::Error;

/// Name of the scheme, as carried on the wire.
pub const SCHEME: &str = "x25519-xchacha20poly1305";
const NONCE_LEN: usize = 24;

/// One session's encryption key pair. The secret is zeroized on drop.
pub struct SessionKey(crypto_box::SecretKey);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

impl SessionKey {
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut b = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(b.as_mut());
        SessionKey(crypto_box::SecretKey::from(*b))
    }

    pub fn public_bytes(&self) -> [u8; 32] {
        *self.0.public_key().as_bytes()
    }

    /// Encrypts `plaintext` to `recipient`.
    pub fn seal(
        &self,
        rng: &mut impl CryptoRngCore,
        recipient: &[u8; 32],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let b = ChaChaBox::new(&crypto_box::PublicKey::from(*recipient), &self.0);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let ct = b
            .encrypt(&Nonce::from(nonce), plaintext)
            .map_err(|_| Error::Decrypt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts what `sender` sealed to this key.
    pub fn open(&self, sender: &[u8; 32], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::Decrypt);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::Decrypt)?;
        let b = ChaChaBox::new(&crypto_box::PublicKey::from(*sender), &self.0);
        b.decrypt(&Nonce::from(nonce), ct)
            .map(Zeroizing::new)
            .map_err(|_| Error::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn round_trip_and_tamper() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let a = SessionKey::generate(&mut rng);
        let b = SessionKey::generate(&mut rng);
        let sealed = a
            .seal(&mut rng, &b.public_bytes(), b"secret share")
            .unwrap();
        assert!(!sealed.windows(12).any(|w| w == b"secret share"));
        let plain = b.open(&a.public_bytes(), &sealed).unwrap();
        assert_eq!(&plain[..], b"secret share");
        // Another recipient, another claimed sender, or a flipped bit: refused.
        let c = SessionKey::generate(&mut rng);
        assert_eq!(c.open(&a.public_bytes(), &sealed), Err(Error::Decrypt));
        assert_eq!(b.open(&c.public_bytes(), &sealed), Err(Error::Decrypt));
        let mut bad = sealed.clone();
        bad[30] ^= 1;
        assert_eq!(b.open(&a.public_bytes(), &bad), Err(Error::Decrypt));
        assert!(!format!("{a:?}").contains(&hex::encode(a.public_bytes())));
    }
}
