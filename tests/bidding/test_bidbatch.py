"""The bid journal's group commit: a burst of concurrent puts takes a few writes instead of
one each, and still no put returns before a write holding its intent succeeded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gpu_provider.api.v1alpha1.providernode import PendingTx
from gpu_provider.chain.bidbatch import BatchedIntentStore
from gpu_provider.chain.intents import IntentStatus
from tests.chain.test_intent_store import intent


class SlowConfigMap:
    """Stands in for the ConfigMap write: takes a moment, like the apiserver round trip."""

    def __init__(self) -> None:
        self.written: list[list[dict[str, Any]]] = []
        self.fail = False

    async def persist(self, records: list[PendingTx]) -> None:
        await asyncio.sleep(0.01)
        if self.fail:
            raise RuntimeError("503 the apiserver is unavailable")
        self.written.append([r.to_wire() for r in records])

    def stored(self) -> set[str]:
        return {r["key"] for r in self.written[-1]} if self.written else set()


async def test_a_burst_of_puts_shares_writes_and_each_returns_once_written() -> None:
    journal = SlowConfigMap()
    store = BatchedIntentStore(journal.persist, limit=512)
    durable_when_returned: list[bool] = []

    async def put(key: str) -> None:
        await store.put(intent(key, IntentStatus.SIGNED))
        durable_when_returned.append(key in journal.stored())

    await asyncio.gather(*(put(f"bid:{i}") for i in range(200)))

    assert all(durable_when_returned)
    assert journal.stored() == {f"bid:{i}" for i in range(200)}
    assert len(journal.written) <= 3  # one in flight, then everything queued meanwhile
    restarted = BatchedIntentStore(
        journal.persist, [PendingTx.model_validate(r) for r in journal.written[-1]], limit=512
    )
    assert len(await restarted.open_intents()) == 200


async def test_a_failed_write_fails_every_put_of_its_batch_and_changes_nothing() -> None:
    journal = SlowConfigMap()
    store = BatchedIntentStore(journal.persist, limit=512)
    await store.put(intent("bid:1"))
    journal.fail = True
    results = await asyncio.gather(
        *(store.put(intent(f"bid:{i}")) for i in range(2, 6)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    assert [await store.get(f"bid:{i}") for i in range(2, 6)] == [None] * 4
    journal.fail = False
    await store.delete("bid:1")
    assert journal.stored() == set()
    journal.fail = True
    with pytest.raises(RuntimeError, match="503"):
        await store.put(intent("bid:7"))
