//! Wallet files on disk: one `<id>.json` per wallet in a directory, each
//! written atomically (temporary file, fsync, rename) with mode 0600.
//! Beside them: the node's identity key (`identity.key`, 0600, created on
//! first use) and its address book of pinned peer keys (`known_peers`).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mpc_identity::{IdentityKey, KnownPeers, PublicKey};
use zeroize::Zeroizing;

use crate::{Confirmation, KeyShareFile, KeystoreError};

/// The node's identity key file in a keystore directory.
pub const IDENTITY_FILE: &str = "identity.key";

/// The subdirectory of refreshed shares not yet confirmed everywhere.
const PENDING_DIR: &str = "pending";
/// The address book of pinned peer keys.
pub const KNOWN_PEERS_FILE: &str = "known_peers";

/// One entry of [`Keystore::list`]: a file and whether it parsed.
pub type Listed = (PathBuf, Result<KeyShareFile, KeystoreError>);

/// A directory of wallet files.
#[derive(Clone, Debug)]
pub struct Keystore {
    dir: PathBuf,
}

impl Keystore {
    /// Opens (creating, mode 0700) the directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Keystore, KeystoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        Ok(Keystore { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes a wallet atomically to `<id>.json`, once the id is its group
    /// key's (so it is 16 hex digits, and names no other path). Refuses to
    /// replace an existing wallet with the same id, so a share is never
    /// overwritten.
    pub fn save(&self, file: &KeyShareFile) -> Result<PathBuf, KeystoreError> {
        file.metadata.check_id()?;
        let path = self.path_of(&file.metadata.id);
        if path.exists() {
            return Err(KeystoreError::Io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "wallet {} already exists at {}",
                    file.metadata.id,
                    path.display()
                ),
            )));
        }
        write_atomic(&path, file.to_json().as_bytes())?;
        Ok(path)
    }

    /// Records a stored wallet's confirmation (atomically). Only that field
    /// changes: the share and metadata on disk stay as they are.
    pub fn set_confirmation(
        &self,
        id: &str,
        confirmation: Confirmation,
    ) -> Result<PathBuf, KeystoreError> {
        let path = self.path_of(id);
        let mut file = KeyShareFile::from_json(&fs::read_to_string(&path)?)?;
        file.confirmation = Some(confirmation);
        write_atomic(&path, file.to_json().as_bytes())?;
        Ok(path)
    }

    /// Rewrites a stored wallet (atomically) with new public data: a
    /// participant added by a repair. The file must exist already.
    pub fn replace(&self, file: &KeyShareFile) -> Result<PathBuf, KeystoreError> {
        file.metadata.check_id()?;
        let path = self.path_of(&file.metadata.id);
        if !path.exists() {
            return Err(not_found(format!(
                "wallet {} is not in this keystore",
                file.metadata.id
            )));
        }
        write_atomic(&path, file.to_json().as_bytes())?;
        Ok(path)
    }

    /// Where a refresh's new share waits (in `pending/`, which `list`
    /// does not read) until every participant stored theirs.
    pub fn pending_path(&self, id: &str) -> PathBuf {
        self.dir.join(PENDING_DIR).join(format!("{id}.json"))
    }

    /// Writes a refresh's new share as pending, next to the current one,
    /// which stays in use. A later pending share of the wallet replaces
    /// an earlier one.
    pub fn save_pending(&self, file: &KeyShareFile) -> Result<PathBuf, KeystoreError> {
        file.metadata.check_id()?;
        let current = self.path_of(&file.metadata.id);
        if !current.exists() {
            return Err(not_found(format!(
                "wallet {} is not in this keystore: nothing to refresh",
                file.metadata.id
            )));
        }
        let dir = self.dir.join(PENDING_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let path = self.pending_path(&file.metadata.id);
        write_atomic(&path, file.to_json().as_bytes())?;
        Ok(path)
    }

    /// The pending share of wallet `id`, if a refresh left one.
    pub fn pending(&self, id: &str) -> Result<Option<KeyShareFile>, KeystoreError> {
        match fs::read_to_string(self.pending_path(id)) {
            Ok(text) => KeyShareFile::from_json(&text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes the pending share of `id` (of `generation`) current: one
    /// rename replaces the old file, so a crash leaves one or the other,
    /// whole. The old share is gone after this.
    pub fn promote(&self, id: &str, generation: u32) -> Result<PathBuf, KeystoreError> {
        let pending = self.pending_path(id);
        let mut file = self
            .pending(id)?
            .ok_or_else(|| not_found(format!("wallet {id} has no pending share")))?;
        if file.metadata.generation != generation {
            return Err(not_found(format!(
                "wallet {id}'s pending share is of generation {}, not {generation}",
                file.metadata.generation
            )));
        }
        file.confirmation = Some(Confirmation::Confirmed);
        write_atomic(&pending, file.to_json().as_bytes())?;
        let path = self.path_of(id);
        fs::rename(&pending, &path)?;
        File::open(&self.dir)?.sync_all()?;
        Ok(path)
    }

    /// Every wallet file in the directory, sorted by creation time.
    /// Unreadable files are reported, not skipped silently.
    pub fn list(&self) -> Result<Vec<Listed>, KeystoreError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let parsed = fs::read_to_string(&path)
                .map_err(KeystoreError::from)
                .and_then(|t| KeyShareFile::from_json(&t));
            out.push((path, parsed));
        }
        out.sort_by_key(|(p, f)| {
            (
                f.as_ref().map(|f| f.metadata.created_at).unwrap_or(0),
                p.clone(),
            )
        });
        Ok(out)
    }

    /// Finds a wallet by id, by id prefix, or by group public key.
    pub fn find(&self, query: &str) -> Result<(PathBuf, KeyShareFile), KeystoreError> {
        let q = query.to_ascii_lowercase();
        let matches: Vec<_> = self
            .list()?
            .into_iter()
            .filter_map(|(p, f)| f.ok().map(|f| (p, f)))
            .filter(|(_, f)| {
                f.metadata.id == q
                    || f.metadata.group_public_key == q
                    || (q.len() >= 4 && f.metadata.id.starts_with(&q))
            })
            .collect();
        match matches.len() {
            1 => Ok(matches.into_iter().next().expect("one")),
            0 => Err(not_found(format!("no wallet matches {query:?}"))),
            n => Err(not_found(format!(
                "{n} wallets match {query:?}; give more of the id"
            ))),
        }
    }
}

impl Keystore {
    /// This node's identity key, generated and stored (0600) on first use.
    /// Two processes starting at once end up with the same key: the file
    /// is linked into place only if it does not exist yet.
    pub fn identity(&self) -> Result<IdentityKey, KeystoreError> {
        let path = self.dir.join(IDENTITY_FILE);
        if !path.exists() {
            let key = IdentityKey::generate(&mut rand_core::OsRng);
            let text = Zeroizing::new(format!(
                "{{\"version\":1,\"type\":\"ed25519\",\"public_key\":\"{}\",\"secret_key\":\"{}\"}}\n",
                key.public_key().to_hex(),
                hex::encode(key.to_seed().as_slice())
            ));
            let tmp = self
                .dir
                .join(format!(".{IDENTITY_FILE}.new-{}", std::process::id()));
            write_atomic(&tmp, text.as_bytes())?;
            let linked = fs::hard_link(&tmp, &path);
            let _ = fs::remove_file(&tmp);
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            }
        }
        let text = Zeroizing::new(fs::read_to_string(&path)?);
        parse_identity(&text)
            .map_err(|e| KeystoreError::Format(format!("identity key {}: {e}", path.display())))
    }

    /// The pinned peer keys (empty if none were pinned yet).
    pub fn known_peers(&self) -> Result<KnownPeers, KeystoreError> {
        let path = self.dir.join(KNOWN_PEERS_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => KnownPeers::parse(&text)
                .map_err(|e| KeystoreError::Format(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KnownPeers::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Pins `key` for `peer` (re-reading the file first, so pins made by
    /// another process meanwhile are kept); returns the key it replaced.
    pub fn pin(&self, peer: &str, key: PublicKey) -> Result<Option<PublicKey>, KeystoreError> {
        let mut known = self.known_peers()?;
        let old = known.pin(peer, key);
        self.save_known_peers(&known)?;
        Ok(old)
    }

    /// Forgets `peer`'s pinned key; returns it.
    pub fn forget(&self, peer: &str) -> Result<Option<PublicKey>, KeystoreError> {
        let mut known = self.known_peers()?;
        let old = known.forget(peer);
        self.save_known_peers(&known)?;
        Ok(old)
    }

    pub fn save_known_peers(&self, known: &KnownPeers) -> Result<(), KeystoreError> {
        Ok(write_atomic(
            &self.dir.join(KNOWN_PEERS_FILE),
            known.to_text().as_bytes(),
        )?)
    }
}

fn parse_identity(text: &str) -> Result<IdentityKey, String> {
    // Borrowed from `text` (which the caller zeroizes): no secret copy.
    #[derive(serde::Deserialize)]
    struct File<'a> {
        version: u32,
        #[serde(rename = "type")]
        kind: String,
        public_key: String,
        secret_key: &'a str,
    }
    let f: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if f.version != 1 || f.kind != "ed25519" {
        return Err(format!(
            "unsupported identity file (version {}, type {})",
            f.version, f.kind
        ));
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(f.secret_key, seed.as_mut())
        .map_err(|_| "secret_key is not 32 bytes of hex".to_string())?;
    let key = IdentityKey::from_seed(*seed);
    if key.public_key().to_hex() != f.public_key.to_ascii_lowercase() {
        return Err("public_key does not match secret_key".into());
    }
    Ok(key)
}

fn not_found(msg: String) -> KeystoreError {
    KeystoreError::Io(std::io::Error::new(std::io::ErrorKind::NotFound, msg))
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or
/// the complete new one: write a 0600 temporary file in the same directory,
/// fsync it, rename it over, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("wallet");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Metadata, Secret};

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mpc-keystore-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn save_is_0600_atomic_and_never_overwrites() {
        let dir = tempdir("save");
        let ks = Keystore::open(&dir).unwrap();
        let f =
            KeyShareFile::seal(Metadata::example(), &Secret::new(vec![1, 2]), "pw", 10).unwrap();
        let path = ks.save(&f).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let err = ks.save(&f).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let (_, found) = ks.find(&f.metadata.group_public_key).unwrap();
        assert_eq!(found, f);
        let (_, found) = ks.find(&f.metadata.id[..6]).unwrap();
        assert_eq!(found.open("pw").unwrap().key_package(), &[1, 2]);
        assert!(ks.find("ffff").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn save_refuses_an_id_that_is_not_the_group_keys() {
        let dir = tempdir("traversal");
        let inner = dir.join("a/b");
        let ks = Keystore::open(&inner).unwrap();
        for id in ["../../evil", "0123456789abcdef"] {
            let mut meta = Metadata::example();
            meta.id = id.into();
            let f = KeyShareFile::seal(meta, &Secret::new(vec![1]), "pw", 10).unwrap();
            assert!(
                matches!(ks.save(&f), Err(KeystoreError::IdMismatch { .. })),
                "{id}"
            );
        }
        assert!(!dir.join("evil.json").exists());
        assert_eq!(fs::read_dir(&inner).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn identity_is_created_once_and_kept() {
        let dir = tempdir("identity");
        let ks = Keystore::open(&dir).unwrap();
        let a = ks.identity().unwrap();
        let b = ks.identity().unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let path = dir.join(IDENTITY_FILE);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Not mistaken for a wallet.
        assert!(ks.list().unwrap().is_empty());
        // A damaged file is an error, never silently replaced.
        fs::write(&path, "{}").unwrap();
        assert!(ks
            .identity()
            .unwrap_err()
            .to_string()
            .contains("identity key"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pins_persist() {
        let dir = tempdir("pins");
        let ks = Keystore::open(&dir).unwrap();
        assert!(ks.known_peers().unwrap().is_empty());
        let k1 = IdentityKey::from_seed([1; 32]).public_key();
        let k2 = IdentityKey::from_seed([2; 32]).public_key();
        assert_eq!(ks.pin("cli1", k1).unwrap(), None);
        assert_eq!(ks.pin("cli1", k2).unwrap(), Some(k1));
        assert_eq!(ks.known_peers().unwrap().get("cli1"), Some(&k2));
        assert_eq!(ks.forget("cli1").unwrap(), Some(k2));
        assert!(ks.known_peers().unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn list_reports_broken_files() {
        let dir = tempdir("list");
        let ks = Keystore::open(&dir).unwrap();
        fs::write(dir.join("junk.json"), "{}").unwrap();
        let all = ks.list().unwrap();
        assert_eq!(all.len(), 1);
        assert!(all[0].1.is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
