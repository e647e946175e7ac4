"""One active operator per cluster, elected with a `coordination.k8s.io/v1` Lease.

Every `gpu-provider run` process runs Kopf (so its liveness probe answers and its indexes are
warm), but only the holder of the Lease reconciles, writes status or sends a transaction. A
standby takes the Lease over once the holder has not renewed it for `duration` seconds, timed
on the standby's own clock from when it last saw the record change (as client-go does), so
clock skew between machines cannot make two holders. The holder steps down (and the process
stops, to be restarted as a standby) when it cannot renew within the duration; on a clean
stop it releases the Lease so a standby takes over at once.

Writes use `replace` with the read `resourceVersion`: of two instances racing for an expired
Lease, the apiserver lets exactly one win.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gpu_provider.kube.client import off_loop

__all__ = ["LeaseElector", "new_identity"]

log = logging.getLogger(__name__)


def new_identity() -> str:
    """A holder identity unique to this process: pod (host) name, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class _Observed:
    holder: str | None
    renew_time: str | None
    at: float


def _now() -> datetime:
    # A Lease's times are MicroTime: the apiserver wants the six fraction digits, which
    # `isoformat` leaves out when the microsecond happens to be 0.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond or 1)


class LeaseElector:
    """Acquires, renews and releases the Lease `namespace/name` for `identity`."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        duration: float,
        renew_every: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.renew_every = renew_every
        self._clock = clock
        self._observed: _Observed | None = None
        self._renewed_at: float | None = None
        self._leading = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        """True only while the last successful renewal is younger than the lease duration."""
        if not self._leading.is_set() or self._renewed_at is None:
            return False
        return self._clock() - self._renewed_at < self.duration

    async def wait_leader(self) -> None:
        await self._leading.wait()

    async def run(
        self, on_lost: Callable[[], None], report: Callable[[bool], None] = lambda _: None
    ) -> None:
        """Try to lead forever; call `on_lost` (once) if leadership is lost after winning it,
        and `report` with whether this process leads after every round."""
        while True:
            was_leader = self._leading.is_set()
            try:
                await self.try_acquire_or_renew()
            except (ApiException, OSError) as error:
                log.warning("cannot reach Lease %s/%s: %s", self.namespace, self.name, error)
            if was_leader and not self.is_leader:
                self._leading.clear()
                log.error("lost the Lease %s/%s: stopping so a standby can take over", *self._nn)
                report(False)
                on_lost()
                return
            report(self.is_leader)
            await asyncio.sleep(self.renew_every)

    @property
    def _nn(self) -> tuple[str, str]:
        return self.namespace, self.name

    async def try_acquire_or_renew(self) -> bool:
        """One round: create, renew or take over the Lease. True when this process holds it."""
        try:
            lease = await off_loop(self._api.read_namespaced_lease, self.name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            return await self._create()
        spec = lease.spec or client.V1LeaseSpec()
        holder = spec.holder_identity or None
        renew = spec.renew_time.isoformat() if spec.renew_time else None
        now = self._clock()
        if (
            self._observed is None
            or self._observed.holder != holder
            or self._observed.renew_time != renew
        ):
            self._observed = _Observed(holder, renew, now)
        if holder not in (None, self.identity):
            lease_seconds = spec.lease_duration_seconds or self.duration
            if now - self._observed.at < lease_seconds:
                return False
            log.info("Lease %s/%s held by %s expired: taking over", *self._nn, holder)
        transitions = (spec.lease_transitions or 0) + (0 if holder == self.identity else 1)
        lease.spec = self._spec(acquired=holder != self.identity, previous=spec, moves=transitions)
        try:
            await off_loop(self._api.replace_namespaced_lease, self.name, self.namespace, lease)
        except ApiException as error:
            if error.status == 409:  # another instance wrote first; it leads
                return False
            raise
        self._won()
        return True

    async def release(self) -> None:
        """Give the Lease up (a clean stop), so a standby takes over without waiting."""
        if not self._leading.is_set():
            return
        self._leading.clear()
        try:
            lease = await off_loop(self._api.read_namespaced_lease, self.name, self.namespace)
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.renew_time = None
            await off_loop(self._api.replace_namespaced_lease, self.name, self.namespace, lease)
            log.info("released the Lease %s/%s", *self._nn)
        except (ApiException, OSError) as error:
            log.warning("could not release the Lease %s/%s: %s", self.namespace, self.name, error)

    async def _create(self) -> bool:
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
            spec=self._spec(acquired=True, previous=None, moves=0),
        )
        try:
            await off_loop(self._api.create_namespaced_lease, self.namespace, body)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        self._won()
        return True

    def _spec(
        self, *, acquired: bool, previous: client.V1LeaseSpec | None, moves: int
    ) -> client.V1LeaseSpec:
        now = _now()
        acquire_time = now if acquired or previous is None else previous.acquire_time
        return client.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=max(1, round(self.duration)),
            acquire_time=acquire_time,
            renew_time=now,
            lease_transitions=moves,
        )

    def _won(self) -> None:
        if not self._leading.is_set():
            log.info("leading: holding the Lease %s/%s as %s", *self._nn, self.identity)
        self._renewed_at = self._clock()
        self._leading.set()
