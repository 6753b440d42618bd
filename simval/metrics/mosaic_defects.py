"""Holes and black lines explained: where each lies, along which exposure edge, and why.

Every connected hole region of a mosaic (8-connectivity; the holes of
:func:`simval.metrics.mosaic.hole_mask`: NaN or zero-weight pixels inside the footprint)
is a *defect*: a ``black_line`` if it meets the black-line criteria of
:func:`simval.metrics.mosaic.hole_statistics`, else a ``hole``.

Each hole pixel's centre is mapped through the mosaic WCS to the sky and through every
exposure's WCS (:class:`simval.truth.footprints.ExposureFrame`) to that exposure's pixels.
An exposure *covers* the pixel if the position falls on its array (within the outer
pixel edges, ``-0.5 <= x < nx - 0.5``); the pixel is *usable* there if the nearest array
pixel has none of ``bad_bits`` (default ``DO_NOT_USE | NON_SCIENCE``: the pixels resample
ignores, jwst's ``GOOD_BITS = "~DO_NOT_USE+NON_SCIENCE"``). A pixel's cause is

* ``no_coverage``: no exposure covers it: a gap in the plan's footprint (between
  detectors, between pointings, off the dither pattern);
* ``do_not_use``: exposures cover it but every one flags it; ``dq_flags`` names the DQ
  bits of those pixels (``stdatamodels.jwst.datamodels.dqflags``), most frequent first;
* ``resample_nan``: at least one exposure has a usable pixel there, yet the mosaic has no
  data (a resample or weighting problem: pixfrac, kernel, an outlier mask).

A defect's ``cause`` is the cause of most of its pixels (``frac_*`` give all three).
An exposure edge (the array's ``x=0``, ``x=nx-1``, ``y=0`` or ``y=ny-1`` edge in the cal
frame) is one the defect *lies along* when at least half of its pixels lie within
``edge_reach_pix`` + half the defect's width (mosaic pixels, converted to the exposure's)
of that edge and within its extent (a gap of width w between two arrays lies along both
facing edges: its pixels are 0.5 .. w - 0.5 from each). ``visits`` are those of the
exposures that cover the defect or whose edge it lies along; ``visit_boundary`` is true
when those edges belong to more than one visit. Positions are 0-based mosaic pixels and
ICRS degrees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simval.metrics.mosaic import region_shapes
from simval.metrics_schema import Measurement

if TYPE_CHECKING:
    from astropy.table import Table
    from astropy.wcs import WCS

__all__ = [
    "CAUSES",
    "Defect",
    "DefectReport",
    "ExposureFrameLike",
    "dq_flag_names",
    "explain_holes",
    "frame_outline",
    "unusable_bits",
]

#: Causes of a hole pixel (module docstring), in the order of ``frac_*``.
CAUSES = ("no_coverage", "do_not_use", "resample_nan")
#: Edge names in an exposure's frame, with the coordinate they bound.
_EDGES = ("x=0", "x=max", "y=0", "y=max")


class ExposureFrameLike(Protocol):
    """What the defects need of an exposure (:class:`simval.truth.footprints.ExposureFrame`)."""

    name: str
    detector: str
    visit: int
    dither: int
    shape: tuple[int, int]
    dq: np.ndarray

    def pixel_to_world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ...

    def world_to_pixel(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ...


def dq_flag_names() -> dict[str, int]:
    """JWST pixel DQ flag name -> bit value (``stdatamodels.jwst.datamodels.dqflags``)."""
    from stdatamodels.jwst.datamodels import dqflags

    return {k: int(v) for k, v in dqflags.pixel.items() if int(v) and not int(v) & (int(v) - 1)}


def unusable_bits() -> int:
    """``DO_NOT_USE | NON_SCIENCE``: the DQ bits resample ignores a pixel for."""
    names = dq_flag_names()
    return names["DO_NOT_USE"] | names["NON_SCIENCE"]


def frame_outline(frame: ExposureFrameLike, per_edge: int = 16
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """RA, Dec (deg) of an exposure array's outer edge (pixel edges at -0.5 and n - 0.5),
    ``per_edge`` points per side, counter-clockwise in pixels, not closed."""
    ny, nx = frame.shape
    t = np.linspace(0.0, 1.0, per_edge, endpoint=False)
    x0, x1, y0, y1 = -0.5, nx - 0.5, -0.5, ny - 0.5
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full(per_edge, x1), x1 - (x1 - x0) * t,
                         np.full(per_edge, x0)])
    ys = np.concatenate([np.full(per_edge, y0), y0 + (y1 - y0) * t, np.full(per_edge, y1),
                         y1 - (y1 - y0) * t])
    ra, dec = frame.pixel_to_world(xs, ys)
    return np.asarray(ra, float), np.asarray(dec, float)


@dataclass(frozen=True)
class Defect:
    """One hole region of a mosaic, located and explained (module docstring).

    Positions: centroid ``x``, ``y`` and bounding box (inclusive) in 0-based mosaic
    pixels, ``ra``, ``dec`` of the centroid (deg); ``length_pix``, ``width_pix`` and
    ``angle_deg`` (major axis, from +x towards +y) from the second moments.
    ``exposures``: those covering any of its pixels; ``edges``: ``(exposure, edge)`` it
    lies along (edge ``x=0``, ``x=<nx-1>``, ``y=0``, ``y=<ny-1>`` of the cal frame).
    """

    defect_id: int
    kind: str
    n_pix: int
    x: float
    y: float
    x_min: int
    x_max: int
    y_min: int
    y_max: int
    length_pix: float
    width_pix: float
    angle_deg: float
    ra: float
    dec: float
    cause: str
    frac_no_coverage: float
    frac_do_not_use: float
    frac_resample_nan: float
    dq_flags: tuple[str, ...]
    exposures: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    detectors: tuple[str, ...]
    visits: tuple[int, ...]
    visit_boundary: bool
    explanation: str


@dataclass(frozen=True)
class DefectReport:
    """The defects of one mosaic (largest first, at most ``max_defects``) and totals.

    ``n_regions`` counts every hole region (also those beyond ``max_defects``);
    ``pixels_by_cause`` the hole pixels of each cause (``unknown`` without frames);
    ``n_footprint`` the footprint's pixels; ``frames_note`` why causes are unknown.
    """

    defects: list[Defect]
    n_regions: int
    n_hole_pixels: int
    n_footprint: int
    pixels_by_cause: dict[str, int]
    frames_note: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def explained(self) -> bool:
        return self.frames_note is None

    def measurements(self) -> dict[str, Measurement]:
        """``hole_resample_frac``: hole pixels with a usable input / footprint pixels."""
        if not self.explained:
            return {"hole_resample_frac": Measurement.of(
                "hole_resample_frac", None, None, 0, {"not_computed": self.frames_note})}
        n_bad = self.pixels_by_cause.get("resample_nan", 0)
        value = n_bad / self.n_footprint if self.n_footprint else float("nan")
        counts = {c: sum(d.cause == c for d in self.defects) for c in CAUSES}
        return {"hole_resample_frac": Measurement.of(
            "hole_resample_frac", value, None, self.n_footprint,
            {"hole_pixels_by_cause": self.pixels_by_cause, "defects_by_cause": counts,
             "n_defects": self.n_regions})}

    def to_table(self) -> Table:
        """One row per defect (columns: the :class:`Defect` fields; tuples joined with
        ``,``; ``edges`` as ``exposure:edge`` joined with ``;``)."""
        from astropy.table import Table

        def text(v: Any) -> str:
            return ",".join(str(x) for x in v)

        t = Table()
        for name, kind in _COLUMNS.items():
            values = [getattr(d, name) for d in self.defects]
            if name == "edges":
                values = [";".join(f"{e}:{k}" for e, k in v) for v in values]
            elif kind is str:
                values = [v if isinstance(v, str) else text(v) for v in values]
            t[name] = np.array(values, dtype=kind if kind is not str else str) if values \
                else np.zeros(0, kind if kind is not str else "<U1")
        units = {"x": "pix", "y": "pix", "length_pix": "pix", "width_pix": "pix",
                 "angle_deg": "deg", "ra": "deg", "dec": "deg"}
        for n, unit in units.items():
            t[n].unit = unit
        t.meta = {"n_regions": self.n_regions, "n_hole_pixels": self.n_hole_pixels,
                  "n_footprint": self.n_footprint,
                  "pixels_by_cause": dict(self.pixels_by_cause),
                  "causes": "no_coverage: no exposure covers it; do_not_use: every covering "
                            "exposure flags it (dq_flags); resample_nan: a covering exposure "
                            "has a usable pixel, yet the mosaic has no data",
                  "positions": "x, y, x_min..y_max: 0-based mosaic pixels; ra, dec: ICRS deg",
                  "settings": dict(self.settings)}
        if self.frames_note:
            t.meta["frames_note"] = self.frames_note
        return t


#: Columns of :meth:`DefectReport.to_table` (the :class:`Defect` fields) and their types.
_COLUMNS: dict[str, Any] = {
    "defect_id": np.int64, "kind": str, "n_pix": np.int64, "x": np.float64, "y": np.float64,
    "x_min": np.int64, "x_max": np.int64, "y_min": np.int64, "y_max": np.int64,
    "length_pix": np.float64, "width_pix": np.float64, "angle_deg": np.float64,
    "ra": np.float64, "dec": np.float64, "cause": str, "frac_no_coverage": np.float64,
    "frac_do_not_use": np.float64, "frac_resample_nan": np.float64, "dq_flags": str,
    "exposures": str, "edges": str, "detectors": str, "visits": str, "visit_boundary": bool,
    "explanation": str}


def _pixel_scale_ratio(frame: ExposureFrameLike, mosaic_wcs: WCS, x: float, y: float) -> float:
    """Exposure pixels per mosaic pixel near mosaic pixel (x, y)."""
    ra, dec = mosaic_wcs.all_pix2world([x, x + 1.0, x], [y, y, y + 1.0], 0)
    fx, fy = frame.world_to_pixel(np.asarray(ra), np.asarray(dec))
    r = np.hypot(np.diff(fx[[0, 1]]), np.diff(fy[[0, 1]]))[0]
    r2 = np.hypot(fx[2] - fx[0], fy[2] - fy[0])
    ratio = 0.5 * (r + r2)
    return float(ratio) if np.isfinite(ratio) and ratio > 0 else 1.0


def _frame_bbox(frame: ExposureFrameLike, mosaic_wcs: WCS) -> tuple[float, float, float, float]:
    ra, dec = frame_outline(frame, 8)
    x, y = mosaic_wcs.all_world2pix(ra, dec, 0)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return (np.inf, -np.inf, np.inf, -np.inf)
    return float(x[ok].min()), float(x[ok].max()), float(y[ok].min()), float(y[ok].max())


def _edge_label(edge: str, shape: tuple[int, int]) -> str:
    ny, nx = shape
    return {"x=0": "x=0", "x=max": f"x={nx - 1}", "y=0": "y=0", "y=max": f"y={ny - 1}"}[edge]


def _explain(cause: str, fracs: Mapping[str, float], n_cover: int, flags: Sequence[str],
             edges: Sequence[tuple[str, str]], labels: Mapping[str, str],
             visits: Sequence[int], boundary: bool) -> str:
    where = ""
    if edges:
        where = " along " + ", ".join(f"{labels[e]} {k} edge" for e, k in edges)
    if boundary:
        where += " at the boundary of visits " + " and ".join(str(v) for v in visits)
    elif visits:
        where += f" in visit {visits[0]}" if len(visits) == 1 else \
            " in visits " + ", ".join(str(v) for v in visits)
    if cause == "no_coverage":
        text = "no exposure covers it: a gap in the plan's footprint" + where
    elif cause == "do_not_use":
        text = (f"every covering exposure ({n_cover}) flags it {'|'.join(flags) or 'unusable'}"
                f": pixels resample ignores{where}")
    else:
        text = (f"{n_cover} covering exposure(s) have usable pixels, yet the mosaic has no "
                f"data: NaN from resample{where}")
    mixed = [f"{c} {fracs[c]:.0%}" for c in CAUSES if c != cause and fracs[c] > 0]
    return text + (f" (also {', '.join(mixed)} of its pixels)" if mixed else "")


def explain_holes(holes: ArrayLike, footprint: ArrayLike,
                  frames: Sequence[ExposureFrameLike] | None, mosaic_wcs: WCS, *,
                  bad_bits: int | None = None, flag_names: Mapping[str, int] | None = None,
                  edge_reach_pix: float = 2.0, min_line_length_pix: float = 20.0,
                  min_elongation: float = 5.0, max_defects: int = 1000,
                  frames_note: str | None = None) -> DefectReport:
    """Locate and explain every hole region of a mosaic (module docstring).

    Parameters
    ----------
    holes, footprint : array_like of bool
        Hole pixels and footprint (:func:`simval.metrics.mosaic.hole_mask`).
    frames : sequence of ExposureFrameLike, or None
        The mosaic's exposures; None: defects are located but their cause is ``unknown``
        (``frames_note`` says why).
    mosaic_wcs : astropy.wcs.WCS
        Celestial WCS of the mosaic (0-based pixel <-> ICRS deg).
    bad_bits : int, optional
        DQ bits that make an input pixel unusable (default :func:`unusable_bits`).
    flag_names : mapping, optional
        DQ flag name -> bit (default :func:`dq_flag_names`).
    edge_reach_pix : float
        How far (mosaic pixels, plus half the defect's width) a defect may lie from an
        edge that it lies along.
    min_line_length_pix, min_elongation : float
        Black-line criteria (as :func:`simval.metrics.mosaic.hole_statistics`).
    max_defects : int
        Largest regions kept (all are counted).

    Returns
    -------
    DefectReport
    """
    hmask = np.asarray(holes, bool)
    shapes = region_shapes(hmask)
    n_fp = int(np.asarray(footprint, bool).sum())
    settings = {"edge_reach_pix": edge_reach_pix, "min_line_length_pix": min_line_length_pix,
                "min_elongation": min_elongation, "max_defects": max_defects}
    yy, xx = np.nonzero(shapes.labels)
    ids = shapes.labels[yy, xx].astype(np.int64)
    m = shapes.n + 1
    npix = shapes.n_pix
    lines = shapes.is_line(min_line_length_pix, min_elongation)
    ra_c, dec_c = mosaic_wcs.all_pix2world(shapes.x, shapes.y, 0)

    if frames is None:
        note = frames_note or "no exposure frames"
        causes = {"unknown": int(ids.size)}
        keep = _largest(npix, max_defects)
        defects = [_defect(k, shapes, lines, ra_c, dec_c, "unknown",
                           dict.fromkeys(CAUSES, float("nan")), (), (), (), (), (), False,
                           f"cause unknown: {note}") for k in keep]
        return DefectReport(defects, shapes.n, int(ids.size), n_fp, causes, note, settings)

    bad = unusable_bits() if bad_bits is None else int(bad_bits)
    names = dq_flag_names() if flag_names is None else dict(flag_names)
    n_cover = np.zeros(ids.size, np.int32)
    n_usable = np.zeros(ids.size, np.int32)
    dq_or = np.zeros(ids.size, np.uint32)
    covers = np.zeros((len(frames), m), bool)
    along = np.zeros((len(frames), len(_EDGES), m), bool)
    if ids.size:
        ra, dec = mosaic_wcs.all_pix2world(xx.astype(float), yy.astype(float), 0)
        reach = edge_reach_pix + 0.5 * np.minimum(shapes.width, 100.0)
        margin = float(reach.max()) + 2.0 if reach.size > 1 else edge_reach_pix + 2.0
        for k, frame in enumerate(frames):
            bx0, bx1, by0, by1 = _frame_bbox(frame, mosaic_wcs)
            sel = np.flatnonzero((xx >= bx0 - margin) & (xx <= bx1 + margin)
                                 & (yy >= by0 - margin) & (yy <= by1 + margin))
            if sel.size == 0:
                continue
            fx, fy = frame.world_to_pixel(ra[sel], dec[sel])
            fx, fy = np.asarray(fx, float), np.asarray(fy, float)
            ny, nx = frame.shape
            ok = np.isfinite(fx) & np.isfinite(fy)
            inside = ok & (fx >= -0.5) & (fx < nx - 0.5) & (fy >= -0.5) & (fy < ny - 0.5)
            i_in = sel[inside]
            ix = np.clip(np.floor(fx[inside] + 0.5).astype(np.int64), 0, nx - 1)
            iy = np.clip(np.floor(fy[inside] + 0.5).astype(np.int64), 0, ny - 1)
            dq = np.asarray(frame.dq, np.uint32)[iy, ix]
            n_cover[i_in] += 1
            n_usable[i_in] += (dq & np.uint32(bad)) == 0
            dq_or[i_in] |= dq
            covers[k] = np.bincount(ids[i_in], minlength=m) > 0
            ratio = _pixel_scale_ratio(frame, mosaic_wcs, float(np.median(xx[sel])),
                                       float(np.median(yy[sel])))
            r = reach[ids[sel]] * ratio
            dist = {"x=0": fx + 0.5, "x=max": nx - 0.5 - fx, "y=0": fy + 0.5,
                    "y=max": ny - 0.5 - fy}
            span_y = ok & (fy >= -0.5 - r) & (fy <= ny - 0.5 + r)
            span_x = ok & (fx >= -0.5 - r) & (fx <= nx - 0.5 + r)
            for j, edge in enumerate(_EDGES):
                near = (np.abs(dist[edge]) <= r) & (span_y if edge.startswith("x") else span_x)
                along[k, j] = np.bincount(ids[sel[near]], minlength=m) >= 0.5 * npix
    max_cover = np.zeros(m, np.int64)
    np.maximum.at(max_cover, ids, n_cover)
    cause_px = np.where(n_cover == 0, 0, np.where(n_usable == 0, 1, 2))
    counts = np.stack([np.bincount(ids, cause_px == c, m) for c in range(3)])
    bits = [(n, b) for n, b in names.items()]
    flag_counts = {n: np.bincount(ids, (cause_px == 1) & ((dq_or & np.uint32(b)) != 0), m)
                   for n, b in bits}
    pixels_by_cause = {c: int((cause_px == i).sum()) for i, c in enumerate(CAUSES)}

    defects = []
    for k in _largest(npix, max_defects):
        frac = {c: float(counts[i, k] / npix[k]) for i, c in enumerate(CAUSES)}
        cause = CAUSES[int(np.argmax(counts[:, k]))]
        flags = tuple(n for n, c in sorted(((n, flag_counts[n][k]) for n, _ in bits),
                                           key=lambda t: -t[1]) if c > 0)
        cov = [f for j, f in enumerate(frames) if covers[j, k]]
        edges = [(f, e) for j, f in enumerate(frames) for i, e in enumerate(_EDGES)
                 if along[j, i, k]]
        edge_visits = sorted({f.visit for f, _ in edges})
        visits = tuple(sorted({f.visit for f in cov} | set(edge_visits)))
        boundary = len(edge_visits) > 1
        labels = {f.name: f"{f.name} ({f.detector}, visit {f.visit}, dither {f.dither})"
                  for f in frames}
        edge_names = tuple((f.name, _edge_label(e, f.shape)) for f, e in edges)
        text = _explain(cause, frac, int(max_cover[k]), flags, edge_names, labels, visits, boundary)
        dets = tuple(sorted({f.detector for f in cov} | {f.detector for f, _ in edges}))
        defects.append(_defect(k, shapes, lines, ra_c, dec_c, cause, frac, flags,
                               tuple(f.name for f in cov), edge_names, dets, visits, boundary,
                               text))
    return DefectReport(defects, shapes.n, int(ids.size), n_fp, pixels_by_cause, None,
                        settings)


def _largest(npix: NDArray[np.float64], max_defects: int) -> list[int]:
    labels = np.arange(1, npix.size)
    order = labels[np.argsort(-npix[1:], kind="stable")][:max_defects]
    return sorted(int(k) for k in order)


def _defect(k: int, s: Any, lines: NDArray[np.bool_], ra: NDArray[np.float64],
            dec: NDArray[np.float64], cause: str, frac: Mapping[str, float],
            flags: tuple[str, ...], exposures: tuple[str, ...],
            edges: tuple[tuple[str, str], ...], detectors: tuple[str, ...],
            visits: tuple[int, ...], boundary: bool, text: str) -> Defect:
    return Defect(int(k), "black_line" if lines[k] else "hole", int(s.n_pix[k]),
                  float(s.x[k]), float(s.y[k]), int(s.x_min[k]), int(s.x_max[k]),
                  int(s.y_min[k]), int(s.y_max[k]), float(s.length[k]), float(s.width[k]),
                  float(s.angle_deg[k]), float(ra[k]), float(dec[k]), cause,
                  frac["no_coverage"], frac["do_not_use"], frac["resample_nan"], flags,
                  exposures, edges, detectors, visits, boundary, text)
