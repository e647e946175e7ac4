"""The gateway against the real kwok cluster: /status over HTTPS is the offer, and follows it.

Story: the provider applies a ProviderNode and starts `gpu-provider gateway` with the devnet's
self-signed certificate; a tenant's SDK reads /status and sees exactly the GPUs the inventory
offers; the provider cordons a Node and /status drops its GPUs within the refresh interval.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubernetes import client
from tests.gateway.sdk_grouping import available_by_gpu

from e2e.gateway.process import Gateway, free_port, get, start_gateway, wait_for
from e2e.harness.stack import KwokCluster
from gpu_provider.api.v1alpha1 import ProviderNodeSpec
from gpu_provider.gateway.status import render_status
from gpu_provider.gateway.tls import make_self_signed
from gpu_provider.inventory import build_inventory


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
    status = wait_for(lambda: gateway.get("/status") == (200, want) and want, "/status == offer")
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

    wait_for(lambda: h100() == 16, "16 H100 offered before the cordon")
    core.patch_node("gpu-h100-0", {"spec": {"unschedulable": True}})
    try:
        # A few refresh intervals: the busy test machine may delay a pass, never skip one.
        wait_for(lambda: h100() == 8, "/status to drop the cordoned node's 8 H100", timeout=15)
    finally:
        core.patch_node("gpu-h100-0", {"spec": {"unschedulable": False}})
    wait_for(lambda: h100() == 16, "the uncordoned node's H100 to come back")


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
        wait_for(lambda: served_certificate(running) == der(renewed), "the renewed certificate")
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
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GPU_PROVIDER_NAMESPACE": "gpu-provider-system"},
    )
    assert result.returncode != 0
    assert "TLS Secret gpu-provider-system/provider-tls does not exist" in result.stderr
