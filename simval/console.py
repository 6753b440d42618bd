"""The command line's consoles and its user-facing error, shared by every sub-command."""

from __future__ import annotations

from rich.console import Console

__all__ = ["UsageError", "console", "err_console"]

#: Results (tables, paths) go to stdout.
console = Console(stderr=False)
#: Progress, warnings and errors go to stderr.
err_console = Console(stderr=True)


class UsageError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""
