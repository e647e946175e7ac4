"""The chain daemon of one ProviderNode: bids, lease intake, updates, closes and earnings.

It runs inside the active (Lease holder) `gpu-provider run` only: the ProviderNode reconcile
starts it once the wallet's `ChainSession` is open and the provider is registered, refreshes
what it reads (`DaemonView`: spec, tier, capacity) at every reconcile, and stops it with the
session (a lost Lease, a new wallet). Every transaction goes through the session's one
`TxManager`, journaled before broadcast by stores that refuse to write once this process no
longer leads, so a deposed leader sends nothing.

Its tasks, each restarted after an error with a back-off:

- bids: the `BidEngine` on a head-following stream (confirmations 0, docs/bidding.md), from
  one window plus the match grace back, so a restart sees again what can still be matched;
- intake: `LeaseIntake.recover()` first (active leases missing in the cluster), then the
  confirmed stream (the configured confirmations) from `status.chain`'s checkpoint:
  `LeaseCreated`/`OrderMatched` of ours → GpuLease, `OrderUpdateRequested` → `LeaseUpdates`,
  `LeaseClosed` of ours → an immediate close check;
- close: `LeaseCloser.check` every `lease_check_interval_seconds`, at once when woken (a
  `LeaseClosed`, the gateway's close-requested annotation); escrow on the slower timer;
- earnings: `withdraw_due` per accepted token every `earnings_interval_seconds`;
- tick (1 s): reservation expiry, metrics; the checkpoint and head into `status.chain`
  at most every 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from gpu_provider.api.v1alpha1.gpulease import Placement
from gpu_provider.api.v1alpha1.providernode import ChainProgress, ProviderNodeSpec
from gpu_provider.chain.bidding import BidEngine
from gpu_provider.chain.bidfacts import provider_facts
from gpu_provider.chain.bidstream import bid_event_sources, bid_stream_start
from gpu_provider.chain.earnings import EarningsCollector
from gpu_provider.chain.errors import ReorgBeyondConfirmations
from gpu_provider.chain.events import EventStream
from gpu_provider.chain.heads import HeadSignal
from gpu_provider.chain.leases import LeaseIntake, LeaseToCreate
from gpu_provider.chain.leaseupdates import LeaseUpdates
from gpu_provider.chain.records import ChainEvent, Checkpoint, arg_equals
from gpu_provider.chain.statusstore import checkpoint_from_status, checkpoint_to_status
from gpu_provider.controllers.chaindaemon_close import LeaseCloser, collect_earnings, utc_now
from gpu_provider.controllers.chaindaemon_sink import KubeLeaseSink
from gpu_provider.controllers.chainsession import ChainSession, NotLeader
from gpu_provider.controllers.context import OperatorContext
from gpu_provider.kube.providernodes import patch_status, read_provider_node
from gpu_provider.market.capacity import Capacity
from gpu_provider.market.eligibility import ProviderFacts
from gpu_provider.market.reservations import HoldState, ReservationBook
from gpu_provider.render.gpulease import ProviderNodeRef, placement_status

__all__ = ["ChainDaemon", "DaemonView"]

log = logging.getLogger(__name__)

TICK_SECONDS: Final = 1.0
MAX_BACKOFF: Final = 30.0
PROGRESS_WRITE_SECONDS: Final = 5.0


@dataclass(frozen=True)
class DaemonView:
    """What the reconcile knows and the daemon reads at each decision."""

    spec: ProviderNodeSpec
    uid: str
    tier: int
    capacity: Capacity
    """Free after allocations, before reservations (the book subtracts those)."""


class ChainDaemon:
    def __init__(
        self, ctx: OperatorContext, name: str, session: ChainSession, view: DaemonView
    ) -> None:
        self.ctx = ctx
        self.name = name
        self.session = session
        self.view = view
        chain = ctx.settings.chain
        contracts, tx, address = session.contracts, session.tx, session.address
        self.book = ReservationBook(view.spec.bidding.reservation_timeout_seconds)
        self.engine = BidEngine(
            contracts,
            tx,
            facts=self._facts,
            capacity=lambda: self.view.capacity,
            book=self.book,
            bid_window_blocks=chain.bid_window_blocks,
        )
        self.sink = KubeLeaseSink(
            ctx.api,
            ctx.settings.namespace,
            ProviderNodeRef(name, view.uid),
            on_created=self._created,
        )
        self.intake = LeaseIntake(contracts, address, self.sink, placements=self._placement)
        self.updates = LeaseUpdates(
            contracts,
            tx,
            session.store,
            address,
            self.sink,
            max_lease_blocks=view.spec.bidding.max_lease_blocks,
        )
        self.closer = LeaseCloser(
            ctx.api, ctx.settings.namespace, name, contracts, tx, self.book, ctx.metrics
        )
        self.collector = EarningsCollector(contracts, tx, session.store, address)
        tx.observe = self._observe_tx
        self.wake_close = asyncio.Event()
        self.heads = HeadSignal()
        """The newest head either of its event streams read: intake wakes on the bid's."""
        self.checkpoint: Checkpoint | None = None
        self.head: int | None = None
        self._saved: ChainProgress | None = None
        self._saved_at = 0.0
        self._book_seen: object = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        runs: dict[str, Callable[[], Awaitable[None]]] = {
            "bids": self._bids,
            "intake": self._intake,
            "close": self._close_loop,
            "earnings": self._earnings_loop,
            "tick": self._tick_loop,
        }
        self._tasks = [
            asyncio.create_task(self._forever(what, run), name=f"{self.name}-{what}")
            for what, run in runs.items()
        ]
        self.ctx.close_wakers.add(self.wake_close)
        log.info("%s: chain daemon started for %s", self.name, self.session.address)

    def update(self, view: DaemonView) -> None:
        self.view = view

    async def stop(self) -> None:
        self.ctx.close_wakers.discard(self.wake_close)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.engine.aclose()
        self._tasks = []

    async def _forever(self, what: str, run: Callable[[], Awaitable[None]]) -> None:
        delay = 1.0
        while True:
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except NotLeader:
                log.warning("%s: %s stopped: no longer the Lease holder", self.name, what)
                return
            except Exception:
                log.exception("%s: chain daemon %s failed; again in %.0f s", self.name, what, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    # -- bids --------------------------------------------------------------------------------

    def _facts(self) -> ProviderFacts:
        return provider_facts(
            self.view.spec,
            address=self.session.address,
            tier=self.view.tier,
            blocks_per_hour=self.ctx.settings.chain.blocks_per_hour,
            active_leases=self.closer.active,
        )

    async def _bids(self) -> None:
        chain = self.ctx.settings.chain
        contracts, address = self.session.contracts, self.session.address
        head = await self.session.w3.eth.block_number
        start = bid_stream_start(head, chain.bid_window_blocks)

        def open_stream(checkpoint: Checkpoint) -> EventStream:
            # Several polls per block: an order seen late is an order past its window.
            return EventStream(
                self.session.w3,
                bid_event_sources(contracts, address),
                checkpoint,
                confirmations=0,
                log_range=chain.log_range,
                poll_interval=max(0.05, chain.poll_interval_seconds / 4),
                heads=self.heads,
            )

        await self.engine.follow(open_stream, start)

    # -- intake ------------------------------------------------------------------------------

    def _placement(self, order_id: int) -> Placement | None:
        held = self.book.get(order_id)
        return placement_status(held.placement) if held is not None else None

    def _created(self, record: LeaseToCreate) -> None:
        waited = max(0.0, time.time() - record.lease.start_time)
        self.ctx.metrics.intake_seconds.labels(self.name).observe(waited)

    async def _intake(self) -> None:
        w3 = self.session.w3
        if self.checkpoint is None:
            stored = await read_provider_node(self.ctx.api, self.name)
            progress = (stored.get("status") or {}).get("chain")
            saved = checkpoint_from_status(
                ChainProgress.model_validate(progress) if progress else None
            )
            head = await w3.eth.block_number
            await self.closer.restore_holds(time.monotonic())
            recovered = await self.intake.recover()
            if recovered:
                log.info("%s: %d active lease(s) checked at start", self.name, len(recovered))
            # Nothing saved: recovery covered every lease active now; follow from here.
            self.checkpoint = saved or Checkpoint.start_at(head)
        compute = self.session.contracts
        closed = compute.event_source(
            "ComputeLease",
            ["LeaseClosed"],
            {"LeaseClosed": arg_equals("providerAddress", self.session.address)},
        )
        sources = [*self.intake.sources(), *self.updates.sources(), closed]
        while True:
            # Woken by the heads the bid stream reads (several per block), not only by its
            # own poll: a lease is taken in as soon as it is confirmed.
            stream = EventStream.from_settings(
                w3, self.ctx.settings.chain, sources, self.checkpoint, heads=self.heads
            )
            try:
                async for delivery in stream:
                    self.head = stream.head
                    if delivery.event is not None:
                        log.debug("%s: intake: %s", self.name, delivery.event.name)
                        await self._handle(delivery.event)
                    self.checkpoint = delivery.checkpoint
            except ReorgBeyondConfirmations as error:
                log.warning("%s: intake: %s; again from %d", self.name, error, error.resume_from)
                self.checkpoint = Checkpoint(error.resume_from)
            finally:
                await stream.aclose()

    async def _handle(self, event: ChainEvent) -> None:
        match event.name:
            case "LeaseCreated" | "OrderMatched":
                await self.intake.handle(event)
            case "OrderUpdateRequested":
                await self.updates.handle(event)
            case "LeaseClosed":
                self.wake_close.set()

    # -- close and earnings --------------------------------------------------------------------

    async def _close_loop(self) -> None:
        op = self.ctx.settings.operator
        last_escrow = 0.0
        while True:
            started = time.monotonic()
            escrow = started - last_escrow >= op.escrow_check_interval_seconds
            self.wake_close.clear()
            await self.closer.check(self.view.spec, utc_now(), escrow=escrow)
            if escrow:
                last_escrow = started
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake_close.wait(), op.lease_check_interval_seconds)

    async def _earnings_loop(self) -> None:
        while True:
            entries = await collect_earnings(
                self.collector, self.view.spec, self.ctx.metrics, self.name
            )
            await self._write({"earnings": entries})
            await asyncio.sleep(self.ctx.settings.operator.earnings_interval_seconds)

    # -- tick --------------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            if not self.ctx.is_leader:
                raise NotLeader(f"{self.name}: not the Lease holder")
            self.engine.expire()
            self._export()
            await self._save_progress()
            await asyncio.sleep(TICK_SECONDS)

    async def _save_progress(self) -> None:
        if self.checkpoint is None:
            return
        progress = checkpoint_to_status(self.checkpoint, self.head)
        # At most every PROGRESS_WRITE_SECONDS (not on every block): a checkpoint written
        # late only means a few more events handled again after a crash, all idempotent.
        if progress == self._saved or time.monotonic() - self._saved_at < PROGRESS_WRITE_SECONDS:
            return
        await self._write({"chain": progress.to_wire()})
        self._saved, self._saved_at = progress, time.monotonic()

    async def _write(self, status: dict[str, object]) -> None:
        if not self.ctx.is_leader:
            raise NotLeader(f"{self.name}: not the Lease holder")
        await patch_status(self.ctx.api, self.name, status)

    def _export(self) -> None:
        m, name, engine = self.ctx.metrics, self.name, self.engine
        for outcome, value in (
            ("placed", engine.placed),
            ("won", engine.won),
            ("lost", engine.lost),
            ("expired", engine.expired),
        ):
            m.bids.labels(name, outcome).set(value)
        for reason, count in engine.skips.items():
            m.bid_skips.labels(name, reason.value).set(count)
        for error, count in engine.failed.items():
            m.bid_failures.labels(name, error).set(count)
        holds = [r.state for r in self.book]
        m.reservations.labels(name, "bid").set(holds.count(HoldState.BID))
        m.reservations.labels(name, "lease").set(holds.count(HoldState.LEASED))
        head = max(self.head or -1, engine.head)
        if head >= 0:
            m.chain_head.labels(name).set(head)
            if self.checkpoint is not None:
                m.chain_lag.labels(name).set(max(0, head - self.checkpoint.block_number))
        # The advertised offer must not sell held GPUs: a change of the holds re-runs the
        # ProviderNode reconcile, which subtracts them (inventory_reservations).
        seen = tuple(sorted((r.order_id, r.state.value) for r in self.book))
        if seen != self._book_seen:
            self._book_seen = seen
            self.ctx.wake_all()

    def _observe_tx(self, purpose: str, result: str) -> None:
        self.ctx.metrics.transactions.labels(self.name, purpose, result).inc()
