"""The one manifest model: the body exactly as Spheron's SDK PUTs it, quirks and all."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_provider.api.manifest import Manifest, ManifestError, parse_manifest
from gpu_provider.api.manifest_fit import order_mismatch
from gpu_provider.api.v1alpha1.gpulease import LeaseManifest
from gpu_provider.devnet.orderfile import parse_order_yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"

# The minimal example from Spheron's protocol notes, byte for byte as the SDK sends it.
README_EXAMPLE = (
    '[{"name":"westcoast","services":[{"name":"py-cuda",'
    '"image":"quay.io/jupyter/pytorch-notebook:cuda12-pytorch-2.4.1",'
    '"env":["JUPYTER_TOKEN=sentient"],"resources":{"id":1,"cpu":{"units":{"val":"8000"}},'
    '"memory":{"size":{"val":"17179869184"}},"storage":[{"name":"default",'
    '"size":{"val":"214748364800"},"attributes":[]}],'
    '"gpu":{"units":{"val":"1"},"attributes":[{"key":"vendor/nvidia/model/rtx4090",'
    '"value":"true"}]},"endpoints":[{"kind":1,"sequence_number":0}]},"count":1,'
    '"expose":[{"port":8888,"externalPort":8888,"proto":"TCP","service":"","global":true,'
    '"hosts":null,"httpOptions":{"maxBodySize":1048576,"readTimeout":60000,'
    '"sendTimeout":60000,"nextTries":3,"nextTimeout":0,"nextCases":["error","timeout"]},'
    '"ip":"","endpointSequenceNumber":0}],"params":null}]}]'
)


def _body() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(README_EXAMPLE)
    return data


def _service(body: list[dict[str, Any]]) -> dict[str, Any]:
    service: dict[str, Any] = body[0]["services"][0]
    return service


def test_the_sdks_minimal_example_parses() -> None:
    manifest = parse_manifest(README_EXAMPLE.encode())
    (group,) = manifest.root
    assert group.name == "westcoast"
    (service,) = group.services
    assert (service.name, service.count) == ("py-cuda", 1)
    assert service.env_pairs() == [("JUPYTER_TOKEN", "sentient")]
    assert service.resources.cpu.units.amount == 8000
    assert service.resources.memory.size.amount == 16 * 2**30
    assert [(s.name, s.size.amount) for s in service.resources.storage] == [
        ("default", 200 * 2**30)
    ]
    assert service.resources.gpu is not None
    assert service.resources.gpu.units.amount == 1
    assert service.resources.gpu.models() == ["rtx4090"]
    (expose,) = service.expose
    assert (expose.port, expose.external_port, expose.global_, expose.hosts) == (
        8888,
        8888,
        True,
        [],
    )
    assert expose.http_options is not None
    assert expose.http_options.next_cases == ["error", "timeout"]
    assert service.params is None


def test_to_wire_gives_back_what_was_sent() -> None:
    assert (
        parse_manifest(README_EXAMPLE).to_wire()[0]["services"][0]["expose"][0]["httpOptions"]
        == _body()[0]["services"][0]["expose"][0]["httpOptions"]
    )
    again = parse_manifest(json.dumps(parse_manifest(README_EXAMPLE).to_wire()))
    assert again == parse_manifest(README_EXAMPLE)


def _quirk_single_default_storage(body: list[dict[str, Any]]) -> None:
    # The order lists an shm volume and a persistent one; the manifest sends one `default`.
    _service(body)["params"] = {
        "storage": [
            {"name": "data", "mount": "/data", "readOnly": False},
            {"name": "shm", "mount": "/dev/shm", "readOnly": False},
        ]
    }


def _quirk_port_range(body: list[dict[str, Any]]) -> None:
    expose = _service(body)["expose"][0]
    expose.update({"portRange": "9000-9010", "portRangeAs": "9000-9010", "usePublicPort": True})


def _quirk_nulls(body: list[dict[str, Any]]) -> None:
    service = _service(body)
    service.update({"command": None, "args": None, "credentials": None})
    service["resources"]["gpu"]["attributes"] = None
    service["resources"]["storage"][0]["attributes"] = None


def _quirk_real_count(body: list[dict[str, Any]]) -> None:
    _service(body)["count"] = 3


def _quirk_fractional_size(body: list[dict[str, Any]]) -> None:
    _service(body)["resources"]["storage"][0]["size"]["val"] = "107374182.4"  # 0.1Gi


def _quirk_no_gpu(body: list[dict[str, Any]]) -> None:
    del _service(body)["resources"]["gpu"]


def _quirk_credentials(body: list[dict[str, Any]]) -> None:
    _service(body)["credentials"] = {
        "host": "ghcr.io",
        "username": "tenant",
        "password": "s3cr3t-pw",
        "email": "",
    }
    _service(body)["pull_policy"] = "Always"


@pytest.mark.parametrize(
    "quirk",
    [
        _quirk_single_default_storage,
        _quirk_port_range,
        _quirk_nulls,
        _quirk_real_count,
        _quirk_fractional_size,
        _quirk_no_gpu,
        _quirk_credentials,
    ],
)
def test_sdk_quirks_are_accepted(quirk: Any) -> None:
    body = _body()
    quirk(body)
    manifest = parse_manifest(json.dumps(body))
    assert manifest.services()[0].name == "py-cuda"


def test_quirk_values_are_read_as_the_sdk_means_them() -> None:
    body = _body()
    for quirk in (_quirk_nulls, _quirk_real_count, _quirk_fractional_size, _quirk_port_range):
        quirk(body)
    service = parse_manifest(body).services()[0]
    assert (service.command, service.args, service.count) == ([], [], 3)
    assert service.resources.storage[0].size.amount == 107374183
    expose = service.expose[0]
    assert (expose.port_range, expose.port_range_as, expose.use_public_port) == (
        "9000-9010",
        "9000-9010",
        True,
    )


def _set(path: str, value: Any) -> list[dict[str, Any]]:
    body = _body()
    node: Any = _service(body)
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return body


_DELETE = object()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x"}, "must be a non-empty list of groups"),
        ([], "must be a non-empty list of groups"),
        ("[{", "is not valid JSON"),
        ([{"name": "x", "services": []}], "[0].services: List should have at least 1 item"),
        (_set("image", ""), "[0].services[0].image"),
        (_set("name", "Py_Cuda"), "services[0].name: String should match pattern"),
        (_set("env", ["NOEQUALS"]), "an env entry must be KEY=value"),
        (_set("env", ["1BAD=x"]), "env name '1BAD'"),
        (_set("resources.cpu.units.val", "lots"), "resources.cpu.units.val: must be"),
        (_set("resources.cpu.units.val", "-5"), "resources.cpu.units.val: must be"),
        (_set("resources.memory", _DELETE), "resources.memory: Field required"),
        (_set("count", 0), "count: Input should be greater than or equal to 1"),
        (_set("expose.0.port", 70000), "expose[0].port"),
        (_set("expose.0.proto", "SCTP"), "expose[0].proto"),
        (_set("expose.0.portRange", "a-b"), "must be a port or a range"),
        (_set("params", {"storage": [{"name": "d", "mount": "data"}]}), "mount"),
        (_set("replicas", 2), "replicas: unknown field"),
        (_set("pull_policy", "Sometimes"), "pull_policy"),
    ],
)
def test_bad_manifests_are_refused_naming_the_field(body: Any, message: str) -> None:
    with pytest.raises(ManifestError, match=None) as caught:
        parse_manifest(body if isinstance(body, str) else copy.deepcopy(body))
    assert message in str(caught.value)


def test_service_names_are_unique_across_groups() -> None:
    body = _body()
    body.append(copy.deepcopy(body[0]))
    with pytest.raises(ManifestError, match=r"unique across groups: \['py-cuda'\]"):
        parse_manifest(body)


def test_an_oversized_body_is_refused_before_parsing() -> None:
    with pytest.raises(ManifestError, match="the limit is"):
        parse_manifest(b"[" + b" " * (1024 * 1024) + b"]")


def _example() -> Manifest:
    return parse_manifest(yaml.safe_load((EXAMPLES / "manifest.yaml").read_text()))


def test_the_example_manifest_matches_the_example_order() -> None:
    order = parse_order_yaml((EXAMPLES / "order.yaml").read_text())
    assert order_mismatch(_example(), order.spec) is None


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("resources.cpu.units.val", "8000", "service 'vllm' asks for 8000 millicores"),
        ("resources.gpu.units.val", "2", "service 'vllm' asks for 2 GPUs"),
        ("name", "llm-server", "are not in the order"),
    ],
)
def test_a_manifest_that_is_not_the_orders_is_caught(path: str, value: str, problem: str) -> None:
    order = parse_order_yaml((EXAMPLES / "order.yaml").read_text())
    body = _example().to_wire()
    node: Any = body[0]["services"][0]
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    mismatch = order_mismatch(parse_manifest(body), order.spec)
    assert mismatch is not None
    assert problem in mismatch


def test_the_lease_manifest_is_built_from_the_sdk_manifest() -> None:
    body = _body()
    _quirk_single_default_storage(body)
    _quirk_credentials(body)
    received = datetime(2026, 1, 1, tzinfo=UTC)
    lease = LeaseManifest.from_sdk(parse_manifest(body), received_at=received, sha256="0" * 64)
    (service,) = lease.services
    assert (service.name, service.image) == ("py-cuda", _service(body)["image"])
    assert [(env.name, env.value) for env in service.env] == [("JUPYTER_TOKEN", "sentient")]
    assert [(m.volume, m.path) for m in service.mounts] == [("data", "/data"), ("shm", "/dev/shm")]
    assert [(p.port, p.external_port, p.global_) for p in service.expose] == [(8888, 8888, True)]
    assert "s3cr3t-pw" not in lease.model_dump_json()  # registry credentials are never stored
    assert lease.received_at == received
