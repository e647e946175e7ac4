"""The devnet contracts revert with Spheron's custom errors, and the chain client decodes every
one of them by selector into its name, its arguments by name and a sentence.

Spheron's contracts never revert with strings: a provider whose client only understood
`Error(string)` would see "unknown custom error 0x8083ad03" where it should see that the bid
window closed. The reference ABIs live in `../shared/spheron/abi/` next to the repository (CI
has them too), so these tests fail, rather than skip, when they are missing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from eth_abi import abi as eth_abi
from eth_utils.abi import collapse_if_tuple

from gpu_provider.chain.artifacts import CONTRACT_NAMES, load_artifact
from gpu_provider.chain.contract_errors import error_selector, error_signature, marketplace_errors
from gpu_provider.chain.decoding import decode_revert
from gpu_provider.chain.errors import ContractRevert, RpcError, TransactionReverted
from gpu_provider.chain.receipts import reverted
from gpu_provider.chain.revert_sentences import SENTENCES, sentence_for

REPO = Path(__file__).resolve().parents[2]
REFERENCE_ABI_DIR = REPO.parent / "shared" / "spheron" / "abi"
SOURCES = REPO / "contracts" / "src"
WITH_REFERENCE = [n for n in CONTRACT_NAMES if n != "AccessControlManager"]

SAMPLE: dict[str, Any] = {
    "address": "0x" + "ab" * 20,
    "uint256": 7,
    "bytes32": b"\x01" * 32,
    "uint8": 3,
    "bool": True,
    "string": "x",
}


def reference_errors(contract: str) -> list[dict[str, Any]]:
    assert REFERENCE_ABI_DIR.is_dir(), (
        f"Spheron's reference ABIs are missing at {REFERENCE_ABI_DIR}: check out the shared "
        "folder next to the repository (CI has it)"
    )
    abi = json.loads((REFERENCE_ABI_DIR / f"{contract}.json").read_text(encoding="utf-8"))
    return [entry for entry in abi if entry["type"] == "error"]


def shape(entry: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...], bytes]:
    inputs = tuple((i["name"], collapse_if_tuple(i)) for i in entry["inputs"])
    return entry["name"], inputs, error_selector(entry)


def every_artifact_error() -> list[tuple[str, dict[str, Any]]]:
    return [
        (contract, entry)
        for contract in CONTRACT_NAMES
        for entry in load_artifact(contract).abi
        if entry["type"] == "error"
    ]


def encoded(entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Revert data for `entry` with sample arguments, and the arguments by name."""
    types = [collapse_if_tuple(i) for i in entry["inputs"]]
    values = [SAMPLE[t] for t in types]
    data = error_selector(entry) + eth_abi.encode(types, values)
    return "0x" + data.hex(), {i["name"]: v for i, v in zip(entry["inputs"], values, strict=True)}


@pytest.mark.parametrize("contract", WITH_REFERENCE)
def test_every_spheron_error_is_in_our_artifact_with_the_same_name_inputs_and_selector(
    contract: str,
) -> None:
    ours = {shape(entry) for entry in load_artifact(contract).abi if entry["type"] == "error"}
    missing = [
        error_signature(entry) for entry in reference_errors(contract) if shape(entry) not in ours
    ]
    assert not missing, f"{contract} lacks Spheron's errors {missing}"


