"""What a MIRI kit holds (:class:`MiriKitSpec`) and the jobs that write it.

A MIRI kit is its own directory (``miri-seed<seed>-v<version>``) with its own CRDS cache,
whose contexts select MIRI references only (:class:`simval.kit.layout.KitLayout`). It is
built by the same machinery as the NIRCam kit (:func:`simval.kit.build.build_kit`): one
job per file, content keys, a registry, contexts minted when the references change.

DARK and RESET are 4-D and cut to a subarray: one pair per subarray and read pattern,
as long as the longest exposure (groups) and with up to 2 integrations (the pipeline uses
a reference's last integration for later ones; the synthetic detector's dark and reset
anomaly are the same in every integration).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

from simval.instruments import miri
from simval.instruments.miri_detector import MiriEffects, Readout
from simval.kit import miri_imaging_refs as imaging
from simval.kit import miri_psf, miri_refs
from simval.kit.jobs import Job
from simval.kit.layout import KitLayout
from simval.kit.spec import DEFAULT_SEED, content_key

__all__ = ["MIRI_KIT_VERSION", "MiriKitSpec", "plan_miri_jobs"]

#: Bumped whenever a MIRI kit file's content changes for the same inputs.
MIRI_KIT_VERSION = 2
#: Integrations in a DARK or RESET reference at most.
MAX_REFERENCE_INTS = 2

DETECTOR = "META.INSTRUMENT.DETECTOR"
FILTER = "META.INSTRUMENT.FILTER"
SUBARRAY = "META.SUBARRAY.NAME"
READPATT = "META.EXPOSURE.READPATT"
MIRIMAGE = "MIRIMAGE"


@dataclass(frozen=True)
class MiriKitSpec:
    """The content of a synthetic MIRI imager kit.

    filters : imaging filters (each must have a kit calibration, ``miri.calibrated_filter``).
    readouts : the readouts of the scenario's exposures; the DARK and RESET references
        cover the longest per subarray and read pattern.
    seed : seed of the synthetic detector and every random draw (same seed, same files).
    """

    filters: tuple[str, ...] = ("F770W",)
    readouts: tuple[Readout, ...] = (Readout("SUB256", "FASTR1", 10, 1),)
    seed: int = DEFAULT_SEED
    version: int = field(default=MIRI_KIT_VERSION)
    instrument: ClassVar[str] = "miri"

    def __post_init__(self) -> None:
        filts = tuple(sorted({miri.calibrated_filter(f).name for f in self.filters}))
        if not filts:
            raise ValueError("a MIRI kit needs at least one filter")
        if not self.readouts:
            raise ValueError("a MIRI kit needs at least one readout")
        longest: dict[tuple[str, str], Readout] = {}
        for r in self.readouts:
            key = (miri.get_subarray(r.subarray).name, r.pattern.upper())
            old = longest.get(key)
            ngroups = max(r.ngroups, old.ngroups if old else 0)
            nints = min(MAX_REFERENCE_INTS, max(r.nints, old.nints if old else 0))
            longest[key] = Readout(key[0], key[1], ngroups, nints)
        if int(self.seed) < 0:
            raise ValueError(f"kit seed must be a non-negative integer, got {self.seed}")
        object.__setattr__(self, "filters", filts)
        object.__setattr__(self, "readouts", tuple(longest[k] for k in sorted(longest)))
        object.__setattr__(self, "seed", int(self.seed))

    def to_dict(self) -> dict:
        return {**asdict(self), "instrument": self.instrument}


def _ref(layout: KitLayout, reftype: str, ext: str, key: str, *qualifiers: str) -> str:
    parts = ["simval_miri", reftype, *[q.lower() for q in qualifiers], key]
    path = layout.references / ("_".join(parts) + "." + ext)
    return path.relative_to(layout.root).as_posix()


def psf_path(layout: KitLayout, filter_name: str, key: str) -> str:
    """Kit-relative path of a filter's PSF file."""
    return f"miri_psf/simval_miri_psf_{filter_name.lower()}_{key}.fits"


