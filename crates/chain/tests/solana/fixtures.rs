//! The vectors of `vectors.json` (see `gen_vectors.py` for how they are
//! made), and small helpers to read their fields.

use serde_json::Value;

pub fn vectors() -> Vec<Value> {
    let all: Value = serde_json::from_str(include_str!("vectors.json")).unwrap();
    let list = all["vectors"].as_array().unwrap().clone();
    assert!(list.len() >= 10, "vectors.json has {} vectors", list.len());
    list
}

pub fn vector(name: &str) -> Value {
    vectors()
        .into_iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

pub fn bytes(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} missing")),
    )
    .unwrap()
}

pub fn array<const N: usize>(hex_str: &Value) -> [u8; N] {
    hex::decode(hex_str.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

/// The vector's wallet key (base58 in the file).
pub fn wallet(v: &Value) -> [u8; 32] {
    mpc_chain::solana::decode_address(v["wallet"].as_str().unwrap()).unwrap()
}
