"""One lock per idempotency key: same key in turn, other keys at once, nothing left behind."""

from __future__ import annotations

import asyncio
import contextlib

from gpu_provider.chain.keylocks import KeyedLocks


async def test_users_of_one_key_take_turns() -> None:
    locks = KeyedLocks()
    inside: list[str] = []
    overlap = False

    async def use(name: str) -> None:
        nonlocal overlap
        async with locks.hold("k"):
            overlap = overlap or bool(inside)
            inside.append(name)
            await asyncio.sleep(0)
            inside.remove(name)

    await asyncio.gather(*(use(str(i)) for i in range(5)))
    assert not overlap


async def test_different_keys_do_not_wait_for_each_other() -> None:
    locks = KeyedLocks()
    async with locks.hold("a"), asyncio.timeout(1), locks.hold("b"):
        assert locks.busy("a")
        assert locks.busy("b")


async def test_a_key_is_forgotten_when_its_last_user_leaves() -> None:
    locks = KeyedLocks()
    async with locks.hold("a"):
        assert len(locks) == 1
    assert len(locks) == 0
    assert not locks.busy("a")


async def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    locks = KeyedLocks()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("k"):
            await release.wait()

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    release.set()
    await first
    assert len(locks) == 0
