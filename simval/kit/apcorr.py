"""Aperture corrections (APCORR reference) consistent with the kit's PSF library.

What the pipeline does with them (jwst 3.0 ``source_catalog``)
--------------------------------------------------------------
``ReferenceData.aperture_params`` picks the rows of ``apcorr_table`` whose
``round(eefraction * 100)`` equals the step's ``aperture_ee1..3`` (default 30, 50, 70) for the
image's filter/pupil, divides ``radius``, ``skyin`` and ``skyout`` (pixels) by
``meta.resample.pixel_scale_ratio``, and requires a single skyin/skyout per filter.
``set_aperture_properties`` sums each circular aperture (photutils, exact overlap) and
subtracts ``area * median`` of the sky annulus (3-sigma clipped, pixels whose centre lies in
the annulus). ``aper_total_flux`` = ``apcorr`` of the largest aperture x that
background-subtracted flux. Nothing corrects for PSF light inside the sky annulus, so the
reference must: the flight file does (jwst_nircam_apcorr_0005, F444W, as copied in jwst's
``source_catalog/tests/helpers.py``: at eefraction 0.7, radius 3.07 px, apcorr is 1.4365, not
1/0.7 = 1.4286, and it turns negative at radii where the aperture area times the annulus
level exceeds the enclosed energy). Here::

    apcorr = 1 / (eefraction - pi * radius**2 * annulus_level)

with ``annulus_level`` the pipeline's own estimator applied to the noiseless drizzled PSF, so
``aper_total`` of a bright isolated star returns the kit's unit total flux (the
299 x 299-pixel box of :mod:`simval.kit.psf`).

What PSF the mosaic has
-----------------------
calwebb_image3 drizzles (pixfrac 1, square kernel) dithered exposures onto a grid at the
native scale: each exposure samples the pixel-integrated PSF at its own sub-pixel phase and
drizzle spreads each input pixel over the output pixels it overlaps, broadening the PSF like
a 2-pixel triangle. :func:`drizzled_psf` reproduces that with the ``drizzle`` package exactly as
``stcal.resample.Resample`` calls it (``Drizzle(kernel="square")``, ``add_image(...,
pixfrac=1.0, in_units="cps", iscale=1, pixel_scale_ratio=1, weight_map=1)``), for exposures
that differ by pure sub-pixel shifts (no rotation or distortion between them), with input
stamps evaluated from the library like MIRAGE does (``GriddedPSFModel.evaluate``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simval.atomic import atomic_path, reproducible, save_model
from simval.instruments.nircam import wheel_elements
from simval.kit.detectors import FULL_SIZE, Detector, check_filter, get_detector
from simval.kit.psf import (
    DEFAULT_FOV_PIXELS,
    DEFAULT_NPSF,
    DEFAULT_OVERSAMPLE,
    library_filename,
    psf_library,
    read_psf_library,
)
from simval.kit.refmeta import IMAGING_EXP_TYPES, USEAFTER, stamp
from simval.seeding import component_rng

#: Encircled-energy fractions tabulated (the pipeline accepts aperture_ee of 20..80).
EE_FRACTIONS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
#: Sky annulus, native pixels: the flight values for F444W (jwst_nircam_apcorr_0005), used for
#: every filter.
SKY_IN_PIX = 8.0
SKY_OUT_PIX = 13.0
#: Sigma of the pipeline's annulus clipping (``SigmaClip(sigma=3.0)``).
_CLIP_SIGMA = 3.0


# --------------------------------------------------------------------------- drizzled PSF
@dataclass(frozen=True)
class DrizzledPsf:
    """Noiseless drizzled images of one star, one per realization of the dither phases.

    images : (nreal, n, n) output stamps at the native scale, flux per pixel (unit total).
    centres : (nreal, 2) star position (x, y) in each stamp, pixels (0 = first pixel centre).
    """

    images: np.ndarray
    centres: np.ndarray

    @property
    def mean_image(self) -> np.ndarray:
        return self.images.mean(axis=0)


def _input_stamp(model, x0: float, y0: float,
                 half: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Library PSF evaluated like MIRAGE on the ``2 * half + 1`` native pixels around
    full-frame ``(x0, y0)``; also the star's (x, y) in the stamp."""
    ix, iy = int(np.floor(x0 + 0.5)), int(np.floor(y0 + 0.5))
    yy, xx = np.mgrid[iy - half:iy + half + 1, ix - half:ix + half + 1].astype(float)
    return model.evaluate(xx, yy, 1.0, x0, y0), (x0 - (ix - half), y0 - (iy - half))


