//! The transaction object of Ethereum's JSON-RPC (`eth_sendTransaction`),
//! as a dApp hands it to a wallet: numbers as `0x` quantities, or plain
//! decimals. Fields a node can fill in (nonce, fees, gas) may be absent.

use serde_json::{Map, Value};

use super::{parse_address, AccessItem, Eip1559Tx, EthError, EIP1559};

/// A transaction request: [`Eip1559Tx`] with the fillable fields optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxRequest {
    /// The sender, if the request names one.
    pub from: Option<[u8; 20]>,
    /// The recipient; `None` deploys a contract.
    pub to: Option<[u8; 20]>,
    /// Wei sent (0 when absent).
    pub value: u128,
    /// Calldata (`data`, or `input`).
    pub data: Vec<u8>,
    /// EIP-155 chain id.
    pub chain_id: Option<u64>,
    /// The sender's nonce.
    pub nonce: Option<u64>,
    /// Gas limit (`gas`, or `gasLimit`).
    pub gas: Option<u64>,
    /// Fee cap per gas, in wei.
    pub max_fee_per_gas: Option<u128>,
    /// Tip per gas, in wei.
    pub max_priority_fee_per_gas: Option<u128>,
    /// EIP-2930 access list.
    pub access_list: Vec<AccessItem>,
}

impl TxRequest {
    /// The names of the fields still missing, in JSON-RPC spelling.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if self.chain_id.is_none() {
            m.push("chainId");
        }
        if self.nonce.is_none() {
            m.push("nonce");
        }
        if self.gas.is_none() {
            m.push("gas");
        }
        if self.max_fee_per_gas.is_none() {
            m.push("maxFeePerGas");
        }
        if self.max_priority_fee_per_gas.is_none() {
            m.push("maxPriorityFeePerGas");
        }
        m
    }

    /// The transaction, once every field is present.
    pub fn into_tx(self) -> Result<Eip1559Tx, EthError> {
        let missing = |field| EthError::Field {
            field,
            detail: "missing (give it, or --rpc to fill it in)".into(),
        };
        let tx = Eip1559Tx {
            chain_id: self.chain_id.ok_or_else(|| missing("chainId"))?,
            nonce: self.nonce.ok_or_else(|| missing("nonce"))?,
            max_priority_fee_per_gas: self
                .max_priority_fee_per_gas
                .ok_or_else(|| missing("maxPriorityFeePerGas"))?,
            max_fee_per_gas: self
                .max_fee_per_gas
                .ok_or_else(|| missing("maxFeePerGas"))?,
            gas: self.gas.ok_or_else(|| missing("gas"))?,
            to: self.to,
            value: self.value,
            data: self.data,
            access_list: self.access_list,
        };
        tx.check()?;
        Ok(tx)
    }
}

fn field_err(field: &'static str, detail: impl Into<String>) -> EthError {
    EthError::Field {
        field,
        detail: detail.into(),
    }
}

/// A quantity: `0x` hex without leading zeros (as JSON-RPC writes them,
/// though leading zeros are accepted), a decimal string, or a JSON number.
fn quantity(field: &'static str, v: &Value) -> Result<u128, EthError> {
    let s = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err(field_err(field, "not a number")),
    };
    let parsed = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if h.is_empty() {
            return Err(field_err(field, "empty hex quantity"));
        }
        u128::from_str_radix(h, 16)
    } else {
        s.parse::<u128>()
    };
    parsed.map_err(|_| field_err(field, format!("{s:?} is not a quantity that fits 128 bits")))
}

fn small(field: &'static str, v: &Value) -> Result<u64, EthError> {
    u64::try_from(quantity(field, v)?).map_err(|_| field_err(field, "does not fit 64 bits"))
}

fn hex_bytes(field: &'static str, v: &Value) -> Result<Vec<u8>, EthError> {
    let s = v
        .as_str()
        .ok_or_else(|| field_err(field, "not a hex string"))?;
    let h = s
        .strip_prefix("0x")
        .ok_or_else(|| field_err(field, "hex data must start with 0x"))?;
    hex::decode(h).map_err(|_| field_err(field, "not hex"))
}

fn address(field: &'static str, v: &Value) -> Result<[u8; 20], EthError> {
    let s = v
        .as_str()
        .ok_or_else(|| field_err(field, "not an address string"))?;
    parse_address(s).map_err(|e| field_err(field, e))
}

fn get<'a>(m: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| m.get(*n))
        .filter(|v| !v.is_null())
}

