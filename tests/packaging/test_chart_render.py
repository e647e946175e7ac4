"""`helm lint` and `helm template` of charts/gpu-provider: defaults, every toggle, the schema."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_provider.config import load_settings
from tests.packaging.helpers import CHART, REPO, kinds, objects, require, template

EXAMPLE = REPO / "manifests/examples/providernode.yaml"


def pods(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for doc in docs:
        if doc["kind"] in ("Deployment", "DaemonSet"):
            found.append((doc["metadata"]["name"], doc["spec"]["template"]["spec"]))
        elif doc["kind"] == "Pod":
            found.append((doc["metadata"]["name"], doc["spec"]))
    return found


def test_helm_lint_passes() -> None:
    result = subprocess.run(
        [str(require("helm")), "lint", "--strict", str(CHART)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_defaults_render_the_three_processes_and_nothing_optional() -> None:
    found = kinds(objects())
    assert sorted(found["Deployment"]) == ["gp-gpu-provider-gateway", "gp-gpu-provider-operator"]
    assert found["DaemonSet"] == ["gp-gpu-provider-node-agent"]
    assert len(found["CustomResourceDefinition"]) == 2
    for optional in ("Certificate", "NetworkPolicy", "ServiceMonitor", "ProviderNode"):
        assert optional not in found
    assert found["PodDisruptionBudget"] == ["gp-gpu-provider-gateway"]


def test_every_pod_is_hardened() -> None:
    for name, spec in pods(objects()):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name


def test_the_settings_configmap_is_a_valid_settings_file(tmp_path: Path) -> None:
    address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    docs = objects(
        "--set", "config.chain.chain_id=8453", "--set", f"config.chain.contracts.bid={address}"
    )
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    path = tmp_path / "config.yaml"
    path.write_text(cm["data"]["config.yaml"])
    settings = load_settings(path)
    assert settings.chain.chain_id == 8453
    assert settings.chain.contracts.bid == address


@pytest.mark.parametrize(
    ("flags", "kind"),
    [
        (["--set", "networkPolicy.enabled=true"], "NetworkPolicy"),
        (["--set", "metrics.serviceMonitor.enabled=true"], "ServiceMonitor"),
        (["--set", "dashboard.enabled=true"], "ConfigMap"),
        (
            [
                "--set",
                "gateway.tls.mode=certManager",
                "--set",
                "gateway.tls.certManager.issuerRef.name=letsencrypt",
                "--set",
                "gateway.tls.certManager.dnsNames={gpu.example.com}",
            ],
            "Certificate",
        ),
    ],
)
def test_each_toggle_renders_its_object(flags: list[str], kind: str) -> None:
    before = len(kinds(objects()).get(kind, []))
    assert len(kinds(objects(*flags)).get(kind, [])) > before


def test_a_provider_node_from_values() -> None:
    spec = yaml.safe_load(EXAMPLE.read_text())["spec"]
    values = {"providerNode": {"enabled": True, "name": "mine", "spec": spec}}
    docs = objects("--set-json", f"providerNode={__import__('json').dumps(values['providerNode'])}")
    node = next(d for d in docs if d["kind"] == "ProviderNode")
    assert node["metadata"]["name"] == "mine"
    assert node["spec"] == spec


def test_crds_off_and_not_kept() -> None:
    assert "CustomResourceDefinition" not in kinds(objects("--set", "crds.enabled=false"))
    for crd in (d for d in objects("--set", "crds.keep=false") if d["kind"].startswith("Custom")):
        assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {})
    for crd in (d for d in objects() if d["kind"].startswith("Custom")):
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_components_can_be_turned_off() -> None:
    found = kinds(
        objects(
            "--set",
            "gateway.enabled=false",
            "--set",
            "nodeAgent.enabled=false",
            "--set",
            "operator.enabled=false",
        )
    )
    assert "Deployment" not in found
    assert "DaemonSet" not in found
    assert "ServiceAccount" not in found


@pytest.mark.parametrize("service_type", ["LoadBalancer", "NodePort", "ClusterIP"])
def test_gateway_service_type(service_type: str) -> None:
    docs = objects("--set", f"gateway.service.type={service_type}")
    svc = next(
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("gateway")
    )
    assert svc["spec"]["type"] == service_type
    assert svc["spec"]["ports"][0]["port"] == 8443


def test_gateway_behind_a_tls_terminating_ingress_has_no_certificate() -> None:
    docs = objects("--set", "gateway.tls.mode=insecureHttp")
    gw = next(d for d in docs if d["kind"] == "Deployment" and "gateway" in d["metadata"]["name"])
    spec = gw["spec"]["template"]["spec"]
    assert "--insecure-http" in spec["containers"][0]["args"]
    assert "tls" not in [v["name"] for v in spec["volumes"]]


def test_operator_reads_only_its_wallet_and_the_pull_secrets() -> None:
    docs = objects("--set-json", 'wallet.secretNames=["w1","w2"]')
    readers = [
        (d["kind"], d["metadata"].get("namespace"), rule)
        for d in docs
        if d["kind"] in ("Role", "ClusterRole") and d["metadata"]["name"].endswith("operator")
        for rule in d["rules"]
        if "secrets" in rule["resources"] and {"get", "list", "watch"} & set(rule["verbs"])
    ]
    assert readers == [
        (
            "Role",
            "gp-system",
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": ["w1", "w2"],
                "verbs": ["get"],
            },
        ),
        (
            "Role",
            "gp-system-pull-secrets",
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "deletecollection"]},
        ),
    ]


def test_gateway_reads_no_secret() -> None:
    docs = objects()
    rules = [
        rule
        for d in docs
        if d["kind"] in ("Role", "ClusterRole") and d["metadata"]["name"].endswith("gateway")
        for rule in d["rules"]
        if "secrets" in rule["resources"]
    ]
    assert rules == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["create", "patch", "deletecollection"],
        }
    ]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--set", "operator.replicsa=2"], "additional properties 'replicsa' not allowed"),
        (["--set", "imagee.tag=x"], "additional properties 'imagee' not allowed"),
        (["--set", "config.chain.chian_id=1"], "additional properties 'chian_id' not allowed"),
        (["--set", "config.chain.chain_id=0"], "chain_id"),
        (["--set", "gateway.service.type=External"], "type"),
        (
            ["--set", "providerNode.enabled=true", "--set", "providerNode.spec.regoin=x"],
            "regoin",
        ),
    ],
)
def test_the_schema_refuses_unknown_or_bad_values(flags: list[str], message: str) -> None:
    result = template(*flags, check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_helm_test_hook_checks_liveness_and_the_crds() -> None:
    hooks = [d for d in objects() if (d["metadata"].get("annotations") or {}).get("helm.sh/hook")]
    pod = next(d for d in hooks if d["kind"] == "Pod")
    script = pod["spec"]["containers"][0]["args"][0]
    assert "gp-gpu-provider-operator.gp-system.svc:8080/healthz" in script
    assert "providernodes.gpuprovider.dev" in script
    assert "gpuleases.gpuprovider.dev" in script
    assert {d["kind"] for d in hooks} == {
        "Pod",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
    }
    assert "Pod" not in kinds(objects("--set", "tests.enabled=false"))


def test_operator_has_liveness_and_no_readiness_and_agent_only_on_gpu_nodes() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in objects()}
    operator = docs["Deployment", "gp-gpu-provider-operator"]["spec"]
    container = operator["template"]["spec"]["containers"][0]
    assert operator["strategy"] == {"type": "Recreate"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "probe"}
    assert "readinessProbe" not in container
    agent = docs["DaemonSet", "gp-gpu-provider-node-agent"]["spec"]["template"]["spec"]
    assert agent["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert agent["runtimeClassName"] == "nvidia"
    custom = {
        (d["kind"], d["metadata"]["name"]): d
        # Helm merges maps with the default: null removes the default label.
        for d in objects(
            "--set-json", 'nodeAgent.nodeSelector={"gpu": "yes", "nvidia.com/gpu.present": null}'
        )
    }
    spec = custom["DaemonSet", "gp-gpu-provider-node-agent"]["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"gpu": "yes"}
