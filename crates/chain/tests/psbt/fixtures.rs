//! PSBTs built with rust-bitcoin, the way a wallet would hand them over.

use std::collections::BTreeMap;
use std::str::FromStr;

use bitcoin::bip32::{DerivationPath, Fingerprint};
use bitcoin::hashes::Hash;
use bitcoin::key::{Keypair, Secp256k1, TweakedPublicKey, XOnlyPublicKey};
use bitcoin::psbt::{raw, Psbt as BPsbt, PsbtSighashType};
use bitcoin::{
    absolute::LockTime, transaction::Version, Amount, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Txid, Witness,
};

/// A wallet whose stored key is already the Taproot output key Q.
pub struct Wallet {
    pub keypair: Keypair,
    pub q: [u8; 32],
}

impl Wallet {
    /// A fixed key, so failures reproduce.
    pub fn fixed(seed: u8) -> Wallet {
        let secp = Secp256k1::new();
        let keypair = Keypair::from_seckey_slice(&secp, &[seed; 32]).unwrap();
        Wallet::from_keypair(keypair)
    }

    pub fn random() -> Wallet {
        let secp = Secp256k1::new();
        Wallet::from_keypair(Keypair::new(&secp, &mut secp256k1::rand::thread_rng()))
    }

    fn from_keypair(keypair: Keypair) -> Wallet {
        let q = keypair.x_only_public_key().0.serialize();
        Wallet { keypair, q }
    }

    pub fn xonly(&self) -> XOnlyPublicKey {
        self.keypair.x_only_public_key().0
    }

    /// OP_1 <Q>: Q is not tweaked again.
    pub fn script(&self) -> ScriptBuf {
        ScriptBuf::new_p2tr_tweaked(TweakedPublicKey::dangerous_assume_tweaked(self.xonly()))
    }
}

pub fn p2wpkh(tag: u8) -> ScriptBuf {
    ScriptBuf::from_bytes([&[0x00, 0x14][..], &[tag; 20]].concat())
}
pub fn p2tr_other(tag: u8) -> ScriptBuf {
    // Any x coordinate does as a script; it needn't be on the curve.
    ScriptBuf::from_bytes([&[0x51, 0x20][..], &[tag; 32]].concat())
}
pub fn p2sh(tag: u8) -> ScriptBuf {
    ScriptBuf::from_bytes([&[0xa9, 0x14][..], &[tag; 20], &[0x87]].concat())
}
pub fn p2pkh(tag: u8) -> ScriptBuf {
    ScriptBuf::from_bytes([&[0x76, 0xa9, 0x14][..], &[tag; 20], &[0x88, 0xac]].concat())
}
pub fn op_return() -> ScriptBuf {
    ScriptBuf::from_bytes(vec![0x6a, 0x04, 0xde, 0xad, 0xbe, 0xef])
}

/// How an input tells the signer what it spends.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Utxo {
    Witness,
    NonWitness,
    Both,
    Neither,
}

pub struct InputSpec {
    pub script: ScriptBuf,
    pub amount: u64,
    pub utxo: Utxo,
    pub sequence: u32,
}

/// A funding transaction with `out` at index `vout` (other outputs are
/// filler), so a non_witness_utxo has a real txid to match.
fn funding(out: &TxOut, vout: u32, salt: u8) -> Transaction {
    let mut output: Vec<TxOut> = (0..vout)
        .map(|i| TxOut {
            value: Amount::from_sat(1_000 + u64::from(i)),
            script_pubkey: p2wpkh(0xf0),
        })
        .collect();
    output.push(out.clone());
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: Txid::from_byte_array([salt; 32]),
                vout: 0,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            // Funding txs are segwit: the non_witness_utxo carries a
            // witness, which its txid must ignore.
            witness: Witness::from_slice(&[vec![0x30; 71], vec![0x02; 33]]),
        }],
        output,
    }
}

pub struct Built {
    pub psbt: BPsbt,
    /// What each input spends, in order.
    pub spent: Vec<TxOut>,
}

impl Built {
    pub fn bytes(&self) -> Vec<u8> {
        self.psbt.serialize()
    }
    pub fn ours(&self) -> mpc_chain::bitcoin::Psbt {
        mpc_chain::bitcoin::Psbt::from_bytes(&self.bytes()).unwrap()
    }
}

