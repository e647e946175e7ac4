"""A tenant, written only from Spheron's SDK shapes, against the real gateway process.

Story: the operator has taken in a lease (a GpuLease made by `build_gpulease`); the tenant
PUTs the README's manifest with an `Auth-Spheron` header signed by the devnet tenant's key.
Wrong signers, stale tokens, other tenants, manifests asking for more than the order or for
unknown (privileged) fields are refused with a JSON reason and nothing stored; the valid one
is stored once (exactly 200), its credentials in a Secret, and the tenant reads its status.
"""

from __future__ import annotations

import base64
import copy
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from kubernetes import client
from tests.tenant_gateway.sdk import README_MANIFEST

from e2e.gateway.process import NO_VERIFY, Gateway
from e2e.tenant_gateway.conftest import TENANT, TENANT_2, MakeLease
from gpu_provider.gateway.leasestatus import SERVICE_LABEL
from gpu_provider.market.auth import AUTH_HEADER, build_auth_header
from gpu_provider.render.labels import LEASE_ID_LABEL
from gpu_provider.render.pullsecret import pull_secret_namespace

SDK_SERVICE_KEYS = {
    "name",
    "available",
    "total",
    "uris",
    "observed_generation",
    "replicas",
    "updated_replicas",
    "ready_replicas",
    "available_replicas",
}


def signed(key: Any = None, *, at: float | None = None) -> dict[str, str]:
    now = int(time.time() if at is None else at)
    return {AUTH_HEADER: build_auth_header(bytes(key or TENANT.key), now=now)}


