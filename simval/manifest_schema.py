"""``manifest.json`` as a pydantic model: what a run did, readable without the run code.

:mod:`simval.run.manifest` builds the document and validates it with :class:`Manifest`
before writing; :func:`read_manifest` reads one and raises :class:`ManifestFileError`
naming the file, the dotted field and, for an older or newer file, the schema version.
The keys and units are documented in :mod:`simval.run.manifest`; keys this version does
not know are kept (``extra="allow"``). ``simval schema manifest`` prints the JSON Schema.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["MANIFEST_SCHEMA", "Manifest", "ManifestFileError", "StageEntry", "read_manifest"]

#: Version of the manifest's layout; a reader refuses any other.
MANIFEST_SCHEMA = 1


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class StageEntry(_Open):
    """One stage of the run: its outcome, times (s), memory (MiB) and where to look."""

    kind: str
    status: Literal["complete", "cached", "failed", "blocked"]
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    run_wall_s: float = 0.0
    record: str | None = None
    log: str | None = None
    error: str | None = None
    traceback: str | None = None
    blocked_by: str | None = None


class ScenarioInfo(_Open):
    """The scenario the run was made from."""

    name: str
    hash: str
    source: str | None = None
    copy_: str | None = Field(None, alias="copy")


class CrdsInfo(_Open):
    """The CRDS context and cache the calibration used."""

    context: str | None = None
    kind: str | None = None
    path: str | None = None


class ProductInfo(_Open):
    """One mosaic: its name and files (relative to the run directory)."""

    name: str
    i2d: str | None = None
    catalog: str | None = None
    asn: str | None = None
    members: list[str] = Field(default_factory=list)
    n_sources: int | None = None


class Manifest(_Open):
    """``manifest.json`` (schema version :data:`MANIFEST_SCHEMA`)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True,
                              title="simval manifest.json")

    schema_version: Literal[1] = Field(MANIFEST_SCHEMA, alias="schema")
    status: Literal["complete", "failed", "interrupted"]
    failed_stages: list[str] = Field(default_factory=list)
    blocked_stages: list[str] = Field(default_factory=list)
    error: str | None = None
    scenario: ScenarioInfo
    created_utc: str | None = None
    finished_utc: str | None = None
    wall_s: float | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    crds: CrdsInfo = Field(default_factory=CrdsInfo)
    stages: dict[str, StageEntry] = Field(default_factory=dict)
    products: dict[str, ProductInfo] = Field(default_factory=dict)
    reference_files: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    reftype_steps: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    pipeline_parameters: dict[str, Any] = Field(default_factory=dict)

    def failure_lines(self, run_dir: str | os.PathLike | None = None) -> list[str]:
        """What went wrong, one line each: the run's error, each failed stage with its
        error, log and traceback (under ``run_dir`` if given), and the stages it blocked."""
        root = Path(run_dir) if run_dir is not None else None
        lines = [f"error: {self.error}"] if self.error else []
        for sid in self.failed_stages:
            entry = self.stages.get(sid)
            error = entry.error if entry is not None and entry.error else "no error recorded"
            where = []
            for key in ("log", "traceback"):
                value = getattr(entry, key, None) if entry is not None else None
                if value:
                    where.append(f"{key}: {root / value if root is not None else value}")
            lines.append(f"stage {sid} failed: {error}"
                         + (f" ({', '.join(where)})" if where else ""))
        if self.blocked_stages:
            lines.append(f"{len(self.blocked_stages)} stage(s) not run because of it: "
                         f"{', '.join(self.blocked_stages)}")
        return lines


class ManifestFileError(ValueError):
    """A ``manifest.json`` that does not follow :class:`Manifest`; names the file and
    the dotted field."""

    def __init__(self, path: str, field_path: str, message: str):
        self.path, self.field, self.reason = path, field_path, message
        super().__init__(f"{path}: {field_path or '(top level)'}: {message}")


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Read and validate ``manifest.json`` (:class:`ManifestFileError` if it is not one
    this simval reads)."""
    src = str(path)
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ManifestFileError(src, "", f"cannot read ({exc})") from exc
    except ValueError as exc:
        raise ManifestFileError(src, "", f"not valid JSON ({exc})") from exc
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        message = err["msg"]
        if where == "schema":
            message = (f"schema version {err.get('input')!r}; this simval reads version "
                       f"{MANIFEST_SCHEMA} (re-run the scenario to remake the manifest)")
        raise ManifestFileError(src, where, message) from None
