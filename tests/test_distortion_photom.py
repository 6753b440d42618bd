"""Astrometric and photometric references: agreement with pysiaf, jwst and MIRAGE.

Every number checked here is one a wrong frame, unit or table row would break: the
distortion against pysiaf's own det_to_tel, the jwst WCS against pysiaf's sky rotation,
MIRAGE's source positions against the pipeline WCS, and the flux chain
AB mag -> MIRAGE ADU/s -> pipeline MJy/sr -> Jy -> AB mag.
"""

from __future__ import annotations

import math
import types
import warnings

import asdf
import numpy as np
import pytest
from astropy.io import ascii as astropy_ascii

from simval.instruments.nircam import wheel_elements
from simval.kit import distortion, photometry
from simval.kit.detectors import FULL_SIZE, get_detector
from simval.offline import import_pysiaf

pysiaf = import_pysiaf()  # before anything imports pysiaf directly (its import goes online)

DETECTORS = ("NRCB1", "NRCBLONG")
FILTERS = {"NRCB1": ("F115W", "F150W", "F162M"), "NRCBLONG": ("F444W", "F405N")}
SHIFT_MAS = (7.5, -2.5)
#: A pointing for sky checks: RA, Dec, V3 position angle at the reference point, deg.
RA0, DEC0, ROLL0 = 150.1, 2.2, 37.0


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """Every reference this module writes, for NRCB1 and NRCBLONG (built once)."""
    root = tmp_path_factory.mktemp("astro_photom")
    files = {}
    for name in DETECTORS:
        det = get_detector(name)
        area, pixar_sr, pixar_a2 = distortion.write_area(root / f"{name}_area.fits", det)
        files[name] = types.SimpleNamespace(
            dist=distortion.write_distortion(root / f"{name}_distortion.asdf", det),
            shifted=distortion.write_distortion(root / f"{name}_distortion_shift.asdf", det,
                                                shift_v2_mas=SHIFT_MAS[0],
                                                shift_v3_mas=SHIFT_MAS[1]),
            filteroffset=distortion.write_filteroffset(root / f"{name}_filteroffset.asdf", det,
                                                       FILTERS[name]),
            area=area, pixar_sr=pixar_sr, pixar_a2=pixar_a2,
            photom=photometry.write_photom(root / f"{name}_photom.fits", det, None, pixar_sr),
            # As the kit's job runner calls it: all channel filters, PIXAR_SR recomputed.
            photom_default=photometry.write_photom(root / f"{name}_photom_default.fits", det),
            photom_scaled=photometry.write_photom(root / f"{name}_photom_x1.1.fits", det,
                                                  FILTERS[name], pixar_sr, scale=1.1),
            abvega=photometry.write_abvegaoffset(root / f"{name}_abvega.asdf", det),
        )
    return files


def read_model(path):
    """The transform as MIRAGE reads it: ``asdf.open(...).tree['model']``, file then closed."""
    with asdf.open(path) as af:
        return af.tree["model"]


def pixel_grid(n=33, lo=0.0, hi=FULL_SIZE - 1.0):
    g = np.linspace(lo, hi, n)
    return np.meshgrid(g, g)


def nircam_image(name, filt, pupil, subarray=("FULL", 1, 1, FULL_SIZE, FULL_SIZE)):
    """A minimal NRC_IMAGE ImageModel with the metadata assign_wcs and photom read."""
    from stdatamodels.jwst.datamodels import ImageModel

    det = get_detector(name)
    sub, xstart, ystart, xsize, ysize = subarray
    model = ImageModel((ysize, xsize))
    inst = model.meta.instrument
    inst.name, inst.detector, inst.channel, inst.module = "NIRCAM", det.name, det.channel, "B"
    inst.filter, inst.pupil = filt, pupil
    model.meta.exposure.type = "NRC_IMAGE"
    s = model.meta.subarray
    s.name, s.xstart, s.ystart, s.xsize, s.ysize = sub, xstart, ystart, xsize, ysize
    return model


