"""Mosaic integrity: holes and "black lines" inside the footprint, and seams at exposure edges.

Footprint (the pixels that *should* have data), one of:

* a given boolean mask;
* exposure footprints as polygons in mosaic pixel coordinates (0-based (x, y) vertices,
  e.g. each exposure's ``wcs.footprint()`` corners through the mosaic's
  ``world_to_pixel``): their union (:func:`footprint_from_polygons`; ``hull=True`` for the
  convex hull of all vertices, which also counts gaps *between* pointings as holes — use
  it when the pointings are meant to tile without gaps);
* the weight map: ``WHT > 0`` closed with a disk of ``close_radius_pix`` (gaps narrower
  than about twice the radius are filled, except within about a radius of the outer edge)
  and with enclosed holes filled (:func:`footprint_from_weight`).

Holes are footprint pixels whose data are NaN or whose weight is 0 (``hole_frac`` =
holes / footprint pixels). Connected hole regions (8-connectivity) whose length (from the
second moments, ``sqrt(12 var_major + 1)``) is at least ``min_line_length_pix`` and whose
length / width (width = area / length) is at least ``min_elongation`` are "black lines":
the one-to-few-pixel gaps of missing data between pointings (``black_line_count``,
``black_line_frac``).

Seams: for each exposure (a boolean coverage mask in mosaic pixels, from polygons or from
the resample context image ``CON``), the sky in a strip ``strip_width_pix`` wide just
inside its edge is compared with the strip just outside (both ``gap_pix`` away from the
edge, valid and source-free, sigma-clipped medians): ``step = inside - outside`` (MJy/sr;
**positive = the exposure's side is brighter**). Edges on the mosaic border (no outside)
are skipped. ``seam_step_max_mjysr`` is the largest |step|; ``seam_step_max_frac`` divides
it by the injected sky.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simval.metrics.background import sky_level, usable_pixels
from simval.metrics.photometry import MEDIAN_ERR_FACTOR
from simval.metrics_schema import Measurement

__all__ = [
    "HoleStats",
    "RegionShapes",
    "SeamResult",
    "SeamStep",
    "footprint_from_polygons",
    "footprint_from_weight",
    "hole_mask",
    "hole_statistics",
    "masks_from_context",
    "masks_from_polygons",
    "polygon_mask",
    "region_shapes",
    "seam_steps",
]


def polygon_mask(vertices: ArrayLike, shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Pixels whose centres lie inside a polygon.

    Parameters
    ----------
    vertices : array_like, shape (n, 2)
        (x, y) vertices in 0-based pixel coordinates (pixel centres at integers).
    shape : (ny, nx)
        Image shape.

    Returns
    -------
    ndarray of bool
    """
    from matplotlib.path import Path

    v = np.asarray(vertices, np.float64)
    out = np.zeros(shape, bool)
    x0 = max(int(np.floor(v[:, 0].min())), 0)
    x1 = min(int(np.ceil(v[:, 0].max())) + 1, shape[1])
    y0 = max(int(np.floor(v[:, 1].min())), 0)
    y1 = min(int(np.ceil(v[:, 1].max())) + 1, shape[0])
    if x0 >= x1 or y0 >= y1:
        return out
    yy, xx = np.mgrid[y0:y1, x0:x1]
    inside = Path(v).contains_points(np.column_stack([xx.ravel(), yy.ravel()]))
    out[y0:y1, x0:x1] = inside.reshape(yy.shape)
    return out


def masks_from_polygons(polygons: Iterable[ArrayLike],
                        shape: tuple[int, int]) -> Iterator[NDArray[np.bool_]]:
    """Coverage mask of each exposure polygon (lazily, one at a time)."""
    for poly in polygons:
        yield polygon_mask(poly, shape)


