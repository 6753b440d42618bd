"""NIRCam detector facts used by the synthetic instrument kit.

They live in :mod:`simval.instruments.nircam` (names, channels, gains, read noise, dark
current and their sources); this module is the kit's view of them. Besides those means of
the flight detectors the kit uses: bias ~12 000 DN per amplifier and (hard) saturation
~58 000 DN including bias, as in the flight SUPERBIAS and SATURATION references (CRDS
jwst_nircam_superbias_*, jwst_nircam_saturation_*).
"""

from __future__ import annotations

from simval.instruments.nircam import (
    DETECTORS,
    FULL_SIZE,
    LW_FILTERS,
    N_AMPLIFIERS,
    REFPIX_BORDER,
    SW_FILTERS,
    Detector,
    check_filter,
    get_detector,
)

__all__ = ["DETECTORS", "FULL_SIZE", "LW_FILTERS", "N_AMPLIFIERS", "REFPIX_BORDER",
           "SW_FILTERS", "Detector", "check_filter", "get_detector"]
