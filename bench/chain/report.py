"""Run the chain benchmarks and write `bench/chain/RESULTS.md` (a few minutes on 2 cores).

Run: `.venv/bin/python -m bench.chain.report` (from the repository root).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from bench.chain import backfill, tx_throughput
from bench.chain.dataset import ensure_dataset, start_chain

from gpu_provider.devnet.anvil import Anvil, find_anvil

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        ram = f"{mem_kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        ram = "unknown RAM"
    return f"{os.cpu_count()} CPUs (`nproc`), {cpu}, {ram}; Python {platform.python_version()}"


def anvil_version() -> str:
    answer = subprocess.run(
        [str(find_anvil()), "--version"], capture_output=True, text=True, check=False
    )
    first = answer.stdout.splitlines()[0] if answer.stdout else "anvil (version unknown)"
    return first.replace("Version: ", "")


def render(back: dict[str, Any], instamine: dict[str, Any], interval: dict[str, Any]) -> str:
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    tx_rows = "\n".join(
        f"| {r['mining']} | {r['transactions']} | {r['bare_tps']:.0f} tx/s | "
        f"{r['manager_estimated_tps']:.0f} tx/s | {r['ratio_estimated']:.2f}x | "
        f"{r['manager_gas_given_tps']:.0f} tx/s | {r['ratio_gas_given']:.2f}x |"
        for r in (instamine, interval)
    )
    return f"""# Chain client benchmarks

Machine: {machine()}. Date: {today}. Chain: {anvil_version()}.
Numbers are medians over rounds; the machine is shared, so expect +-20% between runs.
Reproduce with `.venv/bin/python -m bench.chain.report`.

## Event stream backfill

{back["blocks"]:,} blocks holding {back["events"]:,} marketplace-shaped events (`OrderCreated`
with a Spheron-sized spec string, `OrderMatched`), `eth_getLogs` ranges of
{back["log_range"]} blocks. The bare loop only fetches and parses the JSON; the stream also
checks block hashes, decodes every event into a `ChainEvent`, hands out a checkpoint per
event, and checks the {back["checked_depth"]} blocks nearest the head against their headers'
`logsBloom` (the completeness check: their headers ride in the last range's batch).
Targets: >= 5,000 events/s and <= 1.3x the bare loop's time, with the completeness check on.

| reader | time | events/s | ratio |
|---|---|---|---|
| bare `eth_getLogs` loop (floor) | {back["bare_s"]:.3f} s | {back["bare_rate"]:,.0f} | 1.00x |
| `EventStream`, completeness check on (default) | {back["stream_s"]:.3f} s | \
{back["stream_rate"]:,.0f} | {back["ratio"]:.2f}x |
| `EventStream`, completeness check off (`checked_depth=0`) | {back["unchecked_s"]:.3f} s | \
{back["unchecked_rate"]:,.0f} | {back["unchecked_ratio"]:.2f}x |

## Transaction throughput

TestToken transfers. Bare floor: sign locally with consecutive nonces and fixed gas,
`eth_sendRawTransaction` one after the other, then poll receipts. Manager: `TxManager.send`
for every transfer at once (own idempotency key each, in-memory journal, receipts with 0
confirmations), with gas estimation and with the gas given.

| mining | txs | bare | manager (estimate) | ratio | manager (gas given) | ratio |
|---|---|---|---|---|---|---|
{tx_rows}

Both sides are bounded by anvil's own time per `eth_sendRawTransaction` (about 10 ms here),
which the manager cannot go below: its sends are serialised per signer (nonce order) while
its estimates, fee reads and receipt polls run concurrently around them.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=backfill.DEFAULT_CACHE)
    parser.add_argument("--transactions", type=int, default=300)
    args = parser.parse_args()
    dataset = ensure_dataset(args.cache)
    anvil = start_chain(dataset)
    try:
        back = asyncio.run(backfill.measure(dataset, anvil.url, rounds=7, log_range=2000))
    finally:
        anvil.stop()
    results = []
    for interval in (None, 0.1):
        with Anvil(block_time=None) as node:
            results.append(
                asyncio.run(tx_throughput.measure(node.url, args.transactions, 3, interval))
            )
    RESULTS.write_text(render(back, results[0], results[1]))
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
