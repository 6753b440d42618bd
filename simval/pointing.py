"""Attitude geometry of a pointing: JWST attitude matrices from PA_V3 and small offsets.

An attitude matrix (3x3, V2/V3 unit vectors -> RA/Dec unit vectors; pysiaf
``rotations.attitude``) puts a V2/V3 position (arcsec) on an RA/Dec (deg) with a given roll.
:func:`attitude_at_pa_v3` finds the one whose V3 axis has position angle ``pa_v3_deg`` (deg
East of North) at V1 rather than at the reference point. :func:`offset_attitude` applies an
offset (dx, dy) in an aperture's ideal frame (arcsec) as a small-angle manoeuvre that moves
the aperture's reference point to where ideal (dx, dy) was: the attitude is rotated about
the axis perpendicular to both directions (no roll about the line of sight), so sources
move by (-dx, -dy) in the ideal frame. :func:`tile_step` is the step (arcsec) between the
tiles of a mosaic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from simval import offline

if TYPE_CHECKING:
    from pysiaf.aperture import Aperture

__all__ = ["attitude_at_pa_v3", "offset_attitude", "tile_step"]


def _wrap180(angle: float) -> float:
    return (angle + 180.0) % 360.0 - 180.0


def attitude_at_pa_v3(v2_arcsec: float, v3_arcsec: float, ra_deg: float, dec_deg: float,
                      pa_v3_deg: float) -> np.ndarray:
    """Attitude putting (v2, v3) on (ra, dec) with V3 position angle ``pa_v3_deg`` at V1."""
    rot = offline.siaf_rotations()
    roll = pa_v3_deg
    att = rot.attitude(v2_arcsec, v3_arcsec, ra_deg, dec_deg, roll)
    for _ in range(50):
        err = _wrap180(pa_v3_deg - rot.posangle(att, 0.0, 0.0))
        if abs(err) < 1e-11:
            break
        roll += err
        att = rot.attitude(v2_arcsec, v3_arcsec, ra_deg, dec_deg, roll)
    return att


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation matrix turning unit vector ``a`` into ``b`` about the axis a x b."""
    axis = np.cross(a, b)
    s = float(np.linalg.norm(axis))
    c = float(np.dot(a, b))
    if s < 1e-15:
        return np.eye(3)
    k = axis / s
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)


def offset_attitude(att: np.ndarray, aperture: Aperture, x_idl: float, y_idl: float
                    ) -> np.ndarray:
    """Attitude after a small-angle manoeuvre moving ``aperture``'s reference point to
    where ideal (``x_idl``, ``y_idl``) arcsec lay under ``att`` (see the module docstring)."""
    if x_idl == 0.0 and y_idl == 0.0:
        return att
    rot = offline.siaf_rotations()
    v2o, v3o = aperture.idl_to_tel(x_idl, y_idl)
    u_ref = att @ rot.unit(aperture.V2Ref / 3600.0, aperture.V3Ref / 3600.0)
    u_off = att @ rot.unit(float(v2o) / 3600.0, float(v3o) / 3600.0)
    return _rotation_between(u_ref, u_off) @ att


def tile_step(pointing_ap: Aperture, detector_aps: Sequence[Aperture], overlap: float
              ) -> tuple[float, float]:
    """Tile step (arcsec, ideal x and y): extent of the detectors' apertures x (1 - overlap)."""
    xs, ys = [], []
    for ap in detector_aps:
        cx, cy = ap.corners("idl")
        v2, v3 = ap.idl_to_tel(np.asarray(cx), np.asarray(cy))
        x, y = pointing_ap.tel_to_idl(v2, v3)
        xs.extend(np.atleast_1d(x))
        ys.extend(np.atleast_1d(y))
    return (float(max(xs) - min(xs)) * (1.0 - overlap),
            float(max(ys) - min(ys)) * (1.0 - overlap))
