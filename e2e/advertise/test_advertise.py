"""The provider advertises itself on anvil: registered with attributes equal to the offer,
following the offer down and back up, in and out of maintenance, approved or rejected by the
devnet verifier, and never sending a transaction twice (the wallet's nonce is counted).

Everything is read back from the contracts (`read_provider`), as a tenant's SDK would.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from e2e.advertise.conftest import CPU_ID, H100, RTX4090, Provider
from gpu_provider.api.v1alpha1.providernode import PendingTx, TxStatus
from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.registry import RegistryUnreadable, read_provider
from gpu_provider.devnet.state import DevnetState
from gpu_provider.devnet.verifier import Verdict, Verification, Verifier
from gpu_provider.market.advertise import ActionKind, ActualProvider, ProviderStatus

pytestmark = pytest.mark.e2e

DEADLINE = 30.0


async def decided(verifier: Verifier, count: int = 1) -> list[Verification]:
    """Poll the verifier until it has decided `count` submissions."""
    done: list[Verification] = []
    deadline = time.monotonic() + DEADLINE
    while len(done) < count:
        assert time.monotonic() < deadline, f"the verifier decided {len(done)} of {count}"
        done.extend(await verifier.poll_once())
        await asyncio.sleep(0.05)
    return done


async def on_chain(provider: Provider) -> ActualProvider:
    return await read_provider(provider.devnet.marketplace, provider.address)


async def test_an_absent_provider_is_registered_with_attributes_equal_to_the_offer(
    provider: Provider, verifier: Callable[..., Verifier]
) -> None:
    nonce = provider.nonce()
    outcome = await provider.advertiser.reconcile(provider.desired())

    assert [s.action.kind for s in outcome.sent] == [
        ActionKind.REGISTER,
        ActionKind.ATTRIBUTES,
        ActionKind.ATTRIBUTES,
        ActionKind.STATUS,
    ]
    assert outcome.refused == ()
    assert outcome.in_sync
    assert outcome.awaiting_approval == ("GPU", "CPU")
    chain = await on_chain(provider)
    assert chain.registered
    assert chain.status is ProviderStatus.ACTIVE
    assert chain.host_uri == "provider.devnet.example"
    assert chain.tokens == (provider.token,)
    assert chain.pending_units("GPU") == ((RTX4090, 2), (H100, 8))
    assert chain.pending_units("CPU") == ((CPU_ID, 64),)
    assert provider.nonce() == nonce + 4

    approvals = await decided(verifier(), 2)
    assert {(v.category, v.verdict) for v in approvals} == {
        ("GPU", Verdict.APPROVE),
        ("CPU", Verdict.APPROVE),
    }
    chain = await on_chain(provider)
    assert chain.approved_units("GPU") == ((RTX4090, 2), (H100, 8))
    assert chain.pending_units("GPU") == ()

    again = await provider.advertiser.reconcile(provider.desired())
    assert again.sent == ()
    assert again.awaiting_approval == ()
    assert provider.nonce() == nonce + 4, "a second reconcile sent a transaction"


async def test_the_on_chain_attributes_follow_the_offer_down_and_back_up(
    provider: Provider, verifier: Callable[..., Verifier]
) -> None:
    approve = verifier()
    await provider.advertiser.reconcile(provider.desired())
    await decided(approve, 2)

    # A GPU pod took 3 H100s and the 4090 node was cordoned.
    shrunk = await provider.advertiser.reconcile(provider.desired(gpu_offer={H100: 5}))
    assert [s.action.kind for s in shrunk.sent] == [ActionKind.ATTRIBUTES]
    await decided(approve)
    assert (await on_chain(provider)).approved_units("GPU") == ((H100, 5),)

    # Undone: the same offer as at first is advertised again (its old intent is not reused).
    grown = await provider.advertiser.reconcile(provider.desired())
    assert [s.action.kind for s in grown.sent] == [ActionKind.ATTRIBUTES]
    await decided(approve)
    assert (await on_chain(provider)).approved_units("GPU") == ((RTX4090, 2), (H100, 8))

    # No GPU left at all: the category is withdrawn (an empty submission is refused).
    gone = await provider.advertiser.reconcile(provider.desired(gpu_offer={}))
    assert [s.action.kind for s in gone.sent] == [ActionKind.REMOVE_ATTRIBUTES]
    chain = await on_chain(provider)
    assert chain.approved_units("GPU") == ()
    assert chain.approved_units("CPU") == ((CPU_ID, 64),)

    # GPUs are back after an operator restart: offered again, not taken for a rejection.
    await provider.restart()
    back = await provider.advertiser.reconcile(provider.desired())
    assert [s.action.kind for s in back.sent] == [ActionKind.ATTRIBUTES]
    assert back.rejected == ()
    assert (await on_chain(provider)).pending_units("GPU") == ((RTX4090, 2), (H100, 8))


async def test_maintenance_round_trips(provider: Provider) -> None:
    await provider.advertiser.reconcile(provider.desired())
    for maintenance, status in [
        (True, ProviderStatus.MAINTENANCE),
        (False, ProviderStatus.ACTIVE),
        (True, ProviderStatus.MAINTENANCE),
    ]:
        outcome = await provider.advertiser.reconcile(provider.desired(maintenance=maintenance))
        assert [s.action.kind for s in outcome.sent] == [ActionKind.STATUS]
        assert (await on_chain(provider)).status is status


async def test_drift_made_outside_the_operator_is_corrected_field_by_field(
    provider: Provider,
) -> None:
    await provider.advertiser.reconcile(provider.desired())
    market, who = provider.market, provider.market.people.provider
    market.send(market.providers.functions.updateProviderHostUri("stale.example"), who)
    market.send(market.providers.functions.updateProviderSpec('{"Name":"x"}'), who)

    outcome = await provider.advertiser.reconcile(provider.desired(region="us-east"))

    assert [s.action.kind for s in outcome.sent] == [ActionKind.SPEC, ActionKind.HOST_URI]
    chain = await on_chain(provider)
    assert chain.host_uri == "provider.devnet.example"
    assert '"Region":"us-east"' in chain.spec


async def test_the_verifier_waits_for_its_delay(
    provider: Provider, verifier: Callable[..., Verifier]
) -> None:
    slow = verifier(delay=1.0)
    started = time.monotonic()
    await provider.advertiser.reconcile(provider.desired(cpu_offer={}))
    assert await slow.poll_once() == []
    assert slow.waiting == ((provider.address, "GPU"),)
    (approval,) = await decided(slow)
    assert time.monotonic() - started >= 1.0
    assert approval.units == ((RTX4090, 2), (H100, 8))
    assert (await on_chain(provider)).approved_units("GPU") == ((RTX4090, 2), (H100, 8))


async def test_a_rejected_submission_is_reported_and_not_sent_again(
    provider: Provider, verifier: Callable[..., Verifier]
) -> None:
    await provider.advertiser.reconcile(provider.desired(cpu_offer={}))
    (rejection,) = await decided(verifier(reject=True))
    assert rejection.verdict is Verdict.REJECT
    chain = await on_chain(provider)
    assert chain.approved_units("GPU") == ()
    assert chain.pending_units("GPU") == ()

    nonce = provider.nonce()
    outcome = await provider.advertiser.reconcile(provider.desired(cpu_offer={}))
    assert outcome.rejected == ("GPU",)
    assert outcome.sent == ()
    assert outcome.in_sync
    assert provider.nonce() == nonce

    # A new offer is a new claim: it is submitted.
    changed = await provider.advertiser.reconcile(
        provider.desired(cpu_offer={}, gpu_offer={H100: 7})
    )
    assert [s.action.kind for s in changed.sent] == [ActionKind.ATTRIBUTES]


async def test_an_offer_rejected_after_another_was_approved_can_come_back(
    provider: Provider, verifier: Callable[..., Verifier]
) -> None:
    """8 H100 approved; 7 submitted and rejected; back to 8: that is offered again."""
    await provider.advertiser.reconcile(provider.desired(cpu_offer={}, gpu_offer={H100: 8}))
    await decided(verifier())
    await provider.advertiser.reconcile(provider.desired(cpu_offer={}, gpu_offer={H100: 7}))
    await decided(verifier(reject=True))  # sees both submissions, decides on the newest
    assert (await on_chain(provider)).approved_units("GPU") == ()

    back = await provider.advertiser.reconcile(provider.desired(cpu_offer={}, gpu_offer={H100: 8}))
    assert [s.action.kind for s in back.sent] == [ActionKind.ATTRIBUTES]
    assert (await on_chain(provider)).pending_units("GPU") == ((H100, 8),)


async def test_a_refusal_is_returned_decoded_and_the_rest_still_advertised(
    provider: Provider,
) -> None:
    await provider.advertiser.reconcile(provider.desired())
    stranger = provider.market.people.stranger.address  # never registered as a token
    outcome = await provider.advertiser.reconcile(
        provider.desired(tokens=[provider.token, stranger], host_uri="new.example")
    )
    assert [s.action.kind for s in outcome.sent] == [ActionKind.HOST_URI]
    (refusal,) = outcome.refused
    assert refusal.action.kind is ActionKind.ADD_TOKEN
    assert getattr(refusal.error, "error_name", None) == "UnregisteredToken"
    assert not outcome.in_sync


class Crash(Exception):
    """The operator's process dies here."""


