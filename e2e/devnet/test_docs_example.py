"""docs/examples/watch_orders.py runs as the chain guide says and shows the tenant's order."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from e2e.chain.conftest import Market
from gpu_provider.devnet.orderfile import parse_order_yaml
from gpu_provider.devnet.session import DevnetChain
from gpu_provider.devnet.tenant import Tenant

REPO = Path(__file__).resolve().parents[2]


async def test_watch_orders_example_decodes_a_placed_order(
    market: Market, devnet: DevnetChain, tmp_path: Path
) -> None:
    tenant = Tenant(chain=devnet, account=market.people.tenant)
    await tenant.deposit(Decimal(10))
    order = parse_order_yaml((REPO / "manifests/examples/order.yaml").read_text(), "order.yaml")
    placed = await tenant.create_order(order)
    market.mine(2)  # bury the order under the example's one confirmation
    state_file = tmp_path / "devnet.json"
    state_file.write_text(devnet.state.to_json())

    example = ["docs/examples/watch_orders.py", "--once", "--state-file", str(state_file)]
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, *example],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        f"order {placed.order_id} in block {placed.block}: 1 GPU(s), services ['vllm', 'ui']"
        in result.stdout
    ), result.stdout
