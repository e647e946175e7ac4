"""A provider's leases on the kwok GPU nodes, deployed by the real `gpu-provider run`.

Each test reads like what a provider or tenant does and sees: a manifest arrives and the lease
runs on the node its bid reserved; a second lease gets the other GPU and a third finds none;
leases cannot use each other's identity or Secrets; the manifest re-sent restarts nothing; a
hand-deleted NetworkPolicy comes back with an Event; a failing image is reported and, past
the deadline, recorded for the close path; a killed operator loses and duplicates nothing;
`Closing` ends in the namespace gone, `Closed`, and the record deleted after its retention.
"""

from __future__ import annotations

import os
import random
import signal
import time
from typing import Any

import pytest
from kubernetes import client
from tests.render.leasefixtures import storage_lease

from e2e.workload.conftest import (
    FAILURE_DEADLINE,
    RUNTIME_CLASS,
    Leases,
    Operator,
    new_lease_id,
    readme,
    wait_for,
)
from gpu_provider.api.v1alpha1.gpulease import GpuLeaseSpec, GpuLeaseStatus, Placement
from gpu_provider.render.leasestatus import lease_facts

pytestmark = pytest.mark.usefixtures("operator")


def _running(leases: Leases, name: str) -> dict[str, Any] | None:
    status = leases.status(name)
    return status if status.get("phase") == "Running" else None


def _pods(core: client.CoreV1Api, lease: str) -> list[client.V1Pod]:
    return list(core.list_namespaced_pod(lease).items)


@pytest.fixture(scope="module")
def first(leases: Leases) -> str:
    spec, placement = readme()
    name = leases.create(spec, placement)
    wait_for(lambda: _running(leases, name), f"{name} Running", timeout=90)
    return name


@pytest.fixture(scope="module")
def second(leases: Leases, first: str) -> str:
    spec, placement = readme()
    name = leases.create(spec, placement)
    wait_for(lambda: _running(leases, name), f"{name} Running", timeout=60)
    return name


def test_a_lease_runs_on_the_node_its_bid_reserved(
    leases: Leases, first: str, core: client.CoreV1Api, operator: Operator
) -> None:
    status = leases.status(first)
    assert status["manifestAt"] <= status["runningAt"]
    # The time from the manifest applied to Running is exported (the provider's dashboard).
    assert operator.current is not None
    started = "gpu_provider_lease_start_seconds_count"
    assert operator.current.metric(started, provider=leases.provider_node) >= 1
    assert status["services"][0]["readyReplicas"] == 1
    # The README's port 8888 is global: a NodePort, reported at the provider's host.
    forwarded = status["services"][0]["forwardedPorts"]
    assert forwarded
    assert forwarded[0]["port"] == 8888
    assert forwarded[0]["host"] == "localhost"
    assert status["placement"]["node"] == "gpu-4090-0"
    assert leases.condition(first, "Ready")["status"] == "True"
    (pod,) = _pods(core, first)
    assert pod.spec.node_name == "gpu-4090-0"
    assert pod.spec.runtime_class_name == RUNTIME_CLASS
    limits = pod.spec.containers[0].resources.limits
    assert limits["nvidia.com/gpu"] == "1"
    namespace = core.read_namespace(first)
    assert namespace.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    policies = client.NetworkingV1Api(core.api_client).list_namespaced_network_policy(first)
    assert {"deny-all", "allow-dns", "allow-internet"} <= {p.metadata.name for p in policies.items}
    quota = core.read_namespaced_resource_quota("lease", first)
    assert quota.spec.hard["requests.nvidia.com/gpu"] == "1"


def test_two_leases_never_share_a_gpu(
    leases: Leases, first: str, second: str, core: client.CoreV1Api
) -> None:
    # The node has 2 GPUs: the two leases hold one each, and a third finds none.
    nodes = {_pods(core, name)[0].spec.node_name for name in (first, second)}
    assert nodes == {"gpu-4090-0"}
    spec, placement = readme()
    third = leases.create(spec, placement)
    reason = wait_for(
        lambda: leases.condition(third, "Healthy").get("reason") == "Unschedulable",
        f"{third} reporting Unschedulable",
    )
    assert reason
    assert leases.status(third)["phase"] == "Deploying"
    assert "Insufficient nvidia.com/gpu" in leases.condition(third, "Ready")["message"]
    leases.patch_status(third, {"phase": "Closing", "closeReason": "TenantClosed"})
    wait_for(lambda: leases.status(third).get("phase") == "Closed", f"{third} Closed")


