"""Every object the renderers produce is a valid Kubernetes object, admitted as a lease would be.

On the session's real kube-apiserver (kwok runs no containers, but validation and admission are
the real ones):

1. every object is server-side applied with `dryRun=All` and strict field validation (an
   unknown or misspelt field fails), in apply order, on the real lease namespace;
2. everything but the workloads is then applied for real, and a Pod made from each workload's
   template is created with `dryRun=All`: Pod Security `restricted`, the ResourceQuota and the
   LimitRange must all admit exactly what the order paid for;
3. NodePorts are allocated within the ProviderNode's default range and reported in the SDK's
   `forwarded_ports` shape, and re-applying the same objects changes nothing.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from tests.render.leasefixtures import (
    DEFAULTS,
    NETWORK,
    credentials_lease,
    multi_service_lease,
    readme_lease,
    storage_lease,
)

from gpu_provider.api.v1alpha1.providernode import PortRange, RootImages
from gpu_provider.render.objects import LeaseObjects, render_lease_objects
from gpu_provider.render.services import forwarded_ports, node_ports_outside

MANAGER = "gpu-provider"
STRICT = [("fieldValidation", "Strict")]


def _lease_objects() -> dict[str, LeaseObjects]:
    credentials, placement, stored = credentials_lease()
    return {
        "readme": render_lease_objects(*readme_lease(), DEFAULTS, NETWORK),
        "multi-service": render_lease_objects(*multi_service_lease(), DEFAULTS, NETWORK),
        "storage": render_lease_objects(*storage_lease(), DEFAULTS, NETWORK),
        "credentials": render_lease_objects(
            credentials, placement, DEFAULTS, NETWORK, pull_secrets=stored
        ),
        # What a provider chooses for images whose user is root (leaseDefaults.rootImages).
        "root-run-as-user": render_lease_objects(
            *readme_lease(lease_id=71),
            DEFAULTS.model_copy(update={"root_images": RootImages.RUN_AS_USER}),
            NETWORK,
        ),
        "root-allowed": render_lease_objects(
            *readme_lease(lease_id=72),
            DEFAULTS.model_copy(update={"root_images": RootImages.ALLOW}),
            NETWORK,
        ),
    }


@pytest.fixture(scope="module")
def dynamic(api_client: client.ApiClient) -> DynamicClient:
    dyn = DynamicClient(api_client)  # type: ignore[no-untyped-call]
    # The RuntimeClass the ProviderNode names must exist, or Pods naming it are refused.
    runtime = {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": DEFAULTS.runtime_class_name},
        "handler": DEFAULTS.runtime_class_name,
    }
    _apply(dyn, runtime)
    return dyn


def _apply(dyn: DynamicClient, obj: dict[str, Any], *, dry_run: bool = False) -> Any:
    resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    return dyn.server_side_apply(  # type: ignore[no-untyped-call]
        resource,
        body=obj,
        namespace=obj["metadata"].get("namespace"),
        field_manager=MANAGER,
        force_conflicts=True,
        dry_run="All" if dry_run else None,
        query_params=list(STRICT),
    )


def _wait(predicate: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def _quota_counted(core: client.CoreV1Api, namespace: str) -> bool:
    # Quota admission refuses every Pod until the quota controller has filled in status.hard.
    status = core.read_namespaced_resource_quota("lease", namespace).status
    return bool(status and status.hard)


def _create_pod(core: client.CoreV1Api, namespace: str, pod: dict[str, Any]) -> None:
    # The client sends a dict body as it is (the rendered shape); its stubs only know V1Pod.
    core.create_namespaced_pod(namespace, pod, dry_run="All")  # type: ignore[arg-type]


def _pod_from(workload: dict[str, Any]) -> dict[str, Any]:
    """The Pod the workload's controller would create (the StatefulSet adds its claims)."""
    template = copy.deepcopy(workload["spec"]["template"])
    spec = template["spec"]
    name = workload["metadata"]["name"]
    claims = workload["spec"].get("volumeClaimTemplates") or []
    if claims:
        spec["volumes"] = [
            *spec.get("volumes", []),
            *(
                {
                    "name": c["metadata"]["name"],
                    "persistentVolumeClaim": {"claimName": f"{c['metadata']['name']}-{name}-0"},
                }
                for c in claims
            ),
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-0",
            "namespace": workload["metadata"]["namespace"],
            "labels": template["metadata"]["labels"],
        },
        "spec": spec,
    }


