"""MIRI imager facts in one place: detector, filters, subarrays, readout, frame timing.

Units are in the names: pixels, seconds, microns, arcsec, e- and DN. Every number has its
source beside it; where the source is silent the choice is stated.

Detector (MIRIMAGE)
-------------------
JDox, "MIRI Detector Performance", Table 1: gain ~4 e-/DN, read noise ~6 DN, dark current
~0.2 e-/s, full well ~210 000 e-. The table does not say whether the read noise is per
frame or correlated double sample; simval takes it as the CDS noise, the convention of the
pipeline's READNOISE references. The full frame is 1032 columns x 1024 rows with 4
reference columns on each side (columns 1-4 and 1029-1032, 1-based:
``jwst/refpix/reference_pixels.py``); the imager's field starts at column 360 (SIAF
MIRIM_ILLUM, columns 360-1027), the Lyot and four-quadrant coronagraphs lie left of it.
Pixel scale: SIAF MIRIM_FULL, 0.11050 x 0.11134 arcsec.

Frame timing
------------
MIRI reads its four outputs at once, one pixel time of 10 us per sample; FASTR1 takes 1
sample per pixel, SLOWR1 9 (the first dropped). ``jwst.emicorr`` holds the clocks per
subarray (``subarray_clocks``: rowclocks, frameclocks); a frame is ``ny * rowclocks +
(1024 - ny) * 7`` clocks (the rows outside the subarray are skipped at 7 clocks each), and
frame time = frameclocks x 10 us: FULL 2.775 s (FASTR1) or 23.890 s (SLOWR1), BRIGHTSKY
0.865 s, SUB256 0.300 s (JDox, "MIRI Detector Subarrays"). One frame per group and no
group gap: TGROUP = TFRAME. SLOWR1 is allowed on FULL only ("FASTR1 mode is mandatory for
subarray exposures", JDox "MIRI Imaging Recommended Strategies").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simval.instruments.nircam import Timing

__all__ = [
    "CRUCIFORM_AMPLITUDE", "CRUCIFORM_EFOLD_PIX", "DETECTOR", "DITHER_PATTERNS", "FILTERS",
    "FULL_COLUMNS", "FULL_ROWS", "FULL_SLOW", "IMAGER_FIRST_COLUMN", "MIN_GROUPS",
    "PIXEL_SCALE_ARCSEC", "PIXEL_TIME_S", "READ_PATTERNS", "REFERENCE_COLUMNS",
    "SKIPPED_ROW_CLOCKS", "SUBARRAYS", "Filter", "MiriDetector", "ReadPattern", "Subarray",
    "calibrated_filter", "check_filter", "check_readout", "exposure_timing", "frame_clocks",
    "frame_time", "get_subarray", "read_clocks",
]

# --- geometry -------------------------------------------------------------------------------

#: Full-frame size, pixels (SIAF: 1032 x 1024; FASTAXIS=1, SLOWAXIS=2).
FULL_COLUMNS, FULL_ROWS = 1032, 1024
#: Reference columns on each side of the full frame.
REFERENCE_COLUMNS = 4
#: First column of the imager's field, 1-based (SIAF MIRIM_ILLUM: columns 360-1027).
IMAGER_FIRST_COLUMN = 360
#: Pixel scale, arcsec/pixel (x, y; SIAF MIRIM_FULL).
PIXEL_SCALE_ARCSEC = (0.11050, 0.11134)
#: One sample of one pixel on each of the four outputs, s.
PIXEL_TIME_S = 10e-6
#: Clocks spent on each row outside a subarray (``jwst.emicorr``'s frame model).
SKIPPED_ROW_CLOCKS = 7


@dataclass(frozen=True)
class MiriDetector:
    """The MIRI imager's detector (JDox "MIRI Detector Performance", Table 1)."""

    name: str = "MIRIMAGE"
    gain_e_per_dn: float = 4.0
    readnoise_cds_dn: float = 6.0
    dark_e_per_s: float = 0.2
    full_well_e: float = 210_000.0

    @property
    def full_well_dn(self) -> float:
        """Full well in DN above the pedestal (full well / gain)."""
        return self.full_well_e / self.gain_e_per_dn

    @property
    def readnoise_frame_dn(self) -> float:
        """Noise of one read, DN (CDS / sqrt(2))."""
        return self.readnoise_cds_dn / 2**0.5


