"""`helm install`, `upgrade` and `uninstall` of charts/gpu-provider on a real apiserver, and
least-privilege RBAC checked by acting as the chart's ServiceAccounts.

kwok runs no containers: workloads are checked as objects; the operator itself runs here as a
process authenticated with the chart's operator ServiceAccount token.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from e2e.harness.operator_setup import WALLET_SECRET, wallet_objects
from e2e.harness.stack import LOCAL, apply_objects
from e2e.operator.conftest import (
    PN_GROUP,
    PN_PLURAL,
    PN_VERSION,
    Chain,
    OperatorLauncher,
    condition,
    delete_provider_node,
    example_provider,
    wait_for,
)
from e2e.packaging.conftest import (
    CHART,
    GATEWAY_SA,
    NAMESPACE,
    OPERATOR_SA,
    RELEASE,
    REPO,
    Cluster,
)
from gpu_provider.render.labels import LEASE_ID_LABEL
from gpu_provider.render.pullsecret import pull_secret_namespace

CRDS = ("providernodes.gpuprovider.dev", "gpuleases.gpuprovider.dev")
PULL_SECRETS = pull_secret_namespace(NAMESPACE)
LEASE_NAME = "gpu-provider-operator"  # the chart's default; its Role names it


@pytest.fixture(scope="module")
def release(cluster: Cluster, chain: Chain) -> Iterator[Cluster]:
    # The namespace and the wallet Secret first, as a provider does (NOTES.txt, step 1).
    apply_objects(wallet_objects(chain.state, NAMESPACE), kubeconfig=cluster.kubeconfig)
    cluster.helm("install", RELEASE, str(CHART), "--namespace", NAMESPACE)
    try:
        yield cluster
    finally:
        cluster.helm("uninstall", RELEASE, "--namespace", NAMESPACE, check=False)


def _established(cluster: Cluster, name: str) -> bool:
    crd = client.ApiextensionsV1Api(cluster.api).read_custom_resource_definition(name)
    return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])


def test_install_creates_the_workloads_services_and_crds(release: Cluster) -> None:
    apps = client.AppsV1Api(release.api)
    core = client.CoreV1Api(release.api)
    operator = apps.read_namespaced_deployment(f"{RELEASE}-gpu-provider-operator", NAMESPACE)
    assert operator.spec.replicas == 1
    assert operator.spec.strategy.type == "Recreate"
    container = operator.spec.template.spec.containers[0]
    assert container.args == ["run"]
    assert container.liveness_probe.http_get.path == "/healthz"
    assert container.readiness_probe is None
    assert container.security_context.read_only_root_filesystem is True
    assert container.security_context.allow_privilege_escalation is False
    assert container.security_context.capabilities.drop == ["ALL"]
    assert operator.spec.template.spec.security_context.run_as_non_root is True
    assert operator.spec.template.spec.service_account_name == OPERATOR_SA

    gateway = core.read_namespaced_service(f"{RELEASE}-gpu-provider-gateway", NAMESPACE)
    assert [(p.port, p.target_port) for p in gateway.spec.ports] == [(8443, "https")]
    assert gateway.spec.type == "LoadBalancer"

    agent = apps.read_namespaced_daemon_set(f"{RELEASE}-gpu-provider-node-agent", NAMESPACE)
    pod = agent.spec.template.spec
    assert pod.runtime_class_name == "nvidia"
    assert pod.node_selector == {"nvidia.com/gpu.present": "true"}
    env = {e.name: e for e in pod.containers[0].env}
    assert env["NODE_NAME"].value_from.field_ref.field_path == "spec.nodeName"
    assert [p.container_port for p in pod.containers[0].ports] == [9400]

    accounts = {sa.metadata.name for sa in core.list_namespaced_service_account(NAMESPACE).items}
    assert {OPERATOR_SA, GATEWAY_SA, f"{RELEASE}-gpu-provider-node-agent"} <= accounts
    pdb = client.PolicyV1Api(release.api).read_namespaced_pod_disruption_budget(
        f"{RELEASE}-gpu-provider-gateway", NAMESPACE
    )
    assert pdb.spec.max_unavailable == 1
    notes = release.helm("get", "notes", RELEASE, "--namespace", NAMESPACE).stdout
    assert f"create secret generic {WALLET_SECRET}" in notes
    assert "kubectl wait --for=condition=Ready pn --all" in notes
    assert f"no other\nSecret of {NAMESPACE}" in notes
    assert f"namespace\n{PULL_SECRETS}," in notes
    core.read_namespace(PULL_SECRETS)  # the chart made it
    for name in CRDS:
        wait_for(lambda name=name: _established(release, name), f"CRD {name} established")
        crd = client.ApiextensionsV1Api(release.api).read_custom_resource_definition(name)
        assert crd.metadata.annotations["helm.sh/resource-policy"] == "keep"


def test_an_unknown_value_is_refused_and_the_release_is_unchanged(release: Cluster) -> None:
    result = release.helm(
        "upgrade",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--set",
        "operator.replicsa=2",
        check=False,
    )
    assert result.returncode != 0
    assert "additional properties 'replicsa' not allowed" in result.stderr
    history = release.helm("history", RELEASE, "--namespace", NAMESPACE, "-o", "yaml").stdout
    assert len(yaml.safe_load(history)) == 1


def test_every_toggle_the_apiserver_can_check_is_accepted(release: Cluster, tmp_path: Path) -> None:
    """NetworkPolicy, dashboard, ProviderNode, NodePort gateway and plain-HTTP mode, validated
    by the apiserver (a server-side dry run; ServiceMonitor and Certificate need the Prometheus
    operator's and cert-manager's CRDs, which this cluster does not have)."""
    spec = yaml.safe_load((REPO / "manifests/examples/providernode.yaml").read_text())["spec"]
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "crds": {"enabled": False},
                "tests": {"enabled": False},
                "networkPolicy": {"enabled": True},
                "dashboard": {"enabled": True},
                "providerNode": {"enabled": True, "name": "from-values", "spec": spec},
                "gateway": {"service": {"type": "NodePort"}, "tls": {"mode": "insecureHttp"}},
            }
        )
    )
    rendered = release.helm(
        "template", "toggles", str(CHART), "--namespace", NAMESPACE, "-f", str(values)
    ).stdout
    path = tmp_path / "rendered.yaml"
    path.write_text(rendered)
    result = release.kubectl("apply", "--dry-run=server", "-f", str(path))
    assert "networkpolicy.networking.k8s.io/toggles-gpu-provider-operator created" in result.stdout
    assert "providernode.gpuprovider.dev/from-values created" in result.stdout


def _sa_config(cluster: Cluster, name: str, tmp_path: Path) -> Path:
    return cluster.service_account_kubeconfig(NAMESPACE, name, tmp_path / f"{name}.kubeconfig")


def can_i(cluster: Cluster, kubeconfig: Path, *args: str) -> bool:
    result = cluster.kubectl("auth", "can-i", *args, check=False, kubeconfig=kubeconfig)
    return result.stdout.strip() == "yes"


def test_operator_service_account_has_what_it_needs(release: Cluster, tmp_path: Path) -> None:
    kc = _sa_config(release, OPERATOR_SA, tmp_path)
    for args in (
        ("watch", "nodes"),
        ("list", "pods", "--all-namespaces"),
        ("patch", "providernodes.gpuprovider.dev"),
        ("patch", "providernodes.gpuprovider.dev", "--subresource=status"),
        ("create", "gpuleases.gpuprovider.dev", "-n", NAMESPACE),
        ("create", "events", "-n", "default"),
        ("get", f"secret/{WALLET_SECRET}", "-n", NAMESPACE),
        ("update", f"leases.coordination.k8s.io/{LEASE_NAME}", "-n", NAMESPACE),
        ("create", "namespaces"),
        ("patch", "configmaps/gpu-provider-bids-x", "-n", NAMESPACE),
        ("create", "networkpolicies", "-n", "lease-7"),
        ("create", "deployments", "-n", "lease-7"),
        ("create", "secrets", "-n", "lease-7"),
        ("deletecollection", "secrets", "-n", "lease-7"),
        ("get", "secret/lease-7-pull-web", "-n", PULL_SECRETS),
        ("deletecollection", "secrets", "-n", PULL_SECRETS),
    ):
        assert can_i(release, kc, *args), args


def test_operator_service_account_is_refused_the_rest(release: Cluster, tmp_path: Path) -> None:
    kc = _sa_config(release, OPERATOR_SA, tmp_path)
    core = client.CoreV1Api(release.api)
    core.create_namespaced_secret(
        NAMESPACE, {"metadata": {"name": "someone-elses"}, "stringData": {"k": "v"}}
    )
    for args in (
        ("get", "secret/someone-elses", "-n", NAMESPACE),
        ("list", "secrets", "-n", NAMESPACE),
        ("get", "secrets", "-n", "lease-7"),
        ("list", "secrets", "-n", "lease-7"),
        ("list", "secrets", "-n", PULL_SECRETS),
        ("watch", "secrets", "-n", PULL_SECRETS),
        ("get", "secrets", "-n", "kube-system"),
        ("create", "rolebindings", "-n", "lease-7"),
        ("create", "clusterroles"),
        ("update", "leases.coordination.k8s.io/someone-elses-lease", "-n", NAMESPACE),
        ("create", "pods/exec", "-n", "lease-7"),
        ("delete", "nodes"),
    ):
        assert not can_i(release, kc, *args), args

    # For real, as the operator: its wallet yes, another Secret no.
    as_operator = client.CoreV1Api(config.new_client_from_config(str(kc)))
    assert as_operator.read_namespaced_secret(WALLET_SECRET, NAMESPACE).data
    with pytest.raises(client.ApiException) as refused:
        as_operator.read_namespaced_secret("someone-elses", NAMESPACE)
    assert refused.value.status == 403


def test_lease_namespace_writes_are_confined_by_the_admission_policy(
    release: Cluster, tmp_path: Path
) -> None:
    as_operator = config.new_client_from_config(str(_sa_config(release, OPERATOR_SA, tmp_path)))
    core, apps = client.CoreV1Api(as_operator), client.AppsV1Api(as_operator)
    lease_ns = f"lease-{uuid.uuid4().int % 10**6}"
    deployment = {
        "metadata": {"name": "w"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }

    def denied(call: Any, *args: Any) -> str:
        with pytest.raises(client.ApiException) as refused:
            call(*args)
        assert refused.value.status in (403, 422), refused.value.body
        return str(refused.value.body)

    # The admission policy is in force once the apiserver has loaded it: poll.
    admin = client.CoreV1Api(release.api)

    def refused_evil() -> str | None:
        try:
            core.create_namespace({"metadata": {"name": "evil"}})
        except client.ApiException as error:
            return str(error.body) if "gpu-provider may only" in str(error.body) else None
        admin.delete_namespace("evil")  # created before the policy was loaded: try again
        return None

    wait_for(refused_evil, "the admission policy refusing a non-lease namespace")
    core.create_namespace({"metadata": {"name": lease_ns}})
    apps.create_namespaced_deployment(lease_ns, deployment)
    assert "gpu-provider may only write" in denied(
        apps.create_namespaced_deployment, "default", deployment
    )
    assert "gpu-provider may only write" in denied(
        core.create_namespaced_secret, "kube-system", {"metadata": {"name": "x"}}
    )
    admin.create_namespace({"metadata": {"name": "bystander"}})
    assert "gpu-provider may only" in denied(core.delete_namespace, "bystander")
    admin.delete_namespace("bystander")
    core.delete_namespace(lease_ns)


def test_gateway_and_agent_service_accounts(release: Cluster, tmp_path: Path) -> None:
    gw = _sa_config(release, GATEWAY_SA, tmp_path)
    assert can_i(release, gw, "list", "nodes")
    assert can_i(release, gw, "patch", "gpuleases.gpuprovider.dev", "-n", NAMESPACE)
    assert can_i(release, gw, "get", "pods/log", "-n", "lease-7")
    assert not can_i(release, gw, "create", "gpuleases.gpuprovider.dev", "-n", NAMESPACE)
    assert not can_i(release, gw, "get", "secrets", "-n", "lease-7")
    # Tenants' pull Secrets: written and pruned in their own namespace, never read or listed;
    # no Secret of the release namespace (the wallet's) is within its reach.
    for verb in ("create", "patch", "deletecollection"):
        assert can_i(release, gw, verb, "secrets", "-n", PULL_SECRETS), verb
    for verb in ("get", "list", "watch"):
        assert not can_i(release, gw, verb, "secrets", "-n", PULL_SECRETS), verb
    for verb in ("get", "list", "create", "patch", "delete", "deletecollection"):
        assert not can_i(release, gw, verb, "secrets", "-n", NAMESPACE), verb
    assert not can_i(release, gw, "patch", "providernodes.gpuprovider.dev")
    agent = _sa_config(release, f"{RELEASE}-gpu-provider-node-agent", tmp_path)
    assert can_i(release, agent, "patch", "nodes")
    assert not can_i(release, agent, "list", "pods", "--all-namespaces")
    assert not can_i(release, agent, "get", "secrets", "-n", NAMESPACE)


def test_operator_registers_the_provider_with_the_chart_service_account(
    release: Cluster, chain: Chain, tmp_path: Path
) -> None:
    kc = _sa_config(release, OPERATOR_SA, tmp_path)
    logs = LOCAL / f"e2e-packaging-{uuid.uuid4().hex[:6]}"
    logs.mkdir(parents=True)
    launcher = OperatorLauncher(kc, chain, logs, LEASE_NAME)
    custom = client.CustomObjectsApi(release.api)
    try:
        operator = launcher.start()
        custom.create_cluster_custom_object(
            PN_GROUP, PN_VERSION, PN_PLURAL, example_provider("chart-provider")
        )
        # Either it gets Ready, or a refusal shows in its log (no need to wait out the timeout).
        wait_for(
            lambda: (
                condition(custom, "chart-provider", "Ready").get("status") == "True"
                or "Forbidden" in operator.log()
            ),
            "the ProviderNode Ready with the operator as the chart's ServiceAccount",
            timeout=120,
        )
        assert condition(custom, "chart-provider", "Registered")["status"] == "True"
        log = operator.log()
        assert "Forbidden" not in log, log[-3000:]
        assert "403" not in log, log[-3000:]
    finally:
        launcher.stop_all()
        try:
            custom.delete_cluster_custom_object(PN_GROUP, PN_VERSION, PN_PLURAL, "chart-provider")
            custom.patch_cluster_custom_object(
                PN_GROUP,
                PN_VERSION,
                PN_PLURAL,
                "chart-provider",
                {"metadata": {"finalizers": None}},
            )
        except client.ApiException:
            pass


def _lease_steps(kubeconfig: Path) -> list[str]:
    """A lease's objects applied, pruned and its namespace deleted with the operator's own
    kube code, authenticated as `kubeconfig`; the steps that were refused, by name."""
    import asyncio

    from tests.render.leasefixtures import DEFAULTS, NETWORK, credentials_lease

    from gpu_provider.kube.apply import apply_objects, delete_namespace, prune_objects
    from gpu_provider.kube.client import new_api_client
    from gpu_provider.render.objects import render_lease_objects

    spec, placement, stored = credentials_lease()
    objects = render_lease_objects(spec, placement, DEFAULTS, NETWORK, pull_secrets=stored)
    ordered = [o for o in objects.ordered() if o["kind"] not in ("Deployment", "StatefulSet")]
    namespace = objects.namespace["metadata"]["name"]
    refused = []

    async def steps() -> None:
        api = new_api_client(kubeconfig)
        try:
            await apply_objects(api, ordered)
            try:
                await prune_objects(api, namespace, f"{LEASE_ID_LABEL}={spec.lease_id}", ordered)
            except client.ApiException as error:
                refused.append(f"prune: {error.status}")
            await delete_namespace(api, namespace)
        finally:
            api.close()

    asyncio.run(steps())
    return refused


def test_lease_objects_are_applied_as_the_operator_service_account(
    release: Cluster, tmp_path: Path
) -> None:
    """The GpuLease controller's writes (namespace, quota, policies, ServiceAccount, pull
    Secret, Services) and its prune (Secrets by one deletecollection, never a list) pass RBAC
    and the admission policy with the chart's defaults."""
    kc = _sa_config(release, OPERATOR_SA, tmp_path)
    assert _lease_steps(kc) == []


