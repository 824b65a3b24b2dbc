//! The wallet file, shared by the CLI and the browser extension.
//!
//! One versioned JSON document per wallet. Its metadata (curve, threshold,
//! participants, group key, …) is cleartext so wallets can be listed
//! without the passphrase. The key share is encrypted with `age`'s
//! passphrase recipient (scrypt) and ASCII-armored, so a user can always
//! recover it with the standard tool:
//!
//! ```text
//! jq -r .secret.age wallet.json | age -d > share.json
//! ```
//!
//! The encrypted payload also carries a digest of the metadata, so editing
//! the cleartext part is detected on open. The format is specified in
//! `docs/keystore.md`. This module does no file I/O; [`fs`] (native only)
//! adds atomic, 0600 writes.
//!
//! ```
//! use mpc_keystore::{Metadata, KeyShareFile, Secret};
//! let meta = Metadata::example();
//! let secret = Secret::new(b"frost key package bytes".to_vec());
//! let file = KeyShareFile::seal(meta, &secret, "correct horse", 10).unwrap();
//! let text = file.to_json();
//! let back = KeyShareFile::from_json(&text).unwrap();
//! assert_eq!(back.open("correct horse").unwrap().key_package(), b"frost key package bytes");
//! assert!(back.open("wrong").is_err());
//! ```

#[cfg(not(target_arch = "wasm32"))]
pub mod fs;

use std::collections::BTreeMap;
use std::io::{Read, Write};

use age::secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// The only format version this code writes; older readers refuse newer.
pub const FORMAT_VERSION: u32 = 1;
/// `kind` field value, to tell a wallet file from other JSON.
pub const KIND: &str = "mpc-wallet-key-share";
/// scrypt work factor (log2 N) for new files: about a second on a laptop,
/// the same target as `age -p`.
pub const DEFAULT_WORK_FACTOR: u8 = 18;
/// The most work a file may demand on open (a hostile file could otherwise
/// ask for hours of scrypt).
pub const MAX_WORK_FACTOR: u8 = 22;

