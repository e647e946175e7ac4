from __future__ import annotations

from datetime import UTC, datetime

from gpu_provider.api.v1alpha1 import ConditionStatus, find_condition, set_condition

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)


def test_transition_time_moves_only_when_status_changes() -> None:
    conditions = set_condition([], "Ready", ConditionStatus.FALSE, "Syncing", "waiting", now=T0)
    same = set_condition(conditions, "Ready", ConditionStatus.FALSE, "Syncing", "still", now=T1)
    ready = find_condition(same, "Ready")
    assert ready is not None
    assert ready.last_transition_time == T0
    assert ready.message == "still"
    flipped = set_condition(same, "Ready", ConditionStatus.TRUE, "Synced", "ok", now=T1)
    ready = find_condition(flipped, "Ready")
    assert ready is not None
    assert ready.last_transition_time == T1
    assert len(flipped) == 1


def test_other_conditions_are_kept() -> None:
    conditions = set_condition([], "A", ConditionStatus.TRUE, "Ok", "", now=T0)
    conditions = set_condition(conditions, "B", ConditionStatus.FALSE, "Bad", "x", now=T0)
    assert [c.type for c in conditions] == ["A", "B"]
    assert conditions[0].to_wire()["lastTransitionTime"] == "2026-01-01T00:00:00Z"
