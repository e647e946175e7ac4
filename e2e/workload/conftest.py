"""`gpu-provider run` deploying GpuLeases on the kwok GPU nodes.

The operator runs as a subprocess, as a provider runs it. Its chain points nowhere and its
ProviderNode names no wallet Secret: nothing here needs the chain, the GpuLease controller
reads only the cluster. GpuLeases are made as the chain daemon makes them (spec from the
order, status `AwaitingManifest` with the bid's placement) and given a manifest as the
gateway stores it (`spec.manifest`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from tests.render.leasefixtures import readme_lease

from e2e.harness.operator_process import (  # noqa: F401 - the tests import wait_for from here
    OperatorProcess,
    start_operator,
    wait_for,
)
from e2e.harness.stack import LOCAL, KwokCluster, apply_objects
from gpu_provider.api.v1alpha1 import GPU_LEASE_PLURAL, GROUP, VERSION
from gpu_provider.api.v1alpha1.gpulease import GpuLeaseSpec, Placement
from gpu_provider.render.labels import lease_labels

EXAMPLE = Path(__file__).parents[2] / "manifests/examples/providernode-devnet.yaml"
RUNTIME_CLASS = "nvidia"
FAILURE_DEADLINE = 10
RETENTION = 4
# kwokctl's cluster: the apiserver's default Service range, kwok's Pod addresses.
KWOK_SERVICE_CIDR = "10.0.0.0/24"
KWOK_POD_CIDR = "10.0.0.0/16"


@dataclass
class Operator:
    """The one `gpu-provider run` of the module; a kill and a start replace it."""

    kubeconfig: Path
    workdir: Path
    namespace: str
    current: OperatorProcess | None = None
    runs: int = 0

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return None if self.current is None else self.current.process

    def start(self) -> None:
        settings = {
            "namespace": self.namespace,
            # Nothing listens there: the chain is not part of what is tested here.
            "chain": {"rpc_urls": ["http://127.0.0.1:9"]},
            "operator": {
                "reconcile_interval_seconds": 5,
                "debounce_seconds": 0.3,
                "lease_name": f"gpu-provider-workload-{uuid.uuid4().hex[:6]}",
                "lease_duration_seconds": 4,
                "lease_renew_seconds": 1,
                "stop_timeout_seconds": 5,
                "service_cidrs": [KWOK_SERVICE_CIDR],
                "pod_cidrs": [KWOK_POD_CIDR],
                "workload_failure_deadline_seconds": FAILURE_DEADLINE,
                "closed_lease_retention_seconds": RETENTION,
            },
        }
        self.current = start_operator(
            settings,
            kubeconfig=self.kubeconfig,
            workdir=self.workdir,
            name=f"operator-{self.runs}",
        )
        self.runs += 1

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        if self.current is not None and self.current.process.poll() is None:
            self.current.stop(sig)

    def log(self) -> str:
        return "".join(
            p.read_text(errors="replace") for p in sorted(self.workdir.glob("operator-*.log"))
        )


@pytest.fixture(scope="module")
def lease_home(core: client.CoreV1Api) -> Iterator[str]:
    """Where the GpuLeases live (the operator's namespace in production)."""
    name = f"wl-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def provider_node(
    kwok_cluster: KwokCluster, api_client: client.ApiClient, crds: list[str]
) -> Iterator[str]:
    body: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    name = f"workload-{uuid.uuid4().hex[:6]}"
    body["metadata"]["name"] = name
    body["spec"]["wallet"]["secretName"] = "no-such-wallet"  # nothing is ever signed here
    body["spec"]["leaseDefaults"] = {"runtimeClassName": RUNTIME_CLASS}
    runtime = {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": RUNTIME_CLASS},
        "handler": RUNTIME_CLASS,
    }
    apply_objects([runtime, body], kubeconfig=kwok_cluster.kubeconfig)
    yield name
    custom = client.CustomObjectsApi(api_client)
    custom.delete_cluster_custom_object(GROUP, VERSION, "providernodes", name)


@pytest.fixture(scope="module")
def operator(kwok_cluster: KwokCluster, provider_node: str, lease_home: str) -> Iterator[Operator]:
    workdir = LOCAL / f"e2e-workload-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    workdir.mkdir(parents=True)
    running = Operator(kwok_cluster.kubeconfig, workdir, lease_home)
    running.start()
    yield running
    running.kill(signal.SIGTERM)


@dataclass
class Leases:
    custom: client.CustomObjectsApi
    home: str
    provider_node: str

    def create(
        self,
        spec: GpuLeaseSpec,
        placement: Placement,
        *,
        with_manifest: bool = True,
    ) -> str:
        """The GpuLease as the chain daemon creates it; the manifest as the gateway stores it."""
        lease_id = int(spec.lease_id)
        wire = spec.model_copy(update={"provider_node": self.provider_node}).to_wire()
        manifest = wire.pop("manifest", None)
        name = f"lease-{lease_id}"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "GpuLease",
            "metadata": {
                "name": name,
                "labels": lease_labels(lease_id, spec.tenant, self.provider_node, "lease"),
            },
            "spec": wire,
        }
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.home, GPU_LEASE_PLURAL, body
        )
        status = {
            "phase": "AwaitingManifest",
            "placement": placement.to_wire(),
            "chainState": "Active",
            "matchedAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        self.patch_status(name, status)
        if with_manifest and manifest is not None:
            self.write_manifest(name, manifest)
        return name

    def write_manifest(self, name: str, manifest: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.home,
            GPU_LEASE_PLURAL,
            name,
            {"spec": {"manifest": manifest}},
            _content_type="application/merge-patch+json",
        )

    def patch_status(self, name: str, status: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            self.home,
            GPU_LEASE_PLURAL,
            name,
            {"status": status},
            _content_type="application/merge-patch+json",
        )

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.home, GPU_LEASE_PLURAL, name
            )
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def status(self, name: str) -> dict[str, Any]:
        return dict((self.get(name) or {}).get("status") or {})

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        conditions = self.status(name).get("conditions") or []
        return next((c for c in conditions if c["type"] == type_), {})


@pytest.fixture(scope="module")
def leases(api_client: client.ApiClient, lease_home: str, provider_node: str) -> Leases:
    return Leases(client.CustomObjectsApi(api_client), lease_home, provider_node)


def new_lease_id() -> int:
    return int(uuid.uuid4().int % 10**12)


def readme(lease_id: int | None = None) -> tuple[GpuLeaseSpec, Placement]:
    """The README's one-RTX-4090 lease, reserved on the one 2-GPU 4090 node."""
    spec, _ = readme_lease(lease_id or new_lease_id())
    return spec, Placement(node="gpu-4090-0", gpus=1, model="rtx4090")
