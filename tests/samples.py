"""Load the example CRs and the table of invalid samples (shared by unit and e2e tests)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "manifests" / "examples"


def load_example(name: str) -> dict[str, Any]:
    data = yaml.safe_load((EXAMPLES / name).read_text())
    assert isinstance(data, dict)
    return data


def _walk(obj: Any, path: str) -> tuple[Any, str | int]:
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in path.split(".")]
    for part in parts[:-1]:
        obj = obj[part]
    return obj, parts[-1]


@dataclass(frozen=True)
class InvalidSample:
    id: str
    example: str
    field: str
    model: str
    apiserver: str
    set: dict[str, Any] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)

    def build(self) -> dict[str, Any]:
        obj = copy.deepcopy(load_example(self.example))
        for path, value in self.set.items():
            parent, key = _walk(obj, path)
            parent[key] = value
        for path in self.delete:
            parent, key = _walk(obj, path)
            del parent[key]
        return obj

    @property
    def kind(self) -> str:
        return str(load_example(self.example)["kind"])


def invalid_samples() -> list[InvalidSample]:
    rows = yaml.safe_load((Path(__file__).parent / "invalid_samples.yaml").read_text())
    return [InvalidSample(**row) for row in rows]
