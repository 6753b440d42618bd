"""Black lines, holes and seams explained: a mosaic with a known gap, known DO_NOT_USE
pixels and a known resample hole, through the real evaluation, the defects table, the
DS9 region files and the report.

The synthetic run (:func:`make_gap_run`): three 200 x 200 exposures on one gnomonic grid
(0.0311"/pixel, the mosaic's), placed on a 428 x 220 mosaic at pixel offsets

=====  ========  =====  ======  ===========  ==================
frame  detector  visit  dither  offset x, y  mosaic columns
=====  ========  =====  ======  ===========  ==================
A      NRCB1     1      1       14, 10       14 .. 213
C      NRCB1     1      2        4, 10        4 .. 203
B      NRCB2     2      1      218, 10      218 .. 417
=====  ========  =====  ======  ===========  ==================

so that columns 214 .. 217 (rows 10 .. 209) are a 4-pixel gap between visit 1's NRCB1
(A's x = 199 edge) and visit 2's NRCB2 (B's x = 0 edge). Mosaic pixels x 60 .. 69,
y 100 .. 109 are DO_NOT_USE | SATURATED in both exposures that cover them (A and C);
x 120 .. 129, y 50 .. 59 are DO_NOT_USE | JUMP_DET in A only (C fills them: no hole);
x 300 .. 305, y 150 .. 155 have no data although B's pixels there are good (a resample
hole). The mosaic has data wherever an exposure has a usable pixel, except that hole.

Sources on B are measured 20 mas east of the truth and 0.05 mag fainter, and B's sky is
1% above the injected sky (tests/test_per_detector.py reads those back).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Row, Table, vstack

from simval.evaluate import (
    EvaluationSettings,
    evaluate_product,
    join_metrics,
    write_product_evaluation,
)
from simval.layout import RunLayout
from simval.testing import make_catalog, make_i2d, make_truth, tan_wcs
from simval.truth import write_truth
from tests.test_truth import make_plan

CRVAL = (53.1625, -27.7914)
SCALE = 0.0311
MOSAIC_SHAPE = (220, 428)
FRAME_SHAPE = (200, 200)
SKY = 0.22
#: name -> (detector, visit, dither, (offset x, offset y))
FRAMES = {"A": ("NRCB1", 1, 1, (14, 10)), "C": ("NRCB1", 1, 2, (4, 10)),
          "B": ("NRCB2", 2, 1, (218, 10))}
GAP_X = (214, 217)
DNU_BOTH = (slice(100, 110), slice(60, 70))     # mosaic (rows, columns)
DNU_A_ONLY = (slice(50, 60), slice(120, 130))
RESAMPLE_HOLE = (slice(150, 156), slice(300, 306))
SHIFT_MAS = 20.0
DMAG = 0.05
SKY_STEP_FRAC = 0.01
DQ = {"DO_NOT_USE": 1, "SATURATED": 2, "JUMP_DET": 4}


def mosaic_wcs():
    return tan_wcs(MOSAIC_SHAPE, CRVAL, SCALE)


def frame_wcs(offset):
    w = mosaic_wcs().deepcopy()
    w.wcs.crpix = [w.wcs.crpix[0] - offset[0], w.wcs.crpix[1] - offset[1]]
    return w


def base_name(key: str) -> str:
    det, visit, dither, _ = FRAMES[key]
    return f"jw00001001{visit:03d}_01101_{dither:05d}_{det.lower()}"


def frame_cover(key: str) -> np.ndarray:
    """Mosaic pixels on frame ``key``'s array."""
    ox, oy = FRAMES[key][3]
    out = np.zeros(MOSAIC_SHAPE, bool)
    out[oy:oy + FRAME_SHAPE[0], ox:ox + FRAME_SHAPE[1]] = True
    return out


