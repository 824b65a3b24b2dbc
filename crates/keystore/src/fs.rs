//! Wallet files on disk: one `<id>.json` per wallet in a directory, each
//! written atomically (temporary file, fsync, rename) with mode 0600.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{KeyShareFile, KeystoreError};

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

    /// Writes a wallet atomically. Refuses to replace an existing wallet
    /// with the same id, so a share is never overwritten.
    pub fn save(&self, file: &KeyShareFile) -> Result<PathBuf, KeystoreError> {
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
