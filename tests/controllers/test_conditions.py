"""ProviderNode conditions say what is wrong in words a provider can act on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gpu_provider.api.v1alpha1.common import ConditionStatus, find_condition
from gpu_provider.chain.advertiser import AdvertiseOutcome, Refusal
from gpu_provider.chain.errors import TransactionReverted
from gpu_provider.controllers.conditions import Findings, Problem, build_conditions
from gpu_provider.market.advertise import (
    ActionKind,
    ActualProvider,
    AdvertiseAction,
    ProviderStatus,
)

T, F = ConditionStatus.TRUE, ConditionStatus.FALSE
ACTIVE = ActualProvider(
    registered=True,
    status=ProviderStatus.ACTIVE,
    tier=4,
    approved={"GPU": ((51, 16),), "CPU": ((1, 500),)},
)


def outcome(after: ActualProvider = ACTIVE, **changes: object) -> AdvertiseOutcome:
    fields: dict[str, object] = {
        "before": after,
        "after": after,
        "planned": (),
        "sent": (),
        "refused": (),
        "in_flight": (),
        "rejected": (),
        "awaiting_approval": (),
        "remaining": (),
    }
    fields.update(changes)
    return AdvertiseOutcome(**fields)  # type: ignore[arg-type]


def conditions(f: Findings) -> dict[str, tuple[ConditionStatus, str]]:
    return {c.type: (c.status, c.reason) for c in build_conditions([], f)}


def test_a_provider_in_step_with_the_chain_is_ready() -> None:
    got = conditions(Findings(generation=1, maintenance=False, offered_gpus=16, outcome=outcome()))
    assert got == {
        "Ready": (T, "Ready"),
        "PrerequisitesMet": (T, "AllPresent"),
        "Registered": (T, "Registered"),
        "ChainSynced": (T, "InSync"),
        "Advertised": (T, "OfferOnChain"),
        "Maintenance": (F, "Serving"),
    }


def test_a_missing_wallet_secret_is_named_and_blocks_everything_on_chain() -> None:
    problem = Problem("WalletSecretMissing", "Secret gpu-provider-system/provider-wallet ...")
    got = build_conditions([], Findings(generation=1, maintenance=False, chain_problem=problem))
    ready = find_condition(got, "Ready")
    assert ready is not None
    assert (ready.status, ready.reason) == (F, "WalletSecretMissing")
    assert "provider-wallet" in ready.message
    assert conditions(Findings(generation=1, maintenance=False, chain_problem=problem))[
        "Registered"
    ] == (F, "WalletSecretMissing")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"awaiting_approval": ("GPU",)}, "AwaitingApproval"),
        ({"rejected": ("GPU",)}, "AttributesRejected"),
        (
            {"in_flight": (AdvertiseAction(ActionKind.ATTRIBUTES, (), "k", "submit GPU"),)},
            "TransactionPending",
        ),
    ],
)
def test_an_offer_not_yet_approved_says_why(changes: dict[str, object], reason: str) -> None:
    got = conditions(Findings(generation=1, maintenance=False, outcome=outcome(**changes)))
    assert got["Advertised"] == (F, reason)
    assert got["Ready"][0] is F


def test_a_refused_registration_carries_the_decoded_reason() -> None:
    action = AdvertiseAction(ActionKind.REGISTER, (), "advertise:register:x", "register")
    refusal = Refusal(action, TransactionReverted("ProviderAlreadyExists()"))
    absent = ActualProvider(registered=False)
    built = build_conditions(
        [], Findings(generation=1, maintenance=False, outcome=outcome(absent, refused=(refusal,)))
    )
    registered = find_condition(built, "Registered")
    assert registered is not None
    assert registered.reason == "RegistrationRefused"
    assert "ProviderAlreadyExists" in registered.message


def test_maintenance_is_reported_from_the_spec_and_the_chain() -> None:
    in_maintenance = ActualProvider(registered=True, status=ProviderStatus.MAINTENANCE, tier=4)
    asked = conditions(Findings(generation=2, maintenance=True, outcome=outcome()))
    done = conditions(Findings(generation=2, maintenance=True, outcome=outcome(in_maintenance)))
    assert asked["Maintenance"] == (T, "MaintenanceRequested")
    assert done["Maintenance"] == (T, "MaintenanceOnChain")


def test_missing_prerequisites_block_ready() -> None:
    problem = Problem("RuntimeClassMissing", "RuntimeClass 'nvidia' does not exist")
    got = conditions(
        Findings(generation=1, maintenance=False, prerequisites=(problem,), outcome=outcome())
    )
    assert got["PrerequisitesMet"] == (F, "RuntimeClassMissing")
    assert got["Ready"] == (F, "RuntimeClassMissing")


def test_transition_time_moves_only_when_the_status_does() -> None:
    early = datetime(2026, 1, 1, tzinfo=UTC)
    later = datetime(2026, 1, 2, tzinfo=UTC)
    f = Findings(generation=1, maintenance=False, offered_gpus=16, outcome=outcome())
    first = build_conditions([], f, now=early)
    again = build_conditions(first, f, now=later)
    assert {c.last_transition_time for c in again} == {early}
    busy = Findings(generation=1, maintenance=False, outcome=outcome(awaiting_approval=("GPU",)))
    moved = build_conditions(again, busy, now=later)
    ready = find_condition(moved, "Ready")
    assert ready is not None
    assert ready.last_transition_time == later
