"""The `Auth-Spheron` header: how a tenant proves to a provider which wallet is calling.

The tenant signs `"Sending Request to Provider at: <unix seconds>"` with an Ethereum
personal-sign signature (EIP-191), moves the recovery byte `v` from 27/28 to 0/1 (as the
provider's Go code expects), and sends

    Auth-Spheron: base64(JSON{"timestamp": <int>, "pub_key": "04<128 hex>",
                              "signed_timestamp": "0x<130 hex>"})

The provider recovers the signer from the signature, checks that it owns `pub_key`, that the
token is at most 20 s old, and (the gateway's part) that the signer is the lease's tenant.

Both directions are pure: the caller passes the clock (`now`, unix seconds), so the gateway,
the devnet tenant client and the tests share one implementation and nothing here reads the
time, the network or a file.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.datatypes import PrivateKey, PublicKey
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.exceptions import ValidationError

__all__ = [
    "AUTH_HEADER",
    "MAX_TOKEN_AGE_SECONDS",
    "AuthError",
    "AuthToken",
    "ReplayCache",
    "auth_message",
    "build_auth_header",
    "verify_auth_header",
]

AUTH_HEADER: Final = "Auth-Spheron"
MAX_TOKEN_AGE_SECONDS: Final = 20
"""A token older than this is refused: a captured header is useless 20 s later."""
MAX_CLOCK_SKEW_SECONDS: Final = 5
"""How far in the future a timestamp may be, to forgive a tenant clock slightly ahead."""
MAX_HEADER_CHARS: Final = 2048
"""A real header is about 400 characters; anything far longer is refused before decoding."""
_MESSAGE_PREFIX: Final = "Sending Request to Provider at: "
_SIGNATURE_BYTES: Final = 65
_PUBLIC_KEY_BYTES: Final = 64
_UNCOMPRESSED_PREFIX: Final = "04"


class AuthError(ValueError):
    """The header is missing, malformed, expired, or not signed by who it claims (or should).

    `reason` is a short CamelCase code for logs and HTTP error bodies; the message says it in
    a sentence.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class AuthToken:
    """A verified header: who signed it, and when."""

    address: str
    """Checksummed address of the signer."""
    timestamp: int
    public_key: str
    """Uncompressed public key, `04` + 128 hex digits, as the header carries it."""


def auth_message(timestamp: int) -> str:
    """The exact text the tenant signs for a token issued at `timestamp` (unix seconds)."""
    return f"{_MESSAGE_PREFIX}{timestamp}"


def build_auth_header(private_key: bytes | str, *, now: int) -> str:
    """The `Auth-Spheron` header value for the key's wallet, issued at `now` (unix seconds)."""
    if isinstance(now, bool) or not isinstance(now, int) or now < 0:
        raise ValueError("now must be a non-negative int of unix seconds")
    key = PrivateKey(_key_bytes(private_key))
    signed = Account.sign_message(encode_defunct(text=auth_message(now)), private_key=key)
    signature = bytearray(signed.signature)
    # Go's crypto.Ecrecover wants the raw recovery id (0/1), not Ethereum's 27/28.
    if signature[64] >= 27:
        signature[64] -= 27
    body = {
        "pub_key": _UNCOMPRESSED_PREFIX + key.public_key.to_bytes().hex(),
        "timestamp": now,
        "signed_timestamp": "0x" + bytes(signature).hex(),
    }
    return base64.b64encode(json.dumps(body, separators=(",", ":")).encode()).decode("ascii")


def verify_auth_header(
    header: str | None,
    *,
    now: int,
    expected_signer: str | None = None,
    max_age: int = MAX_TOKEN_AGE_SECONDS,
    max_clock_skew: int = MAX_CLOCK_SKEW_SECONDS,
) -> AuthToken:
    """Check a header value at time `now`; return who signed it or raise `AuthError`.

    `expected_signer`, when given, must be the signer (the gateway passes the lease's tenant).
    """
    if not header:
        raise AuthError("MissingHeader", f"the {AUTH_HEADER} header is missing or empty")
    if len(header) > MAX_HEADER_CHARS:
        raise AuthError("Malformed", f"the {AUTH_HEADER} header is longer than any valid token")
    timestamp, public_key, signature = _parse(header)
    age = now - timestamp
    if age > max_age:
        raise AuthError(
            "Expired",
            f"the token was signed {age} s ago; tokens are valid for {max_age} s: sign a new one",
        )
    if -age > max_clock_skew:
        raise AuthError(
            "FromTheFuture",
            f"the token's timestamp is {-age} s in the future: check the tenant's clock",
        )
    signer = _recover(timestamp, signature)
    claimed = PublicKey(public_key).to_checksum_address()
    if signer != claimed:
        raise AuthError(
            "KeyMismatch", "the signature was not made by the key in pub_key (forged or corrupt)"
        )
    if expected_signer is not None and signer != _checksum(expected_signer):
        raise AuthError(
            "WrongSigner",
            f"the token is signed by {signer}, not by {_checksum(expected_signer)}",
        )
    return AuthToken(
        address=signer,
        timestamp=timestamp,
        public_key=_UNCOMPRESSED_PREFIX + public_key.hex(),
    )


