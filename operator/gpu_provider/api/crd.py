"""Generate the CustomResourceDefinitions from the pydantic models (the single source of truth).

pydantic emits JSON Schema; the apiserver wants a *structural* OpenAPI v3 schema: no `$ref`,
no `anyOf` for optionals, no `title`/`additionalProperties: false`. `structural_schema`
rewrites one into the other and refuses shapes Kubernetes cannot express, so a model change
that would produce an unusable CRD fails at generation time instead of at install time.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel

from gpu_provider.api.v1alpha1 import (
    CATEGORY,
    GPU_LEASE_KIND,
    GPU_LEASE_PLURAL,
    GROUP,
    PROVIDER_NODE_KIND,
    PROVIDER_NODE_PLURAL,
    VERSION,
    GpuLeaseSpec,
    GpuLeaseStatus,
    ProviderNodeSpec,
    ProviderNodeStatus,
)

JsonSchema = dict[str, Any]

# Keys of JSON Schema that a structural schema may keep as they are.
_KEEP: Final = frozenset(
    {
        "type",
        "format",
        "description",
        "default",
        "enum",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "required",
        "x-kubernetes-validations",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string",
    }
)
# Keys that carry no meaning for the apiserver and are dropped.
_DROP: Final = frozenset({"title", "additionalProperties", "propertyNames", "$defs", "uniqueItems"})


class SchemaError(ValueError):
    """The model produced a schema shape that Kubernetes cannot represent."""


def _one_line_paragraphs(text: str) -> str:
    """Docstrings wrap at 100 columns; `kubectl explain` reads better with unwrapped paragraphs."""
    paragraphs = [" ".join(p.split()) for p in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def _resolve(node: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    ref = node.get("$ref")
    if ref is None:
        return node
    name = ref.rsplit("/", 1)[-1]
    merged = dict(defs[name])
    # Keys next to a $ref (description, json_schema_extra) refine the referenced schema.
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def structural_schema(node: JsonSchema, defs: dict[str, JsonSchema], path: str = "") -> JsonSchema:
    """Rewrite one pydantic JSON Schema node into a structural OpenAPI v3 node."""
    node = _resolve(node, defs)
    if "anyOf" in node:
        variants = [v for v in node["anyOf"] if v.get("type") != "null"]
        if len(variants) != 1:
            raise SchemaError(f"{path or '<root>'}: unions are not structural; use one type")
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        if outer.get("default", "") is None:
            del outer["default"]
        merged = {**_resolve(variants[0], defs), **outer}
        return structural_schema(merged, defs, path)

    out: JsonSchema = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out["properties"] = {
                name: structural_schema(child, defs, f"{path}.{name}")
                for name, child in value.items()
            }
        elif key == "items":
            out["items"] = structural_schema(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            continue
        elif key == "description":
            out[key] = _one_line_paragraphs(value)
        elif key in _KEEP:
            out[key] = value
        else:
            raise SchemaError(f"{path or '<root>'}: JSON Schema keyword {key!r} is not supported")
    if node.get("additionalProperties") not in (None, False, True):
        if "properties" in node:
            raise SchemaError(f"{path}: an object is either a struct or a map, not both")
        out["additionalProperties"] = structural_schema(
            node["additionalProperties"], defs, f"{path}{{}}"
        )
    if "type" not in out:
        raise SchemaError(f"{path or '<root>'}: every node needs a type")
    if out.get("default") is None:
        out.pop("default", None)
    return out


def model_schema(model: type[BaseModel]) -> JsonSchema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return structural_schema(raw, raw.get("$defs", {}), "")


def _column(name: str, json_path: str, type_: str = "string", priority: int = 0) -> JsonSchema:
    column: JsonSchema = {"name": name, "type": type_, "jsonPath": json_path}
    if priority:
        column["priority"] = priority
    return column


def _crd(
    *,
    kind: str,
    plural: str,
    short_name: str,
    scope: str,
    description: str,
    spec: type[BaseModel],
    status: type[BaseModel],
    columns: list[JsonSchema],
) -> JsonSchema:
    schema: JsonSchema = {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": model_schema(spec),
            "status": model_schema(status),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "gpu-provider-operator"},
        },
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short_name],
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def provider_node_crd() -> JsonSchema:
    return _crd(
        kind=PROVIDER_NODE_KIND,
        plural=PROVIDER_NODE_PLURAL,
        short_name="pn",
        scope="Cluster",
        description="A GPU provider identity on the marketplace and the cluster capacity it sells.",
        spec=ProviderNodeSpec,
        status=ProviderNodeStatus,
        columns=[
            _column("Status", ".status.onChain.status"),
            _column("Offered GPUs", ".status.inventory.offeredGpus", "integer"),
            _column("Allocated GPUs", ".status.inventory.allocatedGpus", "integer"),
            _column("Provider ID", ".status.providerId", "integer"),
            _column("Region", ".spec.region", priority=1),
            _column("Address", ".status.address", priority=1),
            _column("Age", ".metadata.creationTimestamp", "date"),
        ],
    )


def gpu_lease_crd() -> JsonSchema:
    return _crd(
        kind=GPU_LEASE_KIND,
        plural=GPU_LEASE_PLURAL,
        short_name="gl",
        scope="Namespaced",
        description="An on-chain lease matched to this provider and the workload that serves it.",
        spec=GpuLeaseSpec,
        status=GpuLeaseStatus,
        columns=[
            _column("Lease", ".spec.leaseId"),
            _column("Tenant", ".spec.tenant"),
            _column("Phase", ".status.phase"),
            _column("GPUs", ".spec.resources.totalGpus", "integer"),
            _column("Node", ".status.placement.node"),
            _column("Reason", ".status.closeReason", priority=1),
            _column("Age", ".metadata.creationTimestamp", "date"),
        ],
    )


def all_crds() -> list[JsonSchema]:
    """Every CRD of the project, in install order."""
    return [provider_node_crd(), gpu_lease_crd()]
