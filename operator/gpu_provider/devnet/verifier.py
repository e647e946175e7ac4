"""The devnet verifier: approves (or, told to, rejects) providers' submitted attributes.

On Spheron a verifier checks what a provider claims in `ProviderAttributeRegistry.
submitAttributes` before it counts; on the devnet one process holding VERIFIER_ROLE plays
it. Per poll it:

1. takes new `ProviderAttributesSubmitted` events from the chain layer's `EventStream`;
2. for each (provider, category) whose newest submission is at least `delay` seconds old,
   reads what is still pending (a newer submission restarts the wait; a withdrawn one is
   dropped);
3. calls `approveAttributes(provider, category)` or, with `reject`,
   `adminRemoveAttributes(provider, category)` (Spheron's function: approved and pending
   attributes of the category are withdrawn), through the `TxManager` under the key
   `verify:<approve|reject>:<provider>:<category>:<block>:<log index>` of the submission.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from eth_account.signers.local import LocalAccount

from gpu_provider.chain.contracts import load_abi
from gpu_provider.chain.events import Checkpoint, Delivery, EventSource, EventStream
from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.following import catch_up, poll_until_cancelled
from gpu_provider.devnet.session import DevnetChain

__all__ = ["DEFAULT_DELAY", "Verdict", "Verification", "Verifier"]

log = logging.getLogger(__name__)

DEFAULT_DELAY: Final = 5.0
"""Seconds a submission waits before the devnet verifier decides on it."""
_LOG_RANGE: Final = 1_000


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


@dataclass
class _Submission:
    provider: str
    category: str
    ref: str
    """`<block>:<log index>` of the submission event: unique, so the key is too."""
    seen_at: float


@dataclass(frozen=True, slots=True)
class Verification:
    """What the verifier did with one submission."""

    provider: str
    category: str
    verdict: Verdict
    units: tuple[tuple[int, int], ...]
    block_number: int


@dataclass
class Verifier:
    """Follows attribute submissions and decides on each after `delay` seconds."""

    chain: DevnetChain
    account: LocalAccount
    delay: float = DEFAULT_DELAY
    reject: bool = False
    from_block: int | None = None
    poll_interval: float = 0.5
    _stream: EventStream = field(init=False)
    _waiting: dict[tuple[str, str], _Submission] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.delay < 0:
            raise ValueError("the verification delay is not negative")
        state = self.chain.state
        start = state.deploy_block if self.from_block is None else self.from_block
        self._stream = EventStream(
            self.chain.w3,
            [
                EventSource(
                    state.address("ProviderAttributeRegistry"),
                    load_abi("ProviderAttributeRegistry"),
                    ["ProviderAttributesSubmitted"],
                )
            ],
            Checkpoint.start_at(max(0, start)),
            confirmations=0,
            log_range=_LOG_RANGE,
            poll_interval=self.poll_interval,
        )

    @property
    def verdict(self) -> Verdict:
        return Verdict.REJECT if self.reject else Verdict.APPROVE

    @property
    def waiting(self) -> tuple[tuple[str, str], ...]:
        """(provider, category) submissions not decided yet."""
        return tuple(sorted(self._waiting))

    async def poll_once(self) -> list[Verification]:
        """Take in new submissions, then decide every one whose delay has passed."""
        await self._catch_up(await self.chain.head())
        now = time.monotonic()
        done = []
        for key in sorted(self._waiting):
            submission = self._waiting[key]
            if now - submission.seen_at < self.delay:
                continue
            verification = await self._decide(submission)
            del self._waiting[key]
            if verification is not None:
                done.append(verification)
        return done

    async def run(self) -> None:
        """Poll until cancelled; an RPC outage is logged and waited out."""
        log.info(
            "verifier %s %s submitted attributes after %.1f s",
            self.account.address,
            "REJECTS" if self.reject else "approves",
            self.delay,
        )
        await poll_until_cancelled(self.poll_once, self._stream, self.poll_interval, log)

    async def _catch_up(self, head: int) -> None:
        await catch_up(self._stream, head, self._take)

    def _take(self, delivery: Delivery) -> None:
        event = delivery.event
        if event is None:
            return
        provider, category = str(event.args["provider"]), str(event.args["category"])
        # A newer submission replaces the pending one on chain, and restarts the wait.
        self._waiting[(provider, category)] = _Submission(
            provider, category, f"{event.block_number}:{event.log_index}", time.monotonic()
        )
        log.info(
            "%s submitted %s attributes ids %s units %s in block %d",
            provider,
            category,
            list(event.args["ids"]),
            list(event.args["units"]),
            event.block_number,
        )

    async def _decide(self, submission: _Submission) -> Verification | None:
        provider, category = submission.provider, submission.category
        pending = await self.chain.read(
            "ProviderAttributeRegistry",
            "getPendingAttributes",
            provider,
            category,
            what=f"pending {category} attributes of {provider}",
        )
        units = tuple((int(entry[0]), int(entry[1])) for entry in pending)
        if not units:
            log.info("%s %s: nothing pending any more (withdrawn)", provider, category)
            return None
        verdict = self.verdict
        function = "approveAttributes" if verdict is Verdict.APPROVE else "adminRemoveAttributes"
        try:
            mined = await self.chain.call(
                self.account,
                f"verify:{verdict.value}:{provider}:{category}:{submission.ref}",
                "ProviderAttributeRegistry",
                function,
                provider,
                category,
                what=f"{function}({provider}, {category})",
            )
        except DevnetError as error:
            log.error("%s %s: %s failed: %s", provider, category, verdict.value, error)
            return None
        log.info(
            "%s %s attributes %s of %s in block %d",
            "approved" if verdict is Verdict.APPROVE else "REJECTED",
            category,
            units,
            provider,
            mined.block_number,
        )
        return Verification(provider, category, verdict, units, mined.block_number)