def set_pointing(model, aperture, ra, dec, roll):
    w = model.meta.wcsinfo
    w.v2_ref, w.v3_ref = float(aperture.V2Ref), float(aperture.V3Ref)
    w.ra_ref, w.dec_ref, w.roll_ref = ra, dec, roll
    w.v3yangle, w.vparity = float(aperture.V3IdlYAngle), int(aperture.VIdlParity)


# ---------------------------------------------------------------- distortion


@pytest.mark.parametrize("name", DETECTORS)
def test_distortion_matches_pysiaf_det_to_tel(kit, name):
    ap = distortion.siaf_aperture(name)
    model = read_model(kit[name].dist)
    x, y = pixel_grid()
    v2, v3 = model(x, y)
    # pysiaf's detector-frame route for the same physical pixels (0-based sci = jwst pixels).
    ref_v2, ref_v3 = ap.det_to_tel(*ap.sci_to_det(x + 1, y + 1))
    err_mas = 1e3 * np.hypot(v2 - ref_v2, v3 - ref_v3)
    assert err_mas.max() < 0.1
    # The frame matters: feeding pixels as raw det coordinates is off by arcminutes.
    wrong_v2, wrong_v3 = ap.det_to_tel(x + 1, y + 1)
    assert np.hypot(v2 - wrong_v2, v3 - wrong_v3).max() > 60.0
    # Reference pixel (XSciRef, YSciRef) maps to (V2Ref, V3Ref).
    c2, c3 = model(ap.XSciRef - 1, ap.YSciRef - 1)
    assert abs(c2 - ap.V2Ref) < 1e-7 and abs(c3 - ap.V3Ref) < 1e-7


@pytest.mark.parametrize("name", DETECTORS)
def test_distortion_inverse_round_trip(kit, name):
    model = read_model(kit[name].dist)
    assert model.has_user_inverse
    x, y = pixel_grid(41, lo=-100.0, hi=FULL_SIZE + 99.0)
    xb, yb = model.inverse(*model(x, y))
    assert np.abs(xb - x).max() < 1e-3
    assert np.abs(yb - y).max() < 1e-3
    # Scalars, as MIRAGE passes them one source at a time.
    xs, ys = model.inverse(*model(1500.25, 17.5))
    assert abs(xs - 1500.25) < 1e-3 and abs(ys - 17.5) < 1e-3


@pytest.mark.parametrize("name", DETECTORS)
def test_shifted_distortion_reads_the_shift(kit, name):
    nominal, shifted = read_model(kit[name].dist), read_model(kit[name].shifted)
    x, y = pixel_grid(9)
    dv2 = (shifted(x, y)[0] - nominal(x, y)[0]) * 1e3
    dv3 = (shifted(x, y)[1] - nominal(x, y)[1]) * 1e3
    np.testing.assert_allclose(dv2, SHIFT_MAS[0], atol=1e-6)
    np.testing.assert_allclose(dv3, SHIFT_MAS[1], atol=1e-6)
    # Its inverse undoes the shift: nominal sky position of a pixel is off by the shift in px.
    xb, yb = shifted.inverse(*shifted(x, y))
    assert np.abs(xb - x).max() < 1e-3 and np.abs(yb - y).max() < 1e-3


@pytest.mark.parametrize(("name", "filt", "pupil"),
                         [("NRCB1", "F150W2", "F162M"), ("NRCBLONG", "F444W", "CLEAR")])
