"""A JWST-like entrance pupil and a smooth, field-dependent wavefront error, computed offline.

The pupil is poppy's JWST-like aperture (no stpsf/webbpsf data needed), :func:`poppy_optics`:

- 18 hexagonal segments, 1.32 m flat to flat, in two rings around a missing centre segment,
  separated by 7 mm gaps (JWST primary mirror: NASA "JWST Mirrors" fact sheet; the
  JWST-like example of poppy's ``MultiHexagonAperture``, ``rings=2``);
- a 0.74 m diameter secondary mirror obscuration (JWST secondary mirror, same source);
- three secondary-mirror struts at 0, 150 and 210 degrees counter-clockwise from +V3 (the
  layout poppy's ``AsymmetricSecondaryObscuration`` documents as "a la the three supports of
  JWST"), 0.10 m wide (an approximation of the flight struts).

:func:`pupil_mask` samples the same geometry with a vectorised, edge-antialiased sampler: at
pixel centres it agrees pixel for pixel with poppy's ``sample()`` (tested), but poppy needs
~10 s for the 2048^2 grid that antialiasing a 512^2 pupil takes, far over the kit's budget.

The wavefront error (WFE) is deterministic in the kit seed and the detector: a static part
(Zernike terms 4-11 plus segment piston/tip/tilt) and a part that varies linearly and
quadratically over the detector in defocus, astigmatism and coma. The expected total is
~50 nm RMS (30-70 nm for a given seed and position), of which ~15 nm RMS varies over the
field; for comparison, JDox ("NIRCam Point Spread Functions") quotes a Strehl ratio of 0.8 at
2 µm (the diffraction-limit requirement, ~150 nm RMS), and the flight telescope does better.

All arrays are sampled on a square grid of ``npix`` pixels spanning :data:`GRID_DIAMETER_M`
metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simval.kit.detectors import FULL_SIZE, Detector
from simval.seeding import component_rng

#: Segment size, flat to flat, metres (JWST: 1.32 m).
SEGMENT_FLAT_TO_FLAT_M = 1.32
#: Gap between segments, metres (JWST: ~7 mm).
SEGMENT_GAP_M = 0.007
#: Secondary mirror obscuration radius, metres (JWST secondary: 0.74 m diameter).
SECONDARY_RADIUS_M = 0.37
#: Strut angles, degrees counter-clockwise from +Y (+V3), and width in metres.
STRUT_ANGLES_DEG = (0.0, 150.0, 210.0)
STRUT_WIDTH_M = 0.10
#: Side of the square pupil grid, metres: the segments reach 3.34 m from the centre.
GRID_DIAMETER_M = 6.8
#: Radius of the circle that circumscribes the segments, metres (Zernike normalisation).
CIRCUMSCRIBED_RADIUS_M = 3.34
#: Longest baseline across the pupil, metres; sets the PSF's highest spatial frequency.
MAX_BASELINE_M = 6.70
#: Static low-order aberrations: Noll index -> RMS (nm) of the random draw.
_STATIC_ZERNIKE_NM = {4: 20.0, 5: 18.0, 6: 18.0, 7: 14.0, 8: 14.0, 9: 10.0, 10: 10.0, 11: 12.0}
#: Field-dependent aberrations: Noll index -> RMS (nm) of each field coefficient.
_FIELD_ZERNIKE_NM = {4: 12.0, 5: 9.0, 6: 9.0, 7: 6.0, 8: 6.0}
#: Per-segment static piston and tip/tilt RMS, nm (tilt: RMS over the segment).
_SEGMENT_PISTON_NM = 20.0
_SEGMENT_TILT_NM = 12.0
#: Highest Noll index used.
_NZERNIKE = 11


@dataclass(frozen=True)
class Pupil:
    """A sampled pupil: amplitude transmission and the basis for its wavefront error.

    amplitude : (npix, npix) transmission in [0, 1].
    pixel_m : pupil-plane pixel size, metres.
    zernikes : (11, npix, npix) Noll-normalised Zernike terms 1..11 (unit RMS over the
        circumscribed disk), zero outside it.
    segment : (npix, npix) segment index 0..17 of each pixel centre, -1 outside.
    tilt_terms : (2, npix, npix) per-segment x and y tilt with zero mean and unit RMS over
        the pixel's own segment (0 outside the segments).
    """

    amplitude: np.ndarray
    pixel_m: float
    zernikes: np.ndarray
    segment: np.ndarray
    tilt_terms: np.ndarray

    @property
    def npix(self) -> int:
        return self.amplitude.shape[0]

    def rms_nm(self, opd_nm: np.ndarray) -> float:
        """RMS (nm) of an OPD map (nm), weighted by the pupil intensity transmission."""
        w = self.amplitude**2
        mean = np.sum(w * opd_nm) / np.sum(w)
        return float(np.sqrt(np.sum(w * (opd_nm - mean) ** 2) / np.sum(w)))

    def segment_opd_nm(self, coeffs_nm: np.ndarray) -> np.ndarray:
        """OPD (nm) of segment piston, x tilt, y tilt coefficients ``coeffs_nm`` (18, 3), each
        term with unit RMS over its segment."""
        inside = self.segment >= 0
        c = np.asarray(coeffs_nm)[np.where(inside, self.segment, 0)]
        opd = c[..., 0] + c[..., 1] * self.tilt_terms[0] + c[..., 2] * self.tilt_terms[1]
        return np.where(inside, opd, 0.0)


def poppy_optics():
    """The same pupil as poppy analytic optics (segments and secondary with struts).

    Used to validate :func:`pupil_mask` (poppy's own sampler needs ~10 s for the 2048^2 grid
    that antialiasing takes, too slow for the kit's build budget).
    """
    import astropy.units as u
    import poppy

    segments = poppy.MultiHexagonAperture(
        rings=2, flattoflat=SEGMENT_FLAT_TO_FLAT_M * u.m, gap=SEGMENT_GAP_M * u.m)
    secondary = poppy.AsymmetricSecondaryObscuration(
        secondary_radius=SECONDARY_RADIUS_M * u.m, support_angle=STRUT_ANGLES_DEG,
        support_width=STRUT_WIDTH_M * u.m)
    return poppy.CompoundAnalyticOptic(opticslist=[segments, secondary], mergemode="and",
                                       name="JWST-like pupil", verbose=False)


def _pupil_xy(npix: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Pupil-plane coordinates (metres) of the pixel centres, centred like poppy's."""
    pixel = GRID_DIAMETER_M / npix
    c = (np.arange(npix) - (npix - 1) / 2.0) * pixel
    x, y = np.meshgrid(c, c)
    return x, y, pixel


def _lattice_centres() -> np.ndarray:
    """(19, 2) centres (x, y), metres, of the central hexagon (row 0) and the 18 segments.

    Flat sides on top and bottom, segment 1 above the centre, as in poppy's
    ``MultiHexagonAperture``.
    """
    pitch = SEGMENT_FLAT_TO_FLAT_M + SEGMENT_GAP_M
    v1 = np.array([0.0, 1.0]) * pitch
    v2 = np.array([np.cos(np.pi / 6), np.sin(np.pi / 6)]) * pitch
    centres = [(0.0, 0.0)]
    for a in range(-2, 3):
        for b in range(-2, 3):
            if 1 <= (abs(a) + abs(b) + abs(a + b)) // 2 <= 2:
                centres.append(tuple(a * v1 + b * v2))
    return np.array([centres[0], *sorted(centres[1:])])


#: Unit normals of a flat-topped hexagon's three pairs of sides.
_HEX_NORMALS = np.array([[0.0, 1.0], [np.cos(np.pi / 6), np.sin(np.pi / 6)],
                         [np.cos(np.pi / 6), -np.sin(np.pi / 6)]])


def _geometry(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transmission (bool), distance (m) to the nearest edge, and segment index (-1: none).

    Works on any arrays of pupil coordinates (metres).
    """
    centres = _lattice_centres()
    d2 = (x[..., None] - centres[:, 0]) ** 2 + (y[..., None] - centres[:, 1]) ** 2
    nearest = np.argmin(d2, axis=-1)
    dx = x - centres[nearest, 0]
    dy = y - centres[nearest, 1]
    proj = np.abs(dx[..., None] * _HEX_NORMALS[:, 0] + dy[..., None] * _HEX_NORMALS[:, 1])
    hex_dist = SEGMENT_FLAT_TO_FLAT_M / 2.0 - proj.max(axis=-1)
    inside = (hex_dist >= 0) & (nearest > 0)
    dist = np.abs(hex_dist)
    r = np.hypot(x, y)
    inside &= r >= SECONDARY_RADIUS_M
    dist = np.minimum(dist, np.abs(r - SECONDARY_RADIUS_M))
    for angle in np.deg2rad(STRUT_ANGLES_DEG):
        along = -np.sin(angle) * x + np.cos(angle) * y
        perp = np.abs(np.cos(angle) * x + np.sin(angle) * y)
        inside &= ~((along > 0) & (perp < STRUT_WIDTH_M / 2.0))
        to_edge = np.abs(perp - STRUT_WIDTH_M / 2.0)
        dist = np.where(along > -STRUT_WIDTH_M, np.minimum(dist, to_edge), dist)
    segment = np.where(inside, nearest - 1, -1)
    return inside, dist, segment


def pupil_mask(npix: int, supersample: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Antialiased amplitude transmission and segment index (-1 outside) on ``npix`` pixels.

    Pixels farther than half a diagonal from every edge take their centre's value; the others
    are the mean of ``supersample`` x ``supersample`` sub-pixel samples (so 7 mm gaps, smaller
    than a pixel, transmit partially).
    """
    x, y, pixel = _pupil_xy(npix)
    inside, dist, segment = _geometry(x, y)
    amplitude = inside.astype(float)
    edge = dist < pixel * 0.7072
    sub = (np.arange(supersample) - (supersample - 1) / 2.0) * pixel / supersample
    sx, sy = np.meshgrid(sub, sub)
    xe, ye = x[edge], y[edge]
    values = np.empty(xe.size)
    for s in range(0, xe.size, 2048):  # chunks keep the (n, sub^2, 19) distances small
        part = slice(s, s + 2048)
        values[part] = _geometry(xe[part, None] + sx.ravel(),
                                 ye[part, None] + sy.ravel())[0].mean(axis=-1)
    amplitude[edge] = values
    return amplitude, segment


def _segment_tilts(npix: int, amplitude: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """(2, npix, npix) x and y tilt of each pixel's segment, zero mean and unit RMS over it."""
    x, y, _ = _pupil_xy(npix)
    tilts = np.zeros((2, npix, npix))
    for i in range(len(_lattice_centres()) - 1):
        inside = segment == i
        w = amplitude[inside] ** 2
        for k, coord in enumerate((x, y)):
            t = coord[inside] - np.sum(w * coord[inside]) / np.sum(w)
            tilts[k][inside] = t / np.sqrt(np.sum(w * t * t) / np.sum(w))
    return tilts


@lru_cache(maxsize=4)
def jwst_pupil(npix: int = 384) -> Pupil:
    """The JWST-like pupil sampled on ``npix`` x ``npix`` pixels over 6.8 m (cached)."""
    from poppy.zernike import zernike_basis

    amplitude, segment = pupil_mask(npix)
    x, y, pixel = _pupil_xy(npix)
    rho = np.hypot(x, y) / CIRCUMSCRIBED_RADIUS_M
    theta = np.arctan2(y, x)
    zern = zernike_basis(nterms=_NZERNIKE, rho=rho, theta=theta, outside=0.0)
    return Pupil(amplitude=amplitude, pixel_m=pixel, zernikes=np.asarray(zern), segment=segment,
                 tilt_terms=_segment_tilts(npix, amplitude, segment))


@dataclass(frozen=True)
class WavefrontModel:
    """Deterministic WFE of one detector: Zernike and segment coefficients in nm.

    static_zernike_nm : (11,) Noll 1..11 coefficients common to the whole detector.
    field_zernike_nm : (11, 5) coefficients of the field terms (u, v, u*v, u^2-1/3, v^2-1/3),
        with u, v the full-frame pixel position scaled to [-1, 1].
    segment_nm : (18, 3) piston, x tilt, y tilt coefficients of the 18 segments.
    """

    static_zernike_nm: np.ndarray
    field_zernike_nm: np.ndarray
    segment_nm: np.ndarray

    def zernike_nm(self, x_pix: float, y_pix: float) -> np.ndarray:
        """Noll 1..11 Zernike coefficients (nm) at full-frame 0-based pixel ``(x, y)``."""
        u = 2.0 * x_pix / (FULL_SIZE - 1) - 1.0
        v = 2.0 * y_pix / (FULL_SIZE - 1) - 1.0
        terms = np.array([u, v, u * v, u * u - 1.0 / 3.0, v * v - 1.0 / 3.0])
        return self.static_zernike_nm + self.field_zernike_nm @ terms

    def opd_nm(self, pupil: Pupil, x_pix: float, y_pix: float) -> np.ndarray:
        """OPD map (nm) over ``pupil`` at full-frame 0-based pixel ``(x, y)``.

        Segment tilts and coma move the PSF's centre of light by a few hundredths of a pixel;
        :mod:`simval.kit.psf` removes that with a global tilt per filter.
        """
        return (np.tensordot(self.zernike_nm(x_pix, y_pix), pupil.zernikes, axes=1)
                + pupil.segment_opd_nm(self.segment_nm))

    @staticmethod
    def tilt_nm(pupil: Pupil, gx_nm_per_m: float, gy_nm_per_m: float) -> np.ndarray:
        """A pure tilt OPD (nm): gradients in nm per metre along pupil x and y. A gradient
        g moves the PSF by -g * 1e-9 radians."""
        x, y, _ = _pupil_xy(pupil.npix)
        return gx_nm_per_m * x + gy_nm_per_m * y


def wavefront_model(seed: int, detector: Detector) -> WavefrontModel:
    """Draw the WFE of ``detector`` from ``component_rng(seed, 'psf', detector, 'wfe')``.

    The same seed and detector give the same WFE for every filter, as for a real instrument.
    """
    rng = component_rng(seed, "psf", detector.name, "wfe")
    static = np.zeros(_NZERNIKE)
    for j, rms in _STATIC_ZERNIKE_NM.items():
        static[j - 1] = rng.normal(0.0, rms)
    field = np.zeros((_NZERNIKE, 5))
    for j, rms in _FIELD_ZERNIKE_NM.items():
        # Linear terms dominate; the quadratic ones add curvature (scaled down by 2).
        field[j - 1] = rng.normal(0.0, rms, 5) * np.array([1.0, 1.0, 0.5, 0.5, 0.5])
    segment = np.empty((18, 3))
    segment[:, 0] = rng.normal(0.0, _SEGMENT_PISTON_NM, 18)
    segment[:, 1] = rng.normal(0.0, _SEGMENT_TILT_NM / np.sqrt(2.0), 18)
    segment[:, 2] = rng.normal(0.0, _SEGMENT_TILT_NM / np.sqrt(2.0), 18)
    return WavefrontModel(static_zernike_nm=static, field_zernike_nm=field, segment_nm=segment)
