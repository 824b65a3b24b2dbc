//! Between the core's results and wallet files: seal a finished DKG's share
//! into a [`KeyShareFile`], and open one back into a wallet that can sign.
//! The CLI and the extension both go through here, so their files are the
//! same.

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
        peer_id: peer_id.to_string(),
        group_public_key: wallet.group_public_key.clone(),
        public_key_package: hex::encode(wallet.public_key_package.serialize()),
        session_id: wallet.session_id.clone(),
        created_at,
    };
    let secret = Secret::new(wallet.key_package.serialize().to_vec());
    KeyShareFile::seal(meta, &secret, passphrase, log_n)
}

/// Decrypts `file`'s share into a wallet the core can sign with.
pub fn open_signing_wallet(file: &KeyShareFile, passphrase: &str) -> Result<SigningWallet, String> {
    let m = &file.metadata;
    let curve: Curve = m.curve.parse()?;
    let secret = file
        .open(passphrase)
        .map_err(|e| format!("cannot open the key share of wallet {}: {e}", m.id))?;
    SigningWallet::from_parts(
        curve,
        m.threshold,
        m.participants.clone(),
        &m.public_key_package,
        secret.key_package(),
    )
    .map_err(|e| format!("wallet {}: {e}", m.id))
}
