"""Stage records and the resume rule: run a stage unless a complete, intact record says
the same inputs and parameters already gave these outputs.

A stage is a function from files to files (:class:`StageSpec` says which function, which
inputs, which parameters). :func:`execute_stage` runs it anywhere (a Dask worker, or this
process) and keeps ``stages/<stage_id>.json``::

    {"stage_id", "kind", "status": "running" | "complete" | "failed",
     "fingerprint":  sha256 of (kind, parameters, input sha256s, software versions),
     "inputs":  {name: {"path", "sha256", "size"}},
     "outputs": {name: {"path", "sha256", "size"}},
     "parameters": {...as run...}, "software": {package: version},
     "info": {...what the stage reports...},
     "crds_context", "started_utc", "finished_utc", "wall_s", "peak_rss_mb",
     "host", "pid", "run_id", "log", "error", "traceback"}

Paths are relative to the run directory. The resume rule (:func:`cached_outcome`): the
record's status is ``complete``, its fingerprint equals the one computed now, and every
output exists with the recorded size and sha256. Anything else — no record, ``running``
(a killed run), ``failed``, changed inputs or parameters, a missing or altered output —
runs the stage again. Stages write their files atomically and the record last, so a
half-written file never carries a complete record that matches it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simval import provenance
from simval.atomic import write_text
from simval.digest import sha256_file
from simval.layout import RunLayout
from simval.provenance import versions
from simval.run.resources import Usage, measure

RECORD_SCHEMA = 1
STATUS_RUNNING, STATUS_COMPLETE, STATUS_FAILED = "running", "complete", "failed"
#: Outcome statuses of one run: ran now, reused, failed, not run because an input failed.
COMPLETE, CACHED, FAILED, BLOCKED = "complete", "cached", "failed", "blocked"



@dataclass(frozen=True)
class FileRef:
    """A file with its content hash: ``path`` (relative to the run directory when inside
    it), ``sha256`` (hex), ``size`` (bytes)."""

    path: str
    sha256: str
    size: int

    @classmethod
    def of(cls, path: str | os.PathLike, layout: RunLayout) -> FileRef:
        p = Path(path)
        return cls(layout.rel(p), sha256_file(p), p.stat().st_size)

    def intact(self, layout: RunLayout) -> bool:
        """The file exists with this size and sha256."""
        p = layout.abs(self.path)
        try:
            if p.stat().st_size != self.size:
                return False
        except OSError:
            return False
        return sha256_file(p) == self.sha256


@dataclass(frozen=True)
class StageResult:
    """What a stage function returns: ``outputs`` (name -> path) and ``info`` (JSON)."""

    outputs: Mapping[str, Path]
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageSpec:
    """One stage of a run, decided on the client, executed anywhere.

    stage_id : unique in the run (``detector1.<base>``; also the record's file name).
    kind : ``catalog``, ``simulate``, ``detector1``, ``image2``, ``image3``, ``truth``,
        ``evaluate``, ``metrics`` (see :mod:`simval.run.stages`) or any label.
    run_dir : the run directory (must be visible to the worker).
    params : JSON parameters: everything besides the input files that decides the outputs.
    uses : local input name -> (upstream stage id, upstream output name).
    files : local input name -> path of a file no stage makes (e.g. a user's catalog).
    optional : names of ``uses`` that may be absent from the upstream stage's outputs (an
        output a stage makes only sometimes, such as MIRAGE's truth lists).
    func : the stage function (``func(ctx: StageContext) -> StageResult``;
        :func:`simval.run.graph.build_specs` sets it from the kind).
    crds_context : recorded in the record (calibration stages).
    run_id : identifies the run that wrote a ``running`` record.
    memory_mb : declared peak memory, MiB, for the scheduler; ``None``: declared by kind
        (:mod:`simval.run.stage_memory`). Not part of the fingerprint.
    """

    stage_id: str
    kind: str
    run_dir: str
    params: Mapping[str, Any] = field(default_factory=dict)
    uses: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()
    func: Callable[[StageContext], StageResult] | None = None
    crds_context: str | None = None
    run_id: str = ""
    memory_mb: float | None = None

    @property
    def upstream(self) -> list[str]:
        """Stage ids this stage reads from, in order of first use."""
        return list(dict.fromkeys(s for s, _ in self.uses.values()))


@dataclass(frozen=True)
class StageOutcome:
    """What happened to a stage in this run (returned by :func:`execute_stage`).

    status : ``complete`` (ran now), ``cached`` (record reused), ``failed``, ``blocked``
        (an input stage failed; ``blocked_by`` names the failed stage).
    outputs : name -> :class:`FileRef`. wall_s, peak_rss_mb : of the run that made them
        (for ``cached``: the recorded values; ``run_wall_s`` is this run's check time).
    """

    stage_id: str
    kind: str
    status: str
    outputs: Mapping[str, FileRef] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    run_wall_s: float = 0.0
    error: str | None = None
    blocked_by: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (COMPLETE, CACHED)

    def path(self, name: str, layout: RunLayout) -> Path:
        return layout.abs(self.outputs[name].path)


@dataclass
class StageContext:
    """Handed to a stage function: its spec, the run layout, resolved ``inputs``
    (name -> absolute path), its ``log`` file and the running :class:`Usage`."""

    spec: StageSpec
    layout: RunLayout
    inputs: dict[str, Path]
    log: Path
    usage: Usage

    @property
    def params(self) -> Mapping[str, Any]:
        return self.spec.params


# --- records ------------------------------------------------------------------------------

class StageRecord(BaseModel):
    """``stages/<stage_id>.json`` (module docstring): what a stage did, and the evidence
    the resume rule checks. Unknown keys are kept (a newer simval may add some)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_version: Literal[1] = Field(RECORD_SCHEMA, alias="schema")
    stage_id: str
    kind: str
    status: Literal["running", "complete", "failed"]
    fingerprint: str = ""
    inputs: dict[str, FileRef] = Field(default_factory=dict)
    outputs: dict[str, FileRef] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    software: dict[str, str] = Field(default_factory=dict)
    info: dict[str, Any] = Field(default_factory=dict)
    crds_context: str | None = None
    started_utc: str | None = None
    finished_utc: str | None = None
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    memory_method: str | None = None
    host: str | None = None
    pid: int | None = None
    run_id: str = ""
    log: str | None = None
    error: str | None = None
    traceback: str | None = None


def read_record(layout: RunLayout, stage_id: str) -> StageRecord | None:
    """The stage's record, or ``None`` if absent, unreadable or not a valid record (of
    another schema version, say): the stage then runs again. Records are written
    atomically, so a torn one is impossible, but a user may have edited one."""
    try:
        return StageRecord.model_validate_json(layout.record(stage_id).read_bytes())
    except (OSError, ValidationError):
        return None


def load_record(layout: RunLayout, stage_id: str) -> dict[str, Any] | None:
    """:func:`read_record` as JSON (``None`` likewise)."""
    record = read_record(layout, stage_id)
    return None if record is None else record.model_dump(mode="json", by_alias=True)


def write_record(layout: RunLayout, record: Mapping[str, Any]) -> Path:
    """Write a record (validated as :class:`StageRecord`), atomically."""
    model = StageRecord.model_validate(json.loads(json.dumps(record, default=str)))
    text = json.dumps(model.model_dump(mode="json", by_alias=True), indent=1, sort_keys=True,
                      allow_nan=False)
    return write_text(layout.record(model.stage_id), text + "\n")


#: Distributions whose versions are part of every stage's fingerprint: a new jwst (say)
#: re-runs the stages instead of reusing products the old one made.
FINGERPRINT_PACKAGES = ("jwst", "mirage", "crds", "stcal", "stdatamodels", "stpipe",
                        "photutils", "numpy", "astropy", "gwcs", "pysiaf", "simval")


@functools.cache
def software() -> dict[str, str]:
    """Versions of :data:`FINGERPRINT_PACKAGES` in this process ("" if not installed)."""
    return versions(FINGERPRINT_PACKAGES, missing="")


def fingerprint(kind: str, params: Mapping[str, Any], inputs: Mapping[str, FileRef],
                versions: Mapping[str, str] | None = None) -> str:
    """sha256 of what decides a stage's outputs: its kind, parameters, input contents and
    the software versions (default: :func:`software`)."""
    doc = {"schema": RECORD_SCHEMA, "kind": kind, "params": params,
           "software": dict(software() if versions is None else versions),
           "inputs": {k: v.sha256 for k, v in sorted(inputs.items())}}
    text = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def now_utc() -> str:
    """Current UTC time, ISO 8601 to the millisecond (records of concurrent stages)."""
    return provenance.now_utc("milliseconds")


def cached_outcome(spec: StageSpec, layout: RunLayout, fp: str) -> StageOutcome | None:
    """The recorded outcome if the resume rule holds (module docstring), else ``None``."""
    record = read_record(layout, spec.stage_id)
    if record is None or record.status != STATUS_COMPLETE or record.fingerprint != fp:
        return None
    if not all(ref.intact(layout) for ref in record.outputs.values()):
        return None
    return StageOutcome(spec.stage_id, spec.kind, CACHED, record.outputs, record.info,
                        wall_s=record.wall_s, peak_rss_mb=record.peak_rss_mb)


def recorded_outcome(layout: RunLayout, stage_id: str,
                     check: tuple[str, ...] | None = None) -> StageOutcome | None:
    """A finished stage as its record describes it (for stages downstream of a run that
    ended earlier): ``cached`` if the record is complete and the outputs named in ``check``
    (default: all) still have their recorded size and sha256, else ``None``."""
    record = read_record(layout, stage_id)
    if record is None or record.status != STATUS_COMPLETE:
        return None
    outputs = record.outputs
    names = outputs if check is None else [n for n in check if n in outputs]
    if not all(outputs[n].intact(layout) for n in names):
        return None
    return StageOutcome(stage_id, record.kind, CACHED, outputs, record.info,
                        wall_s=record.wall_s, peak_rss_mb=record.peak_rss_mb)


def _resolve_inputs(spec: StageSpec, layout: RunLayout,
                    upstream: Mapping[str, StageOutcome]) -> dict[str, FileRef]:
    inputs: dict[str, FileRef] = {}
    for name, (stage_id, output) in spec.uses.items():
        try:
            inputs[name] = upstream[stage_id].outputs[output]
        except KeyError:
            if name in spec.optional and stage_id in upstream:
                continue
            raise KeyError(f"stage {spec.stage_id}: input {name!r} needs output {output!r} "
                           f"of {stage_id}, which it did not produce") from None
    for name, path in spec.files.items():
        inputs[name] = FileRef.of(path, layout)
    return inputs


@contextlib.contextmanager
def stage_output(log: Path) -> Iterator[Any]:
    """Send this process's ``sys.stdout``/``sys.stderr`` (and so warnings and logging's
    last-resort handler) to ``log`` for the duration of the stage."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", buffering=1, encoding="utf-8") as fh, \
            contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        yield fh


def execute_stage(spec: StageSpec, *upstream: StageOutcome) -> StageOutcome:
    """Run ``spec`` unless its record allows reuse; keep its record (module docstring).

    ``upstream``: outcomes of the stages in ``spec.uses`` (Dask passes them as the results
    of the corresponding futures). Never raises for a failure inside the stage: a failed
    stage leaves a ``failed`` record (error text, traceback file) and a ``failed`` outcome,
    and stages downstream of it return ``blocked``.
    """
    layout = RunLayout(Path(spec.run_dir))
    ups = {u.stage_id: u for u in upstream}
    for stage_id in spec.upstream:
        up = ups.get(stage_id)
        if up is None or not up.ok:
            culprit = stage_id if up is None or up.status == FAILED else up.blocked_by
            return StageOutcome(spec.stage_id, spec.kind, BLOCKED, blocked_by=culprit)
    t0 = time.perf_counter()
    try:
        inputs = _resolve_inputs(spec, layout, ups)
        fp = fingerprint(spec.kind, spec.params, inputs)
        hit = cached_outcome(spec, layout, fp)
    except Exception as exc:
        return _fail(spec, layout, exc, {}, "", Usage(), now_utc())
    if hit is not None:
        return replace(hit, run_wall_s=time.perf_counter() - t0)
    return _run(spec, layout, inputs, fp)


def _base_record(spec: StageSpec, layout: RunLayout, inputs: Mapping[str, FileRef], fp: str,
                 started: str) -> dict[str, Any]:
    return {
        "schema": RECORD_SCHEMA, "stage_id": spec.stage_id, "kind": spec.kind,
        "fingerprint": fp, "inputs": {k: asdict(v) for k, v in sorted(inputs.items())},
        "parameters": spec.params, "software": software(),
        "crds_context": spec.crds_context,
        "started_utc": started, "host": socket.gethostname(), "pid": os.getpid(),
        "run_id": spec.run_id, "log": layout.rel(layout.log(spec.stage_id)),
    }


def _stage_function(spec: StageSpec) -> Callable[[StageContext], StageResult]:
    if spec.func is None:
        raise ValueError(f"stage {spec.stage_id}: no stage function (StageSpec.func)")
    return spec.func


def _run(spec: StageSpec, layout: RunLayout, inputs: Mapping[str, FileRef],
         fp: str) -> StageOutcome:
    started = now_utc()
    base = _base_record(spec, layout, inputs, fp, started)
    write_record(layout, {**base, "status": STATUS_RUNNING})
    log = layout.log(spec.stage_id)
    usage = Usage()
    try:
        with measure() as usage, stage_output(log) as fh:
            print(f"=== simval stage {spec.stage_id} started {started} on "
                  f"{socket.gethostname()} pid {os.getpid()}", file=fh)
            ctx = StageContext(spec, layout, {k: layout.abs(v.path) for k, v in inputs.items()},
                               log, usage)
            result = _stage_function(spec)(ctx)
            outputs = {name: FileRef.of(path, layout)
                       for name, path in sorted(result.outputs.items())}
            info = json.loads(json.dumps(dict(result.info), default=str))
            print(f"=== simval stage {spec.stage_id} complete {now_utc()}", file=fh)
    except Exception as exc:
        return _fail(spec, layout, exc, inputs, fp, usage, started)
    record_complete(spec, layout, inputs=inputs, fp=fp, started=started, usage=usage,
                    outputs=outputs, info=info)
    return StageOutcome(spec.stage_id, spec.kind, COMPLETE, outputs, info,
                        wall_s=usage.wall_s, peak_rss_mb=usage.peak_rss_mb,
                        run_wall_s=usage.wall_s)


def _fail(spec: StageSpec, layout: RunLayout, exc: BaseException,
          inputs: Mapping[str, FileRef], fp: str, usage: Usage, started: str) -> StageOutcome:
    error = f"{type(exc).__name__}: {exc}"
    tb = layout.traceback(spec.stage_id)
    write_text(tb, "".join(traceback.format_exception(exc)))
    record_failure(spec, layout, error, tb, inputs=inputs, fp=fp, usage=usage,
                   started=started)
    return StageOutcome(spec.stage_id, spec.kind, FAILED, wall_s=usage.wall_s,
                        peak_rss_mb=usage.peak_rss_mb, run_wall_s=usage.wall_s, error=error)


def record_complete(spec: StageSpec, layout: RunLayout, *, inputs: Mapping[str, FileRef],
                    fp: str, started: str, usage: Usage, outputs: Mapping[str, FileRef],
                    info: Mapping[str, Any]) -> None:
    """Write a ``complete`` record (also used by the client for the kit stage)."""
    record = {**_base_record(spec, layout, inputs, fp, started), "status": STATUS_COMPLETE,
              "outputs": {k: asdict(v) for k, v in outputs.items()}, "info": dict(info),
              "finished_utc": now_utc(), "wall_s": round(usage.wall_s, 3),
              "peak_rss_mb": round(usage.peak_rss_mb, 1), "memory_method": usage.method,
              "error": None, "traceback": None}
    write_record(layout, record)


def record_failure(spec: StageSpec, layout: RunLayout, error: str, traceback_file: Path | None,
                   *, inputs: Mapping[str, FileRef] | None = None, fp: str = "",
                   usage: Usage | None = None, started: str | None = None) -> None:
    """Write a ``failed`` record (also used by the client when a worker died mid-stage)."""
    usage = usage or Usage()
    record = {**_base_record(spec, layout, inputs or {}, fp, started or now_utc()),
              "status": STATUS_FAILED, "outputs": {}, "info": {}, "finished_utc": now_utc(),
              "wall_s": round(usage.wall_s, 3), "peak_rss_mb": round(usage.peak_rss_mb, 1),
              "error": error,
              "traceback": layout.rel(traceback_file) if traceback_file else None}
    write_record(layout, record)


__all__ = [
    "BLOCKED",
    "CACHED",
    "COMPLETE",
    "FAILED",
    "FileRef",
    "StageContext",
    "StageOutcome",
    "StageRecord",
    "StageResult",
    "StageSpec",
    "cached_outcome",
    "execute_stage",
    "fingerprint",
    "load_record",
    "now_utc",
    "read_record",
    "record_complete",
    "record_failure",
    "recorded_outcome",
    "sha256_file",
    "stage_output",
    "write_record",
]
