"""What nodes answer to eth_sendRawTransaction, across clients, and what the manager makes of it."""

from __future__ import annotations

import pytest

from gpu_provider.chain.errors import RpcError
from gpu_provider.chain.nodeanswers import SendAnswer, classify_send_error, is_revert, revert_data


def error(message: str, data: object = None) -> RpcError:
    return RpcError("eth_sendRawTransaction", -32000, message, data)


@pytest.mark.parametrize(
    ("message", "answer"),
    [
        ("already known", SendAnswer.ACCEPTED),
        ("ALREADY_EXISTS: already known", SendAnswer.ACCEPTED),
        ("known transaction: 0xabc", SendAnswer.ACCEPTED),
        ("nonce too low: next nonce 5, tx nonce 4", SendAnswer.NONCE_TAKEN),
        ("OldNonce", SendAnswer.NONCE_TAKEN),
        ("replacement transaction underpriced", SendAnswer.NONCE_PENDING),
        ("ReplacementNotAllowed", SendAnswer.NONCE_PENDING),
        ("transaction underpriced", SendAnswer.FEE_TOO_LOW),
        ("max fee per gas less than block base fee", SendAnswer.FEE_TOO_LOW),
        ("FeeTooLow, MaxFeePerGas too low", SendAnswer.FEE_TOO_LOW),
        ("insufficient funds for gas * price + value", SendAnswer.REJECTED),
        ("intrinsic gas too low", SendAnswer.REJECTED),
        ("invalid chain id for signer", SendAnswer.REJECTED),
        ("internal error", SendAnswer.UNKNOWN),
        ("", SendAnswer.UNKNOWN),
    ],
)
def test_send_errors_are_classified_by_their_wording(message: str, answer: SendAnswer) -> None:
    assert classify_send_error(error(message)) is answer


def test_replacement_underpriced_is_not_taken_for_a_low_fee() -> None:
    # "underpriced" appears in both; the replacement case must win (it needs another bump).
    assert classify_send_error(error("replacement transaction underpriced")) is (
        SendAnswer.NONCE_PENDING
    )


@pytest.mark.parametrize(
    ("data", "found"),
    [
        ("0x08c379a0" + "00" * 4, "0x08c379a0" + "00" * 4),
        ({"data": "0xdeadbeef"}, "0xdeadbeef"),
        ({"result": "0xdeadbeef00"}, "0xdeadbeef00"),
        ("0x", None),
        (None, None),
        (42, None),
    ],
)
def test_revert_data_is_found_where_clients_put_it(data: object, found: str | None) -> None:
    assert revert_data(error("execution reverted", data)) == found


def test_a_revert_without_data_is_still_a_revert() -> None:
    assert is_revert(error("execution reverted: not the owner"))
    assert not is_revert(error("nonce too low"))