/// Parses a JSON-RPC transaction object. Unknown fields are refused, so a
/// field this wallet would ignore is never silently signed without.
pub fn parse_request(text: &str) -> Result<TxRequest, EthError> {
    let value: Value = serde_json::from_str(text).map_err(|e| EthError::Json(e.to_string()))?;
    let m = value
        .as_object()
        .ok_or_else(|| EthError::Json("not a JSON object".into()))?;
    const KNOWN: &[&str] = &[
        "from",
        "to",
        "value",
        "data",
        "input",
        "chainId",
        "nonce",
        "gas",
        "gasLimit",
        "maxFeePerGas",
        "maxPriorityFeePerGas",
        "type",
        "accessList",
    ];
    if let Some(k) = m.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(EthError::Json(format!(
            "unknown field {k:?} (gasPrice and blob fields are not EIP-1559)"
        )));
    }
    if let Some(t) = get(m, &["type"]) {
        let t = small("type", t)?;
        if t != u64::from(EIP1559) {
            return Err(EthError::Type(t));
        }
    }
    if let (Some(d), Some(i)) = (m.get("data"), m.get("input")) {
        if d != i {
            return Err(field_err("data", "data and input differ"));
        }
    }
    let mut access_list = Vec::new();
    if let Some(list) = get(m, &["accessList"]) {
        let list = list
            .as_array()
            .ok_or_else(|| field_err("accessList", "not a list"))?;
        for item in list {
            let address = address(
                "accessList",
                item.get("address")
                    .ok_or_else(|| field_err("accessList", "an entry without address"))?,
            )?;
            let mut storage_keys = Vec::new();
            for k in item
                .get("storageKeys")
                .and_then(Value::as_array)
                .ok_or_else(|| field_err("accessList", "an entry without storageKeys"))?
            {
                let b = hex_bytes("accessList", k)?;
                storage_keys.push(
                    b.try_into()
                        .map_err(|_| field_err("accessList", "a storage key is not 32 bytes"))?,
                );
            }
            access_list.push(AccessItem {
                address,
                storage_keys,
            });
        }
    }
    let req = TxRequest {
        from: get(m, &["from"]).map(|v| address("from", v)).transpose()?,
        to: get(m, &["to"]).map(|v| address("to", v)).transpose()?,
        value: get(m, &["value"])
            .map(|v| quantity("value", v))
            .transpose()?
            .unwrap_or(0),
        data: get(m, &["data", "input"])
            .map(|v| hex_bytes("data", v))
            .transpose()?
            .unwrap_or_default(),
        chain_id: get(m, &["chainId"])
            .map(|v| small("chainId", v))
            .transpose()?,
        nonce: get(m, &["nonce"]).map(|v| small("nonce", v)).transpose()?,
        gas: get(m, &["gas", "gasLimit"])
            .map(|v| small("gas", v))
            .transpose()?,
        max_fee_per_gas: get(m, &["maxFeePerGas"])
            .map(|v| quantity("maxFeePerGas", v))
            .transpose()?,
        max_priority_fee_per_gas: get(m, &["maxPriorityFeePerGas"])
            .map(|v| quantity("maxPriorityFeePerGas", v))
            .transpose()?,
        access_list,
    };
    if req.data.len() > super::MAX_DATA_LEN {
        return Err(EthError::DataTooLong(req.data.len()));
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_decimal_quantities() {
        let r = parse_request(
            r#"{"to":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","value":"0xde0b6b3a7640000",
                "chainId":"31337","nonce":0,"gas":"0x5208","maxFeePerGas":"2000000000",
                "maxPriorityFeePerGas":"0x3b9aca00"}"#,
        )
        .unwrap();
        assert!(r.missing().is_empty());
        let tx = r.into_tx().unwrap();
        assert_eq!(tx.value, 1_000_000_000_000_000_000);
        assert_eq!((tx.chain_id, tx.gas), (31337, 21000));
        assert_eq!(tx.max_priority_fee_per_gas, 1_000_000_000);
    }

    #[test]
    fn bad_input_is_named() {
        let e = |j: &str| parse_request(j).unwrap_err();
        assert!(matches!(e("[]"), EthError::Json(_)));
        assert!(matches!(e(r#"{"gasPrice":"0x1"}"#), EthError::Json(_)));
        assert_eq!(e(r#"{"type":"0x0"}"#), EthError::Type(0));
        assert!(matches!(
            e(r#"{"to":"0x1234"}"#),
            EthError::Field { field: "to", .. }
        ));
        assert!(matches!(
            e(r#"{"value":"-1"}"#),
            EthError::Field { field: "value", .. }
        ));
        assert!(matches!(
            e(r#"{"data":"abcd"}"#),
            EthError::Field { field: "data", .. }
        ));
        let missing = parse_request("{}").unwrap();
        assert_eq!(missing.missing().len(), 5);
        assert!(matches!(
            missing.into_tx(),
            Err(EthError::Field {
                field: "chainId",
                ..
            })
        ));
    }
}
