"""Run a calibrate call in a registered pipeline environment, from the calling process.

:func:`run_in_env` writes a worker spec, starts ``<env python> -I -m simval.envs.worker``
with the CRDS variables of the call (every ``CRDS_*`` variable of this process removed
first), waits, and reads the result. :func:`calibrate_function` wraps it with the
signature of :func:`simval.calibrate.detector1` / ``image2`` / ``image3``: it is the hook
the run stages use when their params carry ``env: NAME``.

Files: the spec and result are hidden files in ``out_dir`` (``.simval-env-*.json``; the
run stages' ``publish`` skips hidden files); the worker's traceback, on failure, is
``<log>.<kind>-worker-traceback.txt`` beside the stage log; anything the worker printed to
its console is appended to the stage log.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simval.atomic import write_text
from simval.calibrate import CalibrationError, CrdsSetup, Image3Products, reftype_steps
from simval.envs.registry import EnvError, EnvRecord, EnvRegistry
from simval.envs.worker import KINDS, SCHEMA

#: Variables of this process not passed to the worker (besides every ``CRDS_*``).
_DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "CONDA_PREFIX")
CONSOLE_TAIL_LINES = 20
#: (environment, kind) -> reference type -> steps, as that environment's worker last reported
#: it (``reftype_steps`` of its result): the mapping of the environment's own jwst.
_REFTYPE_STEPS: dict[tuple[str, str], dict[str, list[str]]] = {}


class EnvRunError(CalibrationError):
    """A calibrate call in an environment failed (the message names the environment, its
    jwst, the error, the traceback file and the log)."""


@dataclass
class EnvRunResult:
    """What the worker reported (see :mod:`simval.envs.worker` for the fields)."""

    env: str
    kind: str
    status: str
    outputs: dict[str, Any]
    versions: dict[str, str]
    ref_files: dict[str, str] = field(default_factory=dict)
    cal_step: dict[str, str] = field(default_factory=dict)
    prefetch: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    traceback: Path | None = None
    seconds: float = 0.0
    wall_s: float = 0.0
    peak_rss_mb: float | None = None
    log: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def product(self) -> Path:
        """The main product: the rate/cal file, or image3's i2d."""
        return Path(self.outputs["i2d" if self.kind == "image3" else "product"])

    def image3_products(self) -> Image3Products:
        o = self.outputs
        return Image3Products(
            i2d=Path(o["i2d"]), catalog=None if o.get("catalog") is None else Path(o["catalog"]),
            segmentation=None if o.get("segmentation") is None else Path(o["segmentation"]),
            background_levels={k: float(v) for k, v in o.get("background_levels", {}).items()})


def _crds_env(crds: CrdsSetup | Mapping[str, str]) -> dict[str, str]:
    env = crds.env if isinstance(crds, CrdsSetup) else crds
    return {str(k): str(v) for k, v in env.items()}