DETECTOR = MiriDetector()

# --- filters --------------------------------------------------------------------------------


#: Vega's flux density at the 2MASS Ks isophotal wavelength, Jy, and that wavelength, um
#: (Cohen, Wheaton & Megeath 2003, AJ 126, 1090, Table 2).
VEGA_KS_JY, VEGA_KS_UM = 666.7, 2.159
#: The MIRI imaging sensitivity tables' extraction radius per micron of nominal wavelength,
#: arcsec: 0.42 lambda / 10 in STScI pandeia-verification (tests/miri/
#: miri_sensitivity_imaging.py at 4cef788, the calculation behind JDox's 10 ks limits).
SENSITIVITY_APERTURE_ARCSEC_PER_UM = 0.042

#: The detector's cross-shaped scattering, the "cruciform" (MIRI-TN-00076-ATC, Imager PSF,
#: Issue 4): the PSF plus itself convolved along rows and along columns with
#: ``A exp(-|x| / CRUCIFORM_EFOLD_PIX)`` (x in native pixels), then scaled back to its
#: flux. e-folding length, native pixels:
CRUCIFORM_EFOLD_PIX = 25.0
#: ``A`` per filter, per native pixel: the technical note's amplitudes (F560W 0.00220,
#: F770W 0.00139, F1000W 0.00034, F1130W 0.00007, F1280W 0.00011, 0 from F1500W on) times
#: the factors STScI's WebbPSF applies to match the MIRI team's PSFs (4.05, 4.1, 3.8, 2.5,
#: 2.5; its issue 415) over its default 4 samples per pixel, which it divides out: what
#: WebbPSF's MIRI PSFs carry. Each arm holds ~50 A of the light before rescaling: 22 % of
#: the PSF's flux in the cross at F560W, 14 % at F770W, 3 % at F1000W.
CRUCIFORM_AMPLITUDE = {"F560W": 0.00220 * 4.05 / 4, "F770W": 0.00139 * 4.1 / 4,
                       "F1000W": 0.00034 * 3.8 / 4, "F1130W": 0.00007 * 2.5 / 4,
                       "F1280W": 0.00011 * 2.5 / 4}
#: The AB magnitude zero point, Jy.
AB_ZERO_JY = 3631.0


@dataclass(frozen=True)
class Filter:
    """An imager filter.

    pivot_um / width_um : pivot wavelength and nominal bandwidth, um (JDox "MIRI Filters and
        Dispersers").
    photmjsr : the synthetic kit's calibration, (MJy/sr) per (DN/s) on FULL: the flight
        values of CRDS ``jwst_miri_photom_0074.fits`` (2022, as logged by the pipeline runs
        of STScI-MIRI/Imaging_ExampleNB), so count rates are flight-like; ``None`` where
        no value was found (the kit refuses those filters).
    fwhm_arcsec : on-sky PSF FWHM (JDox "MIRI Point Spread Functions", Table 1), to check
        the kit's PSFs against.
    """

    name: str
    pivot_um: float
    width_um: float
    photmjsr: float | None
    fwhm_arcsec: float

    @property
    def nominal_um(self) -> float:
        """The wavelength in the filter's name, micron (F770W: 7.7)."""
        return int(self.name[1:-1]) / 100.0

    @property
    def sensitivity_aperture_arcsec(self) -> float:
        """Radius of the ETC's point-source sensitivity aperture, arcsec:
        :data:`SENSITIVITY_APERTURE_ARCSEC_PER_UM` x the nominal wavelength (0.323" at
        F770W, 0.630" at F1500W)."""
        return SENSITIVITY_APERTURE_ARCSEC_PER_UM * self.nominal_um

    @property
    def ab_minus_vega(self) -> float:
        """AB - Vega magnitude, mag: Vega's Ks flux density extended along the
        Rayleigh-Jeans tail (f_nu ~ lambda^-2) to the pivot wavelength. An approximation
        (Vega's photosphere is close to Rayleigh-Jeans longward of 5 um; its disk adds
        above 20 um): 4.58 at F770W, 6.05 at F1500W."""
        vega_jy = VEGA_KS_JY * (VEGA_KS_UM / self.pivot_um) ** 2
        return float(2.5 * np.log10(AB_ZERO_JY / vega_jy))


