"""`gpu-provider node-agent`: wire NVML, the Node and the metrics endpoint; return an exit code.

Exit codes (docs/node-agent.md lists them for the DaemonSet's users):
0 stopped by SIGTERM or SIGINT; 1 the metrics port cannot be opened; 4 NVML is not available
on this machine; 5 the Node cannot be found or Kubernetes cannot be configured.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gpu_provider.agent.facts import APPLICATION_XIDS, XidLedger
from gpu_provider.agent.loop import Agent, AgentOptions
from gpu_provider.agent.metrics import AgentMetrics, MetricsServer
from gpu_provider.agent.nvml import Nvml, NvmlBackend, NvmlUnavailable, load_pynvml
from gpu_provider.api.nodefacts import GPU_FACTS_ANNOTATION
from gpu_provider.kube.client import KubeConfigError, new_api_client
from gpu_provider.kube.nodes import NodeAnnotation, NodeApiError, NodeNotFound

__all__ = [
    "EXIT_METRICS_PORT",
    "EXIT_NODE_UNAVAILABLE",
    "EXIT_NVML_UNAVAILABLE",
    "AgentConfig",
    "run_node_agent",
]

EXIT_METRICS_PORT: Final = 1
EXIT_NVML_UNAVAILABLE: Final = 4
EXIT_NODE_UNAVAILABLE: Final = 5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentConfig:
    node_name: str
    kubeconfig: Path | None = None
    metrics_port: int = 9400
    metrics_address: str = "0.0.0.0"  # noqa: S104  (Prometheus scrapes the pod IP)
    interval: float = 10.0
    verify_interval: float = 60.0
    ignore_xids: frozenset[int] = frozenset()


def run_node_agent(config: AgentConfig, lib: NvmlBackend | None = None) -> int:
    """Run until SIGTERM/SIGINT; the exit code says why it stopped."""
    nvml = Nvml(lib if lib is not None else load_pynvml())
    try:
        nvml.start()
    except NvmlUnavailable as exc:
        log.error("%s", exc)
        return EXIT_NVML_UNAVAILABLE
    try:
        return asyncio.run(_serve(config, nvml))
    finally:
        nvml.close()


async def _serve(config: AgentConfig, nvml: Nvml) -> int:
    try:
        store = NodeAnnotation(
            new_api_client(config.kubeconfig), config.node_name, GPU_FACTS_ANNOTATION
        )
    except KubeConfigError as exc:
        log.error("%s", exc)
        return EXIT_NODE_UNAVAILABLE
    metrics = AgentMetrics(hostname=config.node_name)
    try:
        server = MetricsServer(metrics, config.metrics_port, config.metrics_address)
    except OSError as exc:
        log.error("cannot serve metrics on port %d: %s", config.metrics_port, exc)
        return EXIT_METRICS_PORT
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    agent = Agent(
        nvml,
        store,
        metrics,
        AgentOptions(
            interval=config.interval,
            verify_interval=config.verify_interval,
            retry_on=(NodeApiError,),
        ),
        XidLedger(ignored=APPLICATION_XIDS | config.ignore_xids),
    )
    log.info(
        "node agent for Node %s: polling NVML every %gs, metrics on :%d",
        config.node_name,
        config.interval,
        server.port,
    )
    try:
        await agent.run(stop)
    except NodeNotFound as exc:
        log.error("%s", exc)
        return EXIT_NODE_UNAVAILABLE
    finally:
        server.close()
    log.info("node agent stopped")
    return 0