def plan_miri_jobs(spec: MiriKitSpec, layout: KitLayout) -> list[Job]:
    """Every job ``spec`` needs, in a deterministic order."""
    v, seed = spec.version, spec.seed
    jobs: list[Job] = []
    for reftype, write in miri_refs.DETECTOR_WRITERS.items():
        key = content_key("miri", v, seed, reftype)
        jobs.append(Job(f"{reftype}/{MIRIMAGE}", key, write, _ref(layout, reftype, "fits", key),
                        {"seed": seed}, reftype, {DETECTOR: MIRIMAGE}))
    effects = MiriEffects()
    for r in spec.readouts:
        shape = (r.subarray, r.pattern, r.ngroups, r.nints)
        key = content_key("miri", v, seed, "dark", shape)
        jobs.append(Job(f"dark/{MIRIMAGE}/{r.subarray}/{r.pattern}/{key}", key,
                        miri_refs.write_miri_dark,
                        _ref(layout, "dark", "fits", key, r.subarray, r.pattern),
                        {"readout": r, "seed": seed}, "dark",
                        {DETECTOR: MIRIMAGE, READPATT: r.pattern, SUBARRAY: r.subarray}))
        key = content_key("miri", v, seed, "reset", shape, effects.reset_amp_dn,
                          effects.reset_tau_groups)
        jobs.append(Job(f"reset/{MIRIMAGE}/{r.subarray}/{r.pattern}/{key}", key,
                        miri_refs.write_miri_reset,
                        _ref(layout, "reset", "fits", key, r.subarray, r.pattern),
                        {"readout": r, "effects": effects, "seed": seed}, "reset",
                        {DETECTOR: MIRIMAGE, SUBARRAY: r.subarray, READPATT: r.pattern}))
    singles = [("rscd", miri_refs.write_miri_rscd, "fits", {"seed": seed}, (seed,)),
               ("emicorr", imaging.write_miri_emicorr, "asdf", {"effects": effects},
                (effects.emi,)),
               ("distortion", imaging.write_miri_distortion, "asdf", {}, ()),
               ("area", imaging.write_miri_area, "fits", {}, ())]
    for reftype, write, ext, kwargs, depends in singles:
        key = content_key("miri", v, reftype, *depends)
        match = {} if reftype == "emicorr" else {DETECTOR: MIRIMAGE}
        jobs.append(Job(f"{reftype}/{MIRIMAGE}", key, write, _ref(layout, reftype, ext, key),
                        kwargs, reftype, match))
    filters = spec.filters
    for reftype, write, ext in (("filteroffset", imaging.write_miri_filteroffset, "asdf"),
                                ("photom", imaging.write_miri_photom, "fits"),
                                ("abvegaoffset", imaging.write_miri_abvegaoffset, "asdf")):
        key = content_key("miri", v, reftype, filters,
                          [miri.FILTERS[f].photmjsr for f in filters])
        match = {} if reftype == "abvegaoffset" else {DETECTOR: MIRIMAGE}
        jobs.append(Job(f"{reftype}/{key}", key, write, _ref(layout, reftype, ext, key),
                        {"filters": filters}, reftype, match))
    psfs = {}
    for filt in filters:
        key = content_key("miri", v, seed, "flat", filt)
        jobs.append(Job(f"flat/{MIRIMAGE}/{filt}", key, imaging.write_miri_flat,
                        _ref(layout, "flat", "fits", key, filt),
                        {"filter_name": filt, "seed": seed}, "flat",
                        {DETECTOR: MIRIMAGE, FILTER: filt}))
        key = content_key("miri", v, "psf", filt, miri_psf.FOV_PIXELS, miri_psf.OVERSAMPLE)
        job = Job(f"psf/{filt}", key, miri_psf.write_miri_psf, psf_path(layout, filt, key),
                  {"filter_name": filt})
        jobs.append(job)
        psfs[filt] = job
    key = content_key("miri", v, seed, "apcorr", [(f, j.key) for f, j in psfs.items()])
    jobs.append(Job(f"apcorr/{key}", key, imaging.write_miri_apcorr,
                    _ref(layout, "apcorr", "fits", key),
                    {"psf_paths": {f: str(layout.root / j.target) for f, j in psfs.items()},
                     "seed": seed},
                    "apcorr", {}, after=tuple(j.job_id for j in psfs.values())))
    return jobs
