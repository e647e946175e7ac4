"""The committed CRDs are exactly what the models generate, and are usable by the apiserver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from gpu_provider.api.crd import SchemaError, all_crds, structural_schema
from gpu_provider.cli import main, render_crd_file

CRD_DIR = Path(__file__).resolve().parents[1] / "crds"


def _by_name() -> dict[str, dict[str, Any]]:
    return {c["metadata"]["name"]: c for c in all_crds()}


def test_crds_dir_matches_generated_models() -> None:
    expected = {f"{name}.yaml": render_crd_file(crd) for name, crd in _by_name().items()}
    actual = {p.name: p.read_text() for p in CRD_DIR.glob("*.yaml")}
    assert set(actual) == set(expected), "run `make crds`"
    for name, text in expected.items():
        assert actual[name] == text, f"crds/{name} is stale: run `make crds`"


def test_cli_prints_the_same_crds() -> None:
    result = CliRunner().invoke(main, ["crds"])
    assert result.exit_code == 0
    assert list(yaml.safe_load_all(result.output)) == all_crds()


@pytest.mark.parametrize(
    ("name", "short", "scope", "columns"),
    [
        (
            "providernodes.gpuprovider.dev",
            "pn",
            "Cluster",
            ["Status", "Offered GPUs", "Allocated GPUs", "Provider ID", "Age"],
        ),
        (
            "gpuleases.gpuprovider.dev",
            "gl",
            "Namespaced",
            ["Lease", "Tenant", "Phase", "GPUs", "Node", "Age"],
        ),
    ],
)
def test_crd_is_kubectl_friendly(name: str, short: str, scope: str, columns: list[str]) -> None:
    crd = _by_name()[name]
    spec = crd["spec"]
    assert spec["scope"] == scope
    assert spec["names"]["shortNames"] == [short]
    assert spec["names"]["categories"] == ["gpuprovider"]
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    shown = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert shown == columns


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for key, child in node.get("properties", {}).items():
        found += _walk(child, f"{path}.{key}")
    if "items" in node:
        found += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += _walk(node["additionalProperties"], f"{path}{{}}")
    return found


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["metadata"]["name"])
def test_schema_is_structural(crd: dict[str, Any]) -> None:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "type" in node, f"{path} has no type"
        assert not {"$ref", "anyOf", "oneOf", "allOf", "title"} & set(node), path
        if node.get("additionalProperties") is not None:
            assert isinstance(node["additionalProperties"], dict), path


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["metadata"]["name"])
def test_cel_rules_have_messages(crd: dict[str, Any]) -> None:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = [r for _, node in _walk(schema) for r in node.get("x-kubernetes-validations", [])]
    assert rules, "cross-field rules must be enforced by the apiserver"
    assert all(r.get("message") for r in rules)


def test_union_types_are_refused() -> None:
    node = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    with pytest.raises(SchemaError, match="unions are not structural"):
        structural_schema(node, {}, ".spec.x")


def test_immutable_lease_identity() -> None:
    crd = _by_name()["gpuleases.gpuprovider.dev"]
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for field in ("leaseId", "orderId", "tenant"):
        rules = spec["properties"][field]["x-kubernetes-validations"]
        assert {"rule": "self == oldSelf", "message": f"{field} is immutable"} in rules