def frame_dq(key: str) -> np.ndarray:
    """The frame's DQ: the DO_NOT_USE patches (given in mosaic pixels) moved to the frame."""
    ox, oy = FRAMES[key][3]
    dq = np.zeros(FRAME_SHAPE, np.uint32)
    patches = [(DNU_BOTH, DQ["DO_NOT_USE"] | DQ["SATURATED"])]
    if key == "A":
        patches.append((DNU_A_ONLY, DQ["DO_NOT_USE"] | DQ["JUMP_DET"]))
    for (rows, cols), bits in patches:
        if key in ("A", "C"):
            dq[rows.start - oy:rows.stop - oy, cols.start - ox:cols.stop - ox] |= bits
    return dq


def usable(key: str) -> np.ndarray:
    """Mosaic pixels where frame ``key`` has a usable pixel."""
    ox, oy = FRAMES[key][3]
    out = frame_cover(key)
    bad = np.zeros(MOSAIC_SHAPE, bool)
    bad[oy:oy + FRAME_SHAPE[0], ox:ox + FRAME_SHAPE[1]] = frame_dq(key) & 1 != 0
    return out & ~bad


def write_cal(path: Path, key: str) -> None:
    hdr = frame_wcs(FRAMES[key][3]).to_header()
    fits.HDUList([fits.PrimaryHDU(header=fits.Header({"TELESCOP": "JWST",
                                                      "INSTRUME": "NIRCAM",
                                                      "DATAMODL": "ImageModel",
                                                      "DETECTOR": FRAMES[key][0]})),
                  fits.ImageHDU(np.zeros(FRAME_SHAPE, np.float32), hdr, name="SCI"),
                  fits.ImageHDU(frame_dq(key), name="DQ")]).writeto(path, overwrite=True)


def _plan(tmp: Path):
    plan = make_plan(tmp, name="gap", background=SKY)
    template = plan.exposures[0]
    exposures = [dataclasses.replace(template, index=k, base_name=base_name(key),
                                     detector=FRAMES[key][0], visit=FRAMES[key][1],
                                     exposure=FRAMES[key][2],
                                     dither_position=FRAMES[key][2])
                 for k, key in enumerate(FRAMES)]
    product = dataclasses.replace(plan.products[0],
                                  members=tuple(e.base_name for e in exposures))
    return dataclasses.replace(plan, exposures=exposures, products=[product])


def _catalog(truth: Table, on_b: np.ndarray) -> Table:
    common = {"sigma_mas": 1.0, "sigma_mag": 0.003, "mag_limit": None,
              "shape": MOSAIC_SHAPE, "wcs": mosaic_wcs()}
    a = make_catalog(truth[~on_b], seed=3, n_spurious=3, **common)
    b = make_catalog(truth[on_b], seed=4, n_spurious=0, shift_mas=SHIFT_MAS,
                     scale=10 ** (-0.4 * DMAG), **common)
    out = vstack([a, b])
    out["label"] = np.arange(1, len(out) + 1)
    return out


def make_gap_run(tmp: Path):
    """The synthetic run of the module docstring: returns (layout, plan, product)."""
    plan = _plan(tmp)
    product = plan.products[0]
    layout = RunLayout(tmp / "run")
    layout.make()
    layout.plan.write_text(plan.to_json())
    for key in FRAMES:
        write_cal(layout.image2 / f"{base_name(key)}_cal.fits", key)
    w = mosaic_wcs()
    truth = make_truth(5, n_stars=160, n_galaxies=20, shape=MOSAIC_SHAPE, wcs=w,
                       mag_range=(18.0, 23.0), margin_pix=12.0)
    good = np.zeros(MOSAIC_SHAPE, bool)
    con = np.zeros((1, *MOSAIC_SHAPE), np.int32)
    for k, key in enumerate(FRAMES):
        good |= usable(key)
        con[0] |= usable(key).astype(np.int32) << k
    has_data = good.copy()
    has_data[RESAMPLE_HOLE] = False
    ix = np.round(np.asarray(truth["mosaic_x"])).astype(int)
    iy = np.round(np.asarray(truth["mosaic_y"])).astype(int)
    truth["in_footprint"] = has_data[iy, ix]
    truth = truth[np.asarray(truth["in_footprint"])]
    on_b = frame_cover("B")[np.round(truth["mosaic_y"]).astype(int),
                            np.round(truth["mosaic_x"]).astype(int)]
    write_truth(truth, layout.truth_table(product.name))
    layout.product_dir(product.name).mkdir(parents=True, exist_ok=True)
    _catalog(truth, on_b).write(layout.product_file(product.name, "_cat.ecsv"),
                                format="ascii.ecsv", overwrite=True)
    i2d = layout.product_file(product.name, "_i2d.fits")
    sci = make_i2d(i2d, truth, seed=9, sky_mjysr=SKY, noise_mjysr=0.005, shape=MOSAIC_SHAPE,
                   wcs=w, hole=None)
    sci = sci + np.where(frame_cover("B"), SKY_STEP_FRAC * SKY, 0.0)
    with fits.open(i2d, mode="update") as hdul:
        hdul["SCI"].data = np.where(has_data, sci, np.nan).astype(np.float32)
        hdul["WHT"].data = np.where(has_data, hdul["WHT"].data, 0.0).astype(np.float32)
        hdul["CON"].data = con
    return layout, plan, product


