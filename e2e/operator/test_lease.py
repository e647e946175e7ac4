"""The Lease that elects the one active operator, against the real apiserver.

Two electors race for one Lease: exactly one leads; the other takes over only after the
holder stops renewing for the Lease duration, or at once when the holder releases it.
"""

from __future__ import annotations

import asyncio
import uuid

from kubernetes import client

from e2e.harness.stack import KwokCluster
from gpu_provider.kube.client import new_api_client
from gpu_provider.kube.leader import LeaseElector


def test_one_leader_takeover_after_expiry_and_at_once_after_release(
    kwok_cluster: KwokCluster, namespace: str
) -> None:
    asyncio.run(_race(kwok_cluster, namespace))


async def _race(cluster: KwokCluster, namespace: str) -> None:
    api = new_api_client(cluster.kubeconfig)
    name = f"lease-{uuid.uuid4().hex[:6]}"

    def elector(identity: str) -> LeaseElector:
        return LeaseElector(api, namespace, name, identity, duration=2, renew_every=0.5)

    a, b = elector("a"), elector("b")
    won = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
    assert sorted(won) == [False, True], "exactly one of two racing instances leads"
    leader, standby = (a, b) if won[0] else (b, a)

    # While the leader renews, the standby never gets it.
    loop = asyncio.get_running_loop()
    for _ in range(6):
        assert await leader.try_acquire_or_renew()
        last_renewal = loop.time()
        assert not await standby.try_acquire_or_renew()
        await asyncio.sleep(0.5)
    assert leader.is_leader
    assert not standby.is_leader

    # The leader stops renewing (killed): the standby takes over after the duration, not before.
    while not await standby.try_acquire_or_renew():
        assert loop.time() - last_renewal < 10, "the standby never took over"
        await asyncio.sleep(0.2)
    assert loop.time() - last_renewal >= 2, "taken over before the Lease duration ran out"
    lease = client.CoordinationV1Api(api).read_namespaced_lease(name, namespace)
    assert lease.spec.holder_identity == standby.identity
    assert lease.spec.lease_transitions == 1
    assert not await leader.try_acquire_or_renew(), "the old leader must not win it back"

    # A clean stop releases it: the other one takes it without waiting.
    await standby.release()
    assert await leader.try_acquire_or_renew()
