"""Wallet keys load from a Secret's bytes and never show up in repr, str, logs or errors."""

from __future__ import annotations

import copy
import json
import logging
import pickle

import pytest
from eth_account import Account

from gpu_provider.chain.errors import WalletError
from gpu_provider.chain.wallet import Wallet
from gpu_provider.devnet.accounts import derive_account
from gpu_provider.devnet.anvil import DEFAULT_CHAIN_ID as CHAIN_ID
from gpu_provider.devnet.anvil import DEFAULT_MNEMONIC

_ACCOUNT = derive_account(DEFAULT_MNEMONIC, 7)
KEY = "0x" + bytes(_ACCOUNT.key).hex()
ADDRESS = str(_ACCOUNT.address)
PASSWORD = "correct horse battery staple"


def forms_of_the_key(key: str) -> list[str]:
    bare = key[2:]
    return [bare, bare.upper(), key, key.upper()[2:]]


def assert_no_secret(text: str, *secrets: str) -> None:
    lowered = text.lower()
    for secret in secrets:
        for form in forms_of_the_key(secret) if secret.startswith("0x") else [secret]:
            assert form.lower() not in lowered


def fast_keystore(password: str) -> bytes:
    keystore = Account.encrypt(bytes.fromhex(KEY[2:]), password, kdf="pbkdf2", iterations=2)
    return json.dumps(keystore).encode()


@pytest.mark.parametrize(
    "secret",
    [KEY, KEY[2:], f"  {KEY}\n", KEY.encode(), f"{KEY[2:]}\n".encode(), bytes.fromhex(KEY[2:])],
    ids=["0x-hex", "bare-hex", "padded", "bytes", "bytes-newline", "raw-32-bytes"],
)
def test_loads_a_private_key_in_the_forms_secrets_hold(secret: str | bytes) -> None:
    assert Wallet.from_private_key(secret).address == ADDRESS


def test_repr_and_str_show_only_the_address() -> None:
    wallet = Wallet.from_private_key(KEY)

    for shown in (repr(wallet), str(wallet), f"{wallet}", f"{wallet!r}", f"{wallet}"):
        assert ADDRESS in shown
        assert_no_secret(shown, KEY)


def test_cannot_be_pickled_or_copied() -> None:
    wallet = Wallet.from_private_key(KEY)
    with pytest.raises(TypeError):
        pickle.dumps(wallet)
    with pytest.raises(TypeError):
        copy.deepcopy(wallet)
    assert not hasattr(wallet, "__dict__")


@pytest.mark.parametrize(
    "bad",
    [
        KEY[:-2],  # too short
        KEY + "00",  # too long
        KEY[:-1] + "g",  # not hex
        "0x" + "00" * 32,  # zero: not a valid secp256k1 key
        "0x" + "ff" * 32,  # above the curve order
        KEY.encode()[:-1] + b"\xff",  # not text
    ],
    ids=["short", "long", "not-hex", "zero", "over-order", "not-utf8"],
)
def test_bad_private_keys_fail_without_echoing_them(bad: str | bytes) -> None:
    with pytest.raises(WalletError) as caught:
        Wallet.from_private_key(bad)

    error = caught.value
    text = bad if isinstance(bad, str) else bad.hex()
    assert_no_secret(str(error), KEY)
    assert_no_secret(repr(error), KEY)
    assert text.lower().removeprefix("0x")[:40] not in str(error).lower()
    assert error.__cause__ is None
    assert error.__context__ is None


def test_loads_a_keystore_with_its_password() -> None:
    keystore = fast_keystore(PASSWORD)

    assert Wallet.from_keystore(keystore, PASSWORD).address == ADDRESS
    assert Wallet.from_keystore(keystore.decode(), f"{PASSWORD}\n".encode()).address == ADDRESS


async def test_loads_a_keystore_off_the_event_loop() -> None:
    wallet = await Wallet.load_keystore(fast_keystore(PASSWORD), PASSWORD)
    assert wallet.address == ADDRESS


@pytest.mark.parametrize(
    ("keystore", "password", "message"),
    [
        (fast_keystore(PASSWORD), "wrong password", "password is wrong"),
        (b"{not json", PASSWORD, "not a JSON keystore"),
        (b'{"version": 3}', PASSWORD, "not a JSON keystore"),
        (
            fast_keystore(PASSWORD).replace(b'"pbkdf2"', b'"argon9"'),
            PASSWORD,
            "could not be decrypted",
        ),
    ],
    ids=["wrong-password", "not-json", "no-crypto", "unknown-kdf"],
)
def test_keystore_errors_say_what_is_wrong_without_secrets(
    keystore: bytes, password: str, message: str
) -> None:
    with pytest.raises(WalletError, match=message) as caught:
        Wallet.from_keystore(keystore, password)

    error = caught.value
    assert_no_secret(str(error), KEY, PASSWORD, "wrong password")
    assert error.__cause__ is None
    assert error.__context__ is None


def test_signing_logs_nothing_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wallet = Wallet.from_private_key(KEY)
    logging.getLogger("test").info("loaded %s / %r", wallet, wallet)
    signed = wallet.sign_transaction(
        {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": 0,
            "to": ADDRESS,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 10**9,
            "maxPriorityFeePerGas": 1,
        }
    )

    assert signed.hash.startswith("0x")
    assert_no_secret(caplog.text, KEY)
    assert_no_secret(repr(signed), KEY)
