"""The committed contract artifacts: rebuilt from source they come out identical, and the
interface the operator speaks matches Spheron's published ABI.

A drifted artifact means someone edited `contracts/src` without running
`node contracts/compile.mjs` (or the compiler pin moved): the operator would then talk to a
devnet whose contracts differ from the ones in the tree.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from gpu_provider.chain.artifacts import CONTRACT_NAMES, ArtifactError, load_artifact

REPO = Path(__file__).resolve().parents[2]
ARTIFACT_DIR = REPO / "operator" / "gpu_provider" / "chain" / "artifacts"
REFERENCE_ABI_DIR = REPO.parent / "shared" / "spheron" / "abi"

# Our own role registry; Spheron's is not among the reference ABIs.
WITHOUT_REFERENCE = {"AccessControlManager"}

# Every function and event the project uses (operator, gateway, devnet tooling, tests), per
# contract. Each must exist in our artifact and in Spheron's ABI with the same signature.
USED: dict[str, dict[str, set[str]]] = {
    "TestToken": {
        "function": {
            "allowance",
            "approve",
            "balanceOf",
            "decimals",
            "mint",
            "name",
            "symbol",
            "totalSupply",
            "transfer",
            "transferFrom",
        },
        "event": {"Approval", "Transfer"},
    },
    "TokenRegistry": {
        "function": {
            "acceptedTokens",
            "addToken",
            "getAllTokens",
            "getTokenAddress",
            "getTokenDetails",
            "isAcceptedToken",
            "isDefaultToken",
            "removeTokens",
        },
        "event": {"TokenAdded", "TokenRemoved"},
    },
    "EscrowUser": {
        "function": {
            "deposit",
            "getUserData",
            "lockTokens",
            "reduceLockedTokens",
            "transferEarnedTokens",
            "unlockTokens",
            "userBalance",
            "withdraw",
        },
        "event": {"TokenMovement", "UserTokenLocked", "UserTokenUnlocked"},
    },
    "EscrowProtocol": {
        "function": {
            "fees",
            "getProtocolFee",
            "protocolFeePercentage",
            "providerEarnings",
            "setPercentages",
            "transferLocked",
            "withdrawEarnings",
            "withdrawFees",
        },
        "event": {"LockedTokenTransfered", "TokenMovement", "TreasuryMovement"},
    },
    "ProviderRegistry": {
        "function": {
            "addAcceptedPayment",
            "addProvider",
            "addressToProviderId",
            "getAllProviders",
            "getProvider",
            "getProviderByAddress",
            "getProviderId",
            "getProviderRewardWallet",
            "getProviderStatus",
            "getProviderTrustTier",
            "isActiveProvider",
            "isRegisteredProvider",
            "isTokenAcceptedByProvider",
            "providers",
            "removeAcceptedPayment",
            "setProviderStatus",
            "updateProviderCertificate",
            "updateProviderHostUri",
            "updateProviderRewardAddress",
            "updateProviderSpec",
            "updateProviderTier",
        },
        "event": {
            "ProviderAdded",
            "ProviderCertificateUpdated",
            "ProviderHostUriUpdated",
            "ProviderPaymentAdded",
            "ProviderPaymentRemoved",
            "ProviderRewardWalletUpdated",
            "ProviderSpecUpdated",
            "ProviderStatusUpdated",
            "ProviderTierUpdated",
        },
    },
    "ProviderAttributeRegistry": {
        "function": {
            "VERIFIER_ROLE",
            "adminRemoveAttributes",
            "approveAttributes",
            "getAttributes",
            "getPendingAttributes",
            "removeAttributes",
            "submitAttributes",
        },
        "event": {
            "ProviderAttributesApproved",
            "ProviderAttributesRemoved",
            "ProviderAttributesSubmitted",
        },
    },
    "OrderRequest": {
        "function": {
            "createOrder",
            "getOrderById",
            "getOrderByProvider",
            "getPendingOrderById",
            "orders",
            "updateInitialOrder",
            "updateOrderStateToClosed",
        },
        "event": {
            "OrderCreated",
            "OrderMarkedAsClosed",
            "OrderStateChanged",
            "OrderUpdateRequested",
        },
    },
    "Bid": {
        "function": {
            "acceptUpdate",
            "bids",
            "getAllBidsForOrder",
            "getProviderOrderBid",
            "matchOrder",
            "placeBid",
            "providerOrderBid",
        },
        "event": {"BidPlaced", "LeaseUpdated", "OrderMatched", "UpdateRequestAccepted"},
    },
    "ComputeLease": {
        "function": {
            "closeLease",
            "createLease",
            "getLeaseDetails",
            "getProviderLeases",
            "getTenantLeases",
            "leases",
        },
        "event": {"LeaseClosed", "LeaseCreated", "LeaseUpdated"},
    },
}

WITH_REFERENCE = [name for name in CONTRACT_NAMES if name not in WITHOUT_REFERENCE]


def _param_type(param: dict[str, Any]) -> str:
    """Canonical ABI type, tuples spelled out, enums marked (the ABI says only uint8)."""
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_param_type(component) for component in param["components"])
        kind = f"({inner}){kind.removeprefix('tuple')}"
    if str(param.get("internalType", "")).startswith("enum "):
        kind += "<enum>"
    return kind


def signature(entry: dict[str, Any]) -> str:
    """Everything a caller or log decoder depends on, as one comparable string."""
    inputs = ",".join(
        _param_type(p) + (" indexed" if p.get("indexed") else "") for p in entry.get("inputs", [])
    )
    if entry["type"] == "event":
        return f"event {entry['name']}({inputs}){' anonymous' if entry.get('anonymous') else ''}"
    outputs = ",".join(_param_type(p) for p in entry.get("outputs", []))
    return f"function {entry['name']}({inputs}) {entry['stateMutability']} returns ({outputs})"


def _members(abi: Iterable[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(kind, name) → signatures, for functions and events."""
    members: dict[tuple[str, str], set[str]] = {}
    for entry in abi:
        if entry["type"] in {"function", "event"}:
            members.setdefault((entry["type"], entry["name"]), set()).add(signature(entry))
    return members


