"""Per detector and per visit: photometric and astrometric offsets and the residual sky.

A mosaic mixes exposures of several detectors and visits; a flat-field, photom or
distortion error of one detector, or a pointing error of one visit, shows only in the
sources and sky that detector or visit observed. The *groups* are the detectors (``by =
"detector"``) or the visits (``by = "visit"``) of the mosaic's exposures.

Membership
----------
A source belongs to every group with an exposure that *covers* it: its true position maps
onto the exposure's array (through the exposure's WCS,
:class:`simval.truth.footprints.ExposureFrame`) and the nearest pixel is usable (no
``DO_NOT_USE`` / ``NON_SCIENCE`` bit). A mosaic pixel belongs to every group with an
exposure whose array outline (mapped into the mosaic) contains its centre.

Per group
---------
* ``phot_offset_mag``: median(measured - true) AB mag of the sample's sources in the
  group, uncertainty ``sqrt(pi/2) NMAD / sqrt(n)``; **positive = measured fainter**;
* ``dx_mas``, ``dy_mas``: mean offsets measured - true (RA cos Dec, Dec), mas, **positive
  = measured east / north**, uncertainty ``std / sqrt(n)``; ``offset_mas`` their vector
  length; ``rms_mas``: ``sqrt(mean(dx**2 + dy**2))`` about zero (includes a shift);
* ``bkg_residual_mjysr``, ``bkg_residual_frac``: the background residual
  (:func:`simval.metrics.background.background_residual`, against the truth mosaic when
  there is one) of the mosaic's valid, source-free pixels in the group; the fraction is of
  the group's median injected sky.

The sample is the bright isolated star sample when the mosaic has at least
``min_bright`` of them, else every matched star in the footprint (``sample`` says which).

Metrics (registry names ``<quantity>_<by>_worst_<unit>``): the group value farthest
from zero (signed for the photometric and sky offsets), its uncertainty, ``n`` = the
number of groups measured, ``details.groups`` every group's numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simval.metrics.background import background_residual
from simval.metrics.mosaic import polygon_mask
from simval.metrics.mosaic_defects import ExposureFrameLike, frame_outline, unusable_bits
from simval.metrics.photometry import MEDIAN_ERR_FACTOR, nmad
from simval.metrics_schema import Measurement

if TYPE_CHECKING:
    from astropy.wcs import WCS

__all__ = [
    "BY",
    "Breakdown",
    "FramePixels",
    "GroupStats",
    "frame_pixel_masks",
    "group_breakdown",
    "group_of",
    "source_coverage",
]

#: What a breakdown groups by.
BY = ("detector", "visit")


def group_of(frame: ExposureFrameLike, by: str) -> str:
    """The group name of an exposure: its detector (``NRCB1``) or its visit (``1``)."""
    if by == "detector":
        return str(frame.detector)
    if by == "visit":
        return str(frame.visit)
    raise ValueError(f"by must be one of {BY}, not {by!r}")


def source_coverage(ra: ArrayLike, dec: ArrayLike, frames: Sequence[ExposureFrameLike], *,
                    bad_bits: int | None = None) -> NDArray[np.bool_]:
    """``(n_sources, n_frames)``: the exposure covers the source with a usable pixel."""
    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    bad = np.uint32(unusable_bits() if bad_bits is None else bad_bits)
    out = np.zeros((ra.size, len(frames)), bool)
    for k, f in enumerate(frames):
        fx, fy = f.world_to_pixel(ra, dec)
        fx, fy = np.asarray(fx, float), np.asarray(fy, float)
        ny, nx = f.shape
        ok = np.isfinite(fx) & np.isfinite(fy) & (fx >= -0.5) & (fx < nx - 0.5) \
            & (fy >= -0.5) & (fy < ny - 0.5)
        i = np.flatnonzero(ok)
        ix = np.clip(np.floor(fx[i] + 0.5).astype(np.int64), 0, nx - 1)
        iy = np.clip(np.floor(fy[i] + 0.5).astype(np.int64), 0, ny - 1)
        out[i, k] = (np.asarray(f.dq, np.uint32)[iy, ix] & bad) == 0
    return out


@dataclass(frozen=True)
class FramePixels:
    """The mosaic pixels inside one exposure's array outline, as a mask of its bounding
    box (rows ``y0 ..``, columns ``x0 ..``), so that many full-frame exposures on a large
    mosaic do not each hold a mosaic-sized mask."""

    y0: int
    x0: int
    mask: NDArray[np.bool_]

    def add_to(self, full: NDArray[np.bool_]) -> None:
        """OR this exposure's pixels into a mosaic-sized mask."""
        ny, nx = self.mask.shape
        full[self.y0:self.y0 + ny, self.x0:self.x0 + nx] |= self.mask


