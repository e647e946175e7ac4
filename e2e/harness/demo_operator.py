"""The provider's side of `make demo`: `gpu-provider run` and `gpu-provider gateway`, started
as a provider starts them, and what they show (conditions, the on-chain offer, /metrics).

The operator runs with `.local/operator.yaml`, which the demo rewrites with short intervals
(a lease check every second, earnings every 2 s) so that a whole lease cycle fits in minutes;
`make operator` then runs with the same settings.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from dataclasses import dataclass
from typing import Any, Final

import yaml

from e2e.harness import demo_processes
from e2e.harness.demo_processes import Background, free_port, port_free
from e2e.harness.demo_steps import say, table, until
from e2e.harness.operator_setup import OPERATOR_SETTINGS, operator_settings
from e2e.harness.stack import KUBECONFIG, kubectl
from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.registry import read_provider
from gpu_provider.chain.rpc import connect
from gpu_provider.devnet.accounts import Role
from gpu_provider.devnet.state import DevnetState
from gpu_provider.market import default_catalog
from gpu_provider.market.advertise import ActualProvider

ADVERTISE_TIMEOUT: Final = 180.0
GATEWAY_PORT: Final = 8443
"""Where Spheron's SDK reaches a provider (it adds :8443 to the registered hostUri)."""


@dataclass(frozen=True)
class Provider:
    """The running operator and gateway, and where to reach them."""

    operator: Background
    gateway: Background
    gateway_port: int
    metrics_port: int

    @property
    def processes(self) -> tuple[Background, ...]:
        return (self.operator, self.gateway)

    def metric_series(self, name: str) -> list[str]:
        """The series of one /metrics family, as exposed (none while the operator is away)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                text = reply.read().decode()
        except OSError:
            return []
        return [line for line in text.splitlines() if line.startswith(name + "{")]


def _port(preferred: int) -> int:
    return preferred if port_free(preferred) else free_port()


def write_demo_settings(state: DevnetState) -> tuple[int, int]:
    """`.local/operator.yaml` with the demo's pace; the (metrics, probe) ports."""
    settings = operator_settings(
        state,
        reconcile_interval_seconds=3,
        debounce_seconds=0.3,
        lease_check_interval_seconds=1,
        escrow_check_interval_seconds=5,
        earnings_interval_seconds=2,
        stop_timeout_seconds=10,
    )
    settings["metrics_port"] = _port(9090)
    settings["operator"]["probe_port"] = _port(8080)
    OPERATOR_SETTINGS.write_text(yaml.safe_dump(settings, sort_keys=False))
    return settings["metrics_port"], settings["operator"]["probe_port"]


def start_provider(state: DevnetState, provider_node: str) -> Provider:
    metrics_port, probe_port = write_demo_settings(state)
    common = ("--config", str(OPERATOR_SETTINGS), "--kubeconfig", str(KUBECONFIG))
    operator = demo_processes.start("operator", "run", *common)
    gateway_port = _port(GATEWAY_PORT)
    gateway = demo_processes.start(
        "gateway",
        "gateway",
        *common,
        "--host",
        "127.0.0.1",
        "--port",
        str(gateway_port),
        "--provider-node",
        provider_node,
        "--refresh-seconds",
        "1",
        "--devnet-self-signed",
    )
    say(
        table(
            [
                ("PROCESS", "PID", "LISTENS ON", "LOG"),
                (
                    "gpu-provider run",
                    operator.pid,
                    f"metrics :{metrics_port}, /healthz :{probe_port}",
                    ".local/operator.log",
                ),
                (
                    "gpu-provider gateway --devnet-self-signed",
                    gateway.pid,
                    f"https://127.0.0.1:{gateway_port}",
                    ".local/gateway.log",
                ),
            ]
        )
    )
    if gateway_port != GATEWAY_PORT:
        say(f"(port {GATEWAY_PORT} is taken here: the tenant is pointed at {gateway_port})")
    return Provider(operator, gateway, gateway_port, metrics_port)


async def wait_gateway(provider: Provider) -> None:
    """Until the gateway answers GET /version over its self-signed TLS."""
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    url = f"https://127.0.0.1:{provider.gateway_port}/version"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, context=insecure, timeout=2) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    await until(answers, f"the gateway answering {url}", within=60, watched=(provider.gateway,))


def _conditions(name: str) -> dict[str, tuple[str, str]]:
    try:
        body = json.loads(kubectl("get", "providernode", name, "-o", "json"))
    except RuntimeError:
        return {}
    return {
        c["type"]: (c["status"], c["reason"])
        for c in (body.get("status") or {}).get("conditions", [])
    }


def provider_status(name: str) -> dict[str, Any]:
    try:
        body = json.loads(kubectl("get", "providernode", name, "-o", "json"))
    except RuntimeError:
        return {}
    return dict(body.get("status") or {})


async def wait_advertised(name: str, provider: Provider) -> None:
    """Print each condition change until Ready, then until the chain daemon follows the chain."""
    seen: dict[str, tuple[str, str]] = {}

    def ready() -> bool:
        nonlocal seen
        now = _conditions(name)
        for type_, (status, reason) in now.items():
            if seen.get(type_) != (status, reason):
                say(f"  {type_:<17} {status:<6} {reason}")
        seen = now
        return seen.get("Ready", ("", ""))[0] == "True"

    await until(
        ready,
        f"ProviderNode {name} Ready",
        within=ADVERTISE_TIMEOUT,
        watched=provider.processes,
    )
    await until(
        lambda: provider_status(name).get("chain"),
        "the chain daemon following the chain (ProviderNode status.chain)",
        within=60,
        watched=provider.processes,
    )


async def read_chain_provider(state: DevnetState) -> ActualProvider:
    settings = state.chain_settings()
    w3 = await connect(settings)
    try:
        return await read_provider(
            Contracts(w3, settings.contracts), state.account_address(Role.PROVIDER)
        )
    finally:
        await w3.provider.disconnect()


def gpu_offer(actual: ActualProvider) -> dict[str, int]:
    """The approved GPU attributes, by catalog short name."""
    catalog = default_catalog()
    offer = {}
    for resource_id, units in actual.approved_units("GPU"):
        model = catalog.by_resource_id(resource_id)
        offer[model.short_name if model else f"id {resource_id}"] = int(units)
    return offer


def offer_text(offer: dict[str, int]) -> str:
    return ", ".join(f"{units} x {model}" for model, units in sorted(offer.items())) or "none"


async def show_provider(state: DevnetState, name: str) -> dict[str, int]:
    say(kubectl("get", "providernode", name))
    actual = await read_chain_provider(state)
    cpus = ", ".join(f"{units} cores" for _, units in actual.approved_units("CPU"))
    offer = gpu_offer(actual)
    say(
        f"on chain: provider {state.account_address(Role.PROVIDER)} {actual.status.name}, "
        f"tier {actual.tier}, hostUri {actual.host_uri!r}\n"
        f"  approved GPU attributes: {offer_text(offer)}\n"
        f"  approved CPU attributes: {cpus}"
    )
    return offer
