"""The engine's memory of orders is bounded: a busy marketplace cannot grow it without end."""

from __future__ import annotations

from gpu_provider.chain.bidrecords import Recent


def test_recent_keeps_the_newest_and_remembers_once() -> None:
    seen: Recent[None] = Recent(limit=3)
    assert [seen.remember(i) for i in (1, 2, 1, 3, 4)] == [False, False, True, False, False]
    assert list(seen) == [2, 3, 4]  # the oldest went
    assert seen.remember(1) is False