FILTERS: dict[str, Filter] = {f.name: f for f in (
    Filter("F560W", 5.635, 1.2, None, 0.207),
    Filter("F770W", 7.639, 2.2, 0.304428, 0.269),
    Filter("F1000W", 9.953, 2.0, 0.369118, 0.328),
    Filter("F1130W", 11.309, 0.7, 1.18843, 0.375),
    Filter("F1280W", 12.810, 2.4, 0.427399, 0.420),
    Filter("F1500W", 15.064, 3.0, 0.366483, 0.488),
    Filter("F1800W", 17.984, 3.0, 0.494384, 0.591),
    Filter("F2100W", 20.795, 5.0, 0.428185, 0.674),
    Filter("F2550W", 25.365, 4.0, None, 0.803),
)}


def calibrated_filter(name: str) -> Filter:
    """The filter if the synthetic kit can calibrate it (it has a PHOTMJSR), else
    ``ValueError`` naming the filters it can."""
    f = FILTERS[check_filter(name)]
    if f.photmjsr is None:
        ok = [k for k, v in FILTERS.items() if v.photmjsr is not None]
        raise ValueError(f"the synthetic MIRI kit has no flux calibration for {f.name} (no "
                         f"published PHOTMJSR was found); it calibrates: {', '.join(ok)}")
    return f


# --- subarrays and readout ------------------------------------------------------------------


@dataclass(frozen=True)
class Subarray:
    """An imaging subarray: size and 1-based origin in the full frame (SIAF MIRIM_*), and
    its clocks (``jwst.emicorr.emicorr.subarray_clocks``)."""

    name: str
    xsize: int
    ysize: int
    xstart: int
    ystart: int
    rowclocks: int
    frameclocks: int


SUBARRAYS: dict[str, Subarray] = {s.name: s for s in (
    Subarray("FULL", 1032, 1024, 1, 1, 271, 277_504),
    Subarray("BRIGHTSKY", 512, 512, 457, 51, 162, 86_528),
    Subarray("SUB256", 256, 256, 413, 51, 96, 29_952),
    Subarray("SUB128", 136, 128, 1, 891, 44, 11_904),
    Subarray("SUB64", 72, 64, 1, 779, 28, 8_512),
)}
#: FULL read with SLOWR1 (``FULL_SLOW`` in jwst.emicorr).
FULL_SLOW = Subarray("FULL", 1032, 1024, 1, 1, 2333, 2_388_992)


@dataclass(frozen=True)
class ReadPattern:
    """A MIRI readout pattern: samples per pixel (NSAMPLES), frames per group (NFRAMES) and
    the subarrays it may read."""

    name: str
    nsamples: int
    nframes: int
    subarrays: tuple[str, ...]


READ_PATTERNS: dict[str, ReadPattern] = {
    "FASTR1": ReadPattern("FASTR1", 1, 1, tuple(SUBARRAYS)),
    "SLOWR1": ReadPattern("SLOWR1", 9, 1, ("FULL",)),
}

#: Fewest groups simval simulates and calibrates per integration: the kit's RSCD reference
#: flags the first 4 groups of integrations after the first and lastframe the last one, so
#: 5 groups leave the first integration 3 usable groups (jwst's emicorr needs >= 3).
MIN_GROUPS = 5

#: Imaging dither pattern types (DMS ``PATTTYPE`` values, stdatamodels core schema).
DITHER_PATTERNS = ("CYCLING", "REULEAUX", "4-POINT-SETS", "SPARSE-CYCLING", "2-POINT")


