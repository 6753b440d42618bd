"""simval.truth on a synthetic run directory.

The run directory is made by :func:`make_run`: a real plan (two dithered F115W exposures of
NRCB1 SUB400P), the input catalog (``catalog/*.ecsv``), MIRAGE truth lists written in
MIRAGE's own text formats (checked against the readers of simval.simulate.mirage_catalogs),
minimal cal headers (``SUBSTRT`` puts the reference pixels at x, y >= 396, PHOTMJSR), MIRAGE
yaml files with ``bkgdrate``, and an i2d (gnomonic WCS, WHT). Geometry: every exposure
shares one gnomonic projection at 0.031 arcsec/pixel; exposure 2 is exposure 1 shifted by
-20 pixels in x; the mosaic pixel is exposure 1's plus (10, 10).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.coordinates import Angle
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from simval.layout import RunLayout
from simval.simulate.mirage_catalogs import read_galaxy_list, read_point_source_list
from simval.truth import (
    MIRAGE_SERSIC_FLUX_FRACTION,
    ExposureNoise,
    TruthError,
    build_truth,
    default_blend_radius_mas,
    expected_snr,
    read_truth,
    true_backgrounds,
    truth_path,
)
from tests.scenario_data import quickstart_data

ROOT = Path(__file__).resolve().parents[1]
RA0, DEC0 = 53.1625, -27.7914
SCALE_DEG = 0.031 / 3600.0
#: x shift of each exposure's pixel grid relative to exposure 1, pixels
EXPOSURE_DX = (0.0, -20.0)
#: mosaic pixel = exposure-1 pixel + this; mosaic shape (ny, nx)
MOSAIC_OFFSET = 10.0
MOSAIC_SHAPE = (420, 440)
#: MIRAGE's ADU/s of a 0-mag AB source in F115W/NRCB1 (from a real run: rate / 10**(-0.4 m))
ADU_S_AT_MAG0 = 4.993e10
PHOTMJSR = 3.2698609828948975
SUBSTRT = 1649  # NRCB1 SUB400P: reference pixels at subarray x, y >= 396

# id, type, mag, exposure-1 pixel (x, y)
SOURCES = [
    (1, "star", 20.0, (200.0, 200.0)),       # both exposures
    (2, "star", 22.0, (10.0, 200.0)),        # exposure 2 puts it at x = -10: one exposure
    (3, "star", 21.5, (398.0, 100.0)),       # exposure 1: reference pixel; exposure 2 only
    (4, "star", 23.0, (-30.0, 200.0)),       # listed, but on no array and off the mosaic
    (5, "star", 21.0, (300.0, 300.0)),       # covered, but WHT = 0 in the mosaic there
    (6, "star", 21.0, (200.0 + 0.3 / 0.031, 200.0)),  # 300 mas from star 1 (brighter)
    (7, "star", 19.0, (100.0, 300.0)),
    (8, "star", 19.5, (100.0 + 0.8 / 0.031, 300.0)),  # 800 mas from star 7: isolated
    (9, "star", 20.0, (1000.0, 1000.0)),     # in the catalog only, never listed
]
# id, mag, pixel, radius (arcsec, major axis), ellipticity, pos_angle, sersic index
GALAXIES = [
    (11, 21.0, (250.0, 150.0), 0.3, 0.2, 40.0, 1.5),
    (12, 22.5, (150.0, 350.0), 0.2, 0.5, 120.0, 3.0),
]
#: the galaxy list's RA is written this far off (MIRAGE keeps float32 RA/Dec)
GALAXY_LIST_RA_ERROR_DEG = 1e-5


def exposure_wcs(k: int) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [RA0, DEC0]
    w.wcs.cdelt = [-SCALE_DEG, SCALE_DEG]
    w.wcs.crpix = [200.5 + EXPOSURE_DX[k], 200.5]
    return w


def mosaic_wcs() -> WCS:
    w = exposure_wcs(0)
    w.wcs.crpix = [200.5 + MOSAIC_OFFSET, 200.5 + MOSAIC_OFFSET]
    return w


def sky_of(x: float, y: float) -> tuple[float, float]:
    ra, dec = exposure_wcs(0).all_pix2world([[x, y]], 0)[0]
    return float(ra), float(dec)


def make_plan(tmp: Path, *, name: str = "synth", thresholds: dict | None = None,
              background: float = 0.22, n_dithers: int = 2, bright_stars: dict | None = None):
    from simval.plan import make_plan as _make_plan
    from simval.scenario import validate_scenario

    data = quickstart_data()
    offsets = [[0.0, 0.0], [0.62, 0.0], [0.0, 0.62]][:n_dithers]
    data.update(name=name, filters=["F115W"], background_mjysr=background,
                dither={"offsets": offsets})
    if thresholds is not None:
        data["comparison"] = {"match_radius_mas": 100, "thresholds": thresholds}
    if bright_stars is not None:
        data.setdefault("comparison", {"match_radius_mas": 100})["bright_stars"] = bright_stars
    return _make_plan(validate_scenario(data, source=str(tmp / f"{name}.yaml")))


def _hms(ra: float, dec: float) -> tuple[str, str]:
    a = Angle(ra, "deg").to_string(unit="hourangle", sep=":", precision=4, pad=True)
    d = Angle(dec, "deg").to_string(unit="deg", sep=":", precision=4, pad=True,
                                    alwayssign=True)
    return a, d


def write_point_source_list(path: Path, rows: list[tuple[int, float, float, float, float,
                                                          float]]) -> None:
    """MIRAGE's ``_pointsources.list``: (index, ra, dec, x, y, mag) rows."""
    lines = [f"# Field center (degrees):   {RA0:.8f}   {DEC0:.8f} y axis rotation angle "
             "(degrees): 360.000000  image size: 0400 0400", "#",
             "#    Index   RA_(hh:mm:ss)   DEC_(dd:mm:ss)   RA_degrees      DEC_degrees     "
             "pixel_x   pixel_y    magnitude   counts/sec    counts/frame    "
             "TSO_lightcurve_catalog"]
    for idx, ra, dec, x, y, mag in rows:
        rate = ADU_S_AT_MAG0 * 10 ** (-0.4 * mag)
        h, d = _hms(ra, dec)
        lines.append(f"{idx} {h} {d}    {ra:.8f}   {dec:.8f}   {x:.3f}   {y:.3f}     "
                     f"{mag:.3f}   {rate:.6e}    {rate * 1.656:.6e}  None")
    path.write_text("\n".join(lines) + "\n")


