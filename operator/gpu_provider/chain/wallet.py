"""The provider's signing key, loaded from the bytes of a Kubernetes Secret.

A `Wallet` shows only its address: `repr`, `str`, logs and the messages of errors raised
while loading it never contain key material or the keystore password. Errors are raised
outside the `except` block that caught the underlying failure, so no chained exception
(whose message might quote the input) travels with them either.
"""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from eth_account import Account
from eth_account.signers.local import LocalAccount

from gpu_provider.chain.errors import WalletError

_HEX_DIGITS = frozenset(string.hexdigits)
_KEY_HINT = "expected 32 bytes written as 64 hex digits, with or without a 0x prefix"


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction, ready for eth_sendRawTransaction (no secret in it)."""

    raw: str
    hash: str


def _text(value: str | bytes) -> str | None:
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


class Wallet:
    """One signing key. Build with `from_private_key` or `from_keystore`."""

    __slots__ = ("__account", "address")

    def __init__(self, account: LocalAccount) -> None:
        self.__account = account
        self.address: str = str(account.address)

    def __repr__(self) -> str:
        return f"Wallet(address={self.address})"

    __str__ = __repr__

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("a Wallet cannot be pickled or copied: load it again from its Secret")

    @classmethod
    def from_private_key(cls, key: str | bytes) -> Wallet:
        """A wallet from a hex private key (text or its bytes; surrounding whitespace and a
        0x prefix are accepted) or from the 32 raw key bytes (32 bytes that are all ASCII hex
        digits are read as text, and refused as too short)."""
        account = None
        raw: bytes | None = None
        if (
            isinstance(key, bytes)
            and len(key) == 32
            and not set(key.decode("latin-1")) <= _HEX_DIGITS
        ):
            raw = key
        else:
            text = _text(key)
            if text is not None:
                text = text.strip()
                if text[:2] in ("0x", "0X"):
                    text = text[2:]
                if len(text) == 64 and set(text) <= _HEX_DIGITS:
                    raw = bytes.fromhex(text)
        if raw is not None:
            try:
                account = Account.from_key(raw)
            except Exception:  # out of the curve's range; the library message may quote it
                account = None
        if account is None:
            raise WalletError(f"the private key is not valid: {_KEY_HINT}")
        return cls(account)

    @classmethod
    def from_keystore(cls, keystore: str | bytes, password: str | bytes) -> Wallet:
        """A wallet from an encrypted JSON keystore (V3) and its password.

        Decryption is deliberately slow (scrypt/pbkdf2): in async code use
        `await Wallet.load_keystore(...)`, which runs it in a thread. A password read from a
        file often ends with a newline; if the exact password fails, the stripped one is tried.
        """
        text = _text(keystore)
        document: Any = None
        if text is not None:
            try:
                document = json.loads(text)
            except ValueError:
                document = None
        if not isinstance(document, Mapping) or "crypto" not in {k.lower() for k in document}:
            raise WalletError("the keystore is not a JSON keystore (V3) document")
        secret = _text(password)
        if secret is None:
            raise WalletError("the keystore password is not UTF-8 text")
        candidates = [secret] if secret == secret.strip() else [secret, secret.strip()]
        failure = "the keystore could not be decrypted"
        for candidate in candidates:
            try:
                raw = Account.decrypt(dict(document), candidate)
            except ValueError as exc:
                wrong = "mac mismatch" in str(exc).lower()
                failure = (
                    "the keystore password is wrong (MAC mismatch)"
                    if wrong
                    else "the keystore could not be decrypted: unsupported or damaged keystore"
                )
                continue
            except Exception as exc:  # damaged keystores raise KeyError, TypeError, ...
                failure = f"the keystore could not be decrypted: {type(exc).__name__}"
                continue
            return cls.from_private_key(bytes(raw))
        raise WalletError(failure)

    @classmethod
    async def load_keystore(cls, keystore: str | bytes, password: str | bytes) -> Wallet:
        """`from_keystore` in a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(cls.from_keystore, keystore, password)

    def sign_transaction(self, tx: Mapping[str, Any]) -> SignedTx:
        """Sign an EIP-1559 (or other typed) transaction dict."""
        signed = self.__account.sign_transaction(dict(tx))
        return SignedTx(raw="0x" + signed.raw_transaction.hex(), hash="0x" + signed.hash.hex())

    def encrypt(self, password: str) -> dict[str, Any]:
        """A JSON keystore (V3) of this key, for tooling that writes Secrets."""
        return dict(self.__account.encrypt(password))