def call(
    gateway: Gateway,
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(
        gateway.url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, context=NO_VERIFY, timeout=10) as response:
            text = response.read()
            kind = response.headers.get("Content-Type", "")
            return response.status, json.loads(
                text
            ) if "json" in kind and "nd" not in kind else text
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def manifest_path(lease: dict[str, Any]) -> str:
    return f"/deployment/{lease['spec']['leaseId']}/manifest"


def test_a_wrong_signer_a_stale_token_and_no_token_are_401(
    gateway: Gateway, make_lease: MakeLease, read_lease: Callable[[str], Any]
) -> None:
    lease = make_lease()
    path = manifest_path(lease)
    for headers, reason in [
        (signed(TENANT_2.key), "WrongSigner"),
        (signed(at=time.time() - 60), "Expired"),
        (signed(at=time.time() + 600), "FromTheFuture"),
        ({}, "MissingHeader"),
        ({AUTH_HEADER: "bm90IGEgdG9rZW4="}, "Malformed"),
    ]:
        status, answer = call(gateway, "PUT", path, body=README_MANIFEST, headers=headers)
        assert status == 401, (reason, answer)
        assert f"({reason})" in answer["error"]["message"]
    assert "manifest" not in read_lease(lease["metadata"]["name"])["spec"]


def test_another_tenants_lease_and_an_unknown_lease(
    gateway: Gateway, make_lease: MakeLease
) -> None:
    theirs = make_lease(tenant=TENANT_2.address)
    status, answer = call(
        gateway, "PUT", manifest_path(theirs), body=README_MANIFEST, headers=signed()
    )
    assert status == 401
    assert "not the tenant of lease" in answer["error"]["message"]
    status, _ = call(
        gateway, "GET", f"/lease/{theirs['spec']['leaseId']}/1/1/status", headers=signed()
    )
    assert status == 401
    status, answer = call(
        gateway, "PUT", "/deployment/1/manifest", body=README_MANIFEST, headers=signed()
    )
    assert status == 404
    assert "lease 1 is not a lease of this provider" in answer["error"]["message"]


def test_two_gpus_on_a_one_gpu_order_is_422_and_nothing_is_stored(
    gateway: Gateway, make_lease: MakeLease, read_lease: Callable[[str], Any]
) -> None:
    lease = make_lease()
    body = copy.deepcopy(README_MANIFEST)
    body[0]["services"][0]["resources"]["gpu"]["units"]["val"] = "2"
    status, answer = call(gateway, "PUT", manifest_path(lease), body=body, headers=signed())
    assert status == 422
    assert "asks for 2 GPUs per replica; the order has 1" in answer["error"]["message"]
    stored = read_lease(lease["metadata"]["name"])
    assert "manifest" not in stored["spec"]
    assert stored["metadata"]["resourceVersion"] == lease["metadata"]["resourceVersion"]


def test_privileged_unknown_fields_and_latest_images_are_422(
    gateway: Gateway, make_lease: MakeLease, read_lease: Callable[[str], Any]
) -> None:
    lease = make_lease()
    for change, words in [
        ({"privileged": True}, "privileged: unknown field"),
        ({"volumes": [{"hostPath": {"path": "/"}}]}, "volumes: unknown field"),
        ({"image": "quay.io/jupyter/pytorch-notebook:latest"}, "tag latest"),
    ]:
        body = copy.deepcopy(README_MANIFEST)
        body[0]["services"][0].update(change)
        status, answer = call(gateway, "PUT", manifest_path(lease), body=body, headers=signed())
        assert status == 422, answer
        assert words in answer["error"]["message"]
    status, answer = call(gateway, "PUT", manifest_path(lease), raw=b"{not json", headers=signed())
    assert status == 400
    assert "not valid JSON" in answer["error"]["message"]
    status, answer = call(
        gateway, "PUT", manifest_path(lease), raw=b"[" + b" " * (1 << 20) + b"]", headers=signed()
    )
    assert status == 413
    assert answer["error"]["message"]
    assert "manifest" not in read_lease(lease["metadata"]["name"])["spec"]


def test_the_readme_manifest_is_stored_once_with_its_credentials_in_a_secret(
    gateway: Gateway,
    make_lease: MakeLease,
    read_lease: Callable[[str], Any],
    core: client.CoreV1Api,
    lease_namespace: str,
) -> None:
    lease = make_lease()
    name = lease["metadata"]["name"]
    body = copy.deepcopy(README_MANIFEST)
    body[0]["services"][0]["credentials"] = {
        "host": "quay.io",
        "username": "tenant",
        "password": "s3cr3t-pw",
        "email": "",
    }
    status, answer = call(gateway, "PUT", manifest_path(lease), body=body, headers=signed())
    assert status == 200, answer
    assert answer["changed"] is True
    stored = read_lease(name)
    manifest = stored["spec"]["manifest"]
    assert manifest["sha256"] == answer["sha256"]
    (service,) = manifest["services"]
    assert (service["name"], service["replicas"]) == ("py-cuda", 1)
    assert service["imagePullSecret"] == f"{name}-pull-py-cuda"
    assert "s3cr3t" not in json.dumps(stored)
    # In the pull-Secret namespace, not next to the wallet (render/pullsecret.py).
    pulls = pull_secret_namespace(lease_namespace)
    secret = core.read_namespaced_secret(service["imagePullSecret"], pulls)
    config = json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))
    assert config["auths"]["quay.io"]["password"] == "s3cr3t-pw"
    assert secret.metadata.labels[LEASE_ID_LABEL] == str(lease["spec"]["leaseId"])

    # Re-sent (a retry, same token and body; then a fresh token): 200, and no write.
    headers = signed()
    for _ in range(2):
        status, again = call(gateway, "PUT", manifest_path(lease), body=body, headers=headers)
        assert (status, again["changed"]) == (200, False)
    assert read_lease(name)["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    # The same token with another body is a replay.
    other = copy.deepcopy(body)
    other[0]["services"][0]["env"] = ["JUPYTER_TOKEN=other"]
    status, refused = call(gateway, "PUT", manifest_path(lease), body=other, headers=headers)
    assert status == 401
    assert "(Replayed)" in refused["error"]["message"]

    # A different manifest (POST works too) replaces it; without credentials the Secret goes.
    time.sleep(1.1)  # a token signed in another second (tokens are deterministic per second)
    del other[0]["services"][0]["credentials"]
    status, replaced = call(gateway, "POST", manifest_path(lease), body=other, headers=signed())
    assert (status, replaced["changed"]) == (200, True)
    after = read_lease(name)["spec"]["manifest"]
    assert after["sha256"] == replaced["sha256"] != manifest["sha256"]
    assert after["services"][0]["env"] == [{"name": "JUPYTER_TOKEN", "value": "other"}]
    assert "imagePullSecret" not in after["services"][0]
    assert not core.list_namespaced_secret(
        pulls, label_selector=f"gpuprovider.dev/lease-id={lease['spec']['leaseId']}"
    ).items


def test_a_closed_lease_takes_no_manifest(gateway: Gateway, make_lease: MakeLease) -> None:
    lease = make_lease(phase="Closed")
    status, answer = call(
        gateway, "PUT", manifest_path(lease), body=README_MANIFEST, headers=signed()
    )
    assert status == 410
    assert "is Closed" in answer["error"]["message"]


def test_the_status_json_has_the_keys_the_sdk_reads(
    gateway: Gateway,
    make_lease: MakeLease,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
) -> None:
    lease = make_lease()
    lease_id = lease["spec"]["leaseId"]
    assert (
        call(gateway, "PUT", manifest_path(lease), body=README_MANIFEST, headers=signed())[0] == 200
    )
    # What the GpuLease controller will create: the namespace, a Deployment, a NodePort.
    namespace = f"lease-{lease_id}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        labels = {SERVICE_LABEL: "py-cuda", "app": f"py-cuda-{lease_id}"}
        client.AppsV1Api(api_client).create_namespaced_deployment(
            namespace,
            {
                "metadata": {"name": "py-cuda", "labels": labels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [
                                {"name": "main", "image": "quay.io/jupyter/pytorch-notebook:cuda12"}
                            ]
                        },
                    },
                },
            },
        )
        core.create_namespaced_service(
            namespace,
            {
                "metadata": {"name": "py-cuda-np", "labels": labels},
                "spec": {
                    "type": "NodePort",
                    "selector": labels,
                    "ports": [{"port": 8888, "targetPort": 8888, "protocol": "TCP"}],
                },
            },
        )
        path = f"/lease/{lease_id}/1/1/status"
        status, document = call(gateway, "GET", path, headers=signed())
        assert status == 200
        assert set(document) == {"services", "forwarded_ports"}
        assert set(document["services"]["py-cuda"]) == SDK_SERVICE_KEYS
        (port,) = document["forwarded_ports"]["py-cuda"]
        assert set(port) == {"host", "port", "externalPort", "proto", "name"}
        assert (port["host"], port["port"], port["proto"]) == ("gpu.example.com", 8888, "TCP")
        assert 30000 <= port["externalPort"] <= 32767
        status, one = call(
            gateway, "GET", f"/lease/{lease_id}/1/1/service/py-cuda/status", headers=signed()
        )
        assert (status, set(one)) == (200, SDK_SERVICE_KEYS)
        assert one["total"] == 1
        status, _ = call(
            gateway, "GET", f"/lease/{lease_id}/1/1/service/nope/status", headers=signed()
        )
        assert status == 404
        status, events = call(
            gateway,
            "GET",
            f"/lease/{lease_id}/1/1/kubeevents?follow=false&tail=50",
            headers=signed(),
        )
        assert status == 200
        assert isinstance(events, bytes)  # NDJSON lines (kwok may have made some events)
        for line in events.splitlines():
            assert {"type", "reason", "note", "object"} <= set(json.loads(line))
    finally:
        core.delete_namespace(namespace)


