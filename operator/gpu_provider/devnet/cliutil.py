"""What every `gpu-provider devnet` command shares: options, error lines, the event loop.

Nothing heavy is imported at module level, so `gpu-provider --help` stays fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from gpu_provider.devnet.paths import DEFAULT_STATE_FILE

__all__ = [
    "CONTEXT_SETTINGS",
    "friendly_errors",
    "log_to_stderr",
    "run",
    "state_file_option",
]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def state_file_option(function: F) -> F:
    return click.option(
        "--state-file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=DEFAULT_STATE_FILE,
        show_default=True,
        help="the devnet description `devnet up` writes and every other command reads",
    )(function)


def run(coroutine: Coroutine[Any, Any, T], state_file: Path | None = None) -> T:
    """Run one command's coroutine; its failures become one `Error: ...` line."""
    with friendly_errors(state_file):
        return asyncio.run(coroutine)


@contextlib.contextmanager
def friendly_errors(state_file: Path | None = None) -> Iterator[None]:
    """DevnetError, a lost RPC connection or a file problem become one line and exit status 1."""
    from gpu_provider.chain.errors import ChainError, RpcUnavailable
    from gpu_provider.devnet.errors import DevnetError

    try:
        yield
    except DevnetError as error:
        raise click.ClickException(str(error)) from None
    except RpcUnavailable as error:
        where = f" (described in {state_file})" if state_file else ""
        raise click.ClickException(
            f"lost the connection to the devnet{where}: {error}; is anvil still running?"
        ) from None
    except ChainError as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        what = f"{error.filename}: " if error.filename else ""
        raise click.ClickException(f"{what}{error.strerror or error}") from None


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (test runners swap it per invocation)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def log_to_stderr() -> None:
    logger = logging.getLogger("gpu_provider.devnet")
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