SETTINGS = EvaluationSettings(match_radius_mas=100.0, background_recipe="skymatch",
                              skymethod=None, match_down=True, seed=0, catalog_options={})


@pytest.fixture(scope="module")
def gap_run(tmp_path_factory):
    """The run evaluated and joined: (layout, product, evaluation, written paths)."""
    layout, plan, product = make_gap_run(tmp_path_factory.mktemp("gap"))
    ev = evaluate_product(layout, plan, product, SETTINGS)
    written = write_product_evaluation(ev, layout, scenario_name="gap", settings=SETTINGS)
    join_metrics(layout, [written["metrics"]], scenario_name="gap",
                 scenario_hash="0123456789abcdef", crds_context=None,
                 versions={"simval": "0.1.0"})
    return layout, product, ev, written


def _by_cause(table: Table) -> dict[str, Row]:
    return {str(r["cause"]): r for r in table}


def text(value) -> str:
    """A string cell of an ECSV read back (empty strings come back masked)."""
    return "" if np.ma.is_masked(value) else str(value)


def test_each_defect_is_named_at_its_place_with_its_cause(gap_run):
    layout, product, _, written = gap_run
    table = Table.read(written["defects"], format="ascii.ecsv")
    assert written["defects"] == layout.defects_table(product.name)
    assert len(table) == 3, table
    rows = _by_cause(table)
    assert set(rows) == {"no_coverage", "do_not_use", "resample_nan"}

    gap = rows["no_coverage"]
    assert gap["kind"] == "black_line"
    assert (gap["x_min"], gap["x_max"]) == GAP_X
    assert gap["x"] == pytest.approx(0.5 * sum(GAP_X))
    assert 10 <= gap["y_min"] and gap["y_max"] <= 209 and gap["length_pix"] > 150
    assert gap["width_pix"] == pytest.approx(4.0, abs=0.1)
    assert gap["frac_no_coverage"] == 1.0
    edges = set(text(gap["edges"]).split(";"))
    assert edges == {f"{base_name('A')}:x=199", f"{base_name('B')}:x=0"}
    assert gap["visits"] == "1,2" and gap["visit_boundary"]
    assert gap["detectors"] == "NRCB1,NRCB2"
    assert text(gap["exposures"]) == ""
    ra, dec = mosaic_wcs().all_pix2world(gap["x"], gap["y"], 0)
    assert (gap["ra"], gap["dec"]) == pytest.approx((float(ra), float(dec)), abs=1e-9)
    assert "boundary of visits 1 and 2" in gap["explanation"]

    dnu = rows["do_not_use"]
    assert dnu["kind"] == "hole" and dnu["n_pix"] == 100
    assert (dnu["x_min"], dnu["x_max"], dnu["y_min"], dnu["y_max"]) == (60, 69, 100, 109)
    assert set(str(dnu["dq_flags"]).split(",")) == {"DO_NOT_USE", "SATURATED"}
    assert set(str(dnu["exposures"]).split(",")) == {base_name("A"), base_name("C")}
    assert text(dnu["edges"]) == "" and not dnu["visit_boundary"] and dnu["visits"] == "1"
    assert "every covering exposure (2) flags it DO_NOT_USE|SATURATED" in dnu["explanation"]

    res = rows["resample_nan"]
    assert res["n_pix"] == 36 and res["exposures"] == base_name("B")
    assert (res["x_min"], res["y_min"]) == (300, 150)
    assert res["frac_resample_nan"] == 1.0


