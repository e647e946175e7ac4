"""`gpu-provider`: one command, one subcommand per process the operator ships as."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
import yaml

from gpu_provider import __version__
from gpu_provider.api.crd import all_crds
from gpu_provider.config import SettingsError, load_settings
from gpu_provider.devnet.commands import devnet

NOT_AVAILABLE_EXIT = 3

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _not_available(feature: str, issue_hint: str) -> NoReturn:
    click.echo(
        f"gpu-provider: {feature} is not available yet in {__version__} ({issue_hint}).",
        err=True,
    )
    sys.exit(NOT_AVAILABLE_EXIT)


def _check_settings(config: Path | None) -> None:
    try:
        load_settings(config)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


config_option = click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML settings file (default: $GPU_PROVIDER_CONFIG). Environment variables "
    "GPU_PROVIDER_* override it, e.g. GPU_PROVIDER_CHAIN__CHAIN_ID=84532.",
)


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="gpu-provider")
def main() -> None:
    """Sell your Kubernetes cluster's GPUs on a Spheron-compatible marketplace.

    You declare one ProviderNode (wallet Secret, region, prices, which Nodes to offer);
    the operator finds the GPUs, advertises them on-chain, bids on orders it can serve,
    runs each matched lease as isolated pods with nvidia.com/gpu limits, and collects
    the earnings.

    \b
    Typical installs:
      helm install gpu-provider charts/gpu-provider      # runs `run`, `gateway`, `node-agent`
      gpu-provider crds | kubectl apply -f -             # CRDs only
    Try it locally, no GPU needed:
      make demo
    """


@main.command(
    context_settings=CONTEXT_SETTINGS,
    short_help="Run the operator: reconcile, bid, close leases, withdraw.",
)
@config_option
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="kubeconfig file (default: $KUBECONFIG, else the in-cluster service account)",
)
def run(config: Path | None, kubeconfig: Path | None) -> None:
    """Run the operator (Kopf): reconcile ProviderNodes, advertise the offer on-chain.

    Serves Prometheus metrics on `metrics_port` and a liveness probe on
    `operator.probe_port` (/healthz). Several instances may run: the holder of the Lease
    `operator.lease_name` in `namespace` acts, the others stand by and send nothing.
    SIGTERM stops it cleanly. Needs a kubeconfig or in-cluster credentials and the chain
    settings (RPC URLs, chain id, contract addresses).

    \b
    Against the local stack (`make stack`):
      gpu-provider run --config .local/operator.yaml --kubeconfig .local/kubeconfig
    """
    try:
        settings = load_settings(config)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    from gpu_provider.kube.client import KubeConfigError
    from gpu_provider.runtime import run_operator

    try:
        sys.exit(run_operator(settings, kubeconfig))
    except KubeConfigError as exc:
        raise click.ClickException(str(exc)) from None


@main.command(
    context_settings=CONTEXT_SETTINGS,
    short_help="Serve the provider's HTTPS API (/status, /version).",
)
@config_option
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8443,
    show_default=True,
    help="Spheron's SDK reaches providers at https://<hostUri>:8443",
)
@click.option(
    "--host",
    default="0.0.0.0",  # noqa: S104 - a Service in front decides who reaches it
    show_default=True,
    help="address to listen on",
)
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="default: $KUBECONFIG, else the in-cluster ServiceAccount",
)
@click.option(
    "--provider-node",
    default=None,
    help="the ProviderNode to serve (default: the only one in the cluster)",
)
@click.option(
    "--refresh-seconds",
    type=click.FloatRange(0.2, 300),
    default=5.0,
    show_default=True,
    help="how often Nodes and Pods are re-read",
)
@click.option(
    "--tls-reload-seconds",
    type=click.FloatRange(1, 86_400),
    default=60.0,
    show_default=True,
    help="how often the certificate file or Secret is re-read; a renewed one is used at once",
)
@click.option(
    "--tls-cert",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="PEM certificate chain file (with --tls-key)",
)
@click.option(
    "--tls-key",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="PEM private key file (with --tls-cert)",
)
@click.option(
    "--tls-secret",
    default=None,
    metavar="NAMESPACE/NAME",
    help="a kubernetes.io/tls Secret holding tls.crt and tls.key",
)
@click.option(
    "--devnet-self-signed",
    is_flag=True,
    help="make a throwaway self-signed certificate (local devnet only)",
)
@click.option(
    "--insecure-http",
    is_flag=True,
    help="serve plain HTTP: only for tests, or behind an ingress that terminates TLS",
)
def gateway(
    config: Path | None,
    port: int,
    host: str,
    kubeconfig: Path | None,
    provider_node: str | None,
    refresh_seconds: float,
    tls_reload_seconds: float,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_secret: str | None,
    devnet_self_signed: bool,
    insecure_http: bool,
) -> None:
    """Serve the provider's HTTPS API: GET /status (the offer, as Spheron's SDK reads it)
    and GET /version. Unknown paths answer a JSON 404.

    /status is rebuilt from the cluster every --refresh-seconds: the Nodes the ProviderNode's
    nodeSelector picks, the Pods on them, minus reservedPerNode; only healthy, unallocated
    GPUs of catalog models are offered. cluster_public_hostname is the ProviderNode's hostUri.

    \b
    TLS (exactly one; the default is the ProviderNode's certificateSecretRef):
      --tls-cert cert.pem --tls-key key.pem    PEM files
      --tls-secret gpu-provider-system/gateway-tls   a kubernetes.io/tls Secret
      --devnet-self-signed                     a throwaway certificate, devnet only
      --insecure-http                          no TLS, behind a TLS-terminating ingress
    \b
    Try it against the local stack:
      gpu-provider gateway --kubeconfig ~/.kube/config --devnet-self-signed --port 8443
      curl -sk https://localhost:8443/status | jq .cluster.inventory.available.nodes
    """
    try:
        settings = load_settings(config)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    import asyncio

    from gpu_provider.gateway.server import GatewayOptions, OptionsError, choose_tls, serve
    from gpu_provider.gateway.tls import TlsError
    from gpu_provider.inventory import build_inventory
    from gpu_provider.kube.client import KubeConfigError
    from gpu_provider.kube.reads import TlsSecretError

    options = GatewayOptions(
        port=port,
        host=host,
        kubeconfig=kubeconfig,
        namespace=settings.namespace,
        log_level=settings.log_level.value,
        provider_node=provider_node,
        refresh_seconds=refresh_seconds,
        tls_reload_seconds=tls_reload_seconds,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_secret=tls_secret,
        devnet_self_signed=devnet_self_signed,
        insecure_http=insecure_http,
    )
    try:
        choose_tls(options)
        asyncio.run(serve(options, build_inventory))
    except (OptionsError, TlsError, TlsSecretError, KubeConfigError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command(
    "node-agent",
    context_settings=CONTEXT_SETTINGS,
    short_help="Report this node's GPUs from NVML on the Node.",
)
@config_option
@click.option(
    "--node-name",
    envvar="NODE_NAME",
    required=True,
    help="this Node's name [env NODE_NAME; set it from the downward API: spec.nodeName]",
)
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="kubeconfig file (default: $KUBECONFIG, else the in-cluster ServiceAccount)",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=9400,
    show_default=True,
    help="Prometheus /metrics port (dcgm-exporter's default, so scrape configs carry over)",
)
@click.option("--metrics-address", default="0.0.0.0", show_default=True)  # noqa: S104
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=10.0,
    show_default=True,
    help="seconds between NVML polls (metrics); XID events are reported at once",
)
@click.option(
    "--verify-interval",
    type=click.FloatRange(1, 86400),
    default=60.0,
    show_default=True,
    help="seconds between checks that the annotation on the Node is still ours",
)
@click.option(
    "--ignore-xid",
    "ignore_xids",
    type=click.IntRange(1, 65535),
    multiple=True,
    help="an XID that must not mark a GPU unhealthy (repeatable), in addition to the "
    "application errors 13, 31, 43, 45, 68 and 109",
)
def node_agent(
    config: Path | None,
    node_name: str,
    kubeconfig: Path | None,
    metrics_port: int,
    metrics_address: str,
    interval: float,
    verify_interval: float,
    ignore_xids: tuple[int, ...],
) -> None:
    """Report this node's GPUs from NVML (model, VRAM, MIG, driver/CUDA, health) on the Node.

    Runs as a DaemonSet on GPU nodes, with the NVIDIA container runtime so NVML is present.
    It writes the Node annotation gpuprovider.dev/gpu-facts only when a GPU's facts or health
    change (never for utilisation), and serves DCGM-named Prometheus metrics. A GPU with a
    critical XID, uncorrectable ECC errors, or pages/rows waiting for a reset is unhealthy
    and is no longer offered.

    \b
    Exit codes:
      0  stopped by SIGTERM or SIGINT
      1  bad settings, or the metrics port cannot be opened
      2  bad command line
      4  NVML is not available (no libnvidia-ml.so.1, driver not loaded, no /dev/nvidia*)
      5  the Node does not exist, or Kubernetes cannot be configured
    \b
    Example (outside a cluster, against a kubeconfig):
      NODE_NAME=gpu-h100-0 gpu-provider node-agent --kubeconfig ~/.kube/config
    """
    import logging

    from gpu_provider.agent.app import AgentConfig, run_node_agent

    try:
        settings = load_settings(config)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    logging.basicConfig(
        level=settings.log_level.value, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    agent_config = AgentConfig(
        node_name=node_name,
        kubeconfig=kubeconfig,
        metrics_port=metrics_port,
        metrics_address=metrics_address,
        interval=interval,
        verify_interval=verify_interval,
        ignore_xids=frozenset(ignore_xids),
    )
    sys.exit(run_node_agent(agent_config))


@main.command(
    context_settings=CONTEXT_SETTINGS, short_help="Print the ProviderNode and GpuLease CRDs."
)
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="write one <plural>.<group>.yaml per CRD here instead of printing them",
)
def crds(output_dir: Path | None) -> None:
    """Print the CustomResourceDefinitions (ProviderNode, GpuLease) generated from the models.

    \b
    Install them:   gpu-provider crds | kubectl apply --server-side -f -
    Inspect them:   kubectl explain providernode.spec.pricing
    """
    documents = all_crds()
    if output_dir is None:
        click.echo(yaml.safe_dump_all(documents, sort_keys=False), nl=False)
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    for document in documents:
        path = output_dir / f"{document['metadata']['name']}.yaml"
        path.write_text(render_crd_file(document), encoding="utf-8")
        click.echo(f"wrote {path}")


def render_crd_file(document: dict[str, object]) -> str:
    """The exact text of a committed CRD file (a unit test compares crds/ with this)."""
    header = "# Generated by `gpu-provider crds` from gpu_provider.api; do not edit.\n"
    return header + yaml.safe_dump(document, sort_keys=False)


# The devnet commands live with the devnet tooling (gpu_provider.devnet.commands).
main.add_command(devnet)


@main.command(
    context_settings=CONTEXT_SETTINGS, short_help="Run the end-to-end demo (use `make demo`)."
)
def demo() -> None:
    """Run the end-to-end demo on the local stack (use `make demo`, which also sets it up)."""
    _not_available("`gpu-provider demo`", "`make demo` runs what exists so far")


@main.command(
    context_settings=CONTEXT_SETTINGS, short_help="Print the version and the API version."
)
def version() -> None:
    """Print the version of gpu-provider and of the API it serves."""
    from gpu_provider.api.v1alpha1 import API_VERSION

    click.echo(f"gpu-provider {__version__} (API {API_VERSION})")
