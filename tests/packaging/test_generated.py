"""What charts/generate.py derives is committed as generated: the CRD copies, the values
schema (from the settings model and the ProviderNode CRD), the dashboard, manifests/base and
manifests/install.yaml (the chart rendered). Run `.venv/bin/python charts/generate.py`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_provider.config import load_settings
from tests.packaging.helpers import REPO, charts_module, require

OVERLAYS = ("devnet", "base-sepolia", "base")
FIX = "run `.venv/bin/python charts/generate.py` and commit the result"


def test_chart_crds_schema_and_dashboard_are_in_step() -> None:
    for path, text in charts_module("generate").generated_files().items():
        assert path.read_text(encoding="utf-8") == text, f"{path.relative_to(REPO)}: {FIX}"
    copies = {p.name for p in (REPO / "charts/gpu-provider/files/crds").glob("*.yaml")}
    assert copies == {p.name for p in (REPO / "crds").glob("*.yaml")}, FIX


def test_manifests_are_the_chart_rendered() -> None:
    require("helm")
    for path, text in charts_module("render_manifests").render_all().items():
        assert path.read_text(encoding="utf-8") == text, f"{path.relative_to(REPO)}: {FIX}"


def kustomize(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(require("kubectl")), "kustomize", str(REPO / "manifests/overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_is_the_base_with_its_network_settings(overlay: str, tmp_path: Path) -> None:
    base = {_key(d): d for d in kustomize("../base")}
    docs = {_key(d): d for d in kustomize(overlay)}
    assert docs.keys() == base.keys()
    changed = {k for k in docs if docs[k] != base[k]}
    allowed = {("ConfigMap", "gpu-provider-settings"), ("Service", "gpu-provider-gateway")}
    assert changed <= allowed, changed
    path = tmp_path / "config.yaml"
    path.write_text(docs["ConfigMap", "gpu-provider-settings"]["data"]["config.yaml"])
    settings = load_settings(path)  # a typo or a bad address fails here, not in the cluster
    assert settings.chain.network == overlay
