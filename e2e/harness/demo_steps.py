"""How `make demo` prints: numbered steps with their timings, tables, and waits with deadlines.

Every wait polls with a deadline; on timeout it prints what it was waiting for, what it saw
last and the tail of the operator's log, and the demo stops with exit status 1.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from e2e.harness.demo_processes import NAMES, Background, log_file

POLL: Final = 0.3


class DemoFailed(Exception):
    """A step did not happen in time; already explained on stdout."""


class Steps:
    """Numbers the steps and prints how long each took and the time since the start."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.number = 0
        self._step_started = self.started
        self._title: str | None = None

    def step(self, title: str, body: str = "") -> None:
        self._close()
        self.number += 1
        self._title = title
        self._step_started = time.monotonic()
        print(f"\n=== {self.number}. {title}  [t+{self.elapsed():.1f} s]", flush=True)
        if body:
            say(body)

    def _close(self) -> None:
        if self._title is not None:
            took = time.monotonic() - self._step_started
            print(f"    ({took:.1f} s)", flush=True)
            self._title = None

    def mark(self) -> str:
        """`[+1.2 s]`: the time since this step started, for what happens within it."""
        return f"[+{time.monotonic() - self._step_started:.1f} s]"

    def done(self) -> float:
        self._close()
        return self.elapsed()

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def say(text: str) -> None:
    print(text.rstrip(), flush=True)


def table(rows: Sequence[Sequence[Any]], indent: str = "  ") -> str:
    """Left-aligned columns; the first row is the header."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join(
        indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def log_tail(lines: int = 30) -> str:
    parts = []
    for name in (*NAMES, "verifier"):  # the verifier approves every offer change
        path = log_file(name)
        if name == "operator" or path.exists():
            shown = lines if name == "operator" else 8
            text = path.read_text(errors="replace") if path.exists() else ""
            tail = "\n".join(text.splitlines()[-shown:]) or "(empty)"
            parts.append(f"--- the last {shown} lines of .local/{name}.log:\n{tail}")
    return "\n".join(parts)


def _timed_out(what: str, within: float, last: object, watched: Sequence[Background]) -> None:
    say(f"\nDEMO FAILED: within {within:.0f} s, {what} did not happen (last seen: {last!r})")
    for process in watched:
        if not process.alive():
            say(f"{process.name} (pid {process.pid}) has exited")
    say(log_tail())
    raise DemoFailed(what)


async def until(
    check: Callable[[], object],
    what: str,
    *,
    within: float,
    watched: Sequence[Background] = (),
) -> Any:
    """Poll `check` (a function or a coroutine function) until it returns something truthy;
    on timeout explain and raise DemoFailed."""
    deadline = time.monotonic() + within
    last: object = None
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        last = value
        if time.monotonic() > deadline or any(not p.alive() for p in watched):
            _timed_out(what, within, last, watched)
        await asyncio.sleep(POLL)