/// What can go wrong reading or writing a wallet file.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error("not a wallet file: {0}")]
    Format(String),
    #[error(
        "wallet file version {0} is newer than this program understands (max {FORMAT_VERSION})"
    )]
    UnsupportedVersion(u32),
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("the encrypted key share is damaged or was tampered with")]
    Corrupt,
    #[error("the wallet's metadata does not match its encrypted key share (file tampered with?)")]
    MetadataMismatch,
    #[error("the file asks for scrypt work factor {0}, above the limit {MAX_WORK_FACTOR}")]
    ExcessiveWork(u8),
    /// The file's `id` is not the one its group key gives ([`wallet_id`]).
    /// The id names the file on disk, so it is never trusted on its own.
    #[error(
        "the wallet id {id:?} is not {expected}, the id of its group key (file tampered with?)"
    )]
    IdMismatch { id: String, expected: String },
    /// The public key package does not parse (for the file's curve).
    #[error("the public key package is not a valid {0} package (file tampered with?)")]
    BadPublicKeyPackage(String),
    /// `group_public_key` is not the group key inside the public key
    /// package: the cleartext was edited.
    #[error(
        "the group key {0} is not the one in the wallet's public key package (file tampered with?)"
    )]
    GroupKeyMismatch(String),
    #[error("passphrase must not be empty")]
    EmptyPassphrase,
    #[error("encryption failed: {0}")]
    Encrypt(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Cleartext facts about a wallet. Nothing here is secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Short stable id derived from the group key ([`wallet_id`]).
    pub id: String,
    /// `"secp256k1"` or `"ed25519"`.
    pub curve: String,
    pub threshold: u16,
    /// Sorted peer ids of everyone holding a share. Unless `identifiers`
    /// says otherwise, FROST identifier i+1 belongs to `participants[i]`.
    pub participants: Vec<String>,
    /// Each participant's FROST identifier, once a refresh removed someone
    /// (positions in `participants` no longer give them). Absent before.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub identifiers: BTreeMap<String, u16>,
    /// How many refreshes the share has been through (absent: 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
    /// This node's peer id.
    pub peer_id: String,
    /// Hex of the group verifying key (for secp256k1, the 33-byte
    /// compressed Taproot output key; for ed25519, 32 bytes).
    pub group_public_key: String,
    /// Hex of frost's serialized public key package (every verifying share).
    pub public_key_package: String,
    /// The DKG session that created it.
    pub session_id: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

impl Metadata {
    /// A filled-in example for docs and tests.
    pub fn example() -> Metadata {
        let group_public_key = "02".to_string() + &"ab".repeat(32);
        Metadata {
            id: wallet_id(&group_public_key),
            curve: "secp256k1".into(),
            threshold: 2,
            participants: vec!["chrome1".into(), "cli1".into(), "cli2".into()],
            identifiers: BTreeMap::new(),
            generation: 0,
            peer_id: "cli1".into(),
            group_public_key,
            public_key_package: "00".into(),
            session_id: "session123".into(),
            created_at: 1_790_000_000,
        }
    }

    /// Checks that `id` is the one `group_public_key` gives: anything else
    /// (`../../x`, another wallet's id) is refused before it names a file.
    pub fn check_id(&self) -> Result<(), KeystoreError> {
        let expected = wallet_id(&self.group_public_key);
        if self.id != expected {
            return Err(KeystoreError::IdMismatch {
                id: self.id.clone(),
                expected,
            });
        }
        Ok(())
    }

    /// SHA-256 over the canonical JSON of the metadata; sealed inside the
    /// encrypted payload so cleartext edits are caught.
    fn digest(&self) -> [u8; 32] {
        Sha256::digest(serde_json::to_vec(self).expect("serializable")).into()
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The id of a wallet: the first 16 hex digits of SHA-256(group key hex).
pub fn wallet_id(group_public_key_hex: &str) -> String {
    let d = Sha256::digest(group_public_key_hex.to_ascii_lowercase().as_bytes());
    hex::encode(&d[..8])
}

/// The decrypted secret: frost's serialized `KeyPackage`. Zeroized on drop
/// and never printed.
pub struct Secret {
    key_package: Zeroizing<Vec<u8>>,
}

impl Secret {
    pub fn new(key_package: Vec<u8>) -> Secret {
        Secret {
            key_package: Zeroizing::new(key_package),
        }
    }

    pub fn key_package(&self) -> &[u8] {
        &self.key_package
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The plaintext inside the age envelope.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// Hex of frost's serialized KeyPackage.
    key_package: String,
    /// Hex SHA-256 of the metadata it belongs to.
    metadata_sha256: String,
}

impl Drop for Sealed {
    fn drop(&mut self) {
        self.key_package.zeroize();
    }
}

/// The encrypted part of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedSecret {
    /// Always `"age-scrypt"`.
    pub encryption: String,
    /// ASCII-armored age file.
    pub age: String,
}

/// Whether every participant confirmed storing its share of the wallet
/// (review finding 4). Only then is it safe to fund. Outside the sealed
/// metadata digest, since it changes after sealing: the node's own record,
/// not proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Confirmation {
    /// This node stored its share; the others' confirmations are awaited.
    Pending,
    /// Every other participant confirmed.
    Confirmed,
    /// These participants never confirmed: do not fund.
    Unconfirmed { missing: Vec<String> },
}

impl std::fmt::Display for Confirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Confirmation::Pending => f.write_str("pending"),
            Confirmation::Confirmed => f.write_str("confirmed"),
            Confirmation::Unconfirmed { missing } => {
                write!(f, "UNCONFIRMED by {}: do not fund", missing.join(", "))
            }
        }
    }
}

/// A whole wallet file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyShareFile {
    pub version: u32,
    pub kind: String,
    #[serde(flatten)]
    pub metadata: Metadata,
    pub secret: EncryptedSecret,
    /// Absent in files written before confirmations were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Confirmation>,
}

