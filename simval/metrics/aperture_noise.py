"""Is the ERR array right, once drizzle's pixel correlation is accounted for?

Why the pixel ratio cannot tell
-------------------------------
Drizzle spreads every input pixel over the output pixels its drop overlaps, so adjacent
mosaic pixels share noise. jwst's resample (``stcal.resample``) propagates the variance
arrays by drizzling each exposure's sigma like data (a weighted mean: the input pixel's
sigma), combining the exposures as ``sum(w**2 var) / sum(w)**2`` and dividing by the
squared pixel-scale ratio ``s`` (output / input pixel size). ERR**2 is then the variance
*per pixel of a large-area sum*: ``sum(ERR**2)`` over a large aperture is its noise
variance, while the pixel-to-pixel scatter is lower by the noise correlation ratio ``R``
of Casertano et al. (2000, AJ 120, 2747, section 3.3.2; Fruchter & Hook 2002, PASP 114,
144, section 6): with ``r = pixfrac / s``,

    R = r / (1 - 1 / (3 r))   (r >= 1),        R = 1 / (1 - r / 3)   (r <= 1),

1.5 for pixfrac 1 at the native scale: a right ERR reads (pixel - sky) / ERR NMAD 1/R =
0.67, a small aperture something in between. So neither the pixel NMAD nor an aperture
sum against ``sqrt(sum ERR**2)`` is ~1 for a right ERR.

The estimator
-------------
The covariance of drizzled noise, averaged over the sub-pixel phases of the exposures, is
separable for the square kernel: along each axis it is the autocorrelation of the overlap
``T = box(pixfrac) * box(s)`` of a drop with an output pixel (input-pixel units), taken at
integer output lags ``d s``. Normalised to unit sum over the lags, ``rho(d)`` turns ERR
into a covariance, ``C(j, k) = ERR_j ERR_k rho1(dx) rho1(dy)``, whose large-area limit is
ERR**2 (jwst's convention) and whose zero lag is ``1 / R**2`` (Casertano's R, exactly:
:func:`casertano_r`). For an aperture with pixel weights ``w`` (photutils' exact overlap)
the predicted noise of its sum is

    sigma_pred**2 = sum_jk (w ERR)_j (w ERR)_k rho(j - k),

against ``sigma_raw**2 = sum_j (w ERR)_j**2`` (covariance ignored). ``N`` circular
apertures of radius ``r`` are placed at random, without overlap (centres at least ``2 r``
plus the correlation length apart, so their sums are independent), where the whole
aperture lies on valid, source-free pixels with ERR > 0; their sums of ``data - sky``
(``sky`` the sigma-clipped median of those pixels) divided by ``sigma_pred`` have NMAD
``aper_noise_ratio_r<r>``: ~1 if ERR is right, 0.5 if ERR is twice the real noise, 2 if half
(the sums over ``sigma_raw``: ``aper_noise_ratio_raw_r<r>``). Its uncertainty is
``1.1664 ratio / sqrt(N)``. ``err_ratio_nmad_drizzle`` is the pixel NMAD times R.

The square and turbo kernels use the drop box, the point kernel a zero-width drop; other
kernels (gaussian, lanczos) have no model here (the corrected ratios are then null with the
reason). Rotation between the input and output grids is ignored (a few percent on R).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simval.metrics.background import sky_level, usable_pixels
from simval.metrics.photometry import NMAD_ERR_FACTOR, nmad
from simval.metrics_schema import Measurement

__all__ = [
    "RADII_PIX",
    "ApertureNoise",
    "ApertureNoiseRadius",
    "DrizzleCorrelation",
    "aperture_noise",
    "casertano_r",
    "drizzle_correlation",
    "sky_aperture_positions",
]

#: Aperture radii of the registered metrics (``aper_noise_ratio_r2``, ``_r4``), pixels.
RADII_PIX = (2.0, 4.0)
#: Drizzle kernels with a drop box of width pixfrac; the point kernel has a zero-width drop.
BOX_KERNELS = ("square", "turbo")
#: Samples per narrowest box of the numerical convolution.
_SAMPLES = 1000
#: Most usable pixels the sky level and the pixel ratio are computed from (strided).
MAX_PIXELS = 2_000_000


def casertano_r(pixfrac: float, scale_ratio: float) -> float:
    """Casertano et al. (2000) noise correlation ratio R of a drizzled image: large-area
    noise / (sqrt(N) x single-pixel rms). ``scale_ratio`` = output / input pixel size."""
    if scale_ratio <= 0 or pixfrac < 0:
        raise ValueError(f"need scale_ratio > 0 and pixfrac >= 0, got {scale_ratio}, "
                         f"{pixfrac}")
    r = pixfrac / scale_ratio
    return r / (1.0 - 1.0 / (3.0 * r)) if r >= 1.0 else 1.0 / (1.0 - r / 3.0)


@dataclass(frozen=True)
class DrizzleCorrelation:
    """Phase-averaged noise correlation of a drizzled mosaic (module docs).

    ``rho1`` is the 1-D correlation at output lags ``-L..L`` (unit sum); ``kernel2d`` its
    outer product; ``r_factor`` = 1 / rho1(0) (Casertano's R).
    """

    pixfrac: float
    scale_ratio: float
    kernel: str
    rho1: NDArray[np.float64]

    @property
    def half_width(self) -> int:
        return (self.rho1.size - 1) // 2

    @property
    def kernel2d(self) -> NDArray[np.float64]:
        return np.outer(self.rho1, self.rho1)

    @property
    def r_factor(self) -> float:
        return float(1.0 / self.rho1[self.half_width])

    def details(self) -> dict[str, Any]:
        return {"pixfrac": self.pixfrac, "pixel_scale_ratio": self.scale_ratio,
                "kernel": self.kernel, "casertano_r": self.r_factor,
                "rho1": self.rho1[self.half_width:]}


def _box(width: float, step: float) -> NDArray[np.float64]:
    return np.ones(max(1, round(width / step)))


def drizzle_correlation(pixfrac: float, scale_ratio: float,
                        kernel: str = "square") -> DrizzleCorrelation:
    """The correlation model of a mosaic drizzled with ``kernel``, ``pixfrac`` and
    ``scale_ratio`` (output / input pixel size): the autocorrelation of
    ``box(pixfrac) * box(scale_ratio)`` at integer output lags, normalised to unit sum.

    Raises
    ------
    ValueError
        For a kernel without a model (gaussian, lanczos) or non-positive sizes.
    """
    from scipy.signal import fftconvolve

    name = str(kernel).lower()
    if name not in (*BOX_KERNELS, "point"):
        raise ValueError(f"no drizzle correlation model for kernel {kernel!r} (only "
                         f"{', '.join((*BOX_KERNELS, 'point'))})")
    drop = 0.0 if name == "point" else float(pixfrac)
    s = float(scale_ratio)
    if s <= 0 or drop < 0:
        raise ValueError(f"need pixel_scale_ratio > 0 and pixfrac >= 0, got {s}, {drop}")
    step = (min(drop, s) if drop > 0 else s) / _SAMPLES
    f = _box(s, step)
    for width in (s, drop, drop) if drop > 0 else (s,):
        f = fftconvolve(f, _box(width, step))
    x = (np.arange(f.size) - (f.size - 1) / 2.0) * step
    half = math.ceil((drop + s) / s) + 1
    rho = np.interp(np.arange(-half, half + 1) * s, x, f, left=0.0, right=0.0)
    rho = np.clip(rho, 0.0, None)
    nz = np.flatnonzero(rho > rho.max() * 1e-9)
    keep = max(abs(int(nz[0]) - half), abs(int(nz[-1]) - half))
    rho = rho[half - keep:half + keep + 1]
    return DrizzleCorrelation(float(pixfrac), s, name, rho / rho.sum())


def sky_aperture_positions(usable: ArrayLike, radius_pix: float, n: int,
                           rng: np.random.Generator, *, spacing_pix: float | None = None,
                           max_tries: int = 30) -> NDArray[np.float64]:
    """Up to ``n`` random aperture centres (x, y; 0-based pixels) whose whole aperture of
    ``radius_pix`` lies on ``usable`` pixels, at least ``spacing_pix`` apart along x or y
    (default ``2 radius + 2``). Centres are pixel centres plus a uniform sub-pixel offset;
    at most ``max_tries * n`` random pixels are tried (no whole-image pass: a full-frame
    mosaic costs what a subarray does)."""
    from photutils.utils import circular_footprint

    use = np.asarray(usable, bool)
    reach = math.ceil(radius_pix + 1.5)
    disk = circular_footprint(reach).astype(bool)
    ny, nx = use.shape
    if n <= 0 or ny <= 2 * reach or nx <= 2 * reach:
        return np.zeros((0, 2))
    spacing = math.ceil(2 * radius_pix + 2 if spacing_pix is None else spacing_pix)
    taken = np.zeros(use.shape, bool)
    out: list[tuple[float, float]] = []
    tries = max(n * max_tries, n)
    ys = rng.integers(reach, ny - reach, tries)
    xs = rng.integers(reach, nx - reach, tries)
    jitter = rng.uniform(-0.5, 0.5, (tries, 2))
    for k in range(tries):
        y, x = int(ys[k]), int(xs[k])
        if taken[y, x] or not use[y, x] or \
                not use[y - reach:y + reach + 1, x - reach:x + reach + 1][disk].all():
            continue
        out.append((x + jitter[k, 0], y + jitter[k, 1]))
        taken[max(y - spacing + 1, 0):y + spacing, max(x - spacing + 1, 0):x + spacing] = True
        if len(out) >= n:
            break
    return np.asarray(out, np.float64).reshape(-1, 2)


@dataclass(frozen=True)
class ApertureNoiseRadius:
    """Random sky apertures of one radius: NMAD of sum / predicted noise.

    ``ratio`` uses the drizzle-correlated ERR (NaN without a correlation model),
    ``ratio_raw`` ``sqrt(sum (w ERR)**2)``; ``sigma_emp_mjysr`` is the NMAD of the sums
    (MJy/sr x pixel) and ``sigma_pred_mjysr`` / ``sigma_raw_mjysr`` the medians of the
    predictions.
    """

    radius_pix: float
    n: int
    ratio: float
    ratio_err: float
    ratio_raw: float
    ratio_raw_err: float
    sigma_emp_mjysr: float
    sigma_pred_mjysr: float
    sigma_raw_mjysr: float

    def details(self) -> dict[str, Any]:
        return {"radius_pix": self.radius_pix, "sigma_empirical": self.sigma_emp_mjysr,
                "sigma_err_correlated": self.sigma_pred_mjysr,
                "sigma_err_white": self.sigma_raw_mjysr, "unit_sums": "MJy/sr x pixel",
                "ratio_raw": self.ratio_raw, "ratio_correlated": self.ratio}


@dataclass(frozen=True)
class ApertureNoise:
    """The aperture noise of a mosaic against its ERR (module docs).

    ``radii`` holds one :class:`ApertureNoiseRadius` per radius; ``pixel_nmad`` is the
    NMAD of ``(pixel - sky) / ERR`` over the usable pixels (``n_pixels``) and
    ``pixel_nmad_corrected`` that times R; ``correlation`` is None (with ``note``) when
    the mosaic's resampling has no model.
    """

    radii: list[ApertureNoiseRadius]
    pixel_nmad: float
    pixel_nmad_err: float
    n_pixels: int
    sky_mjysr: float
    correlation: DrizzleCorrelation | None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pixel_nmad_corrected(self) -> float:
        if self.correlation is None:
            return float("nan")
        return self.pixel_nmad * self.correlation.r_factor

    def _common(self) -> dict[str, Any]:
        d: dict[str, Any] = {"sky_mjysr": self.sky_mjysr, **self.extra}
        if self.correlation is not None:
            d.update(self.correlation.details())
        else:
            d["not_computed"] = self.note
        return d

    def measurements(self) -> dict[str, Measurement]:
        """``err_ratio_nmad_drizzle`` and, for each radius of :data:`RADII_PIX` measured,
        ``aper_noise_ratio_r<r>`` and ``aper_noise_ratio_raw_r<r>``."""
        common = self._common()
        corr = self.correlation is not None
        out = {"err_ratio_nmad_drizzle": Measurement.of(
            "err_ratio_nmad_drizzle", self.pixel_nmad_corrected,
            self.pixel_nmad_err * self.correlation.r_factor if corr else None,
            self.n_pixels if corr else 0, {**common, "err_ratio_nmad": self.pixel_nmad})}
        for res in self.radii:
            if res.radius_pix not in RADII_PIX:
                continue
            tag = f"r{res.radius_pix:g}"
            d = {**common, **res.details()}
            out[f"aper_noise_ratio_{tag}"] = Measurement.of(
                f"aper_noise_ratio_{tag}", res.ratio, res.ratio_err if corr else None,
                res.n if corr else 0, d)
            raw = {k: v for k, v in d.items() if k != "not_computed"}
            out[f"aper_noise_ratio_raw_{tag}"] = Measurement.of(
                f"aper_noise_ratio_raw_{tag}", res.ratio_raw, res.ratio_raw_err, res.n, raw)
        return out


def _predicted(err: NDArray[np.float64], apertures: Any,
               corr: DrizzleCorrelation | None) -> tuple[NDArray[np.float64], ...]:
    """Per aperture: sqrt(sum (w ERR)**2) and the correlated prediction (NaN without a
    model)."""
    from scipy.ndimage import convolve

    kernel = corr.kernel2d if corr is not None else None
    pad = corr.half_width if corr is not None else 0
    raw, cor = [], []
    for m in apertures.to_mask(method="exact"):
        v = m.multiply(err, fill_value=0.0)
        raw.append(float(np.sqrt(np.sum(v ** 2))))
        if kernel is None:
            cor.append(np.nan)
            continue
        v = np.pad(v, pad)
        cor.append(float(np.sqrt(np.sum(v * convolve(v, kernel, mode="constant")))))
    return np.asarray(raw), np.asarray(cor)


def _ratio(z: NDArray[np.float64]) -> tuple[float, float]:
    z = z[np.isfinite(z)]
    if z.size == 0:
        return float("nan"), float("nan")
    s = nmad(z)
    return s, NMAD_ERR_FACTOR * s / math.sqrt(z.size)


def aperture_noise(data: ArrayLike, err: ArrayLike, *,
                   correlation: DrizzleCorrelation | None, rng: np.random.Generator,
                   radii: Sequence[float] = RADII_PIX, mask: ArrayLike | None = None,
                   valid: ArrayLike | None = None, n_apertures: int = 1000,
                   sky_mjysr: float | None = None, note: str = "") -> ApertureNoise:
    """Scatter of random source-free aperture sums against the ERR propagated into them.

    Parameters
    ----------
    data, err : array_like
        Mosaic and its ERR, MJy/sr.
    correlation : DrizzleCorrelation or None
        The mosaic's drizzle correlation (:func:`drizzle_correlation`); None: only the
        raw ratios (``note`` says why).
    rng : numpy.random.Generator
        Seeds the aperture positions.
    radii : sequence of float
        Aperture radii, pixels.
    mask : array_like of bool, optional
        Source mask (True = source), e.g. the segmentation map grown by a few pixels.
    valid : array_like of bool, optional
        Usable pixels (e.g. WHT > 0); always restricted to finite data and ERR > 0.
    n_apertures : int
        Apertures per radius (fewer if the sky has no room).
    sky_mjysr : float, optional
        Sky level subtracted from the sums; default the sigma-clipped median of the usable
        pixels (at most :data:`MAX_PIXELS` of them, evenly strided, as for the pixel NMAD).

    Returns
    -------
    ApertureNoise
    """
    from photutils.aperture import CircularAperture, aperture_photometry

    img = np.asarray(data, np.float64)
    e = np.asarray(err, np.float64)
    if e.shape != img.shape:
        raise ValueError(f"ERR shape {e.shape} differs from the data's {img.shape}")
    use = usable_pixels(img, valid, mask) & np.isfinite(e) & (e > 0)
    # the pixel statistics on at most MAX_PIXELS evenly strided usable pixels
    idx = np.flatnonzero(use)
    idx = idx[::max(1, idx.size // MAX_PIXELS)]
    vals = img.ravel()[idx]
    if sky_mjysr is None:
        sky_mjysr = sky_level(vals)[0]
    sky = float(sky_mjysr)
    pix = (vals - sky) / e.ravel()[idx]
    pixel_nmad, pixel_err = _ratio(pix)
    length = correlation.half_width if correlation is not None else 0
    results = []
    for radius in radii:
        pos = sky_aperture_positions(use, float(radius), n_apertures, rng,
                                     spacing_pix=2 * float(radius) + 2 * length + 4)
        nan = float("nan")
        if len(pos) == 0:
            results.append(ApertureNoiseRadius(float(radius), 0, nan, nan, nan, nan, nan,
                                               nan, nan))
            continue
        aps = CircularAperture(pos, r=float(radius))
        sums = np.asarray(aperture_photometry(img - sky, aps, method="exact")["aperture_sum"],
                          np.float64)
        raw, cor = _predicted(e, aps, correlation)
        ratio_raw, raw_err = _ratio(sums / raw)
        ratio, ratio_err = _ratio(sums / cor) if correlation is not None else (nan, nan)
        results.append(ApertureNoiseRadius(float(radius), len(pos), ratio, ratio_err,
                                           ratio_raw, raw_err, nmad(sums),
                                           float(np.nanmedian(cor)) if correlation else nan,
                                           float(np.median(raw))))
    return ApertureNoise(results, pixel_nmad, pixel_err, int(pix.size), sky, correlation,
                         note if correlation is None else "")