async def test_a_crash_between_journal_and_broadcast_sends_each_transaction_once(
    provider: Provider,
) -> None:
    nonce = provider.nonce()
    status = provider.status

    async def die_after_journaling_attributes(records: list[PendingTx]) -> None:
        status.pending_txs = list(records)  # durable first, like the status patch
        if any(
            r.key.startswith("advertise:attrs:GPU") and r.status is TxStatus.SIGNED for r in records
        ):
            raise Crash("killed after the journal write, before the broadcast")

    await provider.restart(persist=die_after_journaling_attributes)
    with pytest.raises(Crash):
        await provider.advertiser.reconcile(provider.desired())
    assert provider.nonce() == nonce + 1, "only the registration was mined before the crash"
    journaled = [r for r in status.pending_txs if r.status is TxStatus.SIGNED]
    assert [r.key.split(":")[:3] for r in journaled] == [["advertise", "attrs", "GPU"]]

    await provider.restart()
    outcome = await provider.advertiser.reconcile(provider.desired())

    # The journaled GPU submission was resumed (same key, same nonce), then the rest sent.
    assert outcome.sent[0].action.key == journaled[0].key
    assert [s.action.kind for s in outcome.sent[1:]] == [ActionKind.ATTRIBUTES, ActionKind.STATUS]
    assert provider.nonce() == nonce + 4, "a transaction was sent twice"
    chain = await on_chain(provider)
    assert chain.pending_units("GPU") == ((RTX4090, 2), (H100, 8))
    assert chain.status is ProviderStatus.ACTIVE

    await provider.restart()
    again = await provider.advertiser.reconcile(provider.desired())
    assert again.sent == ()
    assert provider.nonce() == nonce + 4