def test_a_lease_cannot_use_another_leases_identity_or_secrets(
    first: str, second: str, core: client.CoreV1Api
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "borrow"},
        "spec": {
            "serviceAccountName": f"system:serviceaccount:{second}:lease",
            "containers": [{"name": "c", "image": "busybox"}],
        },
    }
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_pod(first, pod, dry_run="All")  # type: ignore[arg-type]
    assert refused.value.status in (403, 422)
    # The lease's identity may read nothing, in its namespace or another's.
    auth = client.AuthorizationV1Api(core.api_client)
    for namespace in (first, second):
        review = auth.create_subject_access_review(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": f"system:serviceaccount:{first}:lease",
                    "resourceAttributes": {
                        "namespace": namespace,
                        "verb": "get",
                        "resource": "secrets",
                    },
                },
            }
        )
        assert review.status.allowed is False


def test_the_same_manifest_resent_restarts_nothing(
    leases: Leases, first: str, core: client.CoreV1Api
) -> None:
    apps = client.AppsV1Api(core.api_client)
    before_pods = {p.metadata.uid for p in _pods(core, first)}
    before = apps.read_namespaced_deployment("py-cuda", first)
    manifest = (leases.get(first) or {})["spec"]["manifest"]
    leases.write_manifest(first, manifest)
    leases.patch_status(first, {"appliedManifestSha256": None})  # as after a restart
    wait_for(lambda: leases.status(first).get("appliedManifestSha256"), "the manifest re-applied")
    after = apps.read_namespaced_deployment("py-cuda", first)
    assert after.metadata.generation == before.metadata.generation
    assert {p.metadata.uid for p in _pods(core, first)} == before_pods


def test_a_new_manifest_replaces_the_workload(
    leases: Leases, first: str, core: client.CoreV1Api
) -> None:
    apps = client.AppsV1Api(core.api_client)
    before_pods = {p.metadata.uid for p in _pods(core, first)}
    before = leases.status(first)
    manifest = (leases.get(first) or {})["spec"]["manifest"]
    manifest["services"][0]["env"] = [{"name": "JUPYTER_TOKEN", "value": "rotated"}]
    manifest["sha256"] = "f" * 64
    leases.write_manifest(first, manifest)
    wait_for(
        lambda: leases.status(first).get("appliedManifestSha256") == "f" * 64,
        "the new manifest applied",
    )
    wait_for(lambda: _running(leases, first), f"{first} Running with the new manifest")
    after = leases.status(first)
    assert after["manifestAt"] >= before["manifestAt"]
    env = apps.read_namespaced_deployment("py-cuda", first).spec.template.spec.containers[0].env
    assert [(e.name, e.value) for e in env] == [("JUPYTER_TOKEN", "rotated")]
    wait_for(
        lambda: {p.metadata.uid for p in _pods(core, first)}.isdisjoint(before_pods),
        "the old Pod replaced",
    )


def test_a_hand_deleted_network_policy_comes_back_with_an_event(
    leases: Leases, first: str, core: client.CoreV1Api
) -> None:
    net = client.NetworkingV1Api(core.api_client)
    old = net.read_namespaced_network_policy("deny-all", first).metadata.uid
    net.delete_namespaced_network_policy("deny-all", first)

    def recreated() -> bool:
        try:
            return bool(net.read_namespaced_network_policy("deny-all", first).metadata.uid != old)
        except client.ApiException:
            return False

    wait_for(recreated, "deny-all re-created", timeout=30)

    def drift_event() -> list[Any]:
        events = core.list_namespaced_event(
            leases.home, field_selector=f"involvedObject.name={first}"
        ).items
        return [e for e in events if e.reason == "DriftCorrected" and "deny-all" in e.message]

    wait_for(drift_event, "a DriftCorrected event on the GpuLease", timeout=30)