def test_assign_wcs_sky_matches_pysiaf_attitude(kit, name, filt, pupil):
    from jwst.assign_wcs.assign_wcs import load_wcs
    from jwst.lib.reffile_utils import find_row

    ap = distortion.siaf_aperture(name)
    model = nircam_image(name, filt, pupil)
    set_pointing(model, ap, RA0, DEC0, ROLL0)
    refs = {"distortion": str(kit[name].dist), "filteroffset": str(kit[name].filteroffset)}
    load_wcs(model, refs)
    with asdf.open(refs["filteroffset"]) as af:
        assert find_row(af.tree["filters"], {"filter": filt, "pupil": pupil}) is not None

    x, y = pixel_grid()
    ra, dec = model.meta.wcs(x, y)
    att = pysiaf.utils.rotations.attitude(ap.V2Ref, ap.V3Ref, RA0, DEC0, ROLL0)
    v2, v3 = ap.sci_to_tel(x.ravel() + 1, y.ravel() + 1)
    ra_ref, dec_ref = pysiaf.utils.rotations.pointing(att, v2, v3)
    dra = (ra.ravel() - ra_ref) * math.cos(math.radians(DEC0))
    offset_mas = 3.6e6 * np.hypot(dra, dec.ravel() - dec_ref)
    assert offset_mas.max() < 1.0
    # The WCS runs backwards through the reference's explicit inverse.
    xb, yb = model.meta.wcs.invert(ra, dec)
    assert np.nanmax(np.abs(xb - x)) < 1e-3 and np.nanmax(np.abs(yb - y)) < 1e-3


def test_mirage_places_sources_where_the_pipeline_wcs_finds_them(kit):
    """MIRAGE's own reader + RA/Dec->pixel code on the kit file vs the pipeline WCS (SUB400P)."""
    from jwst.assign_wcs.assign_wcs import load_wcs
    from mirage.seed_image.catalog_seed_image import Catalog_seed
    from mirage.utils import siaf_interface

    siaf = pysiaf.Siaf("NIRCam")
    aperture = "NRCB1_SUB400P"
    roll, att, _, bounds = siaf_interface.get_siaf_information(siaf, aperture, RA0, DEC0, ROLL0)
    mirage = types.SimpleNamespace(
        runStep={"astrometric": True}, params={"Reffiles": {"astrometric": str(kit["NRCB1"].dist)}},
        use_intermediate_aperture=False, attitude_matrix=att, subarray_bounds=bounds)
    mirage.coord_transform = Catalog_seed.read_distortion_reffile(mirage)
    assert (bounds[0], bounds[1]) == (1648, 1648)  # DMS SUBSTRT 1649, 0-based

    model = nircam_image("NRCB1", "F115W", "CLEAR", ("SUB400P", 1649, 1649, 400, 400))
    set_pointing(model, siaf[aperture], RA0, DEC0, roll)
    load_wcs(model, {"distortion": str(kit["NRCB1"].dist),
                     "filteroffset": str(kit["NRCB1"].filteroffset)})

    x, y = pixel_grid(7, lo=0.0, hi=399.0)
    ra, dec = model.meta.wcs(x.ravel(), y.ravel())
    for xi, yi, r, d in zip(x.ravel(), y.ravel(), ra, dec, strict=True):
        mx, my = Catalog_seed.RADecToXY_astrometric(mirage, r, d)
        assert abs(mx - xi) < 1e-3 and abs(my - yi) < 1e-3


def test_filteroffset_rows_are_zero_per_filter_and_pupil(kit):
    with asdf.open(kit["NRCB1"].filteroffset) as af:
        rows = {(r["filter"], r["pupil"]): (r["column_offset"], r["row_offset"])
                for r in af.tree["filters"]}
    assert rows == {("F115W", "CLEAR"): (0.0, 0.0), ("F150W", "CLEAR"): (0.0, 0.0),
                    ("F150W2", "F162M"): (0.0, 0.0)}


# ---------------------------------------------------------------- pixel area


def finite_difference_area(model, x, y, h=0.5):
    """|det d(V2,V3)/d(x,y)| by central differences of the model, arcsec^2."""
    xp, xm = np.array(model(x + h, y)), np.array(model(x - h, y))
    yp, ym = np.array(model(x, y + h)), np.array(model(x, y - h))
    jx, jy = (xp - xm) / (2 * h), (yp - ym) / (2 * h)
    return np.abs(jx[0] * jy[1] - jx[1] * jy[0])


