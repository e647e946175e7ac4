"""Advertising: read the provider from the chain, plan the fixes, send each once.

`Advertiser.reconcile(desired)`:

1. drives to an end every open `advertise:` intent of the journal (a transaction journaled
   before a crash, or one that timed out last time), so the chain is read after it;
2. reads the provider at the head (`read_provider`) and plans (`plan_advertise`);
3. sends each action through the `TxManager` under the action's content-derived key. A key
   whose intent is already finished (mined, or reverted on chain) in a block the read
   covers means the chain moved away from it since (the offer went 8 -> 4 -> 8, an admin
   changed the status): that old intent is dropped from the journal and the action sent
   again under the same key. A GPU/CPU submission of ours that was mined and is neither
   pending nor approved now was rejected by the verifier: it is reported, not re-sent, until
   the offer changes;
4. reads the provider again and says what is awaiting approval.

Refusals (a revert at estimation or on chain) are returned as decoded errors, never raised;
`RpcUnavailable` is raised so the caller retries later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.errors import TransactionError, TransactionReverted, TransactionTimeout
from gpu_provider.chain.intents import IntentStatus, IntentStore, TxIntent
from gpu_provider.chain.registry import advertise_request, read_provider
from gpu_provider.chain.tx import TxManager
from gpu_provider.chain.txtypes import TxRequest
from gpu_provider.market.advertise import (
    CATEGORIES,
    ActionKind,
    ActualProvider,
    AdvertiseAction,
    DesiredProvider,
    attributes_key,
    key_action,
    plan_advertise,
    remove_attributes_key,
)

__all__ = ["KEY_PREFIX", "AdvertiseOutcome", "Advertiser", "Refusal", "Sent"]

log = logging.getLogger(__name__)

KEY_PREFIX: Final = "advertise:"


@dataclass(frozen=True)
class Sent:
    action: AdvertiseAction
    tx_hash: str
    block_number: int


@dataclass(frozen=True)
class Refusal:
    """An action the chain (or the node) refused; `error` is the decoded revert
    (`ContractRevert` for a custom error) or the transaction error."""

    action: AdvertiseAction
    error: TransactionError


@dataclass(frozen=True)
class AdvertiseOutcome:
    before: ActualProvider
    """The provider as read before anything was sent."""
    after: ActualProvider
    """The provider as read at the end."""
    planned: tuple[AdvertiseAction, ...]
    sent: tuple[Sent, ...]
    refused: tuple[Refusal, ...]
    in_flight: tuple[AdvertiseAction, ...]
    """Sent but not yet mined within the manager's wait: journaled, resumed next time."""
    rejected: tuple[str, ...]
    """Categories whose submission (of exactly the current offer) the verifier rejected."""
    awaiting_approval: tuple[str, ...]
    """Categories whose current offer is submitted and pending the verifier."""
    remaining: tuple[AdvertiseAction, ...]
    """What a plan from `after` still contains (rejected categories, refusals)."""

    @property
    def in_sync(self) -> bool:
        """Nothing left to send: the chain says what the ProviderNode wants (approval aside)."""
        return (
            not self.refused
            and not self.in_flight
            and all(a.category in self.rejected for a in self.remaining)
        )