impl KeyShareFile {
    /// Encrypts `secret` under `passphrase` with scrypt work factor
    /// `log_n` (use [`DEFAULT_WORK_FACTOR`] outside tests).
    pub fn seal(
        metadata: Metadata,
        secret: &Secret,
        passphrase: &str,
        log_n: u8,
    ) -> Result<KeyShareFile, KeystoreError> {
        if passphrase.is_empty() {
            return Err(KeystoreError::EmptyPassphrase);
        }
        let sealed = Sealed {
            key_package: hex::encode(secret.key_package()),
            metadata_sha256: hex::encode(metadata.digest()),
        };
        let plaintext = Zeroizing::new(serde_json::to_vec(&sealed).expect("serializable"));
        let mut recipient = age::scrypt::Recipient::new(SecretString::from(passphrase.to_owned()));
        recipient.set_work_factor(log_n);
        let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as _))
            .map_err(|e| KeystoreError::Encrypt(e.to_string()))?;
        let mut armored = Vec::with_capacity(plaintext.len() * 2 + 512);
        let mut writer = encryptor.wrap_output(age::armor::ArmoredWriter::wrap_output(
            &mut armored,
            age::armor::Format::AsciiArmor,
        )?)?;
        writer.write_all(&plaintext)?;
        writer.finish()?.finish()?;
        Ok(KeyShareFile {
            version: FORMAT_VERSION,
            kind: KIND.to_string(),
            metadata,
            secret: EncryptedSecret {
                encryption: "age-scrypt".into(),
                age: String::from_utf8(armored).expect("armor is ASCII"),
            },
            confirmation: None,
        })
    }

    /// Decrypts the key share and checks it belongs to this metadata.
    pub fn open(&self, passphrase: &str) -> Result<Secret, KeystoreError> {
        self.open_with_limit(passphrase, MAX_WORK_FACTOR)
    }

    fn open_with_limit(&self, passphrase: &str, max_log_n: u8) -> Result<Secret, KeystoreError> {
        let mut identity = age::scrypt::Identity::new(SecretString::from(passphrase.to_owned()));
        identity.set_max_work_factor(max_log_n);
        let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(
            self.secret.age.as_bytes(),
        ))
        .map_err(decrypt_error)?;
        let mut reader = decryptor
            .decrypt(std::iter::once(&identity as _))
            .map_err(decrypt_error)?;
        let mut plaintext = Zeroizing::new(Vec::new());
        reader
            .read_to_end(&mut plaintext)
            .map_err(|_| KeystoreError::Corrupt)?;
        let sealed: Sealed =
            serde_json::from_slice(&plaintext).map_err(|_| KeystoreError::Corrupt)?;
        let expected = hex::encode(self.metadata.digest());
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            sealed.metadata_sha256.as_bytes(),
            expected.as_bytes(),
        )) {
            return Err(KeystoreError::MetadataMismatch);
        }
        let bytes = hex::decode(&sealed.key_package).map_err(|_| KeystoreError::Corrupt)?;
        Ok(Secret::new(bytes))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serializable") + "\n"
    }

    /// Parses a wallet file, checking its kind, its version and that its id
    /// is its group key's.
    pub fn from_json(text: &str) -> Result<KeyShareFile, KeystoreError> {
        #[derive(Deserialize)]
        struct Head {
            version: Option<u32>,
            kind: Option<String>,
        }
        let head: Head =
            serde_json::from_str(text).map_err(|e| KeystoreError::Format(e.to_string()))?;
        if head.kind.as_deref() != Some(KIND) {
            return Err(KeystoreError::Format(format!("\"kind\" is not \"{KIND}\"")));
        }
        match head.version {
            Some(FORMAT_VERSION) => {}
            Some(v) => return Err(KeystoreError::UnsupportedVersion(v)),
            None => return Err(KeystoreError::Format("missing \"version\"".into())),
        }
        let file: KeyShareFile =
            serde_json::from_str(text).map_err(|e| KeystoreError::Format(e.to_string()))?;
        if file.secret.encryption != "age-scrypt" {
            return Err(KeystoreError::Format(format!(
                "unknown encryption {:?}",
                file.secret.encryption
            )));
        }
        file.metadata.check_id()?;
        Ok(file)
    }
}

