"""Regenerate what the chart and manifests/ derive from the code (run after `make crds` or a
settings change; tests/packaging fails until the committed copies match):

  charts/gpu-provider/files/crds/*.yaml        copies of crds/
  charts/gpu-provider/values.schema.json       values schema; `config` from the Settings model,
                                               `providerNode.spec` from the ProviderNode CRD
  charts/gpu-provider/dashboards/*.json        the Grafana dashboard
  manifests/base/*.yaml, manifests/install.yaml   `helm template` of the chart (needs helm)

    .venv/bin/python charts/generate.py [--no-manifests]
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "gpu-provider"
sys.path.insert(0, str(REPO / "charts"))

from dashboard import dashboard  # noqa: E402
from render_manifests import render_all  # noqa: E402

Json = dict[str, Any]


def strict(schema: Any) -> Any:
    """additionalProperties: false on every object that lists its properties (typos fail)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def obj(properties: Json, **extra: Any) -> Json:
    return {"type": "object", "additionalProperties": False, "properties": properties, **extra}


STR: Json = {"type": "string"}
BOOL: Json = {"type": "boolean"}
INT: Json = {"type": "integer"}
PORT: Json = {"type": "integer", "minimum": 1, "maximum": 65535}
MAP: Json = {"type": "object", "additionalProperties": {"type": "string"}}
ANY_OBJ: Json = {"type": "object"}  # Kubernetes objects (affinity, resources): the API checks them
LIST_OBJ: Json = {"type": "array", "items": {"type": "object"}}
STR_LIST: Json = {"type": "array", "items": STR}


def settings_schema() -> Json:
    from gpu_provider.config import Settings

    schema: Json = strict(Settings.model_json_schema())
    schema["properties"].pop("namespace")  # always the release namespace
    schema.pop("title", None)
    # An absent key takes the model's default: nothing in `config` is required.
    schema.pop("required", None)
    for definition in schema.get("$defs", {}).values():
        definition.pop("required", None)
    return schema


def provider_node_spec_schema() -> Json:
    from gpu_provider.api.crd import all_crds

    for crd in all_crds():
        if crd["spec"]["names"]["kind"] == "ProviderNode":
            version = crd["spec"]["versions"][0]
            spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
            return strict(copy.deepcopy(spec))  # type: ignore[no-any-return]
    raise LookupError("no ProviderNode CRD")


def pod_common() -> Json:
    return {
        "resources": ANY_OBJ,
        "nodeSelector": MAP,
        "tolerations": LIST_OBJ,
        "affinity": ANY_OBJ,
        "priorityClassName": STR,
        "podAnnotations": MAP,
        "podLabels": MAP,
        "extraEnv": LIST_OBJ,
    }


def values_schema() -> Json:
    settings = settings_schema()
    defs = settings.pop("$defs")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "gpu-provider chart values",
        "$defs": defs,
        **obj(
            {
                "image": obj(
                    {
                        "repository": {"type": "string", "minLength": 1},
                        "tag": STR,
                        "digest": {"type": "string", "pattern": "^(|sha256:[0-9a-f]{64})$"},
                        "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                    }
                ),
                "imagePullSecrets": {
                    "type": "array",
                    "items": obj({"name": STR}, required=["name"]),
                },
                "nameOverride": STR,
                "fullnameOverride": STR,
                "commonLabels": MAP,
                "crds": obj({"enabled": BOOL, "keep": BOOL}),
                "config": settings,
                "chainRpcSecret": obj({"name": STR, "key": {"type": "string", "minLength": 1}}),
                "wallet": obj({"secretNames": STR_LIST, "certificateSecretNames": STR_LIST}),
                "operator": obj(
                    {
                        "enabled": BOOL,
                        "replicas": {"type": "integer", "minimum": 0, "maximum": 3},
                        "liveness": obj(
                            {
                                "initialDelaySeconds": INT,
                                "periodSeconds": INT,
                                "timeoutSeconds": INT,
                                "failureThreshold": INT,
                            }
                        ),
                        "terminationGracePeriodSeconds": INT,
                        **pod_common(),
                    }
                ),
                "leaseNamespaces": obj(
                    {
                        "prefix": {"type": "string", "pattern": "^[a-z0-9-]+-$"},
                        "admissionGuard": BOOL,
                    }
                ),
                "gateway": obj(
                    {
                        "enabled": BOOL,
                        "replicas": {"type": "integer", "minimum": 0},
                        "port": PORT,
                        "refreshSeconds": {"type": "number", "minimum": 0.2, "maximum": 300},
                        "providerNode": STR,
                        "service": obj(
                            {
                                "type": {"enum": ["LoadBalancer", "NodePort", "ClusterIP"]},
                                "port": PORT,
                                "nodePort": {"type": ["integer", "null"]},
                                "loadBalancerIP": STR,
                                "loadBalancerSourceRanges": STR_LIST,
                                "externalTrafficPolicy": {"enum": ["", "Cluster", "Local"]},
                                "annotations": MAP,
                            }
                        ),
                        "tls": obj(
                            {
                                "mode": {"enum": ["secret", "certManager", "insecureHttp"]},
                                "secretName": STR,
                                "certManager": obj(
                                    {
                                        "issuerRef": obj({"name": STR, "kind": STR, "group": STR}),
                                        "dnsNames": STR_LIST,
                                        "duration": STR,
                                        "renewBefore": STR,
                                    }
                                ),
                            }
                        ),
                        "pdb": obj(
                            {"enabled": BOOL, "maxUnavailable": {"type": ["integer", "string"]}}
                        ),
                        **pod_common(),
                    }
                ),
                "nodeAgent": obj(
                    {
                        "enabled": BOOL,
                        "metricsPort": PORT,
                        "interval": {"type": "number", "minimum": 0.1, "maximum": 3600},
                        "ignoreXids": {"type": "array", "items": INT},
                        "runtimeClassName": STR,
                        "runAsUser": INT,
                        "runAsNonRoot": BOOL,
                        **pod_common(),
                    }
                ),
                "serviceAccounts": obj({"annotations": MAP}),
                "metrics": obj(
                    {"serviceMonitor": obj({"enabled": BOOL, "interval": STR, "labels": MAP})}
                ),
                "networkPolicy": obj(
                    {
                        "enabled": BOOL,
                        "apiServer": obj(
                            {"cidrs": STR_LIST, "ports": {"type": "array", "items": PORT}}
                        ),
                        "chainRpc": obj(
                            {"cidrs": STR_LIST, "ports": {"type": "array", "items": PORT}}
                        ),
                        "dns": obj({"namespace": STR, "podLabels": MAP}),
                        "metricsFromNamespaces": MAP,
                    }
                ),
                "dashboard": obj({"enabled": BOOL, "namespace": STR, "labels": MAP}),
                "providerNode": obj(
                    {
                        "enabled": BOOL,
                        "name": STR,
                        "spec": {"anyOf": [provider_node_spec_schema(), obj({})]},
                    }
                ),
                "tests": obj({"enabled": BOOL}),
            }
        ),
    }


