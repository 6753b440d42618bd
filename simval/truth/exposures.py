"""What MIRAGE says it put into each exposure of a run, and the union over a mosaic's exposures.

:func:`read_exposure_lists` reads an exposure's truth lists (positions in 0-based subarray
pixels, AB magnitudes, count rates in ADU/s), :func:`science_region` gives the pixels that
count (reference pixels excluded), :func:`gather_truth_lists` joins the lists of several
exposures into one :class:`Listed` per source type, and :func:`mirage_bkgdrate` reads the
sky rate (ADU/s/pixel) the exposure's MIRAGE yaml gave the simulator.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simval.instruments.detectors import detector_facts
from simval.layout import RunLayout
from simval.simulate.mirage_catalogs import read_galaxy_list, read_point_source_list
from simval.truth.rundir import file_ending

if TYPE_CHECKING:
    from astropy.table import Table

    from simval.plan import Exposure

__all__ = ["Listed", "gather_truth_lists", "mirage_bkgdrate", "mirage_photmjsr",
           "read_exposure_lists", "science_region"]


#: MIRAGE's truth lists: type -> (file suffix, reader, common column -> (MIRAGE's, dtype)).
_LISTS = {
    "star": ("_pointsources.list", read_point_source_list, {
        "index": ("index", np.int64), "pixel_x": ("pixel_x", np.float64),
        "pixel_y": ("pixel_y", np.float64), "magnitude": ("magnitude", np.float64),
        "countrate_adu_s": ("countrate_adu_s", np.float64)}),
    "galaxy": ("_galaxySources.list", read_galaxy_list, {
        "index": ("index", np.int64), "pixel_x": ("pixelx", np.float64),
        "pixel_y": ("pixely", np.float64), "magnitude": ("magnitude", np.float64),
        "countrate_adu_s": ("countrate_e/s", np.float64), "radius_pix": ("radius", np.float64)}),
}


def read_exposure_lists(exposure_dir: str | os.PathLike) -> dict[str, Table]:
    """MIRAGE's truth lists of one exposure, in common column names.

    Parameters
    ----------
    exposure_dir : path
        ``exposures/<base>/`` of a run.

    Returns
    -------
    dict
        ``{"star": Table, "galaxy": Table}`` (a type is absent if MIRAGE wrote no list),
        with columns ``index``, ``pixel_x``, ``pixel_y`` (0-based subarray pixels),
        ``magnitude`` (AB, as MIRAGE used it) and ``countrate_adu_s`` (catalog flux,
        infinite aperture, ADU/s); galaxies also ``radius_pix``.

    Raises
    ------
    FileNotFoundError
        If the directory does not exist.
    """
    from astropy.table import Table

    d = Path(exposure_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: the exposure's simulator directory is missing")
    out: dict[str, Table] = {}
    for kind, (suffix, reader, columns) in _LISTS.items():
        path = file_ending(d, suffix)
        if path is not None:
            raw = reader(path)
            out[kind] = Table({name: np.asarray(raw[source], dtype)
                               for name, (source, dtype) in columns.items()},
                              meta={"path": str(path)})
    return out


def science_region(layout: RunLayout, exposure: Exposure) -> tuple[int, int, int, int]:
    """Science pixels of an exposure's subarray: ``(x0, x1, y0, y1)``, 0-based, end-exclusive.

    The reference-pixel border (4 pixels on every side of the 2048 x 2048 detector) is
    excluded using the subarray origin ``SUBSTRT1/2`` of the cal (or uncal) file; without
    either file the whole subarray counts.
    """
    from astropy.io import fits

    x0, x1, y0, y1 = 0, exposure.xsize, 0, exposure.ysize
    for path in (layout.image2 / exposure.cal_name,
                 layout.exposure_dir(exposure.base_name) / exposure.uncal_name):
        if not path.is_file():
            continue
        hdr = fits.getheader(path, 0)
        if "SUBSTRT1" not in hdr or "SUBSTRT2" not in hdr:
            continue
        sx, sy = int(hdr["SUBSTRT1"]) - 1, int(hdr["SUBSTRT2"]) - 1
        facts = detector_facts(exposure.detector)
        (xlo, xhi), (ylo, yhi) = facts.science_x, facts.science_y
        return (max(x0, xlo - sx), min(x1, xhi - sx), max(y0, ylo - sy), min(y1, yhi - sy))
    return x0, x1, y0, y1


def _inside(x: np.ndarray, y: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    x0, x1, y0, y1 = region
    return (x >= x0 - 0.5) & (x < x1 - 0.5) & (y >= y0 - 0.5) & (y < y1 - 0.5)


@dataclass(frozen=True)
class Listed:
    """The union of one source type over a mosaic's exposures (MIRAGE truth lists).

    ``index`` (sorted, unique), the first listing's ``magnitude`` and ``countrate_adu_s``,
    the file it came from (``source``), and ``covered`` (n_sources x n_exposures bool: on
    that exposure's science pixels).
    """

    index: np.ndarray
    magnitude: np.ndarray
    countrate_adu_s: np.ndarray
    source: list[str]
    covered: np.ndarray


def gather_truth_lists(layout: RunLayout, exposures: Sequence[Exposure]) -> dict[str, Listed]:
    """Union of the exposures' truth lists per type (vectorised over sources)."""
    parts: dict[str, list[tuple[int, Table, np.ndarray]]] = {"star": [], "galaxy": []}
    for k, e in enumerate(exposures):
        lists = read_exposure_lists(layout.exposure_dir(e.base_name))
        region = science_region(layout, e)
        for kind, t in lists.items():
            parts[kind].append((k, t, _inside(np.asarray(t["pixel_x"]),
                                              np.asarray(t["pixel_y"]), region)))
    out = {}
    for kind, items in parts.items():
        idx = np.concatenate([np.asarray(t["index"], np.int64) for _, t, _ in items]) \
            if items else np.zeros(0, np.int64)
        uniq, first = np.unique(idx, return_index=True)  # first listing of each index
        covered = np.zeros((uniq.size, len(exposures)), bool)
        mags, rates, srcs = [], [], []
        for k, t, inside in items:
            covered[np.searchsorted(uniq, np.asarray(t["index"], np.int64)), k] |= inside
            mags.append(np.asarray(t["magnitude"], float))
            rates.append(np.asarray(t["countrate_adu_s"], float))
            srcs += [t.meta["path"]] * len(t)
        out[kind] = Listed(uniq, _firsts(mags, first), _firsts(rates, first),
                           [srcs[i] for i in first], covered)
    return out


def _firsts(arrays: list[np.ndarray], first: np.ndarray) -> np.ndarray:
    return np.concatenate(arrays)[first] if arrays else np.zeros(0)


def mirage_bkgdrate(layout: RunLayout, exposure: Exposure) -> float | None:
    """``simSignals: bkgdrate`` of the exposure's MIRAGE yaml, ADU/s/pixel; None without
    the file or when it is not a number."""
    import yaml

    path = layout.exposure_dir(exposure.base_name) / f"{exposure.base_name}.yaml"
    if not path.is_file():
        return None
    doc = yaml.safe_load(path.read_text()) or {}
    value = (doc.get("simSignals") or {}).get("bkgdrate")
    try:
        return float(value)
    except (TypeError, ValueError):
        return None  # a file name or "low"/"medium"/"high": not a number we can use


def mirage_photmjsr(layout: RunLayout, exposure: Exposure) -> float | None:
    """PHOTMJSR (MJy/sr per ADU/s) of the photom reference the exposure was simulated with
    (``Reffiles: photom`` of its MIRAGE yaml), in the row of its filter and pupil: the
    truth's conversion, which a calibration with another photom must not move. None
    without the yaml, a readable file or a matching row."""
    import yaml
    from astropy.io import fits

    path = layout.exposure_dir(exposure.base_name) / f"{exposure.base_name}.yaml"
    if not path.is_file():
        return None
    doc = yaml.safe_load(path.read_text()) or {}
    readout = doc.get("Readout") or {}
    photom = Path(str((doc.get("Reffiles") or {}).get("photom", "")))
    if not photom.is_file():
        return None
    with fits.open(photom) as hdul:
        if "PHOTOM" not in hdul:
            return None
        table = hdul["PHOTOM"].data
        rows = [r for r in table
                if str(r["filter"]).strip().upper() == str(readout.get("filter", "")).upper()
                and str(r["pupil"]).strip().upper() == str(readout.get("pupil", "")).upper()]
    return float(rows[0]["photmjsr"]) if rows else None

