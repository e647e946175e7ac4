"""Follow OrderCreated events on the devnet and decode each order's spec.

Run `make stack` (or `gpu-provider devnet up --detach`), place an order with
`gpu-provider devnet tenant order manifests/examples/order.yaml`, then:

    .venv/bin/python docs/examples/watch_orders.py --once
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.events import Checkpoint, EventStream
from gpu_provider.chain.rpc import connect
from gpu_provider.devnet.paths import DEFAULT_STATE_FILE
from gpu_provider.devnet.state import load_state
from gpu_provider.market import OrderSpecError, decode


async def watch(state_file: Path, once: bool) -> None:
    state = load_state(state_file)
    settings = state.chain_settings(confirmations=1)
    w3 = await connect(settings)
    try:
        contracts = Contracts(w3, settings.contracts)
        source = contracts.event_source("OrderRequest", ["OrderCreated"])
        # The caller owns the checkpoint: persist it after handling each event to resume there.
        start = Checkpoint.start_at(state.deploy_block)
        stream = EventStream.from_settings(w3, settings, [source], start)
        head = await w3.eth.block_number
        async for delivery in stream:
            if delivery.event is not None:
                args = delivery.event.args
                try:
                    spec = decode(args["specs"])
                    print(
                        f"order {args['orderId']} in block {delivery.event.block_number}: "
                        f"{spec.total_gpus} GPU(s), services {[s.name for s in spec.services]}"
                    )
                except OrderSpecError as error:
                    print(f"order {args['orderId']}: skipped, {error}")
            if once and delivery.checkpoint.block_number >= head - settings.confirmations:
                break
        await stream.aclose()
    finally:
        await w3.provider.disconnect()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--once", action="store_true", help="stop at the current head")
    parser.add_argument("--state-file", type=Path, default=DEFAULT_STATE_FILE)
    args = parser.parse_args()
    asyncio.run(watch(args.state_file, args.once))
