"""Astrometric references: distortion, filter offsets and pixel area, all from the SIAF.

Frames (JWST-STScI-001550; pysiaf names)
----------------------------------------
``det``  raw detector orientation, 1-based (SIAF only; never seen by the pipeline).
``sci``  DMS orientation, 1-based. For a full-frame (FULLSCA) aperture it is ``det``
         flipped/rotated per ``DetSciParity``/``DetSciYAngle``; it is the orientation of
         every array the pipeline and MIRAGE handle.
pixel    0-based ``sci``: ``x = x_sci - 1``. This is the jwst "detector" frame and
         MIRAGE's full-frame pixel frame (MIRAGE falls back to ``tel_to_sci() - 1``
         when it has no distortion file). **The distortion model's input is this frame.**
``idl``  ideal (distortion-free, tangent-plane) frame, arcsec from the reference point:
         ``Sci2IdlX/Y`` polynomials of ``(x_sci - XSciRef, y_sci - YSciRef)``.
``tel``  V2/V3, arcsec: ``V2 = V2Ref + p*x*cos(a) + y*sin(a)``,
         ``V3 = V3Ref - p*x*sin(a) + y*cos(a)`` with ``p = VIdlParity``,
         ``a = V3IdlYAngle`` (pysiaf's planar approximation, its default for
         ``det_to_tel``/``sci_to_tel``).

So the model stored in the DISTORTION reference is::

    pixel --Shift(1 - XSciRef) & Shift(1 - YSciRef)--> Sci2Idl polynomials --> idl
          --rotation/parity + (V2Ref, V3Ref) [+ optional constant shift]--> V2/V3 (arcsec)

which equals pysiaf's ``aperture.sci_to_tel(x + 1, y + 1)`` and therefore
``aperture.det_to_tel(*aperture.sci_to_det(x + 1, y + 1))``. The det->sci flip is *not* in
the model: jwst applies the distortion to arrays that are already in DMS orientation.

The inverse is explicit: the exact inverse of the linear idl->tel step, then a polynomial
idl->pixel of degree :data:`INVERSE_DEGREE` fitted by least squares to the forward
polynomials on a grid covering the detector plus :data:`INVERSE_MARGIN_PX`. SIAF's own
``Idl2Sci`` coefficients round-trip only to ~6e-3 px (NRCB1), too coarse for a harness that
compares MIRAGE's source positions (placed with ``model.inverse``) with the pipeline's
(measured with ``model``); the fitted inverse round-trips to a few 1e-6 px.

Who reads these files
---------------------
- jwst ``assign_wcs`` (``jwst/assign_wcs/nircam.py::imaging_distortion``) opens the
  DISTORTION reference as a ``DistortionModel`` and uses ``.model`` as the detector->v2v3
  step (prefixed by the subarray offset and the filter offset); the WCS inverse uses the
  model's explicit inverse. It reads FILTEROFFSET with ``asdf.open`` and matches
  ``tree["filters"]`` rows on exact ``filter`` and ``pupil``.
- MIRAGE 2.5 (``catalog_seed_image.read_distortion_reffile``) reads the same ASDF file given
  as ``Reffiles: astrometric`` with ``asdf.open(...).tree["model"]`` and calls
  ``model.inverse(v2, v3)`` (catalog positions) and ``model(x, y)`` with full-frame 0-based
  sci pixels (``subarray_bounds`` from ``sci_subarray_corners``). It never reads the filter
  offset, so the kit's offsets are zero: any non-zero offset would separate the pipeline's
  astrometry from the simulator's.
- jwst ``photom`` copies the AREA map (sliced by SUBSTRT, unchecked: it must be full frame)
  into the product's ``area`` extension and takes PIXAR_SR/PIXAR_A2 from its header; it does
  not multiply the data by the map.

Units: pixel in px, idl and V2/V3 in arcsec, shifts in mas, areas in arcsec^2 and sr.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.atomic import save_model
from simval.constants import ARCSEC_PER_MAS, SR_PER_ARCSEC2
from simval.instruments.nircam import wheel_elements
from simval.kit.detectors import FULL_SIZE, Detector, check_filter, get_detector
from simval.kit.refmeta import IMAGING_EXP_TYPES, stamp
from simval.offline import import_pysiaf, nircam_siaf

if TYPE_CHECKING:
    from astropy.modeling import Model
    from numpy.typing import ArrayLike

#: Degree of the fitted idl -> pixel inverse polynomial (8: < 3e-6 px on NRCB1/NRCB5).
INVERSE_DEGREE = 8
#: The inverse is fitted over the detector plus this margin on every side, px (MIRAGE
#: places sources whose PSF wings fall on the detector from just outside it).
INVERSE_MARGIN_PX = 256
#: Points per axis of the grid the inverse is fitted on.
INVERSE_GRID_POINTS = 121
#: Pupil elements the imaging distortion applies to (P_PUPIL): open pupil and the
#: pupil-wheel filters. Coronagraphic and grism pupils have their own distortion.
IMAGING_PUPILS = "CLEAR|F162M|F164N|F323N|F405N|F466N|F470N|"
#: Rows of the area map evaluated at once (bounds memory to ~50 MB).
_AREA_CHUNK_ROWS = 256


def siaf_aperture(detector: Detector | str, aperture: str | None = None) -> Any:
    """pysiaf full-frame aperture of a kit detector: ``<siaf_name>_FULL``, or ``aperture``
    (another full-frame aperture of it, e.g. ``NRCA5_FULL_MASK335R`` for a coronagraph,
    whose Sci2Idl polynomials and reference point differ)."""
    return nircam_siaf()[aperture or get_detector(detector).full_aperture]


def _pair(mx: Model, my: Model) -> Model:
    """Two single-output 2-input models -> one 2-in/2-out model ``(x, y) -> (mx, my)``."""
    from astropy.modeling.models import Mapping

    return Mapping((0, 1, 0, 1)) | mx & my


def pixel_to_ideal_model(aperture: Any) -> Model:
    """0-based full-frame sci pixels (px) -> ideal frame (arcsec), SIAF ``Sci2Idl``."""
    from astropy.modeling.models import Shift

    sx, sy = aperture.distortion_transform("sci", "idl")
    offset = Shift(1.0 - aperture.XSciRef) & Shift(1.0 - aperture.YSciRef)
    return offset | _pair(sx, sy)


def ideal_to_tel_model(aperture: Any, v2_ref: float, v3_ref: float) -> Model:
    """Ideal frame (arcsec) -> V2/V3 (arcsec) about ``(v2_ref, v3_ref)``, planar (SIAF)."""
    tx, ty = aperture.telescope_transform("idl", "tel", V2Ref_arcsec=v2_ref,
                                          V3Ref_arcsec=v3_ref)
    return _pair(tx, ty)


def tel_to_ideal_model(aperture: Any, v2_ref: float, v3_ref: float) -> Model:
    """V2/V3 (arcsec) -> ideal frame (arcsec): exact inverse of :func:`ideal_to_tel_model`."""
    from astropy.modeling.models import Shift

    tx, ty = aperture.telescope_transform("tel", "idl")
    return Shift(-v2_ref) & Shift(-v3_ref) | _pair(tx, ty)


def fit_ideal_to_pixel_model(aperture: Any, *, degree: int = INVERSE_DEGREE,
                             margin_px: float = INVERSE_MARGIN_PX,
                             npoints: int = INVERSE_GRID_POINTS,
                             shape: tuple[int, int] = (FULL_SIZE, FULL_SIZE)) -> Model:
    """Ideal frame (arcsec) -> 0-based sci pixels (px), least-squares inverse of ``Sci2Idl``,
    fitted over the full frame of ``shape`` (ny, nx) px plus ``margin_px``.

    Inputs are scaled by the largest |ideal| coordinate on the grid before the polynomial
    so that the normal equations stay well conditioned at degree 8.
    """
    from astropy.modeling import fitting
    from astropy.modeling.models import Polynomial2D, Scale

    x, y = np.meshgrid(np.linspace(-margin_px, shape[1] - 1 + margin_px, npoints),
                       np.linspace(-margin_px, shape[0] - 1 + margin_px, npoints))
    xi, yi = pixel_to_ideal_model(aperture)(x, y)
    radius = float(max(np.abs(xi).max(), np.abs(yi).max()))
    fitter = fitting.LinearLSQFitter()
    px = fitter(Polynomial2D(degree), xi / radius, yi / radius, x)
    py = fitter(Polynomial2D(degree), xi / radius, yi / radius, y)
    return Scale(1.0 / radius) & Scale(1.0 / radius) | _pair(px, py)


def distortion_model(detector: Detector | str, *, shift_v2_mas: float = 0.0,
                     shift_v3_mas: float = 0.0, aperture: str | None = None) -> Model:
    """Pixel (0-based full-frame sci, px) -> V2/V3 (arcsec) model with an explicit inverse.

    ``shift_v2_mas``/``shift_v3_mas`` (mas) are added to every output V2/V3: the model then
    believes the detector sits that far from where MIRAGE put it. ``aperture``: a full-frame
    SIAF aperture other than the detector's imaging one (:func:`siaf_aperture`).
    """
    ap = siaf_aperture(detector, aperture)
    v2_ref = float(ap.V2Ref) + shift_v2_mas * ARCSEC_PER_MAS
    v3_ref = float(ap.V3Ref) + shift_v3_mas * ARCSEC_PER_MAS
    forward = pixel_to_ideal_model(ap) | ideal_to_tel_model(ap, v2_ref, v3_ref)
    backward = tel_to_ideal_model(ap, v2_ref, v3_ref) | fit_ideal_to_pixel_model(ap)
    forward.inverse = backward
    forward.name = f"{ap.AperName}_pixel_to_v2v3"
    return forward


def _set_imaging_meta(model: Any) -> None:
    """EXP_TYPE/P_EXP_TY of a NIRCam imaging reference (the schemas that have them)."""
    model.meta.exposure.type = "NRC_IMAGE"
    model.meta.exposure.p_exptype = IMAGING_EXP_TYPES


def write_distortion(path: str | os.PathLike, detector: Detector | str, *,
                     shift_v2_mas: float = 0.0, shift_v3_mas: float = 0.0) -> Path:
    """Write the DISTORTION reference (ASDF ``DistortionModel``) of ``detector``.

    The model maps 0-based full-frame sci pixels (px) to V2/V3 (arcsec) and has an explicit
    inverse (see the module docstring). ``shift_v2_mas``/``shift_v3_mas`` add a constant
    V2/V3 offset in mas (derived contexts that test astrometric sensitivity). The same file
    serves jwst ``assign_wcs`` and MIRAGE (``Reffiles: astrometric``).
    """
    from stdatamodels.jwst.datamodels import DistortionModel

    det = get_detector(detector)
    ap = siaf_aperture(det)
    model = distortion_model(det, shift_v2_mas=shift_v2_mas, shift_v3_mas=shift_v3_mas)
    shifted = bool(shift_v2_mas or shift_v3_mas)
    text = f"{det.name} pixel -> V2/V3 from SIAF {ap.AperName}"
    if shifted:
        text += f", V2/V3 shifted by ({shift_v2_mas:g}, {shift_v3_mas:g}) mas"
    with DistortionModel(model=model, input_units="pixel", output_units="arcsec") as dm:
        history = (f"Forward: pysiaf {_pysiaf_version()} Sci2Idl + planar Idl2Tel of "
                   f"{ap.AperName} (V2Ref={ap.V2Ref} V3Ref={ap.V3Ref} arcsec, "
                   f"V3IdlYAngle={ap.V3IdlYAngle} deg, VIdlParity={ap.VIdlParity}); "
                   f"shift V2={shift_v2_mas:g} mas, V3={shift_v3_mas:g} mas. Inverse: exact "
                   f"linear Tel2Idl + degree-{INVERSE_DEGREE} least-squares Idl2pixel "
                   f"polynomial (margin {INVERSE_MARGIN_PX} px).")
        stamp(dm, det, "distortion", text, history=history)
        _set_imaging_meta(dm)
        dm.meta.instrument.pupil = "ANY"
        dm.meta.instrument.p_pupil = IMAGING_PUPILS
        return save_model(dm, path)


def _pysiaf_version() -> str:
    """``"<pysiaf version> (<PRD version>)"``: which SIAF the polynomials came from."""

    pysiaf = import_pysiaf()
    return f"{pysiaf.__version__} ({getattr(pysiaf, 'JWST_PRD_VERSION', 'unknown PRD')})"


def filter_offsets(detector: Detector | str, filters: Iterable[str] | None = None) -> list[dict]:
    """FILTEROFFSET rows (filter, pupil, column_offset=0, row_offset=0 px) for ``filters``.

    ``filters=None``: every filter of the detector's channel; pupil-wheel filters become
    their (filter wheel, pupil wheel) pair, e.g. F162M -> (F150W2, F162M).

    Offsets are zero because MIRAGE does not apply filter offsets: a non-zero offset would
    make the pipeline's astrometry disagree with the simulated scene.
    """
    det = get_detector(detector)
    rows = []
    names = det.filters if filters is None else filters
    for f in dict.fromkeys(check_filter(det, f) for f in names):
        fw, pw = wheel_elements(f)
        rows.append({"filter": fw, "pupil": pw, "column_offset": 0.0, "row_offset": 0.0})
    return rows


def write_filteroffset(path: str | os.PathLike, detector: Detector | str,
                       filters: Iterable[str] | None = None) -> Path:
    """Write the FILTEROFFSET reference (ASDF ``FilteroffsetModel``), zero offsets (px)."""
    from stdatamodels.jwst.datamodels import FilteroffsetModel

    det = get_detector(detector)
    rows = filter_offsets(det, filters)
    with FilteroffsetModel(filters=rows, instrument="NIRCAM") as fm:
        stamp(fm, det, "filteroffset",
              f"{det.name} zero filter offsets (MIRAGE applies none)")
        fm.meta.input_units = "pixel"
        fm.meta.instrument.filter = "ANY"
        # FilteroffsetModel.populate_meta (jwst datamodels) sets P_FILTER to SW filters only.
        fm.meta.instrument.pfilter = "|".join(dict.fromkeys(r["filter"] for r in rows)) + "|"
        _set_imaging_meta(fm)
        return save_model(fm, path)


def _derivative(poly: Model, axis: int) -> Model:
    """d(poly)/d(x) (axis 0) or d/dy (axis 1) of an astropy ``Polynomial2D``."""
    from astropy.modeling.models import Polynomial2D

    if poly.degree == 0:
        return Polynomial2D(0, c0_0=0.0)
    coeffs = {}
    for name, value in zip(poly.param_names, poly.parameters, strict=True):
        i, j = (int(k) for k in name[1:].split("_"))
        power = i if axis == 0 else j
        if power:
            key = f"c{i - 1}_{j}" if axis == 0 else f"c{i}_{j - 1}"
            coeffs[key] = power * value
    return Polynomial2D(poly.degree - 1, **coeffs)


def pixel_area_arcsec2(detector: Detector | str, x: ArrayLike | None = None,
                       y: ArrayLike | None = None, aperture: str | None = None) -> np.ndarray:
    """Pixel area (arcsec^2) = |det d(V2,V3)/d(x,y)| of the distortion, at 0-based pixels.

    Without ``x``/``y`` the full-frame map (2048 x 2048, ``[y, x]``) at pixel centres.
    The idl->V2/V3 step is a rotation, so the Jacobian is that of ``Sci2Idl``.
    ``aperture`` as in :func:`siaf_aperture`.
    """
    ap = siaf_aperture(detector, aperture)
    sx, sy = ap.distortion_transform("sci", "idl")
    d = [_derivative(p, a) for p in (sx, sy) for a in (0, 1)]
    x0, y0 = 1.0 - ap.XSciRef, 1.0 - ap.YSciRef

    def area(xx, yy):
        u, v = np.asarray(xx, float) + x0, np.asarray(yy, float) + y0
        return np.abs(d[0](u, v) * d[3](u, v) - d[1](u, v) * d[2](u, v))

    if x is not None or y is not None:
        return area(x, y)
    out = np.empty((FULL_SIZE, FULL_SIZE), dtype=np.float64)
    cols = np.arange(FULL_SIZE, dtype=float)
    for r0 in range(0, FULL_SIZE, _AREA_CHUNK_ROWS):
        rows = np.arange(r0, min(r0 + _AREA_CHUNK_ROWS, FULL_SIZE), dtype=float)
        xx, yy = np.meshgrid(cols, rows)
        out[r0:r0 + len(rows)] = area(xx, yy)
    return out


#: Full-frame mean pixel area per detector name, arcsec^2 (filled by the first computation).
_NOMINAL_AREA_A2: dict[str, float] = {}


def _nominal_area_arcsec2(name: str, area: np.ndarray | None = None) -> float:
    if name not in _NOMINAL_AREA_A2:
        full = pixel_area_arcsec2(name) if area is None else area
        _NOMINAL_AREA_A2[name] = float(full.mean())
    return _NOMINAL_AREA_A2[name]


def nominal_pixel_area(detector: Detector | str) -> tuple[float, float]:
    """Nominal pixel area ``(PIXAR_SR [sr], PIXAR_A2 [arcsec^2])`` of ``detector``.

    The full-frame mean of the distortion's Jacobian (:func:`pixel_area_arcsec2`): the value
    :func:`write_area` writes and the photom reference's PHOTMJSR must be computed with.
    """
    det = get_detector(detector)
    pixar_a2 = _nominal_area_arcsec2(det.name)
    return pixar_a2 * SR_PER_ARCSEC2, pixar_a2


def write_area(path: str | os.PathLike, detector: Detector | str) -> tuple[Path, float, float]:
    """Write the full-frame AREA reference (``PixelAreaModel``); return ``(path, sr, arcsec^2)``.

    ``data`` = pixel area / nominal area (dimensionless, mean 1 over the full frame);
    PIXAR_SR / PIXAR_A2 = the nominal area = full-frame mean of the distortion's Jacobian
    (sr / arcsec^2, :func:`nominal_pixel_area`). The same PIXAR_SR must go into the photom
    reference (PHOTMJSR).
    """
    from stdatamodels.jwst.datamodels import PixelAreaModel

    det = get_detector(detector)
    area = pixel_area_arcsec2(det)
    pixar_a2 = _nominal_area_arcsec2(det.name, area)
    pixar_sr = pixar_a2 * SR_PER_ARCSEC2
    with PixelAreaModel(data=(area / pixar_a2).astype(np.float32)) as pm:
        stamp(pm, det, "area",
              f"{det.name} pixel area / nominal, from the SIAF distortion Jacobian",
              history=(f"AREA = |det J| / PIXAR_A2 of SIAF {det.full_aperture} "
                       f"Sci2Idl at pixel centres; PIXAR_A2 = full-frame mean = "
                       f"{pixar_a2:.9g} arcsec2."))
        pm.meta.photometry.pixelarea_steradians = pixar_sr
        pm.meta.photometry.pixelarea_arcsecsq = pixar_a2
        pm.meta.instrument.filter = "ANY"
        pm.meta.instrument.pupil = "ANY"
        _set_imaging_meta(pm)
        saved = save_model(pm, path)
    return saved, pixar_sr, pixar_a2
