"""The chain side of one ProviderNode for one leadership term: wallet, journal, sender.

It is opened by the Lease holder only, from the ProviderNode as stored at that moment (so a
new leader resumes exactly what the last one journaled), and `recover()` drives every open
intent to an end before anything new is planned. The journal's `persist` refuses to write
once this process is no longer the leader: an intent that is not in status is never
broadcast, so a deposed leader cannot send anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from web3 import AsyncWeb3

from gpu_provider.api.v1alpha1.providernode import PendingTx, WalletSource
from gpu_provider.chain.advertiser import Advertiser
from gpu_provider.chain.bidbatch import BatchedIntentStore
from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.errors import WalletError
from gpu_provider.chain.rpc import connect
from gpu_provider.chain.statusstore import StatusIntentStore
from gpu_provider.chain.wallet import Wallet
from gpu_provider.config import ChainSettings
from gpu_provider.controllers.chaindaemon_journal import (
    BID_JOURNAL_LIMIT,
    MeteredTxManager,
    RoutedIntentStore,
)
from gpu_provider.kube.api import ApiClient
from gpu_provider.kube.bidjournal import read_bid_journal, write_bid_journal
from gpu_provider.kube.providernodes import patch_status, read_provider_node
from gpu_provider.kube.secrets import SecretKeyMissing, SecretMissing, read_secret_key

__all__ = ["ChainSession", "NotLeader", "WalletProblem", "load_wallet"]

log = logging.getLogger(__name__)


class NotLeader(RuntimeError):
    """This process lost the Lease: it journals (and so sends) nothing more."""


@dataclass(frozen=True)
class WalletProblem(Exception):
    """The wallet Secret is missing or does not hold a usable key; nothing is sent."""

    reason: str
    message: str


async def load_wallet(api: ApiClient, namespace: str, source: WalletSource) -> Wallet:
    """The signing key from its Secret; `WalletProblem` names the Secret and key at fault."""
    where = f"Secret {namespace}/{source.secret_name}"
    try:
        if source.private_key_key is not None:
            key = await read_secret_key(api, namespace, source.secret_name, source.private_key_key)
            return Wallet.from_private_key(key)
        assert source.keystore_key is not None
        assert source.password_key is not None
        keystore = await read_secret_key(api, namespace, source.secret_name, source.keystore_key)
        password = await read_secret_key(api, namespace, source.secret_name, source.password_key)
        return await Wallet.load_keystore(keystore, password)
    except SecretMissing:
        raise WalletProblem(
            "WalletSecretMissing",
            f"{where} does not exist: create it with the key named in spec.wallet",
        ) from None
    except SecretKeyMissing as error:
        raise WalletProblem(
            "WalletKeyMissing", f"{where} has no key {error.key!r} (spec.wallet names it)"
        ) from None
    except WalletError as error:
        key_name = source.private_key_key or source.keystore_key
        raise WalletProblem("WalletKeyInvalid", f"{where} key {key_name!r}: {error}") from None


class ChainSession:
    """RPC connection, wallet, journal, the wallet's one transaction manager, advertiser.

    The journal is status-backed, except bids, which go to a per-ProviderNode ConfigMap
    (`chaindaemon_journal` says why); the advertiser, the chain daemon, lease closes and
    withdrawals all send through `tx`, so one nonce sequence covers every transaction."""

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        contracts: Contracts,
        store: RoutedIntentStore,
        tx: MeteredTxManager,
    ) -> None:
        self.w3 = w3
        self.contracts = contracts
        self.store = store
        self.tx = tx
        self.advertiser = Advertiser(contracts, tx, store)

    @property
    def address(self) -> str:
        return self.tx.address

    @classmethod
    async def open(
        cls,
        api: ApiClient,
        name: str,
        wallet: Wallet,
        settings: ChainSettings,
        is_leader: Callable[[], bool],
        namespace: str,
    ) -> ChainSession:
        """Connect, load the journal from the stored ProviderNode, and recover it."""

        async def persist(records: list[PendingTx]) -> None:
            if not is_leader():
                raise NotLeader(f"not the operator Lease holder: not journaling for {name}")
            await patch_status(api, name, {"pendingTxs": [r.to_wire() for r in records]})

        async def persist_bids(records: list[PendingTx]) -> None:
            if not is_leader():
                raise NotLeader(f"not the operator Lease holder: not journaling bids for {name}")
            await write_bid_journal(api, namespace, name, [r.to_wire() for r in records])

        stored = await read_provider_node(api, name)
        pending = [
            PendingTx.model_validate(r) for r in (stored.get("status") or {}).get("pendingTxs", [])
        ]
        bids = [PendingTx.model_validate(r) for r in await read_bid_journal(api, namespace, name)]
        w3 = await connect(settings)
        try:
            contracts = Contracts(w3, settings.contracts)
            store = RoutedIntentStore(
                StatusIntentStore(persist, pending),
                BatchedIntentStore(persist_bids, bids, limit=BID_JOURNAL_LIMIT),
            )
            tx = MeteredTxManager.from_settings(
                w3, settings, wallet, store, error_abis=contracts.error_abis()
            )
            session = cls(w3, contracts, store, tx)
            opened = await store.open_intents()
            if opened:
                log.info("%s: resuming %d journaled transaction(s)", name, len(opened))
            await tx.recover()
        except BaseException:
            await w3.provider.disconnect()
            raise
        return session

    async def provider_id(self) -> int:
        """The registry's id of this wallet (0: not registered)."""
        registry = self.contracts.provider_registry
        return int(await registry.functions.addressToProviderId(self.address).call())

    async def close(self) -> None:
        await self.tx.aclose()
        await self.w3.provider.disconnect()
