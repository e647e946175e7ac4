"""`gpu-provider run`: the Kopf operator process.

It serves Prometheus metrics (`metrics_port`) and Kopf's liveness probe (`operator.probe_port`,
`/healthz`) on their own ports, elects itself with a Lease (`gpu_provider.kube.leader`), and
runs the controllers' handlers. Every instance watches; only the Lease holder acts.

On SIGTERM Kopf stops the reconcile loops (each finishes or abandons its step within
`operator.stop_timeout_seconds`; a transaction is journaled in status before it is broadcast,
so an abandoned wait loses nothing), then the Lease is released so a standby takes over at
once. Exit status: 0 after a clean stop, 1 when leadership was lost (so the pod restarts as a
standby).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import kopf

from gpu_provider.config import LogFormat, Settings
from gpu_provider.controllers import (
    chaindaemon_handlers,  # noqa: F401 - registers handlers
    gpulease,  # noqa: F401 - registers the handlers
    providernode,  # noqa: F401 - registers the handlers
)
from gpu_provider.controllers.context import OperatorContext
from gpu_provider.kube.client import new_api_client
from gpu_provider.kube.leader import LeaseElector, new_identity
from gpu_provider.metrics import OperatorMetrics

__all__ = ["LEASE_LOST_EXIT", "STORAGE_PREFIX", "run_operator"]

STORAGE_PREFIX = "gpuprovider.dev"
FINALIZER = "gpuprovider.dev/finalizer"
LEASE_LOST_EXIT = 1
INSTANT_EXIT_SECONDS = 5.0

log = logging.getLogger(__name__)


@kopf.on.startup(id="operator-settings")
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Kopf's settings, in one place: watch timeouts, our finalizer, our storage prefixes."""
    ours: Settings = memo["context"].settings
    op = ours.operator
    settings.watching.server_timeout = op.watch_server_timeout_seconds
    settings.watching.client_timeout = op.watch_client_timeout_seconds
    settings.watching.connect_timeout = op.watch_connect_timeout_seconds
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STORAGE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=STORAGE_PREFIX, key="last-handled-configuration"
    )
    # The Lease decides who acts; Kopf's own peering (and its extra CRD) is not used.
    settings.peering.standalone = True
    # Kopf would post its per-handler log lines as Events on every Node and Pod; only the
    # Events the controller raises itself (kopf.event) are wanted.
    settings.posting.level = logging.ERROR
    settings.process.ultimate_exiting_timeout = op.stop_timeout_seconds + 10
    # A deleted object's loops exit within moments of their stop flag; Kopf waits this long
    # for that before it looks again only after the loop's whole cancellation grace (which
    # held a GpuLease past its retention for a minute).
    settings.background.instant_exit_timeout = INSTANT_EXIT_SECONDS


@kopf.on.login(id="operator-login")
def login(memo: kopf.Memo, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """Kopf connects with the same credentials as our client (kubeconfig or in-cluster)."""
    context: OperatorContext = memo["context"]
    if context.kubeconfig is None:
        return kopf.login_with_service_account(**kwargs)
    cfg = context.api.configuration
    # The kubernetes client keeps a kubeconfig token under "BearerToken" (prefix separate);
    # older clients kept "authorization: Bearer <token>".
    scheme, _, token = str(cfg.api_key.get("authorization") or "").partition(" ")
    if not token and cfg.api_key.get("BearerToken"):
        token = str(cfg.api_key["BearerToken"]).removeprefix("Bearer ").strip()
        scheme = str(cfg.api_key_prefix.get("BearerToken") or "Bearer")
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
        scheme=scheme or None,
        token=token or None,
    )


def _configure_logging(settings: Settings) -> None:
    fmt = (
        '{"time":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s"}'
        if settings.log_format is LogFormat.JSON
        else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.basicConfig(level=settings.log_level.value, format=fmt, force=True)
    # The kubernetes client logs every request at DEBUG with headers; keep it quiet.
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    # "Handler ... succeeded" for every Node and Pod event says nothing a provider needs.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)


async def _operate(context: OperatorContext) -> int:
    stop = asyncio.Event()
    lost = asyncio.Event()

    def on_lost() -> None:
        lost.set()
        stop.set()

    elect = asyncio.create_task(
        context.elector.run(on_lost, context.metrics.leader.set), name="leader election"
    )
    probe = f"http://0.0.0.0:{context.settings.operator.probe_port}/healthz"
    try:
        await kopf.operator(
            clusterwide=True,
            liveness_endpoint=probe,
            memo=kopf.Memo(context=context),
            stop_flag=stop,
        )
    finally:
        elect.cancel()
        await asyncio.gather(elect, return_exceptions=True)
        await context.elector.release()
        context.metrics.leader.set(0)
    return LEASE_LOST_EXIT if lost.is_set() else 0


def run_operator(settings: Settings, kubeconfig: Path | None = None) -> int:
    """Run until SIGTERM/SIGINT (0) or until leadership is lost (1)."""
    _configure_logging(settings)
    api = new_api_client(kubeconfig)
    metrics = OperatorMetrics()
    metrics.serve(settings.metrics_port)
    op = settings.operator
    elector = LeaseElector(
        api,
        settings.namespace,
        op.lease_name,
        new_identity(),
        duration=op.lease_duration_seconds,
        renew_every=op.lease_renew_seconds,
    )
    context = OperatorContext(
        settings=settings,
        api=api,
        elector=elector,
        metrics=metrics,
        kubeconfig=kubeconfig or os.environ.get("KUBECONFIG") or None,
    )
    log.info(
        "gpu-provider run: metrics on :%d, liveness on :%d/healthz, Lease %s/%s as %s",
        settings.metrics_port,
        op.probe_port,
        settings.namespace,
        op.lease_name,
        elector.identity,
    )
    return asyncio.run(_operate(context))
