"""Independent checks of Ethereum signatures with eth-account (not the
wallet's Rust code): prints the address that signed.

    eth_check.py message TEXT SIGNATURE_HEX   # EIP-191 personal_sign
    eth_check.py typed JSON SIGNATURE_HEX     # EIP-712 typed data
    eth_check.py tx RAW_TX_HEX                # a signed EIP-1559 transaction
"""
import json
import sys

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

kind = sys.argv[1]
if kind == "message":
    address = Account.recover_message(encode_defunct(text=sys.argv[2]), signature=sys.argv[3])
    print(json.dumps({"address": address}))
elif kind == "typed":
    message = encode_typed_data(full_message=json.loads(sys.argv[2]))
    address = Account.recover_message(message, signature=sys.argv[3])
    print(json.dumps({"address": address}))
elif kind == "tx":
    raw = sys.argv[2]
    print(json.dumps({"address": Account.recover_transaction(raw)}))
else:
    sys.exit(f"unknown check {kind!r}")