@pytest.mark.parametrize("name", DETECTORS)
def test_area_map_from_distortion_jacobian(kit, name):
    from stdatamodels.jwst.datamodels import PixelAreaModel

    model = read_model(kit[name].dist)
    ap = distortion.siaf_aperture(name)
    with PixelAreaModel(str(kit[name].area)) as pam:
        area = pam.data
        pixar_sr = pam.meta.photometry.pixelarea_steradians
        pixar_a2 = pam.meta.photometry.pixelarea_arcsecsq
    assert area.shape == (FULL_SIZE, FULL_SIZE)
    assert area.dtype.kind == "f" and area.dtype.itemsize == 4
    assert abs(float(area.mean(dtype=np.float64)) - 1.0) < 1e-3
    assert (pixar_sr, pixar_a2) == pytest.approx((kit[name].pixar_sr, kit[name].pixar_a2))
    assert pixar_sr == pytest.approx(pixar_a2 * (math.pi / 648000.0) ** 2, rel=1e-12)

    # Independent Jacobian: finite differences of the stored model on a 64-px lattice.
    g = np.arange(16, FULL_SIZE, 32.0)
    x, y = np.meshgrid(g, g)
    fd = finite_difference_area(model, x, y)
    assert fd.mean() == pytest.approx(pixar_a2, rel=1e-4)
    np.testing.assert_allclose(area[y.astype(int), x.astype(int)], fd / pixar_a2, rtol=1e-5)
    # Close to the SIAF nominal scale, and a real map (distortion moves it by > 1 %).
    assert pixar_a2 == pytest.approx(ap.XSciScale * ap.YSciScale, rel=0.01)
    assert area.min() < 0.99 and area.max() > 1.01


# ---------------------------------------------------------------- photometry


def test_wheel_elements_match_mirage_pairings():
    from mirage.utils.utils import standardize_filters

    pairs = astropy_ascii.read(str(photometry.zeropoint_file().with_name(
        "nircam_filter_pupil_pairings.list")))
    table = {str(r["filter"]): (str(r["filter_wheel"]), str(r["pupil_wheel"])) for r in pairs}
    for name in DETECTORS:
        for f in get_detector(name).filters:
            assert wheel_elements(f) == table[f]
            assert "/".join(wheel_elements(f)) == standardize_filters("nircam", [f])[0]
    assert wheel_elements("F162M") == ("F150W2", "F162M")
    assert wheel_elements("F405N") == ("F444W", "F405N")
    assert wheel_elements("f115w") == ("F115W", "CLEAR")
    assert wheel_elements("F150W2/F164N") == ("F150W2", "F164N")
    assert wheel_elements("F164N/F150W2") == ("F150W2", "F164N")
    for bad in ("F162M/F164N", "F999W", "F115W/F150W"):
        with pytest.raises(ValueError):
            wheel_elements(bad)


@pytest.mark.parametrize("name", DETECTORS)
def test_zeropoint_rows_are_mirages_own(name):
    from mirage.utils.flux_cal import fluxcal_info

    det = get_detector(name)
    for f in det.filters:
        row = photometry.zeropoint_row(det, f)
        vega, photflam, photfnu, pivot = fluxcal_info(
            str(photometry.zeropoint_file()), "nircam", row.filter, row.pupil,
            det.siaf_name, det.module)
        assert (row.vegamag, row.photflam, row.photfnu, row.pivot_um) == (
            vega, photflam, photfnu, pivot)
        # MIRAGE's table is self-consistent: ABMAG is the AB magnitude giving 1 ADU/s.
        assert row.abmag == pytest.approx(-2.5 * math.log10(row.photfnu) - 48.599934378,
                                          abs=1e-9)
    with pytest.raises(ValueError, match="0 rows"):
        photometry.zeropoint_row(det, "F115W", "F405N")


@pytest.mark.parametrize(("name", "filt"),
                         [("NRCB1", "F115W"), ("NRCB1", "F162M"), ("NRCBLONG", "F444W"),
                          ("NRCBLONG", "F405N")])
