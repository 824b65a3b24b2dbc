//! The extension's identity key, kept inside the wasm (review finding 14).
//!
//! The seed is sealed with AES-GCM under a non-extractable WebCrypto key
//! that the extension keeps in IndexedDB. JavaScript holds only that key's
//! handle and the sealed record (`{v, iv, ciphertext, public_key}`, hex);
//! this module calls `crypto.subtle` itself, copies the plaintext into wasm
//! memory, and zeroes the buffer WebCrypto returned before anything else
//! runs. What JavaScript gets back is an opaque [`Identity`]: its public
//! key, its fingerprint, and [`crate::WasmNode::new`], which signs with it.
//! No exported function returns a seed.

use js_sys::{ArrayBuffer, Object, Promise, Reflect, Uint8Array};
use mpc_core::IdentityKey;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use zeroize::Zeroizing;

/// Sealed records this code writes: the raw 32-byte seed, with [`AAD`].
/// Version 1 (no `v`, written before) sealed the seed's hex text, without
/// additional data; it still opens.
pub const RECORD_VERSION: u64 = 2;
/// Bound into every version-2 record, so no other AES-GCM ciphertext under
/// the same key passes for an identity.
const AAD: &[u8] = b"mpc-wallet/extension-identity/v2";

/// An identity key inside the wasm; JavaScript only holds this handle.
#[wasm_bindgen]
pub struct Identity {
    pub(crate) key: IdentityKey,
    record: String,
}

#[wasm_bindgen]
impl Identity {
    /// The identity public key (hex).
    pub fn public_key(&self) -> String {
        self.key.public_key().to_hex()
    }

    /// The fingerprint users compare out of band.
    pub fn fingerprint(&self) -> String {
        self.key.public_key().fingerprint()
    }

    /// The sealed record to store (ciphertext and public key only).
    pub fn sealed_record(&self) -> String {
        self.record.clone()
    }
}

/// A sealed identity record, parsed.
#[derive(Debug, PartialEq)]
pub struct Record {
    pub version: u64,
    pub iv: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub public_key: String,
}

/// Parses a stored record; says what is wrong with a damaged one.
pub fn parse_record(text: &str) -> Result<Record, String> {
    let v: Value = serde_json::from_str(text)
        .map_err(|_| "the stored identity is not a record".to_string())?;
    let field = |k: &str| {
        v[k].as_str()
            .and_then(|s| hex::decode(s).ok())
            .ok_or_else(|| format!("the stored identity's {k} is missing or damaged"))
    };
    let version = v["v"].as_u64().unwrap_or(1);
    if version > RECORD_VERSION {
        return Err(format!(
            "the stored identity has format {version}, newer than this extension understands"
        ));
    }
    let iv = field("iv")?;
    if iv.len() != 12 {
        return Err("the stored identity's iv is damaged".into());
    }
    let public_key = v["public_key"]
        .as_str()
        .filter(|k| k.parse::<mpc_core::PublicKey>().is_ok())
        .ok_or("the stored identity's public key is missing or damaged")?
        .to_string();
    Ok(Record {
        version,
        iv,
        ciphertext: field("ciphertext")?,
        public_key,
    })
}

/// The key in a record's plaintext, checked against the record's public
/// key (a record whose halves do not belong together is refused).
pub fn key_from_plaintext(record: &Record, plain: &[u8]) -> Result<IdentityKey, String> {
    let mut seed = Zeroizing::new([0u8; 32]);
    let ok = match record.version {
        1 => hex::decode_to_slice(plain, seed.as_mut()).is_ok(),
        _ if plain.len() == 32 => {
            seed.copy_from_slice(plain);
            true
        }
        _ => false,
    };
    if !ok {
        return Err("the stored identity opened, but holds no key (damaged)".into());
    }
    let key = IdentityKey::from_seed(*seed);
    if key.public_key().to_hex() != record.public_key {
        return Err(
            "the stored identity opened to another key than its record names (tampered with?)"
                .into(),
        );
    }
    Ok(key)
}

/// The record for a freshly sealed key.
pub fn record_json(iv: &[u8], ciphertext: &[u8], key: &IdentityKey) -> String {
    json!({
        "v": RECORD_VERSION,
        "iv": hex::encode(iv),
        "ciphertext": hex::encode(ciphertext),
        "public_key": key.public_key().to_hex(),
    })
    .to_string()
}

