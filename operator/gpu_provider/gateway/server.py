"""Run the gateway: choose TLS, start the inventory refresher, serve until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gpu_provider.api.v1alpha1 import ProviderNodeSpec
from gpu_provider.gateway import manifest, public, tenant, tls
from gpu_provider.gateway.app import create_app
from gpu_provider.gateway.keys import VersionInfo
from gpu_provider.gateway.leaseaccess import TENANT_CONTEXT, TenantContext
from gpu_provider.gateway.source import BuildInventory, ClusterStatusSource
from gpu_provider.kube import reads
from gpu_provider.kube.client import new_api_client

__all__ = ["GatewayOptions", "OptionsError", "TlsChoice", "choose_tls", "serve"]

log = logging.getLogger(__name__)


class OptionsError(ValueError):
    """The command line asks for something contradictory or unsafe; the message says what."""


@dataclass(frozen=True)
class GatewayOptions:
    port: int = 8443
    host: str = "0.0.0.0"  # noqa: S104 - a Service in front of it decides who reaches it
    kubeconfig: Path | None = None
    namespace: str = "gpu-provider-system"
    log_level: str = "INFO"
    provider_node: str | None = None
    refresh_seconds: float = 5.0
    tls_reload_seconds: float = 60.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_secret: str | None = None
    devnet_self_signed: bool = False
    insecure_http: bool = False


@dataclass(frozen=True)
class TlsChoice:
    """Where the certificate comes from: `files`, `secret` (namespace, name), `self-signed`,
    `provider-node` (its certificateSecretRef, read at start) or `none` (plain HTTP)."""

    kind: str
    secret: tuple[str, str] | None = None


def choose_tls(options: GatewayOptions) -> TlsChoice:
    """Check the TLS flags (pure): one source at most; no TLS only when asked explicitly."""
    if (options.tls_cert is None) != (options.tls_key is None):
        raise OptionsError("--tls-cert and --tls-key go together")
    chosen = [
        name
        for name, given in (
            ("--tls-cert/--tls-key", options.tls_cert is not None),
            ("--tls-secret", options.tls_secret is not None),
            ("--devnet-self-signed", options.devnet_self_signed),
            ("--insecure-http", options.insecure_http),
        )
        if given
    ]
    if len(chosen) > 1:
        raise OptionsError(f"choose one TLS source, not {' and '.join(chosen)}")
    if options.tls_cert is not None:
        return TlsChoice("files")
    if options.tls_secret is not None:
        namespace, _, name = options.tls_secret.partition("/")
        if not namespace or not name or "/" in name:
            raise OptionsError(f"--tls-secret must be namespace/name, not {options.tls_secret!r}")
        return TlsChoice("secret", (namespace, name))
    if options.devnet_self_signed:
        return TlsChoice("self-signed")
    if options.insecure_http:
        return TlsChoice("none")
    return TlsChoice("provider-node")


PemReader = Callable[[], Awaitable[tuple[bytes, bytes]]]


@dataclass(frozen=True)
class _Certificate:
    """Where the certificate is re-read from (None: self-signed or plain HTTP, never)."""

    context: ssl.SSLContext | None
    reader: PemReader | None = None
    source: str = ""
    pem: tuple[bytes, bytes] = (b"", b"")


async def _certificate(
    choice: TlsChoice,
    options: GatewayOptions,
    api: client.ApiClient,
    source: ClusterStatusSource,
    workdir: Path,
) -> _Certificate:
    if choice.kind == "none":
        log.warning("serving plain HTTP (--insecure-http): only behind a TLS-terminating proxy")
        return _Certificate(None)
    if choice.kind == "self-signed":
        provider = await source.provider_node()
        host = ProviderNodeSpec.model_validate(provider.get("spec") or {}).host_uri
        cert, key = tls.make_self_signed(workdir, [host])
        log.warning("serving a self-signed certificate for %s (--devnet-self-signed)", host)
        return _Certificate(tls.context_from_files(cert, key))
    reader: PemReader
    if choice.kind == "files" and options.tls_cert and options.tls_key:
        cert_file, key_file = options.tls_cert, options.tls_key

        async def reader() -> tuple[bytes, bytes]:
            return tls.read_files(cert_file, key_file)

        where = f"files {cert_file} and {key_file}"
    else:
        namespace, name = choice.secret or await _provider_node_secret(options, source)

        async def reader() -> tuple[bytes, bytes]:
            return await reads.read_tls_secret(api, namespace, name)

        where = f"Secret {namespace}/{name}"
    pem = await reader()
    return _Certificate(tls.context_from_pem(*pem, source=where), reader, where, pem)


async def _provider_node_secret(
    options: GatewayOptions, source: ClusterStatusSource
) -> tuple[str, str]:
    provider = await source.provider_node()
    spec = ProviderNodeSpec.model_validate(provider.get("spec") or {})
    if spec.certificate_secret_ref is None:
        raise OptionsError(
            f"no TLS certificate: ProviderNode {provider['metadata']['name']} has no "
            "certificateSecretRef; set it, or pass --tls-secret, --tls-cert/--tls-key, "
            "--devnet-self-signed (devnet only) or --insecure-http (behind a "
            "TLS-terminating ingress only)"
        )
    return options.namespace, spec.certificate_secret_ref.name


async def _reload_certificate(certificate: _Certificate, every: float) -> None:
    """Follow a renewed certificate (cert-manager, a rotated Secret) without a restart.

    A certificate that does not load is logged and the previous one stays in use.
    """
    if certificate.context is None or certificate.reader is None:
        return
    current = certificate.pem
    while True:
        await asyncio.sleep(every)
        try:
            pem = await certificate.reader()
            if pem != current:
                tls.load_pem(certificate.context, *pem, source=certificate.source)
                current = pem
                log.info("TLS certificate reloaded from %s", certificate.source)
        except (tls.TlsError, reads.TlsSecretError, ApiException, OSError) as exc:
            log.warning(
                "TLS certificate not reloaded from %s (%s); the previous one stays in use",
                certificate.source,
                exc,
            )


async def serve(
    options: GatewayOptions,
    build: BuildInventory,
    *,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT. `ready(port)` is called once it listens."""
    choice = choose_tls(options)
    logging.basicConfig(
        level=options.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    api = new_api_client(options.kubeconfig)
    source = ClusterStatusSource(
        api, build, provider_node=options.provider_node, refresh_seconds=options.refresh_seconds
    )
    with tempfile.TemporaryDirectory(prefix="gateway-") as workdir:
        certificate = await _certificate(choice, options, api, source, Path(workdir))
        context = certificate.context
        app = create_app(
            source,
            VersionInfo.from_environment(),
            route_tables=(public.routes, manifest.routes, tenant.routes),
        )
        app[TENANT_CONTEXT] = TenantContext(api, options.namespace)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, options.host, options.port, ssl_context=context)
        await site.start()
        tasks = [
            asyncio.create_task(source.run(), name="inventory-refresh"),
            asyncio.create_task(
                _reload_certificate(certificate, options.tls_reload_seconds), name="tls-reload"
            ),
        ]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        scheme = "https" if context else "http"
        log.info("gateway listening on %s://%s:%d", scheme, options.host, options.port)
        if ready is not None:
            ready(options.port)
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await runner.cleanup()
            api.close()  # type: ignore[no-untyped-call]
