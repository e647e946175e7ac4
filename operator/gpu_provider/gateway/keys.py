"""What route handlers find on the application: typed keys and the interfaces behind them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Final, Protocol

from aiohttp import web

from gpu_provider import __version__

__all__ = ["COMMIT_ENV", "STATUS_SOURCE", "VERSION_INFO", "StatusSource", "VersionInfo"]

COMMIT_ENV: Final = "GPU_PROVIDER_COMMIT"
"""Set by the image build (`--build-arg`/`ENV`) to the git commit the image was built from."""


class StatusSource(Protocol):
    def current(self) -> dict[str, Any] | None:
        """The latest `/status` document, or None before the first inventory is read."""
        ...

    def current_json(self) -> bytes | None:
        """`current()` serialised once per change: at 1,000 Nodes the body is ~1.3 MB and
        encoding it takes longer than the rest of the request."""
        ...


@dataclass(frozen=True)
class VersionInfo:
    version: str
    commit: str

    @classmethod
    def from_environment(cls) -> VersionInfo:
        return cls(version=__version__, commit=os.environ.get(COMMIT_ENV) or "unknown")


STATUS_SOURCE: Final = web.AppKey("status_source", StatusSource)
VERSION_INFO: Final = web.AppKey("version_info", VersionInfo)
