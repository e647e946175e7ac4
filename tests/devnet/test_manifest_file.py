"""The tenant's manifest YAML: read as the JSON the provider gets, obvious mistakes caught."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.manifest import (
    manifest_mismatch,
    manifest_service_names,
    parse_manifest_yaml,
)
from gpu_provider.devnet.orderfile import parse_order_yaml

EXAMPLES = Path(__file__).parents[2] / "manifests/examples"


def test_the_example_manifest_deploys_the_example_order() -> None:
    manifest = parse_manifest_yaml((EXAMPLES / "manifest.yaml").read_text())
    order = parse_order_yaml((EXAMPLES / "order.yaml").read_text())
    assert [group["name"] for group in manifest] == [order.spec.name]
    assert manifest_service_names(manifest) == ["vllm", "ui"]
    assert manifest_mismatch(manifest, order.spec) is None
    vllm = manifest[0]["services"][0]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    assert vllm["resources"]["gpu"]["units"]["val"] == "1"
    assert vllm["expose"][0]["port"] == 8000


def test_a_manifest_for_another_order_is_caught_before_it_is_sent() -> None:
    order = parse_order_yaml((EXAMPLES / "order.yaml").read_text())
    manifest = parse_manifest_yaml((EXAMPLES / "manifest.yaml").read_text())
    manifest[0]["services"][1]["name"] = "chat"
    assert manifest_mismatch(manifest, order.spec) == (
        "the manifest's services ['chat'] are not in the order (it has ui, vllm)"
    )
    assert manifest_mismatch([{"name": "llm"}], order.spec) == (
        "the manifest is not valid: [0].services: Field required"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: llm\n", "non-empty list of groups"),
        ("[]\n", "non-empty list of groups"),
        ("- services: []\n", "[0].name: Field required"),
        ("- name: llm\n", "[0].services: Field required"),
        ("- name: llm\n  services: [{image: x}]\n", "[0].services[0].name: Field required"),
        ("- name: llm\n  services: [{name: web}]\n", "[0].services[0].image: Field required"),
        ("- name: llm\n  services: [{name: web, image: ' '}]\n", "[0].services[0].image"),
        ("- [unclosed\n", "not valid YAML"),
    ],
)
def test_unusable_manifests_are_refused(text: str, message: str) -> None:
    with pytest.raises(DevnetError, match=re.escape(message)):
        parse_manifest_yaml(text, "m.yaml")
