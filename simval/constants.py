"""Physical constants: angles and the AB magnitude zero point, each defined once.

The AB system has two spellings here, numerically the same:

- MIRAGE's cgs constant ``m_AB = -2.5 log10(f_nu / [erg s^-1 cm^-2 Hz^-1]) - 48.599934378``
  (``mirage.utils.utils.magnitude_to_countrate``), used to make the kit's count rates;
- 0 mag = 3631 Jy, used for fluxes in Jy and nJy (truth tables, catalogs, depths).

``-2.5 log10(3631e-23) = 48.5999343777``: the two agree to 3e-10 mag. The 6.6e-5 mag that
does matter is jwst's ``source_catalog``, which rounds ``2.5 log10(3631) = 8.900066`` to 8.9,
so its AB magnitudes are 6.6e-5 mag brighter than either convention (see
:mod:`simval.kit.photometry`).
"""

from __future__ import annotations

import math

#: Arcseconds per radian, 180 / pi * 3600 = 206264.806...
ARCSEC_PER_RAD = 180.0 / math.pi * 3600.0
#: Milliarcseconds per radian, 180 / pi * 3.6e6.
MAS_PER_RAD = 180.0 / math.pi * 3600.0e3
#: Arcseconds per milliarcsecond.
ARCSEC_PER_MAS = 1.0e-3
#: Steradians per square arcsecond, (pi / 648000)^2.
SR_PER_ARCSEC2 = (math.pi / 648000.0) ** 2

#: AB zero point in cgs, MIRAGE's constant: m_AB = -2.5 log10(f_nu [erg/s/cm^2/Hz]) - this.
AB_ZEROPOINT_CGS = 48.599934378
#: Flux density of AB magnitude 0, Jy.
AB_FLUX_JY = 3631.0
#: AB magnitude of 1 nJy, 2.5 log10(3631e9) = 31.40: m_AB = this - 2.5 log10(f [nJy]).
AB_ZEROPOINT_NJY = 2.5 * math.log10(AB_FLUX_JY * 1.0e9)

#: erg s^-1 cm^-2 Hz^-1 per Jy.
CGS_PER_JY = 1.0e-23
#: Jy per MJy.
JY_PER_MJY = 1.0e6

__all__ = ["AB_FLUX_JY", "AB_ZEROPOINT_CGS", "AB_ZEROPOINT_NJY", "ARCSEC_PER_MAS",
           "ARCSEC_PER_RAD", "CGS_PER_JY", "JY_PER_MJY", "MAS_PER_RAD", "SR_PER_ARCSEC2"]
