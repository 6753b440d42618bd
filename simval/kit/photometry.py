"""Photometric references: PHOTOM (PHOTMJSR per filter/pupil) and ABVEGAOFFSET.

Both are derived from MIRAGE's own zeropoint table (``mirage/config/NIRCam_zeropoints.list``,
read with ``astropy.io.ascii.read`` like MIRAGE's ``read_zeropoint_file`` and matched on
Detector/Filter/Pupil/Module as ``mirage.utils.flux_cal.fluxcal_info`` does), so that a
perfect simulation calibrated by the pipeline gives back the input magnitudes.

The conversion chain
--------------------
1. AB magnitude -> flux density (AB: 0 mag = 3631 Jy, i.e. 10**(-48.599934/2.5) cgs)::

       f_nu [erg s^-1 cm^-2 Hz^-1] = 10**(-0.4 * (m_AB + 48.599934378))
       F [Jy]                      = 1e23 * f_nu

2. MIRAGE count rate (``mirage.utils.utils.magnitude_to_countrate``; no gain factor)::

       R [ADU/s] = f_nu / PHOTFNU         PHOTFNU [erg s^-1 cm^-2 Hz^-1 / (ADU/s)]

   with PHOTFNU the row of the zeropoint table for (SIAF detector, filter wheel,
   pupil wheel, module). For NIRCam, MIRAGE's "detector" is the SIAF name (NRCB5 for
   NRCBLONG).

3. Pipeline photom (``jwst/photom/photom.py::calc_nircam`` -> ``photom_io``): the cal image
   is ``rate [DN/s] * PHOTMJSR`` in MJy/sr, with PHOTMJSR the ``photmjsr`` column of the
   ``phot_table`` row matching (filter, pupil) (and ``subarray`` only if that column exists;
   the kit has none). So::

       PHOTMJSR [MJy sr^-1 / (DN/s)] = PHOTFNU * 1e23 [Jy] / 1e6 [MJy] / PIXAR_SR [sr]

   PIXAR_SR is the nominal (full-frame mean) pixel area of the kit's distortion
   (:func:`simval.kit.distortion.write_area`). The photom step takes PIXAR_SR/PIXAR_A2 from
   the AREA reference (falling back to the photom reference, where the kit also writes them)
   and copies the AREA map to the product without applying it.

4. Back to a flux: ``F [Jy] = sum(MJy/sr) * 1e6 * PIXAR_SR`` (``source_catalog`` converts
   the i2d with the product's PIXAR_SR) ``= R * PHOTFNU * 1e23``, which is the input flux.

5. Magnitudes in ``source_catalog``: ``m_AB = -2.5 log10(F/Jy) + 8.9`` (it rounds the AB
   zeropoint: 2.5 log10(3631) = 8.900066), so its AB magnitudes are 6.6e-5 mag brighter
   than MIRAGE's input; harmless, but a closure check at 1e-4 mag must know it.
   ``m_Vega = m_AB - abvega_offset`` with the ABVEGAOFFSET row matching (filter, pupil);
   the kit writes ``ABMAG - VEGAMAG`` of MIRAGE's table, which is what MIRAGE's own Vega
   route implies (``ABMAG = -2.5 log10(PHOTFNU) - 48.599934`` holds in the table).

Known simulator systematic: MIRAGE ignores the distortion's pixel-area variation for point
sources, while drizzle conserves surface brightness: a star's flux comes out ~AREA times
the input (AREA map: NRCB1 0.990-1.013, mean 0.9916 over SUB400P; NRCBLONG 0.974-1.045).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simval.atomic import save_model
from simval.constants import AB_ZEROPOINT_CGS, CGS_PER_JY, JY_PER_MJY, SR_PER_ARCSEC2
from simval.instruments.nircam import wheel_elements, zeropoint_file
from simval.kit.detectors import Detector, check_filter, get_detector
from simval.kit.distortion import nominal_pixel_area
from simval.kit.refmeta import IMAGING_EXP_TYPES, stamp

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["AB_ZEROPOINT_CGS", "CGS_PER_JY", "JY_PER_MJY", "ZeropointRow", "abmag_to_jy",
           "abvega_offsets", "jy_to_abmag", "mag_to_countrate", "photmjsr", "write_abvegaoffset",
           "write_photom", "zeropoint_file", "zeropoint_row"]


@dataclass(frozen=True)
class ZeropointRow:
    """One row of MIRAGE's NIRCam zeropoint table.

    filter, pupil : filter-wheel and pupil-wheel elements.
    detector : MIRAGE/SIAF detector name (``NRCB5`` for NRCBLONG); module ``A``/``B``.
    vegamag, abmag, stmag : magnitudes giving 1 ADU/s in each system, mag.
    photflam : erg s^-1 cm^-2 A^-1 per ADU/s. photfnu : erg s^-1 cm^-2 Hz^-1 per ADU/s.
    pivot_um : pivot wavelength, micron.
    """

    filter: str
    pupil: str
    module: str
    detector: str
    vegamag: float
    abmag: float
    stmag: float
    photflam: float
    photfnu: float
    pivot_um: float

    @property
    def abvega_offset(self) -> float:
        """m_AB - m_Vega of a source, mag (= ABMAG - VEGAMAG zeropoints)."""
        return self.abmag - self.vegamag

    @property
    def photfnu_jy(self) -> float:
        """Flux density giving 1 ADU/s, Jy."""
        return self.photfnu / CGS_PER_JY


@functools.lru_cache(maxsize=1)
def _zeropoint_table():
    # mirage.utils.flux_cal.read_zeropoint_file is exactly astropy.io.ascii.read(filename);
    # calling it directly saves importing mirage.utils (~3 s: it pulls in jwst.datamodels).
    # tests/test_distortion_photom.py checks every row against MIRAGE's fluxcal_info.
    from astropy.io import ascii as astropy_ascii

    return astropy_ascii.read(str(zeropoint_file()))


def zeropoint_row(detector: Detector | str, band: str, pupil: str | None = None) -> ZeropointRow:
    """MIRAGE's zeropoint row for ``detector`` and a filter/pupil.

    ``filter`` is either a kit filter name (``F162M``; ``pupil`` omitted, resolved with
    :func:`simval.instruments.nircam.wheel_elements`) or a filter-wheel element with an
    explicit ``pupil`` (``"F150W2", "F162M"``). Raises ``ValueError`` if MIRAGE has no such
    row (MIRAGE would refuse to simulate it too).
    """
    det = get_detector(detector)
    fw, pw = wheel_elements(band) if pupil is None else (band.upper(), pupil.upper())
    table = _zeropoint_table()
    match = ((table["Detector"] == det.siaf_name) & (table["Filter"] == fw)
             & (table["Pupil"] == pw) & (table["Module"] == det.module))
    rows = table[match]
    if len(rows) != 1:
        raise ValueError(f"MIRAGE's zeropoint table {zeropoint_file()} has {len(rows)} rows "
                         f"for {det.siaf_name} module {det.module} filter {fw} pupil {pw}")
    r = rows[0]
    return ZeropointRow(filter=fw, pupil=pw, module=det.module, detector=det.siaf_name,
                        vegamag=float(r["VEGAMAG"]), abmag=float(r["ABMAG"]),
                        stmag=float(r["STMAG"]), photflam=float(r["PHOTFLAM"]),
                        photfnu=float(r["PHOTFNU"]), pivot_um=float(r["Pivot_wave"]))


def abmag_to_jy(mag: ArrayLike) -> np.ndarray | float:
    """AB magnitude -> flux density, Jy (0 mag = 3631 Jy)."""
    return 10.0 ** (-0.4 * (np.asarray(mag, dtype=float) + AB_ZEROPOINT_CGS)) / CGS_PER_JY


def jy_to_abmag(flux_jy: ArrayLike) -> np.ndarray | float:
    """Flux density (Jy) -> AB magnitude; inverse of :func:`abmag_to_jy`."""
    return -2.5 * np.log10(np.asarray(flux_jy, dtype=float) * CGS_PER_JY) - AB_ZEROPOINT_CGS


def mag_to_countrate(mag: ArrayLike, detector: Detector | str, band: str,
                     pupil: str | None = None) -> np.ndarray | float:
    """AB magnitude -> MIRAGE count rate, ADU/s (``10**(-0.4(m + 48.599934)) / PHOTFNU``)."""
    return abmag_to_jy(mag) * CGS_PER_JY / zeropoint_row(detector, band, pupil).photfnu


def photmjsr(detector: Detector | str, band: str, pixar_sr: float,
             pupil: str | None = None) -> float:
    """PHOTMJSR, MJy sr^-1 per DN/s: ``PHOTFNU * 1e23 / 1e6 / PIXAR_SR``."""
    return zeropoint_row(detector, band, pupil).photfnu_jy / JY_PER_MJY / pixar_sr


def _rows_for(det: Detector, filters: Iterable[str] | None) -> list[str]:
    names = det.filters if filters is None else filters
    return list(dict.fromkeys(check_filter(det, f) for f in names))


def write_photom(path: str | os.PathLike, detector: Detector | str,
                 filters: Iterable[str] | None = None, pixar_sr: float | None = None, *,
                 scale: float = 1.0) -> Path:
    """Write the PHOTOM reference (``NrcImgPhotomModel``) of ``detector``.

    One ``phot_table`` row per filter (``None``: every filter of the detector's channel),
    keyed by (filter wheel, pupil wheel) as the pipeline matches them, with
    ``photmjsr = scale * PHOTFNU * 1e23 / 1e6 / pixar_sr`` (MJy/sr per DN/s) and
    ``uncertainty = 0``. ``pixar_sr`` (sr) must be the AREA reference's PIXAR_SR; ``None``
    computes it from the distortion exactly as :func:`simval.kit.distortion.write_area` does
    (so the two files need not be built in order). PIXAR_SR/PIXAR_A2 go into the header too
    (the photom step's fallback when there is no AREA file). ``scale`` != 1 makes a
    deliberately miscalibrated file for derived contexts.
    """
    from stdatamodels.jwst.datamodels import NrcImgPhotomModel

    det = get_detector(detector)
    if pixar_sr is None:
        pixar_sr = nominal_pixel_area(det)[0]
    if not (pixar_sr > 0 and math.isfinite(pixar_sr)):
        raise ValueError(f"pixar_sr must be a positive pixel area in sr, got {pixar_sr!r}")
    names = _rows_for(det, filters)
    table = np.zeros(len(names), dtype=[("filter", "S12"), ("pupil", "S12"),
                                        ("photmjsr", "<f4"), ("uncertainty", "<f4")])
    for k, name in enumerate(names):
        zp = zeropoint_row(det, name)
        table[k] = (zp.filter, zp.pupil, scale * photmjsr(det, name, pixar_sr), 0.0)
    with NrcImgPhotomModel(phot_table=table) as pm:
        text = f"{det.name} PHOTMJSR from MIRAGE zeropoints (PHOTFNU) and PIXAR_SR"
        if scale != 1.0:
            text += f", scaled by {scale:g}"
        stamp(pm, det, "photom", text,
              history=(f"PHOTMJSR = {scale:g} * PHOTFNU * 1e23 / 1e6 / PIXAR_SR, "
                       f"PHOTFNU from mirage/config/NIRCam_zeropoints.list "
                       f"({det.siaf_name}, module {det.module}); PIXAR_SR = "
                       f"{pixar_sr:.9g} sr."))
        pm.meta.photometry.pixelarea_steradians = float(pixar_sr)
        pm.meta.photometry.pixelarea_arcsecsq = float(pixar_sr) / SR_PER_ARCSEC2
        pm.meta.exposure.type = "NRC_IMAGE"
        pm.meta.exposure.p_exptype = IMAGING_EXP_TYPES
        return save_model(pm, path)


def abvega_offsets(detectors: Detector | str | Sequence[Detector | str],
                   filters: Iterable[str] | None = None) -> dict[tuple[str, str], list[float]]:
    """``{(filter, pupil): [ABMAG - VEGAMAG per detector]}`` (mag) from MIRAGE's table.

    ``filters=None``: every filter of each detector's channel; otherwise each filter is taken
    for the detectors whose channel has it (``ValueError`` if none has it).
    """
    dets = [get_detector(d) for d in
            ([detectors] if isinstance(detectors, Detector | str) else detectors)]
    if not dets:
        raise ValueError("abvega_offsets needs at least one detector")
    if filters is not None:
        filters = [str(f).strip().upper() for f in filters]
        for f in filters:
            if not any(f in d.filters for d in dets):
                check_filter(dets[0], f)  # raises with the channel's filter list
    offsets: dict[tuple[str, str], list[float]] = {}
    for det in dets:
        names = det.filters if filters is None else [f for f in filters if f in det.filters]
        for name in dict.fromkeys(names):
            zp = zeropoint_row(det, name)
            offsets.setdefault((zp.filter, zp.pupil), []).append(zp.abvega_offset)
    return offsets


def write_abvegaoffset(path: str | os.PathLike,
                       detector: Detector | str | Sequence[Detector | str],
                       filters: Iterable[str] | None = None) -> Path:
    """Write the ABVEGAOFFSET reference (``ABVegaOffsetModel``, ASDF).

    Table columns ``filter``, ``pupil``, ``abvega_offset`` (mag, m_AB - m_Vega = ABMAG -
    VEGAMAG of MIRAGE's zeropoint row), one row per filter/pupil (``filters=None``: every
    filter of the channel). MIRAGE's offsets differ between detectors by up to 0.02 mag
    (F150W2, F322W2), so the exact file is per detector. CRDS's NIRCam abvegaoffset rmap
    matches on nothing: for one file serving several detectors, pass them all; a filter
    seen by several gets the mean offset and HISTORY records the spread.
    """
    from astropy.table import Table
    from stdatamodels.jwst.datamodels import ABVegaOffsetModel

    single = isinstance(detector, Detector | str)
    dets = [get_detector(detector)] if single else [get_detector(d) for d in detector]
    offsets = abvega_offsets(dets, filters)
    keys = list(offsets)
    table = Table({"filter": [k[0] for k in keys], "pupil": [k[1] for k in keys],
                   "abvega_offset": [sum(v) / len(v) for v in offsets.values()]})
    spread = max(max(v) - min(v) for v in offsets.values())
    names = ", ".join(d.name for d in dets)
    with ABVegaOffsetModel() as am:
        am.abvega_offset = table
        stamp(am, dets[0] if len(dets) == 1 else None, "abvegaoffset",
              f"{names} AB - Vega offsets from MIRAGE zeropoints (ABMAG - VEGAMAG)",
              history=(f"abvega_offset = ABMAG - VEGAMAG of "
                       f"mirage/config/NIRCam_zeropoints.list for {names}"
                       + ("" if len(dets) == 1 else
                          f"; mean over detectors, largest spread {spread:.4f} mag")
                       + "."))
        return save_model(am, path)


def background_adu_s(detector: Detector | str, band: str, sky_mjysr: float) -> float:
    """MIRAGE's ``bkgdrate`` (ADU/s/pixel) for a sky of ``sky_mjysr`` (MJy/sr): the sky
    divided by the kit's PHOTMJSR for that detector and filter at the detector's nominal
    pixel area (the zeropoints the pipeline calibrates with)."""
    if sky_mjysr == 0.0:
        return 0.0
    pixar_sr, _ = nominal_pixel_area(detector)
    return sky_mjysr / photmjsr(detector, band, pixar_sr)