def test_defects_agree_with_the_hole_metrics(gap_run):
    _, _, ev, written = gap_run
    table = Table.read(written["defects"], format="ascii.ecsv")
    m = ev.measurements
    assert m["black_line_count"].value == int(np.sum(table["kind"] == "black_line")) == 1
    n_fp = m["hole_frac"].n
    assert m["hole_frac"].value * n_fp == pytest.approx(float(np.sum(table["n_pix"])))
    assert m["hole_resample_frac"].value == pytest.approx(36 / n_fp)
    assert m["hole_resample_frac"].details["defects_by_cause"] == {
        "no_coverage": 1, "do_not_use": 1, "resample_nan": 1}
    # the A-only DO_NOT_USE patch is filled by C: no defect there
    assert not np.any((table["x_min"] <= 129) & (table["x_max"] >= 120)
                      & (table["y_min"] <= 59) & (table["y_max"] >= 50))


def test_region_files_parse_back_to_the_defects_and_sources(gap_run):
    from regions import PolygonSkyRegion, RectangleSkyRegion, Regions

    layout, product, ev, written = gap_run
    w = mosaic_wcs()
    holes = Regions.read(str(written["regions_holes"]), format="ds9")
    assert written["regions_holes"] == layout.regions_file(product.name, "holes")
    assert len(holes) == 3 and all(isinstance(r, RectangleSkyRegion) for r in holes)
    by_tag = {tuple(r.meta["tag"]): r.to_pixel(w) for r in holes}
    line = by_tag[("black_line", "no_coverage")]
    (gap,) = [d for d in ev.defects.defects if d.cause == "no_coverage"]
    assert (line.center.x, line.center.y) == pytest.approx((gap.x, gap.y), abs=0.01)
    assert line.width == pytest.approx(gap.length_pix, rel=1e-3)
    assert line.height == pytest.approx(4.0, abs=0.1)
    assert abs(abs(line.angle.to_value("deg")) - 90.0) < 0.5
    box = by_tag[("hole", "do_not_use")]
    assert (box.center.x, box.center.y) == pytest.approx((64.5, 104.5), abs=0.01)
    assert (box.width, box.height) == pytest.approx((10.0, 10.0), abs=0.01)
    assert ("hole", "resample_nan") in by_tag

    seams = Regions.read(str(written["regions_seams"]), format="ds9")
    assert len(seams) == 3 and all(isinstance(r, PolygonSkyRegion) for r in seams)
    texts = {r.meta["text"].split()[0]: r for r in seams}
    poly = texts[base_name("A")].to_pixel(w)
    assert poly.vertices.x.min() == pytest.approx(14 - 0.5, abs=0.01)
    assert poly.vertices.x.max() == pytest.approx(14 + 199.5, abs=0.01)

    sources = Regions.read(str(written["regions_sources"]), format="ds9")
    tags = [r.meta["tag"][0] for r in sources]
    table = ev.match_table
    truth = np.asarray(table["truth_row"]) >= 0
    assert tags.count("matched") == int(np.sum(table["matched"]))
    assert tags.count("spurious") == int(np.sum(~truth)) == 3
    assert tags.count("missed") == int(np.sum(truth & ~np.asarray(table["matched"])
                                              & np.asarray(table["in_footprint"])))
    first = next(r for r in sources if r.meta["tag"] == ["spurious"])
    row = table[~truth][0]
    assert first.center.ra.deg == pytest.approx(row["ra_measured"], abs=1e-7)


