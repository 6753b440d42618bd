"""Write ``catalogs/coron_disk_ring.fits``: a debris-disk-like ring for
``scenarios/coron_disk.yaml``.

An inclined ring around the target (RA 150, Dec 2): radius 2.0", Gaussian radial profile
of FWHM 0.3", inclination 60 deg (the minor axis half the major), major axis at position
angle 30 deg East of North, brighter on its forward-scattering side (near side, a
Henyey-Greenstein-like 1 + 0.5 cos term). Peak surface brightness 2.5 MJy/sr in F335M,
about 1e-4 of an AB 8 star in all. A TAN image of 201 x 201 pixels of 0.05", BUNIT
MJy/sr. Run from the repository root: ``python scripts/make_coron_disk.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

RA, DEC = 150.0, 2.0
SCALE_ARCSEC, SIZE = 0.05, 201
RADIUS_ARCSEC, FWHM_ARCSEC = 2.0, 0.3
INCLINATION_DEG, PA_DEG, PEAK_MJYSR = 60.0, 30.0, 2.5


def main() -> Path:
    c = (SIZE - 1) / 2.0
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    east, north = -(xx - c) * SCALE_ARCSEC, (yy - c) * SCALE_ARCSEC  # RA grows to the left
    pa = np.radians(PA_DEG)
    major = east * np.sin(pa) + north * np.cos(pa)
    minor = east * np.cos(pa) - north * np.sin(pa)
    cos_i = np.cos(np.radians(INCLINATION_DEG))
    r = np.hypot(major, minor / cos_i)  # the ring's radius in its own plane
    sigma = FWHM_ARCSEC / 2.3548
    ring = np.exp(-0.5 * ((r - RADIUS_ARCSEC) / sigma) ** 2)
    forward = 1.0 + 0.5 * np.clip(minor / np.maximum(r * np.sin(np.radians(
        INCLINATION_DEG)), 1e-9), -1.0, 1.0)
    data = PEAK_MJYSR * ring * forward / 1.5
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [RA, DEC]
    w.wcs.crpix = [c + 1.0, c + 1.0]
    w.wcs.cdelt = [-SCALE_ARCSEC / 3600.0, SCALE_ARCSEC / 3600.0]
    header = w.to_header()
    header["BUNIT"] = "MJy/sr"
    header["COMMENT"] = "debris-disk-like ring for scenarios/coron_disk.yaml"
    out = Path("catalogs/coron_disk_ring.fits")
    fits.PrimaryHDU(data.astype(np.float32), header).writeto(out, overwrite=True)
    return out


if __name__ == "__main__":
    print(main())
