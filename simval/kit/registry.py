"""The kit registry (``kit.json``): which build jobs are complete, and which contexts exist.

A job's outputs are registered only after they were written completely (atomically), with
the job's content key and each file's size and sha256. Anything present on disk but absent
from the registry — or whose size or key disagrees — is the leftover of an interrupted
build and is rebuilt, never used.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from simval.atomic import write_text
from simval.digest import sha256_file
from simval.kit.layout import KitLayout

REGISTRY_SCHEMA = 1



@dataclass
class Registry:
    """In-memory view of ``kit.json``.

    jobs : job id -> ``{"key": content key, "outputs": [paths relative to the kit root],
        "info": {...}}``
    files : relative path -> ``{"size": bytes, "sha256": hex}``
    contexts : context name -> ``{"entries": ..., "base": ..., "changes": ...}``
    """

    jobs: dict[str, dict] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)
    contexts: dict[str, dict] = field(default_factory=dict)
    seed: int | None = None
    version: int | None = None

    @classmethod
    def load(cls, layout: KitLayout) -> Registry:
        if not layout.registry.exists():
            return cls()
        try:
            raw = json.loads(layout.registry.read_text())
        except json.JSONDecodeError as err:
            raise RuntimeError(
                f"kit registry {layout.registry} is not valid JSON ({err}); delete the kit "
                f"directory {layout.root} to rebuild it") from err
        return cls(jobs=raw.get("jobs", {}), files=raw.get("files", {}),
                   contexts=raw.get("contexts", {}), seed=raw.get("seed"),
                   version=raw.get("version"))

    def save(self, layout: KitLayout) -> None:
        doc = {"schema": REGISTRY_SCHEMA, "seed": self.seed, "version": self.version,
               "jobs": dict(sorted(self.jobs.items())),
               "files": dict(sorted(self.files.items())),
               "contexts": dict(sorted(self.contexts.items()))}
        write_text(layout.registry, json.dumps(doc, indent=1) + "\n")

    def _file_intact(self, layout: KitLayout, relpath: str) -> bool:
        entry = self.files.get(relpath)
        path = layout.root / relpath
        return entry is not None and path.is_file() and path.stat().st_size == entry["size"]

    def job_complete(self, layout: KitLayout, job_id: str, key: str) -> bool:
        """True if ``job_id`` was completed with ``key`` and all its outputs are on disk."""
        job = self.jobs.get(job_id)
        return (job is not None and job["key"] == key
                and all(self._file_intact(layout, rel) for rel in job["outputs"]))

    def record_job(self, layout: KitLayout, job_id: str, key: str, outputs: list[Path],
                   info: dict | None = None) -> None:
        """Register a finished job and hash its outputs."""
        rels = []
        for path in outputs:
            rel = Path(path).resolve().relative_to(layout.root.resolve()).as_posix()
            self.files[rel] = {"size": Path(path).stat().st_size,
                               "sha256": sha256_file(Path(path))}
            rels.append(rel)
        self.jobs[job_id] = {"key": key, "outputs": rels, "info": info or {}}

    def verify(self, layout: KitLayout) -> list[str]:
        """Problems found by re-hashing every registered file (empty if all intact)."""
        problems = []
        for rel, entry in self.files.items():
            path = layout.root / rel
            if not path.is_file():
                problems.append(f"{rel}: missing")
            elif sha256_file(path) != entry["sha256"]:
                problems.append(f"{rel}: content changed since it was built (sha256 differs)")
        return problems


@contextlib.contextmanager
def locked(layout: KitLayout) -> Iterator[None]:
    """Hold an exclusive lock on the kit directory (one builder at a time, across processes)."""
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
        fh = open(layout.lock, "a")  # held open for the duration of the lock
    except OSError as err:
        raise PermissionError(
            f"cannot write to the kit directory {layout.root}: {err.strerror}. Choose a "
            f"writable directory with --kit-dir or the SIMVAL_KIT_DIR environment variable"
        ) from err
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
