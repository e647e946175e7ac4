"""The agent's loop: poll NVML, export metrics every time, write the annotation on change.

The annotation holds facts and health only, so a poll where only utilisation, temperature or
power moved writes nothing: at 1,000 GPU nodes and one poll every 10 s, writing on every poll
would send 100 Node updates a second to every Node watcher in the cluster. The loop checks
what the Node holds now and then (`verify_interval`) and writes again if someone removed or
changed the annotation. An XID event wakes the loop at once, so a GPU that fails is reported
within a moment, not a poll later.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Final, Protocol

from gpu_provider.agent.facts import XidLedger, build_facts
from gpu_provider.agent.metrics import AgentMetrics
from gpu_provider.agent.nvml import Nvml, NvmlReadError
from gpu_provider.agent.readings import HealthEvent
from gpu_provider.api.nodefacts import NodeGpuFacts

__all__ = ["Agent", "AgentOptions", "FactsStore"]

log = logging.getLogger(__name__)

_UNREAD: Final = object()


class FactsStore(Protocol):
    """Where the annotation lives (`kube.nodes.NodeAnnotation` on the agent's Node)."""

    async def read(self) -> str | None: ...
    async def write(self, value: str) -> str: ...


@dataclass(frozen=True)
class AgentOptions:
    interval: float = 10.0
    """Seconds between NVML polls (metrics freshness)."""
    verify_interval: float = 60.0
    """Seconds between reads of the Node to catch an annotation someone else changed."""
    retry_on: tuple[type[Exception], ...] = ()
    """Store errors that are logged and retried on the next poll instead of ending the agent."""


class Agent:
    def __init__(
        self,
        nvml: Nvml,
        store: FactsStore,
        metrics: AgentMetrics,
        options: AgentOptions,
        ledger: XidLedger | None = None,
    ) -> None:
        self._nvml = nvml
        self._store = store
        self._metrics = metrics
        self._options = options
        self.ledger = ledger or XidLedger()
        self._events: queue.SimpleQueue[HealthEvent] = queue.SimpleQueue()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._known: object = _UNREAD
        self._next_verify = 0.0
        self.polls = 0
        """Completed polls; tests wait on it instead of sleeping."""
        self.writes = 0
        """Annotation writes sent (also the metric gpu_provider_facts_writes_total)."""
        self.facts: NodeGpuFacts | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set, then stop the XID thread (the caller shuts NVML down)."""
        self._loop = asyncio.get_running_loop()
        thread_stop = threading.Event()
        thread = await asyncio.to_thread(self._nvml.watch_xids, self._on_event, thread_stop)
        try:
            while not stop.is_set():
                await self.poll()
                await self._sleep(stop)
        finally:
            thread_stop.set()
            if thread is not None:
                await asyncio.to_thread(thread.join, 5.0)

    async def poll(self) -> None:
        """One poll: events, NVML, metrics, and the annotation if it must change."""
        self._drain_events()
        try:
            reading = await asyncio.to_thread(self._nvml.read)
        except NvmlReadError as exc:
            log.warning("%s; keeping the last facts and retrying", exc)
            self._metrics.nvml_up.set(0)
            self.polls += 1
            return
        facts = build_facts(reading, self.ledger)
        self._metrics.observe(reading, facts, self.ledger)
        if self.facts is not None and facts != self.facts:
            _log_health_changes(self.facts, facts)
        self.facts = facts
        try:
            await self._publish(facts.to_annotation())
        except self._options.retry_on as exc:
            self._metrics.facts_write_errors.inc()
            log.warning("%s; retrying at the next poll", exc)
        self.polls += 1

    async def _publish(self, value: str) -> None:
        now = time.monotonic()
        if self._known is _UNREAD or now >= self._next_verify:
            current = await self._store.read()
            self._next_verify = now + self._options.verify_interval
            if self._known is not _UNREAD and current != self._known:
                log.warning("the gpu-facts annotation was removed or changed by someone else")
            self._known = current
        if value != self._known:
            await self._store.write(value)
            self._known = value
            self._next_verify = now + self._options.verify_interval
            self._metrics.facts_writes.inc()
            self.writes += 1
            log.info("wrote gpu-facts: %s", value)

    def _on_event(self, event: HealthEvent) -> None:
        # Called from the NVML event thread: hand over through a queue, then wake the loop.
        self._events.put(event)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _drain_events(self) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            if event.xid is not None:
                log.warning("XID %d on GPU %s", event.xid, event.uuid or "(unknown: all GPUs)")
            elif event.error is not None:
                log.error("waiting for NVML events failed: %s", event.error)
            self.ledger.record(event)

    async def _sleep(self, stop: asyncio.Event) -> None:
        self._wake.clear()
        if not self._events.empty():
            return
        waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())}
        try:
            await asyncio.wait(
                waiters, timeout=self._options.interval, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()


def _log_health_changes(before: NodeGpuFacts, after: NodeGpuFacts) -> None:
    old = before.by_uuid()
    for gpu in after.gpus:
        was = old.get(gpu.uuid)
        if was is not None and was.healthy and not gpu.healthy:
            log.error("GPU %d (%s) is unhealthy: %s", gpu.index, gpu.uuid, "; ".join(gpu.problems))
        elif was is not None and not was.healthy and gpu.healthy:
            log.info("GPU %d (%s) is healthy again", gpu.index, gpu.uuid)