def test_the_lease_flow_runs_as_the_chart_service_account(
    release: Cluster, chain: Chain, tmp_path: Path
) -> None:
    """The operator, authenticated as the chart's ServiceAccount, deploys a GpuLease whose
    manifest names a tenant's pull Secret (stored where the gateway stores it) and tears it
    down on Closing, with no request refused."""
    from e2e.workload.conftest import Leases, new_lease_id, readme
    from gpu_provider.render.namespace import lease_namespace_name
    from gpu_provider.render.pullsecret import pull_secret_name

    kc = _sa_config(release, OPERATOR_SA, tmp_path)
    logs = LOCAL / f"e2e-packaging-lease-{uuid.uuid4().hex[:6]}"
    logs.mkdir(parents=True)
    launcher = OperatorLauncher(kc, chain, logs, LEASE_NAME)
    custom = client.CustomObjectsApi(release.api)
    core, apps = client.CoreV1Api(release.api), client.AppsV1Api(release.api)
    networking = client.NetworkingV1Api(release.api)
    pn = "chart-lease-provider"
    lease_id = new_lease_id()
    namespace = lease_namespace_name(lease_id)
    pull = pull_secret_name(lease_id, "py-cuda")
    leases = Leases(custom, NAMESPACE, pn)
    try:
        operator = launcher.start()
        custom.create_cluster_custom_object(PN_GROUP, PN_VERSION, PN_PLURAL, example_provider(pn))
        # The tenant's credentials, where the gateway keeps them (render/pullsecret.py).
        core.create_namespaced_secret(
            PULL_SECRETS,
            {
                "metadata": {"name": pull, "labels": {LEASE_ID_LABEL: str(lease_id)}},
                "type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": '{"auths":{}}'},
            },
        )
        spec, placement = readme(lease_id)
        name = leases.create(spec, placement, with_manifest=False)
        manifest = spec.to_wire()["manifest"]
        manifest["services"][0]["imagePullSecret"] = pull
        leases.write_manifest(name, manifest)

        def deployed() -> bool:
            phase = leases.status(name).get("phase")
            return phase in ("Deploying", "Running") or "Forbidden" in operator.log()

        wait_for(deployed, "the lease deployed by the chart's operator", timeout=90)
        wait_for(
            lambda: (
                apps.list_namespaced_deployment(namespace).items or "Forbidden" in operator.log()
            ),
            "the lease's workload",
            timeout=60,
        )
        assert core.read_namespaced_resource_quota("lease", namespace).spec.hard
        assert networking.list_namespaced_network_policy(namespace).items
        copied = core.read_namespaced_secret(pull, namespace)  # the pull Secret, copied
        assert copied.type == "kubernetes.io/dockerconfigjson"

        leases.patch_status(name, {"phase": "Closing", "closeReason": "TenantClosed"})
        wait_for(
            lambda: leases.status(name).get("phase") == "Closed" or "Forbidden" in operator.log(),
            "the lease Closed",
            timeout=120,
        )
        assert leases.status(name).get("phase") == "Closed", operator.log()[-3000:]
        with pytest.raises(client.ApiException) as gone:
            core.read_namespace(namespace)
        assert gone.value.status == 404
        # Its stored credentials went with it (they cannot be owned across namespaces).
        assert not core.list_namespaced_secret(
            PULL_SECRETS, label_selector=f"{LEASE_ID_LABEL}={lease_id}"
        ).items
        log = operator.log()
        assert "Forbidden" not in log, log[-3000:]
        assert " 403" not in log, log[-3000:]
    finally:
        launcher.stop_all()
        delete_provider_node(custom, pn)