async def test_logs_answer_plain_http_and_a_websocket(
    gateway: Gateway, make_lease: MakeLease
) -> None:
    # kwok runs no containers: the log is empty; this is the plumbing (auth, codes, framing).
    lease = make_lease()
    path = f"/lease/{lease['spec']['leaseId']}/1/1/logs?follow=false&tail=10&startup=false"
    status, text = call(gateway, "GET", path, headers=signed())
    assert (status, text) == (200, b"")
    assert call(gateway, "GET", path.replace("tail=10", "tail=many"), headers=signed())[0] == 400
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(gateway.url + path, ssl=NO_VERIFY, headers=signed()) as ws:
            message = await ws.receive(timeout=10)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 1000
        follow = path.replace("follow=false", "follow=true")
        async with session.ws_connect(gateway.url + follow, ssl=NO_VERIFY, headers=signed()) as ws:
            await ws.close()  # the tenant leaves; the gateway lets go
            assert ws.closed
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(
                gateway.url + path, ssl=NO_VERIFY, headers=signed(TENANT_2.key)
            )
        assert refused.value.status == 401
    status, answer = call(gateway, "GET", path.replace("logs", "shell"), headers=signed())
    assert status == 501
    assert "not available yet" in answer["error"]["message"]


def test_close_marks_the_tenants_open_leases_for_a_chain_check(
    gateway: Gateway, make_lease: MakeLease, read_lease: Callable[[str], Any]
) -> None:
    mine, closed, theirs = (
        make_lease(),
        make_lease(phase="Closed"),
        make_lease(tenant=TENANT_2.address),
    )
    status, answer = call(gateway, "PUT", "/spheron/deployment/close", headers=signed())
    assert status == 200
    assert mine["spec"]["leaseId"] in answer["checking"]
    assert closed["spec"]["leaseId"] not in answer["checking"]
    annotation = "gpuprovider.dev/close-requested-at"
    assert annotation in read_lease(mine["metadata"]["name"])["metadata"]["annotations"]
    assert annotation not in (
        read_lease(theirs["metadata"]["name"])["metadata"].get("annotations") or {}
    )
    assert read_lease(mine["metadata"]["name"]).get("status", {}).get("phase") == "AwaitingManifest"
    assert call(gateway, "PUT", "/spheron/deployment/close", headers={})[0] == 401


