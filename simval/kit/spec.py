"""What a kit must contain: detectors, filters, dark readouts and the seed.

A :class:`KitSpec` is what a scenario needs from the synthetic instrument; the kit builds
only that and caches every file by the content key of what it depends on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from simval.instruments.nircam import Detector, check_filter, get_detector
from simval.kit.readout import has_subarray

#: Bumped whenever the content of a generated file changes for the same inputs; part of
#: every content key, so an old kit is never mistaken for a new one.
KIT_VERSION = 3   # 3: the READNOISE reference holds CDS noise (was single-read)
DEFAULT_SEED = 20221


@dataclass(frozen=True, order=True)
class DarkNeed:
    """A dark exposure the kit must provide: subarray name and number of frames.

    ``nframes`` counts every frame read (``ngroups * (nframes_per_group + groupgap)``)
    of the longest exposure a scenario takes in that subarray. ``correlated_noise``: MIRAGE's
    dark carries 1/f noise and per-frame output offsets (flight-like) or only white read
    noise (a perfect instrument, for closure). ``realizations``: independent noise
    realizations of that dark. MIRAGE adds no read noise of its own — every exposure's
    read noise is its dark's — so each exposure needs its own realization, or the read
    noise (and the reference-pixel correction's common slope error) repeats identically in
    every exposure instead of averaging down in the mosaic.
    """

    subarray: str
    nframes: int
    correlated_noise: bool = True
    realizations: int = 1


@dataclass(frozen=True)
class KitSpec:
    """The content of a synthetic NIRCam kit.

    detectors : DMS detector names (``NRCB1``, ``NRCBLONG``; SIAF names are accepted).
    filters : NIRCam filter names; each is built for the detectors whose channel has it.
    darks : subarrays and frame counts the darks must cover.
    seed : seed of every random draw in the kit (same seed, byte-identical files).
    """

    detectors: tuple[str, ...] = ("NRCB1",)
    filters: tuple[str, ...] = ("F115W", "F150W")
    darks: tuple[DarkNeed, ...] = (DarkNeed("SUB400P", 20),)
    seed: int = DEFAULT_SEED
    version: int = field(default=KIT_VERSION)

    def __post_init__(self) -> None:
        dets = tuple(sorted({get_detector(d).name for d in self.detectors}))
        if not dets:
            raise ValueError("a kit needs at least one detector")
        filts = tuple(sorted({str(f).strip().upper() for f in self.filters}))
        for f in filts:
            if not any(f in get_detector(d).filters for d in dets):
                # Re-raise with the channel-specific message of the first detector.
                check_filter(get_detector(dets[0]), f)
        darks = tuple(sorted({DarkNeed(str(d.subarray).upper(), int(d.nframes),
                                       bool(d.correlated_noise), int(d.realizations))
                              for d in self.darks}))

        for d in darks:
            if d.nframes < 1:
                raise ValueError(f"dark for {d.subarray} needs nframes >= 1, got {d.nframes}")
            if d.realizations < 1:
                raise ValueError(f"dark for {d.subarray} needs realizations >= 1, got "
                                 f"{d.realizations}")
            if not any(has_subarray(get_detector(det), d.subarray) for det in dets):
                raise ValueError(f"subarray {d.subarray!r} is not defined for any of "
                                 f"{', '.join(dets)} (MIRAGE's NIRCam subarray definitions)")
        if int(self.seed) < 0:
            raise ValueError(f"kit seed must be a non-negative integer, got {self.seed}")
        object.__setattr__(self, "detectors", dets)
        object.__setattr__(self, "filters", filts)
        object.__setattr__(self, "darks", darks)
        object.__setattr__(self, "seed", int(self.seed))

    def detector_objects(self) -> list[Detector]:
        return [get_detector(d) for d in self.detectors]

    def darks_for(self, detector: Detector) -> tuple[DarkNeed, ...]:
        """The spec's darks whose readout window exists on ``detector``."""

        return tuple(d for d in self.darks if has_subarray(detector, d.subarray))

    def filters_for(self, detector: Detector) -> tuple[str, ...]:
        """The spec's filters that ``detector``'s channel observes through."""
        return tuple(f for f in self.filters if f in detector.filters)

    def to_dict(self) -> dict:
        return asdict(self)


def content_key(*parts: object) -> str:
    """Short stable hash (12 hex digits) of JSON-serialisable ``parts``, for file names."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