class Advertiser:
    """Keeps one provider's on-chain registration and attributes equal to `desired`.

    `store` must be the `IntentStore` that `tx` journals in (the ProviderNode status store
    in the operator): finished intents are looked up and dropped there."""

    def __init__(self, contracts: Contracts, tx: TxManager, store: IntentStore) -> None:
        self.contracts = contracts
        self.tx = tx
        self.store = store
        self._latest: dict[str, str] = {}
        """Category -> the key of the attribute transaction this process sent last."""

    async def reconcile(self, desired: DesiredProvider) -> AdvertiseOutcome:
        if desired.wallet.lower() != self.tx.address.lower():
            raise ValueError(
                f"the wallet {desired.wallet} is not the transaction manager's {self.tx.address}"
            )
        sent: list[Sent] = []
        refused: list[Refusal] = []
        in_flight: list[AdvertiseAction] = []
        await self._resume_open(sent, refused, in_flight)
        head = await self.contracts.w3.eth.block_number
        before = await read_provider(self.contracts, desired.wallet, block=head)
        planned = plan_advertise(desired, before)
        rejected: list[str] = []
        for action in planned:
            if in_flight or (refused and refused[-1].action.kind is ActionKind.REGISTER):
                break  # later transactions would queue behind it, or fail without it
            if await self._was_rejected(action, before, head):
                rejected.append(str(action.category))
                continue
            if not await self._ready(action, head):
                continue
            await self._send(action, sent, refused, in_flight)
        after = await read_provider(self.contracts, desired.wallet) if sent or in_flight else before
        remaining = tuple(plan_advertise(desired, after))
        awaiting = tuple(
            c
            for c in CATEGORIES
            if desired.attributes.get(c)
            and after.pending_units(c) == desired.attributes[c]
            and after.approved_units(c) != desired.attributes[c]
        )
        return AdvertiseOutcome(
            before=before,
            after=after,
            planned=tuple(planned),
            sent=tuple(sent),
            refused=tuple(refused),
            in_flight=tuple(in_flight),
            rejected=tuple(rejected),
            awaiting_approval=awaiting,
            remaining=remaining,
        )

    async def _resume_open(
        self, sent: list[Sent], refused: list[Refusal], in_flight: list[AdvertiseAction]
    ) -> None:
        """Finish what an earlier run journaled, before reading the chain."""
        opened = [
            i
            for i in await self.store.open_intents()
            # Another wallet's intents (the Secret changed keys) are not ours to sign.
            if i.key.startswith(KEY_PREFIX) and i.sender == self.tx.address
        ]
        for intent in sorted(opened, key=lambda i: i.nonce):
            kind, category = key_action(intent.key)
            action = AdvertiseAction(
                kind, (), intent.key, f"resume {intent.purpose or intent.key}", category
            )
            request = TxRequest(to=intent.to, data=intent.data, value=intent.value)
            log.info("resuming %s journaled earlier (nonce %d)", intent.key, intent.nonce)
            await self._deliver(action, request, sent, refused, in_flight)

    async def _was_rejected(
        self, action: AdvertiseAction, before: ActualProvider, head: int
    ) -> bool:
        """Our submission of exactly this offer was mined, yet it is neither pending nor
        approved, and nothing of ours replaced it since: the verifier rejected it.

        "Since" is judged from what this process last sent in the category and, after a
        restart, from the journal (the submission of what is approved now, our withdrawal
        of the category). When in doubt it says rejected: the offer is then not re-sent
        until it changes, which under-advertises but never claims more than was offered."""
        category = action.category
        if action.kind is not ActionKind.ATTRIBUTES or category is None:
            return False
        ours = await self.store.get(action.key)
        if ours is None or not _finished_by(ours, head, IntentStatus.MINED):
            return False
        if before.pending_units(category):
            return False  # a newer submission is pending: ours was replaced, not rejected
        latest = self._latest.get(category)
        if latest is not None and latest != action.key:
            return False
        newer = [remove_attributes_key(category)]
        if approved := before.approved_units(category):
            newer.append(attributes_key(category, approved))
        for key in newer:
            other = await self.store.get(key)
            if other is not None and (other.block_number or 0) > (ours.block_number or 0):
                return False
        return True

    async def _ready(self, action: AdvertiseAction, head: int) -> bool:
        """Make the journal ready for `action`; False if it was mined after the read
        (the next reconcile sees it)."""
        intent = await self.store.get(action.key)
        if intent is None or intent.status.open or intent.status is IntentStatus.FAILED:
            return True
        if intent.block_number is not None and intent.block_number > head:
            return False
        # Finished in a block the read covers, yet the drift is back: a new transaction.
        await self.store.delete(action.key)
        return True

    async def _send(
        self,
        action: AdvertiseAction,
        sent: list[Sent],
        refused: list[Refusal],
        in_flight: list[AdvertiseAction],
    ) -> None:
        request = advertise_request(self.contracts, self.tx.address, action)
        log.info("advertise: %s (%s)", action.summary, action.key)
        await self._deliver(action, request, sent, refused, in_flight)

    async def _deliver(
        self,
        action: AdvertiseAction,
        request: TxRequest,
        sent: list[Sent],
        refused: list[Refusal],
        in_flight: list[AdvertiseAction],
    ) -> None:
        try:
            result = await self.tx.send(action.key, request)
        except TransactionTimeout:
            in_flight.append(action)
        except TransactionReverted as error:
            log.warning("advertise: %s refused: %s", action.summary, error)
            refused.append(Refusal(action, error))
        except TransactionError as error:
            # Fee cap, nonce or intent conflicts: nothing more to do now; said in status.
            log.warning("advertise: %s failed: %s", action.summary, error)
            refused.append(Refusal(action, error))
        else:
            sent.append(Sent(action, result.tx_hash, result.block_number))
            if action.category is not None:
                self._latest[action.category] = action.key


def _finished_by(intent: TxIntent | None, head: int, status: IntentStatus) -> bool:
    return (
        intent is not None
        and intent.status is status
        and intent.block_number is not None
        and intent.block_number <= head
    )