SHM_AND_DISK_ORDER = """
name: westcoast
duration: 1h
maxUsdPerHour: "1.00"
services:
  - name: py-cuda
    replicas: 1
    cpu: 8
    memory: 16Gi
    storage:
      - name: data
        size: 200Gi
        class: beta3
        persistent: true
      - name: shm
        size: 8Gi
        class: ram
    gpu:
      units: 1
      models: [rtx4090]
    endpoints:
      - kind: shared-http
"""


def test_the_sdks_single_default_volume_fits_an_order_of_shm_and_disk(
    gateway: Gateway, make_lease: MakeLease, read_lease: Callable[[str], Any]
) -> None:
    # The SDK sends one `default` volume, sized from the order's first, whatever it lists.
    lease = make_lease(order_yaml=SHM_AND_DISK_ORDER)
    assert [v["name"] for v in lease["spec"]["resources"]["services"][0]["storage"]] == [
        "data",
        "shm",
    ]
    status, answer = call(
        gateway, "PUT", manifest_path(lease), body=README_MANIFEST, headers=signed()
    )
    assert status == 200, answer
    assert read_lease(lease["metadata"]["name"])["spec"]["manifest"]["sha256"] == answer["sha256"]


def _event(namespace: str, pod: str, reason: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{pod}.{reason.lower()}"},
        "involvedObject": {"kind": "Pod", "name": pod, "namespace": namespace},
        "reason": reason,
        "message": f"{reason} image",
        "type": "Normal",
        "source": {"component": "kubelet"},
        "lastTimestamp": "2026-12-01T00:00:00Z",
    }


async def test_following_events_over_a_websocket_brings_new_ones(
    gateway: Gateway, make_lease: MakeLease, core: client.CoreV1Api
) -> None:
    lease = make_lease()
    lease_id = lease["spec"]["leaseId"]
    namespace = f"lease-{lease_id}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    core.create_namespaced_event(namespace, _event(namespace, "py-cuda-0", "Pulling"))
    core.create_namespaced_event(namespace, _event(namespace, "other-0", "Ignored"))
    path = f"/lease/{lease_id}/1/1/kubeevents?follow=true&tail=5&service=py-cuda"
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(gateway.url + path, ssl=NO_VERIFY, headers=signed()) as ws,
        ):
            # The event that was there (the other service's is filtered out) ...
            first = json.loads((await ws.receive(timeout=15)).data)
            assert (first["reason"], first["note"]) == ("Pulling", "Pulling image")
            assert first["object"] == {"kind": "Pod", "name": "py-cuda-0"}
            # ... then one that happens while the tenant follows.
            core.create_namespaced_event(namespace, _event(namespace, "py-cuda-0", "Pulled"))
            second = json.loads((await ws.receive(timeout=15)).data)
            assert second["reason"] == "Pulled"
    finally:
        core.delete_namespace(namespace)