/// A PSBT spending `inputs` to `outputs`, with the metadata wallets add
/// (Taproot internal key and origins on the wallet's inputs, a BIP32
/// path on others, unknown and proprietary pairs everywhere).
pub fn build(wallet: &Wallet, inputs: &[InputSpec], outputs: &[(ScriptBuf, u64)]) -> Built {
    let mut spent = Vec::new();
    let mut funders = Vec::new();
    let mut tx_in = Vec::new();
    for (i, spec) in inputs.iter().enumerate() {
        let out = TxOut {
            value: Amount::from_sat(spec.amount),
            script_pubkey: spec.script.clone(),
        };
        let vout = (i % 3) as u32;
        let f = funding(&out, vout, i as u8 + 1);
        tx_in.push(TxIn {
            previous_output: OutPoint {
                txid: f.compute_txid(),
                vout,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence(spec.sequence),
            witness: Witness::new(),
        });
        spent.push(out);
        funders.push(f);
    }
    let tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: tx_in,
        output: outputs
            .iter()
            .map(|(s, v)| TxOut {
                value: Amount::from_sat(*v),
                script_pubkey: s.clone(),
            })
            .collect(),
    };
    let mut psbt = BPsbt::from_unsigned_tx(tx).unwrap();
    let origin = (
        Fingerprint::from([0xde, 0xad, 0xbe, 0xef]),
        DerivationPath::from_str("m/86'/1'/0'/0/0").unwrap(),
    );
    for (i, (spec, input)) in inputs.iter().zip(psbt.inputs.iter_mut()).enumerate() {
        if matches!(spec.utxo, Utxo::Witness | Utxo::Both) {
            input.witness_utxo = Some(spent[i].clone());
        }
        if matches!(spec.utxo, Utxo::NonWitness | Utxo::Both) {
            input.non_witness_utxo = Some(funders[i].clone());
        }
        if spec.script == wallet.script() {
            input.tap_internal_key = Some(wallet.xonly());
            input.tap_key_origins = BTreeMap::from([(wallet.xonly(), (vec![], origin.clone()))]);
        } else {
            input.bip32_derivation = BTreeMap::from([(
                bitcoin::secp256k1::PublicKey::from_slice(&[
                    0x02, 0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95,
                    0xce, 0x87, 0x0b, 0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59,
                    0xf2, 0x81, 0x5b, 0x16, 0xf8, 0x17, 0x98,
                ])
                .unwrap(),
                origin.clone(),
            )]);
        }
        input.unknown.insert(
            raw::Key {
                type_value: 0xf0,
                key: vec![i as u8],
            },
            vec![0x11; 3],
        );
        input.proprietary.insert(
            raw::ProprietaryKey {
                prefix: b"mpc".to_vec(),
                subtype: 0x01,
                key: vec![i as u8],
            },
            vec![0x22; 2],
        );
    }
    for (i, output) in psbt.outputs.iter_mut().enumerate() {
        output.unknown.insert(
            raw::Key {
                type_value: 0xf1,
                key: vec![],
            },
            vec![i as u8],
        );
    }
    psbt.unknown.insert(
        raw::Key {
            type_value: 0xf2,
            key: b"global".to_vec(),
        },
        vec![0x33],
    );
    Built { psbt, spent }
}

/// Two inputs of the wallet's (one by witness_utxo, one by
/// non_witness_utxo), one foreign P2WPKH between them, and outputs of
/// every kind: P2WPKH, P2TR, P2SH, P2PKH, change, OP_RETURN.
pub const IN_AMOUNTS: [u64; 3] = [150_000, 80_000, 120_000];
pub const OUT_AMOUNTS: [u64; 6] = [50_000, 40_000, 30_000, 20_000, 205_000, 0];
pub const FEE: u64 = 5_000;

pub fn mixed(wallet: &Wallet) -> Built {
    build(
        wallet,
        &[
            InputSpec {
                script: wallet.script(),
                amount: IN_AMOUNTS[0],
                utxo: Utxo::Witness,
                sequence: 0xffff_fffd,
            },
            InputSpec {
                script: p2wpkh(0x77),
                amount: IN_AMOUNTS[1],
                utxo: Utxo::Both,
                sequence: 0xffff_fffd,
            },
            InputSpec {
                script: wallet.script(),
                amount: IN_AMOUNTS[2],
                utxo: Utxo::NonWitness,
                sequence: 0xffff_fffd,
            },
        ],
        &[
            (p2wpkh(0x01), OUT_AMOUNTS[0]),
            (p2tr_other(0x02), OUT_AMOUNTS[1]),
            (p2sh(0x03), OUT_AMOUNTS[2]),
            (p2pkh(0x04), OUT_AMOUNTS[3]),
            (wallet.script(), OUT_AMOUNTS[4]),
            (op_return(), OUT_AMOUNTS[5]),
        ],
    )
}

/// A foreign P2WPKH input's final witness, the size a real one has
/// (72-byte DER signature with its type byte, 33-byte key).
pub fn p2wpkh_witness() -> Witness {
    Witness::from_slice(&[vec![0x30; 72], vec![0x02; 33]])
}

pub fn set_sighash(psbt: &mut BPsbt, input: usize, t: u32) {
    psbt.inputs[input].sighash_type = Some(PsbtSighashType::from_u32(t));
}

/// The signature length a sighash type takes.
pub fn sig_len(t: u8) -> usize {
    if t == 0 {
        64
    } else {
        65
    }
}
