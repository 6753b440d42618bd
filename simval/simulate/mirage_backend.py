"""Run MIRAGE 2.5.0 for one exposure, isolated, atomically and reproducibly.

Why a child process:

- importing any MIRAGE module calls ``logging.config.dictConfig`` on the *root* logger:
  every logger that already exists is disabled, a stdout handler is added, and
  ``mirage_latest.log`` is created in the current directory; ImgSim copies that file at the
  end and needs the current directory to stay put;
- MIRAGE seeds the *global* numpy and :mod:`random` generators;
- MIRAGE peaks at ~1 GB for a SUB400P exposure and 4 GB for full frame; a child returns that
  memory, can be killed on timeout, and reports its own peak RSS.

How the child starts (``start``, default :data:`DEFAULT_START` or ``$SIMVAL_MIRAGE_START``):

- ``"forkserver"``: a ``multiprocessing`` fork server per calling process imports MIRAGE,
  jwst's datamodels and pysiaf once (:mod:`simval.simulate.mirage_preload`); each exposure is
  a ``fork`` of it, so it pays no imports (the first exposure of a process pays them once,
  ~4-8 s). The child takes the exposure's environment, work directory and log as its own.
- ``"spawn"``: ``python -m simval.simulate.mirage_backend YAML WORKDIR --log LOG``, a fresh
  interpreter per exposure (~8 s of imports each); for comparison and as a fallback.

Either way the child never reaches the network: pysiaf is imported through
:func:`simval.offline.import_pysiaf`, astropy downloads are off, and a socket guard refuses
any non-loopback connection.

Atomicity: MIRAGE writes into ``<workdir>/mirage_partial/``; only after it succeeded and the
file date was checked are the products moved into the yaml's ``Output: directory`` (truth lists
and seed image first, the uncal last, each with :func:`os.replace`). Products of an earlier run
of the same exposure are deleted first, so a killed run never leaves a complete-looking uncal.

Determinism: with the same yaml (same seed, references, catalogs and directories) the uncal is
byte-identical. MIRAGE itself is deterministic given its seeds except for one field:
stdatamodels stamps ``meta.date`` with the wall-clock time on save, and that value reaches the
FITS ``DATE`` card, the embedded ASDF tree and the ``_fits_hash`` stored in it. The child runs
MIRAGE under :func:`frozen_save_time`, so the stamp is the exposure start time from the yaml
(``simval: file_date``), then checks it (:func:`check_file_date`). Paths are written into
headers (``YAMLFILE``, ``PTSRCCAT``, ``DISTORTN``...), so moving the run directory or the kit
changes those cards (and the hash), never the data.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simval import offline
from simval.atomic import write_text
from simval.simulate.mirage_catalogs import write_catalogs
from simval.simulate.mirage_yaml import (
    MirageExposure,
    MirageReferences,
    dump_parameters,
    read_parameters,
    write_mirage_yaml,
)

if TYPE_CHECKING:
    from astropy.table import Table

PARTIAL_DIR = "mirage_partial"
STATUS_FILE = "mirage_status.json"
#: MIRAGE's own log name, in its current directory (it copies the file when it finishes).
MIRAGE_LOG_NAME = "mirage_latest.log"
#: How MIRAGE children start (module docstring); ``$SIMVAL_MIRAGE_START`` overrides it.
DEFAULT_START = "forkserver"
START_METHODS = ("forkserver", "spawn")
#: Modules the fork server imports before it forks any child.
FORKSERVER_PRELOAD = ["simval.simulate.mirage_preload", "simval.simulate.mirage_backend"]
#: Environment variable that gives the fork server the parent's main script or module
#: (:func:`start_fork_server`), as JSON.
MAIN_ENV = "SIMVAL_FORKSERVER_MAIN"

#: Where a failure happened, keyed by the MIRAGE sub-package in the traceback.
MIRAGE_STAGES = {
    "seed_image": "seed image (mirage.seed_image.catalog_seed_image)",
    "psf": "seed image: PSF library (mirage.psf)",
    "dark": "dark preparation (mirage.dark.dark_prep)",
    "ramp_generator": "ramp generation (mirage.ramp_generator.obs_generator)",
    "utils": "MIRAGE utilities (mirage.utils)",
    "reference_files": "MIRAGE reference-file handling (mirage.reference_files)",
}


class MirageError(RuntimeError):
    """MIRAGE (or the steps around it) failed for one yaml.

    Attributes: ``yaml_path``, ``stage`` (e.g. ``"dark preparation (mirage.dark.dark_prep)"``),
    ``log_path`` and ``detail`` (the exception text from the child).
    """

    def __init__(self, yaml_path: Path, stage: str, detail: str, log_path: Path | None):
        self.yaml_path, self.stage, self.detail, self.log_path = yaml_path, stage, detail, log_path
        where = f"; log: {log_path}" if log_path else ""
        super().__init__(f"MIRAGE failed for {yaml_path} in stage '{stage}': {detail}{where}")


@dataclass(frozen=True)
class MirageOutputs:
    """Products of one MIRAGE run (absolute paths) and what it cost.

    uncal : raw ramps (``<base>_uncal.fits``, DMS, with the ASDF extension).
    seed_image : noiseless count-rate image, ADU/s, with the SEGMAP extension.
    seed_sky : ``<stem>_seed_sky.json``: the sky in the seed image, ADU/s (the median of the
        final seed image less MIRAGE's point-source and galaxy seed images, which are not
        kept), or ``None``.
    point_sources, galaxies : MIRAGE's truth lists (``None`` without such catalogs).
    cosmic_rays : list of injected cosmic rays (``None`` when they were off).
    yaml, log : the input yaml and the run's log file.
    seconds : wall-clock time of the child process, s.
    peak_rss_mb : the child's peak resident memory, MiB.
    stage_seconds : wall-clock time of the child's stages, s: ``start`` (from the parent's
        request to the child's first line), ``set-up``, ``import``, ``mirage`` (ImgSim),
        ``collect`` and ``exit`` (from the child's status write to the parent seeing it end).
    network_attempts : connections the child refused (empty for a clean offline run).
    """

    uncal: Path
    seed_image: Path
    point_sources: Path | None
    galaxies: Path | None
    cosmic_rays: Path | None
    yaml: Path
    log: Path
    seconds: float
    peak_rss_mb: float
    stage_seconds: Mapping[str, float] = field(default_factory=dict)
    network_attempts: tuple[str, ...] = ()
    seed_sky: Path | None = None


# ---------------------------------------------------------------------------------------
# Parent side
# ---------------------------------------------------------------------------------------

def mirage_environment(params: Mapping[str, Any],
                       base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the MIRAGE child: ``MIRAGE_DATA``, the CRDS variables, no network."""
    env = dict(os.environ if base is None else base)
    section = params["simval"]
    env.update({str(k): str(v) for k, v in section.get("crds_env", {}).items()})
    env["MIRAGE_DATA"] = str(section["mirage_data"])
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_mirage(
    yaml_path: str | os.PathLike,
    workdir: str | os.PathLike,
    log_path: str | os.PathLike,
    *,
    timeout_s: float | None = None,
    start: str | None = None,
) -> MirageOutputs:
    """Run MIRAGE's ImgSim on ``yaml_path`` in a child process; return its products.

    Parameters
    ----------
    yaml_path : a yaml from :func:`simval.simulate.mirage_yaml.write_mirage_yaml`.
    workdir : private scratch directory (created): MIRAGE's current directory, its
        ``mirage_latest.log`` and the partial outputs live there. Use one per exposure.
    log_path : file that receives MIRAGE's log and the child's stdout/stderr (appended).
    timeout_s : kill the child after this many seconds (``MirageError``).
    start : ``"forkserver"`` or ``"spawn"`` (module docstring); default
        ``$SIMVAL_MIRAGE_START`` or :data:`DEFAULT_START`.

    Raises ``MirageError`` naming the yaml and the MIRAGE stage that failed.
    """
    start = start_method(start)
    yaml_path = Path(yaml_path).absolute()
    workdir = Path(workdir).absolute()
    log_path = Path(log_path).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    params = read_parameters(yaml_path)
    status_path = workdir / STATUS_FILE
    status_path.unlink(missing_ok=True)
    env = mirage_environment(params)
    t0 = time.perf_counter()
    run_child = _run_forked if start == "forkserver" else _run_spawned
    try:
        returncode = run_child(yaml_path, workdir, log_path, env, timeout_s, t0)
    except TimeoutError as exc:
        raise MirageError(yaml_path, "timeout", f"killed after {timeout_s} s",
                          log_path) from exc
    t1 = time.perf_counter()
    seconds = t1 - t0
    status = _read_status(status_path)
    if returncode != 0 or not status.get("ok"):
        stage = status.get("stage", "start-up (before MIRAGE ran)")
        detail = status.get("error", f"child exited with code {returncode}")
        raise MirageError(yaml_path, stage, detail, log_path)
    out = status["outputs"]
    return MirageOutputs(
        uncal=Path(out["uncal"]), seed_image=Path(out["seed_image"]),
        point_sources=_opt_path(out.get("point_sources")),
        galaxies=_opt_path(out.get("galaxies")),
        cosmic_rays=_opt_path(out.get("cosmic_rays")),
        yaml=yaml_path, log=log_path, seconds=seconds,
        peak_rss_mb=float(status["peak_rss_mb"]),
        stage_seconds=_with_exit(status, t1),
        network_attempts=tuple(status.get("network_attempts", ())),
        seed_sky=_opt_path(out.get("seed_sky")),
    )


def start_method(start: str | None = None) -> str:
    """``start``, else ``$SIMVAL_MIRAGE_START``, else :data:`DEFAULT_START` (validated)."""
    method = start or os.environ.get("SIMVAL_MIRAGE_START") or DEFAULT_START
    if method not in START_METHODS:
        raise ValueError(f"MIRAGE start method {method!r} (SIMVAL_MIRAGE_START?) is not one of "
                         f"{', '.join(START_METHODS)}")
    return method


def _with_exit(status: Mapping[str, Any], ended: float) -> dict[str, float]:
    """The child's stage times plus ``exit``: from its status write (``finished_perf``,
    :func:`time.perf_counter`, one clock for all processes of the machine) to ``ended``."""
    seconds = dict(status.get("stage_seconds", {}))
    if "finished_perf" in status:
        seconds["exit"] = round(ended - float(status["finished_perf"]), 3)
    return seconds


def _run_spawned(yaml_path: Path, workdir: Path, log_path: Path, env: dict[str, str],
                 timeout_s: float | None, requested: float) -> int:
    """A fresh interpreter for the exposure; its exit code (``TimeoutError`` if killed)."""
    cmd = [sys.executable, "-m", "simval.simulate.mirage_backend", str(yaml_path),
           str(workdir), "--log", str(log_path), "--requested", repr(requested)]
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.run(cmd, cwd=workdir, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError(str(exc)) from exc
    return proc.returncode


def _run_forked(yaml_path: Path, workdir: Path, log_path: Path, env: dict[str, str],
                timeout_s: float | None, requested: float) -> int:
    """A fork of this process's MIRAGE fork server; its exit code (``TimeoutError`` if
    killed)."""
    import multiprocessing

    start_fork_server()
    ctx = multiprocessing.get_context("forkserver")
    child = ctx.Process(target=_forked_child, name=f"mirage:{yaml_path.stem}",
                        args=(str(yaml_path), str(workdir), str(log_path), env, requested))
    child.start()
    child.join(timeout_s)
    if child.exitcode is None:
        child.kill()
        child.join()
        raise TimeoutError(f"MIRAGE child {child.pid} killed after {timeout_s} s")
    return child.exitcode


def start_fork_server() -> None:
    """Start this process's MIRAGE fork server (once), with the parent's main script imported.

    multiprocessing prepares every forked child by running the parent's main script again
    (``spawn.prepare``; for ``simval``'s console script that imports :mod:`simval.cli`,
    measured 0.9-1.6 s per exposure on a busy machine), unless the server already imported
    it. The server's own ``"__main__"`` preload never receives the script's path on Python
    3.11-3.13.7 (CPython gh-126631/gh-137996: it reads ``main_path`` where
    ``spawn.get_preparation_data`` writes ``init_main_from_path``), and a main run with
    ``python -m`` is re-run in every child on any version. So the main's path or module
    name travels in :data:`MAIN_ENV`, for the server's start only, and
    :mod:`simval.simulate.mirage_preload` imports it there: a script as the fixed server
    does (children then skip it), a module so that its re-run in a child finds every import
    done (milliseconds).
    """
    import multiprocessing
    from multiprocessing import forkserver, spawn

    multiprocessing.get_context("forkserver").set_forkserver_preload(FORKSERVER_PRELOAD)
    data = spawn.get_preparation_data("simval")
    main = {k: data[k] for k in ("init_main_from_path", "init_main_from_name") if k in data}
    os.environ[MAIN_ENV] = json.dumps(main)
    try:
        forkserver.ensure_running()
    finally:
        os.environ.pop(MAIN_ENV, None)


def start_in_background() -> bool:
    """Start this process's fork server from a daemon thread, ahead of its first exposure:
    the server's imports (~5-9 s of CPU) then run while the client builds the graph and the
    catalog stage runs, on a core that would otherwise wait. ``False`` (nothing started) when
    MIRAGE children are spawned. Dask workers run it when they join a run
    (:func:`simval.run.executor.warm_up_simulators`)."""
    if start_method() != "forkserver":
        return False
    threading.Thread(target=_start_quietly, name="simval-mirage-fork-server",
                     daemon=True).start()
    return True


def _start_quietly() -> None:
    try:
        start_fork_server()
    except Exception:  # a warm-up only: the first exposure starts the server as before
        logging.getLogger(__name__).warning("MIRAGE fork server not started ahead",
                                            exc_info=True)


def _forked_child(yaml_path: str, workdir: str, log_path: str, env: dict[str, str],
                  requested: float) -> None:
    """Entry point of a forked child: the exposure's environment, directory and log become
    this process's, then :func:`main` runs as in a spawned child."""
    os.environ.clear()
    os.environ.update(env)
    Path(workdir).mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.exit(main([yaml_path, workdir, "--log", log_path, "--requested", repr(requested)]))


def _opt_path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


def _read_status(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def simulate_exposure(
    exposure: MirageExposure,
    refs: MirageReferences,
    stars: Table | None,
    galaxies: Table | None,
    out_dir: str | os.PathLike,
    *,
    workdir: str | os.PathLike | None = None,
    log_path: str | os.PathLike | None = None,
    timeout_s: float | None = None,
    start: str | None = None,
) -> MirageOutputs:
    """Write the catalogs and yaml of one exposure into ``out_dir`` and run MIRAGE.

    Parameters
    ----------
    exposure : :class:`~simval.simulate.mirage_yaml.MirageExposure`.
    refs : :class:`~simval.simulate.mirage_yaml.MirageReferences`.
    stars, galaxies : astropy Tables (see :mod:`simval.simulate.mirage_catalogs`) or None.
    out_dir : directory of the products (catalogs, yaml, uncal, seed image, truth lists).
    workdir : scratch directory; default ``<out_dir>/<base>_mirage_work``.
    log_path : default ``<out_dir>/<base>_mirage.log``.
    start : how the MIRAGE child starts (:func:`run_mirage`).
    """
    out = Path(out_dir).absolute()
    base = exposure.base_name
    ps, gal = write_catalogs(stars, galaxies, out, base, filter_name=exposure.filter_name,
                             pupil=exposure.pupil)
    yaml_path = write_mirage_yaml(exposure, refs, ps, gal, out)
    return run_mirage(yaml_path, workdir or out / f"{base}_mirage_work",
                      log_path or out / f"{base}_mirage.log", timeout_s=timeout_s,
                      start=start)


# ---------------------------------------------------------------------------------------
# Child side
# ---------------------------------------------------------------------------------------

class _StageError(Exception):
    def __init__(self, stage: str, exc: BaseException):
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.stage = stage


@contextlib.contextmanager
def _stage(name: str) -> Iterator[None]:
    try:
        yield
    except _StageError:
        raise
    except Exception as exc:
        raise _StageError(name, exc) from exc


def _mirage_stage(exc: BaseException) -> str:
    """Name the MIRAGE stage from the traceback.

    ImgSim.create calls three stages in turn (seed image, dark preparation, ramp generation);
    the first of their sub-packages in the traceback names the stage, else the first other
    known MIRAGE sub-package (utilities, PSF selection...).
    """
    subs = []
    for frame in traceback.extract_tb(exc.__traceback__):
        parts = Path(frame.filename).parts
        if "mirage" in parts:
            i = len(parts) - 1 - parts[::-1].index("mirage")
            if i + 2 < len(parts):  # a file inside a sub-package of mirage
                subs.append(parts[i + 1])
    for preferred in (("seed_image", "dark", "ramp_generator"), tuple(MIRAGE_STAGES)):
        for sub in subs:
            if sub in preferred:
                return MIRAGE_STAGES[sub]
    return "MIRAGE ImgSim.create (mirage.imaging_simulator)"


#: Network attempts refused in this (child) process, for the status record.
_REFUSED: list[str] = []


def _forbid_network() -> None:
    """Refuse non-loopback socket connections and name lookups in this process.

    Each attempt is logged and counted (``network_attempts`` in the status file), since a
    library may swallow the ``OSError``.
    """
    import socket

    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def is_local(host: object) -> bool:
        return isinstance(host, str) and (host.startswith("127.") or host in
                                          ("::1", "localhost", "", "0.0.0.0"))

    def connect(self, address):
        if self.family == getattr(socket, "AF_UNIX", None) or is_local(
                address[0] if isinstance(address, tuple) else address):
            return real_connect(self, address)
        return refuse(f"connection to {address!r}")

    def getaddrinfo(host, *args, **kwargs):
        if host is None or is_local(host):
            return real_getaddrinfo(host, *args, **kwargs)
        return refuse(f"name lookup of {host!r}")

    def refuse(what: str):
        _REFUSED.append(what)
        logging.getLogger("simval.mirage").error("refused a network %s (offline run)", what)
        raise OSError(f"simval: MIRAGE run is offline; refused {what}")

    socket.socket.connect = connect
    socket.getaddrinfo = getaddrinfo


def _import_mirage(log_path: Path):
    """Import MIRAGE offline, then send every log record to ``log_path`` only."""

    offline.configure()
    offline.import_pysiaf()
    from mirage import imaging_simulator
    from mirage.reference_files import crds_tools  # noqa: F401  (imports configure logging)

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    handler = logging.FileHandler(log_path, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    return imaging_simulator


def _stage_ipc(params: dict[str, Any], workdir: Path) -> None:
    """Point Reffiles/ipc at a link in ``workdir``: MIRAGE writes its inverted kernel
    (``Kernel_to_add_IPC_effects_from_<name>``) next to the IPC file, which must not be the
    kit's read-only, shared reference directory."""
    ipc = params["Reffiles"].get("ipc", "None")
    if ipc == "None" or not params["Reffiles"].get("invertIPC", False):
        return
    staged = workdir / "ipc" / Path(ipc).name
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.unlink(missing_ok=True)
    try:
        staged.symlink_to(ipc)
    except OSError:
        shutil.copy2(ipc, staged)
    params["Reffiles"]["ipc"] = str(staged)


def _clear_previous(final_dir: Path, uncal_name: str) -> None:
    """Delete products of an earlier run of the same exposure (all start with the uncal stem)."""
    stem = uncal_name[:-len(".fits")]
    for old in final_dir.glob(f"{stem}*"):
        if old.is_file():
            old.unlink()


def _classify(files: list[Path], stem: str) -> dict[str, str | None]:
    def one(suffix: str) -> str | None:
        hits = [f for f in files if f.name.endswith(suffix)]
        return str(hits[0]) if hits else None

    seeds = [f for f in files if f.name.endswith("_seed_image.fits")
             and not f.name.endswith(DROPPED_SUFFIXES)]
    return {
        "uncal": one(f"{stem}.fits"),
        "seed_image": str(seeds[0]) if seeds else None,
        "point_sources": one("_pointsources.list"),
        "galaxies": one("_galaxySources.list"),
        "cosmic_rays": one("_cosmicrays.list"),
        "seed_sky": one(SEED_SKY_SUFFIX),
    }


#: MIRAGE products left behind: its dark-prep object, and the per-component seed images
#: (point sources, galaxies, extended), whose sum is the final seed image that truth reads
#: (2 x 67 MB per full-frame exposure, a fifth of a run's disk).
DROPPED_SUFFIXES = ("_linear_dark_prep_object.fits", "_ptsrc_seed_image.fits",
                    "_galaxy_seed_image.fits", "_extended_seed_image.fits")


#: The seed image's sky, written before the per-component seed images are left behind.
SEED_SKY_SUFFIX = "_seed_sky.json"


def _write_seed_sky(partial: Path, uncal_name: str) -> None:
    """``<stem>_seed_sky.json``: the median of the final seed image less the point-source
    and galaxy seed images (exact where MIRAGE added only the sky), ADU/s; the truth's
    background table reads it (:mod:`simval.truth.background`)."""
    from astropy.io import fits

    stem = uncal_name[:-len(".fits")]
    finals = sorted(partial.glob(f"{stem}*_final_seed_image.fits"))
    if not finals:
        return
    data = np.asarray(fits.getdata(finals[0], 1), float)
    for suffix in ("_ptsrc_seed_image.fits", "_galaxy_seed_image.fits"):
        for part in partial.glob(f"{stem}*{suffix}"):
            data -= np.asarray(fits.getdata(part, 1), float)
    write_text(partial / f"{stem}{SEED_SKY_SUFFIX}", json.dumps(
        {"seed_sky_adu_s": float(np.median(data)), "unit": "ADU/s",
         "definition": "median of the final seed image less the point-source and galaxy "
                       "seed images"}, indent=1) + "\n")


def _collect(partial: Path, final_dir: Path, uncal_name: str) -> dict[str, str | None]:
    """Move the products from ``partial`` into ``final_dir`` (not :data:`DROPPED_SUFFIXES`);
    the uncal goes last."""
    stem = uncal_name[:-len(".fits")]
    keep = sorted(f for f in partial.iterdir() if f.is_file() and f.name.startswith(stem)
                  and not f.name.endswith(DROPPED_SUFFIXES))
    uncal = partial / uncal_name
    if uncal not in keep:
        raise FileNotFoundError(f"MIRAGE finished without writing {uncal}")
    final_dir.mkdir(parents=True, exist_ok=True)
    moved = []
    for src in [f for f in keep if f != uncal] + [uncal]:
        dst = final_dir / src.name
        _move(src, dst)
        moved.append(dst)
    return _classify(moved, stem)


def _move(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)
    except OSError:  # another file system: copy next to the target, then rename
        tmp = dst.with_name(f".{dst.name}.part")
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
        src.unlink()


class _FrozenClock:
    """Stand-in for ``astropy.time.Time`` inside ``stdatamodels.jwst.datamodels.model_base``.

    That module uses ``Time`` only as ``Time.now().isot`` (stdatamodels 6.0), to stamp
    ``meta.date`` on model creation and on every save.
    """

    def __init__(self, isot: str):
        from astropy.time import Time

        self._time = Time(isot, format="isot", scale="utc")

    def now(self):
        return self._time


@contextlib.contextmanager
def frozen_save_time(isot: str) -> Iterator[str]:
    """Make stdatamodels stamp ``meta.date`` with ``isot`` instead of the wall clock.

    Why: ``JwstDataModel.on_save`` sets ``meta.date = Time.now().isot``. The value lands in the
    FITS ``DATE`` card, in the ASDF tree, and in the ``_fits_hash`` (a sha256 of all FITS
    headers) that stdatamodels stores in the ASDF tree, so patching the file afterwards cannot
    make it reproducible without forging that hash. With the clock frozen, stdatamodels
    itself writes a consistent, deterministic file. Yields the ISO string written.
    """
    from stdatamodels.jwst.datamodels import model_base

    clock = _FrozenClock(isot)
    original = model_base.Time
    model_base.Time = clock
    try:
        yield clock.now().isot
    finally:
        model_base.Time = original


def check_file_date(uncal: str | os.PathLike, isot: str) -> None:
    """Raise ``ValueError`` unless ``uncal``'s ``DATE`` is ``isot`` (the freeze worked)."""
    from astropy.io import fits

    with fits.open(uncal) as hdul:
        date = hdul[0].header.get("DATE")
        if "ASDF" not in hdul:
            raise ValueError(f"{uncal} has no ASDF extension (was use_JWST_pipeline False?)")
    if date != isot:
        raise ValueError(f"{uncal}: DATE is {date!r}, not the frozen {isot!r}; stdatamodels "
                         "no longer stamps meta.date through model_base.Time.now()")


def _peak_rss_mb() -> float:
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 2**20


def run_in_this_process(yaml_path: Path, workdir: Path, log_path: Path,
                        requested: float | None = None) -> dict[str, Any]:
    """The child's work (see module docstring); returns the status dict it writes.

    ``requested``: the parent's :func:`time.perf_counter` when it asked for this child (the
    ``start`` lap measures from there).

    Not meant to be called from a process that does anything else: MIRAGE takes over logging
    and global random state, and the current directory is changed to ``workdir``.
    """
    clock = [time.perf_counter() if requested is None else requested]
    seconds: dict[str, float] = {}

    def lap(name: str) -> None:
        now = time.perf_counter()
        seconds[name] = round(now - clock[0], 3)
        clock[0] = now

    if requested is not None:
        lap("start")

    with _stage("set-up"):
        params = read_parameters(yaml_path)
        section = params["simval"]
        os.environ.update(mirage_environment(params, base={}))
        _forbid_network()
        workdir.mkdir(parents=True, exist_ok=True)
        os.chdir(workdir)  # MIRAGE writes mirage_latest.log into the current directory
        # ... and copies it when it finishes; a forked child imported MIRAGE elsewhere.
        (workdir / MIRAGE_LOG_NAME).touch()
        final_dir = Path(params["Output"]["directory"])
        uncal_name = params["Output"]["file"]
        _clear_previous(final_dir, uncal_name)
        partial = workdir / PARTIAL_DIR
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        params["Output"]["directory"] = str(partial)
        _stage_ipc(params, workdir)
        # The run copy stays in workdir: MIRAGE records its path (YAMLFILE) in every product.
        run_yaml = write_text(workdir / yaml_path.name, dump_parameters(params))
    lap("set-up")
    with _stage("importing MIRAGE"):
        imaging_simulator = _import_mirage(log_path)
        import numpy as np

        np.random.seed(int(section["numpy_seed"]))  # MIRAGE's unseeded dark selection
    lap("import")
    logging.getLogger("simval.mirage").info("running MIRAGE on %s (from %s)", run_yaml,
                                            yaml_path)
    try:
        with frozen_save_time(section["file_date"]) as date:
            imaging_simulator.ImgSim(paramfile=str(run_yaml), offline=True).create()
    except Exception as exc:
        raise _StageError(_mirage_stage(exc), exc) from exc
    lap("mirage")
    with _stage("checking the file date"):
        check_file_date(partial / uncal_name, date)
    with _stage("moving products"):
        _write_seed_sky(partial, uncal_name)
        outputs = _collect(partial, final_dir, uncal_name)
        shutil.rmtree(partial, ignore_errors=True)
    lap("collect")
    return {"ok": True, "outputs": outputs, "peak_rss_mb": _peak_rss_mb(),
            "stage_seconds": seconds, "network_attempts": list(_REFUSED)}


def main(argv: list[str] | None = None) -> int:
    """Child entry point: ``python -m simval.simulate.mirage_backend YAML WORKDIR --log LOG``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("yaml", type=Path)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--requested", type=float, default=None,
                        help="the parent's time.perf_counter() when it started this child")
    args = parser.parse_args(argv)
    workdir = args.workdir.absolute()
    status_path = workdir / STATUS_FILE
    try:
        status = run_in_this_process(args.yaml.absolute(), workdir, args.log.absolute(),
                                     args.requested)
        code = 0
    except _StageError as exc:
        traceback.print_exc()
        status = {"ok": False, "stage": exc.stage, "error": str(exc)}
        code = 1
    workdir.mkdir(parents=True, exist_ok=True)
    status["finished_perf"] = time.perf_counter()
    write_text(status_path, json.dumps(status, indent=1, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
