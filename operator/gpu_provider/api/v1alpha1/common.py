"""Pieces shared by both kinds: the wire model base, conditions, references, selectors."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from gpu_provider.api.validators import DnsSubdomainName, LabelKey, LabelValue

GROUP: Final = "gpuprovider.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CATEGORY: Final = "gpuprovider"


def list_map(*keys: str) -> JsonDict:
    """Schema extras for a list keyed by fields: the apiserver rejects duplicate keys."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


def cel(rule: str, message: str, **extra: str) -> JsonDict:
    """One CEL rule for `x-kubernetes-validations`: the apiserver rejects objects that break it."""
    return {"rule": rule, "message": message, **extra}


def validations(*rules: JsonDict) -> JsonDict:
    """Schema extras carrying CEL rules (see `cel`)."""
    return {"x-kubernetes-validations": list(rules)}


class WireModel(BaseModel):
    """Base of every CR model: camelCase on the wire, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
        validate_default=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict as it appears in the CR (camelCase, unset optionals left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(WireModel):
    """The `metav1.Condition` shape, so `kubectl wait --for=condition=Ready` works."""

    type: str = Field(
        min_length=1,
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    )
    status: ConditionStatus
    observed_generation: int | None = Field(default=None, ge=0)
    last_transition_time: datetime
    reason: str = Field(
        min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
    )
    message: str = Field(default="", max_length=32768)


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    observed_generation: int | None = None,
    now: datetime | None = None,
) -> list[Condition]:
    """Return `conditions` with `type_` set; the transition time moves only when status does."""
    stamp = now or datetime.now(UTC).replace(microsecond=0)
    result: list[Condition] = []
    found = False
    for existing in conditions:
        if existing.type != type_:
            result.append(existing)
            continue
        found = True
        changed = existing.status != status
        result.append(
            Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                observed_generation=observed_generation,
                last_transition_time=stamp if changed else existing.last_transition_time,
            )
        )
    if not found:
        result.append(
            Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                observed_generation=observed_generation,
                last_transition_time=stamp,
            )
        )
    return result


def find_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def status_patch_changes(current: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    """Whether merging status `patch` into the stored status `current` (both wire dicts)
    changes anything but a condition's `lastTransitionTime`: a write worth sending."""

    def strip(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conditions]

    for key, value in patch.items():
        old = current.get(key)
        if key == "conditions":
            if strip(old or []) != strip(value):
                return True
        elif old != value:
            return True
    return False


class SecretKeySelector(WireModel):
    """One key of a Secret in the operator's namespace."""

    name: DnsSubdomainName
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class SecretReference(WireModel):
    """A whole Secret in the operator's namespace (e.g. a TLS Secret)."""

    name: DnsSubdomainName


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(WireModel):
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.operator in ['In', 'NotIn'] ? size(self.values) > 0 : size(self.values) == 0",
                "values must be non-empty for In/NotIn and empty for Exists/DoesNotExist",
            )
        )
    )

    key: LabelKey
    operator: SelectorOperator
    values: list[LabelValue] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        needs_values = self.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)
        if needs_values != bool(self.values):
            raise ValueError(
                "values must be non-empty for In/NotIn and empty for Exists/DoesNotExist"
            )
        return self


class LabelSelector(WireModel):
    """A `metav1.LabelSelector`: which Nodes the provider offers. Empty selects every Node."""

    match_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=64)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list, max_length=32)

    def matches(self, labels: dict[str, str]) -> bool:
        """Kubernetes label-selector semantics (AND of every term)."""
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            match req.operator:
                case SelectorOperator.IN:
                    ok = present and labels[req.key] in req.values
                case SelectorOperator.NOT_IN:
                    ok = not present or labels[req.key] not in req.values
                case SelectorOperator.EXISTS:
                    ok = present
                case SelectorOperator.DOES_NOT_EXIST:
                    ok = not present
            if not ok:
                return False
        return True
