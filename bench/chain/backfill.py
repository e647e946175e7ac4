"""Backfill rate: the event stream vs a bare `eth_getLogs` loop over the same blocks.

Both read the cached 100,000-block chain (`dataset.py`) from its first event block to the
confirmed head, with the same filter (emitter address, both event topics) and the same range
size. The bare loop only fetches and parses JSON; the stream also checks block hashes,
decodes every log into a `ChainEvent`, hands out checkpoints and checks the blocks within
`checked_depth` of the head against their headers' `logsBloom` (the completeness check; it is
also measured switched off, to show its cost).

Run: `.venv/bin/python -m bench.chain.backfill` (from the repository root).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from bench.chain.dataset import Dataset, ensure_dataset, start_chain
from bench.chain.emitter import EMITTER_ABI

from gpu_provider.chain.decoding import event_topic
from gpu_provider.chain.events import (
    DEFAULT_CHECKED_DEPTH,
    Checkpoint,
    EventSource,
    EventStream,
)
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.rpc import FailoverProvider

CONFIRMATIONS = 2
DEFAULT_CACHE = Path.home() / ".cache" / "gpu-provider-bench"


@dataclass(frozen=True)
class Run:
    seconds: float
    events: int


async def bare_loop(url: str, dataset: Dataset, target: int, log_range: int) -> Run:
    topics = [[event_topic(e) for e in EMITTER_ABI]]
    events = 0
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        for start in range(dataset.first_block, target + 1, log_range):
            query = {
                "address": [dataset.emitter],
                "topics": topics,
                "fromBlock": hex(start),
                "toBlock": hex(min(start + log_range - 1, target)),
            }
            body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [query]}
            async with session.post(url, json=body) as reply:
                events += len(json.loads(await reply.read())["result"])
    return Run(time.perf_counter() - started, events)


async def stream_backfill(
    url: str,
    dataset: Dataset,
    target: int,
    log_range: int,
    checked_depth: int = DEFAULT_CHECKED_DEPTH,
) -> Run:
    provider = FailoverProvider([url], chain_id=31337)
    stream = EventStream(
        Rpc(provider),
        [EventSource(dataset.emitter, EMITTER_ABI)],
        Checkpoint.start_at(dataset.first_block),
        confirmations=CONFIRMATIONS,
        log_range=log_range,
        poll_interval=1.0,
        checked_depth=checked_depth,
    )
    events = 0
    started = time.perf_counter()
    async for item in stream:
        if item.event is not None:
            events += 1
        elif item.checkpoint.block_number >= target:
            break
    elapsed = time.perf_counter() - started
    await provider.disconnect()
    return Run(elapsed, events)


async def measure(dataset: Dataset, url: str, rounds: int, log_range: int) -> dict[str, float]:
    target = dataset.last_block - CONFIRMATIONS
    bare: list[Run] = []
    ours: list[Run] = []
    unchecked: list[Run] = []
    await bare_loop(url, dataset, target, log_range)  # warm anvil's caches once
    for _ in range(rounds):
        bare.append(await bare_loop(url, dataset, target, log_range))
        ours.append(await stream_backfill(url, dataset, target, log_range))
        unchecked.append(await stream_backfill(url, dataset, target, log_range, checked_depth=0))
    for run in (*bare, *ours, *unchecked):
        if run.events != dataset.events:
            raise SystemExit(f"expected {dataset.events} events, a run saw {run.events}")
    bare_s = statistics.median(r.seconds for r in bare)
    ours_s = statistics.median(r.seconds for r in ours)
    unchecked_s = statistics.median(r.seconds for r in unchecked)
    return {
        "checked_depth": DEFAULT_CHECKED_DEPTH,
        "unchecked_s": unchecked_s,
        "unchecked_rate": dataset.events / unchecked_s,
        "unchecked_ratio": unchecked_s / bare_s,
        "blocks": target - dataset.first_block + 1,
        "events": dataset.events,
        "log_range": log_range,
        "bare_s": bare_s,
        "stream_s": ours_s,
        "bare_rate": dataset.events / bare_s,
        "stream_rate": dataset.events / ours_s,
        "ratio": ours_s / bare_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--log-range", type=int, default=2000)
    args = parser.parse_args()
    dataset = ensure_dataset(args.cache)
    anvil = start_chain(dataset)
    try:
        result = asyncio.run(measure(dataset, anvil.url, args.rounds, args.log_range))
    finally:
        anvil.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
