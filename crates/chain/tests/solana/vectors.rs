//! Every vector: built byte for byte, parsed, reviewed and signed as the
//! Solana SDK (solders) built and signed it.

use base64::Engine as _;
use mpc_chain::solana::{
    decode_address, plan, transfer_message, InstructionReview, SolanaError, SolanaTx, SolanaWarning,
};

use crate::fixtures::{array, bytes, vector, vectors, wallet};

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn transfer_message_is_what_solders_builds() {
    let mut built = 0;
    for v in vectors() {
        let b = &v["build"];
        if b.is_null() {
            continue;
        }
        let nonce = (!b["nonce"].is_null()).then(|| {
            (
                array::<32>(&b["nonce"]["account"]),
                array::<32>(&b["nonce"]["authority"]),
            )
        });
        let message = transfer_message(
            &array(&b["from"]),
            &array(&b["to"]),
            b["lamports"].as_u64().unwrap(),
            &array(&b["blockhash"]),
            nonce.as_ref().map(|(n, a)| (n, a)),
        );
        assert_eq!(hex::encode(message), v["message_hex"], "{}", v["name"]);
        built += 1;
    }
    // Plain, nonce with the payer as authority, nonce with another.
    assert_eq!(built, 3);
}

#[test]
fn every_vector_parses_and_reviews_as_solders_built_it() {
    for v in vectors() {
        let name = v["name"].as_str().unwrap();
        let input = bytes(&v, "bytes_hex");
        let tx = SolanaTx::from_bytes(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(tx.is_transaction(), v["is_transaction"], "{name}");
        assert_eq!(tx.message_bytes(), bytes(&v, "message_hex"), "{name}");
        let sigs: Vec<String> = tx.signatures().iter().map(hex::encode).collect();
        assert_eq!(serde_json::json!(sigs), v["signatures"], "{name}");
        assert_eq!(tx.to_bytes(), input, "{name}");
        assert_eq!(
            SolanaTx::from_base64(&b64(&input)).as_ref(),
            Ok(&tx),
            "{name}"
        );

        let planned = plan(&tx, &wallet(&v));
        if v["error"] == "not_a_signer" {
            assert_eq!(planned, Err(SolanaError::NotASigner), "{name}");
            continue;
        }
        let p = planned.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            serde_json::to_value(&p.review).unwrap(),
            v["review"],
            "{name}"
        );
        assert_eq!(
            p.signer_index,
            v["signer_index"].as_u64().unwrap() as usize,
            "{name}"
        );
        assert_eq!(Some(p.signer_index), tx.signer_index(&wallet(&v)), "{name}");
        assert_eq!(p.message, bytes(&v, "message_hex"), "{name}");
    }
}

#[test]
fn a_signed_transaction_is_rebuilt_byte_for_byte() {
    let c = vector("signed_transfer");
    let signed = bytes(&c, "bytes_hex");
    let tx = SolanaTx::from_bytes(&signed).unwrap();
    let sig: [u8; 64] = array(&c["signatures"][0]);
    assert_eq!(tx.signatures(), &[sig]);
    // Slot 0 is right after the one-byte count.
    assert_eq!(&signed[1..65], sig.as_slice());
    assert_eq!(tx.with_signature(0, &sig), Ok(signed.clone()));

    // From the bare message (a), the wallet's signature in slot 0 gives
    // solders' transaction exactly.
    let a = vector("transfer_message");
    let bare = SolanaTx::from_bytes(&bytes(&a, "bytes_hex")).unwrap();
    assert!(!bare.is_transaction());
    assert_eq!(bare.message_bytes(), tx.message_bytes());
    assert_eq!(plan(&bare, &wallet(&a)).unwrap().signer_index, 0);
    assert_eq!(bare.with_signature(0, &sig), Ok(signed));
    assert_eq!(
        bare.with_signature(1, &sig),
        Err(SolanaError::BadSignerIndex)
    );
}

