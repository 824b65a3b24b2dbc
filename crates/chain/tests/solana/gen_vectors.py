#!/usr/bin/env python3
"""Test vectors for `mpc_chain::solana`, made with solders (Python bindings
to the Solana SDK's own Rust types), so the crate is checked against the
SDK's serialization, account ordering and signing rather than against
itself.

Regenerate, from the repository root:

    python3 -m venv /tmp/pysol
    /tmp/pysol/bin/pip install 'solders==0.29.*'
    /tmp/pysol/bin/python crates/chain/tests/solana/gen_vectors.py \
        > crates/chain/tests/solana/vectors.json

The output is deterministic (keys from fixed seeds, ed25519 signatures are
deterministic), so regenerating with the same solders gives the same file.

Each vector has the bytes a signer is handed (`bytes_hex`: a serialized
transaction or a bare message), the message inside it, its signatures, the
wallet it is planned for and what `plan` must give: the signer slot and the
review as JSON (`review`, serde's form of `SolanaReview`), or an error.
The expected reviews are written here from what each vector was built
from, not from the Rust decoder's output. `build` holds the arguments of
`transfer_message` for the vectors it must reproduce byte for byte.
"""

import json
import struct
import sys

from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.system_program import (
    ID as SYSTEM,
    AdvanceNonceAccountParams,
    AllocateParams,
    TransferParams,
    advance_nonce_account,
    allocate,
    transfer,
)
from solders.transaction import Transaction, VersionedTransaction

TOKEN = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022 = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
COMPUTE_BUDGET = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
RECENT_BLOCKHASHES = Pubkey.from_string("SysvarRecentB1ockHashes11111111111111111111")


def kp(seed: int) -> Keypair:
    return Keypair.from_seed(bytes([seed]) * 32)


def key(seed: int) -> Pubkey:
    return kp(seed).pubkey()


WALLET = kp(1)
W = WALLET.pubkey()
TO = key(2)
OTHER = kp(9)
BLOCKHASH = Hash(bytes(range(32)))
NONCE_VALUE = Hash(bytes([0xAB]) * 32)


def nonce_key() -> Pubkey:
    """A nonce account that sorts after TO, so the SDK's account order
    (sorted within a class) differs from the order of first appearance."""
    seed = 20
    while bytes(key(seed)) <= bytes(TO):
        seed += 1
    return key(seed)


NONCE = nonce_key()


def legacy_bytes(msg: Message) -> bytes:
    return bytes(msg)


def transfer_ix(frm: Pubkey, to: Pubkey, lamports: int) -> Instruction:
    return transfer(TransferParams(from_pubkey=frm, to_pubkey=to, lamports=lamports))


def advance_ix(nonce: Pubkey, authority: Pubkey) -> Instruction:
    return advance_nonce_account(
        AdvanceNonceAccountParams(nonce_pubkey=nonce, authorized_pubkey=authority)
    )


def review(
    msg,
    version: str,
    instructions,
    warnings=(),
    lookup_tables: int = 0,
):
    header = msg.header
    keys = list(msg.account_keys)
    payer = keys[0]
    return {
        "version": version,
        "fee_payer": str(payer),
        "wallet_is_fee_payer": payer == W,
        "recent_blockhash": str(msg.recent_blockhash),
        "signers": [str(k) for k in keys[: header.num_required_signatures]],
        "instructions": list(instructions),
        "lookup_tables": lookup_tables,
        "warnings": list(warnings),
    }


def sys_transfer(frm, to, lamports):
    return {"kind": "system_transfer", "from": str(frm), "to": str(to), "lamports": lamports}


def vector(name, what, data: bytes, msg_bytes: bytes, sigs, wallet=W, **extra):
    v = {
        "name": name,
        "what": what,
        "bytes_hex": data.hex(),
        "is_transaction": data != msg_bytes,
        "message_hex": msg_bytes.hex(),
        "signatures": [bytes(s).hex() for s in sigs],
        "wallet": str(wallet),
        "signer_index": None,
        "review": None,
        "error": None,
    }
    v.update(extra)
    return v


def build_args(frm, to, lamports, blockhash, nonce=None):
    return {
        "from": bytes(frm).hex(),
        "to": bytes(to).hex(),
        "lamports": lamports,
        "blockhash": bytes(blockhash).hex(),
        "nonce": None
        if nonce is None
        else {"account": bytes(nonce[0]).hex(), "authority": bytes(nonce[1]).hex()},
    }


vectors = []