def test_an_image_pull_error_is_reported_then_recorded_for_the_close_path(
    leases: Leases, second: str, core: client.CoreV1Api
) -> None:
    # kwok runs no container: set the status the kubelet would write for a missing image.
    (pod,) = _pods(core, second)
    waiting = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "nope:1"'}
    core.patch_namespaced_pod_status(
        pod.metadata.name,
        second,
        {
            "status": {
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {
                        "name": "py-cuda",
                        "image": "nope:1",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"waiting": waiting},
                    }
                ],
            }
        },
    )
    wait_for(
        lambda: leases.condition(second, "Healthy").get("reason") == "ImagePullError",
        "the ImagePullError condition",
    )
    assert "ImagePullBackOff" in leases.condition(second, "Healthy")["message"]
    stored = wait_for(
        lambda: leases.status(second).get("failure") and leases.get(second),
        "the failure recorded past its deadline",
        timeout=FAILURE_DEADLINE + 30,
    )
    facts = lease_facts(
        GpuLeaseSpec.model_validate(stored["spec"]),
        GpuLeaseStatus.model_validate(stored["status"]),
    )
    assert facts.failure is not None
    assert facts.failure.reason == "ImagePullError"


def test_shm_and_the_persistent_volume_are_both_provisioned(
    leases: Leases, core: client.CoreV1Api
) -> None:
    # The SDK's manifest carries one storage entry for an order with shm + persistent volumes.
    spec, _ = storage_lease()
    spec = spec.model_copy(update={"lease_id": str(new_lease_id())})
    name = leases.create(spec, Placement(node="gpu-h100-0", gpus=1, model="h100"))
    claim = wait_for(
        lambda: core.list_namespaced_persistent_volume_claim(name).items, f"{name}'s claim"
    )[0]
    assert claim.spec.resources.requests["storage"] == "100Gi"
    apps = client.AppsV1Api(core.api_client)
    pod = apps.read_namespaced_stateful_set("vllm", name).spec.template.spec
    mounts = {m.mount_path: m.name for m in pod.containers[0].volume_mounts}
    assert mounts["/dev/shm"] == "shm"
    assert "/models" in mounts
    shm = next(v for v in pod.volumes if v.name == "shm")
    assert shm.empty_dir.medium == "Memory"
    assert shm.empty_dir.size_limit == "8Gi"
    leases.patch_status(name, {"phase": "Closing", "closeReason": "TenantClosed"})


KILLS = int(os.environ.get("WORKLOAD_KILLS", "1"))
"""`make soak` kills the operator more often, at random points of the apply."""


def _a100_lease() -> tuple[GpuLeaseSpec, Placement]:
    spec, _ = readme()
    service = spec.resources.services[0]
    gpu = service.gpu.model_copy(update={"models": ["a100-80g"]})
    resources = spec.resources.model_copy(
        update={"services": [service.model_copy(update={"gpu": gpu})]}
    )
    spec = spec.model_copy(update={"lease_id": str(new_lease_id()), "resources": resources})
    return spec, Placement(node="gpu-a100-0", gpus=1, model="a100-80g")


@pytest.mark.parametrize("round_", range(KILLS))
def test_a_killed_operator_loses_nothing_and_duplicates_nothing(
    leases: Leases, operator: Operator, core: client.CoreV1Api, round_: int
) -> None:
    name = leases.create(*_a100_lease())
    if round_ == 0:
        # SIGKILL as soon as the apply has begun (the namespace exists).
        wait_for(lambda: _exists(core, name), f"{name}'s namespace", timeout=30)
    else:
        time.sleep(random.uniform(0, 0.6))  # anywhere in the apply, or just before or after
    operator.kill(signal.SIGKILL)
    operator.start()
    try:
        wait_for(lambda: _running(leases, name), f"{name} Running after the restart", timeout=90)
    except AssertionError as error:
        pods = [(p.metadata.name, p.status.phase, p.spec.node_name) for p in _pods(core, name)]
        raise AssertionError(f"{error}; status {leases.status(name)}; pods {pods}") from None
    apps = client.AppsV1Api(core.api_client)
    assert [d.metadata.name for d in apps.list_namespaced_deployment(name).items] == ["py-cuda"]
    assert len(apps.list_namespaced_replica_set(name).items) == 1
    assert len(_pods(core, name)) == 1
    assert len(core.list_namespaced_service(name).items) == 2  # ClusterIP and NodePort
    policies = client.NetworkingV1Api(core.api_client).list_namespaced_network_policy(name)
    assert len(policies.items) == 5  # deny-all, same lease, DNS, internet, the NodePort's
    leases.patch_status(name, {"phase": "Closing", "closeReason": "TenantClosed"})
    wait_for(lambda: leases.status(name).get("phase") == "Closed", f"{name} Closed")


