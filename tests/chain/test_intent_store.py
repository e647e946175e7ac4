"""Where intents live: the JSON journal (durable, bounded) and ProviderNode status (64 at
most, oldest finished pruned first), and the conversion between an intent and its status."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gpu_provider.api.v1alpha1.providernode import (
    MAX_PENDING_TXS,
    PendingTx,
    ProviderNodeStatus,
)
from gpu_provider.chain.intents import (
    InMemoryIntentStore,
    IntentStatus,
    JsonFileIntentStore,
    TxAttempt,
    TxIntent,
)
from gpu_provider.chain.records import Checkpoint
from gpu_provider.chain.statusstore import (
    CalldataTooLarge,
    StatusIntentStore,
    TooManyOpenIntents,
    checkpoint_from_status,
    checkpoint_to_status,
    intent_from_status,
    intent_to_status,
)

SENDER = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"
MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def intent(key: str, status: IntentStatus = IntentStatus.PENDING, at: float = 1.0) -> TxIntent:
    return TxIntent(
        key=key,
        sender=SENDER,
        chain_id=8453,
        to=MARKET,
        data="0xa9059cbb" + "00" * 64,
        value=10**30,
        gas=90_000,
        nonce=7,
        status=status,
        attempts=(
            TxAttempt("0x" + "11" * 32, 3 * 10**9, 10**6, 7),
            TxAttempt("0x" + "22" * 32, 4 * 10**9, 2 * 10**6, 7, rejected=True),
        ),
        purpose="placeBid",
        created_at=at,
        updated_at=at,
    )


def finished(key: str, at: float) -> TxIntent:
    return intent(key, IntentStatus.MINED, at)


# -- the JSON file journal ---------------------------------------------------------------


async def test_the_journal_round_trips_an_intent(tmp_path: Path) -> None:
    journal = tmp_path / "intents.json"
    await JsonFileIntentStore(journal).put(intent("bid-1"))

    again = await JsonFileIntentStore(journal).get("bid-1")

    assert again == intent("bid-1")
    assert again is not None
    assert again.newest_attempt() == again.attempts[0]  # the refused one is not re-sent


async def test_put_fsyncs_the_file_and_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    await JsonFileIntentStore(tmp_path / "j" / "intents.json").put(intent("bid-1"))

    assert synced == ["file", "dir"]


async def test_old_finished_intents_are_pruned_open_ones_never(tmp_path: Path) -> None:
    store = JsonFileIntentStore(tmp_path / "intents.json", keep_finished=2)
    await store.put(intent("open", at=0.0))
    for i in range(4):
        await store.put(finished(f"done-{i}", at=10.0 + i))

    kept = JsonFileIntentStore(tmp_path / "intents.json")
    assert await kept.get("open") is not None
    assert [await kept.get(f"done-{i}") is not None for i in range(4)] == [
        False,
        False,
        True,
        True,
    ]


async def test_the_memory_store_is_bounded_too() -> None:
    store = InMemoryIntentStore(keep_finished=1)
    await store.put(finished("a", 1.0))
    await store.put(finished("b", 2.0))
    assert [i.key for i in store.all()] == ["b"]


async def test_a_damaged_journal_is_reported_not_ignored(tmp_path: Path) -> None:
    journal = tmp_path / "intents.json"
    journal.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        await JsonFileIntentStore(journal).get("x")


# -- ProviderNode status -----------------------------------------------------------------


def test_an_intent_survives_the_trip_through_status() -> None:
    original = intent("bid-1")
    record = intent_to_status(original)
    wire = record.to_wire()

    assert wire["value"] == str(10**30)  # wei as strings: uint256 does not fit the CRD
    assert wire["attempts"][1] == {
        "txHash": "0x" + "22" * 32,
        "nonce": 7,
        "maxFeePerGas": "4000000000",
        "maxPriorityFeePerGas": "2000000",
        "rejected": True,
    }
    assert wire["dataHash"].startswith("0x")
    back = intent_from_status(PendingTx.model_validate(wire))
    assert back == original


def test_calldata_altered_in_status_is_refused() -> None:
    wire = intent_to_status(intent("bid-1")).to_wire()
    wire["data"] = "0xa9059cbb" + "00" * 63 + "01"
    with pytest.raises(ValueError, match="does not match dataHash"):
        intent_from_status(PendingTx.model_validate(wire))


def test_calldata_too_large_for_status_is_refused_before_sending() -> None:
    big = TxIntent(**{**intent("big").__dict__, "data": "0x" + "ab" * 9000})
    with pytest.raises(CalldataTooLarge, match="does not fit"):
        intent_to_status(big)


def test_status_holds_at_most_64_intents() -> None:
    records = [intent_to_status(intent(f"k{i}")).to_wire() for i in range(MAX_PENDING_TXS + 1)]
    with pytest.raises(ValidationError, match="at most 64"):
        ProviderNodeStatus.model_validate({"pendingTxs": records})


def test_the_checkpoint_survives_the_trip_through_status() -> None:
    checkpoint = Checkpoint(1234, "0x" + "ab" * 32, 5)
    progress = checkpoint_to_status(checkpoint, head=1240)
    assert progress.to_wire() == {
        "head": 1240,
        "lastProcessedBlock": 1234,
        "lastProcessedBlockHash": "0x" + "ab" * 32,
        "lastProcessedLogIndex": 5,
    }
    assert checkpoint_from_status(progress) == checkpoint
    assert checkpoint_from_status(checkpoint_to_status(Checkpoint.start_at(0))) == Checkpoint(-1)
    assert checkpoint_from_status(None) is None


class Status:
    """Stands in for the ProviderNode controller's status patch."""

    def __init__(self) -> None:
        self.written: list[list[dict[str, Any]]] = []
        self.fail = False

    async def persist(self, records: list[PendingTx]) -> None:
        if self.fail:
            raise RuntimeError("409 Conflict")
        self.written.append([r.to_wire() for r in records])


