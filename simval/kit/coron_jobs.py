"""A NIRCam coronagraphy kit: what it holds (:class:`CoronKitSpec`) and the jobs that write
it (:func:`plan_coron_jobs`), run by :func:`simval.kit.build.build_kit` like the imaging
kits. It is its own kit directory, ``nircam_coron-seed<seed>-v<version>``, with a CRDS cache
whose contexts hold the coronagraphic references (:mod:`simval.kit.coron_refs`) and N/A for
every other type calwebb_image2 and calwebb_coron3 ask for: the imaging kit's DISTORTION of
the same detector would otherwise compete with the mask's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

from simval.instruments.nircam_coron import get_mask
from simval.kit import coron_refs
from simval.kit.coron_psf import LYOT, lyot_throughput
from simval.kit.crds_mappings import CHANNEL, CORONAGRAPH, DETECTOR, FILTER, MODULE, PUPIL, SUBARRAY
from simval.kit.jobs import Job
from simval.kit.layout import KitLayout
from simval.kit.spec import DEFAULT_SEED, content_key

__all__ = ["CORON_KIT_VERSION", "CoronKitSpec", "plan_coron_jobs"]

#: Bumped whenever a coronagraphy kit file's content changes for the same inputs.
CORON_KIT_VERSION = 2


@dataclass(frozen=True)
class CoronKitSpec:
    """The content of a synthetic coronagraphy kit: masks, filters, seed."""

    masks: tuple[str, ...] = ("MASKA335R",)
    filters: tuple[str, ...] = ("F335M",)
    seed: int = DEFAULT_SEED
    version: int = field(default=CORON_KIT_VERSION)
    instrument: ClassVar[str] = "nircam"
    prefix: ClassVar[str] = "nircam_coron"

    def __post_init__(self) -> None:
        masks = tuple(sorted({get_mask(m).name for m in self.masks}))
        if not masks:
            raise ValueError("a coronagraphy kit needs at least one mask")
        filters = tuple(sorted({str(f).strip().upper() for f in self.filters}))
        for m in masks:
            allowed = get_mask(m).filters
            bad = [f for f in filters if f not in allowed]
            if bad:
                raise ValueError(f"{m} is used with {', '.join(allowed)}; not {', '.join(bad)}")
        object.__setattr__(self, "masks", masks)
        object.__setattr__(self, "filters", filters)
        object.__setattr__(self, "seed", int(self.seed))

    def to_dict(self) -> dict:
        return {**asdict(self), "instrument": self.instrument, "prefix": self.prefix}


def _ref(layout: KitLayout, reftype: str, ext: str, key: str, *qualifiers: str) -> str:
    parts = ["simval_coron", reftype, *[q.lower() for q in qualifiers], key]
    path = layout.references / ("_".join(parts) + "." + ext)
    return path.relative_to(layout.root).as_posix()


def plan_coron_jobs(spec: CoronKitSpec, layout: KitLayout) -> list[Job]:
    """Every job ``spec`` needs, in a deterministic order."""
    v = spec.version
    throughput = lyot_throughput(LYOT)
    jobs: list[Job] = []
    for name in spec.masks:
        mask = get_mask(name)
        det = mask.detector
        where = {DETECTOR: det}
        key = content_key("coron", v, "distortion", mask.full_aperture)
        jobs.append(Job(f"distortion/{name}", key, coron_refs.write_coron_distortion,
                        _ref(layout, "distortion", "asdf", key, name), {"mask_name": name},
                        "distortion", {**where, CHANNEL: "LONG"}))
        key = content_key("coron", v, "area", mask.full_aperture)
        jobs.append(Job(f"area/{name}", key, coron_refs.write_coron_area,
                        _ref(layout, "area", "fits", key, name), {"mask_name": name},
                        "area", where))
        key = content_key("coron", v, "filteroffset", name, spec.filters)
        jobs.append(Job(f"filteroffset/{name}", key, coron_refs.write_coron_filteroffset,
                        _ref(layout, "filteroffset", "asdf", key, name),
                        {"mask_name": name, "filters": spec.filters}, "filteroffset",
                        {CHANNEL: "LONG", MODULE: det[3]}))
        key = content_key("coron", v, "photom", name, spec.filters, round(throughput, 6))
        jobs.append(Job(f"photom/{name}", key, coron_refs.write_coron_photom,
                        _ref(layout, "photom", "fits", key, name),
                        {"mask_name": name, "filters": spec.filters,
                         "lyot_throughput": throughput}, "photom", where))
        for filt in spec.filters:
            key = content_key("coron", v, "flat", name, filt)
            jobs.append(Job(f"flat/{name}/{filt}", key, coron_refs.write_coron_flat,
                            _ref(layout, "flat", "fits", key, name, filt),
                            {"mask_name": name, "filter_name": filt}, "flat",
                            {**where, FILTER: filt, PUPIL: mask.pupil}))
            key = content_key("coron", v, "psfmask", name, filt, mask.sigma)
            jobs.append(Job(f"psfmask/{name}/{filt}", key, coron_refs.write_coron_psfmask,
                            _ref(layout, "psfmask", "fits", key, name, filt),
                            {"mask_name": name, "filter_name": filt}, "psfmask",
                            {FILTER: filt, CORONAGRAPH: name, SUBARRAY: mask.subarray}))
    return jobs
