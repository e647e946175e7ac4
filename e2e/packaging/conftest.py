"""One kwok cluster for the packaging tests: the chart is installed, upgraded and uninstalled
in it, the kustomize overlay applied, and the operator run with the chart's ServiceAccount.

It is separate from the session cluster because the chart owns the CRDs (Helm refuses to
adopt CRDs another test created) and installs cluster-wide RBAC and an admission policy.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from e2e.harness.stack import BIN, LOCAL, KwokCluster, apply_objects
from e2e.harness.topology import build_nodes
from e2e.operator.conftest import chain  # noqa: F401 - the devnet (anvil, contracts, verifier)

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "gpu-provider"
RELEASE = "gp"
NAMESPACE = "gpu-provider-system"
OPERATOR_SA = f"{RELEASE}-gpu-provider-operator"
GATEWAY_SA = f"{RELEASE}-gpu-provider-gateway"


def run(
    *args: str, check: bool = True, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, input=input_text, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


class Cluster:
    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.api = config.new_client_from_config(str(kubeconfig))

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(str(BIN / "helm"), "--kubeconfig", str(self.kubeconfig), *args, check=check)

    def kubectl(
        self, *args: str, check: bool = True, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(
            str(BIN / "kubectl"),
            "--kubeconfig",
            str(kubeconfig or self.kubeconfig),
            *args,
            check=check,
        )

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path) -> Path:
        """A kubeconfig that authenticates as the ServiceAccount (a TokenRequest token)."""
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        )
        token = (
            client.CoreV1Api(self.api)
            .create_namespaced_service_account_token(name, namespace, request)
            .status.token
        )
        admin: dict[str, Any] = yaml.safe_load(self.kubeconfig.read_text())
        context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
        cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [cluster],
                    "users": [{"name": name, "user": {"token": token}}],
                    "contexts": [
                        {"name": name, "context": {"cluster": cluster["name"], "user": name}}
                    ],
                    "current-context": name,
                }
            )
        )
        return path


@pytest.fixture(scope="package")
def cluster(stack_tools: Path) -> Iterator[Cluster]:
    name = f"pkg-{os.getpid()}"
    kwok = KwokCluster(name=name, kubeconfig=LOCAL / f"{name}.kubeconfig")
    try:
        kwok.create()
        # The GPU Nodes, for the operator's offer; only that test needs them Ready, and it
        # waits for the ProviderNode's Ready condition itself.
        apply_objects(build_nodes(), kubeconfig=kwok.kubeconfig)
        yield Cluster(kwok.kubeconfig)
    finally:
        kwok.delete()
        kwok.kubeconfig.unlink(missing_ok=True)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
