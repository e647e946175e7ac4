"""`kubectl apply -k manifests/overlays/devnet`: a server-side dry run, then the real apply,
create what the chart would (kwok runs no containers: the objects are checked)."""

from __future__ import annotations

from kubernetes import client

from e2e.operator.conftest import wait_for
from e2e.packaging.conftest import REPO, Cluster
from gpu_provider.render.pullsecret import pull_secret_namespace

OVERLAY = str(REPO / "manifests/overlays/devnet")
NAMESPACE = "gpu-provider-system"
PULL_SECRETS = pull_secret_namespace(NAMESPACE)


def _not_terminating(cluster: Cluster, name: str) -> bool:
    try:
        found = client.CoreV1Api(cluster.api).read_namespace(name)
    except client.ApiException as error:
        return error.status == 404
    return bool(found.status.phase != "Terminating")


def test_devnet_overlay_applies_to_a_real_apiserver(cluster: Cluster) -> None:
    # The namespace is an object of the overlay too; a dry run cannot create what the
    # namespaced objects need, so it exists first (as in a GitOps repository's first sync).
    # The chart's tests may have just uninstalled its release: its pull-Secret namespace is
    # terminating until its content is gone, and nothing can be created in it meanwhile.
    wait_for(lambda: _not_terminating(cluster, PULL_SECRETS), f"{PULL_SECRETS} deleted or Active")
    cluster.kubectl("apply", "-f", str(REPO / "manifests/base/namespace.yaml"))
    dry = cluster.kubectl("apply", "-k", OVERLAY, "--dry-run=server")
    assert "deployment.apps/gpu-provider-operator" in dry.stdout
    assert "(server dry run)" in dry.stdout
    apps = client.AppsV1Api(cluster.api)
    assert not [
        d
        for d in apps.list_namespaced_deployment(NAMESPACE).items
        if d.metadata.name == "gpu-provider-operator"
    ]

    cluster.kubectl("apply", "-k", OVERLAY)
    operator = apps.read_namespaced_deployment("gpu-provider-operator", NAMESPACE)
    assert operator.spec.strategy.type == "Recreate"
    agent = apps.read_namespaced_daemon_set("gpu-provider-node-agent", NAMESPACE)
    assert agent.spec.template.spec.runtime_class_name == "nvidia"
    gateway = client.CoreV1Api(cluster.api).read_namespaced_service(
        "gpu-provider-gateway", NAMESPACE
    )
    assert gateway.spec.type == "NodePort"
    settings = client.CoreV1Api(cluster.api).read_namespaced_config_map(
        "gpu-provider-settings", NAMESPACE
    )
    assert "chain_id: 31337" in settings.data["config.yaml"]
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    assert rbac.read_cluster_role("gpu-provider-operator").rules
    assert rbac.read_namespaced_role("gpu-provider-gateway", PULL_SECRETS).rules
    policy = client.AdmissionregistrationV1Api(cluster.api)
    assert policy.read_validating_admission_policy("gpu-provider-gpu-provider-system-confine")