# (a) A legacy System transfer message, as `solana transfer
# --dump-transaction-message` would give it.
LAMPORTS = 1_000_000
msg_a = Message.new_with_blockhash([transfer_ix(W, TO, LAMPORTS)], W, BLOCKHASH)
a = legacy_bytes(msg_a)
vectors.append(
    vector(
        "transfer_message",
        "legacy System transfer message, wallet pays",
        a,
        a,
        [],
        signer_index=0,
        review=review(msg_a, "legacy", [sys_transfer(W, TO, LAMPORTS)]),
        build=build_args(W, TO, LAMPORTS, BLOCKHASH),
    )
)

# (b) The same with a durable nonce: AdvanceNonceAccount first, the nonce's
# value as the blockhash, the wallet as nonce authority.
msg_b = Message.new_with_blockhash(
    [advance_ix(NONCE, W), transfer_ix(W, TO, LAMPORTS)], W, NONCE_VALUE
)
b = legacy_bytes(msg_b)
keys_b = list(msg_b.account_keys)
assert keys_b.index(TO) < keys_b.index(NONCE), "TO must sort before NONCE"
vectors.append(
    vector(
        "transfer_message_nonce",
        "legacy transfer with a durable nonce (AdvanceNonceAccount first)",
        b,
        b,
        [],
        signer_index=0,
        review=review(
            msg_b,
            "legacy",
            [
                {
                    "kind": "system_advance_nonce",
                    "nonce_account": str(NONCE),
                    "authority": str(W),
                },
                sys_transfer(W, TO, LAMPORTS),
            ],
            [{"warning": "durable_nonce"}],
        ),
        build=build_args(W, TO, LAMPORTS, NONCE_VALUE, (NONCE, W)),
    )
)

# (b2) A nonce whose authority is another key: a readonly signer.
AUTH = kp(5)
msg_b2 = Message.new_with_blockhash(
    [advance_ix(NONCE, AUTH.pubkey()), transfer_ix(W, TO, 42)], W, NONCE_VALUE
)
b2 = legacy_bytes(msg_b2)
vectors.append(
    vector(
        "transfer_message_nonce_other_authority",
        "durable nonce whose authority is a second, readonly signer",
        b2,
        b2,
        [],
        signer_index=0,
        review=review(
            msg_b2,
            "legacy",
            [
                {
                    "kind": "system_advance_nonce",
                    "nonce_account": str(NONCE),
                    "authority": str(AUTH.pubkey()),
                },
                sys_transfer(W, TO, 42),
            ],
            [{"warning": "durable_nonce"}],
        ),
        build=build_args(W, TO, 42, NONCE_VALUE, (NONCE, AUTH.pubkey())),
    )
)

# (c) (a) signed by solders with the wallet's keypair: a transaction as
# `--sign-only` or a dApp gives it.
tx_c = Transaction([WALLET], msg_a, BLOCKHASH)
c = bytes(tx_c)
vectors.append(
    vector(
        "signed_transfer",
        "(a) signed by the fee payer: a whole legacy transaction",
        c,
        a,
        tx_c.signatures,
        signer_index=0,
        review=review(msg_a, "legacy", [sys_transfer(W, TO, LAMPORTS)]),
    )
)

# (d) A v0 message with one address table lookup: the transfer's recipient
# and one account of an unknown program are loaded from the table.
PROGRAM = key(40)
LOOKED_UP_RO = key(41)
TABLE = AddressLookupTableAccount(key=key(42), addresses=[key(43), TO, LOOKED_UP_RO])
ix_unknown = Instruction(
    PROGRAM,
    bytes(range(12)),
    [
        AccountMeta(W, True, True),
        AccountMeta(LOOKED_UP_RO, False, False),
        AccountMeta(PROGRAM, False, False),
    ],
)
msg_d = MessageV0.try_compile(W, [transfer_ix(W, TO, 7), ix_unknown], [TABLE], BLOCKHASH)
d = to_bytes_versioned(msg_d)
[lookup] = msg_d.address_table_lookups
loaded = [TABLE.addresses[i] for i in list(lookup.writable_indexes) + list(lookup.readonly_indexes)]
assert TO in loaded and LOOKED_UP_RO in loaded, "the table must be used"


def looked_up(k: Pubkey) -> str:
    return f"lookup table account #{loaded.index(k)}"


review_d = review(
    msg_d,
    "v0",
    [
        {"kind": "system_transfer", "from": str(W), "to": looked_up(TO), "lamports": 7},
        {"kind": "unknown", "program": str(PROGRAM), "data_len": 12, "accounts": 3},
    ],
    [
        {"warning": "unknown_program", "index": 1, "program": str(PROGRAM)},
        {"warning": "lookup_tables", "count": 1},
    ],
    lookup_tables=1,
)
vectors.append(
    vector(
        "v0_lookup_message",
        "v0 message: one address table lookup, an unknown program",
        d,
        d,
        [],
        signer_index=0,
        review=review_d,
    )
)
tx_d = VersionedTransaction(msg_d, [WALLET])
vectors.append(
    vector(
        "v0_lookup_transaction",
        "(d) signed: a whole v0 transaction",
        bytes(tx_d),
        d,
        tx_d.signatures,
        signer_index=0,
        review=review_d,
    )
)