def frame_pixel_masks(frames: Sequence[ExposureFrameLike], mosaic_wcs: WCS,
                      shape: tuple[int, int]) -> list[FramePixels]:
    """Per exposure: the mosaic pixels whose centres lie inside its array outline."""
    out = []
    for f in frames:
        ra, dec = frame_outline(f)
        x, y = mosaic_wcs.all_world2pix(ra, dec, 0)
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.any():
            out.append(FramePixels(0, 0, np.zeros((0, 0), bool)))
            continue
        x0 = int(np.clip(np.floor(x[ok].min()), 0, shape[1]))
        x1 = int(np.clip(np.ceil(x[ok].max()) + 1, 0, shape[1]))
        y0 = int(np.clip(np.floor(y[ok].min()), 0, shape[0]))
        y1 = int(np.clip(np.ceil(y[ok].max()) + 1, 0, shape[0]))
        local = polygon_mask(np.column_stack([x[ok] - x0, y[ok] - y0]), (y1 - y0, x1 - x0))
        out.append(FramePixels(y0, x0, local))
    return out


@dataclass(frozen=True)
class GroupStats:
    """One group's offsets (module docstring; NaN where the group has no sample)."""

    group: str
    n_exposures: int
    n_sources: int
    phot_offset_mag: float
    phot_offset_err_mag: float
    dx_mas: float
    dx_err_mas: float
    dy_mas: float
    dy_err_mas: float
    offset_mas: float
    offset_err_mas: float
    rms_mas: float
    rms_err_mas: float
    bkg_residual_mjysr: float
    bkg_residual_err_mjysr: float
    bkg_residual_frac: float
    n_pixels: int


#: metric quantity -> (GroupStats value, uncertainty, signed).
_WORST = {"phot_offset": ("phot_offset_mag", "phot_offset_err_mag", True, "mag"),
          "astrom_offset": ("offset_mas", "offset_err_mas", False, "mas"),
          "astrom_rms": ("rms_mas", "rms_err_mas", False, "mas"),
          "bkg_residual": ("bkg_residual_frac", None, True, "frac")}


@dataclass(frozen=True)
class Breakdown:
    """The groups of one mosaic (``by`` detector or visit) and the sample used."""

    by: str
    groups: list[GroupStats]
    sample: str
    expected_mjysr: float

    def group(self, name: str) -> GroupStats:
        for g in self.groups:
            if g.group == name:
                return g
        raise KeyError(f"no {self.by} {name!r}; groups: {[g.group for g in self.groups]}")

    def measurements(self) -> dict[str, Measurement]:
        """``phot_offset_<by>_worst_mag``, ``astrom_offset_<by>_worst_mas``,
        ``astrom_rms_<by>_worst_mas``, ``bkg_residual_<by>_worst_frac``."""
        table = {g.group: {k: v for k, v in asdict(g).items() if k != "group"}
                 for g in self.groups}
        out = {}
        for quantity, (key, err_key, signed, unit) in _WORST.items():
            name = f"{quantity}_{self.by}_worst_{unit}"
            measured = [g for g in self.groups if np.isfinite(getattr(g, key))]
            details: dict[str, Any] = {"by": self.by, "sample": self.sample,
                                       "groups": table}
            if quantity == "bkg_residual":
                details["expected_mjysr"] = self.expected_mjysr
            if not measured:
                out[name] = Measurement.of(name, None, None, 0, details)
                continue
            worst = max(measured, key=lambda g: abs(getattr(g, key)))
            value = getattr(worst, key)
            if err_key is None:
                inj = worst.bkg_residual_mjysr / worst.bkg_residual_frac \
                    if worst.bkg_residual_frac else float("nan")
                err = worst.bkg_residual_err_mjysr / inj if np.isfinite(inj) and inj else None
            else:
                err = getattr(worst, err_key)
            details["worst"] = worst.group
            out[name] = Measurement.of(name, value if signed else abs(value), err,
                                       len(measured), details)
        return out


