"""Advertise the devnet provider with an offer given on the command line, as the operator does.

Run `make stack` (or `gpu-provider devnet up --detach` and `gpu-provider devnet verifier`),
then:

    .venv/bin/python docs/examples/advertise_provider.py --gpu 51=8 --cpu 1=64
    .venv/bin/python docs/examples/advertise_provider.py --gpu 51=5            # offer shrinks
    .venv/bin/python docs/examples/advertise_provider.py --gpu 51=5 --maintenance

Each run reads the provider from the contracts, prints what it sends and what the chain says
afterwards. Intents are journaled in a JSON file (--journal), so a run interrupted after a
transaction was journaled resumes it instead of sending it twice; a second identical run
sends nothing.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from gpu_provider.chain.advertiser import Advertiser
from gpu_provider.chain.intents import JsonFileIntentStore
from gpu_provider.chain.registry import resolve_tokens
from gpu_provider.chain.tx import TxManager
from gpu_provider.chain.wallet import Wallet
from gpu_provider.devnet.accounts import Role
from gpu_provider.devnet.paths import DEFAULT_STATE_FILE
from gpu_provider.devnet.session import devnet_timings, open_devnet
from gpu_provider.devnet.state import load_state
from gpu_provider.market.advertise import build_desired


def units(pairs: list[str]) -> dict[int, int]:
    """`51=8` -> {51: 8} (catalog resource id = units)."""
    return {int(k): int(v) for k, v in (pair.split("=", 1) for pair in pairs)}


async def advertise(args: argparse.Namespace) -> None:
    state = load_state(args.state_file)
    async with await open_devnet(state) as chain:
        wallet = Wallet(state.signer(Role.PROVIDER))  # the devnet's public test key
        store = JsonFileIntentStore(args.journal)
        tx = TxManager.from_settings(
            chain.w3,
            chain.settings,
            wallet,
            store,
            timings=devnet_timings(state.block_time),
            error_abis=chain.marketplace.error_abis(),
        )
        tokens = await resolve_tokens(chain.marketplace, ["USDT"])
        desired = build_desired(
            wallet=wallet.address,
            name="gpu-provider-devnet",
            region="eu-west",
            host_uri=args.host,
            certificate="",
            tokens=tokens.values(),
            maintenance=args.maintenance,
            gpu_offer=units(args.gpu),
            cpu_offer=units(args.cpu),
        )
        outcome = await Advertiser(chain.marketplace, tx, store).reconcile(desired)
        await tx.aclose()
    for sent in outcome.sent:
        print(f"sent: {sent.action.summary} (block {sent.block_number})")
    for refusal in outcome.refused:
        print(f"refused: {refusal.action.summary}: {refusal.error}")
    after = outcome.after
    print(f"status {after.status.name}, tier {after.tier}, hostUri {after.host_uri}")
    for category in ("GPU", "CPU"):
        print(
            f"{category}: approved {list(after.approved_units(category))}, "
            f"pending {list(after.pending_units(category))}"
        )
    if outcome.rejected:
        print(f"rejected by the verifier: {', '.join(outcome.rejected)}")
    print("in sync" if outcome.in_sync else "not in sync yet")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gpu", nargs="*", default=[], help="GPU offer: <resource id>=<units>")
    parser.add_argument("--cpu", nargs="*", default=[], help="CPU offer: <resource id>=<units>")
    parser.add_argument("--maintenance", action="store_true")
    parser.add_argument("--host", default="provider.devnet.example", help="the bare hostUri")
    parser.add_argument("--state-file", type=Path, default=DEFAULT_STATE_FILE)
    parser.add_argument("--journal", type=Path, default=Path(".local/advertise-journal.json"))
    asyncio.run(advertise(parser.parse_args()))
