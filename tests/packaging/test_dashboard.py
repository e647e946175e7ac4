"""Every metric the Grafana dashboard queries is one the processes export."""

from __future__ import annotations

import json
import re

from tests.packaging.helpers import REPO, charts_module

PACKAGE = REPO / "operator" / "gpu_provider"
# A name registered with prometheus_client, or a DCGM field the agent exports.
REGISTERED = re.compile(r"""["']((?:gpu_provider|DCGM_FI)_[A-Za-z0-9_]+)["']""")
PROMQL_NAME = re.compile(r"\b((?:gpu_provider|DCGM_FI)_[A-Za-z0-9_]+)\b")
SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def exported() -> set[str]:
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        names.update(REGISTERED.findall(path.read_text(encoding="utf-8")))
    return names


def queried(dashboard: dict[str, object]) -> set[str]:
    text = json.dumps(dashboard)
    exprs = re.findall(r'"(?:expr|query)": "((?:[^"\\]|\\.)*)"', text)
    return {name for expr in exprs for name in PROMQL_NAME.findall(expr)}


def base_name(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_every_queried_metric_is_exported() -> None:
    committed = json.loads((REPO / "charts/gpu-provider/dashboards/gpu-provider.json").read_text())
    names = queried(committed)
    assert names, "the dashboard queries nothing"
    missing = {n for n in names if n not in exported() and base_name(n) not in exported()}
    assert not missing, f"queried but not exported: {sorted(missing)}"


def test_the_panels_left_out_are_listed_on_the_dashboard() -> None:
    module = charts_module("dashboard")
    assert module.NOT_EXPORTED_YET
    for item in module.NOT_EXPORTED_YET:
        assert item in module.dashboard()["description"]