def drizzle_exposures(stamps: list[np.ndarray], star_xy: list[tuple[float, float]],
                      out_size: int, out_xy: tuple[float, float]) -> np.ndarray:
    """Drizzle ``stamps`` (star at ``star_xy[k]`` in stamp k) onto an ``out_size``^2 grid with
    the star at ``out_xy``, pixfrac 1, square kernel, equal weights (pure shifts)."""
    from drizzle.resample import Drizzle

    driz = Drizzle(kernel="square", fillval=0.0, out_shape=(out_size, out_size),
                   disable_ctx=True)
    for data, (sx, sy) in zip(stamps, star_xy, strict=True):
        ny, nx = data.shape
        yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
        pixmap = np.dstack([xx - sx + out_xy[0], yy - sy + out_xy[1]])
        driz.add_image(data.astype(np.float32), exptime=1.0, pixmap=pixmap, iscale=1.0,
                       pixel_scale_ratio=1.0, weight_map=np.ones(data.shape, np.float32),
                       wht_scale=1.0, pixfrac=1.0, in_units="cps")
    return np.array(driz.out_img, dtype=float)


def _stratified(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` (x, y) phases in [0, 1): one per column and per row of an n x n grid (Latin
    hypercube), each uniform inside its cell."""
    cols, rows = rng.permutation(n), rng.permutation(n)
    return (np.stack([cols, rows], axis=1) + rng.uniform(0.0, 1.0, (n, 2))) / n


def output_phases(rng: np.random.Generator, nreal: int) -> np.ndarray:
    """(nreal, 2) sub-pixel positions in [-0.5, 0.5) of the star on the output grid: a
    jittered k x k grid when ``nreal = k**2``, else a Latin hypercube."""
    k = round(np.sqrt(nreal))
    if k * k == nreal:
        cells = np.array([(i, j) for j in range(k) for i in range(k)], dtype=float)
        return (cells + rng.uniform(0.0, 1.0, (nreal, 2))) / k - 0.5
    return _stratified(rng, nreal) - 0.5


def field_positions(n: int) -> list[tuple[float, float]]:
    """Centres (x, y), full-frame pixels, of the cells of a k x k grid over the detector
    (k = ceil(sqrt(n))), for a field-averaged PSF."""
    k = int(np.ceil(np.sqrt(n)))
    c = (np.arange(k) + 0.5) * FULL_SIZE / k - 0.5
    return [(float(x), float(y)) for y in c for x in c]


def drizzled_psf(model, rng: np.random.Generator, *,
                 position: tuple[float, float] | list[tuple[float, float]] = (
                     FULL_SIZE // 2, FULL_SIZE // 2),
                 nexp: int = 4, nreal: int = 16, half_size: int = 16) -> DrizzledPsf:
    """The PSF as it appears in a native-scale calwebb_image3 mosaic.

    Parameters
    ----------
    model : photutils ``GriddedPSFModel`` of the library (``PsfLibrary.model()``).
    rng : source of the sub-pixel phases: for each of ``nreal`` realizations, ``nexp``
        exposure phases (stratified in x and y, like a sub-pixel dither pattern with a
        random start) and the star's phase on the output grid (stratified over the
        realizations), so averages over realizations converge fast.
    position : full-frame (x, y) pixel where the library is evaluated, or a sequence of such
        pixels used in turn by the realizations (a field average).
    half_size : output stamps are ``2 * half_size + 1`` pixels square; inputs 2 pixels larger
        on each side (their PSF is zero beyond the library stamp, as in MIRAGE's core).
    """
    n_out = 2 * half_size + 1
    where = np.atleast_2d(np.asarray(position, dtype=float))
    images, centres = [], []
    for i, out_phase in enumerate(output_phases(rng, nreal)):
        out_xy = (half_size + out_phase[0], half_size + out_phase[1])
        x0, y0 = where[i % len(where)]
        stamps, star_xy = [], []
        for px, py in _stratified(rng, nexp):
            data, sxy = _input_stamp(model, x0 + px, y0 + py, half_size + 2)
            stamps.append(data)
            star_xy.append(sxy)
        images.append(drizzle_exposures(stamps, star_xy, n_out, out_xy))
        centres.append(out_xy)
    return DrizzledPsf(images=np.array(images), centres=np.array(centres))


# --------------------------------------------------------------------------- photometry
def aperture_weights(shape: tuple[int, int], centre: tuple[float, float],
                     radius: float) -> np.ndarray:
    """Exact fraction of each pixel inside a circle of ``radius`` (pixels) at ``centre``
    (x, y): photutils' ``circular_overlap_grid``, which its ``method='exact'`` apertures (and
    so the pipeline) use."""
    from photutils.geometry import circular_overlap_grid

    ny, nx = shape
    x0, y0 = centre
    return circular_overlap_grid(-0.5 - x0, nx - 0.5 - x0, -0.5 - y0, ny - 0.5 - y0, nx, ny,
                                 float(radius), 1, 1)


def encircled_energy(image: np.ndarray, centre: tuple[float, float],
                     radii: np.ndarray | list[float], total: float = 1.0) -> np.ndarray:
    """Flux in circles of ``radii`` (pixels) around ``centre`` (x, y), exact pixel overlap
    (as the pipeline's photutils apertures), as a fraction of ``total``."""
    return np.array([np.sum(aperture_weights(image.shape, centre, r) * image)
                     for r in np.atleast_1d(radii)]) / total


def annulus_level(image: np.ndarray, centre: tuple[float, float], r_in: float = SKY_IN_PIX,
                  r_out: float = SKY_OUT_PIX) -> float:
    """Per-pixel level the pipeline subtracts: 3-sigma-clipped median of the pixels whose
    centre lies in the annulus (``source_catalog._aper_local_background``)."""
    from astropy.stats import SigmaClip
    from photutils.aperture import CircularAnnulus

    mask = CircularAnnulus(centre, r_in, r_out).to_mask(method="center")
    values = mask.get_values(image)
    return float(np.median(SigmaClip(sigma=_CLIP_SIGMA)(values, masked=False)))


def mean_encircled_energy(drz: DrizzledPsf, radii: np.ndarray | list[float]) -> np.ndarray:
    """Encircled energy averaged over the realizations of ``drz`` (unit total flux)."""
    return np.mean([encircled_energy(img, tuple(c), radii)
                    for img, c in zip(drz.images, drz.centres, strict=True)], axis=0)


def radius_at(drz: DrizzledPsf, fraction: float, r_grid: np.ndarray,
               ee_grid: np.ndarray) -> float:
    """Radius (pixels) where the mean encircled energy reaches ``fraction``: interpolated on
    the grid, then refined by two secant steps with exact photometry."""
    if not ee_grid[0] < fraction < ee_grid[-1]:
        raise ValueError(f"EE {fraction} is outside {ee_grid[0]:.3f}..{ee_grid[-1]:.3f} within "
                         f"{r_grid[-1]:.1f} pixels; enlarge the drizzled stamp")
    r = float(np.interp(fraction, ee_grid, r_grid))
    for _ in range(2):
        ee, ee2 = mean_encircled_energy(drz, [r, r + 1e-3])
        r -= (ee - fraction) / ((ee2 - ee) / 1e-3)
    return r


# --------------------------------------------------------------------------- table
@dataclass(frozen=True)
class ApcorrResult:
    """Aperture corrections of one detector/filter and the curve they come from.

    radii_grid / ee_curve : mean encircled energy of the drizzled PSF (unit total flux) on a
        grid of radii, pixels.
    radii : radius (pixels) enclosing each of ``EE_FRACTIONS``.
    apcorr : correction per row, including the sky-annulus term.
    annulus_level : per-pixel PSF level in the sky annulus (fraction of total flux).
    """

    detector: str
    filter: str
    pupil: str
    filter_wheel: str
    eefractions: tuple[float, ...]
    radii: np.ndarray
    apcorr: np.ndarray
    skyin: float
    skyout: float
    annulus_level: float
    radii_grid: np.ndarray
    ee_curve: np.ndarray

    def rows(self) -> list[tuple]:
        """Rows of ``apcorr_table`` (filter, pupil, eefraction, radius, apcorr, skyin, skyout)."""
        return [(self.filter_wheel, self.pupil, f, r, a, self.skyin, self.skyout)
                for f, r, a in zip(self.eefractions, self.radii, self.apcorr, strict=True)]


def compute_apcorr(detector: str | Detector, band: str, seed: int, *,
                   npsf: int = DEFAULT_NPSF, fov_pixels: int = DEFAULT_FOV_PIXELS,
                   oversample: int = DEFAULT_OVERSAMPLE,
                   library_dir: str | os.PathLike | None = None,
                   position: tuple[float, float] | list[tuple[float, float]] | None = None,
                   nexp: int = 4, nreal: int = 64,
                   eefractions: tuple[float, ...] = EE_FRACTIONS,
                   skyin: float = SKY_IN_PIX, skyout: float = SKY_OUT_PIX) -> ApcorrResult:
    """Aperture corrections from the drizzled library PSF at ``position`` (full-frame pixels),
    a sequence of positions, or by default averaged over the detector (realization ``i`` at
    cell ``i`` of :func:`field_positions`).

    The library is the file :func:`simval.kit.psf.write_psf_library` wrote into
    ``library_dir`` with the same parameters, if given (no recomputation), else the cached
    in-process computation. Phases come from ``component_rng(seed, 'apcorr', detector,
    filter)``; with 64 realizations of 4 exposures the mean encircled energy at a given radius
    scatters by <= 1e-3 (1 sigma) between seeds (3e-4 at eefraction 0.7).

    The PSF varies over the detector: for NRCB1/F115W and the default seed, the drizzled PSF
    encloses 0.693-0.704 within the field-averaged r(70 %) depending on the position (most at
    the best-corrected centre), so aper_total of a star is good to +-0.6 % anywhere; pass the
    position of the scenario's stars (e.g. a subarray centre) to remove even that.
    """
    det = get_detector(detector)
    filt = check_filter(det, band)
    if library_dir is not None:
        model = read_psf_library(Path(library_dir) / library_filename(
            det, filt, npsf=npsf, fov_pixels=fov_pixels, oversample=oversample))
    else:
        model = psf_library(det, filt, seed, npsf, fov_pixels, oversample).model()
    half = (fov_pixels - 1) // 2 - 4
    if skyout > half - 1:
        raise ValueError(f"sky annulus (to {skyout} px) does not fit the {fov_pixels}-pixel "
                         "library stamp")
    rng = component_rng(seed, "apcorr", det.name, filt)
    if position is None:  # field average, in an order independent of the output phases
        cells = field_positions(nreal)
        where = [cells[i % len(cells)] for i in rng.permutation(nreal)]
    else:
        where = position
    drz = drizzled_psf(model, rng, position=where, nexp=nexp, nreal=nreal, half_size=half)
    r_grid = np.round(np.arange(0.25, half - 1.0, 0.1), 6)
    ee_grid = mean_encircled_energy(drz, r_grid)
    radii = np.array([radius_at(drz, f, r_grid, ee_grid) for f in eefractions])
    level = float(np.mean([annulus_level(img, tuple(c), skyin, skyout)
                           for img, c in zip(drz.images, drz.centres, strict=True)]))
    apcorr = 1.0 / (np.array(eefractions) - np.pi * radii**2 * level)
    wheel, pupil = wheel_elements(filt)
    return ApcorrResult(detector=det.name, filter=filt, pupil=pupil, filter_wheel=wheel,
                        eefractions=tuple(eefractions), radii=radii, apcorr=apcorr,
                        skyin=float(skyin), skyout=float(skyout), annulus_level=level,
                        radii_grid=r_grid, ee_curve=ee_grid)


# --------------------------------------------------------------------------- file
def write_ee_curves(path: str | os.PathLike, results: list[ApcorrResult]) -> Path:
    """Write the encircled-energy curves (radius in pixels, one EE column per filter) and
    the table values as ECSV, e.g. for tests and plots."""
    from astropy.table import Table

    table = Table({"radius_pix": results[0].radii_grid})
    for res in results:
        table[f"ee_{res.filter}"] = res.ee_curve
        table.meta[res.filter] = {"eefraction": list(res.eefractions),
                                  "radius_pix": [float(r) for r in res.radii],
                                  "apcorr": [float(a) for a in res.apcorr],
                                  "annulus_level": res.annulus_level}
    table.meta["detector"] = results[0].detector
    with atomic_path(path) as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)
    return Path(path)


def write_apcorr(path: str | os.PathLike,
                 detector: str | Detector | Mapping[str, str | Detector],
                 filters: list[str] | tuple, seed: int, *,
                 ee_curve_path: str | os.PathLike | None = None, **kwargs) -> Path:
    """Write an ``NrcImgApcorrModel`` with one block of rows per filter (eefraction
    0.2..0.8, radius in native pixels, apcorr, skyin 8, skyout 13).

    ``detector`` is the detector whose PSF defines every filter's rows, or a mapping
    filter -> detector (CRDS selects one APCORR table for all NIRCam detectors, so a kit
    with both channels takes each filter from a detector of its channel).

    ``kwargs`` go to :func:`compute_apcorr` (library parameters must match the kit's;
    ``library_dir`` reads the written library instead of recomputing it; ``position`` sets
    where on the detector the PSF is taken). ``ee_curve_path`` also writes the encircled
    energy curves as ECSV. Same inputs give byte-identical files.
    """
    from stdatamodels.jwst.datamodels import NrcImgApcorrModel

    by_filter = ({f.upper(): get_detector(d) for f, d in detector.items()}
                 if isinstance(detector, Mapping) else {})
    det = get_detector(next(iter(by_filter.values()))) if by_filter else get_detector(detector)
    results = [compute_apcorr(by_filter.get(f.upper(), det), f, seed, **kwargs)
               for f in filters]
    dtype = [("filter", "S12"), ("pupil", "S15"), ("eefraction", "<f4"), ("radius", "<f4"),
             ("apcorr", "<f4"), ("skyin", "<f4"), ("skyout", "<f4")]
    model = NrcImgApcorrModel()
    model.apcorr_table = np.array([row for res in results for row in res.rows()], dtype=dtype)
    with reproducible(USEAFTER):
        stamp(model, det, "apcorr", f"simval aperture corrections for drizzled {det.name} PSFs",
              seed=seed, history="radius: pixels enclosing eefraction of the drizzled library "
              "PSF; apcorr = 1/(eefraction - pi radius^2 annulus_level), annulus_level = "
              "median PSF level in the sky annulus.")
        model.meta.exposure.type = "NRC_IMAGE"
        model.meta.exposure.p_exptype = IMAGING_EXP_TYPES
        model.validate()
        try:
            out = save_model(model, path, date=USEAFTER)
        finally:
            model.close()
    if ee_curve_path is not None:
        write_ee_curves(ee_curve_path, results)
    return out
