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
def run(config: Path | None) -> None:
    """Run the operator (Kopf): reconcile ProviderNodes and GpuLeases, bid, close, withdraw.

    Runs as a Deployment with one replica and the Recreate strategy, so two operators never
    sign transactions for the same wallet. Needs a kubeconfig or in-cluster credentials and
    the chain settings (RPC URLs, chain id, contract addresses).
    """
    _check_settings(config)
    _not_available("the operator loop (`run`)", "it lands with the ProviderNode controller")


@main.command(
    context_settings=CONTEXT_SETTINGS,
    short_help="Serve the HTTPS tenant API (manifests, lease status).",
)
@config_option
@click.option("--port", type=click.IntRange(1, 65535), default=8443, show_default=True)
def gateway(config: Path | None, port: int) -> None:
    """Serve the tenant API over HTTPS: /status, /version, manifest upload, lease status/logs.

    Tenants POST their deployment manifest to /deployment/<leaseId>/manifest with the
    Auth-Spheron header (a signature by the lease's tenant wallet); the gateway verifies it
    and hands the manifest to the operator through the GpuLease.
    """
    _check_settings(config)
    _not_available(f"the tenant gateway (port {port})", "it lands with the gateway")


@main.command(
    "node-agent",
    context_settings=CONTEXT_SETTINGS,
    short_help="Report this node's GPUs from NVML on the Node.",
)
@config_option
def node_agent(config: Path | None) -> None:
    """Report this node's GPUs from NVML (model, VRAM, health, driver/CUDA) on the Node.

    Runs as a DaemonSet on GPU nodes. It writes a Node annotation only when the facts change
    and serves Prometheus metrics; unhealthy GPUs are then no longer offered.
    """
    _check_settings(config)
    _not_available("the NVML node agent", "it lands with the node agent")


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
