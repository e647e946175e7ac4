"""The devnet services' shared loop: read a stream up to the head, poll until cancelled.

The matchmaker and the verifier both follow marketplace events with an `EventStream` and act
on each pass; only what they do with an event differs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from gpu_provider.chain.errors import RpcError, RpcUnavailable
from gpu_provider.chain.events import Delivery, EventStream

__all__ = ["catch_up", "poll_until_cancelled"]


async def catch_up(stream: EventStream, head: int, take: Callable[[Delivery], None]) -> None:
    """Hand every delivery up to `head` to `take`."""
    while True:
        done = stream.checkpoint
        if done.block_number >= head and done.log_index is None:
            return
        # The head block's events may be its last: no "block done" marker follows until a new
        # block, so stop waiting once the stream is idle.
        idle = None if done.block_number < head else stream.poll_interval
        try:
            delivery = await asyncio.wait_for(anext(stream), idle)
        except TimeoutError:
            return
        take(delivery)


async def poll_until_cancelled(
    poll_once: Callable[[], Awaitable[Any]],
    stream: EventStream,
    poll_interval: float,
    log: logging.Logger,
) -> None:
    """Call `poll_once` every `poll_interval` s; an RPC outage is logged and waited out."""
    try:
        while True:
            try:
                await poll_once()
            except (RpcUnavailable, RpcError) as error:
                log.warning("RPC unavailable (%s); retrying in %.1f s", error, poll_interval)
            await asyncio.sleep(poll_interval)
    finally:
        await stream.aclose()
