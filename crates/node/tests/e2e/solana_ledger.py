#!/usr/bin/env python3
"""A Solana ledger for the e2e tests: LiteSVM (the Solana runtime, in
process, from python solders) behind one JSON object per line.

Each request on stdin is {"cmd": ..., ...}; each answer on stdout is one
JSON object, {"error": "..."} when the request itself was bad. Commands:

  fund {address, lamports}               airdrop
  blockhash {}                           {"blockhash"}: the latest one
  nonce {authority}                      a durable nonce account of that
                                         authority: {"account", "nonce"}
  expire {}                              a new blockhash; old ones expire
  transfer_message {from, to, lamports, blockhash, nonce_account?}
                                         the SDK's own message, base64
  send {transaction}                     {"ok"} or {"ok": false, "refused"}
  balance {address}                      {"lamports"}

Addresses and hashes are base58, transactions base64.
"""

import base64
import json
import sys

from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import (
    AdvanceNonceAccountParams,
    TransferParams,
    advance_nonce_account,
    create_nonce_account,
    transfer,
)
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata

NONCE_SPACE = 80  # solana_program::nonce::State::size()


def nonce_value(svm, account):
    # Versions::Current(State::Initialized(Data { authority, durable_nonce, .. }))
    data = bytes(svm.get_account(account).data)
    return Hash(data[40:72])


def main():
    svm = LiteSVM()
    funder = Keypair()
    svm.airdrop(funder.pubkey(), 100_000_000_000)

    def handle(r):
        cmd = r["cmd"]
        if cmd == "fund":
            res = svm.airdrop(Pubkey.from_string(r["address"]), int(r["lamports"]))
            if isinstance(res, FailedTransactionMetadata):
                return {"error": str(res.err())}
            return {"ok": True}
        if cmd == "blockhash":
            return {"blockhash": str(svm.latest_blockhash())}
        if cmd == "nonce":
            account = Keypair()
            rent = svm.minimum_balance_for_rent_exemption(NONCE_SPACE)
            ixs = create_nonce_account(
                funder.pubkey(),
                account.pubkey(),
                Pubkey.from_string(r["authority"]),
                rent,
            )
            tx = Transaction(
                [funder, account],
                Message(ixs, funder.pubkey()),
                svm.latest_blockhash(),
            )
            res = svm.send_transaction(tx)
            if isinstance(res, FailedTransactionMetadata):
                return {"error": str(res.err())}
            # A nonce can't be advanced while it equals the current
            # blockhash's durable nonce.
            svm.expire_blockhash()
            return {
                "account": str(account.pubkey()),
                "nonce": str(nonce_value(svm, account.pubkey())),
            }
        if cmd == "expire":
            svm.expire_blockhash()
            return {"blockhash": str(svm.latest_blockhash())}
        if cmd == "transfer_message":
            payer = Pubkey.from_string(r["from"])
            ixs = []
            if r.get("nonce_account"):
                ixs.append(
                    advance_nonce_account(
                        AdvanceNonceAccountParams(
                            nonce_pubkey=Pubkey.from_string(r["nonce_account"]),
                            authorized_pubkey=payer,
                        )
                    )
                )
            ixs.append(
                transfer(
                    TransferParams(
                        from_pubkey=payer,
                        to_pubkey=Pubkey.from_string(r["to"]),
                        lamports=int(r["lamports"]),
                    )
                )
            )
            msg = Message.new_with_blockhash(ixs, payer, Hash.from_string(r["blockhash"]))
            return {"message": base64.b64encode(bytes(msg)).decode()}
        if cmd == "send":
            tx = VersionedTransaction.from_bytes(base64.b64decode(r["transaction"]))
            res = svm.send_transaction(tx)
            if isinstance(res, FailedTransactionMetadata):
                return {"ok": False, "refused": str(res.err())}
            return {"ok": True, "signature": str(res.signature())}
        if cmd == "balance":
            return {"lamports": svm.get_balance(Pubkey.from_string(r["address"])) or 0}
        return {"error": f"unknown command {cmd!r}"}

    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = handle(json.loads(line))
        except Exception as e:  # a bad request is answered, not fatal
            answer = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