def worker_environ(crds_env: Mapping[str, str], base: Mapping[str, str] | None = None
                   ) -> dict[str, str]:
    """The worker's environment: ``base`` (default ``os.environ``) without CRDS and Python
    path variables, plus ``crds_env``."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not k.startswith("CRDS_") and k not in _DROPPED}
    env.update(crds_env)
    return env


def _tail(text: str, n: int = CONSOLE_TAIL_LINES) -> str:
    return "\n".join("  " + ln for ln in text.splitlines()[-n:])


def run_in_env(env_name: str, kind: str, input_path: str | os.PathLike,
               out_dir: str | os.PathLike, crds: CrdsSetup | Mapping[str, str],
               log: str | os.PathLike, params: Mapping[str, Any] | None = None, *,
               registry: EnvRegistry | None = None, timeout_s: float | None = None,
               check: bool = True) -> EnvRunResult:
    """Run ``simval.calibrate.<kind>(input_path, out_dir, crds, log, params)`` in the
    environment ``env_name``.

    Parameters
    ----------
    kind : ``"detector1"``, ``"image2"`` or ``"image3"``.
    input_path : the uncal (detector1), rate (image2) or association (image3).
    crds : a :class:`~simval.calibrate.CrdsSetup` or its environment mapping.
    registry : where environments are registered (default: ``$SIMVAL_ENV_DIR`` or the
        user data dir).
    timeout_s : kill the worker after this long (a failure).
    check : raise :class:`EnvRunError` on failure (else return the failed result).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    record = (registry or EnvRegistry()).get(env_name)
    python = Path(record.python)
    if not python.exists():
        raise EnvError(f"environment {env_name!r}: its interpreter {python} is gone; "
                       f"`simval env remove {env_name}` and create it again")
    out_dir, log = Path(out_dir).absolute(), Path(log).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    spec_file = out_dir / f".simval-env-{kind}-{token}-spec.json"
    result_file = out_dir / f".simval-env-{kind}-{token}-result.json"
    tb_file = log.with_name(f"{log.name}.{kind}-worker-traceback.txt")
    crds_env = _crds_env(crds)
    spec = {"schema": SCHEMA, "kind": kind, "input": str(Path(input_path).absolute()),
            "out_dir": str(out_dir), "log": str(log), "crds_env": crds_env,
            "params": json.loads(json.dumps(dict(params or {}))),
            "result": str(result_file), "traceback": str(tb_file), "env": env_name}
    write_text(spec_file, json.dumps(spec, indent=1) + "\n")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([str(python), "-I", "-m", "simval.envs.worker", str(spec_file)],
                              capture_output=True, text=True, env=worker_environ(crds_env),
                              cwd=out_dir, timeout=timeout_s)
        console, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        console = out.decode(errors="replace") if isinstance(out, bytes) else out
        rc = None
    wall = time.perf_counter() - t0
    spec_file.unlink(missing_ok=True)
    if console.strip():
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"--- console of the {kind} worker in environment {env_name} ---\n")
            fh.write(console if console.endswith("\n") else console + "\n")
    what = f"calwebb_{kind} in environment {env_name!r} (jwst {record.jwst_version or '?'})"
    if not result_file.is_file():
        how = f"timed out after {timeout_s} s" if rc is None else f"exited with code {rc}"
        err = EnvRunError(f"{what}: the worker {how} without a result (on {input_path}); "
                          f"its console:\n{_tail(console)}\n(log: {log})")
        if check:
            raise err
        return EnvRunResult(env_name, kind, "failed", {}, {}, error=str(err), wall_s=wall,
                            log=log)
    raw = json.loads(result_file.read_text())
    result_file.unlink(missing_ok=True)
    result = EnvRunResult(
        env=env_name, kind=kind, status=raw["status"], outputs=raw.get("outputs") or {},
        versions=raw.get("versions") or {}, ref_files=raw.get("ref_files") or {},
        cal_step=raw.get("cal_step") or {}, prefetch=raw.get("prefetch") or {},
        error=raw.get("error"),
        traceback=Path(raw["traceback"]) if raw.get("traceback") else None,
        seconds=float(raw.get("seconds") or 0.0), wall_s=round(wall, 3),
        peak_rss_mb=raw.get("peak_rss_mb"), log=log, raw=raw)
    if raw.get("reftype_steps"):
        _REFTYPE_STEPS[(env_name, kind)] = raw["reftype_steps"]
    if check and not result.ok:
        raise EnvRunError(f"{what} failed on {input_path}: {result.error} "
                          f"(traceback: {result.traceback}; log: {log})")
    return result


def calibrate_function(env_name: str, kind: str, *, registry: EnvRegistry | None = None
                       ) -> Callable[..., Any]:
    """A drop-in for ``simval.calibrate.<kind>`` that runs in environment ``env_name``:
    ``f(input, out_dir, crds, log, params)`` returns the product path (detector1, image2) or
    :class:`~simval.calibrate.Image3Products` (image3), and raises :class:`EnvRunError`
    (a :class:`~simval.calibrate.CalibrationError`) on failure."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def run(input_path, out_dir, crds, log, params=None):
        result = run_in_env(env_name, kind, input_path, out_dir, crds, log, params,
                            registry=registry)
        return result.image3_products() if kind == "image3" else result.product

    run.__name__ = f"{kind}_in_{env_name}"
    run.__qualname__ = run.__name__
    return run


def env_record(env_name: str, registry: EnvRegistry | None = None) -> EnvRecord:
    """The registry record of ``env_name`` (``EnvNotFoundError`` naming the known ones)."""
    return (registry or EnvRegistry()).get(env_name)


def for_stage(params: Mapping[str, Any], kind: str, in_process: Callable[..., Any]
              ) -> Callable[..., Any]:
    """The calibrate function a run stage calls: ``in_process`` (e.g.
    ``simval.calibrate.detector1``), or :func:`calibrate_function` for the environment
    named by ``params["env"]`` when the stage's params carry one."""
    name = params.get("env")
    return calibrate_function(str(name), kind) if name else in_process


def stage_reftype_steps(params: Mapping[str, Any], kind: str) -> dict[str, list[str]] | None:
    """Reference type -> the steps of pipeline ``kind`` that use it, from the jwst that ran
    the stage: the environment named by ``params["env"]`` (as its worker reported it in
    this process; None if it did not) or this process's
    (:func:`simval.calibrate.reftype_steps`)."""
    name = params.get("env")
    if not name:
        return reftype_steps(kind)
    found = _REFTYPE_STEPS.get((str(name), kind))
    return None if found is None else {k: list(v) for k, v in found.items()}