def test_a_stale_quota_charge_does_not_refuse_the_lease_services(
    leases: Leases, operator: Operator, core: client.CoreV1Api
) -> None:
    """A Service create cut off by a SIGKILL is charged to the quota but never stored (the
    quota admission gives no charge back; only the quota controller's periodic recount, minutes
    later, does): `make soak` saw the restarted operator's Services refused for good with
    `exceeded quota: services=2`. The stale charge is written here by hand, deterministically."""
    model = leases.create(*_a100_lease())
    wait_for(lambda: _running(leases, model), f"{model} Running", timeout=90)
    hard = core.read_namespaced_resource_quota("lease", model).spec.hard
    leases.patch_status(model, {"phase": "Closing", "closeReason": "TenantClosed"})
    wait_for(lambda: leases.status(model).get("phase") == "Closed", f"{model} Closed")
    spec, placement = _a100_lease()
    namespace = f"lease-{spec.lease_id}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    # The same quota the render makes (so applying it changes no limit and starts no recount),
    # once counted, then charged for two Services that do not exist.
    quota = client.V1ResourceQuota(
        metadata=client.V1ObjectMeta(name="lease"), spec=client.V1ResourceQuotaSpec(hard=hard)
    )
    core.create_namespaced_resource_quota(namespace, quota)

    def counted() -> dict[str, str] | None:
        used = core.read_namespaced_resource_quota("lease", namespace).status.used
        return used if used and set(used) == set(hard) else None

    used = wait_for(counted, f"{namespace}'s quota counted", timeout=30)
    assert used is not None
    stale = {"status": {"hard": hard, "used": {**used, "services": "2"}}}
    core.patch_namespaced_resource_quota_status("lease", namespace, stale)
    name = leases.create(spec, placement)
    assert name == namespace
    try:
        wait_for(lambda: _running(leases, name), f"{name} Running despite the stale charge", 60)
    except AssertionError as error:
        raise AssertionError(
            f"{error}; status {leases.status(name)}; {operator.log()[-3000:]}"
        ) from None
    assert len(core.list_namespaced_service(name).items) == 2  # ClusterIP and NodePort
    # The replaced quota is recounted by the quota controller, which may run between the two
    # Service creates: the count converges on what exists rather than holding it at once.
    wait_for(
        lambda: (
            (core.read_namespaced_resource_quota("lease", name).status.used or {}).get("services")
            == "2"
        ),
        f"{name}'s quota counting its two Services",
        timeout=60,
    )
    leases.patch_status(name, {"phase": "Closing", "closeReason": "TenantClosed"})
    wait_for(lambda: leases.status(name).get("phase") == "Closed", f"{name} Closed")


def _exists(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        core.read_namespace(namespace)
    except client.ApiException:
        return False
    return True


def test_closing_deletes_the_namespace_then_closed_then_forgotten(
    leases: Leases, first: str, core: client.CoreV1Api
) -> None:
    leases.patch_status(first, {"phase": "Closing", "closeReason": "TenantClosed"})
    wait_for(lambda: not _exists(core, first), f"namespace {first} deleted", timeout=60)
    wait_for(
        lambda: leases.status(first).get("phase") == "Closed" or leases.get(first) is None,
        f"{first} Closed",
    )
    # Kept as a record for the retention, then garbage-collected.
    wait_for(lambda: leases.get(first) is None, f"GpuLease {first} deleted after its retention")
