"""What the truth and evaluation code needs of any detector, NIRCam or MIRI, by DMS name:
pixel scale, gain, read noise, the science pixels of the full frame, and the PSF FWHM of a
band. Read from the instrument modules (:mod:`simval.instruments.nircam`,
:mod:`simval.instruments.miri`), which stay the one home of each fact.

Units: arcsec, e-/DN, e-, 0-based full-frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

from simval.instruments import miri, nircam

__all__ = ["DetectorFacts", "detector_facts", "psf_fwhm_arcsec"]


@dataclass(frozen=True)
class DetectorFacts:
    """One detector's numbers.

    pixel_scale_arcsec : native scale (NIRCam: the channel's; MIRI: mean of x and y).
    science_x / science_y : half-open [lo, hi) full-frame 0-based columns / rows that see
        the sky (reference pixels, and MIRI's coronagraph region, excluded).
    channel : NIRCam ``SHORT``/``LONG``; ``MIRIMAGE`` for the MIRI imager.
    """

    name: str
    instrument: str
    channel: str
    pixel_scale_arcsec: float
    gain_e_per_dn: float
    readnoise_cds_e: float
    science_x: tuple[int, int]
    science_y: tuple[int, int]


def detector_facts(name: str) -> DetectorFacts:
    """The facts of a DMS detector (``NRCB1``, ``NRCBLONG``, ``MIRIMAGE``)."""
    if str(name).strip().upper() == miri.DETECTOR.name:
        d = miri.DETECTOR
        lo = miri.IMAGER_FIRST_COLUMN - 1
        return DetectorFacts(d.name, "MIRI", d.name, float(sum(miri.PIXEL_SCALE_ARCSEC) / 2),
                             d.gain_e_per_dn, d.readnoise_cds_dn * d.gain_e_per_dn,
                             (lo, miri.FULL_COLUMNS - miri.REFERENCE_COLUMNS),
                             (0, miri.FULL_ROWS))
    det = nircam.get_detector(name)
    lo, hi = nircam.REFPIX_BORDER, nircam.FULL_SIZE - nircam.REFPIX_BORDER
    return DetectorFacts(det.name, "NIRCAM", det.channel,
                         nircam.NATIVE_SCALE_ARCSEC[det.channel], det.gain_e_per_dn,
                         det.readnoise_cds_e, (lo, hi), (lo, hi))


def psf_fwhm_arcsec(band: str) -> float:
    """PSF FWHM of a NIRCam or MIRI imaging band, arcsec (``KeyError`` naming the known
    bands otherwise; a ``/PUPIL`` or ``+...`` suffix is ignored)."""
    key = band.strip().upper().split("/")[0].split("+")[0]
    if key in nircam.NIRCAM_FWHM_ARCSEC:
        return float(nircam.NIRCAM_FWHM_ARCSEC[key])
    if key in miri.FILTERS:
        return float(miri.FILTERS[key].fwhm_arcsec)
    raise KeyError(f"no PSF FWHM for filter {band!r}; known: "
                   f"{', '.join([*nircam.NIRCAM_FWHM_ARCSEC, *miri.FILTERS])}")
