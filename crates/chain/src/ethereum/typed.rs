//! EIP-712 typed data (`eth_signTypedData_v4`): the signing hash, by
//! alloy's EIP-712 encoder (`alloy-dyn-abi`), and what its signer is shown:
//! the domain (name, version, chain id, verifying contract) and the
//! message's fields.

use alloy_dyn_abi::TypedData;
use serde::Serialize;

use super::EthError;

/// Most typed data a co-signer is asked to sign.
pub const MAX_TYPED_DATA_LEN: usize = 64 * 1024;

/// EIP-712 typed data as its signer is shown it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TypedReview {
    /// The domain's name, if it has one.
    pub name: Option<String>,
    /// The domain's version.
    pub version: Option<String>,
    /// The domain's chain id (decimal).
    pub chain_id: Option<String>,
    /// The contract that verifies the signature (EIP-55).
    pub verifying_contract: Option<String>,
    /// The message's struct type.
    pub primary_type: String,
    /// The message, as indented JSON.
    pub message: String,
}

impl std::fmt::Display for TypedReview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Ethereum typed data (EIP-712): {}", self.primary_type)?;
        let none = "(none)";
        writeln!(f, "  domain:    {}", self.name.as_deref().unwrap_or(none))?;
        if let Some(v) = &self.version {
            writeln!(f, "  version:   {v}")?;
        }
        writeln!(
            f,
            "  chain id:  {}",
            self.chain_id
                .as_deref()
                .unwrap_or("(none: valid on every chain)")
        )?;
        writeln!(
            f,
            "  contract:  {}",
            self.verifying_contract.as_deref().unwrap_or(none)
        )?;
        write!(
            f,
            "  message:   {}",
            self.message.replace('\n', "\n             ")
        )
    }
}

/// The EIP-712 signing hash of `json` (`{types, primaryType, domain,
/// message}`), and its review.
pub fn typed_data_hash(json: &[u8]) -> Result<([u8; 32], TypedReview), EthError> {
    if json.len() > MAX_TYPED_DATA_LEN {
        return Err(EthError::TypedData(format!(
            "{} bytes; at most {MAX_TYPED_DATA_LEN}",
            json.len()
        )));
    }
    let data: TypedData =
        serde_json::from_slice(json).map_err(|e| EthError::TypedData(e.to_string()))?;
    let hash = data
        .eip712_signing_hash()
        .map_err(|e| EthError::TypedData(e.to_string()))?;
    let d = &data.domain;
    let review = TypedReview {
        name: d.name.as_ref().map(|n| n.to_string()),
        version: d.version.as_ref().map(|v| v.to_string()),
        chain_id: d.chain_id.map(|c| c.to_string()),
        verifying_contract: d
            .verifying_contract
            .map(|a| super::checksum_address(&a.into_array())),
        primary_type: data.primary_type.clone(),
        message: serde_json::to_string_pretty(&data.message).unwrap_or_default(),
    };
    Ok((hash.0, review))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EIP-712's own example ("Mail"), with the hash the EIP gives.
    pub const MAIL: &str = r#"{
      "types": {
        "EIP712Domain": [
          {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
          {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
        ],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [
          {"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
          {"name": "contents", "type": "string"}
        ]
      },
      "primaryType": "Mail",
      "domain": {"name": "Ether Mail", "version": "1", "chainId": 1,
        "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
      "message": {
        "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
        "contents": "Hello, Bob!"
      }
    }"#;

    #[test]
    fn the_eip_712_example_hashes_as_the_eip_says() {
        let (hash, review) = typed_data_hash(MAIL.as_bytes()).unwrap();
        assert_eq!(
            hex::encode(hash),
            "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
        );
        assert_eq!(review.name.as_deref(), Some("Ether Mail"));
        assert_eq!(review.chain_id.as_deref(), Some("1"));
        assert!(review.to_string().contains("Hello, Bob!"));
    }

    #[test]
    fn malformed_typed_data_is_refused() {
        for bad in [
            "",
            "{}",
            r#"{"types":{},"primaryType":"X","domain":{},"message":{}}"#,
        ] {
            assert!(matches!(
                typed_data_hash(bad.as_bytes()),
                Err(EthError::TypedData(_))
            ));
        }
    }
}
