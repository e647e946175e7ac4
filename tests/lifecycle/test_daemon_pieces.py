"""The chain daemon's pure pieces: the routed journal (bids apart from status, nothing lost
under concurrent writes, one nonce sequence) and the lease hold rebuilt from a GpuLease."""

from __future__ import annotations

import asyncio

import pytest

from gpu_provider.api.v1alpha1.gpulease import GpuLeaseSpec, GpuLeaseStatus
from gpu_provider.api.v1alpha1.providernode import PendingTx
from gpu_provider.chain.intents import IntentStatus, TxIntent
from gpu_provider.chain.statusstore import StatusIntentStore, TooManyOpenIntents
from gpu_provider.controllers.chaindaemon_close import lease_placement
from gpu_provider.controllers.chaindaemon_journal import RoutedIntentStore

SENDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def intent(key: str, nonce: int) -> TxIntent:
    return TxIntent(
        key=key,
        sender=SENDER,
        chain_id=31337,
        to=SENDER,
        data="0x1234",
        value=0,
        gas=21000,
        nonce=nonce,
    )


class Written:
    def __init__(self) -> None:
        self.records: list[PendingTx] = []

    async def persist(self, records: list[PendingTx]) -> None:
        await asyncio.sleep(0)  # a write that yields, as a status patch does
        self.records = list(records)


async def test_bids_go_to_their_own_journal_and_the_rest_to_status() -> None:
    status, bids = Written(), Written()
    store = RoutedIntentStore(
        StatusIntentStore(status.persist), StatusIntentStore(bids.persist, limit=512)
    )
    await store.put(intent("bid:7", 0))
    await store.put(intent("close:3", 1))
    assert [r.key for r in bids.records] == ["bid:7"]
    assert [r.key for r in status.records] == ["close:3"]
    assert sorted(i.nonce for i in await store.open_intents()) == [0, 1]
    assert (await store.get("bid:7")) is not None


async def test_a_burst_of_bids_past_the_status_limit_is_journaled_without_loss() -> None:
    status, bids = Written(), Written()
    store = RoutedIntentStore(
        StatusIntentStore(status.persist), StatusIntentStore(bids.persist, limit=512)
    )
    await asyncio.gather(*(store.put(intent(f"bid:{n}", n)) for n in range(200)))
    assert len(bids.records) == 200
    assert len(await store.open_intents()) == 200
    only = StatusIntentStore(status.persist)  # what status alone would have answered
    for n in range(64):
        await only.put(intent(f"bid:{n}", n))
    with pytest.raises(TooManyOpenIntents):
        await only.put(intent("bid:64", 64))


async def test_finished_bids_make_room_open_ones_never_do() -> None:
    bids = Written()
    store = RoutedIntentStore(
        StatusIntentStore(Written().persist), StatusIntentStore(bids.persist, limit=2)
    )
    await store.put(intent("bid:1", 0).evolve(status=IntentStatus.MINED))
    await store.put(intent("bid:2", 1))
    await store.put(intent("bid:3", 2))
    assert [r.key for r in bids.records] == ["bid:2", "bid:3"]
    with pytest.raises(TooManyOpenIntents):
        await store.put(intent("bid:4", 3))


def test_a_lease_awaiting_its_manifest_holds_its_gpus_again_from_status() -> None:
    spec = GpuLeaseSpec.model_validate(
        {
            "leaseId": "5",
            "orderId": "5",
            "providerNode": "p",
            "tenant": SENDER,
            "token": SENDER,
            "acceptedPrice": "1",
            "startBlock": 1,
            "startTime": "2026-01-01T00:00:00Z",
            "numOfBlocks": 10,
            "resources": {
                "totalGpus": 2,
                "services": [
                    {
                        "name": "a",
                        "replicas": 2,
                        "cpuMillis": 1000,
                        "memoryBytes": 1,
                        "gpu": {"units": 1},
                    },
                    {"name": "ui", "cpuMillis": 100, "memoryBytes": 1},
                ],
            },
        }
    )
    status = GpuLeaseStatus.model_validate(
        {"phase": "AwaitingManifest", "placement": {"node": "n1", "gpus": 2, "model": "h100"}}
    )
    placement = lease_placement(spec, status)
    assert placement is not None
    assert placement.gpus == 2
    assert {r.node for r in placement.replicas} == {"n1"}
    assert placement.gpu_models == {"a": "h100"}
    no_node = GpuLeaseStatus.model_validate({"placement": {"gpus": 2}})
    assert lease_placement(spec, no_node) is None
