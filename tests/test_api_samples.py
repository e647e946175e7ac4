"""The example CRs are valid; every invalid sample is rejected naming the field."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from gpu_provider.api.crd import gpu_lease_crd, provider_node_crd
from gpu_provider.api.errors import describe
from gpu_provider.api.v1alpha1 import GpuLeaseSpec, ProviderNodeSpec
from tests.samples import InvalidSample, invalid_samples, load_example

SPEC_MODELS: dict[str, type[ProviderNodeSpec] | type[GpuLeaseSpec]] = {
    "ProviderNode": ProviderNodeSpec,
    "GpuLease": GpuLeaseSpec,
}


def _openapi(kind: str) -> dict[str, Any]:
    crd = provider_node_crd() if kind == "ProviderNode" else gpu_lease_crd()
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _closed(schema: Any) -> Any:
    """The CRD schema with unknown fields forbidden, as the apiserver's strict validation does."""
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items() if k != "x-kubernetes-validations"}
        if schema.get("type") == "object" and "properties" in schema:
            out["additionalProperties"] = False
        if "properties" in schema:
            out["properties"] = {k: _closed(v) for k, v in schema["properties"].items()}
        return out
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


@pytest.mark.parametrize("name", ["providernode.yaml", "gpulease.yaml"])
def test_example_is_valid_for_model_and_crd_schema(name: str) -> None:
    obj = load_example(name)
    model = SPEC_MODELS[obj["kind"]].model_validate(obj["spec"])
    assert model.to_wire()  # round-trips to the wire form
    jsonschema.validate(obj, _closed(_openapi(obj["kind"])))


@pytest.mark.parametrize("sample", invalid_samples(), ids=lambda s: s.id)
def test_invalid_sample_rejected_by_model_naming_field(sample: InvalidSample) -> None:
    obj = sample.build()
    with pytest.raises(ValidationError) as caught:
        SPEC_MODELS[sample.kind].model_validate(obj["spec"])
    text = "\n".join(describe(caught.value, "spec"))
    assert sample.field in text, text
    assert sample.model in text, text


SCHEMA_ONLY = {
    # These rules are CEL (x-kubernetes-validations) or list-map keys, which plain JSON Schema
    # does not evaluate; the e2e suite checks them against the real apiserver.
    "pn-two-key-sources",
    "pn-price-token-not-accepted",
    "pn-gpu-priced-twice",
    "pn-bidding-range-inverted",
    "gl-manifest-service-not-ordered",
}


@pytest.mark.parametrize(
    "sample", [s for s in invalid_samples() if s.id not in SCHEMA_ONLY], ids=lambda s: s.id
)
def test_invalid_sample_rejected_by_crd_openapi_schema(sample: InvalidSample) -> None:
    obj = sample.build()
    validator = jsonschema.Draft7Validator(_closed(_openapi(sample.kind)))
    errors = list(validator.iter_errors(obj))
    assert errors, f"{sample.id} passed the CRD schema"
    paths = [".".join(str(p) for p in e.absolute_path) for e in errors]
    wanted = sample.field.replace("[", ".").replace("]", "")
    assert any(p.startswith(wanted) or wanted.startswith(p) for p in paths if p), paths
