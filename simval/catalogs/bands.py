"""Passbands the catalog code knows: name, instrument, pivot wavelength and width.

Used to name catalog columns (JAGUAR's ``NRC_F115W_fnu`` / ``MIRI_F770W_fnu``) and by the
``dream_like`` generator to integrate its model spectra over a band. Each band is a top-hat
of the listed width centred on the pivot wavelength: adequate for the smooth model spectra
of :mod:`simval.catalogs.dream_like` (the colours it makes are approximate by design), not
for precise synthetic photometry.

Values (micron) are the pivot wavelengths and bandwidths of the JWST user documentation
(JDox: "NIRCam Filters", "MIRI Filters and Dispersers"), rounded; ``F814W`` (HST/ACS) is
included because the redshift prior of Benitez (2000) is defined on it.
"""

from __future__ import annotations

from simval.instruments import miri

#: band -> (instrument, pivot micron, width micron)
BANDS: dict[str, tuple[str, float, float]] = {
    # NIRCam short wave
    "F070W": ("NIRCAM", 0.704, 0.128),
    "F090W": ("NIRCAM", 0.901, 0.194),
    "F115W": ("NIRCAM", 1.154, 0.225),
    "F140M": ("NIRCAM", 1.404, 0.142),
    "F150W": ("NIRCAM", 1.501, 0.318),
    "F162M": ("NIRCAM", 1.626, 0.168),
    "F182M": ("NIRCAM", 1.845, 0.238),
    "F200W": ("NIRCAM", 1.990, 0.461),
    "F210M": ("NIRCAM", 2.093, 0.205),
    # NIRCam long wave
    "F250M": ("NIRCAM", 2.503, 0.181),
    "F277W": ("NIRCAM", 2.786, 0.672),
    "F300M": ("NIRCAM", 2.996, 0.318),
    "F335M": ("NIRCAM", 3.365, 0.347),
    "F356W": ("NIRCAM", 3.563, 0.787),
    "F360M": ("NIRCAM", 3.621, 0.372),
    "F410M": ("NIRCAM", 4.092, 0.436),
    "F430M": ("NIRCAM", 4.280, 0.228),
    "F444W": ("NIRCAM", 4.421, 1.024),
    "F460M": ("NIRCAM", 4.630, 0.228),
    "F480M": ("NIRCAM", 4.834, 0.303),
    # MIRI imager: simval.instruments.miri's filters
    **{f.name: ("MIRI", f.pivot_um, f.width_um) for f in miri.FILTERS.values()},
    # HST/ACS, for the redshift prior only
    "F814W": ("ACS", 0.805, 0.234),
}

#: Bands the generator writes by default: NIRCam's eight wide filters.
DEFAULT_BANDS = ("F070W", "F090W", "F115W", "F150W", "F200W", "F277W", "F356W", "F444W")


def normalise_band(band: str) -> str:
    """``'f150w'`` -> ``'F150W'``; raises ``ValueError`` for an unknown band."""
    name = str(band).strip().upper()
    if name not in BANDS:
        raise ValueError(f"unknown passband {band!r}; known: {', '.join(BANDS)}")
    return name


def instrument_of(band: str) -> str:
    """``'NIRCAM'``, ``'MIRI'`` or ``'ACS'``."""
    return BANDS[normalise_band(band)][0]


def pivot_um(band: str) -> float:
    """Pivot wavelength of ``band``, micron."""
    return BANDS[normalise_band(band)][1]


def width_um(band: str) -> float:
    """Bandwidth of ``band`` (top-hat width used here), micron."""
    return BANDS[normalise_band(band)][2]
