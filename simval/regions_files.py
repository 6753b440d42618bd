"""DS9 region files of a mosaic's evaluation, written with the ``regions`` package.

Three files per product in ``evaluation/`` (:meth:`simval.layout.RunLayout.regions_file`),
every shape in ICRS sky coordinates so that ``ds9 <product>_i2d.fits -regions <file>``
overlays them on the mosaic (or on any image of the field):

=================  ==========================================================================
``_holes.reg``     one box per defect (:mod:`simval.metrics.mosaic_defects`): black lines as
                   boxes along their major axis (length x width, rotated), other holes as
                   their bounding box; text ``D<id> <cause>``, tags ``{black_line|hole}``
                   and ``{<cause>}``; red: no coverage, magenta: DO_NOT_USE, yellow:
                   resample NaN, white: unknown
``_seams.reg``     one polygon per exposure (its array outline on the sky), text the exposure
                   and the sky step across its edge where one was measured; tag ``{seam}``
``_sources.reg``   from the match table: matched detections (green circles at the measured
                   position), missed truth sources in the footprint (red, true position),
                   spurious detections (orange, measured position); radius the match
                   radius; tags ``{matched}``, ``{missed}``, ``{spurious}``
=================  ==========================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.atomic import atomic_path

if TYPE_CHECKING:
    from astropy.table import Table
    from astropy.wcs import WCS
    from regions import Regions

    from simval.metrics.mosaic_defects import Defect

__all__ = ["CAUSE_COLOURS", "REGION_KINDS", "defect_regions", "seam_regions",
           "source_regions", "write_regions"]

#: The region files of a product (``evaluation/<product>_<kind>.reg``).
REGION_KINDS = ("holes", "seams", "sources")
#: DS9 colour of a defect per cause.
CAUSE_COLOURS = {"no_coverage": "red", "do_not_use": "magenta", "resample_nan": "yellow",
                 "unknown": "white"}
_SOURCE_COLOURS = {"matched": "green", "missed": "red", "spurious": "orange"}


def _meta(text: str | None, tags: Sequence[str]) -> Any:
    from regions import RegionMeta

    meta: dict[str, Any] = {"tag": list(tags)}
    if text:
        meta["text"] = text
    return RegionMeta(meta)


def _visual(colour: str) -> Any:
    from regions import RegionVisual

    return RegionVisual({"color": colour})


def defect_regions(defects: Sequence[Defect], mosaic_wcs: WCS) -> Regions:
    """Boxes of the defects (module docstring), converted to the sky with the mosaic WCS."""
    import astropy.units as u
    from regions import PixCoord, RectanglePixelRegion, Regions

    out = []
    for d in defects:
        if d.kind == "black_line":
            pix = RectanglePixelRegion(PixCoord(d.x, d.y), width=d.length_pix,
                                       height=d.width_pix, angle=d.angle_deg * u.deg)
        else:
            pix = RectanglePixelRegion(PixCoord(0.5 * (d.x_min + d.x_max),
                                                0.5 * (d.y_min + d.y_max)),
                                       width=d.x_max - d.x_min + 1.0,
                                       height=d.y_max - d.y_min + 1.0)
        sky = pix.to_sky(mosaic_wcs)
        sky.meta = _meta(f"D{d.defect_id} {d.cause}", [d.kind, d.cause])
        sky.visual = _visual(CAUSE_COLOURS.get(d.cause, "white"))
        out.append(sky)
    return Regions(out)


def seam_regions(outlines: Mapping[str, tuple[np.ndarray, np.ndarray]],
                 steps: Mapping[str, float]) -> Regions:
    """One polygon per exposure outline ``name -> (ra, dec)`` (deg), labelled with the sky
    step across its edge (``steps``: name -> MJy/sr) where one was measured."""
    from astropy.coordinates import SkyCoord
    from regions import PolygonSkyRegion, Regions

    out = []
    for name, (ra, dec) in outlines.items():
        step = steps.get(name)
        text = name if step is None or not np.isfinite(step) else \
            f"{name} step {step:+.4g} MJy/sr"
        reg = PolygonSkyRegion(SkyCoord(np.asarray(ra, float), np.asarray(dec, float),
                                        unit="deg", frame="icrs"))
        reg.meta = _meta(text, ["seam"])
        reg.visual = _visual("cyan")
        out.append(reg)
    return Regions(out)


def source_regions(match: Table, *, radius_mas: float | None = None) -> Regions:
    """Matched, missed (in the footprint) and spurious sources of a match table
    (:mod:`simval.match_table`) as circles of the match radius."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from regions import CircleSkyRegion, Regions

    radius = float(radius_mas if radius_mas is not None else match.meta.get("radius_mas", 100.0))
    truth = np.asarray(match["truth_row"]) >= 0
    matched = np.asarray(match["matched"], bool)
    inside = np.asarray(match["in_footprint"], bool)
    kinds = {"matched": (truth & matched, "measured"),
             "missed": (truth & ~matched & inside, "true"),
             "spurious": (~truth, "measured")}
    ids = np.asarray(match["id"])
    labels = np.asarray(match["label"])
    out = []
    for kind, (sel, where) in kinds.items():
        ra = np.asarray(match[f"ra_{where}"], float)[sel]
        dec = np.asarray(match[f"dec_{where}"], float)[sel]
        names = np.where(ids[sel] >= 0, ids[sel], labels[sel])
        ok = np.isfinite(ra) & np.isfinite(dec)
        coords = SkyCoord(ra[ok], dec[ok], unit="deg", frame="icrs")
        for k, n in enumerate(names[ok]):
            reg = CircleSkyRegion(coords[k], radius * u.mas)
            reg.meta = _meta(f"{'id' if kind != 'spurious' else 'label'} {int(n)}", [kind])
            reg.visual = _visual(_SOURCE_COLOURS[kind])
            out.append(reg)
    return Regions(out)


def write_regions(regions: Regions, path: str | os.PathLike) -> Path:
    """Write regions as a DS9 file (ICRS), atomically; return the path."""
    with atomic_path(path) as tmp:
        regions.write(str(tmp), format="ds9", overwrite=True)
    return Path(path)
