//! Between the core's results and wallet files: seal a finished DKG's share
//! into a [`KeyShareFile`], and open one back into a wallet that can sign.
//! The CLI and the extension both go through here, so their files are the
//! same.

use std::collections::BTreeMap;

use mpc_core::wallet::{positions, PublicKeyPackage};
use mpc_core::{SigningWallet, WalletResult};
use mpc_protocol::peer::Curve;

use crate::{wallet_id, KeyShareFile, KeystoreError, Metadata, Secret};

/// The wallet file for `wallet`, held by `peer_id`, created at `created_at`
/// (Unix seconds), its share encrypted with `passphrase` at scrypt
/// work factor `log_n`.
pub fn seal_wallet(
    wallet: &WalletResult,
    peer_id: &str,
    created_at: u64,
    passphrase: &str,
    log_n: u8,
) -> Result<KeyShareFile, KeystoreError> {
    let meta = Metadata {
        id: wallet_id(&wallet.group_public_key),
        curve: wallet.curve.to_string(),
        threshold: wallet.threshold,
        participants: wallet.participants.clone(),
        // Written only once positions no longer give them.
        identifiers: if wallet.identifiers == positions(&wallet.participants) {
            BTreeMap::new()
        } else {
            wallet.identifiers.clone()
        },
        generation: wallet.generation,
        peer_id: peer_id.to_string(),
        group_public_key: wallet.group_public_key.clone(),
        public_key_package: hex::encode(wallet.public_key_package.serialize()),
        session_id: wallet.session_id.clone(),
        created_at,
    };
    let secret = Secret::new(wallet.key_package.serialize().to_vec());
    KeyShareFile::seal(meta, &secret, passphrase, log_n)
}

/// Checks a file's cleartext against itself, without the passphrase: the
/// id is the group key's, and the group key is the one inside the public
/// key package, on the file's curve. An edited group key (and so address)
/// fails here. A file whose key and package were both replaced, with
/// another wallet's, passes: only the passphrase tells, since
/// [`KeyShareFile::open`] checks the metadata digest sealed with the share.
pub fn check_public(meta: &Metadata) -> Result<(), KeystoreError> {
    meta.check_id()?;
    let curve: Curve = meta.curve.parse().map_err(KeystoreError::Format)?;
    let package = hex::decode(&meta.public_key_package)
        .ok()
        .and_then(|b| PublicKeyPackage::deserialize(curve, &b).ok())
        .ok_or_else(|| KeystoreError::BadPublicKeyPackage(curve.to_string()))?;
    if !package
        .group_public_key()
        .eq_ignore_ascii_case(&meta.group_public_key)
    {
        return Err(KeystoreError::GroupKeyMismatch(
            meta.group_public_key.clone(),
        ));
    }
    Ok(())
}

/// Decrypts `file`'s share into a wallet the core can sign with.
pub fn open_signing_wallet(file: &KeyShareFile, passphrase: &str) -> Result<SigningWallet, String> {
    let m = &file.metadata;
    let curve: Curve = m.curve.parse()?;
    let secret = file
        .open(passphrase)
        .map_err(|e| format!("cannot open the key share of wallet {}: {e}", m.id))?;
    let mut w = SigningWallet::from_parts(
        curve,
        m.threshold,
        m.participants.clone(),
        &m.public_key_package,
        secret.key_package(),
    )
    .map_err(|e| format!("wallet {}: {e}", m.id))?;
    if !m.identifiers.is_empty() {
        w.identifiers = m.identifiers.clone();
    }
    w.generation = m.generation;
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wallet_id;

    /// The first node's file of a 2-of-2 wallet the simulator made.
    fn file(seed: u64) -> KeyShareFile {
        let report =
            mpc_core::sim::run(&mpc_core::sim::SimConfig::new(2, 2, Curve::Secp256k1, seed));
        let (id, outcome) = report.outcomes.iter().next().expect("a node");
        let mpc_core::sim::Outcome::Finished(w) = outcome else {
            panic!("{id}: {outcome:?}");
        };
        seal_wallet(w, id, 1, "pw", 10).expect("sealed")
    }

    #[test]
    fn the_group_key_must_be_the_one_in_the_package() {
        let (a, b) = (file(1), file(2));
        let (ma, mb) = (&a.metadata, &b.metadata);
        assert!(check_public(ma).is_ok());
        // The key (and address) edited, the id made to match it.
        let mut m = ma.clone();
        m.group_public_key = mb.group_public_key.clone();
        m.id = wallet_id(&m.group_public_key);
        assert!(matches!(
            check_public(&m),
            Err(KeystoreError::GroupKeyMismatch(k)) if k == mb.group_public_key
        ));
        let mut m = ma.clone();
        m.id = mb.id.clone();
        assert!(matches!(
            check_public(&m),
            Err(KeystoreError::IdMismatch { .. })
        ));
        let mut m = ma.clone();
        m.public_key_package = "00".into();
        assert!(matches!(
            check_public(&m),
            Err(KeystoreError::BadPublicKeyPackage(_))
        ));
        // Key, package and id all another wallet's: consistent cleartext;
        // only the passphrase tells.
        let mut swapped = a.clone();
        swapped.metadata.group_public_key = mb.group_public_key.clone();
        swapped.metadata.public_key_package = mb.public_key_package.clone();
        swapped.metadata.id = mb.id.clone();
        assert!(check_public(&swapped.metadata).is_ok());
        assert!(matches!(
            swapped.open("pw"),
            Err(KeystoreError::MetadataMismatch)
        ));
    }
}
