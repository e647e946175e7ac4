"""The marketplace contracts' custom errors, by 4-byte selector.

Spheron's contracts revert with custom errors (`BiddingClosed()`,
`InsufficientBalance(uint256,uint256)`, ...), and so do the devnet's. Revert data carries only
the selector and the ABI-encoded arguments, and an error raised deep in a call (EscrowUser
refusing a lock inside `OrderRequest.createOrder`) reaches the caller unchanged, so a revert
is looked up among the errors of every marketplace contract, not only the one called.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_utils.abi import collapse_if_tuple, function_signature_to_4byte_selector

Abi = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class ErrorSpec:
    """One custom error, and the contracts whose ABI declares it (deployment order)."""

    entry: Mapping[str, Any]
    selector: bytes
    contracts: tuple[str, ...]

    @property
    def name(self) -> str:
        return str(self.entry["name"])

    @property
    def signature(self) -> str:
        return error_signature(self.entry)


def error_signature(entry: Mapping[str, Any]) -> str:
    """`InsufficientBalance(uint256,uint256)`: what the selector is the hash of."""
    types = ",".join(collapse_if_tuple(dict(i)) for i in entry.get("inputs", []))
    return f"{entry['name']}({types})"


def error_selector(entry: Mapping[str, Any]) -> bytes:
    return bytes(function_signature_to_4byte_selector(error_signature(entry)))


def _artifact_abis() -> dict[str, list[dict[str, Any]]]:
    # Imported on first use, as chain.contracts does: this module loads without artifacts.
    artifacts = importlib.import_module("gpu_provider.chain.artifacts")
    return {name: artifacts.load_artifact(name).abi for name in artifacts.CONTRACT_NAMES}


@cache
def marketplace_errors() -> Mapping[bytes, ErrorSpec]:
    """Every custom error of every devnet artifact (the marketplace, its token and roles)."""
    table: dict[bytes, ErrorSpec] = {}
    for contract, abi in _artifact_abis().items():
        for entry in abi:
            if entry.get("type") != "error":
                continue
            selector = error_selector(entry)
            known = table.get(selector)
            contracts = (*known.contracts, contract) if known else (contract,)
            table[selector] = ErrorSpec(entry, selector, contracts)
    return table


def contract_of(abi: Abi) -> str | None:
    """The artifact name whose ABI `abi` is (a copy counts), or None."""
    for name, known in _artifact_abis().items():
        if abi is known or list(abi) == known:
            return name
    return None


def find_error(selector: bytes, abis: Iterable[Abi] = ()) -> tuple[Mapping[str, Any], str | None]:
    """The ABI entry of the error with `selector`, and the contract it is attributed to.

    `abis` come first, the called contract's first: it is named when its ABI declares the
    error. Otherwise the first marketplace contract that declares it is. Raises `KeyError`
    for a selector no ABI knows.
    """
    known = marketplace_errors().get(selector)
    fallback = known.contracts[0] if known else None
    for abi in abis:
        for entry in abi:
            if entry.get("type") == "error" and error_selector(entry) == selector:
                return entry, contract_of(abi) or fallback
    if known is None:
        raise KeyError(selector)
    return known.entry, fallback
