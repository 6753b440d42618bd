"""What the plugin's items share: the check failure, how it is reported, unique names."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr, TracebackStyle

__all__ = ["CheckItem", "SimvalCheckError", "unique_name"]


class SimvalCheckError(AssertionError):
    """A threshold verdict failed, or the scenario could not be run or evaluated."""


class CheckItem(pytest.Item):
    """A simval item: a :class:`SimvalCheckError` is reported as its message alone."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: TracebackStyle | None = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, SimvalCheckError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)


def unique_name(name: str, used: set[str], path: Path) -> str:
    """``name``, or ``name@<file or directory>`` (then ``name@2``, ...) if ``used`` has it;
    the result is added to ``used``."""
    out, k = name, 1
    if out in used:
        out = f"{name}@{path.stem if path.is_file() else path.name}"
    while out in used:
        k += 1
        out = f"{name}@{k}"
    used.add(out)
    return out
