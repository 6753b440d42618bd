"""One MIRI imager exposure, file to file: a source catalog, a pointing and a readout in;
``<base>_uncal.fits``, the noiseless seed image and the truth lists out, in the formats
simval reads from MIRAGE (:mod:`simval.truth`), so that the truth, evaluation and report
stages treat MIRI and NIRCam runs alike.

Products in ``out_dir`` (``<base>`` e.g. ``jw00001001001_01101_00001_mirimage``):

- ``<base>_uncal.fits``: the ramps (:mod:`simval.simulate.miri_uncal`);
- ``<base>_uncal_<FILTER>_final_seed_image.fits``: the scene in DN/s before the pixel
  response and every detector effect (extension 1, ``UNITS = 'ADU/sec'``), the input of the
  noiseless truth mosaic;
- ``<base>_uncal_pointsources.list`` / ``<base>_uncal_galaxySources.list``: what was put
  where, MIRAGE's columns (0-based subarray pixels, RA/Dec in deg, AB mag, DN/s).

A user's extended-emission image (:mod:`simval.simulate.miri_extended`) adds to the scene,
so to the seed image and the truth mosaic.

Galaxies are Sersic profiles (astropy ``Sersic2D``; ``radius`` the half-light radius along
the major axis, arcsec; ``pos_angle`` deg East of North) sampled :data:`GALAXY_OVERSAMPLE`
times per pixel (once for half-light radii of :data:`FINE_SAMPLING_REFF_PIX` pixels and
more) out to :data:`GALAXY_EXTENT_REFF` half-light radii, normalised to the catalog flux
over that stamp and convolved with the kit PSF.

Units: DN/s, arcsec, deg, AB mag, 0-based subarray pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simval import offline
from simval.atomic import atomic_path
from simval.instruments import miri
from simval.instruments.miri_detector import MiriDetectorModel, MiriEffects, Readout
from simval.instruments.miri_psf_file import read_miri_psf
from simval.simulate.miri_extended import EmissionImage, emission_rate
from simval.simulate.miri_ramps import miri_ramps
from simval.simulate.miri_scene import (
    MiriCalibration,
    ab_to_ujy,
    distortion_model,
    render_stars,
    sky_rate,
    star_pixels,
)
from simval.simulate.miri_uncal import MiriExposure, write_miri_uncal

__all__ = ["FINE_SAMPLING_REFF_PIX", "GALAXY_EXTENT_REFF", "GALAXY_OVERSAMPLE",
           "MiriProducts", "MiriSources",
           "render_galaxies", "simulate_miri_exposure"]

#: Samples per pixel side of a galaxy's profile before it is binned to pixels, for galaxies
#: whose half-light radius is below :data:`FINE_SAMPLING_REFF_PIX`; larger ones vary
#: slowly across a pixel and are sampled once per pixel (a 20" galaxy at 5 x 5 would take
#: 1.7 GB).
GALAXY_OVERSAMPLE = 5
FINE_SAMPLING_REFF_PIX = 4.0
#: A galaxy's stamp reaches this many half-light radii (at least 8 pixels).
GALAXY_EXTENT_REFF = 8.0


@dataclass(frozen=True)
class MiriSources:
    """What is on the sky: stars (ra, dec deg, AB mag) and Sersic galaxies (also radius
    arcsec, ellipticity 1 - b/a, pos_angle deg E of N, sersic_index); ``*_index`` are the
    catalog's source indices, written to the truth lists."""

    star_ra: np.ndarray = field(default_factory=lambda: np.zeros(0))
    star_dec: np.ndarray = field(default_factory=lambda: np.zeros(0))
    star_mag: np.ndarray = field(default_factory=lambda: np.zeros(0))
    star_index: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    gal_ra: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gal_dec: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gal_mag: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gal_radius: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gal_ellipticity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gal_pos_angle: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gal_sersic: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gal_index: np.ndarray = field(default_factory=lambda: np.zeros(0, int))


@dataclass(frozen=True)
class MiriProducts:
    """The files one exposure's simulation wrote."""

    uncal: Path
    seed_image: Path
    point_sources: Path
    galaxies: Path