# (e) SPL Token Transfer and Token-2022 TransferChecked, built by hand.
SOURCE, DEST, MINT = key(60), key(61), key(62)
ix_token = Instruction(
    TOKEN,
    bytes([3]) + struct.pack("<Q", 123_456),
    [AccountMeta(SOURCE, False, True), AccountMeta(DEST, False, True), AccountMeta(W, True, False)],
)
ix_checked = Instruction(
    TOKEN_2022,
    bytes([12]) + struct.pack("<Q", 2_500_000) + bytes([6]),
    [
        AccountMeta(SOURCE, False, True),
        AccountMeta(MINT, False, False),
        AccountMeta(DEST, False, True),
        AccountMeta(W, True, False),
    ],
)
msg_e = Message.new_with_blockhash([ix_token, ix_checked], W, BLOCKHASH)
e = legacy_bytes(msg_e)
vectors.append(
    vector(
        "token_transfers",
        "SPL Token Transfer and Token-2022 TransferChecked",
        e,
        e,
        [],
        signer_index=0,
        review=review(
            msg_e,
            "legacy",
            [
                {
                    "kind": "token_transfer",
                    "program": str(TOKEN),
                    "source": str(SOURCE),
                    "destination": str(DEST),
                    "authority": str(W),
                    "amount": 123_456,
                },
                {
                    "kind": "token_transfer_checked",
                    "program": str(TOKEN_2022),
                    "source": str(SOURCE),
                    "mint": str(MINT),
                    "destination": str(DEST),
                    "authority": str(W),
                    "amount": 2_500_000,
                    "decimals": 6,
                },
            ],
        ),
    )
)

# (f) Compute budget (priority fee) around a transfer, and a System
# instruction that is not decoded (Allocate).
msg_f = Message.new_with_blockhash(
    [
        set_compute_unit_limit(200_000),
        set_compute_unit_price(5_000),
        transfer_ix(W, TO, 1),
        allocate(AllocateParams(pubkey=W, space=100)),
    ],
    W,
    BLOCKHASH,
)
f = legacy_bytes(msg_f)
vectors.append(
    vector(
        "compute_budget",
        "SetComputeUnitLimit, SetComputeUnitPrice, a transfer and Allocate",
        f,
        f,
        [],
        signer_index=0,
        review=review(
            msg_f,
            "legacy",
            [
                {"kind": "compute_budget", "detail": "set compute unit limit 200000"},
                {
                    "kind": "compute_budget",
                    "detail": "set compute unit price 5000 micro-lamports per unit",
                },
                sys_transfer(W, TO, 1),
                {"kind": "system_other", "instruction": 8, "data_len": 12},
            ],
        ),
    )
)

# (g) The wallet only receives: it is not a signer, so it must refuse.
msg_g = Message.new_with_blockhash([transfer_ix(OTHER.pubkey(), W, 5)], OTHER.pubkey(), BLOCKHASH)
g = legacy_bytes(msg_g)
vectors.append(
    vector(
        "not_a_signer",
        "a transfer to the wallet, signed by someone else",
        g,
        g,
        [],
        error="not_a_signer",
    )
)

# (h) Another key pays the fee, the wallet is the second signer. Handed over
# with the payer's signature already in slot 0; `signed_hex` is the whole
# transaction once the wallet's signature is in slot 1.
msg_h = Message.new_with_blockhash([transfer_ix(W, TO, 99)], OTHER.pubkey(), BLOCKHASH)
h = legacy_bytes(msg_h)
assert list(msg_h.account_keys)[1] == W
tx_h = Transaction.new_unsigned(msg_h)
tx_h.partial_sign([OTHER], BLOCKHASH)
assert not tx_h.is_signed()
full_h = Transaction([OTHER, WALLET], msg_h, BLOCKHASH)
vectors.append(
    vector(
        "second_signer",
        "two signers, the wallet second: the payer's signature already in slot 0",
        bytes(tx_h),
        h,
        tx_h.signatures,
        signer_index=1,
        review=review(
            msg_h,
            "legacy",
            [sys_transfer(W, TO, 99)],
            [{"warning": "wallet_not_fee_payer"}],
        ),
        wallet_signature_hex=bytes(full_h.signatures[1]).hex(),
        signed_hex=bytes(full_h).hex(),
    )
)

json.dump({"vectors": vectors}, sys.stdout, indent=2)
sys.stdout.write("\n")