def test_photometric_chain_closes(kit, name, filt):
    from mirage.utils.utils import magnitude_to_countrate
    from stdatamodels.jwst.datamodels import NrcImgPhotomModel

    det = get_detector(name)
    zp = photometry.zeropoint_row(det, filt)
    rate = photometry.mag_to_countrate(20.0, det, filt)  # ADU/s
    assert rate == pytest.approx(magnitude_to_countrate("nircam", zp.filter, "abmag", 20.0,
                                                        photfnu=zp.photfnu), rel=1e-12)
    with NrcImgPhotomModel(str(kit[name].photom)) as pm:
        table = pm.phot_table
        k = np.flatnonzero((table["filter"] == zp.filter) & (table["pupil"] == zp.pupil))
        assert len(k) == 1
        photmjsr = float(table["photmjsr"][k[0]])  # as stored (float32)
        pixar_sr = pm.meta.photometry.pixelarea_steradians
    flux_jy = rate * photmjsr * pixar_sr * photometry.JY_PER_MJY
    assert photometry.jy_to_abmag(flux_jy) == pytest.approx(20.0, abs=1e-6)
    # jwst source_catalog rounds the AB zeropoint to 8.9: 6.6e-5 mag brighter, known.
    from astropy import units as u
    from jwst.source_catalog.source_catalog import JWSTSourceCatalog

    jwst_mag, _ = JWSTSourceCatalog.convert_flux_to_abmag(np.array([flux_jy]) * u.Jy, None)
    assert jwst_mag[0] - 20.0 == pytest.approx(8.9 - 2.5 * math.log10(3631.0), abs=1e-6)


@pytest.mark.parametrize("name", DETECTORS)
def test_photom_defaults_equal_explicit_area(kit, name):
    """write_photom(path, det) recomputes exactly the PIXAR_SR write_area wrote."""
    from stdatamodels.jwst.datamodels import NrcImgPhotomModel

    with NrcImgPhotomModel(str(kit[name].photom)) as a, \
            NrcImgPhotomModel(str(kit[name].photom_default)) as b:
        assert b.meta.photometry.pixelarea_steradians == pytest.approx(kit[name].pixar_sr,
                                                                       rel=1e-12)
        assert b.meta.photometry.pixelarea_arcsecsq == pytest.approx(kit[name].pixar_a2,
                                                                     rel=1e-12)
        np.testing.assert_array_equal(a.phot_table["photmjsr"], b.phot_table["photmjsr"])
        assert len(b.phot_table) == len(get_detector(name).filters)


def test_photom_scale_multiplies_photmjsr(kit):
    from stdatamodels.jwst.datamodels import NrcImgPhotomModel

    with NrcImgPhotomModel(str(kit["NRCB1"].photom)) as a, \
            NrcImgPhotomModel(str(kit["NRCB1"].photom_scaled)) as b:
        ref = {(r["filter"], r["pupil"]): r["photmjsr"] for r in a.phot_table}
        got = {(r["filter"], r["pupil"]): r["photmjsr"] for r in b.phot_table}
    assert set(got) == {("F115W", "CLEAR"), ("F150W", "CLEAR"), ("F150W2", "F162M")}
    for key, value in got.items():
        assert value == pytest.approx(1.1 * ref[key], rel=1e-6)
    assert len(ref) == len(get_detector("NRCB1").filters)


