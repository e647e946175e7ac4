"""Two operators, one wallet: the standby sends nothing, a killed one is resumed, never repeated.

The module has its own chain, so the provider starts unregistered and every transaction it
ever sent is known: duplicates would show as the same calldata sent twice.
"""

from __future__ import annotations

import signal
import time
from collections import Counter

from kubernetes import client

from e2e.operator.conftest import (
    LEASE_SECONDS,
    PN_GROUP,
    PN_PLURAL,
    PN_VERSION,
    RECONCILE_INTERVAL,
    Chain,
    OperatorLauncher,
    approved_gpus,
    condition,
    delete_provider_node,
    example_provider,
    provider_node,
    wait_for,
)

NAME = "failover-provider"
FULL_OFFER = {51: 16, 50: 8, 36: 2}


def lease_holder(api_client: client.ApiClient, name: str) -> str | None:
    lease = client.CoordinationV1Api(api_client).read_namespaced_lease(name, "gpu-provider-system")
    return lease.spec.holder_identity if lease.spec else None


def open_intents(custom: client.CustomObjectsApi) -> list[str]:
    status = provider_node(custom, NAME).get("status") or {}
    return [t["key"] for t in status.get("pendingTxs", []) if t["status"] in ("Signed", "Pending")]


def test_a_kill_mid_reconcile_and_a_standby_taking_over_send_nothing_twice(
    operators: OperatorLauncher,
    custom: client.CustomObjectsApi,
    api_client: client.ApiClient,
    chain: Chain,
) -> None:
    first = operators.start()
    wait_for(lambda: first.metric("gpu_provider_leader") == 1 or None, "the first one leading")
    second = operators.start()
    custom.create_cluster_custom_object(PN_GROUP, PN_VERSION, PN_PLURAL, example_provider(NAME))
    try:
        # Kill the leader while a transaction of its reconcile is journaled and in flight.
        wait_for(lambda: open_intents(custom), "a journaled transaction in flight", 90)
        first.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        assert second.metric("gpu_provider_reconciles_total") == 0, "the standby reconciled"
        assert "advertise:" not in second.log(), "the standby sent a transaction"

        wait_for(
            lambda: second.metric("gpu_provider_leader") == 1 or None,
            "the standby taking over",
            LEASE_SECONDS + RECONCILE_INTERVAL + 10,
        )
        assert time.monotonic() - killed_at < LEASE_SECONDS + RECONCILE_INTERVAL + 10
        wait_for(
            lambda: approved_gpus(chain) == FULL_OFFER,
            "the full offer on chain after the takeover",
            90,
        )
        wait_for(
            lambda: condition(custom, NAME, "ChainSynced").get("status") == "True",
            "ChainSynced",
        )
        sent = chain.transactions_from()
        repeated = {tx: n for tx, n in Counter(sent).items() if n > 1}
        assert not repeated, f"sent twice: {repeated}"
        # register, GPU attributes, CPU attributes, Active: each once.
        assert len(sent) == chain.nonce() == 4

        # A clean stop hands over at once: the Lease is released, not left to expire.
        third = operators.start()
        stopped_at = time.monotonic()
        assert second.stop(signal.SIGTERM) == 0
        wait_for(
            lambda: third.metric("gpu_provider_leader") == 1 or None,
            "the third one leading after a clean stop",
            RECONCILE_INTERVAL + 10,
        )
        assert time.monotonic() - stopped_at < RECONCILE_INTERVAL + 10
        assert lease_holder(api_client, operators.lease_name) is not None
        wait_for(
            lambda: third.metric("gpu_provider_reconciles_total", result="ok") >= 1 or None,
            "the new leader reconciling",
        )
        assert chain.nonce() == 4
    finally:
        delete_provider_node(custom, NAME)