async def test_the_status_store_writes_status_before_put_returns() -> None:
    status = Status()
    store = StatusIntentStore(status.persist)

    await store.put(intent("bid-1"))

    assert [r["key"] for r in status.written[-1]] == ["bid-1"]
    restarted = StatusIntentStore(
        status.persist, [PendingTx.model_validate(r) for r in status.written[-1]]
    )
    assert await restarted.get("bid-1") == intent("bid-1")
    assert [i.key for i in await restarted.open_intents()] == ["bid-1"]


async def test_a_failed_status_write_changes_nothing() -> None:
    status = Status()
    store = StatusIntentStore(status.persist)
    status.fail = True
    with pytest.raises(RuntimeError, match="409"):
        await store.put(intent("bid-1"))
    assert await store.get("bid-1") is None


async def test_the_oldest_finished_intents_make_room() -> None:
    status = Status()
    store = StatusIntentStore(status.persist, limit=3)
    await store.put(intent("open", at=0.0))
    await store.put(finished("old", at=1.0))
    await store.put(finished("newer", at=2.0))

    await store.put(intent("new", at=3.0))

    assert [r["key"] for r in status.written[-1]] == ["open", "newer", "new"]


async def test_when_every_slot_is_open_a_new_intent_is_refused() -> None:
    status = Status()
    store = StatusIntentStore(status.persist, limit=2)
    await store.put(intent("a", at=0.0))
    await store.put(intent("b", at=1.0))
    writes = len(status.written)

    with pytest.raises(TooManyOpenIntents, match="at most 2"):
        await store.put(intent("c", at=2.0))
    assert len(status.written) == writes
    assert await store.get("c") is None


def test_status_times_are_timestamps() -> None:
    record = intent_to_status(intent("bid-1", at=0.0))
    assert record.created_at == datetime(1970, 1, 1, tzinfo=UTC)