def test_jwst_photom_applies_photmjsr_and_area(kit):
    """jwst's photom on a SUB400P rate image: MJy/sr = DN/s * PHOTMJSR, area map sliced."""
    from jwst.photom.photom import DataSet
    from stdatamodels.jwst.datamodels import PixelAreaModel

    model = nircam_image("NRCB1", "F150W2", "F162M", ("SUB400P", 1649, 1649, 400, 400))
    model.meta.exposure.mid_time = 60000.0
    model.meta.bunit_data = "DN/s"
    rate = 3.25
    model.data[:] = rate
    for ext in ("err", "var_poisson", "var_rnoise", "var_flat"):
        setattr(model, ext, np.ones((400, 400), np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = DataSet(model).apply_photom(str(kit["NRCB1"].photom), str(kit["NRCB1"].area))
    expected = photometry.photmjsr("NRCB1", "F162M", kit["NRCB1"].pixar_sr)
    assert out.meta.photometry.conversion_megajanskys == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(out.data, rate * expected, rtol=1e-6)
    np.testing.assert_allclose(out.var_poisson, expected**2, rtol=1e-6)
    assert out.meta.photometry.pixelarea_steradians == pytest.approx(kit["NRCB1"].pixar_sr)
    with PixelAreaModel(str(kit["NRCB1"].area)) as pam:
        np.testing.assert_array_equal(out.area, pam.data[1648:2048, 1648:2048])


@pytest.mark.parametrize(("name", "filt"), [("NRCB1", "F115W"), ("NRCB1", "F162M"),
                                            ("NRCBLONG", "F470N")])
def test_abvega_offset_as_source_catalog_reads_it(kit, name, filt):
    from jwst.source_catalog.reference_data import ReferenceData

    det = get_detector(name)
    fw, pw = wheel_elements(filt)
    model = nircam_image(name, fw, pw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        offset = ReferenceData(model, [None, str(kit[name].abvega)], (30, 50, 70)).abvega_offset
    zps = astropy_ascii.read(str(photometry.zeropoint_file()))
    row = zps[(zps["Detector"] == det.siaf_name) & (zps["Filter"] == fw) & (zps["Pupil"] == pw)]
    assert len(row) == 1
    assert offset == pytest.approx(float(row["ABMAG"][0] - row["VEGAMAG"][0]), abs=1e-12)


def test_abvega_file_for_several_detectors(tmp_path):
    """One file for NRCB1+NRCB2+NRCBLONG: SW rows are the NRCB1/NRCB2 mean, LW rows exact."""
    from stdatamodels.jwst.datamodels import ABVegaOffsetModel

    dets = ["NRCB1", "NRCB2", "NRCBLONG"]
    path = photometry.write_abvegaoffset(tmp_path / "abvega.asdf", dets)
    with ABVegaOffsetModel(str(path), strict_validation=True) as am:
        am.validate()
        assert am.meta.instrument.detector is None
        table = am.abvega_offset
        got = {(str(r["filter"]), str(r["pupil"])): float(r["abvega_offset"]) for r in table}
    assert len(got) == len(table)  # (filter, pupil) unique, as source_catalog requires
    b1 = photometry.zeropoint_row("NRCB1", "F150W2").abvega_offset
    b2 = photometry.zeropoint_row("NRCB2", "F150W2").abvega_offset
    assert abs(b1 - b2) > 1e-3  # the detectors really differ
    assert got[("F150W2", "CLEAR")] == pytest.approx((b1 + b2) / 2, abs=1e-12)
    assert got[("F444W", "F470N")] == pytest.approx(
        photometry.zeropoint_row("NRCBLONG", "F470N").abvega_offset, abs=1e-12)
    with pytest.raises(ValueError, match="not a short-wave NIRCam filter"):
        photometry.write_abvegaoffset(tmp_path / "bad.asdf", "NRCB1", ["F444W"])


def test_models_validate_strictly(kit):
    from stdatamodels.jwst import datamodels as dm

    kinds = {"dist": dm.DistortionModel, "shifted": dm.DistortionModel,
             "filteroffset": dm.FilteroffsetModel, "area": dm.PixelAreaModel,
             "photom": dm.NrcImgPhotomModel, "photom_scaled": dm.NrcImgPhotomModel,
             "photom_default": dm.NrcImgPhotomModel,
             "abvega": dm.ABVegaOffsetModel}
    for name in DETECTORS:
        for key, cls in kinds.items():
            with cls(str(getattr(kit[name], key)), strict_validation=True) as m:
                m.validate()
                assert m.meta.instrument.detector == name
                assert m.meta.pedigree == "SIMULATION" and m.meta.useafter
            with dm.open(str(getattr(kit[name], key))) as m:  # DATAMODL picks the class
                assert type(m) is cls
