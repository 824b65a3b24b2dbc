//! Output descriptors (BIP380) for watch-only import of a wallet's key.
//!
//! A secp256k1 wallet's group key is already the tweaked Taproot output
//! key Q, so its descriptor is `rawtr(Q)` (BIP386): `tr(Q)` would tweak it
//! a second time and describe a script nobody can spend from.

use crate::{taproot_output_key, AddressError};

/// `rawtr(<x-only Q>)#<checksum>`, which Bitcoin Core (23.0 and later)
/// imports as a watch-only wallet.
pub fn rawtr_descriptor(group_key_hex: &str) -> Result<String, AddressError> {
    let q = taproot_output_key(group_key_hex)?;
    let body = format!("rawtr({})", hex::encode(q));
    // Hex and `rawtr()` are all in the descriptor charset: never `None`.
    let checksum = descriptor_checksum(&body).ok_or(AddressError::NotHex)?;
    Ok(format!("{body}#{checksum}"))
}

/// The 8-character BIP380 checksum of a descriptor (without `#...`), or
/// `None` for a character descriptors may not contain.
pub fn descriptor_checksum(desc: &str) -> Option<String> {
    const INPUT: &str = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ ";
    const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let mut c: u64 = 1;
    let mut cls: u64 = 0;
    let mut clscount = 0;
    for ch in desc.chars() {
        let pos = INPUT.find(ch)? as u64;
        c = polymod(c, pos & 31);
        cls = cls * 3 + (pos >> 5);
        clscount += 1;
        if clscount == 3 {
            c = polymod(c, cls);
            cls = 0;
            clscount = 0;
        }
    }
    if clscount > 0 {
        c = polymod(c, cls);
    }
    for _ in 0..8 {
        c = polymod(c, 0);
    }
    c ^= 1;
    Some(
        (0..8)
            .map(|j| char::from(CHARSET[((c >> (5 * (7 - j))) & 31) as usize]))
            .collect(),
    )
}

/// One step of BIP380's checksum: the BCH code's generator over GF(32).
fn polymod(c: u64, val: u64) -> u64 {
    const GEN: [u64; 5] = [
        0xf5dee51989,
        0xa9fdca3312,
        0x1bab10e32d,
        0x3706b1677a,
        0x644d626ffd,
    ];
    let c0 = c >> 35;
    let mut c = ((c & 0x7ffffffff) << 5) ^ val;
    for (i, g) in GEN.iter().enumerate() {
        if (c0 >> i) & 1 == 1 {
            c ^= g;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bip380_vectors() {
        // BIP380's valid examples.
        assert_eq!(descriptor_checksum("raw(deadbeef)").unwrap(), "89f8spxm");
        assert_eq!(
            descriptor_checksum("sh(multi(2,[00000000/111'/222]xprvA1RpRA33e1JQ7ifknakTFpgNXPmW2YvmhqLQYMmrj4xJXXWYpDPS3xz7iAxn8L39njGVyuoseXzU6rcxFLJ8HFsTjSyQbLYnMpCqE2VbFWc,xprv9uPDJpEQgRQfDcW7BkF7eTya6RPxXeJCqCJGHuCJ4GiRVLzkTXBAJMu2qaMWPrS7AANYqdq6vcBcBUdJCVVFceUvJFjaPdGZ2y9WACViL4L/0))").unwrap(),
            "ggrsrxfy"
        );
        assert_eq!(descriptor_checksum("raw(é)"), None);
    }

    #[test]
    fn rawtr_is_the_output_key_itself() {
        let q = "a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c";
        let d = rawtr_descriptor(&format!("02{q}")).unwrap();
        let (body, sum) = d.split_once('#').unwrap();
        assert_eq!(body, format!("rawtr({q})"));
        // Computed independently with python embit's `add_checksum`.
        assert_eq!(sum, "h9nmpf4q");
        // A one-character change moves the checksum.
        assert_ne!(descriptor_checksum(&body.replace("a6", "a7")).unwrap(), sum);
        assert_eq!(rawtr_descriptor("zz"), Err(AddressError::NotHex));
    }
}