def test_devnet_contracts_have_no_string_reverts() -> None:
    string_revert = re.compile(r'require\([^;]*,\s*"|revert\s*\(\s*"|revert\s+Error\(')
    offenders = [
        f"{path.name}:{number}"
        for path in sorted(SOURCES.glob("*.sol"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if string_revert.search(line) or "require(" in line
    ]
    assert not offenders, f"string reverts left (use a custom error): {offenders}"


@pytest.mark.parametrize(
    ("contract", "entry"),
    every_artifact_error(),
    ids=[f"{c}.{e['name']}" for c, e in every_artifact_error()],
)
def test_every_error_decodes_by_selector_without_being_told_the_abi(
    contract: str, entry: dict[str, Any]
) -> None:
    data, args = encoded(entry)

    revert = decode_revert(data)

    assert revert.error_name == entry["name"]
    assert {
        k: (v.lower() if isinstance(v, str) else v) for k, v in revert.error_args.items()
    } == args
    assert revert.selector == "0x" + error_selector(entry).hex()
    assert revert.contract in marketplace_errors()[error_selector(entry)].contracts
    assert contract in marketplace_errors()[error_selector(entry)].contracts


@pytest.mark.parametrize(
    ("contract", "entry"),
    every_artifact_error(),
    ids=[f"{c}.{e['name']}" for c, e in every_artifact_error()],
)
def test_every_error_has_a_sentence_with_its_arguments_filled_in(
    contract: str, entry: dict[str, Any]
) -> None:
    _, args = encoded(entry)

    sentence = sentence_for(entry["name"], args)

    assert sentence, f"{contract}.{entry['name']} has no sentence in revert_sentences.SENTENCES"
    assert "{" not in sentence


@pytest.mark.parametrize("contract", [*WITH_REFERENCE, "ResourceRegistry"])
def test_spheron_errors_the_devnet_lacks_still_have_a_sentence(contract: str) -> None:
    names = {entry["name"] for entry in reference_errors(contract)}
    assert not sorted(names - set(SENTENCES))


@pytest.mark.parametrize(
    ("called", "expected"),
    [("EscrowProtocol", "EscrowProtocol"), ("EscrowUser", "EscrowUser"), ("Bid", "EscrowUser")],
)
def test_an_error_is_attributed_to_the_called_contract_when_it_declares_it(
    called: str, expected: str
) -> None:
    """InsufficientBalance(uint256,uint256) is EscrowUser's and EscrowProtocol's; raised
    inside a call to Bid it can only have come from further down."""
    entry = next(
        e
        for e in load_artifact("EscrowProtocol").abi
        if e["type"] == "error" and e["name"] == "InsufficientBalance"
    )
    data, _ = encoded(entry)

    revert = decode_revert(data, [list(load_artifact(called).abi)])

    assert revert.contract == expected
    assert revert.reason == "InsufficientBalance(available=7, required=7)"


def test_two_errors_of_one_name_are_told_apart_by_selector() -> None:
    with_amounts = decode_revert("0xcf479181" + eth_abi.encode(["uint256"] * 2, [1, 2]).hex())
    without = decode_revert("0xf4d678b8")

    assert (with_amounts.error_name, dict(with_amounts.error_args)) == (
        "InsufficientBalance",
        {"available": 1, "required": 2},
    )
    assert (without.error_name, without.contract) == ("InsufficientBalance", "OrderRequest")
    assert sentence_for("InsufficientBalance", with_amounts.error_args) == (
        "the balance is too low: 1 available, 2 needed"
    )
    assert sentence_for("InsufficientBalance", {}) == (
        "the unlocked escrow balance is too low: deposit more first"
    )


def test_an_estimate_that_reverts_with_a_custom_error_raises_contract_revert() -> None:
    error = RpcError("eth_estimateGas", 3, "execution reverted", "0x8083ad03")

    raised = reverted(error, [load_artifact("Bid").abi])

    assert isinstance(raised, ContractRevert)
    assert (raised.error_name, raised.error_args, raised.contract) == ("BiddingClosed", {}, "Bid")
    assert raised.sentence == "the bidding window for this order has closed"
    assert "the bidding window for this order has closed" in str(raised)
    assert raised.tx_hash is None


def test_a_string_revert_stays_a_plain_transaction_reverted() -> None:
    data = "0x08c379a0" + eth_abi.encode(["string"], ["nope"]).hex()

    raised = reverted(RpcError("eth_estimateGas", 3, "execution reverted: nope", data), [])

    assert type(raised) is TransactionReverted
    assert (raised.reason, raised.error_name, raised.error_args) == (
        "nope",
        "Error",
        {"message": "nope"},
    )


def test_roles_in_access_errors_are_named() -> None:
    entry = next(
        e
        for e in load_artifact("Bid").abi
        if e["type"] == "error" and e["name"] == "AccessControlUnauthorizedAccount"
    )
    data = error_selector(entry) + eth_abi.encode(
        ["address", "bytes32"], ["0x" + "ab" * 20, bytes(32)]
    )

    revert = decode_revert(data)

    assert sentence_for(revert.error_name or "", revert.error_args) == (
        "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB lacks the role DEFAULT_ADMIN_ROLE"
    )
