"""The Grafana dashboard the chart ships (a ConfigMap for Grafana's sidecar).

Only metrics the processes export today are queried; tests/packaging checks every metric
name in every expression against the names the code registers. What the dashboard cannot
show is listed in NOT_EXPORTED_YET (and in docs/provider-guide.md) instead.
"""

from __future__ import annotations

from typing import Any

NOT_EXPORTED_YET = (
    "GPU utilisation per lease (the agent's GPU metrics carry no pod or lease label)",
)


def _panel(
    pid: int,
    title: str,
    kind: str,
    exprs: list[tuple[str, str]],
    x: int,
    y: int,
    w: int = 12,
    h: int = 8,
    unit: str = "short",
) -> dict[str, Any]:
    return {
        "id": pid,
        "title": title,
        "type": kind,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def _chain_panels(sel: str) -> list[dict[str, Any]]:
    """The chain daemon's: leases, intake latency, bids, chain lag, earnings (metrics.py)."""
    intake = f"sum by (le) (rate(gpu_provider_lease_intake_seconds_bucket{{{sel}}}[15m]))"
    start = f"sum by (le) (rate(gpu_provider_lease_start_seconds_bucket{{{sel}}}[1h]))"
    return [
        _panel(
            16,
            "Leases by phase",
            "timeseries",
            [(f"sum by (phase) (gpu_provider_leases{{{sel}}})", "{{phase}}")],
            0,
            56,
        ),
        _panel(
            17,
            "Lease intake latency (LeaseCreated to GpuLease; p50, p95)",
            "timeseries",
            [
                (f"histogram_quantile(0.5, {intake})", "p50"),
                (f"histogram_quantile(0.95, {intake})", "p95"),
            ],
            12,
            56,
            unit="s",
        ),
        _panel(
            18,
            "Bids by outcome (this term)",
            "timeseries",
            [(f"sum by (outcome) (gpu_provider_bids{{{sel}}})", "{{outcome}}")],
            0,
            64,
        ),
        _panel(
            19,
            "Orders skipped by reason (this term)",
            "timeseries",
            [(f"sum by (reason) (gpu_provider_bid_skips{{{sel}}})", "{{reason}}")],
            12,
            64,
        ),
        _panel(
            20,
            "Chain lag (blocks)",
            "timeseries",
            [(f"gpu_provider_chain_lag_blocks{{{sel}}}", "{{provider}}")],
            0,
            72,
        ),
        _panel(
            21,
            "Leases closed by reason",
            "timeseries",
            [
                (
                    f"sum by (reason) (increase(gpu_provider_leases_closed_total{{{sel}}}[1h]))",
                    "{{reason}}",
                )
            ],
            12,
            72,
        ),
        _panel(
            22,
            "Earnings by token (base units)",
            "timeseries",
            [(f"sum by (token, kind) (gpu_provider_earnings{{{sel}}})", "{{token}} {{kind}}")],
            0,
            80,
        ),
        _panel(
            23,
            "Lease start latency (manifest applied to Running; p50, p95)",
            "timeseries",
            [
                (f"histogram_quantile(0.5, {start})", "p50"),
                (f"histogram_quantile(0.95, {start})", "p95"),
            ],
            12,
            80,
            unit="s",
        ),
    ]


def dashboard() -> dict[str, Any]:
    sel = 'provider=~"$provider"'
    rate = f"sum by (le) (rate(gpu_provider_reconcile_seconds_bucket{{{sel}}}[5m]))"
    panels = [
        _panel(
            1,
            "Offered GPUs per model",
            "timeseries",
            [(f'sum by (model) (gpu_provider_gpus{{{sel},state="offered"}})', "{{model}}")],
            0,
            0,
        ),
        _panel(
            2,
            "Allocated GPUs per model",
            "timeseries",
            [(f'sum by (model) (gpu_provider_gpus{{{sel},state="allocated"}})', "{{model}}")],
            12,
            0,
        ),
        _panel(
            3,
            "Allocation per model",
            "bargauge",
            [
                (
                    f'sum by (model) (gpu_provider_gpus{{{sel},state="allocated"}}) / '
                    f'sum by (model) (gpu_provider_gpus{{{sel},state="total"}})',
                    "{{model}}",
                )
            ],
            0,
            8,
            unit="percentunit",
        ),
        _panel(
            4,
            "Unhealthy GPUs",
            "stat",
            [(f'sum (gpu_provider_gpus{{{sel},state="unhealthy"}})', "unhealthy")],
            12,
            8,
            w=6,
        ),
        _panel(
            5,
            "Selected nodes",
            "stat",
            [(f"sum by (state) (gpu_provider_nodes{{{sel}}})", "{{state}}")],
            18,
            8,
            w=6,
        ),
        _panel(
            6,
            "ProviderNode conditions",
            "state-timeline",
            [(f"gpu_provider_condition{{{sel}}}", "{{provider}} {{type}}")],
            0,
            16,
            w=24,
        ),
        _panel(
            7,
            "Open transactions",
            "timeseries",
            [(f"gpu_provider_pending_transactions{{{sel}}}", "{{provider}}")],
            0,
            24,
        ),
        _panel(
            8,
            "Reconcile duration (p50, p95)",
            "timeseries",
            [
                (
                    f"histogram_quantile(0.5, {rate})",
                    "p50",
                ),
                (
                    f"histogram_quantile(0.95, {rate})",
                    "p95",
                ),
            ],
            12,
            24,
            unit="s",
        ),
        _panel(
            9,
            "Reconciles by result",
            "timeseries",
            [(f"sum by (result) (rate(gpu_provider_reconciles_total{{{sel}}}[5m]))", "{{result}}")],
            0,
            32,
            unit="ops",
        ),
        _panel(
            10,
            "Active operator instance",
            "stat",
            [("sum (gpu_provider_leader)", "leaders")],
            12,
            32,
            w=6,
        ),
        _panel(
            11, "NVML up (nodes)", "stat", [("sum (gpu_provider_nvml_up)", "agents")], 18, 32, w=6
        ),
        _panel(
            12,
            "GPU utilisation per GPU",
            "timeseries",
            [('DCGM_FI_DEV_GPU_UTIL{Hostname=~"$node"}', "{{Hostname}} gpu{{gpu}} {{modelName}}")],
            0,
            40,
            unit="percent",
        ),
        _panel(
            13,
            "GPU memory used",
            "timeseries",
            [('DCGM_FI_DEV_FB_USED{Hostname=~"$node"}', "{{Hostname}} gpu{{gpu}}")],
            12,
            40,
            unit="decmbytes",
        ),
        _panel(
            14,
            "GPUs the agent reports unhealthy",
            "table",
            [
                (
                    'gpu_provider_gpu_problem{Hostname=~"$node"} == 1',
                    "{{Hostname}} gpu{{gpu}} {{problem}}",
                )
            ],
            0,
            48,
        ),
        _panel(
            15,
            "XID errors (rate)",
            "timeseries",
            [
                (
                    "sum by (Hostname, xid) "
                    '(rate(gpu_provider_xid_events_total{Hostname=~"$node"}[10m]))',
                    "{{Hostname}} xid {{xid}}",
                )
            ],
            12,
            48,
        ),
        *_chain_panels(sel),
    ]

    def variable(name: str, query: str) -> dict[str, Any]:
        return {
            "name": name,
            "type": "query",
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "query": {"query": query, "refId": name},
            "includeAll": True,
            "multi": True,
            "current": {"text": "All", "value": "$__all"},
            "refresh": 2,
        }

    return {
        "uid": "gpu-provider",
        "title": "GPU provider",
        "tags": ["gpu-provider"],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                variable("provider", "label_values(gpu_provider_gpus, provider)"),
                variable("node", "label_values(DCGM_FI_DEV_GPU_UTIL, Hostname)"),
            ]
        },
        "panels": panels,
        "description": "Not shown yet (not exported): " + "; ".join(NOT_EXPORTED_YET),
    }
