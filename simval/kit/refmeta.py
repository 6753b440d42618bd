"""Metadata shared by every kit reference file, as CRDS certify requires it.

CRDS checks AUTHOR, DESCRIP, PEDIGREE, USEAFTER, HISTORY, TELESCOP, INSTRUME and the
selection keys of the rmap (DETECTOR, SUBARRAY, ...). Every kit reference is a
simulation of the flight detector, hence ``PEDIGREE = SIMULATION``.
"""

from __future__ import annotations

from typing import Any

from simval.kit.detectors import FULL_SIZE, Detector

AUTHOR = "simval synthetic instrument kit"
PEDIGREE = "SIMULATION"
#: Kit references apply to every observation: USEAFTER precedes JWST's launch.
USEAFTER = "2021-12-25T00:00:00"
#: Exposure types a NIRCam imaging reference applies to (CRDS P_EXP_TY pattern).
IMAGING_EXP_TYPES = "NRC_IMAGE|NRC_TACQ|NRC_TACONFIRM|NRC_FOCUS|NRC_DARK|NRC_FLAT|NRC_LED|"


def stamp(
    model: Any,
    detector: Detector | str | None,
    reftype: str,
    description: str,
    *,
    seed: int | None = None,
    subarray: tuple[str, int, int, int, int] | None = None,
    history: str | None = None,
    instrument: str = "NIRCAM",
) -> Any:
    """Fill the CRDS-required metadata of a stdatamodels reference model in place.

    Parameters
    ----------
    model : an open ``stdatamodels.jwst.datamodels`` reference model.
    detector : kit NIRCam detector, a detector name (``"MIRIMAGE"``), or ``None`` for
        references that apply to every detector.
    reftype : CRDS reference type, lower case (``"flat"``).
    description : one line for DESCRIP.
    seed : random seed the content was made with (recorded in HISTORY).
    subarray : ``(name, xstart, ystart, xsize, ysize)``, 1-based; full frame by default.
    history : extra HISTORY text.
    instrument : ``NIRCAM`` or ``MIRI``; a full-frame ``subarray`` default is NIRCam's.
    """
    meta = model.meta
    meta.telescope = "JWST"
    meta.instrument.name = instrument
    if isinstance(detector, str):
        meta.instrument.detector = detector
    elif detector is not None:
        meta.instrument.detector = detector.name
        meta.instrument.channel = detector.channel
        meta.instrument.module = detector.module
    meta.reftype = reftype.upper()
    meta.author = AUTHOR
    meta.pedigree = PEDIGREE
    meta.useafter = USEAFTER
    meta.description = description
    name, xstart, ystart, xsize, ysize = subarray or ("FULL", 1, 1, FULL_SIZE, FULL_SIZE)
    if hasattr(meta, "subarray"):
        meta.subarray.name = name
        meta.subarray.xstart = xstart
        meta.subarray.ystart = ystart
        meta.subarray.xsize = xsize
        meta.subarray.ysize = ysize
        if instrument == "MIRI":  # CRDS's MIRI certify requires the readout axes
            meta.subarray.fastaxis, meta.subarray.slowaxis = 1, 2
    elif instrument == "MIRI":
        # CRDS's MIRI AREA spec requires the subarray keywords, which PixelAreaModel's
        # schema does not have: written as extra FITS cards (stdatamodels' extra_fits).
        cards = [["SUBARRAY", name, ""], ["SUBSTRT1", xstart, ""], ["SUBSTRT2", ystart, ""],
                 ["SUBSIZE1", xsize, ""], ["SUBSIZE2", ysize, ""], ["FASTAXIS", 1, ""],
                 ["SLOWAXIS", 2, ""]]
        model.extra_fits = {"PRIMARY": {"header": cards}}
    text = f"Synthetic {'NIRCam' if instrument == 'NIRCAM' else instrument} {reftype} " \
           "reference made by simval"
    if seed is not None:
        text += f" from seed {seed}"
    model.add_history_entry(text + ".")
    if history:
        model.add_history_entry(history)
    return model