#[wasm_bindgen]
extern "C" {
    type Subtle;
    #[wasm_bindgen(method, catch)]
    fn encrypt(
        this: &Subtle,
        algorithm: &Object,
        key: &JsValue,
        data: &Uint8Array,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn decrypt(
        this: &Subtle,
        algorithm: &Object,
        key: &JsValue,
        data: &Uint8Array,
    ) -> Result<Promise, JsValue>;
}

fn js_err(what: &str, e: JsValue) -> JsError {
    let detail = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_default();
    JsError::new(&format!("{what}: {detail}"))
}

fn subtle() -> Result<Subtle, JsError> {
    let crypto =
        Reflect::get(&js_sys::global(), &"crypto".into()).map_err(|e| js_err("no WebCrypto", e))?;
    let subtle = Reflect::get(&crypto, &"subtle".into()).map_err(|e| js_err("no WebCrypto", e))?;
    if subtle.is_undefined() {
        return Err(JsError::new("no WebCrypto (crypto.subtle) here"));
    }
    Ok(subtle.unchecked_into())
}

fn aes_gcm(iv: &[u8], version: u64) -> Result<Object, JsError> {
    let p = Object::new();
    let set = |k: &str, v: &JsValue| {
        Reflect::set(&p, &k.into(), v).map_err(|e| js_err("AES-GCM parameters", e))
    };
    set("name", &"AES-GCM".into())?;
    set("iv", &Uint8Array::from(iv).into())?;
    if version >= 2 {
        set("additionalData", &Uint8Array::from(AAD).into())?;
    }
    Ok(p)
}

/// Opens a sealed identity `record` with `wrap_key` (the non-extractable
/// AES-GCM `CryptoKey`). The plaintext never reaches JavaScript code: it is
/// copied into wasm memory and WebCrypto's buffer is zeroed.
#[wasm_bindgen]
pub async fn open_identity(wrap_key: JsValue, record: String) -> Result<Identity, JsError> {
    let r = parse_record(&record).map_err(|e| JsError::new(&e))?;
    let promise = subtle()?
        .decrypt(
            &aes_gcm(&r.iv, r.version)?,
            &wrap_key,
            &Uint8Array::from(r.ciphertext.as_slice()),
        )
        .map_err(|e| js_err("the stored identity cannot be opened", e))?;
    let plain: ArrayBuffer = JsFuture::from(promise)
        .await
        .map_err(|_| {
            JsError::new(
                "the stored identity does not open with this browser's key \
                 (the key was replaced, or the record is damaged)",
            )
        })?
        .unchecked_into();
    let view = Uint8Array::new(&plain);
    let mut bytes = Zeroizing::new(vec![0u8; view.length() as usize]);
    view.copy_to(&mut bytes);
    view.fill(0, 0, view.length());
    let key = key_from_plaintext(&r, &bytes).map_err(|e| JsError::new(&e))?;
    Ok(Identity { key, record })
}

/// A new identity key, drawn and sealed here under `wrap_key`; store its
/// [`Identity::sealed_record`]. The seed goes to WebCrypto in a buffer that
/// is zeroed as soon as `encrypt` has copied it (synchronously, by the
/// WebCrypto spec).
#[wasm_bindgen]
pub async fn create_identity(wrap_key: JsValue) -> Result<Identity, JsError> {
    let key = IdentityKey::generate(&mut rand_core::OsRng);
    let mut iv = [0u8; 12];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut iv);
    let (subtle, params) = (subtle()?, aes_gcm(&iv, RECORD_VERSION)?);
    let data = Uint8Array::new_with_length(32);
    data.copy_from(key.to_seed().as_slice());
    let sent = subtle.encrypt(&params, &wrap_key, &data);
    data.fill(0, 0, 32);
    let promise = sent.map_err(|e| js_err("cannot seal the new identity", e))?;
    let ct: ArrayBuffer = JsFuture::from(promise)
        .await
        .map_err(|e| js_err("cannot seal the new identity", e))?
        .unchecked_into();
    let record = record_json(&iv, &Uint8Array::new(&ct).to_vec(), &key);
    Ok(Identity { key, record })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> IdentityKey {
        IdentityKey::from_seed([7; 32])
    }

    #[test]
    fn records_of_both_versions_open_to_their_key_only() {
        let k = key();
        let v2 = parse_record(&record_json(&[1; 12], &[2; 48], &k)).unwrap();
        assert_eq!(v2.version, 2);
        let seed = k.to_seed();
        assert_eq!(
            key_from_plaintext(&v2, seed.as_slice())
                .unwrap()
                .public_key(),
            k.public_key()
        );
        // Version 1 (no "v"): the seed's hex text.
        let v1 = parse_record(
            &json!({"iv": hex::encode([1; 12]), "ciphertext": "00",
                    "public_key": k.public_key().to_hex()})
            .to_string(),
        )
        .unwrap();
        assert_eq!(v1.version, 1);
        let text = hex::encode(seed.as_slice());
        assert!(key_from_plaintext(&v1, text.as_bytes()).is_ok());
        // Another key's seed, or a wrong length, is refused.
        let other = IdentityKey::from_seed([8; 32]).to_seed();
        assert!(key_from_plaintext(&v2, other.as_slice())
            .unwrap_err()
            .contains("another key"));
        assert!(key_from_plaintext(&v2, &[0; 31])
            .unwrap_err()
            .contains("damaged"));
    }

    #[test]
    fn damaged_records_say_what_is_wrong() {
        let pk = key().public_key().to_hex();
        for (record, says) in [
            ("nonsense".to_string(), "not a record"),
            (
                json!({"v": 2, "iv": "00", "ciphertext": "00", "public_key": pk}).to_string(),
                "iv",
            ),
            (
                json!({"v": 2, "iv": hex::encode([0; 12]), "public_key": pk}).to_string(),
                "ciphertext",
            ),
            (
                json!({"v": 2, "iv": hex::encode([0; 12]), "ciphertext": "00"}).to_string(),
                "public key",
            ),
            (
                json!({"v": 3, "iv": hex::encode([0; 12]), "ciphertext": "00", "public_key": pk})
                    .to_string(),
                "newer",
            ),
        ] {
            let e = parse_record(&record).unwrap_err();
            assert!(e.contains(says), "{record}: {e}");
        }
    }
}
