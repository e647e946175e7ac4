"""The API client type the rest of the operator passes around without importing `kubernetes`.

Only `gpu_provider.kube` imports the `kubernetes` package (import-linter enforces it for the
controllers), so a handle to the apiserver travels as this alias.
"""

from __future__ import annotations

from kubernetes.client import ApiClient

__all__ = ["ApiClient"]
