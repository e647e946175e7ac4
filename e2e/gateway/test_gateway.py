"""The gateway against the real kwok cluster: /status over HTTPS is the offer, and follows it.

Story: the provider applies a ProviderNode and starts `gpu-provider gateway` with the devnet's
self-signed certificate; a tenant's SDK reads /status and sees exactly the GPUs the inventory
offers; the provider cordons a Node and /status drops its GPUs within the refresh interval.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.gateway.sdk_grouping import available_by_gpu

from e2e.harness.stack import KwokCluster
from gpu_provider.api.v1alpha1 import ProviderNodeSpec
from gpu_provider.gateway.status import render_status
from gpu_provider.gateway.tls import make_self_signed
from gpu_provider.inventory import build_inventory

REFRESH_SECONDS = 1.0
NO_VERIFY = ssl.create_default_context()
NO_VERIFY.check_hostname = False
NO_VERIFY.verify_mode = ssl.CERT_NONE


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(predicate: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


def get(url: str, context: ssl.SSLContext = NO_VERIFY) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Gateway:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log
        self.url = f"https://127.0.0.1:{port}"

    def get(self, path: str) -> tuple[int, Any]:
        return get(self.url + path)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


def start_gateway(kubeconfig: Path, tmp: Path, *args: str) -> Gateway:
    port = _free_port()
    log = tmp / f"gateway-{port}.log"
    command = [
        sys.executable,
        "-m",
        "gpu_provider",
        "gateway",
        "--kubeconfig",
        str(kubeconfig),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--refresh-seconds",
        str(REFRESH_SECONDS),
        *args,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    gateway = Gateway(process, port, log)

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"gateway exited {process.returncode}: {log.read_text()}")
        try:
            return gateway.get("/version")[0] == 200
        except (OSError, ssl.SSLError):
            return False

    _wait(answers, "the gateway to answer /version")
    return gateway


@pytest.fixture(scope="module")
def gateway(
    kwok_cluster: KwokCluster,
    provider_node: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gateway")
    running = start_gateway(
        kwok_cluster.kubeconfig,
        tmp,
        "--provider-node",
        provider_node["metadata"]["name"],
        "--devnet-self-signed",
    )
    yield running
    running.stop()


def expected_status(api_client: client.ApiClient, provider_node: dict[str, Any]) -> dict[str, Any]:
    """/status computed here from the same cluster: build_inventory, then render_status."""
    core = client.CoreV1Api(api_client)
    nodes = json.loads(core.list_node(_preload_content=False).data)["items"]
    pods = json.loads(core.list_pod_for_all_namespaces(_preload_content=False).data)["items"]
    spec = ProviderNodeSpec.model_validate(provider_node["spec"])
    return render_status(build_inventory(nodes, pods, spec), hostname=spec.host_uri)


def offer(api_client: client.ApiClient, provider_node: dict[str, Any]) -> dict[str, int]:
    core = client.CoreV1Api(api_client)
    nodes = json.loads(core.list_node(_preload_content=False).data)["items"]
    pods = json.loads(core.list_pod_for_all_namespaces(_preload_content=False).data)["items"]
    report = build_inventory(nodes, pods, ProviderNodeSpec.model_validate(provider_node["spec"]))
    return {m.model: m.offered for m in report.models if m.offered}


def test_status_over_https_is_the_offer_and_the_sdk_sees_exactly_it(
    gateway: Gateway, api_client: client.ApiClient, provider_node: dict[str, Any]
) -> None:
    want = expected_status(api_client, provider_node)
    status = _wait(lambda: gateway.get("/status") == (200, want) and want, "/status == offer")
    assert status["cluster_public_hostname"] == "gpu.example.com"
    rows = {n["name"] for n in status["cluster"]["inventory"]["available"]["nodes"]}
    assert "gpu-h100-cordoned" not in rows
    assert "cpu-0" not in rows  # not selected by the ProviderNode's nodeSelector
    sdk = available_by_gpu(status)
    assert sdk == offer(api_client, provider_node)
    assert sdk == {"h100": 16, "a100-80g": 8, "rtx4090": 2}


def test_cordoning_a_node_shrinks_status_within_the_refresh_interval(
    gateway: Gateway, core: client.CoreV1Api
) -> None:
    def h100() -> float:
        return available_by_gpu(gateway.get("/status")[1]).get("h100", 0)

    _wait(lambda: h100() == 16, "16 H100 offered before the cordon")
    core.patch_node("gpu-h100-0", {"spec": {"unschedulable": True}})
    try:
        # A few refresh intervals: the busy test machine may delay a pass, never skip one.
        _wait(lambda: h100() == 8, "/status to drop the cordoned node's 8 H100", timeout=15)
    finally:
        core.patch_node("gpu-h100-0", {"spec": {"unschedulable": False}})
    _wait(lambda: h100() == 16, "the uncordoned node's H100 to come back")


def test_version_answers_and_unknown_paths_are_json_404(gateway: Gateway) -> None:
    status, body = gateway.get("/version")
    assert status == 200
    assert set(body) == {"version", "commit"}
    status, body = gateway.get("/deployment/1/nothing-here")
    assert status == 404
    assert body["error"]["message"]


def served_certificate(gateway: Gateway) -> bytes:
    return ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", gateway.port)))


def der(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


def tls_secret_data(cert: Path, key: Path) -> dict[str, str]:
    return {
        "tls.crt": base64.b64encode(cert.read_bytes()).decode(),
        "tls.key": base64.b64encode(key.read_bytes()).decode(),
    }


def test_certificate_from_a_tls_secret_and_its_renewal(
    kwok_cluster: KwokCluster,
    core: client.CoreV1Api,
    namespace: str,
    provider_node: dict[str, Any],
    tmp_path: Path,
) -> None:
    cert, key = make_self_signed(tmp_path / "first", ["gpu.example.com"])
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="gateway-tls"),
            type="kubernetes.io/tls",
            data=tls_secret_data(cert, key),
        ),
    )
    running = start_gateway(
        kwok_cluster.kubeconfig,
        tmp_path,
        "--provider-node",
        provider_node["metadata"]["name"],
        "--tls-secret",
        f"{namespace}/gateway-tls",
        "--tls-reload-seconds",
        "1",
    )
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        trusting.check_hostname = False  # the certificate names gpu.example.com, we dial an IP
        assert get(running.url + "/version", trusting)[0] == 200
        # cert-manager renews the certificate in the Secret: new handshakes get the new one.
        renewed, renewed_key = make_self_signed(tmp_path / "renewed", ["gpu.example.com"])
        core.patch_namespaced_secret(
            "gateway-tls", namespace, {"data": tls_secret_data(renewed, renewed_key)}
        )
        _wait(lambda: served_certificate(running) == der(renewed), "the renewed certificate")
    finally:
        running.stop()


def test_refuses_to_start_without_tls(
    kwok_cluster: KwokCluster, provider_node: dict[str, Any], tmp_path: Path
) -> None:
    # The example ProviderNode names certificateSecretRef provider-tls, which does not exist.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gpu_provider",
            "gateway",
            "--kubeconfig",
            str(kwok_cluster.kubeconfig),
            "--provider-node",
            provider_node["metadata"]["name"],
            "--port",
            str(_free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GPU_PROVIDER_NAMESPACE": "gpu-provider-system"},
    )
    assert result.returncode != 0
    assert "TLS Secret gpu-provider-system/provider-tls does not exist" in result.stderr
