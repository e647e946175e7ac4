"""The one error the devnet tooling raises: a sentence saying what went wrong and what to do."""

from __future__ import annotations


class DevnetError(RuntimeError):
    """A devnet command cannot go on; the message tells the user what to do next.

    The CLI prints the message and exits non-zero; it never shows a traceback for these.
    """
