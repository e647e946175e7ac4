"""GpuLease status from a lease's children: the phase, the counts and the failures a tenant
sees, and the failure recorded for the close path once its deadline has passed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gpu_provider.api.v1alpha1.gpulease import GpuLeaseStatus
from gpu_provider.controllers.gpulease_status import (
    Observed,
    build_workload_status,
    manifest_digest,
    pod_problems,
)
from gpu_provider.render.leasestatus import lease_facts
from tests.render.leasefixtures import readme_lease

NOW = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)
DEADLINE = timedelta(minutes=10)
SPEC, PLACEMENT = readme_lease()
assert SPEC.manifest is not None
DIGEST = manifest_digest(SPEC.manifest)


def _pod(waiting: str | None = None, unschedulable: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Pending"}
    if waiting:
        status["containerStatuses"] = [
            {"name": "py-cuda", "state": {"waiting": {"reason": waiting, "message": "why"}}}
        ]
    if unschedulable:
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": unschedulable,
            }
        ]
    return {"metadata": {"name": "py-cuda-0"}, "status": status}


def _deployment(ready: int, generation: int = 1, observed: int = 1) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {
            "name": "py-cuda",
            "generation": generation,
            "labels": {"gpuprovider.dev/service": "py-cuda"},
        },
        "status": {
            "observedGeneration": observed,
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": ready,
            "availableReplicas": ready,
        },
    }


@pytest.mark.parametrize(
    ("pod", "reason"),
    [
        (_pod(waiting="ErrImagePull"), "ImagePullError"),
        (_pod(waiting="ImagePullBackOff"), "ImagePullError"),
        (_pod(waiting="CrashLoopBackOff"), "CrashLoop"),
        (_pod(waiting="CreateContainerConfigError"), "ContainerConfigError"),
        (_pod(unschedulable="0/7 nodes: Insufficient nvidia.com/gpu"), "Unschedulable"),
    ],
)
def test_each_failure_a_tenant_should_see_has_its_reason(pod: dict[str, Any], reason: str) -> None:
    (problem,) = pod_problems([pod])
    assert problem.reason == reason
    assert "py-cuda-0" in problem.message


def test_a_pod_that_is_starting_is_no_problem() -> None:
    assert pod_problems([_pod(waiting="ContainerCreating")]) == []


def _status(**fields: Any) -> GpuLeaseStatus:
    return GpuLeaseStatus.model_validate(
        {"phase": "AwaitingManifest", "placement": PLACEMENT.to_wire(), **fields}
    )


def test_applied_then_ready_is_deploying_then_running() -> None:
    seen = Observed(digest=DIGEST, applied=True, deployments=[_deployment(ready=0)])
    patch, events, _ = build_workload_status(SPEC, _status(), seen, NOW, DEADLINE)
    assert patch["phase"] == "Deploying"
    assert patch["manifestAt"] == "2026-12-01T21:00:00Z"
    assert [e.reason for e in events] == ["Deploying"]
    deploying = _status(phase="Deploying", appliedManifestSha256=DIGEST, manifestAt=NOW)
    seen = Observed(digest=DIGEST, applied=True, deployments=[_deployment(ready=1)])
    patch, events, _ = build_workload_status(SPEC, deploying, seen, NOW, DEADLINE)
    assert patch["phase"] == "Running"
    assert patch["services"][0]["readyReplicas"] == 1
    assert [e.reason for e in events] == ["Running"]


def test_an_old_templates_ready_pods_do_not_count_for_a_new_manifest() -> None:
    running = _status(phase="Running", appliedManifestSha256="0" * 64)
    seen = Observed(
        digest=DIGEST, applied=True, deployments=[_deployment(ready=1, generation=2, observed=1)]
    )
    patch, _, _ = build_workload_status(SPEC, running, seen, NOW, DEADLINE)
    assert patch["phase"] == "Deploying"
    assert patch["runningAt"] is None
    assert patch["services"][0]["readyReplicas"] == 0


def test_a_failure_is_recorded_for_the_close_path_only_past_its_deadline() -> None:
    seen = Observed(
        digest=DIGEST,
        applied=True,
        deployments=[_deployment(ready=0)],
        pods=[_pod(waiting="ImagePullBackOff")],
    )
    deploying = _status(phase="Deploying", appliedManifestSha256=DIGEST)
    patch, events, wake = build_workload_status(SPEC, deploying, seen, NOW, DEADLINE)
    assert "failure" not in patch
    assert wake == pytest.approx(DEADLINE.total_seconds())
    assert [e.reason for e in events] == ["ImagePullError"]
    # Ten minutes later, still failing: recorded, and the close path sees it.
    failing = _status(
        phase="Deploying", appliedManifestSha256=DIGEST, conditions=patch["conditions"]
    )
    later = NOW + DEADLINE
    patch, events, _ = build_workload_status(SPEC, failing, seen, later, DEADLINE)
    assert patch["failure"]["reason"] == "ImagePullError"
    assert "WorkloadFailed" in [e.reason for e in events]
    recorded = GpuLeaseStatus.model_validate({**failing.to_wire(), "failure": patch["failure"]})
    facts = lease_facts(SPEC, recorded)
    assert facts.failure is not None
    assert facts.failure.reason == "ImagePullError"
