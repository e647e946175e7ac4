"""Where the read-only Spheron reference data lives, and a skip marker for when it is absent.

The data sits in the workspace's `../shared/spheron` next to the repository; it is never
copied into the project, so a checkout elsewhere (CI, a contributor's machine) skips the
comparisons instead of failing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = (REPO_ROOT / ".." / "shared" / "spheron").resolve()
SKIP_REASON = f"Spheron reference data not found at {REFERENCE_DIR} (only in the dev workspace)"

requires_reference: pytest.MarkDecorator = pytest.mark.skipif(
    not REFERENCE_DIR.is_dir(), reason=SKIP_REASON
)


def load_reference(name: str) -> Any:
    """Parse one reference JSON file; call only under `requires_reference`."""
    return json.loads((REFERENCE_DIR / name).read_text(encoding="utf-8"))


def reference_params(name: str) -> list[Any]:
    """Items of a reference JSON list as pytest params, or one skipped param when absent."""
    if not REFERENCE_DIR.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="absent")]
    items = load_reference(name)
    return [pytest.param(item, id=f"{name}[{index}]") for index, item in enumerate(items)]