def _reference_abi(name: str) -> list[dict[str, Any]]:
    # CI checks out ../shared too: a missing reference is a failure, never a skip.
    assert REFERENCE_ABI_DIR.is_dir(), (
        f"reference ABIs not found at {REFERENCE_ABI_DIR} (they live next to the "
        "repository, in the development workspace and in CI)"
    )
    document = json.loads((REFERENCE_ABI_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(document, list)
    return document


def test_committed_artifacts_are_exactly_the_deployable_contracts() -> None:
    committed = sorted(path.stem for path in ARTIFACT_DIR.glob("*.json"))
    assert committed == sorted(CONTRACT_NAMES)


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_artifact_loads_and_is_canonically_formatted(name: str) -> None:
    artifact = load_artifact(name)
    assert artifact.name == name
    assert artifact.abi
    assert len(artifact.bytecode) > 2
    text = (ARTIFACT_DIR / f"{name}.json").read_text(encoding="utf-8")
    canonical = json.dumps({"abi": artifact.abi, "bytecode": artifact.bytecode}, indent=1)
    assert text == json.dumps(json.loads(canonical), sort_keys=True, indent=1) + "\n"


def test_unknown_artifact_is_refused_with_the_known_names() -> None:
    with pytest.raises(ArtifactError, match="known: AccessControlManager"):
        load_artifact("Escrow")


def test_artifacts_match_a_fresh_build(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; it builds the contracts (see contracts/README.md)")
    if not (REPO / "node_modules" / "solc" / "package.json").is_file():
        pytest.skip("solcjs is not installed: run `npm ci` in the repository")
    build = subprocess.run(
        [node, "contracts/compile.mjs", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert build.returncode == 0, f"contracts do not compile:\n{build.stderr}"
    fresh = {path.name: path.read_bytes() for path in tmp_path.glob("*.json")}
    committed = {path.name: path.read_bytes() for path in ARTIFACT_DIR.glob("*.json")}
    drifted = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert not drifted, (
        f"artifacts differ from a fresh build of contracts/src: {', '.join(drifted)}; "
        "run `node contracts/compile.mjs` and commit the result"
    )


@pytest.mark.parametrize("name", sorted(USED))
def test_used_interface_exists_in_our_artifacts(name: str) -> None:
    ours = _members(load_artifact(name).abi)
    for kind, names in USED[name].items():
        missing = sorted(n for n in names if (kind, n) not in ours)
        assert not missing, f"{name} lacks the {kind}s {missing}"


def test_every_contract_with_a_reference_lists_what_the_project_uses() -> None:
    assert set(USED) == set(WITH_REFERENCE)


@pytest.mark.parametrize("name", WITH_REFERENCE)
def test_shared_functions_and_events_match_the_reference(name: str) -> None:
    reference = _members(_reference_abi(name))
    ours = _members(load_artifact(name).abi)
    mismatched = {
        key: (sorted(signatures), sorted(reference[key]))
        for key, signatures in ours.items()
        if key in reference and not signatures <= reference[key]
    }
    assert not mismatched, f"{name} differs from Spheron's ABI (ours, reference): {mismatched}"


@pytest.mark.parametrize("name", WITH_REFERENCE)
def test_used_interface_matches_the_reference(name: str) -> None:
    reference = _members(_reference_abi(name))
    ours = _members(load_artifact(name).abi)
    for kind, names in USED[name].items():
        for member in sorted(names):
            key = (kind, member)
            assert key in reference, f"{name}.{member} is not in Spheron's ABI"
            assert key in ours, f"{name}.{member} is not in our artifact"
            assert ours[key] == reference[key], f"{name}.{member}: {ours[key]} != {reference[key]}"