def test_the_report_names_each_black_line_and_its_cause(gap_run):
    from simval.report import write_report

    layout, product, _, _ = gap_run
    html = write_report(layout.root).read_text()
    section = html[html.index("Mosaic defects"):]
    assert "no_coverage" in section and "do_not_use" in section and "resample_nan" in section
    assert "no exposure covers it: a gap in the plan&#39;s footprint" in section
    assert f"{base_name('A')} (NRCB1, visit 1, dither 1) x=199 edge" in section
    assert "DO_NOT_USE|SATURATED" in section
    for kind in ("holes", "seams", "sources"):
        assert f'href="evaluation/{product.name}_{kind}.reg"' in html
    doc = json.loads(layout.report.with_suffix(".json").read_text())
    (f,) = doc["filters"]
    assert {r["cause"] for r in f["defects"]["rows"]} == {"no_coverage", "do_not_use",
                                                         "resample_nan"}


def test_defects_without_frames_are_located_with_an_unknown_cause(tmp_path):
    from simval.metrics import explain_holes, hole_mask

    data = np.full((60, 80), 1.0)
    data[10:50, 40:42] = np.nan
    holes, fp = hole_mask(data)
    report = explain_holes(holes, fp, None, tan_wcs((60, 80), CRVAL, SCALE),
                           frames_note="no cal files")
    (d,) = report.defects
    assert (d.kind, d.cause, d.x, d.n_pix) == ("black_line", "unknown", 40.5, 80)
    assert report.measurements()["hole_resample_frac"].value is None
    table = report.to_table()
    assert table.meta["frames_note"] == "no cal files" and len(table) == 1


def test_an_exposure_frame_reads_the_cal_files_gwcs_and_dq(tmp_path):
    """A cal file with a gwcs (as image2 writes it) maps pixels both ways like the
    equivalent FITS WCS, also off the array (where a gap between detectors lies)."""
    from astropy.coordinates import ICRS
    from astropy.modeling import models
    from gwcs import WCS as GWCS
    from gwcs import coordinate_frames as cf
    from stdatamodels.jwst.datamodels import ImageModel

    from simval.truth.footprints import FrameError, read_exposure_frame

    s = SCALE / 3600.0
    transform = ((models.Shift(-99.5) & models.Shift(-99.5)) | (models.Scale(-s) & models.Scale(s))
                 | models.Pix2Sky_TAN() | models.RotateNative2Celestial(*CRVAL, 180.0))
    model = ImageModel(np.zeros(FRAME_SHAPE, np.float32))
    model.meta.wcs = GWCS([(cf.Frame2D(name="detector"), transform),
                           (cf.CelestialFrame(reference_frame=ICRS(), name="world"), None)])
    model.dq = np.zeros(FRAME_SHAPE, np.uint32)
    model.dq[5, 6] = DQ["DO_NOT_USE"]
    model.save(tmp_path / "a_cal.fits")
    frame = read_exposure_frame(tmp_path / "a_cal.fits", name="a", detector="NRCB1", visit=3,
                                dither=2)
    assert (frame.wcs_source, frame.shape, frame.visit) == ("gwcs", FRAME_SHAPE, 3)
    assert frame.dq[5, 6] == 1 and frame.dq.sum() == 1
    fits_wcs = tan_wcs(FRAME_SHAPE, CRVAL, SCALE)
    x, y = np.array([0.0, 50.0, 199.0, -20.0, 230.0]), np.array([0.0, 70.0, 199.0, 10.0, -15.0])
    ra, dec = fits_wcs.all_pix2world(x, y, 0)
    assert np.allclose(frame.pixel_to_world(x, y), (ra, dec), atol=1e-10, rtol=0)
    assert np.allclose(frame.world_to_pixel(ra, dec), (x, y), atol=1e-6, rtol=0)
    with pytest.raises(FrameError, match="missing"):
        read_exposure_frame(tmp_path / "b_cal.fits", name="b", detector="NRCB1", visit=1,
                            dither=1)