def get_subarray(name: str) -> Subarray:
    """A subarray by name (case-insensitive); ``ValueError`` naming the allowed ones."""
    key = str(name).strip().upper()
    if key not in SUBARRAYS:
        raise ValueError(f"unknown MIRI imaging subarray {name!r}; expected one of: "
                         f"{', '.join(SUBARRAYS)}")
    return SUBARRAYS[key]


def check_filter(name: str) -> str:
    """The upper-cased filter if the imager has it, else ``ValueError`` naming the filters."""
    key = str(name).strip().upper()
    if key not in FILTERS:
        raise ValueError(f"{name!r} is not a MIRI imaging filter; expected one of: "
                         f"{', '.join(FILTERS)}")
    return key


def check_readout(pattern: str, subarray: str) -> ReadPattern:
    """The read pattern if it may read ``subarray``, else ``ValueError`` saying why."""
    key = str(pattern).strip().upper()
    if key not in READ_PATTERNS:
        raise ValueError(f"unknown MIRI read pattern {pattern!r}; expected one of: "
                         f"{', '.join(READ_PATTERNS)}")
    rp = READ_PATTERNS[key]
    sub = get_subarray(subarray)
    if sub.name not in rp.subarrays:
        raise ValueError(f"{rp.name} cannot read {sub.name}: it reads only "
                         f"{', '.join(rp.subarrays)} (subarray exposures use FASTR1)")
    return rp


def frame_clocks(subarray: str, pattern: str = "FASTR1") -> int:
    """Clocks of one frame: the subarray's rows at its rowclocks, the other rows of the
    1024 at :data:`SKIPPED_ROW_CLOCKS`."""
    sub = FULL_SLOW if check_readout(pattern, subarray).name == "SLOWR1" \
        else get_subarray(subarray)
    return sub.ysize * sub.rowclocks + (FULL_ROWS - sub.ysize) * SKIPPED_ROW_CLOCKS


def frame_time(subarray: str, pattern: str = "FASTR1") -> float:
    """TFRAME (= TGROUP), s."""
    return frame_clocks(subarray, pattern) * PIXEL_TIME_S


def read_clocks(subarray: str, pattern: str, ngroups: int, nints: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """When each pixel of each group is read, in pixel clocks (10 us) from the first read:
    ``group_start[int, group] + pixel_offset[row, col]`` (the clock model ``jwst.emicorr``
    fits EMI with).

    The four outputs read columns ``4k .. 4k+3`` of a row at once, ``nsamples`` clocks per
    column group; a row costs ``rowclocks``; a group one frame (:func:`frame_clocks`); an
    integration ``ngroups`` frames plus one reset frame of ``frameclocks``.

    Returns
    -------
    group_start : ndarray, int64, shape (nints, ngroups)
    pixel_offset : ndarray, int64, shape (ysize, xsize)
    """
    rp = check_readout(pattern, subarray)
    sub = FULL_SLOW if rp.name == "SLOWR1" else get_subarray(subarray)
    frame = frame_clocks(subarray, pattern)
    integration = ngroups * frame + sub.frameclocks
    group_start = (np.arange(nints, dtype=np.int64)[:, None] * integration
                   + np.arange(ngroups, dtype=np.int64)[None, :] * frame)
    rows = np.arange(sub.ysize, dtype=np.int64)[:, None] * sub.rowclocks
    cols = (np.arange(sub.xsize, dtype=np.int64) // 4)[None, :] * rp.nsamples
    return group_start, rows + cols


def exposure_timing(pattern: str, subarray: str, ngroups: int, nints: int):
    """Timing of one exposure (:class:`simval.instruments.nircam.Timing`'s definitions):
    one frame per group, no group gap, a reset frame before every integration."""
    tframe = frame_time(subarray, pattern)
    t_int = ngroups * tframe
    return Timing(tframe_s=tframe, tgroup_s=tframe, integration_time_s=t_int,
                  measurement_time_s=nints * (ngroups - 1) * tframe,
                  exposure_time_s=nints * t_int, duration_s=nints * (ngroups + 1) * tframe,
                  frames_read=ngroups)
