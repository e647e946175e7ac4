"""Reading one key of a Secret in the operator's namespace (the wallet, TLS material).

Errors name the Secret and the key and never carry the Secret's data.
"""

from __future__ import annotations

import base64
import binascii

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gpu_provider.kube.client import off_loop

__all__ = ["SecretKeyMissing", "SecretMissing", "read_secret_key"]


class SecretMissing(LookupError):
    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"Secret {namespace}/{name} does not exist")
        self.namespace = namespace
        self.name = name


class SecretKeyMissing(LookupError):
    def __init__(self, namespace: str, name: str, key: str) -> None:
        super().__init__(f"Secret {namespace}/{name} has no key {key!r}")
        self.namespace = namespace
        self.name = name
        self.key = key


async def read_secret_key(api: client.ApiClient, namespace: str, name: str, key: str) -> bytes:
    """The bytes under `key` of Secret `namespace/name`."""
    core = client.CoreV1Api(api)
    try:
        secret = await off_loop(core.read_namespaced_secret, name, namespace)
    except ApiException as error:
        if error.status == 404:
            raise SecretMissing(namespace, name) from None
        raise
    encoded = (secret.data or {}).get(key)
    if encoded is None:
        raise SecretKeyMissing(namespace, name, key)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        # Never quote the value: it is (or was meant to be) key material.
        raise SecretKeyMissing(namespace, name, key) from None
