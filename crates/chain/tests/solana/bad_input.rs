//! Transactions and messages a signer must refuse, each with its own error.

use base64::Engine as _;
use mpc_chain::solana::{SolanaError, SolanaTx, MAX_TRANSACTION_BYTES};

use crate::fixtures::{bytes, vector, vectors};

fn parse(b: &[u8]) -> Result<SolanaTx, SolanaError> {
    SolanaTx::from_bytes(b)
}

/// Offsets in vector (a), a legacy message with 3 account keys and one
/// instruction of 2 accounts.
const KEYS_COUNT: usize = 3;
const KEY_1: usize = 4 + 32;
const ACCOUNTS_LEN: usize = 4 + 3 * 32 + 32 + 2;
const PROGRAM_INDEX: usize = ACCOUNTS_LEN - 1;

fn message_a() -> Vec<u8> {
    let a = bytes(&vector("transfer_message"), "bytes_hex");
    assert_eq!(
        (a[KEYS_COUNT], a[ACCOUNTS_LEN], a[PROGRAM_INDEX]),
        (3, 2, 2)
    );
    a
}

#[test]
fn garbage_and_empty() {
    for s in ["", "   "] {
        assert_eq!(
            SolanaTx::from_base64(s),
            Err(SolanaError::Truncated),
            "{s:?}"
        );
    }
    for s in ["this is not base64!", "AQ", "AQ=", "A===", "åäö"] {
        assert_eq!(
            SolanaTx::from_base64(s),
            Err(SolanaError::NotBase64),
            "{s:?}"
        );
    }
    assert_eq!(parse(&[]), Err(SolanaError::Truncated));
}

#[test]
fn truncated_anywhere() {
    for v in vectors() {
        let b = bytes(&v, "bytes_hex");
        assert_eq!(
            parse(&b[..b.len() - 1]),
            Err(SolanaError::Truncated),
            "{}",
            v["name"]
        );
        for cut in 0..b.len() {
            assert!(parse(&b[..cut]).is_err(), "{} cut at {cut}", v["name"]);
        }
    }
}

#[test]
fn trailing_bytes() {
    for v in vectors() {
        let mut b = bytes(&v, "bytes_hex");
        b.push(0);
        assert_eq!(parse(&b), Err(SolanaError::TrailingBytes), "{}", v["name"]);
    }
}

#[test]
fn unsupported_versions() {
    let d = bytes(&vector("v0_lookup_message"), "bytes_hex");
    assert_eq!(d[0], 0x80);
    for (prefix, version) in [(0x81, 1), (0xff, 127)] {
        let mut m = d.clone();
        m[0] = prefix;
        assert_eq!(parse(&m), Err(SolanaError::UnsupportedVersion(version)));
    }
    // The same inside a signed transaction.
    let mut tx = bytes(&vector("v0_lookup_transaction"), "bytes_hex");
    assert_eq!(tx[65], 0x80);
    tx[65] = 0x81;
    assert_eq!(parse(&tx), Err(SolanaError::UnsupportedVersion(1)));
}

#[test]
fn account_and_program_indexes_out_of_range() {
    let bad_ix = |r: Result<SolanaTx, SolanaError>| {
        assert!(
            matches!(r, Err(SolanaError::BadInstruction { index: 0, .. })),
            "{r:?}"
        );
    };
    let a = message_a();
    // The transfer's recipient: one past the 3 keys.
    let mut m = a.clone();
    m[ACCOUNTS_LEN + 2] = 3;
    bad_ix(parse(&m));
    // The same inside the signed transaction (c).
    let mut c = bytes(&vector("signed_transfer"), "bytes_hex");
    assert_eq!(&c[65..], a.as_slice());
    c[65 + ACCOUNTS_LEN + 2] = 3;
    bad_ix(parse(&c));
    // A program that is the fee payer, or past the keys.
    for p in [0, 3, 255] {
        let mut m = a.clone();
        m[PROGRAM_INDEX] = p;
        bad_ix(parse(&m));
    }
    // v0: the first looked-up account (index 3, past the 3 static keys)
    // is a fine account but can't be a program.
    let mut d = bytes(&vector("v0_lookup_message"), "bytes_hex");
    assert_eq!(d[1 + PROGRAM_INDEX], 1);
    d[1 + PROGRAM_INDEX] = 3;
    bad_ix(parse(&d));
}

#[test]
fn bad_headers() {
    let bad_header = |m: &[u8]| {
        let r = parse(m);
        assert!(matches!(r, Err(SolanaError::BadHeader(_))), "{r:?}");
    };
    let a = message_a();
    for header in [[0, 0, 1], [1, 1, 1], [3, 0, 1], [1, 0, 3], [4, 0, 0]] {
        let mut m = a.clone();
        m[..3].copy_from_slice(&header);
        bad_header(&m);
    }
    // The recipient is the payer again.
    let mut m = a.clone();
    m.copy_within(4..36, KEY_1);
    bad_header(&m);
}

#[test]
fn non_canonical_lengths() {
    let a = message_a();
    // 3 keys as two bytes (0x83 0x00): the runtime refuses the alias.
    let m = [&a[..KEYS_COUNT], &[0x83, 0x00], &a[KEYS_COUNT + 1..]].concat();
    assert_eq!(parse(&m), Err(SolanaError::BadShortVec));
}

/// A legacy message of `total` bytes: payer, a program, one instruction
/// with the data that fills it.
fn message_of(total: usize) -> Vec<u8> {
    let mut m = vec![1, 0, 1, 2];
    m.extend_from_slice(&[7; 32]);
    m.extend_from_slice(&[8; 32]);
    m.extend_from_slice(&[9; 32]);
    m.extend_from_slice(&[1, 1, 0]);
    let data = total - m.len() - 2;
    assert!((128..1 << 14).contains(&data));
    m.extend_from_slice(&[(data & 0x7f) as u8 | 0x80, (data >> 7) as u8]);
    m.resize(total, 0xaa);
    m
}

#[test]
fn too_large() {
    let max = MAX_TRANSACTION_BYTES;
    assert_eq!(max, 1232);
    let huge = vec![0u8; max + 1];
    assert_eq!(
        parse(&huge),
        Err(SolanaError::TooLarge {
            bytes: max + 1,
            max
        })
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 4000]);
    assert!(matches!(
        SolanaTx::from_base64(&b64),
        Err(SolanaError::TooLarge { .. })
    ));

    // A bare message must leave room for its signature: one count byte and
    // 64 bytes for its one signer.
    let fits = message_of(max - 65);
    let tx = parse(&fits).unwrap();
    assert_eq!(tx.with_signature(0, &[1; 64]).unwrap().len(), max);
    assert_eq!(
        parse(&message_of(max - 64)),
        Err(SolanaError::TooLarge {
            bytes: max + 1,
            max
        })
    );
}

#[test]
fn wrong_signature_count() {
    // (h)'s message needs 2 signatures; give it 1.
    let h = vector("second_signer");
    let one = [&[1u8][..], &[5; 64], &bytes(&h, "message_hex")].concat();
    assert!(parse(&one).is_err());
    let three = [&[3u8][..], &[5; 192], &bytes(&h, "message_hex")].concat();
    assert!(parse(&three).is_err());
}