def write_galaxy_list(path: Path, rows: list[tuple]) -> None:
    """MIRAGE's ``_galaxySources.list``: (index, ra, dec, x, y, radius_pix, e, pa, n, mag)."""
    lines = [f"# Field center (degrees):   {RA0:.8f}   {DEC0:.8f} y axis rotation angle "
             "(degrees): 360.000000  image size: 0400 0400", "",
             "index pixelx pixely RA Dec RA_degrees Dec_degrees V2 V3 radius ellipticity "
             "pos_angle sersic_index magnitude countrate_e/s counts_per_frame_e"]
    for idx, ra, dec, x, y, rad, e, pa, n, mag in rows:
        rate = ADU_S_AT_MAG0 * 10 ** (-0.4 * mag)
        h, d = _hms(ra, dec)
        f32 = [float(np.float32(v)) for v in (x, y, ra, dec, -150.0, -430.0, rad, e, pa, n,
                                                mag, rate, rate * 1.656)]
        lines.append(f"{idx} {f32[0]} {f32[1]} {h} {d} " + " ".join(str(v) for v in f32[2:]))
    path.write_text("\n".join(lines) + "\n")


def write_catalog(layout: RunLayout, sources, galaxies, *, mag_offset: dict | None = None):
    mag_offset = mag_offset or {}
    stars = Table(names=("index", "ra", "dec", "mag_f115w"), dtype=(np.int64, float, float,
                                                                   float))
    for idx, _, mag, (x, y) in sources:
        stars.add_row((idx, *sky_of(x, y), mag + mag_offset.get(idx, 0.0)))
    gals = Table(names=("index", "ra", "dec", "mag_f115w", "radius", "sersic_index",
                        "axis_ratio", "ellipticity", "pos_angle"),
                 dtype=(np.int64,) + (float,) * 8)
    for idx, mag, (x, y), r, e, pa, n in galaxies:
        gals.add_row((idx, *sky_of(x, y), mag + mag_offset.get(idx, 0.0), r, n, 1 - e, e, pa))
    layout.catalog.mkdir(parents=True, exist_ok=True)
    stars.write(layout.catalog / "stars.ecsv", format="ascii.ecsv", overwrite=True)
    gals.write(layout.catalog / "galaxies.ecsv", format="ascii.ecsv", overwrite=True)


