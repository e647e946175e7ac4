"""Kubernetes Events a provider wants to see, from the status before and after (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Event", "events_between"]


@dataclass(frozen=True)
class Event:
    type: str  # "Normal" or "Warning"
    reason: str
    message: str


def _condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), {})


def _models(status: Mapping[str, Any], field: str) -> dict[str, int]:
    models = (status.get("inventory") or {}).get("models") or []
    return {str(m.get("model")): int(m.get(field) or 0) for m in models}


def _describe(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} x {m}" for m, n in sorted(counts.items()) if n) or "nothing"


def events_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Event]:
    """Registered, OfferChanged, GpuUnhealthy/GpuHealthy, MaintenanceOn/MaintenanceOff."""
    events: list[Event] = []
    was, now = _condition(before, "Registered"), _condition(after, "Registered")
    if now.get("status") == "True" and was.get("status") != "True":
        events.append(Event("Normal", "Registered", str(now.get("message", "registered"))))
    if "inventory" in after:
        old_offer, new_offer = _models(before, "offered"), _models(after, "offered")
        if "inventory" in before and old_offer != new_offer:
            events.append(
                Event(
                    "Normal",
                    "OfferChanged",
                    f"offer {_describe(old_offer)} -> {_describe(new_offer)}",
                )
            )
        old_sick, new_sick = _models(before, "unhealthy"), _models(after, "unhealthy")
        if sum(new_sick.values()) > sum(old_sick.values()):
            events.append(
                Event("Warning", "GpuUnhealthy", f"unhealthy GPUs: {_describe(new_sick)}")
            )
        elif "inventory" in before and sum(new_sick.values()) < sum(old_sick.values()):
            events.append(
                Event("Normal", "GpuHealthy", f"unhealthy GPUs now: {_describe(new_sick)}")
            )
    was, now = _condition(before, "Maintenance"), _condition(after, "Maintenance")
    if now and was.get("status") != now.get("status"):
        on = now.get("status") == "True"
        if on or was:
            events.append(
                Event(
                    "Normal",
                    "MaintenanceOn" if on else "MaintenanceOff",
                    str(now.get("message", "")),
                )
            )
    return events