@pytest.mark.parametrize(
    "case",
    ["readme", "multi-service", "storage", "credentials", "root-run-as-user", "root-allowed"],
)
def test_rendered_lease_is_admitted_by_the_apiserver(
    case: str, dynamic: DynamicClient, core: client.CoreV1Api
) -> None:
    objects = _lease_objects()[case]
    namespace = objects.namespace["metadata"]["name"]
    _apply(dynamic, objects.namespace, dry_run=True)
    _apply(dynamic, objects.namespace)
    try:
        _wait(
            lambda: core.list_namespaced_service_account(namespace).items,
            what=f"the default ServiceAccount of {namespace}",
        )
        # 1. Every object, dry-run, strict: valid shapes in the order they are applied.
        for obj in objects.ordered()[1:]:
            _apply(dynamic, obj, dry_run=True)

        # 2. The namespace's rules for real, then the Pods they must admit.
        for obj in objects.ordered()[1:]:
            if obj["kind"] not in {"Deployment", "StatefulSet"}:
                _apply(dynamic, obj)
        _wait(lambda: _quota_counted(core, namespace), what="the lease's quota counted")
        for workload in objects.workloads:
            for _ in range(workload["spec"]["replicas"]):
                pod = _pod_from(workload)
                try:
                    _create_pod(core, namespace, pod)
                except ApiException as error:  # pragma: no cover - the failure to explain
                    pytest.fail(f"{case}: Pod of {workload['metadata']['name']}: {error.body}")

        # 3. NodePorts in range and reported; a second apply is a no-op.
        services = [
            dynamic.resources.get(api_version="v1", kind="Service")
            .get(name=s["metadata"]["name"], namespace=namespace)
            .to_dict()
            for s in objects.services
        ]
        assert node_ports_outside(services, PortRange()) == []
        reported = forwarded_ports(services, "203.0.113.7")
        expected = {
            s["metadata"]["labels"]["gpuprovider.dev/service"]
            for s in objects.services
            if s["spec"]["type"] == "NodePort"
        }
        assert set(reported) == expected
        for obj in objects.ordered()[1:]:
            if obj["kind"] in {"Deployment", "StatefulSet"}:
                continue
            before = (
                dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
                .get(name=obj["metadata"]["name"], namespace=namespace)
                .metadata.resourceVersion
            )
            after = _apply(dynamic, obj).metadata.resourceVersion
            assert after == before, f"{obj['kind']}/{obj['metadata']['name']} changed on re-apply"
    finally:
        core.delete_namespace(namespace)


def test_a_pod_outside_the_profile_or_the_quota_is_refused_in_a_lease_namespace(
    dynamic: DynamicClient, core: client.CoreV1Api
) -> None:
    """The namespace's rules are not decoration: a privileged Pod, or one asking for a GPU
    more than the order paid for, is refused there."""
    objects = render_lease_objects(*readme_lease(lease_id=70), DEFAULTS, NETWORK)
    namespace = objects.namespace["metadata"]["name"]
    _apply(dynamic, objects.namespace)
    try:
        _wait(
            lambda: core.list_namespaced_service_account(namespace).items,
            what=f"the default ServiceAccount of {namespace}",
        )
        for obj in [*objects.quota, objects.service_account]:
            _apply(dynamic, obj)
        _wait(lambda: _quota_counted(core, namespace), what="the lease's quota counted")
        privileged = _pod_from(objects.workloads[0])
        privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
        greedy = _pod_from(objects.workloads[0])
        resources = greedy["spec"]["containers"][0]["resources"]
        resources["requests"]["nvidia.com/gpu"] = resources["limits"]["nvidia.com/gpu"] = "2"
        for pod, reason in [(privileged, "PodSecurity"), (greedy, "exceeded quota")]:
            with pytest.raises(ApiException) as refused:
                _create_pod(core, namespace, pod)
            assert refused.value.status == 403
            assert reason in str(refused.value.body)
    finally:
        core.delete_namespace(namespace)
