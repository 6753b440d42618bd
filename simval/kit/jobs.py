"""What a kit build writes: one :class:`Job` per file (or small group of files).

Each job carries a content key computed from everything its output depends on (kit
version, seed, detector, filter, readout, parameters), so a job is redone only when its
inputs change, and a file name that embeds the key never refers to stale content.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simval.atomic import reproducible
from simval.instruments import nircam
from simval.kit import (
    apcorr,
    cosmic_rays,
    detector_refs,
    distortion,
    mirage_darks,
    photometry,
    psf,
    refmeta,
)
from simval.kit.detectors import Detector
from simval.kit.layout import KitLayout
from simval.kit.spec import DarkNeed, KitSpec, content_key

DETECTOR = "META.INSTRUMENT.DETECTOR"
FILTER = "META.INSTRUMENT.FILTER"
PUPIL = "META.INSTRUMENT.PUPIL"
SUBARRAY = "META.SUBARRAY.NAME"
CHANNEL = "META.INSTRUMENT.CHANNEL"
MODULE = "META.INSTRUMENT.MODULE"


@dataclass(frozen=True)
class Job:
    """One unit of kit content.

    job_id : stable name, e.g. ``"flat/NRCB1/F115W"``.
    key : content key of everything the output depends on.
    func : module-level writer; called as ``func(target, **kwargs)``.
    target : output path relative to the kit root (a file, or a directory for writers that
        name their own files, like MIRAGE's PSF libraries).
    reftype : CRDS reference type if the output is a CRDS reference, else ``None``.
    match : CRDS selection keys and values of the reference.
    after : jobs whose outputs this one reads (it runs once they are complete).
    """

    job_id: str
    key: str
    func: Callable[..., Any]
    target: str
    kwargs: dict = field(default_factory=dict)
    reftype: str | None = None
    match: dict = field(default_factory=dict)
    after: tuple[str, ...] = ()

    def run(self, root: Path) -> tuple[list[Path], dict]:
        """Write the output under ``root``; return the files written and extra info."""
        target = root / self.target
        with reproducible(refmeta.USEAFTER):
            result = self.func(target, **self.kwargs)
        if isinstance(result, Path):
            return [result], {}
        if isinstance(result, list) and all(isinstance(p, Path) for p in result):
            return list(result), {}
        if isinstance(result, tuple) and result and isinstance(result[0], Path):
            return [result[0]], {"values": [float(x) for x in result[1:]]}
        return [target], {}


def _ref(layout: KitLayout, reftype: str, det: Detector, ext: str, key: str,
         *qualifiers: str) -> str:
    parts = ["simval_nircam", reftype, det.name.lower(), *[q.lower() for q in qualifiers], key]
    path = layout.references / ("_".join(parts) + "." + ext)
    return path.relative_to(layout.root).as_posix()


def _shared_ref(layout: KitLayout, reftype: str, ext: str, key: str) -> str:
    path = layout.references / f"simval_nircam_{reftype}_{key}.{ext}"
    return path.relative_to(layout.root).as_posix()


def _detector_jobs(spec: KitSpec, layout: KitLayout, det: Detector) -> list[Job]:
    seed, v = spec.seed, spec.version
    jobs = []
    simple = {
        "mask": detector_refs.write_mask,
        "saturation": detector_refs.write_saturation,
        "linearity": detector_refs.write_linearity,
        "gain": detector_refs.write_gain,
        "readnoise": detector_refs.write_readnoise,
        "ipc": detector_refs.write_ipc,
        "superbias": detector_refs.write_superbias,
    }
    for reftype, func in simple.items():
        key = content_key(v, seed, reftype, det.name)
        match = {DETECTOR: det.name}
        if reftype == "superbias":
            # One full-frame superbias serves every readout window (the pipeline cuts it).
            match[SUBARRAY] = "N/A"
        jobs.append(Job(f"{reftype}/{det.name}", key, func,
                        _ref(layout, reftype, det, "fits", key),
                        {"detector": det, "seed": seed}, reftype, match))
    pipeline_darks = sorted({(n.subarray, n.nframes) for n in spec.darks_for(det)})
    for need in spec.darks_for(det):
        jobs.extend(_mirage_dark_job(spec, layout, det, need, r)
                    for r in range(need.realizations))
    for subarray, nframes in pipeline_darks:
        need = DarkNeed(subarray, nframes)
        key = content_key(v, seed, "dark", det.name, need.subarray, need.nframes)
        jobs.append(Job(f"dark/{det.name}/{need.subarray}/{need.nframes}f", key,
                        detector_refs.write_dark,
                        _ref(layout, "dark", det, "fits", key, need.subarray),
                        {"detector": det, "subarray": need.subarray, "nframes": need.nframes,
                         "seed": seed},
                        "dark", {DETECTOR: det.name, SUBARRAY: need.subarray}))
    key = content_key(v, "distortion", det.name)
    jobs.append(Job(f"distortion/{det.name}", key, distortion.write_distortion,
                    _ref(layout, "distortion", det, "asdf", key), {"detector": det},
                    "distortion", {DETECTOR: det.name, CHANNEL: det.channel}))
    key = content_key(v, "area", det.name)
    jobs.append(Job(f"area/{det.name}", key, distortion.write_area,
                    _ref(layout, "area", det, "fits", key), {"detector": det},
                    "area", {DETECTOR: det.name}))
    key = content_key(v, "photom", det.name)
    jobs.append(Job(f"photom/{det.name}", key, photometry.write_photom,
                    _ref(layout, "photom", det, "fits", key), {"detector": det},
                    "photom", {DETECTOR: det.name}))
    key = content_key(v, seed, "cosmic_rays", det.name)
    jobs.append(Job(f"cosmic_rays/{det.name}", key, cosmic_rays.write_cr_library,
                    layout.cosmic_rays.relative_to(layout.root).as_posix(),
                    {"detector": det, "seed": seed}))
    for filt in spec.filters_for(det):
        jobs.extend(_filter_jobs(spec, layout, det, filt))
    return jobs


def _shared_jobs(spec: KitSpec, layout: KitLayout) -> list[Job]:
    """References that CRDS selects for several detectors at once.

    FILTEROFFSET is selected by channel and module, APCORR and ABVEGAOFFSET by nothing
    (one table whose rows are keyed by filter and pupil), as in CRDS's NIRCam rules. Their
    content depends on the spec's filters, so their job ids carry the content key: the
    tables of several scenarios live side by side in one kit, and each scenario's context
    selects its own (:func:`simval.kit.build.build_kit`).
    """
    v, seed = spec.version, spec.seed
    dets = spec.detector_objects()
    jobs = []
    groups: dict[tuple[str, str], list[Detector]] = {}
    for det in dets:
        groups.setdefault((det.channel, det.module), []).append(det)
    for (channel, module), members in sorted(groups.items()):
        filters = spec.filters_for(members[0])
        key = content_key(v, "filteroffset", channel, module, filters)
        jobs.append(Job(f"filteroffset/{channel}/{module}/{key}", key,
                        distortion.write_filteroffset,
                        _ref(layout, "filteroffset", members[0], "asdf", key),
                        {"detector": members[0], "filters": filters},
                        "filteroffset", {CHANNEL: channel, MODULE: module}))
    names = tuple(d.name for d in dets)
    key = content_key(v, "abvegaoffset", names, spec.filters)
    jobs.append(Job(f"abvegaoffset/{key}", key, photometry.write_abvegaoffset,
                    _shared_ref(layout, "abvegaoffset", "asdf", key),
                    {"detector": list(dets), "filters": spec.filters}, "abvegaoffset", {}))
    per_filter = [(f, next(d for d in dets if f in d.filters)) for f in spec.filters]
    key = content_key(v, seed, "apcorr", [(f, d.name) for f, d in per_filter])
    jobs.append(Job(f"apcorr/{key}", key, apcorr.write_apcorr,
                    _shared_ref(layout, "apcorr", "fits", key),
                    {"detector": {f: d for f, d in per_filter}, "filters": list(spec.filters),
                     "seed": seed, "library_dir": layout.psf_library},
                    "apcorr", {}, after=tuple(f"psf_library/{d.name}/{f}"
                                              for f, d in per_filter)))
    return jobs


def mirage_dark_job_id(detector: str, subarray: str, nframes: int,
                       correlated_noise: bool = True, realization: int = 0) -> str:
    """Job id of MIRAGE's linearized dark of ``nframes`` frames (``.../white`` for the
    white-noise variant, ``.../r<N>`` for realization N > 0). Darks of different lengths
    have different ids, so scenarios with longer ramps do not replace a shorter one."""
    base = f"mirage_dark/{detector}/{subarray.upper()}/{int(nframes)}f"
    if not correlated_noise:
        base += "/white"
    return base if realization == 0 else f"{base}/r{realization}"


def _mirage_dark_job(spec: KitSpec, layout: KitLayout, det: Detector, need: DarkNeed,
                     realization: int) -> Job:
    parts: tuple = (spec.version, spec.seed, "mirage_dark", det.name, need.subarray,
                    need.nframes, need.correlated_noise)
    key = content_key(*parts, realization) if realization else content_key(*parts)
    variant = "" if need.correlated_noise else "_white"
    name = f"simval_{det.name.lower()}_{need.subarray.lower()}{variant}_linear_dark_{key}.fits"
    directory = layout.darks(det.name, need.subarray)
    if not need.correlated_noise:
        directory = directory / "white"  # MIRAGE may draw from every file of a directory
    return Job(mirage_dark_job_id(det.name, need.subarray, need.nframes,
                                  need.correlated_noise, realization),
               key, mirage_darks.write_mirage_dark,
               (directory / name).relative_to(layout.root).as_posix(),
               {"detector": det, "subarray": need.subarray, "nframes": need.nframes,
                "seed": spec.seed, "correlated_noise": need.correlated_noise,
                "realization": realization})


def _filter_jobs(spec: KitSpec, layout: KitLayout, det: Detector, filt: str) -> list[Job]:
    seed, v = spec.seed, spec.version
    fw, pw = nircam.wheel_elements(filt)
    key = content_key(v, seed, "flat", det.name, filt)
    flat = Job(f"flat/{det.name}/{filt}", key, detector_refs.write_flat,
               _ref(layout, "flat", det, "fits", key, filt),
               {"detector": det, "band": filt, "seed": seed},
               "flat", {DETECTOR: det.name, FILTER: fw, PUPIL: pw})
    key = content_key(v, seed, "psf_library", det.name, filt)
    lib = Job(f"psf_library/{det.name}/{filt}", key, psf.write_psf_library,
              layout.psf_library.relative_to(layout.root).as_posix(),
              {"detector": det, "band": filt, "seed": seed})
    key = content_key(v, seed, "psf_wings", det.name, filt)
    wings = Job(f"psf_wings/{det.name}/{filt}", key, psf.write_psf_wings,
                layout.psf_wings.relative_to(layout.root).as_posix(),
                {"detector": det, "band": filt, "seed": seed})
    return [flat, lib, wings]


def plan_jobs(spec: KitSpec, layout: KitLayout) -> list[Job]:
    """Every job that ``spec`` needs, in a deterministic order."""
    jobs: list[Job] = []
    for det in spec.detector_objects():
        jobs.extend(_detector_jobs(spec, layout, det))
    return jobs + _shared_jobs(spec, layout)
