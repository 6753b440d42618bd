"""When and with what: the UTC time stamp and the installed package versions that records,
manifests, metrics, reports and comparisons write."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata

__all__ = ["now_utc", "package_version", "versions"]


def now_utc(timespec: str = "seconds") -> str:
    """Current UTC time, ISO 8601 (``2026-12-04T21:50:27+00:00``; ``timespec`` as
    :meth:`datetime.datetime.isoformat`)."""
    return datetime.now(UTC).isoformat(timespec=timespec)


def package_version(name: str, missing: str = "not installed") -> str:
    """Installed version of a distribution, or ``missing``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return missing


def versions(packages: Iterable[str], *, python: bool = False,
             missing: str = "not installed") -> dict[str, str]:
    """``{package: version}`` of ``packages`` (and ``python`` first if asked)."""
    out = {"python": platform.python_version()} if python else {}
    out.update({name: package_version(name, missing) for name in packages})
    return out
