"""The Auth-Spheron header: what a tenant signs, and what a provider accepts or refuses."""

from __future__ import annotations

import base64
import json

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from gpu_provider.market.auth import (
    AUTH_HEADER,
    MAX_TOKEN_AGE_SECONDS,
    AuthError,
    auth_message,
    build_auth_header,
    verify_auth_header,
)

TENANT_KEY = "0x" + "5d" * 32
OTHER_KEY = "0x" + "a7" * 32
TENANT = Account.from_key(TENANT_KEY).address
OTHER = Account.from_key(OTHER_KEY).address
NOW = 1_760_000_000


def _body(header: str) -> dict[str, object]:
    body: dict[str, object] = json.loads(base64.b64decode(header))
    return body


def _header(body: dict[str, object]) -> str:
    return base64.b64encode(json.dumps(body).encode()).decode()


def test_header_name_and_signed_text_are_the_sdks() -> None:
    assert AUTH_HEADER == "Auth-Spheron"
    assert auth_message(NOW) == f"Sending Request to Provider at: {NOW}"


def test_header_is_base64_json_with_the_sdk_fields() -> None:
    body = _body(build_auth_header(TENANT_KEY, now=NOW))
    assert list(body) == ["pub_key", "timestamp", "signed_timestamp"]
    assert body["timestamp"] == NOW
    pub_key, signature = str(body["pub_key"]), str(body["signed_timestamp"])
    # Uncompressed public key without 0x, as ethers' recoverPublicKey(...).substring(2).
    assert pub_key.startswith("04")
    assert len(pub_key) == 130
    assert signature.startswith("0x")
    assert len(signature) == 2 + 130
    # v adjusted from 27/28 to 0/1, for Go's Ecrecover.
    assert int(signature[-2:], 16) in (0, 1)


def test_signature_is_a_plain_personal_sign_of_the_message() -> None:
    """Any EIP-191 implementation recovers the tenant from it once v is moved back to 27/28."""
    signature = bytes.fromhex(
        str(_body(build_auth_header(TENANT_KEY, now=NOW))["signed_timestamp"])[2:]
    )
    ethereum_style = signature[:64] + bytes([signature[64] + 27])
    message = encode_defunct(text=f"Sending Request to Provider at: {NOW}")
    assert Account.recover_message(message, signature=ethereum_style) == TENANT


@pytest.mark.parametrize("age", [0, 1, 19, MAX_TOKEN_AGE_SECONDS, -5])
def test_a_fresh_token_verifies_to_its_signer(age: int) -> None:
    token = verify_auth_header(build_auth_header(TENANT_KEY, now=NOW), now=NOW + age)
    assert (token.address, token.timestamp) == (TENANT, NOW)
    assert token.public_key == _body(build_auth_header(TENANT_KEY, now=NOW))["pub_key"]


def test_the_expected_signer_is_accepted_in_any_letter_case() -> None:
    header = build_auth_header(TENANT_KEY, now=NOW)
    assert verify_auth_header(header, now=NOW, expected_signer=TENANT.lower()).address == TENANT


@pytest.mark.parametrize("age", [MAX_TOKEN_AGE_SECONDS + 1, 3600])
def test_an_old_token_is_refused(age: int) -> None:
    with pytest.raises(AuthError, match=r"signed \d+ s ago; tokens are valid for 20 s") as refused:
        verify_auth_header(build_auth_header(TENANT_KEY, now=NOW), now=NOW + age)
    assert refused.value.reason == "Expired"


def test_a_token_from_the_future_is_refused() -> None:
    with pytest.raises(AuthError, match="in the future") as refused:
        verify_auth_header(build_auth_header(TENANT_KEY, now=NOW + 60), now=NOW)
    assert refused.value.reason == "FromTheFuture"


