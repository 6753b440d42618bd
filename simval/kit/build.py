"""Build (or reuse) the offline synthetic instrument kit for a :class:`KitSpec`.

The build is a set of independent jobs (one file or one small group of files each, see
:mod:`simval.kit.jobs`). A job whose content key is already registered with intact outputs
is skipped; the others run in a process pool, each writing atomically. When every reference
exists, the kit's CRDS context is written: the newest context is reused if it already
selects exactly these references, otherwise a new ``jwst_NNNN.pmap`` is written that adds
them to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from simval.kit import crds_cache
from simval.kit.coron_jobs import CoronKitSpec, plan_coron_jobs
from simval.kit.detectors import get_detector
from simval.kit.jobs import Job, mirage_dark_job_id, plan_jobs
from simval.kit.layout import KitLayout
from simval.kit.miri_jobs import MiriKitSpec, plan_miri_jobs
from simval.kit.registry import Registry, locked
from simval.kit.spec import KitSpec

#: What a kit may be built for: NIRCam (MIRAGE and the pipeline) or the MIRI imager.
AnyKitSpec = KitSpec | MiriKitSpec | CoronKitSpec


def plan_for(spec: AnyKitSpec, layout: KitLayout) -> list[Job]:
    """The jobs of a NIRCam imaging, MIRI or NIRCam coronagraphy kit spec."""
    if isinstance(spec, MiriKitSpec):
        return plan_miri_jobs(spec, layout)
    if isinstance(spec, CoronKitSpec):
        return plan_coron_jobs(spec, layout)
    return plan_jobs(spec, layout)


def kit_layout(spec: AnyKitSpec, kit_dir: str | os.PathLike | None = None) -> KitLayout:
    """Where the kit of ``spec`` lives (one directory per kind, seed and version:
    ``nircam-``, ``miri-``, ``nircam_coron-seed<seed>-v<version>``)."""
    if isinstance(spec, MiriKitSpec):
        return KitLayout.for_seed(spec.seed, spec.version, kit_dir, "miri")
    if isinstance(spec, CoronKitSpec):
        return KitLayout.for_seed(spec.seed, spec.version, kit_dir, "nircam",
                                  prefix=spec.prefix)
    return KitLayout.for_seed(spec.seed, spec.version, kit_dir, "nircam")


@dataclass(frozen=True)
class Kit:
    """A built kit: where it is, its CRDS context, and what it holds."""

    layout: KitLayout
    context: str
    spec: AnyKitSpec
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def crds_path(self) -> Path:
        return self.layout.crds_path

    @property
    def mirage_data(self) -> Path:
        return self.layout.mirage_data

    def crds_env(self, context: str | None = None) -> dict[str, str]:
        """Environment variables that make CRDS serve this kit offline."""
        return crds_cache.crds_environment(self.layout, context or self.context)

    def outputs(self, job_id: str) -> list[Path]:
        """Absolute paths written by one job (e.g. ``"flat/NRCB1/F115W"``). A job id prefix
        that names one of this kit spec's jobs also works (``"apcorr"`` is the spec's
        ``"apcorr/<key>"``, ``"dark/NRCB1/SUB400P"`` its ``".../<n>f"``)."""
        reg = Registry.load(self.layout)
        if job_id not in reg.jobs:
            mine = [j.job_id for j in plan_for(self.spec, self.layout)
                    if j.job_id.startswith(job_id + "/")]
            job_id = mine[0] if len(mine) == 1 else job_id
        if job_id not in reg.jobs:
            raise KeyError(f"the kit at {self.layout.root} has no {job_id!r}; "
                           f"it holds: {', '.join(sorted(reg.jobs))}")
        return [self.layout.root / rel for rel in reg.jobs[job_id]["outputs"]]

    def output(self, job_id: str) -> Path:
        """The single file written by ``job_id``."""
        (path,) = self.outputs(job_id)
        return path

    def mirage_references(self, detector: str, band: str, subarray: str, *,
                          correlated_noise: bool = True, realization: int = 0,
                          nframes: int | None = None) -> dict[str, Path]:
        """The kit files MIRAGE reads for one exposure, keyed by MIRAGE's yaml names.

        MIRAGE and the pipeline read the same files (distortion, flat, linearity, ...),
        which is what makes a perfect simulation calibrate back to its input.
        ``correlated_noise`` picks the flight-like dark (1/f noise, frame offsets) or the
        white-noise one; ``realization`` which of the window's independent dark noise
        realizations the exposure uses (each exposure should have its own); ``nframes`` the
        dark's length in frames (default: the longest the kit holds).
        """
        det = get_detector(detector).name
        filt = band.upper()
        sub = subarray.upper()
        if nframes is None:
            nframes = self._longest_dark(det, sub)
        dark = self.output(mirage_dark_job_id(det, sub, nframes, correlated_noise, realization))
        return {
            "dark": dark,
            "linearized_darkfile": dark,
            "badpixmask": self.output(f"mask/{det}"),
            "superbias": self.output(f"superbias/{det}"),
            "linearity": self.output(f"linearity/{det}"),
            "saturation": self.output(f"saturation/{det}"),
            "gain": self.output(f"gain/{det}"),
            "pixelflat": self.output(f"flat/{det}/{filt}"),
            "ipc": self.output(f"ipc/{det}"),
            "astrometric": self.output(f"distortion/{det}"),
            "pixelAreaMap": self.output(f"area/{det}"),
            "photom": self.output(f"photom/{det}"),
            "psfpath": self.layout.psf_library,
            "psf_wings": self.layout.psf_wings,
            "cosmic_ray_library": self.layout.cosmic_rays,
        }

    def content_sha256(self) -> str:
        """sha256 of what this kit spec's references are: each of its jobs' key and output
        sha256s (from the registry) and the context. Other scenarios' additions to the same
        kit leave it unchanged."""
        reg = Registry.load(self.layout)
        jobs = {}
        for job in plan_for(self.spec, self.layout):
            entry = reg.jobs.get(job.job_id) or {}
            jobs[job.job_id] = [entry.get("key"),
                                [(rel, (reg.files.get(rel) or {}).get("sha256"))
                                 for rel in entry.get("outputs", [])]]
        text = json.dumps({"context": self.context, "jobs": jobs}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def _longest_dark(self, detector: str, subarray: str) -> int:
        """Frames of the longest MIRAGE dark the kit holds for a detector's window."""
        prefix = f"mirage_dark/{detector}/{subarray}/"
        lengths = [int(job_id[len(prefix):].split("/")[0].rstrip("f"))
                   for job_id in Registry.load(self.layout).jobs if job_id.startswith(prefix)]
        if not lengths:
            raise KeyError(f"the kit at {self.layout.root} has no MIRAGE dark for {detector} "
                           f"{subarray}")
        return max(lengths)


