"""Registry credentials become a pull Secret, and only their Secret's name reaches the lease."""

from __future__ import annotations

import base64
import json

from gpu_provider.api.manifest import parse_manifest
from gpu_provider.api.v1alpha1.gpulease import LeaseManifest
from gpu_provider.render.pullsecret import pull_secrets
from tests.tenant_gateway.sdk import manifest

CREDENTIALS = {"host": "ghcr.io", "username": "acme", "password": "s3cr3t-pw", "email": ""}


def test_credentials_go_to_a_secret_and_the_lease_names_it() -> None:
    parsed = parse_manifest(manifest(credentials=CREDENTIALS))
    secrets = pull_secrets(
        parsed, lease_id=7, tenant="0xAbC", provider_node="p", namespace="ops", owner=None
    )
    body = secrets["py-cuda"]
    assert body["metadata"]["name"] == "lease-7-pull-py-cuda"
    assert body["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(body["data"][".dockerconfigjson"]))
    auth = config["auths"]["ghcr.io"]
    assert base64.b64decode(auth["auth"]) == b"acme:s3cr3t-pw"
    lease = LeaseManifest.from_sdk(parsed, pull_secrets={"py-cuda": "lease-7-pull-py-cuda"})
    assert lease.services[0].image_pull_secret == "lease-7-pull-py-cuda"
    assert "s3cr3t" not in lease.model_dump_json()


def test_no_credentials_no_secret() -> None:
    parsed = parse_manifest(manifest())
    assert pull_secrets(parsed, lease_id=7, tenant="0xabc", provider_node="p", namespace="o") == {}