fn decrypt_error(e: age::DecryptError) -> KeystoreError {
    match e {
        age::DecryptError::DecryptionFailed
        | age::DecryptError::KeyDecryptionFailed
        | age::DecryptError::NoMatchingKeys => KeystoreError::WrongPassphrase,
        age::DecryptError::ExcessiveWork { required, .. } => KeystoreError::ExcessiveWork(required),
        _ => KeystoreError::Corrupt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed() -> KeyShareFile {
        KeyShareFile::seal(Metadata::example(), &Secret::new(vec![7; 100]), "pw", 10).unwrap()
    }

    #[test]
    fn round_trip_through_json() {
        let f = sealed();
        let back = KeyShareFile::from_json(&f.to_json()).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.open("pw").unwrap().key_package(), &[7; 100][..]);
        assert!(f
            .secret
            .age
            .starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    }

    #[test]
    fn wrong_passphrase() {
        assert!(matches!(
            sealed().open("nope"),
            Err(KeystoreError::WrongPassphrase)
        ));
        assert!(matches!(
            KeyShareFile::seal(Metadata::example(), &Secret::new(vec![1]), "", 10),
            Err(KeystoreError::EmptyPassphrase)
        ));
    }

    #[test]
    fn tampered_metadata_is_detected() {
        let mut f = sealed();
        f.metadata.threshold = 3;
        assert!(matches!(f.open("pw"), Err(KeystoreError::MetadataMismatch)));
    }

    #[test]
    fn tampered_ciphertext_is_detected() {
        let f = sealed();
        // Flip one base64 character in the armored body.
        let mut lines: Vec<String> = f.secret.age.lines().map(str::to_owned).collect();
        let body = &mut lines[3];
        let c = body.remove(10);
        body.insert(10, if c == 'A' { 'B' } else { 'A' });
        let mut g = f.clone();
        g.secret.age = lines.join("\n") + "\n";
        let err = g.open("pw").unwrap_err();
        assert!(
            matches!(err, KeystoreError::Corrupt | KeystoreError::WrongPassphrase),
            "{err}"
        );
    }

    #[test]
    fn kind_and_version_are_checked() {
        let f = sealed();
        let mut v: serde_json::Value = serde_json::from_str(&f.to_json()).unwrap();
        v["version"] = 2.into();
        assert!(matches!(
            KeyShareFile::from_json(&v.to_string()),
            Err(KeystoreError::UnsupportedVersion(2))
        ));
        v["kind"] = "something".into();
        assert!(matches!(
            KeyShareFile::from_json(&v.to_string()),
            Err(KeystoreError::Format(_))
        ));
        assert!(KeyShareFile::from_json("{").is_err());
    }

    #[test]
    fn an_id_that_is_not_the_group_keys_is_refused() {
        let mut v: serde_json::Value = serde_json::from_str(&sealed().to_json()).unwrap();
        for id in ["../../evil", "0123456789abcdef", ""] {
            v["id"] = id.into();
            match KeyShareFile::from_json(&v.to_string()) {
                Err(KeystoreError::IdMismatch { id: got, expected }) => {
                    assert_eq!((got.as_str(), expected), (id, Metadata::example().id))
                }
                other => panic!("{id:?}: {other:?}"),
            }
        }
        // The id is the group key's, whatever the case of the key's hex.
        let mut m = Metadata::example();
        m.group_public_key = m.group_public_key.to_uppercase();
        assert!(m.check_id().is_ok());
    }

    #[test]
    fn excessive_work_factor_is_refused() {
        // A real 2^23 scrypt would need 8 GiB; the check is the same at any size.
        let f = KeyShareFile::seal(Metadata::example(), &Secret::new(vec![1]), "pw", 12).unwrap();
        assert!(matches!(
            f.open_with_limit("pw", 11),
            Err(KeystoreError::ExcessiveWork(12))
        ));
        assert!(f.open_with_limit("pw", 12).is_ok());
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new(vec![0xde, 0xad]);
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert!(!sealed().to_json().contains("0707070707"));
    }
}

pub mod wallet;