#[test]
fn the_second_signer_signs_slot_1_and_keeps_the_payers_signature() {
    let h = vector("second_signer");
    let tx = SolanaTx::from_bytes(&bytes(&h, "bytes_hex")).unwrap();
    let payer_sig: [u8; 64] = array(&h["signatures"][0]);
    assert_eq!(tx.signatures(), &[payer_sig, [0; 64]]);
    let ours = wallet(&h);
    assert_eq!(tx.signer_index(&ours), Some(1));
    let payer = decode_address(h["review"]["fee_payer"].as_str().unwrap()).unwrap();
    assert_eq!(tx.signer_index(&payer), Some(0));
    // The recipient is an account of the message, but not a signer.
    let to = match &plan(&tx, &ours).unwrap().review.instructions[..] {
        [InstructionReview::SystemTransfer { to, .. }] => decode_address(to).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(tx.signer_index(&to), None);
    assert_eq!(plan(&tx, &to).unwrap_err(), SolanaError::NotASigner);

    let sig: [u8; 64] = array(&h["wallet_signature_hex"]);
    assert_eq!(tx.with_signature(1, &sig), Ok(bytes(&h, "signed_hex")));
    assert_eq!(tx.with_signature(2, &sig), Err(SolanaError::BadSignerIndex));

    // From the bare message: slot 1 ours, slot 0 left unsigned (zeros),
    // and it reads back as a transaction of the same message.
    let bare = SolanaTx::from_bytes(&bytes(&h, "message_hex")).unwrap();
    assert!(bare.signatures().is_empty());
    let out = bare.with_signature(1, &sig).unwrap();
    assert_eq!(out[0], 2);
    assert_eq!(&out[1..65], [0u8; 64].as_slice());
    assert_eq!(&out[65..129], sig.as_slice());
    let back = SolanaTx::from_bytes(&out).unwrap();
    assert!(back.is_transaction());
    assert_eq!(back.signatures(), &[[0; 64], sig]);
    assert_eq!(back.message_bytes(), bare.message_bytes());
    assert_eq!(
        back.with_signature(0, &payer_sig),
        Ok(bytes(&h, "signed_hex"))
    );
}

#[test]
fn v0_lookups_show_as_lookup_table_accounts() {
    for name in ["v0_lookup_message", "v0_lookup_transaction"] {
        let d = vector(name);
        let tx = SolanaTx::from_bytes(&bytes(&d, "bytes_hex")).unwrap();
        let r = plan(&tx, &wallet(&d)).unwrap().review;
        assert_eq!(r.version, "v0");
        assert_eq!(r.lookup_tables, 1);
        assert!(matches!(
            &r.instructions[0],
            InstructionReview::SystemTransfer { to, lamports: 7, .. } if to == "lookup table account #0"
        ));
        assert!(r
            .warnings
            .contains(&SolanaWarning::LookupTables { count: 1 }));
        assert!(r.warnings.contains(&SolanaWarning::UnknownProgram {
            index: 1,
            program: unknown_program(&r.instructions[1]),
        }));
    }
}

fn unknown_program(ix: &InstructionReview) -> String {
    match ix {
        InstructionReview::Unknown { program, .. } => program.clone(),
        other => panic!("not unknown: {other:?}"),
    }
}

#[test]
fn decoded_programs_raise_no_unknown_program_warning() {
    for name in [
        "token_transfers",
        "compute_budget",
        "transfer_message_nonce",
    ] {
        let v = vector(name);
        let tx = SolanaTx::from_bytes(&bytes(&v, "bytes_hex")).unwrap();
        let r = plan(&tx, &wallet(&v)).unwrap().review;
        assert!(
            !r.warnings
                .iter()
                .any(|w| matches!(w, SolanaWarning::UnknownProgram { .. })),
            "{name}: {:?}",
            r.warnings
        );
        assert!(!r
            .instructions
            .iter()
            .any(|i| matches!(i, InstructionReview::Unknown { .. })));
    }
}

fn shown(name: &str) -> String {
    let v = vector(name);
    let tx = SolanaTx::from_bytes(&bytes(&v, "bytes_hex")).unwrap();
    plan(&tx, &wallet(&v)).unwrap().review.to_string()
}

#[test]
fn the_review_reads_as_a_person_needs_it() {
    let a = vector("transfer_message");
    let r = &a["review"];
    let text = shown("transfer_message");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Solana transaction (legacy)");
    assert_eq!(
        lines[1],
        format!(
            "fee payer {} (this wallet)",
            r["fee_payer"].as_str().unwrap()
        )
    );
    assert!(text.contains(&format!(
        "recent blockhash {}\n",
        r["recent_blockhash"].as_str().unwrap()
    )));
    let ix = &r["instructions"][0];
    assert!(text.contains(&format!(
        "  #0 transfer 0.001000000 SOL (1000000 lamports) from {} to {}\n",
        ix["from"].as_str().unwrap(),
        ix["to"].as_str().unwrap()
    )));
    assert!(!text.contains("warning"));

    let nonce = shown("transfer_message_nonce");
    assert!(nonce.contains("  #0 advance durable nonce "), "{nonce}");
    assert!(nonce.contains("(the durable nonce's value)"), "{nonce}");
    assert!(
        nonce.contains("warning: the first instruction advances a durable nonce"),
        "{nonce}"
    );

    let d = shown("v0_lookup_message");
    assert!(d.starts_with("Solana transaction (v0)\n"), "{d}");
    assert!(d.contains("to lookup table account #0\n"), "{d}");
    assert!(
        d.contains(": 12 bytes of data, 3 accounts (not decoded)\n"),
        "{d}"
    );
    assert!(
        d.contains("warning: 1 address lookup table: the accounts it loads are on chain"),
        "{d}"
    );
    assert!(d.contains("warning: instruction #1 (program "), "{d}");

    let e = shown("token_transfers");
    assert!(
        e.contains("  #0 token transfer of 123456 (raw amount"),
        "{e}"
    );
    assert!(e.contains("(SPL Token)\n"), "{e}");
    assert!(
        e.contains("  #1 token transfer of 2.500000 (2500000 raw, 6 decimals) of mint "),
        "{e}"
    );
    assert!(e.contains("(Token-2022)\n"), "{e}");

    let f = shown("compute_budget");
    assert!(
        f.contains("  #0 compute budget: set compute unit limit 200000\n"),
        "{f}"
    );
    assert!(
        f.contains("  #1 compute budget: set compute unit price 5000 micro-lamports per unit\n"),
        "{f}"
    );
    assert!(
        f.contains("  #3 system instruction 8 (Allocate): 12 bytes of data (not decoded)\n"),
        "{f}"
    );

    assert!(
        f.contains("  #2 transfer 0.000000001 SOL (1 lamport) from "),
        "{f}"
    );

    let h = shown("second_signer");
    assert!(h.contains("(not this wallet)\n"), "{h}");
    assert!(
        h.contains("warning: this wallet does not pay the fee"),
        "{h}"
    );
}

#[test]
fn base64_is_trimmed_and_checked() {
    let c = vector("signed_transfer");
    let signed = bytes(&c, "bytes_hex");
    let tx = SolanaTx::from_base64(&format!("\n  {}\r\n", b64(&signed))).unwrap();
    assert_eq!(tx.to_bytes(), signed);
    assert_eq!(
        SolanaTx::from_base64("not base64!"),
        Err(SolanaError::NotBase64)
    );
}