def test_a_token_by_someone_else_than_the_lease_tenant_is_refused() -> None:
    header = build_auth_header(OTHER_KEY, now=NOW)
    with pytest.raises(AuthError, match=f"signed by {OTHER}, not by {TENANT}") as refused:
        verify_auth_header(header, now=NOW, expected_signer=TENANT)
    assert refused.value.reason == "WrongSigner"


def test_claiming_someone_elses_public_key_is_refused() -> None:
    """A signature by one key next to the tenant's public key must not pass as the tenant."""
    forged = _body(build_auth_header(OTHER_KEY, now=NOW))
    forged["pub_key"] = _body(build_auth_header(TENANT_KEY, now=NOW))["pub_key"]
    with pytest.raises(AuthError) as refused:
        verify_auth_header(_header(forged), now=NOW, expected_signer=TENANT)
    assert refused.value.reason == "KeyMismatch"


def test_a_signature_over_another_time_is_refused() -> None:
    """Changing the timestamp to renew a captured token changes who the signature recovers to."""
    replayed = _body(build_auth_header(TENANT_KEY, now=NOW - 3600))
    replayed["timestamp"] = NOW
    with pytest.raises(AuthError) as refused:
        verify_auth_header(_header(replayed), now=NOW, expected_signer=TENANT)
    assert refused.value.reason in {"KeyMismatch", "BadSignature"}


def test_ethereum_style_v_and_bare_keys_are_accepted() -> None:
    body = _body(build_auth_header(TENANT_KEY, now=NOW))
    signature = bytes.fromhex(str(body["signed_timestamp"])[2:])
    body["signed_timestamp"] = (signature[:64] + bytes([signature[64] + 27])).hex()
    body["pub_key"] = str(body["pub_key"])[2:]
    body["timestamp"] = str(NOW)
    assert verify_auth_header(_header(body), now=NOW).address == TENANT


def _variant(**changes: object) -> str:
    body = _body(build_auth_header(TENANT_KEY, now=NOW))
    for key, value in changes.items():
        if value is None:
            del body[key]
        else:
            body[key] = value
    return _header(body)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "MissingHeader"),
        ("", "MissingHeader"),
        ("not base64!", "Malformed"),
        (base64.b64encode(b"not json").decode(), "Malformed"),
        (base64.b64encode(b"[1, 2]").decode(), "Malformed"),
        ("A" * 5000, "Malformed"),
        (_variant(timestamp=None), "Malformed"),
        (_variant(timestamp=-1), "Malformed"),
        (_variant(timestamp=True), "Malformed"),
        (_variant(timestamp=1.5), "Malformed"),
        (_variant(pub_key=None), "Malformed"),
        (_variant(pub_key="04" + "zz" * 64), "Malformed"),
        (_variant(pub_key="05" + "11" * 64), "Malformed"),
        (_variant(pub_key="04" + "11" * 10), "Malformed"),
        (_variant(signed_timestamp=None), "Malformed"),
        (_variant(signed_timestamp="0x" + "11" * 64), "Malformed"),
        (_variant(signed_timestamp="0x" + "11" * 64 + "07"), "Malformed"),
        (_variant(signed_timestamp="0x" + "00" * 64 + "01"), "BadSignature"),
        (_variant(pub_key="04" + "11" * 64), "KeyMismatch"),
    ],
)
def test_malformed_headers_are_refused_with_a_reason(header: str | None, reason: str) -> None:
    with pytest.raises(AuthError) as refused:
        verify_auth_header(header, now=NOW)
    assert refused.value.reason == reason
    assert str(refused.value)


@pytest.mark.parametrize("now", [-1, 1.5, True])
def test_building_needs_unix_seconds(now: object) -> None:
    with pytest.raises(ValueError, match="unix seconds"):
        build_auth_header(TENANT_KEY, now=now)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["0x1234", "not hex", b"\x01" * 31])
def test_building_needs_a_private_key(key: str | bytes) -> None:
    with pytest.raises(ValueError, match="private key"):
        build_auth_header(key, now=NOW)