def test_upgrade_with_a_changed_crd_updates_it(release: Cluster, tmp_path: Path) -> None:
    changed = tmp_path / "gpu-provider"
    shutil.copytree(CHART, changed)
    crd_file = changed / "files/crds/providernodes.gpuprovider.dev.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    crd["spec"]["versions"][0]["additionalPrinterColumns"].append(
        {"name": "Upgraded", "type": "string", "jsonPath": ".spec.region"}
    )
    crd_file.write_text(yaml.safe_dump(crd, sort_keys=False))
    release.helm("upgrade", RELEASE, str(changed), "--namespace", NAMESPACE)
    ext = client.ApiextensionsV1Api(release.api)
    columns = (
        ext.read_custom_resource_definition(CRDS[0]).spec.versions[0].additional_printer_columns
    )
    assert "Upgraded" in [c.name for c in columns]
    release.helm("upgrade", RELEASE, str(CHART), "--namespace", NAMESPACE)
    columns = (
        ext.read_custom_resource_definition(CRDS[0]).spec.versions[0].additional_printer_columns
    )
    assert "Upgraded" not in [c.name for c in columns]


def test_uninstall_keeps_the_crds(release: Cluster) -> None:
    release.helm("uninstall", RELEASE, "--namespace", NAMESPACE)
    apps = client.AppsV1Api(release.api)
    wait_for(
        lambda: not apps.list_namespaced_deployment(NAMESPACE).items,
        "the release's Deployments gone",
        timeout=30,
    )
    for name in CRDS:
        assert _established(release, name), name
    # Served still: the lease records a provider keeps are not lost with the release.
    client.CustomObjectsApi(release.api).list_cluster_custom_object(PN_GROUP, PN_VERSION, PN_PLURAL)
