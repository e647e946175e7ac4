"""Where the read-only reference data lives: Spheron's files and the pci.ids extract.

The data sits in the workspace's `../shared` next to the repository and is never copied into
the project. CI runs from a clone in that workspace, so these comparisons always run: a
missing directory fails the tests that need it, naming the path, instead of skipping them.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DIR = (REPO_ROOT / ".." / "shared").resolve()
REFERENCE_DIR = SHARED_DIR / "spheron"
PCI_IDS = SHARED_DIR / "pci" / "nvidia.ids"
_DEVICE_LINE = re.compile(r"^\t([0-9a-f]{4})  (.+)$")


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"reference data not found at {path}: these tests compare against it")
    return path


def load_reference(name: str) -> Any:
    """Parse one of Spheron's reference JSON files."""
    return json.loads(_require(REFERENCE_DIR / name).read_text(encoding="utf-8"))


class _Missing:
    """Stands in for a reference item when the data is absent: any use fails the test."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __getitem__(self, key: str) -> Any:
        return load_reference(self.path.name)


def reference_params(name: str) -> list[Any]:
    """Items of a reference JSON list as pytest params (one failing param when absent)."""
    if not REFERENCE_DIR.is_dir():
        return [pytest.param(_Missing(REFERENCE_DIR / name), id="reference-data-missing")]
    items = load_reference(name)
    return [pytest.param(item, id=f"{name}[{index}]") for index, item in enumerate(items)]


@cache
def nvidia_pci_names() -> dict[str, str]:
    """Device id -> name, e.g. `"2330": "GH100 [H100 SXM5 80GB]"`, from the pci.ids extract."""
    devices: dict[str, str] = {}
    for line in _require(PCI_IDS).read_text(encoding="utf-8").splitlines():
        match = _DEVICE_LINE.match(line)
        if match:
            devices[match[1]] = match[2]
    return devices
