"""The marketplace steps of `make demo`: orders, bids, matches, manifests, running leases, the
two ways a lease ends, the offer on chain, and the earnings.

The tenant is the devnet's own (`gpu_provider.devnet.tenant`, the operator's chain client);
the matchmaker is `gpu-provider devnet matchmaker`, a process of its own like the operator.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp

from e2e.harness import demo_processes
from e2e.harness.demo_leases import (
    gpuleases,
    lease_rows,
    namespace_exists,
    open_gpus,
    pods_running,
    pods_table,
    status_of,
)
from e2e.harness.demo_operator import Provider, gpu_offer, read_chain_provider
from e2e.harness.demo_orders import ORDERS, DemoOrder, order_named, sdk_manifest
from e2e.harness.demo_steps import DemoFailed, Steps, say, table, until
from e2e.harness.stack import kubectl
from gpu_provider.devnet.accounts import Role
from gpu_provider.devnet.session import DevnetChain
from gpu_provider.devnet.state import DevnetState
from gpu_provider.devnet.tenant import PlacedOrder, Tenant
from gpu_provider.devnet.upload import TlsOptions, send_manifest
from gpu_provider.market.auth import AUTH_HEADER, build_auth_header
from gpu_provider.market.pricing import base_units_per_block_to_usd_per_hour

DEPOSIT_USD = 20


@dataclass
class Market:
    steps: Steps
    state: DevnetState
    chain: DevnetChain
    provider: Provider
    initial_offer: dict[str, int]
    watched: tuple[demo_processes.Background, ...] = ()
    placed: dict[str, PlacedOrder] = field(default_factory=dict)
    tenant: Tenant = field(init=False)

    def __post_init__(self) -> None:
        self.tenant = Tenant(chain=self.chain, account=self.state.signer(Role.TENANT))
        self.address = self.state.account_address(Role.PROVIDER)

    def lease_id(self, key: str) -> int:
        return self.placed[key].order_id

    @property
    def servable(self) -> list[DemoOrder]:
        return [o for o in ORDERS if o.servable]

    def usd_per_hour(self, per_block: int) -> str:
        return f"{base_units_per_block_to_usd_per_hour(per_block, self.state.token_terms()):.4f}"

    async def wait(self, check: Any, what: str, within: float) -> Any:
        return await until(check, what, within=within, watched=self.watched)

    async def run(self) -> None:
        await self.orders()
        await self.bids_and_matches()
        await self.manifests()
        await self.running()
        await self.shrunk_offer()
        await self.tenant_closes()
        await self.runs_out()
        await self.offer_back()

    # -- the tenant orders ---------------------------------------------------------------

    async def orders(self) -> None:
        self.steps.step(
            f"A tenant deposits {DEPOSIT_USD} USDT into escrow and places four orders "
            "(e2e/harness/demo_orders.py)"
        )
        balances = await self.tenant.deposit(Decimal(DEPOSIT_USD))
        say(f"tenant {self.tenant.account.address}: {self.tenant.amount(balances.unlocked)} free")
        rows: list[tuple[Any, ...]] = [("ORDER", "WHAT", "BLOCKS", "MAX USD/H", "ESCROW LOCKED")]
        for demo in ORDERS:
            order = demo.order()
            placed = await self.tenant.create_order(order)
            self.placed[demo.key] = placed
            rows.append(
                (
                    placed.order_id,
                    f"{demo.key}: {demo.what}",
                    placed.terms.num_blocks,
                    order.max_usd_per_hour,
                    self.tenant.amount(placed.terms.escrow),
                )
            )
        say(table(rows))

    # -- bids and matches ----------------------------------------------------------------

    async def _our_bid(self, order_id: int) -> Any:
        bids = await self.chain.contract("Bid").functions.getAllBidsForOrder(order_id).call()
        return next((b for b in bids if str(b[1]) == self.address), None)

    async def bids_and_matches(self) -> None:
        self.steps.step(
            "The operator bids on what it can serve, skips the rest; the matchmaker "
            "(`gpu-provider devnet matchmaker`, log .local/matchmaker.log) matches"
        )
        rows: list[tuple[Any, ...]] = [("ORDER", "BID BY THE OPERATOR", "PER BLOCK", "USD/H")]
        for demo in self.servable:
            order_id = self.lease_id(demo.key)
            bid = await self.wait(
                lambda order_id=order_id: self._our_bid(order_id),
                f"the operator's bid on order {order_id} ({demo.key})",
                within=60,
            )
            rows.append((order_id, demo.key, int(bid[2]), self.usd_per_hour(int(bid[2]))))
        say(table(rows))
        for demo in ORDERS:
            if demo.servable:
                continue
            order_id = self.lease_id(demo.key)
            series = await self.wait(
                self._skips,
                f"the operator counting order {order_id} as skipped in /metrics",
                within=60,
            )
            say(f"order {order_id} ({demo.key}, {demo.model}): no bid; /metrics says why:")
            say("\n".join(f"  {line}" for line in series))
        rows = [("LEASE", "ORDER", "PROVIDER", "USD/H", "START BLOCK", "END BLOCK")]
        for demo in self.servable:
            order_id = self.lease_id(demo.key)
            await self.wait(
                lambda order_id=order_id: self._matched(order_id),
                f"order {order_id} ({demo.key}) matched",
                within=60,
            )
            lease = await self.tenant.lease(order_id)
            ours = "the operator's" if lease.provider == self.address else lease.provider
            rows.append(
                (
                    lease.lease_id,
                    demo.key,
                    ours,
                    f"{lease.usd_per_hour:.4f}",
                    lease.start_block,
                    lease.end_block,
                )
            )
        say(table(rows))
        ids = [self.lease_id(d.key) for d in self.servable]
        await self.wait(
            lambda: all(i in gpuleases() for i in ids), "a GpuLease for each lease", within=60
        )
        say("\nThe chain daemon took each lease in as a GpuLease (kubectl get gl -A):")
        say(kubectl("get", "gl", "-A"))
        for demo in ORDERS:
            if not demo.servable:
                state = await self.tenant.order_state(self.lease_id(demo.key))
                say(f"order {self.lease_id(demo.key)} ({demo.key}) stays {state}: no bid to match")

    def _skips(self) -> list[str]:
        """The nonzero `gpu_provider_bid_skips` series: one per reason an order was skipped."""
        return [
            line
            for line in self.provider.metric_series("gpu_provider_bid_skips")
            if float(line.rsplit(" ", 1)[1]) > 0
        ]

    async def _matched(self, order_id: int) -> bool:
        return await self.tenant.order_state(order_id) == "MATCHED"

    # -- manifests and workloads ---------------------------------------------------------

    async def manifests(self) -> None:
        self.steps.step(
            "The tenant PUTs each lease's manifest (the SDK's JSON array, Auth-Spheron signed) "
            f"to the gateway at the provider's hostUri, port {self.provider.gateway_port}"
        )
        await self.greedy_manifest(order_named("finetune"))
        for demo in self.servable:
            reply = await send_manifest(
                self.tenant,
                self.lease_id(demo.key),
                sdk_manifest(demo),
                port=self.provider.gateway_port,
                tls=TlsOptions(insecure=True),  # the gateway's devnet self-signed certificate
            )
            say(f"PUT {reply.url} -> {reply.status} {reply.body.strip()}")

    async def running(self) -> None:
        self.steps.step("The operator renders and applies each lease; kwok runs the Pods")
        ids = [self.lease_id(d.key) for d in self.servable]
        seen: dict[int, str] = {}

        def all_running() -> bool:
            leases = gpuleases()
            for lease_id in ids:
                phase = ((leases.get(lease_id) or {}).get("status") or {}).get("phase", "-")
                if seen.get(lease_id) != phase:
                    say(f"  {self.steps.mark()} lease {lease_id}: {phase}")
                    seen[lease_id] = phase
            return all(seen.get(i) == "Running" for i in ids)

        await self.wait(all_running, "every lease Running", within=90)
        pods = await self.wait(lambda: pods_running(ids), "the leases' Pods Running", within=30)
        say(pods_table(pods, gpuleases()))

    async def shrunk_offer(self) -> None:
        self.steps.step("The leases, and the offer on chain shrunk by their GPUs")
        ids = [self.lease_id(d.key) for d in self.servable]
        say(lease_rows(gpuleases(), ids))
        await self.tenant_status(self.lease_id("train"))
        await self.tenant_status(self.lease_id("notebook"))
        await self.offer_settles("the offer without the leased GPUs")

    async def _gateway(self, method: str, path: str, body: Any = None) -> tuple[str, int, Any]:
        """A request signed by the tenant, as the SDK sends it: (url, status, JSON answer)."""
        url = f"https://127.0.0.1:{self.provider.gateway_port}{path}"
        headers = {AUTH_HEADER: build_auth_header(self.tenant.account.key, now=int(time.time()))}
        data = None if body is None else json.dumps(body)
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, url, data=data, headers=headers, ssl=False) as reply,
        ):
            return url, reply.status, await reply.json(content_type=None)

    async def greedy_manifest(self, demo: DemoOrder) -> None:
        """A manifest asking for more GPUs than ordered: refused, nothing stored."""
        manifest = sdk_manifest(demo)
        manifest[0]["services"][0]["resources"]["gpu"]["units"]["val"] = str(demo.gpus + 1)
        lease_id = self.lease_id(demo.key)
        url, status, answer = await self._gateway(
            "PUT", f"/deployment/{lease_id}/manifest", manifest
        )
        stored = "manifest" in (gpuleases().get(lease_id) or {}).get("spec", {})
        say(
            f"PUT {url} asking {demo.gpus + 1} GPUs on a {demo.gpus}-GPU order -> {status} "
            f"{json.dumps(answer)}; a manifest stored: {stored}"
        )
        if status != 422 or stored:
            say("DEMO FAILED: the gateway should refuse it with 422 and store nothing")
            raise DemoFailed("a manifest asking for more than the order refused")

    async def tenant_status(self, lease_id: int) -> None:
        """What the tenant's SDK reads: GET /lease/<id>/1/1/status."""
        url, status, body = await self._gateway("GET", f"/lease/{lease_id}/1/1/status")
        say(f"\nThe tenant's view, GET {url} -> {status}:")
        say(json.dumps(body, separators=(",", ":"))[:600])

    async def offer_settles(self, what: str) -> None:
        before = self.initial_offer

        async def settled() -> dict[str, int] | None:
            held = open_gpus(gpuleases())
            wanted = Counter(before)
            wanted.subtract(held)
            offer = gpu_offer(await read_chain_provider(self.state))
            return offer if offer == {m: n for m, n in wanted.items() if n > 0} else None

        offer = await self.wait(
            settled, f"{what} (approved by the devnet verifier) on chain", within=60
        )
        rows: list[tuple[Any, ...]] = [("GPU MODEL", "AT THE START", "NOW ON CHAIN")]
        for model in sorted(set(before) | set(offer)):
            rows.append((model, before.get(model, 0), offer.get(model, 0)))
        say("\nProviderAttributeRegistry, GPU attributes approved for the provider:")
        say(table(rows))

    # -- the end of leases ---------------------------------------------------------------

    async def _until_closed(self, lease_id: int, reason: str, within: float) -> None:
        seen: list[str] = []

        def closed() -> bool:
            status = status_of(lease_id)
            now = f"{status.get('phase', '-')} ({status.get('closeReason') or '-'})"
            if not seen or seen[-1] != now:
                say(f"  {self.steps.mark()} lease {lease_id}: {now}")
                seen.append(now)
            return status.get("phase") == "Closed" and status.get("closeReason") == reason

        await self.wait(closed, f"lease {lease_id} Closed for {reason}", within=within)
        await self.wait(
            lambda: not namespace_exists(f"lease-{lease_id}"),
            f"namespace lease-{lease_id} deleted",
            within=30,
        )
        say(f"  {self.steps.mark()} namespace lease-{lease_id}: gone")

    async def tenant_closes(self) -> None:
        lease_id = self.lease_id("finetune")
        self.steps.step(f"The tenant closes lease {lease_id} (finetune) on chain")
        closed = await self.tenant.close(lease_id)
        say(
            f"closeLease in block {closed.block}: the provider was paid "
            f"{self.tenant.amount(closed.paid)} for the blocks it ran"
        )
        await self._until_closed(lease_id, "TenantClosed", within=60)

    async def runs_out(self) -> None:
        lease_id = self.lease_id("notebook")
        lease = await self.tenant.lease(lease_id)
        head = await self.chain.head()
        self.steps.step(
            f"Lease {lease_id} (notebook) runs out of paid blocks at block {lease.end_block} "
            f"(head {head}); the operator closes it"
        )
        wait = max(0, lease.end_block - head) * self.state.block_time + 60
        await self._until_closed(lease_id, "LeaseExpired", within=wait)
        after = await self.tenant.lease(lease_id)
        say(f"  on chain: lease {lease_id} {after.state}")

    async def offer_back(self) -> None:
        self.steps.step("The offer on chain grows back by the GPUs of the closed leases")
        await self.offer_settles("the offer with the closed leases' GPUs back")
        say(lease_rows(gpuleases(), [self.lease_id(d.key) for d in self.servable]))
