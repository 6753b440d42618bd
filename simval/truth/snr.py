"""A rough S/N model of the sources of a mosaic, and the blending radius that goes with it.

:func:`expected_snr` adds up-the-ramp signal and variance (electrons) over the exposures
that cover a source; :class:`ExposureNoise` is what it needs of one exposure (gain, read
noise, sky in ADU/s/pixel, groups, integrations, group time in s, pixel scale in arcsec)
and :func:`exposure_noise` reads it from a run. :func:`default_blend_radius_mas` is the
radius (mas) inside which a brighter neighbour counts as blending.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simval.instruments import miri
from simval.instruments.detectors import detector_facts
from simval.instruments.nircam import NATIVE_SCALE_ARCSEC
from simval.kit.photometry import background_adu_s
from simval.match import default_match_radius
from simval.truth.exposures import mirage_bkgdrate

if TYPE_CHECKING:
    from simval.layout import RunLayout
    from simval.plan import Exposure

__all__ = ["BLEND_FWHM", "GALAXY_APERTURE_FRACTION", "GALAXY_PSF_FWHM", "MODEL_SUMMARY",
           "SKY_ANNULUS_OUTER_PIX", "STAR_APERTURE_EE", "STAR_APERTURE_FWHM", "ExposureNoise",
           "default_blend_radius_mas", "expected_snr", "exposure_noise", "fwhm_arcsec"]

#: Rough S/N model: a star's aperture (as ``aper_total``) holds ``STAR_APERTURE_EE`` of its
#: flux within ``STAR_APERTURE_FWHM`` x FWHM; a galaxy's half light within
#: ``sqrt(r_half_circ**2 + (GALAXY_PSF_FWHM x FWHM)**2)``.
STAR_APERTURE_EE = 0.7
STAR_APERTURE_FWHM = 1.5
GALAXY_APERTURE_FRACTION = 0.5
GALAXY_PSF_FWHM = 1.0
#: Outer radius of the source catalog's sky annulus (kit APCORR ``skyout``), native pixels.
SKY_ANNULUS_OUTER_PIX = 13.0
#: Blending radius: a neighbour's core (this many FWHM) reaching the sky annulus.
BLEND_FWHM = 3.0
#: The model in one line, as a truth table records it (``meta["snr_model"]``).
MODEL_SUMMARY = (f"simval.truth.expected_snr: stars {STAR_APERTURE_EE:g} of the flux in "
                 f"r = {STAR_APERTURE_FWHM:g} FWHM, galaxies {GALAXY_APERTURE_FRACTION:g}"
                 f" in r = hypot(r_half_circ, {GALAXY_PSF_FWHM:g} FWHM); rough")


def fwhm_arcsec(band: str) -> float:
    """PSF FWHM of ``band``, arcsec."""
    return default_match_radius(band) / 1e3


def default_blend_radius_mas(band: str, scale_arcsec: float = NATIVE_SCALE_ARCSEC["SHORT"]
                             ) -> float:
    """Default blending radius, mas: the source catalog's sky annulus (13 native pixels of
    ``scale_arcsec``) plus ``BLEND_FWHM`` x FWHM, so a brighter neighbour's core cannot reach
    the annulus (514 mas in F115W, 550 mas in F150W, 1240 mas in F444W)."""
    scale = scale_arcsec
    return (SKY_ANNULUS_OUTER_PIX * scale + BLEND_FWHM * fwhm_arcsec(band)) * 1e3


@dataclass(frozen=True)
class ExposureNoise:
    """What the S/N model needs of one exposure (units in the names).

    ``gain_e_per_adu``: MIRAGE's mean gain; ``readnoise_group_e``: read noise of one group
    (CDS noise / sqrt 2 / sqrt nframes); ``sky_adu_s``: sky per pixel;
    ``pixel_scale_arcsec``: native scale.
    """

    gain_e_per_adu: float
    readnoise_group_e: float
    sky_adu_s: float
    ngroups: int
    nints: int
    tgroup_s: float
    pixel_scale_arcsec: float


def expected_snr(countrate_adu_s: np.ndarray, radius_pix: np.ndarray, fraction: float | np.ndarray,
                 covered: np.ndarray, noise: Sequence[ExposureNoise]) -> np.ndarray:
    """Rough expected S/N of sources in the mosaic of several exposures.

    Per exposure that covers a source, an up-the-ramp slope over ``ngroups`` equally spaced
    groups (per integration ``t = (ngroups - 1) tgroup``) gives, in electrons::

        S   = f R g t
        var = c (f R + n B) g t + n 12 (ngroups - 1) / (ngroups (ngroups + 1)) sigma_g**2

    with ``f`` the flux fraction in an aperture of ``n = pi r**2`` pixels, ``R`` the count
    rate (ADU/s), ``B`` the sky (ADU/s/pixel), ``g`` the gain, ``sigma_g`` the read noise of
    one group and ``c = 6 (ngroups**2 + 1) / (5 ngroups (ngroups + 1))`` the photon-noise
    factor of the fit. Exposures add (signals and variances; drizzle keeps totals); the S/N
    is ``sum S / sqrt(sum var)``. It ignores flat-field and sky-estimate noise, correlated
    drizzle noise, saturation and cosmic rays: a guide for "S/N >= 20" samples, not a
    prediction of measured errors.

    Parameters
    ----------
    countrate_adu_s : ndarray, shape (n,)
        Total count rate, ADU/s.
    radius_pix : ndarray, shape (n,)
        Aperture radius, native pixels.
    fraction : float or ndarray
        Flux fraction inside the aperture.
    covered : ndarray of bool, shape (n, n_exposures)
        Whether each exposure covers each source.
    noise : sequence of ExposureNoise, length n_exposures

    Returns
    -------
    ndarray
        S/N per source (0 where no exposure covers it; NaN if an exposure has < 2 groups).
    """
    rate = np.asarray(countrate_adu_s, float)
    npix = np.pi * np.asarray(radius_pix, float) ** 2
    f = np.broadcast_to(np.asarray(fraction, float), rate.shape)
    sig = np.zeros(rate.shape)
    var = np.zeros(rate.shape)
    cov = np.asarray(covered, bool).reshape(rate.size, len(noise))
    for k, e in enumerate(noise):
        ng = e.ngroups
        if ng < 2:
            return np.full(rate.shape, np.nan)
        t = (ng - 1) * e.tgroup_s
        c = 6.0 * (ng**2 + 1) / (5.0 * ng * (ng + 1))
        rn2 = 12.0 * (ng - 1) / (ng * (ng + 1)) * e.readnoise_group_e**2
        s = f * rate * e.gain_e_per_adu * t * e.nints
        v = e.nints * (c * (f * rate + npix * e.sky_adu_s) * e.gain_e_per_adu * t + npix * rn2)
        sig += np.where(cov[:, k], s, 0.0)
        var += np.where(cov[:, k], v, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, sig / np.sqrt(var), 0.0)


def _sky_adu_s(layout: RunLayout, exposure: Exposure) -> float:
    """MIRAGE's ``bkgdrate`` from the exposure's yaml, else the run's conversion."""
    rate = mirage_bkgdrate(layout, exposure)
    if rate is not None:
        return rate
    if exposure.detector == miri.DETECTOR.name:  # the MIRI simulator's conversion
        return exposure.background_mjysr / float(miri.calibrated_filter(
            exposure.filter_name).photmjsr)
    return float(background_adu_s(exposure.detector, exposure.filter_name,
                                  exposure.background_mjysr))


def exposure_noise(layout: RunLayout, exposure: Exposure) -> ExposureNoise:
    """What :func:`expected_snr` needs of one exposure of a run."""
    det = detector_facts(exposure.detector)
    return ExposureNoise(
        gain_e_per_adu=det.gain_e_per_dn,
        readnoise_group_e=det.readnoise_cds_e / math.sqrt(2.0) / math.sqrt(exposure.nframes),
        sky_adu_s=_sky_adu_s(layout, exposure), ngroups=exposure.ngroups, nints=exposure.nints,
        tgroup_s=exposure.tgroup_s, pixel_scale_arcsec=det.pixel_scale_arcsec)
