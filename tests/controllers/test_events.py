"""Events a provider sees on `kubectl describe pn`."""

from __future__ import annotations

from typing import Any

from gpu_provider.controllers.events import events_between


def status(
    offered: int, unhealthy: int = 0, registered: str = "True", maintenance: str = "False"
) -> dict[str, Any]:
    return {
        "inventory": {"models": [{"model": "h100", "offered": offered, "unhealthy": unhealthy}]},
        "conditions": [
            {"type": "Registered", "status": registered, "message": "registered"},
            {"type": "Maintenance", "status": maintenance, "message": "m"},
        ],
    }


def reasons(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [e.reason for e in events_between(before, after)]


def test_first_registration() -> None:
    assert reasons(status(8, registered="False"), status(8)) == ["Registered"]


def test_nothing_changed_nothing_said() -> None:
    assert reasons(status(8), status(8)) == []


def test_an_unhealthy_gpu_shrinks_the_offer() -> None:
    assert reasons(status(8), status(7, unhealthy=1)) == ["OfferChanged", "GpuUnhealthy"]
    assert reasons(status(7, unhealthy=1), status(8)) == ["OfferChanged", "GpuHealthy"]


def test_maintenance_on_and_off() -> None:
    assert reasons(status(8), status(8, maintenance="True")) == ["MaintenanceOn"]
    assert reasons(status(8, maintenance="True"), status(8)) == ["MaintenanceOff"]