class ReplayCache:
    """Which body each token was used for, so a captured token cannot carry another body.

    A tenant (or Spheron's proxy) may resend the same request with the same token: that is
    a retry and passes. The same token with a different body is refused. The signature is
    deterministic (RFC 6979), so one wallet signing twice in the same second makes the same
    token: the key therefore includes what the request is about (the lease), and two
    different manifests for one lease in the same second are the only legitimate case
    refused (the tenant signs again a second later).

    Entries live `ttl` seconds (the token's own lifetime plus the allowed skew: after that
    the token is refused as expired anyway), and at most `max_entries` are kept, the oldest
    dropped first. Pure: the caller passes the clock.
    """

    def __init__(
        self,
        *,
        ttl: int = MAX_TOKEN_AGE_SECONDS + MAX_CLOCK_SKEW_SECONDS,
        max_entries: int = 10_000,
    ) -> None:
        if ttl < 1 or max_entries < 1:
            raise ValueError("ttl and max_entries must be positive")
        self.ttl = ttl
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str], tuple[str, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, token: str, scope: str, body_sha256: str, *, now: int) -> None:
        """Record `token` as used for `body_sha256` within `scope`; raise `AuthError`
        (`Replayed`) if it was used there for a different body within its lifetime."""
        self._expire(now)
        key = (token, scope)
        seen = self._seen.get(key)
        if seen is not None and seen[0] != body_sha256:
            raise AuthError(
                "Replayed",
                "this token was already used for a different request body; sign a new one",
            )
        if seen is None:
            self._seen[key] = (body_sha256, now)
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)

    def _expire(self, now: int) -> None:
        while self._seen:
            key, (_, used_at) = next(iter(self._seen.items()))
            if now - used_at < self.ttl:
                return
            del self._seen[key]


def _key_bytes(private_key: bytes | str) -> bytes:
    if isinstance(private_key, str):
        try:
            private_key = bytes.fromhex(private_key.removeprefix("0x"))
        except ValueError:
            raise ValueError("the private key is not hex") from None
    if len(private_key) != 32:
        raise ValueError("a private key is 32 bytes")
    return private_key


def _checksum(address: str) -> str:
    try:
        return to_checksum_address(address)
    except ValueError:
        raise AuthError("BadExpectedSigner", f"{address!r} is not an address") from None


def _parse(header: str) -> tuple[int, bytes, bytes]:
    try:
        raw = base64.b64decode(header.strip(), validate=True)
        body = json.loads(raw)
    except (binascii.Error, ValueError):
        raise AuthError("Malformed", f"the {AUTH_HEADER} header is not base64 of JSON") from None
    if not isinstance(body, dict):
        raise AuthError("Malformed", f"the {AUTH_HEADER} token must be a JSON object")
    return (
        _timestamp(body.get("timestamp")),
        _public_key(body.get("pub_key")),
        _signature(body.get("signed_timestamp")),
    )


def _timestamp(value: object) -> int:
    # The SDK sends a JSON number; a digit string is accepted too, nothing else.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AuthError("Malformed", "timestamp must be unix seconds (a non-negative integer)")
    return value


def _hex_field(value: object, name: str, size: int) -> bytes:
    if not isinstance(value, str):
        raise AuthError("Malformed", f"{name} must be a hex string")
    text = value.removeprefix("0x")
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise AuthError("Malformed", f"{name} is not hex") from None
    if len(data) != size:
        raise AuthError("Malformed", f"{name} must be {size} bytes, got {len(data)}")
    return data


def _public_key(value: object) -> bytes:
    # Uncompressed SEC1 point: `04` + X + Y. The bare 64-byte form is accepted too.
    if isinstance(value, str) and len(value.removeprefix("0x")) == 2 * (_PUBLIC_KEY_BYTES + 1):
        text = value.removeprefix("0x")
        if not text.startswith(_UNCOMPRESSED_PREFIX):
            raise AuthError("Malformed", "pub_key must be an uncompressed key starting with 04")
        value = text[2:]
    return _hex_field(value, "pub_key", _PUBLIC_KEY_BYTES)


def _signature(value: object) -> bytes:
    signature = bytearray(_hex_field(value, "signed_timestamp", _SIGNATURE_BYTES))
    if signature[64] >= 27:
        signature[64] -= 27
    if signature[64] not in (0, 1):
        raise AuthError("Malformed", "signed_timestamp has an invalid recovery id")
    return bytes(signature)


def _recover(timestamp: int, signature: bytes) -> str:
    message = encode_defunct(text=auth_message(timestamp))
    try:
        recovered: str = Account.recover_message(
            message, signature=signature[:64] + bytes([signature[64] + 27])
        )
    except (BadSignature, ValidationError, ValueError):
        raise AuthError("BadSignature", "signed_timestamp is not a valid signature") from None
    return to_checksum_address(recovered)
