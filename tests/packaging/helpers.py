"""Shared by the packaging tests: helm from hack/build-k8s.sh, the chart's scripts, renders."""

from __future__ import annotations

import importlib
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "gpu-provider"


@cache
def tool(name: str) -> Path:
    out = subprocess.run(
        [str(REPO / "hack/build-k8s.sh"), "--print"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1]) / name


def require(name: str) -> Path:
    path = tool(name)
    if not path.exists():
        pytest.skip(f"{name} is not built yet (make build-k8s)")
    return path


def charts_module(name: str) -> ModuleType:
    """charts/<name>.py (the chart's generator scripts are not a package)."""
    if str(REPO / "charts") not in sys.path:
        sys.path.insert(0, str(REPO / "charts"))
    return importlib.import_module(name)


def template(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(require("helm")), "template", "gp", str(CHART), "--namespace", "gp-system", *args],
        capture_output=True,
        text=True,
        check=check,
    )


def objects(*args: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(template(*args).stdout) if d]


def kinds(docs: list[dict[str, Any]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for doc in docs:
        found.setdefault(doc["kind"], []).append(doc["metadata"]["name"])
    return found
