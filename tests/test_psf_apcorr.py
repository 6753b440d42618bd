"""PSF library, PSF wings and aperture corrections of the synthetic instrument kit.

Libraries here are small (2x2 grid, 37-pixel stamps) so the module runs in well under a
minute; the kit's defaults (3x3, 41 pixels) use the same code.
"""

from __future__ import annotations

import fnmatch
import warnings

import numpy as np
import pytest
from astropy.io import fits

from simval.kit import apcorr, psf, pupil
from simval.kit.detectors import get_detector

SEED = 7
DET = "NRCB1"
FILTER = "F115W"
SMALL = {"npsf": 4, "fov_pixels": 37, "oversample": 4}
#: Published FWHM (arcsec) of NIRCam PSFs: JWST User Documentation (JDox), "NIRCam Point
#: Spread Functions", table of simulated (webbpsf) PSF FWHM per filter.
JDOX_FWHM_ARCSEC = {"F115W": 0.040, "F150W": 0.050, "F444W": 0.145}
#: MIRAGE 2.5 glob patterns (mirage/psf/psf_selection.py) for predicted WFE, realization 0.
LIBRARY_GLOB = "nircam_nrcb1_f115w_clear_fovp*_samp*_npsf*_predicted_realization0.fits"
WINGS_GLOB = "nircam_nrcb1_f115w_clear_fovp*_samp*_predicted_realization0.fits"