def _rows(schema: Json, defs: Json, prefix: str) -> list[str]:
    rows: list[str] = []
    for key, prop in schema.get("properties", {}).items():
        if "$ref" in prop:
            prop = defs[prop["$ref"].rsplit("/", 1)[1]]
        path = f"{prefix}{key}"
        if prop.get("type") == "object" and "properties" in prop and key != "spec":
            rows.extend(_rows(prop, defs, path + "."))
            continue
        kind = prop.get("type") or (
            "one of " + ", ".join(map(str, prop["enum"])) if "enum" in prop else ""
        )
        if "anyOf" in prop:
            kind = " or ".join(str(alt.get("type", "?")) for alt in prop["anyOf"])
        if isinstance(kind, list):
            kind = " or ".join(kind)
        default = prop.get("default", "")
        text = str(prop.get("description", "")).replace("|", "\\|").replace("\n", " ")
        shown = json.dumps(default) if default != "" else ""
        rows.append(f"| `{path}` | {kind} | {shown} | {text} |")
    return rows


def reference() -> str:
    """charts/gpu-provider/README.md: every value and every operator setting, from the schemas."""
    schema = values_schema()
    defs = schema["$defs"]
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    lines = [
        "# gpu-provider chart",
        "",
        "Generated by `charts/generate.py` from `values.yaml`, `values.schema.json` and the",
        "operator's settings model; do not edit. Install and operations: `docs/install.md`,",
        "`docs/provider-guide.md`.",
        "",
        "## Values",
        "",
        "Unknown keys are refused (`additionalProperties: false` everywhere).",
        "",
        "| value | default |",
        "|---|---|",
    ]

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and value and key not in ("config", "resources"):
                walk(value, path + ".")
            else:
                lines.append(f"| `{path}` | `{json.dumps(value)}` |")

    walk(values, "")
    lines += [
        "",
        "## Operator settings (`config`)",
        "",
        "`config` is the settings file of every process (`gpu_provider.config.Settings`),",
        "mounted from a ConfigMap; `GPU_PROVIDER_*` variables (`extraEnv`) override it.",
        "",
        "| key | type | default | what |",
        "|---|---|---|---|",
        *_rows(schema["properties"]["config"], defs, ""),
        "",
    ]
    return "\n".join(lines)


def generated_files() -> dict[Path, str]:
    """Path -> exact committed text of every generated chart file (manifests excluded)."""
    files = {
        CHART / "values.schema.json": json.dumps(values_schema(), indent=2) + "\n",
        CHART / "dashboards" / "gpu-provider.json": json.dumps(dashboard(), indent=2) + "\n",
        CHART / "README.md": reference(),
    }
    for crd in sorted((REPO / "crds").glob("*.yaml")):
        files[CHART / "files" / "crds" / crd.name] = crd.read_text(encoding="utf-8")
    return files


def main(argv: list[str]) -> int:
    crd_dir = CHART / "files" / "crds"
    shutil.rmtree(crd_dir, ignore_errors=True)
    for path, text in generated_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(REPO)}")
    if "--no-manifests" not in argv:
        for path, text in render_all().items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