async def run_cli(*argv: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gpu_provider",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), DEADLINE)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_the_verifier_command_approves_and_rejects(
    provider: Provider, devnet_state: DevnetState, tmp_path: Path
) -> None:
    state_file = tmp_path / "devnet.json"
    state_file.write_text(devnet_state.to_json())
    start = str(provider.market.block())
    await provider.advertiser.reconcile(provider.desired())

    out = await run_cli(
        "devnet",
        "verifier",
        "--once",
        "--delay",
        "0",
        "--from-block",
        start,
        "--state-file",
        str(state_file),
    )
    assert "decided 2 submission(s)" in out
    assert (await on_chain(provider)).approved_units("CPU") == ((CPU_ID, 64),)

    start = str(provider.market.block())
    await provider.advertiser.reconcile(provider.desired(cpu_offer={CPU_ID: 32}))
    out = await run_cli(
        "devnet",
        "verifier",
        "--once",
        "--reject",
        "--delay",
        "0",
        "--from-block",
        start,
        "--state-file",
        str(state_file),
    )
    assert "decided 1 submission(s)" in out
    chain = await on_chain(provider)
    assert chain.approved_units("CPU") == ()
    assert chain.approved_units("GPU") == ((RTX4090, 2), (H100, 8))


async def test_a_wrong_registry_address_is_a_clear_error(provider: Provider) -> None:
    settings = provider.devnet.settings.contracts
    wrong = settings.model_copy(update={"provider_registry": provider.token})  # an ERC-20
    with pytest.raises(RegistryUnreadable, match=r"check chain\.contracts"):
        await read_provider(Contracts(provider.devnet.w3, wrong), provider.address)
