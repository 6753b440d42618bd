"""Named NIRCam dither patterns: offsets in arcsec in the ideal frame of the pointing aperture.

Only patterns whose offsets are published are implemented; each table names its source.
APT patterns not listed here (FULL, INTRAMODULE, INTRAMODULEX, INTRASCA, the other FULLBOX
packings, SMALL-GRID-DITHER) can be given as explicit offsets.

Sources
-------
[JDox-primary]
    JWST User Documentation, "NIRCam Primary Dithers", the ASCII dither tables
    (``NIRCamDitherPatterns.zip``, file ``NircamImagingIntramoduleBox.txt``).
[JDox-subarray]
    JWST User Documentation, "NIRCam Subarray Primary Dithers", Table "SUBARRAY_DITHER
    positions".
[NRC-24]
    Commanded offsets of NIRCam commissioning program 1073 (CAP NRC-24, dither pattern
    verification), observations 2-6, as tabulated from APT by A. Koekemoer in
    ``spacetelescope/nircam_calib``, ``commissioning/NRC_24_dither_pattern/
    NRC24_dither_offsets.py``. Its INTRAMODULEBOX 4 offsets equal [JDox-primary].

A primary pattern with a subpixel pattern visits every subpixel position at each primary
position (primary outer loop, subpixel inner loop), as APT orders them; offsets add.
"""

from __future__ import annotations

from dataclasses import dataclass

Offsets = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class DitherTable:
    """A published pattern: the offsets of its first N points for each allowed N."""

    name: str
    offsets: Offsets
    allowed_points: tuple[int, ...]
    source: str

    def first(self, n: int) -> Offsets:
        if n not in self.allowed_points:
            raise ValueError(n)
        return self.offsets[:n]


#: Primary dither patterns (APT "Primary Dither Type").
PRIMARY: dict[str, DitherTable] = {
    "NONE": DitherTable("NONE", ((0.0, 0.0),), (1,), "no dither"),
    "INTRAMODULEBOX": DitherTable(
        "INTRAMODULEBOX",
        ((-2.9, -3.1), (-3.1, 2.9), (2.9, 3.1), (3.1, -2.9), (3.3, -8.9), (-2.7, -9.1),
         (-8.7, -9.3), (-8.9, -3.3), (-9.1, 2.7), (-9.3, 8.7), (-3.3, 8.9), (2.7, 9.1),
         (8.7, 9.3), (8.9, 3.3), (9.1, -2.7), (9.3, -8.7)),
        tuple(range(2, 17)),
        "[JDox-primary] NircamImagingIntramoduleBox.txt; points 1-4 also [NRC-24] obs 3",
    ),
    "FULLBOX": DitherTable(
        "FULLBOX",
        ((-24.35, -12.58), (-24.55, 12.38), (24.35, 12.58), (24.55, -12.38)),
        (4,),
        "[NRC-24] obs 2 (FULLBOX, 4 points)",
    ),
    "FULLBOX-8NIRSPEC": DitherTable(
        "FULLBOX-8NIRSPEC",
        ((-24.6, -64.1), (-24.4, -89.0), (24.6, -88.8), (24.4, -63.9), (24.6, 64.1),
         (24.4, 89.0), (-24.6, 88.8), (-24.4, 63.9)),
        (8,),
        "[NRC-24] obs 1 (FULLBOX, 8NIRSPEC)",
    ),
    "SUBARRAY_DITHER": DitherTable(
        "SUBARRAY_DITHER",
        ((-0.335, -0.335), (0.335, 0.335), (-0.295, 0.295), (0.295, -0.295)),
        (2, 3, 4),
        "[JDox-subarray] Table SUBARRAY_DITHER positions",
    ),
}

#: Subpixel dither patterns (APT "Subpixel Dither Type"), keyed by type then point count.
SUBPIXEL: dict[str, dict[int, DitherTable]] = {
    "NONE": {1: DitherTable("NONE", ((0.0, 0.0),), (1,), "no subpixel dither")},
    "STANDARD": {
        2: DitherTable("STANDARD", ((0.0, 0.0), (0.2262, 0.1659)), (2,), "[NRC-24] obs 4"),
        4: DitherTable("STANDARD", ((0.0, 0.0), (0.1509, 0.1357), (0.0754, 0.2112),
                                    (0.2262, 0.0452)), (4,), "[NRC-24] obs 5"),
        9: DitherTable("STANDARD", ((0.0, 0.0), (0.0302, 0.1308), (0.0603, 0.2916),
                                    (0.1006, 0.0603), (0.1609, 0.1609), (0.1911, 0.3218),
                                    (0.2618, 0.0302), (0.2916, 0.1308), (0.3219, 0.2916)),
                       (9,), "[NRC-24] obs 6"),
    },
}


def primary_points(pattern: str) -> tuple[int, ...]:
    return PRIMARY[pattern].allowed_points


def subpixel_points(pattern: str) -> tuple[int, ...]:
    return tuple(SUBPIXEL[pattern])


def describe_primary() -> str:
    """``INTRAMODULEBOX (points 2-16), FULLBOX (4), ...`` for error messages."""
    parts = []
    for name, t in PRIMARY.items():
        pts = t.allowed_points
        rng = f"{pts[0]}-{pts[-1]}" if len(pts) > 2 and pts == tuple(
            range(pts[0], pts[-1] + 1)) else ", ".join(map(str, pts))
        parts.append(f"{name} (points {rng})")
    return ", ".join(parts)


@dataclass(frozen=True)
class DitherPosition:
    """One dither position: 1-based indices within the patterns and the total offset (arcsec)."""

    primary_position: int
    subpixel_position: int
    x_arcsec: float
    y_arcsec: float


def expand(primary: str, points: int, subpixel: str, subpixel_count: int) -> list[DitherPosition]:
    """Positions of a named primary pattern combined with a subpixel pattern."""
    prim = PRIMARY[primary].first(points)
    sub = SUBPIXEL[subpixel][subpixel_count].offsets
    return [DitherPosition(i + 1, j + 1, round(px + sx, 6), round(py + sy, 6))
            for i, (px, py) in enumerate(prim) for j, (sx, sy) in enumerate(sub)]