def _astrometry(dx: NDArray[np.float64], dy: NDArray[np.float64]) -> tuple[float, ...]:
    ok = np.isfinite(dx) & np.isfinite(dy)
    dx, dy = dx[ok], dy[ok]
    n = dx.size
    if n == 0:
        return (float("nan"),) * 8
    mx, my = float(np.mean(dx)), float(np.mean(dy))
    ex = float(np.std(dx, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    ey = float(np.std(dy, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    off = float(np.hypot(mx, my))
    off_err = float(np.hypot(mx * ex, my * ey) / off) if off > 0 else float(np.hypot(ex, ey))
    r2 = dx**2 + dy**2
    rms = float(np.sqrt(np.mean(r2)))
    rms_err = float(np.std(r2) / (2.0 * rms * np.sqrt(n))) if rms > 0 else 0.0
    return mx, ex, my, ey, off, off_err, rms, rms_err


def group_breakdown(by: str, frames: Sequence[ExposureFrameLike], *,
                    coverage: NDArray[np.bool_], dmag: ArrayLike, dx_mas: ArrayLike,
                    dy_mas: ArrayLike, sample: ArrayLike, sample_name: str,
                    image: ArrayLike | None = None,
                    pixel_masks: Sequence[FramePixels] | None = None,
                    source_mask: ArrayLike | None = None, valid: ArrayLike | None = None,
                    expected_mjysr: float = 0.0, injected_mjysr: Sequence[float] = (),
                    truth: ArrayLike | None = None) -> Breakdown:
    """Per-group offsets (module docstring).

    Parameters
    ----------
    by : {"detector", "visit"}
    frames : sequence of ExposureFrameLike
        The mosaic's exposures (``detector``, ``visit``).
    coverage : ndarray of bool, (n_sources, n_frames)
        :func:`source_coverage` of the sources.
    dmag, dx_mas, dy_mas : array_like
        Per source: measured - true magnitude (mag) and offsets (mas); NaN if unmatched.
    sample : array_like of bool
        The sources that count (e.g. matched bright isolated stars).
    sample_name : str
        What the sample is.
    image, pixel_masks, source_mask, valid, expected_mjysr, injected_mjysr, truth
        The mosaic (MJy/sr), the exposures' pixel masks (:func:`frame_pixel_masks`), the
        source mask, valid pixels, the level the mosaic should have, the injected sky per
        exposure (frame order) and the truth mosaic, for the sky residual (None: no sky).

    Returns
    -------
    Breakdown
    """
    names = [group_of(f, by) for f in frames]
    order = list(dict.fromkeys(sorted(names, key=lambda s: (len(s), s))))
    dmag, dx, dy = (np.asarray(a, float) for a in (dmag, dx_mas, dy_mas))
    use = np.asarray(sample, bool)
    cov = np.asarray(coverage, bool)
    inj = np.asarray(list(injected_mjysr), float)
    groups = []
    for g in order:
        cols = [k for k, n in enumerate(names) if n == g]
        member = use & cov[:, cols].any(axis=1) if cov.size else np.zeros(use.size, bool)
        dm = dmag[member]
        dm = dm[np.isfinite(dm)]
        phot = float(np.median(dm)) if dm.size else float("nan")
        phot_err = MEDIAN_ERR_FACTOR * nmad(dm) / np.sqrt(dm.size) if dm.size > 1 \
            else float("nan")
        astro = _astrometry(dx[member], dy[member])
        bkg = (float("nan"), float("nan"), float("nan"), 0)
        if image is not None and pixel_masks is not None:
            pix = np.zeros(np.shape(image), bool)
            for k in cols:
                pixel_masks[k].add_to(pix)
            ok = pix if valid is None else pix & np.asarray(valid, bool)
            sky = float(np.median(inj[cols])) if inj.size else None
            if ok.any():
                res = background_residual(image, mask=source_mask, valid=ok,
                                          expected_mjysr=expected_mjysr,
                                          injected_sky_mjysr=sky, truth=truth)
                bkg = (res.residual_mjysr, res.residual_err_mjysr, res.residual_frac,
                       res.n_pixels)
        groups.append(GroupStats(g, len(cols), int(np.sum(member)), phot, float(phot_err),
                                 *astro, *bkg))
    return Breakdown(by, groups, sample_name, float(expected_mjysr))