def write_i2d(path: Path, *, data: np.ndarray | None = None, err: np.ndarray | None = None,
              wht: np.ndarray | None = None, con: np.ndarray | None = None,
              hdrtab_levels: list[float] | None = None) -> None:
    ny, nx = MOSAIC_SHAPE
    hdr = mosaic_wcs().to_header()
    hdr["BUNIT"] = "MJy/sr"
    hdr["PIXAR_SR"] = (0.031 / 206264.806) ** 2
    hdus = [fits.PrimaryHDU(), fits.ImageHDU(np.zeros((ny, nx), np.float32)
                                             if data is None else data.astype(np.float32),
                                             hdr, name="SCI")]
    if err is not None:
        hdus.append(fits.ImageHDU(err.astype(np.float32), name="ERR"))
    if con is not None:
        hdus.append(fits.ImageHDU(con.astype(np.int32), name="CON"))
    if wht is None:
        wht = default_weight()
    hdus.append(fits.ImageHDU(wht.astype(np.float32), name="WHT"))
    if hdrtab_levels is not None:
        cols = [fits.Column("FILENAME", "40A", array=[f"p_{k}_skymatch.fits" for k in
                                                      range(len(hdrtab_levels))]),
                fits.Column("BKGLEVEL", "D", array=hdrtab_levels)]
        hdus.append(fits.BinTableHDU.from_columns(cols, name="HDRTAB"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True)


def exposure_coverage(k: int) -> np.ndarray:
    """Mosaic pixels whose centres fall on exposure ``k``'s 400 x 400 array."""
    ny, nx = MOSAIC_SHAPE
    yy, xx = np.mgrid[0:ny, 0:nx]
    x = xx - MOSAIC_OFFSET + EXPOSURE_DX[k]
    y = yy - MOSAIC_OFFSET
    return (x >= -0.5) & (x < 399.5) & (y >= -0.5) & (y < 399.5)


def default_weight() -> np.ndarray:
    w = np.zeros(MOSAIC_SHAPE)
    for k in range(len(EXPOSURE_DX)):
        w += exposure_coverage(k)
    # a zero-weight patch around star 5 (exposure-1 pixel (300, 300))
    c = int(300 + MOSAIC_OFFSET)
    w[c - 3:c + 4, c - 3:c + 4] = 0.0
    return w


def make_run(tmp: Path, *, sources=SOURCES, galaxies=GALAXIES, plan=None,
             mag_offset: dict | None = None, i2d: bool = True, record_levels=None,
             not_simulated=(9,)):
    """A synthetic run directory (see the module docstring); returns (layout, plan).

    Sources with an id in ``not_simulated`` are in the catalog but in no MIRAGE list."""
    plan = plan if plan is not None else make_plan(tmp)
    layout = RunLayout(tmp / "run")
    layout.make()
    layout.plan.write_text(plan.to_json())
    write_catalog(layout, sources, galaxies, mag_offset=mag_offset)
    product = plan.products[0]
    for k, e in enumerate(plan.exposures):
        d = layout.exposure_dir(e.base_name)
        d.mkdir(parents=True, exist_ok=True)
        w = exposure_wcs(k)
        stars, gals = [], []
        for idx, _kind, mag, (x0, y0) in sources:
            if idx in not_simulated:
                continue
            ra, dec = sky_of(x0, y0)
            x, y = w.all_world2pix([[ra, dec]], 0)[0]
            stars.append((idx, ra, dec, x, y, mag))
        for idx, mag, (x0, y0), r, e_, pa, n in galaxies:
            ra, dec = sky_of(x0, y0)
            x, y = w.all_world2pix([[ra, dec]], 0)[0]
            gals.append((idx, ra + GALAXY_LIST_RA_ERROR_DEG, dec, x, y, r / 0.031, e_, pa, n,
                         mag))
        if stars:
            write_point_source_list(d / f"{e.base_name}_uncal_pointsources.list", stars)
        if gals:
            write_galaxy_list(d / f"{e.base_name}_uncal_galaxySources.list", gals)
        (d / f"{e.base_name}.yaml").write_text(yaml.safe_dump(
            {"simSignals": {"bkgdrate": e.background_mjysr / PHOTMJSR}}))
        phdr = fits.Header({"SUBSTRT1": SUBSTRT, "SUBSTRT2": SUBSTRT, "SUBSIZE1": 400,
                            "SUBSIZE2": 400})
        fits.HDUList([fits.PrimaryHDU(header=phdr),
                      fits.ImageHDU(np.zeros((2, 2), np.float32),
                                    fits.Header({"PHOTMJSR": PHOTMJSR}), name="SCI")]
                     ).writeto(layout.image2 / e.cal_name)
    pdir = layout.product_dir(product.name)
    pdir.mkdir(parents=True, exist_ok=True)
    (pdir / product.asn_name).write_text(json.dumps({"products": [
        {"name": product.name, "members": [{"expname": f"{m}_cal.fits", "exptype": "science"}
                                           for m in product.members]}]}))
    if i2d:
        write_i2d(pdir / product.i2d_name)
    if record_levels is not None:  # as the image3 stage writes them
        layout.product_file(product.name, "_background.json").write_text(json.dumps(
            {"recipe": "skymatch", "skymatch_levels_mjysr": {
                f"{m}_cal.fits": v for m, v in zip(product.members, record_levels,
                                                    strict=True)}}))
    return layout, plan


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    return make_plan(tmp_path_factory.mktemp("plan"))


@pytest.fixture(scope="module")
def run(tmp_path_factory, plan):
    layout, _ = make_run(tmp_path_factory.mktemp("truth"), plan=plan)
    return layout, plan, build_truth(layout, plan, "f115w")


def _row(truth, idx):
    return truth[int(np.flatnonzero(np.asarray(truth["id"]) == idx)[0])]


# ---------------------------------------------------------------------------------------

def test_synthetic_lists_read_back_with_mirage_readers(run):
    layout, plan, _ = run
    base = plan.exposures[0].base_name
    d = layout.exposure_dir(base)
    ps = read_point_source_list(d / f"{base}_uncal_pointsources.list")
    assert list(ps["index"]) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert ps["pixel_x"][0] == pytest.approx(200.0, abs=1e-3)
    gal = read_galaxy_list(d / f"{base}_uncal_galaxySources.list")
    assert list(gal["index"]) == [11, 12]
    assert gal["radius"][0] == pytest.approx(0.3 / 0.031, rel=1e-6)


def test_one_row_per_listed_source_joined_to_the_catalog(run):
    _, plan, truth = run
    assert list(truth["id"]) == [1, 2, 3, 4, 5, 6, 7, 8, 11, 12]  # 9 was never simulated
    assert list(truth["type"]) == ["star"] * 8 + ["galaxy"] * 2
    star1 = _row(truth, 1)
    assert star1["mag_true_ab"] == 20.0
    assert star1["flux_true_jy"] == pytest.approx(3631e-8, rel=1e-12)
    assert star1["countrate_adu_s"] == pytest.approx(ADU_S_AT_MAG0 * 1e-8, rel=1e-6)
    for col in ("ra", "dec", "mag_true_ab", "type", "id", "flux_true_jy", "in_footprint",
                "n_exposures", "has_bright_neighbour", "snr_expected"):
        assert col in truth.colnames
    assert truth.meta["filter"] == "F115W"
    assert truth.meta["product"] == plan.products[0].name


def test_galaxy_position_from_catalog_and_injected_magnitude(run):
    _, _, truth = run
    g = _row(truth, 11)
    ra, dec = sky_of(250.0, 150.0)
    assert g["ra"] == ra and g["dec"] == dec  # not the list's float32 RA (36 mas off)
    shift = -2.5 * math.log10(MIRAGE_SERSIC_FLUX_FRACTION)
    assert shift == pytest.approx(0.0015211, abs=1e-7)
    assert g["mag_catalog_ab"] == 21.0
    assert g["mag_true_ab"] == pytest.approx(21.0 + shift, abs=1e-12)
    assert g["flux_true_jy"] == pytest.approx(3631 * 10 ** (-8.4) * 0.9986, rel=1e-9)
    assert g["r_half_arcsec"] == pytest.approx(0.3)
    assert g["r_half_circ_arcsec"] == pytest.approx(0.3 * math.sqrt(0.8))
    assert g["sersic_n"] == pytest.approx(1.5)
    assert np.isnan(_row(truth, 1)["r_half_arcsec"])


def test_n_exposures_counts_science_pixels_of_each_array(run):
    _, _, truth = run
    n = dict(zip(truth["id"], truth["n_exposures"], strict=True))
    assert n == {1: 2, 2: 1, 3: 1, 4: 0, 5: 2, 6: 2, 7: 2, 8: 2, 11: 2, 12: 2}


def test_in_footprint_and_mosaic_position(run):
    _, _, truth = run
    inside = dict(zip(truth["id"], truth["in_footprint"], strict=True))
    assert inside == {1: True, 2: True, 3: True, 4: False, 5: False, 6: True, 7: True, 8: True,
                      11: True, 12: True}
    star1 = _row(truth, 1)
    assert star1["mosaic_x"] == pytest.approx(210.0, abs=1e-6)
    assert star1["mosaic_y"] == pytest.approx(210.0, abs=1e-6)


def test_bright_neighbours_within_blending_radius(run):
    _, _, truth = run
    assert truth.meta["blend_radius_mas"] == pytest.approx(13 * 31.1 + 3 * 37.0)
    flagged = [int(i) for i in truth["id"][np.asarray(truth["has_bright_neighbour"])]]
    assert flagged == [6]  # 300 mas from brighter star 1; star 8 is 800 mas from star 7
    assert default_blend_radius_mas("F444W", 0.063) == pytest.approx(13 * 63.0 + 3 * 140.0)


def test_bright_neighbour_radius_can_be_set(run, tmp_path):
    layout, plan, _ = run
    truth = build_truth(layout, plan, "F115W", blend_radius_mas=1000.0, write=False)
    flagged = [int(i) for i in truth["id"][np.asarray(truth["has_bright_neighbour"])]]
    assert flagged == [6, 8]


def test_expected_snr_follows_the_documented_model():
    one = ExposureNoise(gain_e_per_adu=2.0, readnoise_group_e=10.0, sky_adu_s=1.0, ngroups=2,
                        nints=1, tgroup_s=10.0, pixel_scale_arcsec=0.031)
    rate = np.array([100.0, 100.0, 100.0])
    # no aperture pixels: S = 100 * 2 * 10 = 2000 e-, var = 2000 (c = 1 for 2 groups)
    snr = expected_snr(rate, np.zeros(3), 1.0, np.array([[1, 1], [1, 0], [0, 0]], bool),
                       [one, one])
    assert snr == pytest.approx([math.sqrt(4000.0), math.sqrt(2000.0), 0.0])
    # one pixel of sky: var = (100 + 1) * 2 * 10 + 12 * 1 / (2 * 3) * 100 = 2220
    snr = expected_snr(rate[:1], np.array([1 / math.sqrt(math.pi)]), 1.0, np.ones((1, 1), bool),
                       [one])
    assert snr[0] == pytest.approx(2000.0 / math.sqrt(2220.0))


def test_snr_expected_in_the_table(run):
    _, _, truth = run
    snr = dict(zip(truth["id"], truth["snr_expected"], strict=True))
    assert snr[4] == 0.0                       # on no array
    assert snr[5] == pytest.approx(snr[6])     # same magnitude and coverage
    assert snr[1] > snr[6] > snr[2] > 0
    assert 100 < snr[1] < 2000                 # 20 AB mag in 2 x 6 groups of BRIGHT2


def test_truth_is_written_as_ecsv(run):
    layout, plan, truth = run
    path = truth_path(layout, plan.products[0].name)
    assert path == layout.root / "truth" / f"{plan.products[0].name}_truth.ecsv"
    back = read_truth(path)
    assert list(back["id"]) == list(truth["id"])
    assert np.array_equal(np.asarray(back["ra"]), np.asarray(truth["ra"]))
    assert back["in_footprint"].dtype == bool
    assert back.meta["blend_radius_mas"] == truth.meta["blend_radius_mas"]


def test_without_mosaic_footprint_is_coverage(tmp_path, plan):
    layout, _ = make_run(tmp_path, plan=plan, i2d=False)
    truth = build_truth(layout, plan, "F115W", write=False)
    assert list(truth["in_footprint"]) == list(np.asarray(truth["n_exposures"]) > 0)
    assert truth.meta["in_footprint"].startswith("no mosaic")


def test_catalog_that_was_not_simulated_is_refused(tmp_path, plan):
    layout, _ = make_run(tmp_path, plan=plan, mag_offset={1: 0.01})
    with pytest.raises(TruthError, match=r"star 1: MIRAGE used magnitude 20\.0000"):
        build_truth(layout, plan, "F115W", write=False)


def test_listed_source_missing_from_catalog_is_refused(tmp_path, plan):
    layout, _ = make_run(tmp_path, plan=plan)
    stars = Table.read(layout.catalog / "stars.ecsv")
    stars[stars["index"] != 3].write(layout.catalog / "stars.ecsv", overwrite=True)
    with pytest.raises(TruthError, match=r"index\(es\) \[3\]"):
        build_truth(layout, plan, "F115W", write=False)


def test_missing_inputs_are_named(tmp_path, plan):
    import shutil

    layout, _ = make_run(tmp_path, plan=plan)
    base = plan.exposures[1].base_name
    shutil.rmtree(layout.exposure_dir(base))
    with pytest.raises(FileNotFoundError, match=base):
        build_truth(layout, plan, "F115W", write=False)
    with pytest.raises(KeyError, match="no product for filter 'F200W'"):
        build_truth(layout, plan, "F200W", write=False)
    (layout.catalog / "galaxies.ecsv").unlink()
    with pytest.raises(FileNotFoundError, match=r"galaxies\.ecsv"):
        build_truth(layout, plan, "F115W", write=False)


def test_true_backgrounds_from_the_image3_background_file(tmp_path, plan):
    layout, _ = make_run(tmp_path, plan=plan, record_levels=[0.0, 0.0125])
    bkg = true_backgrounds(layout)
    assert list(bkg["exposure"]) == [e.base_name for e in plan.exposures]
    assert np.allclose(bkg["injected_mjysr"], 0.22)
    assert np.allclose(bkg["bkgdrate_adu_s"], 0.22 / PHOTMJSR)
    assert np.allclose(bkg["photmjsr"], PHOTMJSR)
    assert np.allclose(bkg["simulated_mjysr"], 0.22, rtol=1e-12)
    assert np.allclose(bkg["conversion_ratio"], 1.0, rtol=1e-12)
    assert list(bkg["skymatch_level_mjysr"]) == [0.0, 0.0125]
    assert np.isnan(bkg["seed_sky_adu_s"]).all()
    assert bkg.meta["skymatch_source"]["F115W"].endswith("_background.json")


def test_true_backgrounds_from_hdrtab_and_seed_image(tmp_path, plan):
    layout, _ = make_run(tmp_path, plan=plan)
    product = plan.products[0]
    write_i2d(layout.product_dir(product.name) / product.i2d_name, hdrtab_levels=[0.02, 0.0])
    e = plan.exposures[0]
    d = layout.exposure_dir(e.base_name)
    star = np.zeros((400, 400))
    star[200, 200] = 5.0
    sky = 0.0673
    for suffix, img in (("final", star + sky), ("ptsrc", star), ("galaxy", 0 * star)):
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(img, name="DATA")]).writeto(
            d / f"{e.base_name}_uncal_F115W_CLEAR_{suffix}_seed_image.fits")
    bkg = true_backgrounds(layout, plan)
    assert list(bkg["skymatch_level_mjysr"]) == [0.02, 0.0]
    assert bkg["seed_sky_adu_s"][0] == pytest.approx(sky, rel=1e-12)
    assert bkg["simulated_mjysr"][0] == pytest.approx(sky * PHOTMJSR, rel=1e-12)
    assert bkg["conversion_ratio"][0] == pytest.approx(sky * PHOTMJSR / 0.22, rel=1e-12)
    assert "HDRTAB" in bkg.meta["skymatch_source"]["F115W"]