def masks_from_context(con: ArrayLike) -> Iterator[NDArray[np.bool_]]:
    """Coverage mask of each input image from a resample context image (lazily).

    ``con`` has shape (nplanes, ny, nx) (or (ny, nx)), int32: bit ``k % 32`` of plane
    ``k // 32`` is set where input ``k`` contributed. Inputs that contribute nowhere are
    skipped.
    """
    c = np.asarray(con)
    if c.ndim == 2:
        c = c[None]
    bits = c.astype(np.int32, copy=False).view(np.uint32)
    for k in range(32 * bits.shape[0]):
        m = ((bits[k // 32] >> np.uint32(k % 32)) & np.uint32(1)).astype(bool)
        if m.any():
            yield m


def footprint_from_polygons(polygons: Sequence[ArrayLike], shape: tuple[int, int], *,
                            hull: bool = False) -> NDArray[np.bool_]:
    """Union (or convex hull) of exposure polygons as a pixel mask (see module docs)."""
    if hull:
        from scipy.spatial import ConvexHull

        pts = np.concatenate([np.asarray(p, np.float64) for p in polygons])
        return polygon_mask(pts[ConvexHull(pts).vertices], shape)
    out = np.zeros(shape, bool)
    for m in masks_from_polygons(polygons, shape):
        out |= m
    return out


def footprint_from_weight(wht: ArrayLike, *, close_radius_pix: int = 10) -> NDArray[np.bool_]:
    """``WHT > 0`` closed by a disk of ``close_radius_pix`` and with holes filled."""
    from photutils.utils import circular_footprint
    from scipy.ndimage import binary_closing, binary_fill_holes

    w = np.asarray(wht)
    cov = np.isfinite(w) & (w > 0)
    if close_radius_pix > 0:
        pad = close_radius_pix + 1
        padded = np.pad(cov, pad)
        closed = binary_closing(padded, structure=circular_footprint(close_radius_pix))
        cov = cov | closed[pad:-pad, pad:-pad]
    return binary_fill_holes(cov)


@dataclass(frozen=True)
class HoleStats:
    """Holes inside the footprint.

    Attributes
    ----------
    hole_frac : float
        Hole pixels / footprint pixels.
    n_footprint, n_holes : int
    black_line_count : int
    black_line_frac : float
        Pixels in black lines / footprint pixels.
    lines : list of dict
        Per black line: ``n_pix``, ``length_pix``, ``width_pix``, ``x``, ``y`` (centroid),
        ``angle_deg`` (major axis, from +x towards +y).
    """

    hole_frac: float
    n_footprint: int
    n_holes: int
    black_line_count: int
    black_line_frac: float
    lines: list[dict[str, float]] = field(default_factory=list)

    def measurements(self) -> dict[str, Measurement]:
        """``hole_frac``, ``black_line_count``, ``black_line_frac``."""
        return {
            "hole_frac": Measurement.of("hole_frac", self.hole_frac, None, self.n_footprint,
                                        {"n_holes": self.n_holes}),
            "black_line_count": Measurement.of("black_line_count", self.black_line_count,
                                               None, self.n_footprint, {"lines": self.lines}),
            "black_line_frac": Measurement.of("black_line_frac", self.black_line_frac, None,
                                              self.n_footprint),
        }


@dataclass(frozen=True)
class RegionShapes:
    """Connected regions of a boolean mask (8-connectivity) and their shapes.

    ``labels`` is the label image (0 = background, regions 1..n in scan order); the arrays
    are indexed by label (index 0 unused): ``n_pix``, centroid ``x``, ``y`` (0-based
    pixels), ``length`` = ``sqrt(12 var_major + 1)`` and ``width`` = ``n_pix / length``
    (pixels), ``angle_deg`` of the major axis (from +x towards +y) and the bounding box
    ``x_min``, ``x_max``, ``y_min``, ``y_max`` (inclusive pixel indices).
    """

    labels: NDArray[np.int32]
    n: int
    n_pix: NDArray[np.float64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    length: NDArray[np.float64]
    width: NDArray[np.float64]
    angle_deg: NDArray[np.float64]
    x_min: NDArray[np.int64]
    x_max: NDArray[np.int64]
    y_min: NDArray[np.int64]
    y_max: NDArray[np.int64]

    def is_line(self, min_length: float, min_elongation: float) -> NDArray[np.bool_]:
        """Per label: long and elongated enough to be a black line (index 0 False)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (self.length >= min_length) & (self.length / self.width >= min_elongation)
        out[0] = False
        return out


def region_shapes(mask: ArrayLike) -> RegionShapes:
    """Label the connected regions of ``mask`` (8-connectivity) and measure their shapes
    from their second moments (see :class:`RegionShapes`)."""
    from scipy.ndimage import label

    lab, nlab = label(np.asarray(mask, bool), structure=np.ones((3, 3), int))
    yy, xx = np.nonzero(lab)
    ids = lab[yy, xx]
    m = nlab + 1
    n = np.bincount(ids, minlength=m).astype(np.float64)
    sx, sy = np.bincount(ids, xx, m), np.bincount(ids, yy, m)
    sxx, syy = np.bincount(ids, xx * xx, m), np.bincount(ids, yy * yy, m)
    sxy = np.bincount(ids, xx * yy, m)
    n1 = np.maximum(n, 1)
    mx, my = sx / n1, sy / n1
    vxx, vyy, vxy = sxx / n1 - mx**2, syy / n1 - my**2, sxy / n1 - mx * my
    half_tr, det = 0.5 * (vxx + vyy), vxx * vyy - vxy**2
    lam1 = half_tr + np.sqrt(np.maximum(half_tr**2 - det, 0.0))
    length = np.sqrt(12.0 * np.maximum(lam1, 0.0) + 1.0)
    width = n / length
    angle = 0.5 * np.degrees(np.arctan2(2 * vxy, vxx - vyy))
    big = np.iinfo(np.int64).max
    x_min, y_min = np.full(m, big), np.full(m, big)
    x_max, y_max = np.full(m, -1), np.full(m, -1)
    np.minimum.at(x_min, ids, xx)
    np.minimum.at(y_min, ids, yy)
    np.maximum.at(x_max, ids, xx)
    np.maximum.at(y_max, ids, yy)
    return RegionShapes(lab.astype(np.int32), int(nlab), n, mx, my, length, width, angle,
                        x_min, x_max, y_min, y_max)


def _line_regions(holes: NDArray[np.bool_], min_length: float,
                  min_elongation: float) -> tuple[list[dict[str, float]], int]:
    r = region_shapes(holes)
    lines, npix = [], 0
    for k in np.flatnonzero(r.is_line(min_length, min_elongation)):
        lines.append({"n_pix": int(r.n_pix[k]), "length_pix": float(r.length[k]),
                      "width_pix": float(r.width[k]), "x": float(r.x[k]),
                      "y": float(r.y[k]), "angle_deg": float(r.angle_deg[k])})
        npix += int(r.n_pix[k])
    return lines, npix


def hole_mask(data: ArrayLike, *, wht: ArrayLike | None = None,
              footprint: ArrayLike | None = None,
              polygons: Sequence[ArrayLike] | None = None, hull: bool = False,
              close_radius_pix: int = 10) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """``(holes, footprint)``: the footprint (module docs) and its pixels with NaN data or
    zero / NaN weight. Arguments as :func:`hole_statistics`."""
    img = np.asarray(data)
    holes = ~np.isfinite(img)
    if wht is not None:
        w = np.asarray(wht)
        holes |= ~(np.isfinite(w) & (w > 0))
    if footprint is not None:
        fp = np.asarray(footprint, bool)
    elif polygons is not None:
        fp = footprint_from_polygons(polygons, img.shape, hull=hull)
    else:
        fp = footprint_from_weight(~holes, close_radius_pix=close_radius_pix)
    return holes & fp, fp


def hole_statistics(data: ArrayLike, *, wht: ArrayLike | None = None,
                    footprint: ArrayLike | None = None,
                    polygons: Sequence[ArrayLike] | None = None, hull: bool = False,
                    close_radius_pix: int = 10, min_line_length_pix: float = 20.0,
                    min_elongation: float = 5.0) -> HoleStats:
    """Fraction of NaN / zero-weight pixels inside the footprint, and black lines.

    Parameters
    ----------
    data : array_like
        Mosaic (NaN where resample had no data).
    wht : array_like, optional
        Weight map; ``wht == 0`` (or NaN) is a hole too.
    footprint : array_like of bool, optional
        The footprint; else from ``polygons`` (union, or hull), else from ``wht``
        (:func:`footprint_from_weight`), else from the finite data the same way.
    polygons : sequence of (n, 2) arrays, optional
        Exposure footprints in mosaic pixels.
    hull, close_radius_pix
        Footprint options (module docs).
    min_line_length_pix, min_elongation : float
        Black line criteria.

    Returns
    -------
    HoleStats
    """
    holes, fp = hole_mask(data, wht=wht, footprint=footprint, polygons=polygons, hull=hull,
                          close_radius_pix=close_radius_pix)
    n_fp, n_h = int(fp.sum()), int(holes.sum())
    lines, n_line = _line_regions(holes, min_line_length_pix, min_elongation)
    nan = float("nan")
    return HoleStats(n_h / n_fp if n_fp else nan, n_fp, n_h, len(lines),
                     n_line / n_fp if n_fp else nan, lines)


@dataclass(frozen=True)
class SeamStep:
    """Sky step across one exposure's edge: ``inside - outside``, MJy/sr."""

    name: str
    step_mjysr: float
    step_err_mjysr: float
    inside_mjysr: float
    outside_mjysr: float
    n_inside: int
    n_outside: int


@dataclass(frozen=True)
class SeamResult:
    """Seam steps of all exposures with an interior edge.

    ``max_step_mjysr`` is the largest |step| (NaN if no edge could be measured),
    ``max_step_frac`` that over the injected sky; ``n`` the number of edges measured.
    """

    steps: list[SeamStep]
    max_step_mjysr: float
    max_step_err_mjysr: float
    max_step_frac: float
    injected_sky_mjysr: float | None
    strip_width_pix: int

    @property
    def n(self) -> int:
        return len(self.steps)

    def measurements(self) -> dict[str, Measurement]:
        """``seam_step_max_mjysr`` and ``seam_step_max_frac``."""
        d: dict[str, Any] = {
            "strip_width_pix": self.strip_width_pix,
            "steps": [{"exposure": s.name, "step_mjysr": s.step_mjysr,
                       "step_err_mjysr": s.step_err_mjysr, "n_inside": s.n_inside,
                       "n_outside": s.n_outside} for s in self.steps]}
        inj = self.injected_sky_mjysr
        return {
            "seam_step_max_mjysr": Measurement.of("seam_step_max_mjysr", self.max_step_mjysr,
                                                  self.max_step_err_mjysr, self.n, d),
            "seam_step_max_frac": Measurement.of(
                "seam_step_max_frac", self.max_step_frac,
                self.max_step_err_mjysr / inj if inj else None, self.n),
        }


def _strip_stats(vals: NDArray[np.float64]) -> tuple[float, float, int]:
    med, std, n = sky_level(vals)
    return med, MEDIAN_ERR_FACTOR * std / np.sqrt(n) if n else np.nan, n


def seam_steps(data: ArrayLike, exposure_masks: Iterable[ArrayLike], *,
               mask: ArrayLike | None = None, valid: ArrayLike | None = None,
               names: Sequence[str] | None = None, strip_width_pix: int = 5,
               gap_pix: int = 1, min_pixels: int = 50,
               injected_sky_mjysr: float | None = None) -> SeamResult:
    """Background steps across exposure edges in a mosaic.

    Parameters
    ----------
    data : array_like
        Mosaic, MJy/sr.
    exposure_masks : iterable of bool arrays
        Coverage of each exposure in mosaic pixels (:func:`masks_from_polygons`,
        :func:`masks_from_context`); consumed one at a time.
    mask : array_like of bool, optional
        Source mask (True = source).
    valid : array_like of bool, optional
        Usable pixels (default finite data).
    names : sequence of str, optional
        Exposure names (default their indices).
    strip_width_pix, gap_pix : int
        Strip width and distance of the strips from the edge, pixels.
    min_pixels : int
        Minimum pixels in each strip for an edge to count.
    injected_sky_mjysr : float, optional
        For ``max_step_frac``.

    Returns
    -------
    SeamResult
    """
    from scipy.ndimage import distance_transform_edt

    img = np.asarray(data, np.float64)
    use = usable_pixels(img, valid, mask)
    reach = gap_pix + strip_width_pix + 1
    steps: list[SeamStep] = []
    for k, cov in enumerate(exposure_masks):
        cov = np.asarray(cov, bool)
        if not cov.any():
            continue
        ys, xs = np.nonzero(cov)
        y0, y1 = max(ys.min() - reach, 0), min(ys.max() + reach + 1, cov.shape[0])
        x0, x1 = max(xs.min() - reach, 0), min(xs.max() + reach + 1, cov.shape[1])
        c = cov[y0:y1, x0:x1]
        d_in = distance_transform_edt(c)       # inside: distance to the nearest outside
        d_out = distance_transform_edt(~c)     # outside: distance to the nearest inside
        lo, hi = gap_pix, gap_pix + strip_width_pix
        u = use[y0:y1, x0:x1]
        sub = img[y0:y1, x0:x1]
        inside = sub[u & c & (d_in > lo) & (d_in <= hi)]
        outside = sub[u & ~c & (d_out > lo) & (d_out <= hi)]
        if inside.size < min_pixels or outside.size < min_pixels:
            continue
        mi, ei, ni = _strip_stats(inside)
        mo, eo, no = _strip_stats(outside)
        name = names[k] if names is not None else str(k)
        steps.append(SeamStep(name, mi - mo, float(np.hypot(ei, eo)), mi, mo, ni, no))
    if not steps:
        nan = float("nan")
        return SeamResult([], nan, nan, nan, injected_sky_mjysr, strip_width_pix)
    worst = max(steps, key=lambda s: abs(s.step_mjysr))
    vmax = abs(worst.step_mjysr)
    frac = vmax / injected_sky_mjysr if injected_sky_mjysr else float("nan")
    return SeamResult(steps, vmax, worst.step_err_mjysr, frac, injected_sky_mjysr,
                      strip_width_pix)
