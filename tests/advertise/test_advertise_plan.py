"""plan_advertise: only the transactions that fix drift, in a safe order, with stable keys."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from gpu_provider.market.advertise import (
    ABSENT,
    ActionKind,
    ActualProvider,
    DesiredProvider,
    ProviderStatus,
    attributes_key,
    build_desired,
    key_action,
    parse_spec,
    plan_advertise,
    remove_attributes_key,
)

WALLET = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
REWARD = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"
USDT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
USDC = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
H100, RTX4090, CPU_ID = 51, 36, 1


def desired(**changes: Any) -> DesiredProvider:
    facts: dict[str, Any] = {
        "wallet": WALLET,
        "reward_wallet": REWARD,
        "name": "gpu-provider-devnet",
        "region": "eu-west",
        "host_uri": "provider.example.com",
        "certificate": CERT,
        "tokens": [USDT],
        "maintenance": False,
        "gpu_offer": {H100: 8, RTX4090: 2},
        "cpu_offer": {CPU_ID: 64},
    }
    facts.update(changes)
    return build_desired(**facts)


def in_sync(want: DesiredProvider, **changes: Any) -> ActualProvider:
    """What the chain holds once `want` is registered, approved and Active."""
    actual = ActualProvider(
        registered=True,
        status=ProviderStatus.MAINTENANCE if want.maintenance else ProviderStatus.ACTIVE,
        tier=4,
        spec=want.spec.to_json(),
        host_uri=want.host_uri,
        certificate=want.certificate,
        tokens=want.tokens,
        reward_wallet=want.reward_wallet,
        approved=dict(want.attributes),
        pending={},
    )
    return replace(actual, **changes)


def kinds(actions: list[Any]) -> list[ActionKind]:
    return [a.kind for a in actions]


def test_absent_provider_is_registered_then_advertised_then_activated() -> None:
    want = desired()
    actions = plan_advertise(want, ABSENT)
    assert kinds(actions) == [
        ActionKind.REGISTER,
        ActionKind.ATTRIBUTES,
        ActionKind.ATTRIBUTES,
        ActionKind.STATUS,
    ]
    register, gpu, cpu, status = actions
    assert register.args == (WALLET, (USDT,), want.spec.to_json(), want.host_uri, CERT, REWARD)
    assert gpu.args == ("GPU", (RTX4090, H100), (2, 8))
    assert cpu.args == ("CPU", (CPU_ID,), (64,))
    assert status.args == (int(ProviderStatus.ACTIVE),)


def test_same_desired_twice_sends_nothing() -> None:
    want = desired()
    assert plan_advertise(want, in_sync(want)) == []
    assert plan_advertise(desired(), in_sync(desired())) == []


@pytest.mark.parametrize(
    ("drift", "kind", "args"),
    [
        (
            {"spec": '{"Name":"gpu-provider-devnet","Region":"us-east","Attributes":[]}'},
            ActionKind.SPEC,
            None,
        ),
        ({"spec": "not json"}, ActionKind.SPEC, None),
        ({"host_uri": "old.example.com"}, ActionKind.HOST_URI, ("provider.example.com",)),
        ({"certificate": ""}, ActionKind.CERTIFICATE, (CERT,)),
        ({"reward_wallet": WALLET}, ActionKind.REWARD_WALLET, (REWARD,)),
        ({"tokens": ()}, ActionKind.ADD_TOKEN, (USDT,)),
        ({"tokens": (USDT, USDC)}, ActionKind.REMOVE_TOKEN, (USDC,)),
        ({"status": ProviderStatus.REGISTERED}, ActionKind.STATUS, (2,)),
        ({"status": ProviderStatus.MAINTENANCE}, ActionKind.STATUS, (2,)),
    ],
)
def test_drift_in_one_field_sends_only_that_update(
    drift: dict[str, Any], kind: ActionKind, args: tuple[Any, ...] | None
) -> None:
    want = desired()
    actions = plan_advertise(want, in_sync(want, **drift))
    assert kinds(actions) == [kind]
    if args is not None:
        assert actions[0].args == args
    if kind is ActionKind.SPEC:
        assert parse_spec(actions[0].args[0]) == want.spec


def test_spec_is_compared_by_meaning_not_bytes() -> None:
    want = desired(spec_attributes={"tier": "gold", "org": "acme"})
    reordered = (
        '{ "Attributes": [{"Value": "acme", "Key": "org"}, {"Key": "tier", "Value": "gold"}],'
        ' "Region": "eu-west", "Name": "gpu-provider-devnet" }'
    )
    assert plan_advertise(want, in_sync(want, spec=reordered)) == []


def test_host_certificate_and_addresses_tolerate_case_and_line_endings() -> None:
    want = desired()
    actual = in_sync(
        want,
        host_uri="Provider.Example.COM",
        certificate=CERT.replace("\n", "\r\n") + "\n",
        tokens=(USDT.lower(),),
        reward_wallet=REWARD.lower(),
    )
    assert plan_advertise(want, actual) == []


def test_token_switch_adds_before_it_removes() -> None:
    want = desired(tokens=[USDC])
    actions = plan_advertise(want, in_sync(desired(), tokens=(USDT,)))
    assert [(a.kind, a.args) for a in actions] == [
        (ActionKind.ADD_TOKEN, (USDC,)),
        (ActionKind.REMOVE_TOKEN, (USDT,)),
    ]


def test_a_shrunk_offer_is_submitted_lower_and_a_gone_model_left_out() -> None:
    before = desired()
    after = desired(gpu_offer={H100: 5, RTX4090: 0})
    actions = plan_advertise(after, in_sync(before))
    assert kinds(actions) == [ActionKind.ATTRIBUTES]
    assert actions[0].args == ("GPU", (H100,), (5,))


def test_no_gpu_left_withdraws_the_category() -> None:
    actions = plan_advertise(desired(gpu_offer={}), in_sync(desired()))
    assert [(a.kind, a.args) for a in actions] == [(ActionKind.REMOVE_ATTRIBUTES, ("GPU",))]
    nothing = in_sync(desired(gpu_offer={}), approved={"CPU": ((CPU_ID, 64),)})
    assert plan_advertise(desired(gpu_offer={}), nothing) == []


def test_an_offer_awaiting_approval_is_not_submitted_again() -> None:
    want = desired(gpu_offer={H100: 4})
    waiting = in_sync(
        want, approved={"GPU": ((H100, 8),), "CPU": ((CPU_ID, 64),)}, pending={"GPU": ((H100, 4),)}
    )
    assert plan_advertise(want, waiting) == []


def test_a_pending_submission_that_differs_is_replaced() -> None:
    want = desired(gpu_offer={H100: 8})
    stale = in_sync(want, pending={"GPU": ((H100, 4),)})
    actions = plan_advertise(want, stale)
    assert [(a.kind, a.args) for a in actions] == [(ActionKind.ATTRIBUTES, ("GPU", (H100,), (8,)))]


def test_maintenance_goes_first_and_active_goes_last() -> None:
    on = plan_advertise(desired(maintenance=True, host_uri="new.example.com"), in_sync(desired()))
    assert kinds(on) == [ActionKind.STATUS, ActionKind.HOST_URI]
    assert on[0].args == (int(ProviderStatus.MAINTENANCE),)
    off = plan_advertise(desired(gpu_offer={H100: 1}), in_sync(desired(maintenance=True)))
    assert kinds(off) == [ActionKind.ATTRIBUTES, ActionKind.STATUS]
    assert off[-1].args == (int(ProviderStatus.ACTIVE),)


@pytest.mark.parametrize("held", [ProviderStatus.SUSPENDED, ProviderStatus.DEACTIVATED])
def test_a_status_only_an_admin_can_lift_is_left_alone(held: ProviderStatus) -> None:
    want = desired()
    assert plan_advertise(want, in_sync(want, status=held)) == []


def test_keys_are_stable_and_differ_by_content() -> None:
    first = plan_advertise(desired(), ABSENT)
    again = plan_advertise(desired(), ABSENT)
    assert [a.key for a in first] == [a.key for a in again]
    assert len({a.key for a in first}) == len(first)
    gpu = first[1]
    assert gpu.key == attributes_key("GPU", ((RTX4090, 2), (H100, 8)))
    assert gpu.key.startswith("advertise:attrs:GPU:")
    smaller = plan_advertise(desired(gpu_offer={H100: 7}), ABSENT)[1]
    assert smaller.key != gpu.key
    # The key depends on what is sent, not on the order the offer was given in.
    shuffled = plan_advertise(desired(gpu_offer={RTX4090: 2, H100: 8}), ABSENT)[1]
    assert shuffled.key == gpu.key


def test_units_of_zero_and_duplicate_tokens_are_dropped() -> None:
    want = desired(gpu_offer={H100: 0}, tokens=[USDT, USDT.lower()])
    assert want.attributes["GPU"] == ()
    assert want.tokens == (USDT,)
    assert (
        build_desired(
            wallet=WALLET,
            name="n",
            region="r",
            host_uri="h",
            certificate="",
            tokens=[],
            maintenance=False,
            gpu_offer={},
            cpu_offer={},
        ).reward_wallet
        == WALLET
    )


def test_every_planned_key_names_its_kind_and_category() -> None:
    actions = plan_advertise(desired(), ABSENT) + plan_advertise(
        desired(gpu_offer={}), in_sync(desired())
    )
    for action in actions:
        assert key_action(action.key) == (action.kind, action.category)
    assert key_action(remove_attributes_key("CPU")) == (ActionKind.REMOVE_ATTRIBUTES, "CPU")
    with pytest.raises(ValueError, match="not an advertising key"):
        key_action("match:12:0")
