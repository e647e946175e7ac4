"""What the provider should look like on chain, what it looks like, and what to send (pure).

`build_desired` turns plain facts (the ProviderNode's wallet, region, hostUri, certificate,
accepted token addresses, maintenance flag, and the inventory's offer) into a
`DesiredProvider`; `gpu_provider.chain.registry` reads an `ActualProvider` from the
contracts; `plan_advertise` returns only the actions that close the gap, in a safe order:

1. `addProvider` when the wallet is not registered (it carries spec, hostUri, certificate,
   tokens and reward wallet, so none of those is updated after it);
2. Maintenance first when it is wanted, so no order is won while the rest changes;
3. reward wallet, spec (name, region), hostUri, certificate, each only when it differs;
4. accepted tokens: additions before removals, so a token switch never accepts none;
5. attributes per category ("GPU", then "CPU"): `submitAttributes` with exactly the offer
   (a shrunk offer is submitted lower, a model that is gone is simply not in the new set:
   approval replaces the whole category), or `removeAttributes` when the category's offer
   is empty (the contract refuses an empty submission);
6. Active last when maintenance is off, once the offer on chain is right.

Every action has an idempotency key derived from its content only (`advertise:attrs:GPU:` +
a hash of the ids and units), so a restart that plans the same change finds the intent the
transaction manager journaled for it instead of sending a second transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Final

__all__ = [
    "ABSENT",
    "CATEGORIES",
    "ActionKind",
    "ActualProvider",
    "AdvertiseAction",
    "DesiredProvider",
    "ProviderSpec",
    "ProviderStatus",
    "attributes_key",
    "build_desired",
    "key_action",
    "parse_spec",
    "plan_advertise",
    "remove_attributes_key",
]

GPU: Final = "GPU"
CPU: Final = "CPU"
CATEGORIES: Final = (GPU, CPU)
"""The attribute categories the registry knows, in the order they are advertised."""

Units = tuple[tuple[int, int], ...]
"""(resource id, units) pairs, sorted by id, units > 0."""


class ProviderStatus(IntEnum):
    """`ProviderRegistry.ProviderStatus`."""

    UNREGISTERED = 0
    REGISTERED = 1
    ACTIVE = 2
    MAINTENANCE = 3
    SUSPENDED = 4
    DEACTIVATED = 5


ADMIN_HELD: Final = frozenset({ProviderStatus.SUSPENDED, ProviderStatus.DEACTIVATED})
"""Statuses only a registry admin can lift: the provider sends no status change then."""


class ActionKind(StrEnum):
    REGISTER = "register"
    STATUS = "status"
    REWARD_WALLET = "reward-wallet"
    SPEC = "spec"
    HOST_URI = "host-uri"
    CERTIFICATE = "certificate"
    ADD_TOKEN = "add-token"  # noqa: S105 - a payment token, not a secret
    REMOVE_TOKEN = "remove-token"  # noqa: S105
    ATTRIBUTES = "attrs"
    REMOVE_ATTRIBUTES = "remove-attrs"


@dataclass(frozen=True)
class ProviderSpec:
    """The registry's `spec` JSON: `{Name, Region, Attributes:[{Key, Value}]}`."""

    name: str
    region: str
    attributes: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> str:
        """Canonical JSON: keys in Spheron's order, attributes sorted, no spaces."""
        return json.dumps(
            {
                "Name": self.name,
                "Region": self.region,
                "Attributes": [{"Key": k, "Value": v} for k, v in sorted(self.attributes)],
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )


def parse_spec(text: str) -> ProviderSpec | None:
    """The spec a registry entry holds, or None when it is not that JSON shape (drift)."""
    try:
        data = json.loads(text)
        attributes = tuple(
            sorted((str(a["Key"]), str(a["Value"])) for a in data.get("Attributes") or [])
        )
        return ProviderSpec(str(data["Name"]), str(data["Region"]), attributes)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _units(offer: Mapping[int, int]) -> Units:
    """The offer as the registry holds it: positive units only, sorted by id."""
    return tuple(sorted((int(i), int(u)) for i, u in offer.items() if int(u) > 0))


def _host(value: str) -> str:
    return value.strip().lower()


def _certificate(value: str) -> str:
    return value.replace("\r\n", "\n").strip()


def _address(value: str) -> str:
    return value.lower()


@dataclass(frozen=True)
class DesiredProvider:
    """What the chain should say about this provider; build it with `build_desired`."""

    wallet: str
    reward_wallet: str
    spec: ProviderSpec
    host_uri: str
    certificate: str
    tokens: tuple[str, ...]
    """Accepted token addresses (symbols resolved by the caller), in the order given."""
    maintenance: bool
    attributes: Mapping[str, Units]
    """Category -> the offer: (resource id, units) pairs."""


def build_desired(
    *,
    wallet: str,
    name: str,
    region: str,
    host_uri: str,
    certificate: str,
    tokens: Iterable[str],
    maintenance: bool,
    gpu_offer: Mapping[int, int],
    cpu_offer: Mapping[int, int],
    reward_wallet: str | None = None,
    spec_attributes: Mapping[str, str] | None = None,
) -> DesiredProvider:
    """The desired on-chain provider. Units of 0 are left out (nothing is offered there);
    the reward wallet defaults to the wallet (the registry refuses a zero address)."""
    unique: dict[str, str] = {}
    for token in tokens:
        unique.setdefault(_address(token), token)
    return DesiredProvider(
        wallet=wallet,
        reward_wallet=reward_wallet or wallet,
        spec=ProviderSpec(name, region, tuple(sorted((spec_attributes or {}).items()))),
        host_uri=host_uri.strip(),
        certificate=_certificate(certificate),
        tokens=tuple(unique.values()),
        maintenance=maintenance,
        attributes={GPU: _units(gpu_offer), CPU: _units(cpu_offer)},
    )


@dataclass(frozen=True)
class ActualProvider:
    """What the registries report for one wallet (`registered=False`: nothing else is)."""

    registered: bool
    status: ProviderStatus = ProviderStatus.UNREGISTERED
    tier: int | None = None
    """Trust tier 1..7 (the registry's enum index + 1)."""
    spec: str = ""
    host_uri: str = ""
    certificate: str = ""
    tokens: tuple[str, ...] = ()
    reward_wallet: str = ""
    approved: Mapping[str, Units] = field(default_factory=dict)
    pending: Mapping[str, Units] = field(default_factory=dict)

    def approved_units(self, category: str) -> Units:
        return _units(dict(self.approved.get(category, ())))

    def pending_units(self, category: str) -> Units:
        return _units(dict(self.pending.get(category, ())))


ABSENT: Final = ActualProvider(registered=False)


@dataclass(frozen=True)
class AdvertiseAction:
    """One transaction that fixes one difference. `args` are the contract call's arguments
    as plain values; `key` its idempotency key; `summary` says what changes, for logs and
    Events."""

    kind: ActionKind
    args: tuple[Any, ...]
    key: str
    summary: str
    category: str | None = None


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def attributes_key(category: str, units: Units) -> str:
    """The key of submitting exactly `units` in `category`."""
    return f"advertise:{ActionKind.ATTRIBUTES.value}:{category}:{_digest(list(units))}"


def remove_attributes_key(category: str) -> str:
    """The key of withdrawing `category` (one per category: a withdrawal has no content)."""
    return f"advertise:{ActionKind.REMOVE_ATTRIBUTES.value}:{category}"


def key_action(key: str) -> tuple[ActionKind, str | None]:
    """The kind of an `advertise:` key, and its category for attribute keys; ValueError
    for a key this module did not make."""
    parts = key.split(":")
    if len(parts) < 3 or parts[0] != "advertise":
        raise ValueError(f"{key!r} is not an advertising key")
    kind = ActionKind(parts[1])
    attribute = kind in (ActionKind.ATTRIBUTES, ActionKind.REMOVE_ATTRIBUTES)
    return kind, parts[2] if attribute else None


def _action(kind: ActionKind, args: tuple[Any, ...], summary: str) -> AdvertiseAction:
    return AdvertiseAction(
        kind, args, f"advertise:{kind.value}:{_digest(kind.value, *args)}", summary
    )


def _describe(units: Units) -> str:
    return ", ".join(f"{units_} x id {rid}" for rid, units_ in units) or "nothing"


def attribute_actions(
    desired: DesiredProvider, actual: ActualProvider, category: str
) -> list[AdvertiseAction]:
    """Submit the category's offer unless it is pending (awaiting approval) or approved."""
    want = desired.attributes.get(category, ())
    approved, pending = actual.approved_units(category), actual.pending_units(category)
    if not want:
        if not approved and not pending:
            return []
        return [
            AdvertiseAction(
                ActionKind.REMOVE_ATTRIBUTES,
                (category,),
                remove_attributes_key(category),
                f"withdraw the {category} attributes: nothing is offered",
                category,
            )
        ]
    if pending == want or (not pending and approved == want):
        return []
    ids = tuple(rid for rid, _ in want)
    units = tuple(u for _, u in want)
    return [
        AdvertiseAction(
            ActionKind.ATTRIBUTES,
            (category, ids, units),
            attributes_key(category, want),
            f"submit {category} attributes {_describe(want)} "
            f"(was {_describe(pending or approved)})",
            category,
        )
    ]


def _status_action(status: ProviderStatus) -> AdvertiseAction:
    return _action(ActionKind.STATUS, (int(status),), f"set status {status.name.title()}")


def plan_advertise(desired: DesiredProvider, actual: ActualProvider) -> list[AdvertiseAction]:
    """The transactions that make `actual` what `desired` says, in a safe order (see the
    module docstring); empty when the chain already agrees."""
    actions: list[AdvertiseAction] = []
    registered = actual.registered
    if not registered:
        actions.append(
            _action(
                ActionKind.REGISTER,
                (
                    desired.wallet,
                    desired.tokens,
                    desired.spec.to_json(),
                    desired.host_uri,
                    desired.certificate,
                    desired.reward_wallet,
                ),
                f"register provider {desired.wallet} at {desired.host_uri}",
            )
        )
        actual = ActualProvider(registered=True, status=ProviderStatus.REGISTERED)
    target = ProviderStatus.MAINTENANCE if desired.maintenance else ProviderStatus.ACTIVE
    status_change = actual.status != target and actual.status not in ADMIN_HELD
    if status_change and desired.maintenance:
        actions.append(_status_action(target))
    if registered:
        actions.extend(_field_actions(desired, actual))
    for category in CATEGORIES:
        actions.extend(attribute_actions(desired, actual, category))
    if status_change and not desired.maintenance:
        actions.append(_status_action(target))
    return actions


def _field_actions(desired: DesiredProvider, actual: ActualProvider) -> list[AdvertiseAction]:
    actions: list[AdvertiseAction] = []
    if _address(actual.reward_wallet) != _address(desired.reward_wallet):
        actions.append(
            _action(
                ActionKind.REWARD_WALLET,
                (desired.reward_wallet,),
                f"set the reward wallet to {desired.reward_wallet}",
            )
        )
    if parse_spec(actual.spec) != desired.spec:
        actions.append(
            _action(
                ActionKind.SPEC,
                (desired.spec.to_json(),),
                f"set spec name {desired.spec.name!r}, region {desired.spec.region!r}",
            )
        )
    if _host(actual.host_uri) != _host(desired.host_uri):
        actions.append(
            _action(ActionKind.HOST_URI, (desired.host_uri,), f"set hostUri {desired.host_uri}")
        )
    if _certificate(actual.certificate) != desired.certificate:
        actions.append(
            _action(ActionKind.CERTIFICATE, (desired.certificate,), "replace the certificate")
        )
    have = {_address(t) for t in actual.tokens}
    want = {_address(t) for t in desired.tokens}
    for token in desired.tokens:
        if _address(token) not in have:
            actions.append(_action(ActionKind.ADD_TOKEN, (token,), f"accept token {token}"))
    for token in actual.tokens:
        if _address(token) not in want:
            actions.append(
                _action(ActionKind.REMOVE_TOKEN, (token,), f"stop accepting token {token}")
            )
    return actions
