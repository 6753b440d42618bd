"""Where pipeline environments live, and the registry that names them.

Layout under the environment directory (``$SIMVAL_ENV_DIR``, else the user data directory
``<user data dir>/simval/envs``)::

    registry.json          {"schema": 1, "envs": {NAME: record, ...}}
    NAME/                  the virtual environment (for environments simval created)
    logs/NAME-create.log   installer output of the last ``create`` of NAME

An environment is usable only once it is in ``registry.json``: ``create`` writes the record
last, atomically (:func:`simval.atomic.write_text`), under an exclusive lock on
``.registry.lock``, so a failed or interrupted install is never registered. Standard
library only (plus :mod:`platformdirs` when installed): the worker imports this module
inside environments that have none of simval's dependencies.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simval.atomic import write_text

ENV_DIR_VAR = "SIMVAL_ENV_DIR"
SCHEMA = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
#: Reserved names inside the environment directory.
_RESERVED = frozenset({"logs", "registry.json"})


class EnvError(RuntimeError):
    """A user-facing problem with an environment (printed without a traceback)."""


class EnvNotFoundError(EnvError, KeyError):
    """No environment of that name is registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def default_env_dir() -> Path:
    """``$SIMVAL_ENV_DIR``, else ``<user data dir>/simval/envs`` (platformdirs when
    installed, else ``~/.local/share/simval/envs``)."""
    env = os.environ.get(ENV_DIR_VAR)
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - simval depends on it; envs may not
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
        return base / "simval" / "envs"
    return Path(platformdirs.user_data_dir("simval")) / "envs"


def check_name(name: str) -> str:
    """``name`` if it is a valid environment name (letters, digits, ``._+-``; 64 at most,
    not starting with punctuation), else :class:`EnvError`."""
    if not _NAME.match(name) or name in _RESERVED:
        raise EnvError(f"invalid environment name {name!r}: use letters, digits and . _ + - "
                       "(at most 64, starting with a letter or digit)")
    return name


@dataclass
class EnvRecord:
    """One registered environment.

    name, path (the environment's prefix), python (its interpreter), python_version,
    spec (the requested jwst requirement; ``""`` for a registered interpreter),
    extra (further requirements installed with it), managed (simval created the directory;
    ``remove`` deletes it), installer (``uv``, ``pip`` or ``registered``), created_utc,
    create_seconds, size_bytes, versions (resolved versions of jwst, crds, stcal,
    stdatamodels, stpipe, ...), freeze (``pip freeze`` lines), simval_install (how simval
    is importable there).
    """

    name: str
    path: str
    python: str
    python_version: str = ""
    spec: str = ""
    extra: list[str] = field(default_factory=list)
    managed: bool = True
    installer: str = ""
    created_utc: str = ""
    create_seconds: float | None = None
    size_bytes: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    freeze: list[str] = field(default_factory=list)
    simval_install: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnvRecord:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def jwst_version(self) -> str:
        return self.versions.get("jwst", "")


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class EnvRegistry:
    """The registry file of one environment directory."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root).expanduser() if root is not None else default_env_dir()

    @property
    def file(self) -> Path:
        return self.root / "registry.json"

    def env_path(self, name: str) -> Path:
        return self.root / check_name(name)

    def log_path(self, name: str) -> Path:
        return self.root / "logs" / f"{check_name(name)}-create.log"

    @contextlib.contextmanager
    def locked(self, name: str | None = None) -> Iterator[None]:
        """An exclusive lock: on the registry file (read-modify-write), or with ``name`` on
        that environment (held for a whole ``create`` or ``remove``). Not re-entrant."""
        lock = self.root / (f".{check_name(name)}.lock" if name else ".registry.lock")
        with _flock(lock):
            yield

    def load(self) -> dict[str, EnvRecord]:
        """name -> record (empty if there is no registry yet)."""
        if not self.file.is_file():
            return {}
        try:
            doc = json.loads(self.file.read_text())
        except json.JSONDecodeError as err:
            raise EnvError(f"{self.file} is not valid JSON ({err}); fix or remove it") from err
        if doc.get("schema") != SCHEMA:
            raise EnvError(f"{self.file}: unknown registry schema {doc.get('schema')!r}")
        return {n: EnvRecord.from_dict(r) for n, r in sorted(doc.get("envs", {}).items())}

    def _save(self, records: dict[str, EnvRecord]) -> None:
        doc = {"schema": SCHEMA, "envs": {n: records[n].as_dict() for n in sorted(records)}}
        write_text(self.file, json.dumps(doc, indent=1) + "\n")

    def get(self, name: str) -> EnvRecord:
        records = self.load()
        if name not in records:
            known = ", ".join(records) or "none"
            raise EnvNotFoundError(f"no environment named {name!r} in {self.file} "
                                   f"(registered: {known}); make one with "
                                   "`simval env create jwst==X.Y.Z`")
        return records[name]

    def add(self, record: EnvRecord, *, replace: bool = False) -> None:
        """Register ``record`` (``EnvError`` if the name is taken, unless ``replace``)."""
        check_name(record.name)
        with self.locked():
            records = self.load()
            if record.name in records and not replace:
                raise EnvError(f"environment {record.name!r} is already registered "
                               f"({records[record.name].path})")
            records[record.name] = record
            self._save(records)

    def remove(self, name: str) -> EnvRecord:
        """Unregister ``name``; returns its record (files are the caller's business)."""
        with self.locked():
            records = self.load()
            if name not in records:
                self.get(name)  # raises with the list of names
            record = records.pop(name)
            self._save(records)
        return record