def _north_east(attitude: np.ndarray, ra: np.ndarray, dec: np.ndarray, subarray: str,
                distortion: str) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors of North and East in pixel (x, y) at each position, (n, 2) each."""
    step = 1.0 / 3600.0  # 1 arcsec
    x0, y0 = star_pixels(ra, dec, attitude, subarray, distortion)
    xn, yn = star_pixels(ra, dec + step, attitude, subarray, distortion)
    xe, ye = star_pixels(ra + step / np.cos(np.radians(dec)), dec, attitude, subarray,
                         distortion)
    north = np.stack([xn - x0, yn - y0], axis=1)
    east = np.stack([xe - x0, ye - y0], axis=1)
    return (north / np.linalg.norm(north, axis=1)[:, None],
            east / np.linalg.norm(east, axis=1)[:, None])


def render_galaxies(shape: tuple[int, int], x: np.ndarray, y: np.ndarray,
                    rate_dn_s: np.ndarray, r_eff_pix: np.ndarray, ellipticity: np.ndarray,
                    theta_rad: np.ndarray, sersic_n: np.ndarray,
                    psf_path: str | os.PathLike) -> np.ndarray:
    """Sersic galaxies of total ``rate_dn_s`` (module docstring) at pixel ``(x, y)``, major
    axis at ``theta_rad`` from +x towards +y, convolved with the kit PSF."""
    from astropy.modeling.models import Sersic2D
    from scipy.signal import fftconvolve

    psf_model = read_miri_psf(psf_path)
    half_psf = 12
    yy, xx = np.mgrid[-half_psf:half_psf + 1, -half_psf:half_psf + 1].astype(float)
    kernel = psf_model.evaluate(xx, yy, 1.0, 0.0, 0.0)
    kernel /= kernel.sum()
    ny, nx = shape
    image = np.zeros(shape)
    for x0, y0, flux, reff, ell, th, n in zip(x, y, rate_dn_s, r_eff_pix, ellipticity,
                                              theta_rad, sersic_n, strict=True):
        half = int(np.ceil(max(8.0, GALAXY_EXTENT_REFF * reff))) + half_psf
        ix, iy = int(np.floor(x0 + 0.5)), int(np.floor(y0 + 0.5))
        if ix + half < 0 or iy + half < 0 or ix - half >= nx or iy - half >= ny:
            continue
        side = 2 * half + 1
        k = GALAXY_OVERSAMPLE if reff < FINE_SAMPLING_REFF_PIX else 1
        fine = (np.arange(side * k) + 0.5) / k - 0.5 - half  # sample centres, pixels
        fy, fx = np.meshgrid(fine + iy - y0, fine + ix - x0, indexing="ij")
        profile = Sersic2D(1.0, float(reff), float(n), 0.0, 0.0, float(ell), float(th))
        stamp = profile(fx, fy).reshape(side, k, side, k).mean(axis=(1, 3))
        stamp *= float(flux) / stamp.sum()
        stamp = fftconvolve(stamp, kernel, mode="same")
        ya, yb = iy - half, iy + half + 1
        xa, xb = ix - half, ix + half + 1
        cy0, cx0 = max(0, -ya), max(0, -xa)
        cy1, cx1 = side - max(0, yb - ny), side - max(0, xb - nx)
        image[max(ya, 0):min(yb, ny), max(xa, 0):min(xb, nx)] += stamp[cy0:cy1, cx0:cx1]
    return image


def _hms_dms(ra: np.ndarray, dec: np.ndarray) -> tuple[list[str], list[str]]:
    from astropy.coordinates import SkyCoord

    c = SkyCoord(ra, dec, unit="deg")
    return (list(c.ra.to_string(unit="hour", sep=":", precision=3)),
            list(c.dec.to_string(sep=":", precision=2, alwayssign=True)))


def _write_point_sources(path: Path, index, ra, dec, x, y, mag, rate, tframe: float) -> Path:
    ra_hms, dec_dms = _hms_dms(ra, dec) if len(ra) else ([], [])
    lines = ["# simval MIRI simulator point sources: index, RA (hms), Dec (dms), RA, Dec "
             "(deg), pixel x, y (0-based, subarray), AB mag, DN/s, DN per frame, TSO"]
    for row in zip(index, ra_hms, dec_dms, ra, dec, x, y, mag, rate, strict=True):
        i, rh, dd, r, d, px, py, m, c = row
        lines.append(f"{int(i)} {rh} {dd} {r:.8f} {d:.8f} {px:.3f} {py:.3f} {m:.3f} "
                     f"{c:.6g} {c * tframe:.6g} None")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


def _write_galaxies(path: Path, s: MiriSources, keep: np.ndarray, x, y, rate, reff_pix,
                    v2, v3) -> Path:
    header = ("index pixelx pixely RA_degrees Dec_degrees V2 V3 radius ellipticity pos_angle "
              "sersic_index magnitude countrate_e/s")
    lines = ["# simval MIRI simulator galaxies (radius in pixels; countrate in DN/s)", header]
    columns = (s.gal_index, x, y, s.gal_ra, s.gal_dec, v2, v3, reff_pix, s.gal_ellipticity,
               s.gal_pos_angle, s.gal_sersic, s.gal_mag, rate)
    for row in zip(*(np.asarray(c)[keep] for c in columns), strict=True):
        lines.append(" ".join(f"{v:.10g}" for v in row))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


def _write_seed(path: Path, seed: np.ndarray, filter_name: str) -> Path:
    from astropy.io import fits

    hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(seed.astype(np.float32))])
    for h in (hdul[0].header, hdul[1].header):
        h["UNITS"] = "ADU/sec"
        h["FILTER"] = filter_name
    hdul[0].header["ORIGIN"] = "simval MIRI simulator: scene before the detector"
    with atomic_path(path) as tmp:
        hdul.writeto(tmp)
    return path


def simulate_miri_exposure(out_dir: str | os.PathLike, base_name: str, *,
                           cal: MiriCalibration, detector_seed: int, exposure: MiriExposure,
                           readout: Readout, attitude: np.ndarray, sources: MiriSources,
                           sky_mjy_sr: float, seed: int,
                           effects: MiriEffects | None = None,
                           extended: tuple[EmissionImage, float] | None = None
                           ) -> MiriProducts:
    """Simulate one exposure into ``out_dir`` (module docstring) with the kit's calibration
    ``cal`` of the exposure's filter and the synthetic detector of ``detector_seed`` (the
    kit's seed); deterministic in ``seed`` (the noise). ``extended``: an extended-emission
    image and the factor on it in this filter."""
    out = Path(out_dir)
    filt = miri.check_filter(exposure.filter_name)
    det = MiriDetectorModel(detector_seed)
    sub = miri.get_subarray(readout.subarray)
    shape = (sub.ysize, sub.xsize)
    per_ujy = cal.rate_per_ujy()
    sx, sy = star_pixels(sources.star_ra, sources.star_dec, attitude, sub.name,
                         cal.distortion_path)
    star_rate = ab_to_ujy(sources.star_mag) * per_ujy
    gx, gy = star_pixels(sources.gal_ra, sources.gal_dec, attitude, sub.name,
                         cal.distortion_path)
    gal_rate = ab_to_ujy(sources.gal_mag) * per_ujy
    scale = float(np.mean(miri.PIXEL_SCALE_ARCSEC))
    reff_pix = np.asarray(sources.gal_radius, float) / scale
    if len(gx):
        north, east = _north_east(attitude, sources.gal_ra, sources.gal_dec, sub.name,
                                  cal.distortion_path)
        pa = np.radians(np.asarray(sources.gal_pos_angle, float))
        major = np.cos(pa)[:, None] * north + np.sin(pa)[:, None] * east
        theta = np.arctan2(major[:, 1], major[:, 0])
    else:
        theta = np.zeros(0)
    scene = (sky_rate(shape, sky_mjy_sr, cal)
             + render_stars(shape, sx, sy, star_rate, cal.psf_path)
             + render_galaxies(shape, gx, gy, gal_rate, reff_pix,
                               np.asarray(sources.gal_ellipticity, float), theta,
                               np.asarray(sources.gal_sersic, float), cal.psf_path))
    if extended is not None and extended[1] != 0.0:
        scene = scene + emission_rate(extended[0], extended[1], attitude, sub.name,
                                      distortion_model(cal.distortion_path), cal.psf_path,
                                      cal.photmjsr)
    rate = np.where(det.cut(det.lit, sub.name), scene * det.cut(det.pixel_flat, sub.name), 0.0)
    ramps = miri_ramps(rate, readout, effects or MiriEffects(), seed=seed, detector=det)
    uncal = write_miri_uncal(out / f"{base_name}_uncal.fits", ramps, readout, exposure,
                             attitude)
    stem = f"{base_name}_uncal"
    seed_path = _write_seed(out / f"{stem}_{filt}_final_seed_image.fits", scene, filt)
    def near(x, y):  # on the array or close enough to add light to it
        return (x > -20) & (x < sub.xsize + 20) & (y > -20) & (y < sub.ysize + 20)

    keep = near(sx, sy)
    points = _write_point_sources(out / f"{stem}_pointsources.list",
                                  np.asarray(sources.star_index)[keep],
                                  np.asarray(sources.star_ra)[keep],
                                  np.asarray(sources.star_dec)[keep], sx[keep], sy[keep],
                                  np.asarray(sources.star_mag)[keep], star_rate[keep],
                                  readout.tframe_s)
    v2 = v3 = np.zeros(0)
    if len(gx):
        v2, v3 = offline.siaf_rotations().getv2v3(attitude, np.asarray(sources.gal_ra, float),
                                                  np.asarray(sources.gal_dec, float))
    gals = _write_galaxies(out / f"{stem}_galaxySources.list", sources, near(gx, gy), gx, gy,
                           gal_rate, reff_pix, np.atleast_1d(v2), np.atleast_1d(v3))
    return MiriProducts(uncal, seed_path, points, gals)
