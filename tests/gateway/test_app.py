"""The gateway's HTTP behaviour: every answer is JSON, errors carry a message."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gpu_provider import __version__
from gpu_provider.gateway.app import create_app
from gpu_provider.gateway.keys import COMMIT_ENV, VersionInfo
from gpu_provider.gateway.public import routes as public_routes


class FixedSource:
    def __init__(self, document: dict[str, Any] | None) -> None:
        self.document = document

    def current(self) -> dict[str, Any] | None:
        return self.document

    def current_json(self) -> bytes | None:
        return None if self.document is None else json.dumps(self.document).encode()


extra = web.RouteTableDef()


@extra.put("/echo-size")
async def echo_size(request: web.Request) -> web.Response:
    return web.json_response({"bytes": len(await request.read())})


@extra.get("/boom")
async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internal detail")


DOCUMENT = {"cluster": {"leases": 0}, "cluster_public_hostname": "gpu.example.com"}


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = create_app(
        FixedSource(DOCUMENT),
        VersionInfo(version="1.2.3", commit="abc123"),
        route_tables=[public_routes, extra],
        max_body_bytes=1024,
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_status_serves_the_current_document(client: TestClient[Any, Any]) -> None:
    response = await client.get("/status")
    assert response.status == 200
    assert await response.json() == DOCUMENT


async def test_version_answers_version_and_commit(client: TestClient[Any, Any]) -> None:
    response = await client.get("/version")
    assert await response.json() == {"version": "1.2.3", "commit": "abc123"}


def test_version_comes_from_the_package_and_the_image_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(COMMIT_ENV, raising=False)
    assert VersionInfo.from_environment() == VersionInfo(__version__, "unknown")
    monkeypatch.setenv(COMMIT_ENV, "5cdd829")
    assert VersionInfo.from_environment().commit == "5cdd829"


async def test_unknown_path_is_a_json_404_with_a_message(client: TestClient[Any, Any]) -> None:
    response = await client.get("/no/such/thing")
    assert response.status == 404
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["error"]["status"] == 404
    assert "/status" in body["error"]["message"]


async def test_wrong_method_is_a_json_405(client: TestClient[Any, Any]) -> None:
    response = await client.post("/status")
    assert response.status == 405
    assert (await response.json())["error"]["message"]
    assert "GET" in response.headers["Allow"]


async def test_a_body_over_the_limit_is_a_json_413(client: TestClient[Any, Any]) -> None:
    small = await client.put("/echo-size", data=b"x" * 100)
    assert await small.json() == {"bytes": 100}
    response = await client.put("/echo-size", data=b"x" * 4096)
    assert response.status == 413
    assert "1024" in (await response.json())["error"]["message"]


async def test_a_crash_is_a_json_500_that_leaks_nothing(client: TestClient[Any, Any]) -> None:
    response = await client.get("/boom")
    assert response.status == 500
    body = await response.json()
    assert "secret" not in body["error"]["message"]
    assert "logged" in body["error"]["message"]


async def test_status_before_the_first_read_is_503_with_retry_after() -> None:
    app = create_app(FixedSource(None), VersionInfo("1", "x"))
    async with TestClient(TestServer(app)) as test_client:
        response = await test_client.get("/status")
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert "retry" in (await response.json())["error"]["message"]