def test_truth_converts_with_the_photom_mirage_simulated_with(tmp_path):
    """The truth's MJy/sr come from the photom reference in the exposure's MIRAGE yaml (the
    base instrument), so a calibration with another photom cannot move them."""
    from types import SimpleNamespace

    from astropy.io import fits
    from astropy.table import Table

    from simval.truth.exposures import mirage_photmjsr

    layout = RunLayout(tmp_path / "run")
    exp = SimpleNamespace(base_name="jw00001001001_01101_00001_nrcb1")
    assert mirage_photmjsr(layout, exp) is None  # no yaml: the caller uses the cal file's
    photom = tmp_path / "photom.fits"
    rows = Table({"filter": ["F115W", "F150W", "F150W"], "pupil": ["CLEAR", "CLEAR", "F162M"],
                  "photmjsr": [0.31, 0.27, 0.9], "uncertainty": [0.0, 0.0, 0.0]})
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(rows, name="PHOTOM")]).writeto(photom)
    d = layout.exposure_dir(exp.base_name)
    d.mkdir(parents=True)
    (d / f"{exp.base_name}.yaml").write_text(
        f"Reffiles: {{photom: {photom}}}\nReadout: {{filter: F150W, pupil: CLEAR}}\n")
    assert mirage_photmjsr(layout, exp) == pytest.approx(0.27)