@pytest.fixture(scope="module")
def kit_files(tmp_path_factory):
    """Library, wings and apcorr for NRCB1/F115W written into a temporary MIRAGE tree."""
    root = tmp_path_factory.mktemp("psf")
    lib_path = psf.write_psf_library(root, DET, FILTER, SEED, **SMALL)
    wings_path = psf.write_psf_wings(root / "psf_wings", DET, FILTER, SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ap_path = apcorr.write_apcorr(root / "apcorr.fits", DET, [FILTER], SEED,
                                      ee_curve_path=root / "ee.ecsv", library_dir=root, **SMALL)
    result = apcorr.compute_apcorr(DET, FILTER, SEED, **SMALL)  # in-process library
    return {"root": root, "library": lib_path, "wings": wings_path, "apcorr": ap_path,
            "result": result}


def _gridded_model(path):
    from photutils.psf import GriddedPSFModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GriddedPSFModel.read(str(path), format="webbpsf")


# --------------------------------------------------------------------------- pupil
def test_pupil_geometry_matches_poppy_and_jwst():
    amp, segment = pupil.pupil_mask(256, supersample=1)
    ref = np.asarray(pupil.poppy_optics().sample(wavelength=1e-6, npix=256,
                                                 grid_size=pupil.GRID_DIAMETER_M))
    assert np.mean(amp != ref) < 1e-3
    assert sorted(set(segment[segment >= 0].tolist())) == list(range(18))
    area = pupil.pupil_mask(256)[0].sum() * (pupil.GRID_DIAMETER_M / 256) ** 2
    # 18 hexagons of 1.32 m flat to flat (27.2 m^2) minus struts and gaps; JWST: 25.4 m^2.
    assert 25.5 < area < 26.8


def test_wavefront_error_is_smooth_and_tens_of_nm():
    p = pupil.jwst_pupil(256)
    wfe = pupil.wavefront_model(SEED, get_detector(DET))
    rms = [p.rms_nm(wfe.opd_nm(p, x, y)) for x, y in psf.grid_positions(9)]
    assert 20.0 < min(rms) and max(rms) < 90.0
    assert max(rms) - min(rms) > 3.0  # field dependent
    near = p.rms_nm(wfe.opd_nm(p, 1000, 1000) - wfe.opd_nm(p, 1010, 1000))
    assert near < 0.5  # smooth: 10 pixels apart differ by < 0.5 nm RMS
    other = pupil.wavefront_model(SEED + 1, get_detector(DET))
    assert p.rms_nm(other.opd_nm(p, 1024, 1024) - wfe.opd_nm(p, 1024, 1024)) > 10.0


# --------------------------------------------------------------------------- format
def test_library_file_is_in_mirage_format(kit_files):
    path = kit_files["library"]
    assert fnmatch.fnmatch(path.name, LIBRARY_GLOB)
    assert path.name == "nircam_nrcb1_f115w_clear_fovp37_samp4_npsf4_predicted_realization0.fits"
    with fits.open(path) as hdul:
        hdr, data = hdul[0].header, hdul[0].data
    assert (hdr["INSTRUME"], hdr["DETECTOR"], hdr["FILTER"], hdr["PUPIL"]) == (
        "NIRCAM", "NRCB1", "F115W", "CLEAR")
    assert "predicted" in hdr["OPD_FILE"] and hdr["OPDSLICE"] == 0
    assert hdr["OVERSAMP"] == 4 and hdr["NUM_PSFS"] == 4 and data.shape == (4, 148, 148)
    yx = [tuple(float(v) for v in hdr[f"DET_YX{i}"].strip("()").split(",")) for i in range(4)]
    assert sorted(yx) == [(0.0, 0.0), (0.0, 2047.0), (2047.0, 0.0), (2047.0, 2047.0)]


def test_library_loads_as_photutils_gridded_model(kit_files):
    model = _gridded_model(kit_files["library"])
    assert model.data.shape == (4, 148, 148)
    assert model.oversampling.tolist() == [4, 4]
    assert sorted(map(tuple, model.grid_xypos.tolist())) == [
        (0.0, 0.0), (0.0, 2047.0), (2047.0, 0.0), (2047.0, 2047.0)]
    lib = psf.psf_library(DET, FILTER, SEED, **SMALL)
    # photutils 3.0's webbpsf reader takes DET_YX '(y, x)' as (x, y); the diagonal PSFs
    # (x == y) are unaffected, MIRAGE's loader (stpsf.utils) reads (y, x) correctly.
    for xy, stamp in zip(lib.positions, lib.data, strict=True):
        if xy[0] == xy[1]:
            i = model.grid_xypos.tolist().index([float(xy[0]), float(xy[1])])
            np.testing.assert_array_equal(model.data[i], stamp)


# --------------------------------------------------------------------------- flux
def test_psf_sums_are_the_flux_inside_the_stamp(kit_files):
    with fits.open(kit_files["library"]) as hdul:
        hdr, data = hdul[0].header, hdul[0].data.astype(float)
    sums = data.sum(axis=(1, 2)) / hdr["OVERSAMP"] ** 2
    assert np.all((sums >= 0.8) & (sums <= 1.0))  # MIRAGE's check_normalization
    for i, s in enumerate(sums):
        assert s == pytest.approx(hdr[f"PSFSUM{i}"], rel=1e-6)
    with fits.open(kit_files["wings"]) as hdul:
        wings = hdul["DET_DIST"].data.astype(float)
    # Unit flux over the 299 x 299 box MIRAGE pastes; the library holds the inner 37 pixels.
    assert wings[1:-1, 1:-1].sum() == pytest.approx(1.0, abs=1e-5)
    inner = wings[150 - 18:150 + 19, 150 - 18:150 + 19].sum()
    assert sums == pytest.approx(inner, abs=2e-3)
    assert 0.95 < inner < 0.99  # F115W: ~3 % of the light lies beyond 18 pixels
    assert 0.0 < hdr["TRUNCFRA"] < 0.005


def test_flux_is_conserved_at_any_subpixel_phase(kit_files):
    model = _gridded_model(kit_files["library"])
    yy, xx = np.mgrid[-16:17, -16:17].astype(float)
    rng = np.random.default_rng(1)
    totals = []
    for dx, dy in [(0.0, 0.0), (0.5, 0.5), (0.25, -0.4), *rng.uniform(-0.5, 0.5, (5, 2))]:
        x0, y0 = 1024.0 + dx, 1024.0 + dy
        totals.append(model.evaluate(xx + 1024, yy + 1024, 1.0, x0, y0).sum())
    totals = np.array(totals)
    assert np.ptp(totals) / totals.mean() < 0.01
    assert totals.mean() == pytest.approx(0.965, abs=0.01)  # 33x33 px of the unit total


def test_pixel_integration_equals_brute_force_box_sum():
    """The library sample at a native pixel centre is the PSF integrated over that pixel."""
    det = get_detector(DET)
    band = psf.bandpass(FILTER, det.module, 3)
    p = pupil.jwst_pupil(384)
    opd = pupil.wavefront_model(SEED, det).opd_nm(p, 1024, 1024)
    fine = psf.optical_psf(det, band, opd, 9 * 9, 9, 384)  # 9 px, 9 samples per pixel
    box = fine.reshape(9, 9, 9, 9).sum(axis=(1, 3))  # flux in each native pixel
    integrated = psf.integrated_stamp(det, band, opd, 9, 3, 384)[1::3, 1::3] * 9
    point = psf.optical_psf(det, band, opd, 9, 1, 384)  # sampled, not integrated
    assert np.abs(integrated - box).max() < 0.01 * box.max()
    assert np.abs(point - box).max() > 0.05 * box.max()  # integration matters


# --------------------------------------------------------------------------- shape
@pytest.mark.parametrize(("det_name", "filt"), [("NRCB1", "F115W"), ("NRCB1", "F150W"),
                                                ("NRCBLONG", "F444W")])
def test_fwhm_matches_published_nircam_values(det_name, filt):
    det = get_detector(det_name)
    band = psf.bandpass(filt, det.module)
    p = pupil.jwst_pupil(384)
    opd = pupil.wavefront_model(SEED, det).opd_nm(p, 1024, 1024)
    sx = psf.pixel_scale(det_name)[0]
    optical = psf.optical_psf(det, band, opd, 21 * 4, 4, 384)
    integrated = psf.pixel_integrate(optical, 4)
    fwhm_opt = psf.measure_fwhm(optical, sx / 4)
    fwhm_int = psf.measure_fwhm(integrated, sx / 4)
    assert fwhm_opt == pytest.approx(JDOX_FWHM_ARCSEC[filt], rel=0.2)
    assert fwhm_int == pytest.approx(JDOX_FWHM_ARCSEC[filt], rel=0.2)
    # The native-pixel box adds roughly in quadrature (sigma_box = pixel / sqrt(12)).
    expect = np.sqrt(fwhm_opt**2 + (2.355 * sx / np.sqrt(12)) ** 2)
    assert fwhm_int == pytest.approx(expect, rel=0.1)
    assert fwhm_int > fwhm_opt


def test_psf_centroid_is_on_the_source(kit_files):
    """Segment tilts and coma would move the core's centroid by up to ~0.09 px (3 mas)."""
    lib = psf.psf_library(DET, FILTER, SEED, **SMALL)
    for stamp in lib.data:
        cx, cy = psf.windowed_centroid(stamp.astype(float), 4)
        assert abs(cx) < 0.01 and abs(cy) < 0.01
    det = get_detector(DET)
    p = pupil.jwst_pupil(384)
    raw = pupil.wavefront_model(SEED, det).opd_nm(p, 0, 0)
    band = psf.bandpass(FILTER, det.module)
    off = psf.windowed_centroid(psf.optical_psf(det, band, raw, 48, 4, 384), 4)
    assert np.hypot(*off) > 0.02  # without the correction it would not be


def test_field_dependence_is_present_but_small(kit_files):
    lib = psf.psf_library(DET, FILTER, SEED, **SMALL)
    sx = psf.pixel_scale(DET)[0]
    fwhm = [psf.measure_fwhm(stamp, sx / 4) for stamp in lib.data]
    diff = np.abs(lib.data[0] - lib.data[3]).max() / lib.data[0].max()
    assert diff > 1e-3  # corners differ
    assert np.ptp(fwhm) / np.mean(fwhm) < 0.1
    assert np.ptp(lib.data.sum(axis=(1, 2))) / lib.data[0].sum() < 1e-3


# --------------------------------------------------------------------------- reproducibility
def test_same_seed_gives_identical_bytes(kit_files, tmp_path):
    for cached in (psf._psf_library, psf._psf_wings, pupil.jwst_pupil):
        cached.cache_clear()
    again = psf.write_psf_library(tmp_path, DET, FILTER, SEED, **SMALL)
    wings = psf.write_psf_wings(tmp_path, DET, FILTER, SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ap = apcorr.write_apcorr(tmp_path / "apcorr.fits", DET, [FILTER], SEED, **SMALL)
    assert again.read_bytes() == kit_files["library"].read_bytes()
    assert wings.read_bytes() == kit_files["wings"].read_bytes()
    assert ap.read_bytes() == kit_files["apcorr"].read_bytes()
    other = psf.write_psf_library(tmp_path / "other", DET, FILTER, SEED + 1, **SMALL)
    assert other.read_bytes() != kit_files["library"].read_bytes()


# --------------------------------------------------------------------------- drizzle
def test_drizzle_is_used_as_an_area_weighted_shift():
    """pixfrac=1 square kernel: an integer shift copies, a half-pixel shift averages."""
    rng = np.random.default_rng(3)
    data = rng.uniform(0.0, 1.0, (15, 15))
    same = apcorr.drizzle_exposures([data], [(7.0, 7.0)], 11, (5.0, 5.0))
    np.testing.assert_allclose(same, data[2:13, 2:13], rtol=1e-6)
    half = apcorr.drizzle_exposures([data], [(7.0, 7.0)], 11, (5.5, 5.0))
    np.testing.assert_allclose(half[:, 1:], 0.5 * (data[2:13, 2:12] + data[2:13, 3:13]),
                               rtol=1e-6)


def test_drizzling_broadens_the_psf(kit_files):
    """At the drizzled PSF's 50 % and 70 % radii, the library PSF (any phase) encloses more:
    an apcorr from the library would leave aper_total too faint (offline-facts, Closure)."""
    model = _gridded_model(kit_files["library"])
    res = kit_files["result"]
    radii = [res.radii[list(res.eefractions).index(f)] for f in (0.5, 0.7)]
    rng = np.random.default_rng(5)
    ee = []
    for dx, dy in rng.uniform(0.0, 1.0, (16, 2)):
        stamp, centre = apcorr._input_stamp(model, 1024 + dx, 1024 + dy, 14)
        ee.append(apcorr.encircled_energy(stamp, centre, radii))
    ee = np.mean(ee, axis=0)
    assert ee[0] > 0.5 + 0.04
    assert ee[1] > 0.7 + 0.01


# --------------------------------------------------------------------------- apcorr
def test_apcorr_table_matches_drizzled_library(kit_files):
    from stdatamodels.jwst.datamodels import NrcImgApcorrModel

    with NrcImgApcorrModel(str(kit_files["apcorr"])) as m:
        table = m.apcorr_table
        assert m.meta.reftype == "APCORR" and m.meta.instrument.detector == "NRCB1"
    rows = {round(float(r["eefraction"]), 2): r for r in table}
    assert {0.3, 0.5, 0.7} <= set(rows)
    radii = np.array([rows[f]["radius"] for f in (0.3, 0.5, 0.7)])
    assert np.all(np.diff(radii) > 0)
    assert 1.5 < radii[-1] < 2.2  # F115W drizzled: r(70 %) ~ 1.8 px (library PSF ~1.6 px)
    assert {float(r["skyin"]) for r in table} == {8.0}
    assert {float(r["skyout"]) for r in table} == {13.0}
    # Independent phases: the drizzled library PSF encloses the tabulated fractions.
    model = _gridded_model(kit_files["library"])
    drz = apcorr.drizzled_psf(model, np.random.default_rng(99), nreal=64, nexp=4, half_size=14)
    fractions = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    ee = apcorr.mean_encircled_energy(drz, [rows[f]["radius"] for f in fractions])
    np.testing.assert_allclose(ee, fractions, atol=0.005)
    # apcorr corrects the enclosed energy and the PSF light in the sky annulus.
    level = np.mean([apcorr.annulus_level(img, tuple(c)) for img, c in
                     zip(drz.images, drz.centres, strict=True)])
    assert 1e-5 < level < 3e-4
    for f in fractions:
        r = rows[f]["radius"]
        assert rows[f]["apcorr"] == pytest.approx(1.0 / (f - np.pi * r**2 * level), rel=1e-3)
        assert rows[f]["apcorr"] > 1.0 / f


def test_apcorr_from_file_equals_in_process(kit_files):
    """write_apcorr(library_dir=...) read the library file; same numbers as the cache."""
    from stdatamodels.jwst.datamodels import NrcImgApcorrModel

    res = kit_files["result"]
    with NrcImgApcorrModel(str(kit_files["apcorr"])) as m:
        table = m.apcorr_table
    np.testing.assert_allclose(table["radius"], res.radii, rtol=1e-6)
    np.testing.assert_allclose(table["apcorr"], res.apcorr, rtol=1e-6)
    model = psf.read_psf_library(kit_files["library"])
    lib = psf.psf_library(DET, FILTER, SEED, **SMALL)
    for xy, stamp in zip(lib.positions, lib.data, strict=True):
        i = model.grid_xypos.tolist().index([float(xy[0]), float(xy[1])])
        np.testing.assert_array_equal(model.data[i], stamp)


def test_ee_curve_is_saved_and_monotonic(kit_files):
    from astropy.table import Table

    table = Table.read(kit_files["root"] / "ee.ecsv")
    ee = np.asarray(table["ee_F115W"])
    assert np.all(np.diff(ee) > 0)
    assert 0.9 < ee[-1] < 0.99
    np.testing.assert_allclose(np.interp(kit_files["result"].radii, table["radius_pix"], ee),
                               kit_files["result"].eefractions, atol=2e-3)


@pytest.mark.slow
def test_pipeline_reads_the_apcorr(kit_files):
    """jwst's source_catalog ReferenceData picks our rows for F115W/CLEAR."""
    from jwst.source_catalog.reference_data import ReferenceData
    from stdatamodels.jwst.datamodels import ImageModel

    model = ImageModel((10, 10))
    model.meta.instrument.name = "NIRCAM"
    model.meta.instrument.detector = "NRCB1"
    model.meta.instrument.filter = "F115W"
    model.meta.instrument.pupil = "CLEAR"
    model.meta.resample.pixel_scale_ratio = 1.0
    params = ReferenceData(model, [str(kit_files["apcorr"]), None], (30, 50, 70)).aperture_params
    res = kit_files["result"]
    idx = [list(res.eefractions).index(f) for f in (0.3, 0.5, 0.7)]
    np.testing.assert_allclose(params["aperture_radii"], res.radii[idx], rtol=1e-6)
    np.testing.assert_allclose(params["aperture_corrections"], res.apcorr[idx], rtol=1e-6)
    assert params["bkg_aperture_inner_radius"] == 8.0


@pytest.mark.slow
def test_mirage_accepts_library_and_wings(kit_files, monkeypatch):
    """MIRAGE's own selection code finds, loads and normalisation-checks both files."""
    from simval.offline import import_pysiaf

    import_pysiaf()  # before mirage/stpsf import it with a network check
    monkeypatch.setenv("MIRAGE_DATA", str(kit_files["root"]))
    monkeypatch.chdir(kit_files["root"])  # MIRAGE writes mirage_latest.log here
    from mirage.psf import psf_selection

    root = str(kit_files["root"])
    lib = psf_selection.get_gridded_psf_library("nircam", "NRCB1", "F115W", "CLEAR",
                                                "predicted", 0, root)
    assert lib.data.shape == (4, 148, 148)
    ours = psf.psf_library(DET, FILTER, SEED, **SMALL)
    for xy, stamp in zip(ours.positions, ours.data, strict=True):
        i = lib.grid_xypos.tolist().index([float(xy[0]), float(xy[1])])
        np.testing.assert_array_equal(lib.data[i], stamp)  # MIRAGE reads (y, x) right
    wings = psf_selection.get_psf_wings("nircam", "NRCB1", "F115W", "CLEAR", "predicted", 0,
                                        str(kit_files["root"] / "psf_wings"))
    assert wings.shape == (299, 299)
    assert wings.sum() == pytest.approx(1.0, abs=1e-5)
    assert fnmatch.fnmatch(kit_files["wings"].name, WINGS_GLOB)