ProgressCallback = Callable[[str, int, int], None]


class KitBuildError(RuntimeError):
    """A kit job failed; the message names the job and the cause."""


def _run_job(job: Job, root: str) -> tuple[str, list[str], dict, float]:
    t0 = time.perf_counter()
    outputs, info = job.run(Path(root))
    return job.job_id, [str(p) for p in outputs], info, time.perf_counter() - t0


def build_kit(
    spec: AnyKitSpec,
    kit_dir: str | os.PathLike | None = None,
    *,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> Kit:
    """Build what ``spec`` needs that the kit does not hold yet, and return the kit.

    Parameters
    ----------
    spec : what to build: a NIRCam :class:`KitSpec` (detectors, filters, darks, seed) or a
        :class:`MiriKitSpec` (filters, readouts, seed).
    kit_dir : parent directory of kits; default ``$SIMVAL_KIT_DIR`` or the user cache dir.
    workers : processes for independent jobs; default ``min(2, cpu count)``.
    progress : called as ``progress(job_id, n_done, n_total)`` after each job.
    """
    layout = kit_layout(spec, kit_dir)
    jobs = plan_for(spec, layout)
    with locked(layout):
        reg = Registry.load(layout)
        reg.seed, reg.version = spec.seed, spec.version
        todo = [j for j in jobs if not reg.job_complete(layout, j.job_id, j.key)]
        timings: dict[str, float] = {}
        n_workers = workers or min(2, os.cpu_count() or 1)
        done = len(jobs) - len(todo)
        if todo:
            done = _run_jobs(layout, reg, jobs, todo, n_workers, timings, progress, done)
        context = _ensure_context(layout, reg, jobs)
        reg.save(layout)
    return Kit(layout=layout, context=context, spec=spec, timings=timings)


def _run_jobs(layout: KitLayout, reg: Registry, jobs: list[Job], todo: list[Job],
              n_workers: int, timings: dict[str, float],
              progress: ProgressCallback | None, done: int) -> int:
    """Run ``todo`` in a process pool, in waves: a job starts once the jobs it reads are
    complete. Each finished job is registered at once, so an interruption keeps it."""
    keys = {j.job_id: j.key for j in jobs}
    pending = list(todo)
    with ProcessPoolExecutor(max_workers=n_workers) as pool:
        while pending:
            ready = [j for j in pending
                     if all(reg.job_complete(layout, a, keys[a]) for a in j.after)]
            if not ready:
                raise RuntimeError("kit jobs wait for jobs that never ran: "
                                   + ", ".join(f"{j.job_id} after {j.after}" for j in pending))
            futures = {pool.submit(_run_job, j, str(layout.root)): j for j in ready}
            try:
                for fut in as_completed(futures):
                    try:
                        job_id, outputs, info, seconds = fut.result()
                    except Exception as err:
                        raise KitBuildError(
                            f"kit job {futures[fut].job_id} failed: {type(err).__name__}: "
                            f"{err}. Files finished before it are kept; run the build "
                            f"again once the cause is fixed") from err
                    reg.record_job(layout, job_id, futures[fut].key,
                                   [Path(p) for p in outputs], info)
                    reg.save(layout)
                    timings[job_id] = seconds
                    done += 1
                    if progress:
                        progress(job_id, done, len(jobs))
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
            pending = [j for j in pending if j not in ready]
    return done


def _match_key(match: dict[str, str]) -> str:
    return json.dumps(match, sort_keys=True)


def _selects(entries: dict[str, dict[str, str]], wanted: dict[str, dict[str, str]]) -> bool:
    """True if a context's ``entries`` select the ``wanted`` file for every selection."""
    return all(entries.get(reftype, {}).get(match) == name
               for reftype, files in wanted.items() for match, name in files.items())


def _ensure_context(layout: KitLayout, reg: Registry, jobs: list[Job]) -> str:
    """The newest base context that selects every reference of ``jobs``; else a new one that
    extends the newest.

    Searching every context, not only the newest, keeps a scenario's context stable when
    another scenario on the same kit minted a newer one (different filters change the shared
    APCORR/ABVEGAOFFSET/FILTEROFFSET tables, a longer ramp the dark): resuming the first
    scenario then finds its calibration stages cached.
    """
    wanted: dict[str, dict[str, str]] = {}
    for job in jobs:
        if job.reftype is None:
            continue
        (rel,) = reg.jobs[job.job_id]["outputs"]
        wanted.setdefault(job.reftype, {})[_match_key(job.match)] = Path(rel).name
    base_names = sorted(name for name, c in reg.contexts.items() if c.get("base") is None)
    for name in reversed(base_names):
        if (_selects(reg.contexts[name]["entries"], wanted)
                and not crds_cache.missing_references(layout, name)):
            return name
    latest = base_names[-1] if base_names else None
    merged: dict[str, dict[str, str]] = {}
    if latest is not None:
        for reftype, files in reg.contexts[latest]["entries"].items():
            merged[reftype] = dict(files)
    for reftype, files in wanted.items():
        # A newer file with the same selection keys replaces the older one.
        merged.setdefault(reftype, {}).update(files)
    entries = {
        reftype: [crds_cache.RefEntry(filename=f, match=json.loads(m))
                  for m, f in sorted(files.items())]
        for reftype, files in sorted(merged.items())
    }
    name = crds_cache.write_context(layout, crds_cache.next_context_number(layout), entries)
    reg.contexts[name] = {"entries": merged, "base": None, "changes": {}}
    return name
