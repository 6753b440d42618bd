"""Catalog readers: DREaM-style, JAGUAR, generic (incl. Parquet) and MIRAGE; conversions and
bad input."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from simval.catalogs import CatalogError, SourceCatalog, mag_column, read_catalog_file
from simval.catalogs.readers import (
    AB_NJY_ZEROPOINT,
    Field,
    ReadOptions,
    angular_diameter_distance_mpc,
    kpc_to_arcsec,
    read_dream,
    read_jaguar,
)
from simval.sky import angular_distance_deg, move_offsets
from tests.scenario_data import quickstart_data

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
CENTRE = (53.1625, -27.7914)


@pytest.fixture(scope="module")
def quickstart_plan():
    from simval.plan import make_plan
    from simval.scenario import load_scenario

    return make_plan(load_scenario(QUICKSTART))


def dream_table(n: int = 6, **overrides) -> Table:
    """A small DREaM-style table: offsets within +-5 arcsec of (0, 0)."""
    rng = np.random.default_rng(3)
    t = Table()
    t["ID"] = np.arange(101, 101 + n, dtype=np.int64)
    t["RA"] = rng.uniform(-5, 5, n) / 3600.0
    t["DEC"] = rng.uniform(-5, 5, n) / 3600.0
    t["type"] = ["galaxy"] * (n - 1) + ["star"]
    t["redshift"] = np.linspace(0.5, 3.0, n)
    t["Re_maj"] = np.linspace(1.0, 4.0, n)
    t["axis_ratio"] = np.linspace(0.3, 0.9, n)
    t["sersic_n"] = np.linspace(1.0, 4.0, n)
    t["PA"] = np.linspace(10.0, 200.0, n)
    t["F115W"] = np.linspace(22.0, 25.0, n)
    t["F150W"] = np.linspace(21.5, 24.5, n)
    for k, v in overrides.items():
        t[k] = v
    return t


# ---------------------------------------------------------------------------------------
# Conversions
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("z", [0.5, 3.0])
def test_kpc_to_arcsec_matches_astropy_angular_diameter_distance(z):
    from astropy.cosmology import WMAP9, Planck18

    for cosmo, name in ((Planck18, "Planck18"), (WMAP9, "WMAP9")):
        da_kpc = cosmo.angular_diameter_distance(z).to_value("kpc")
        expected = 5.0 / da_kpc * 206264.80624709636
        assert kpc_to_arcsec(5.0, z, name) == pytest.approx(expected, rel=1e-12)
        # The spline path (more than 64 redshifts) agrees to 1e-7.
        zs = np.full(200, z)
        zs[0] = 12.0
        got = kpc_to_arcsec(np.full(200, 5.0), zs, name)[1:]
        assert np.allclose(got, expected, rtol=1e-7, atol=0)
    # The scale (Planck18): 6.291 kpc per arcsec at z = 0.5, 7.883 at z = 3.
    assert 1.0 / kpc_to_arcsec(1.0, 0.5) == pytest.approx(6.291, abs=0.001)
    assert 1.0 / kpc_to_arcsec(1.0, 3.0) == pytest.approx(7.883, abs=0.001)


def test_angular_diameter_distance_spline_over_a_wide_range():
    from astropy.cosmology import Planck18

    z = np.geomspace(0.002, 20.0, 500)
    got = angular_diameter_distance_mpc(z)
    ref = Planck18.angular_diameter_distance(z).to_value("Mpc")
    assert np.max(np.abs(got / ref - 1)) < 1e-7


def test_offsets_move_like_astropy_sky_offset_frame():
    """Offsets about (0, 0) land where SkyOffsetFrame(origin=pointing) puts them."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord, SkyOffsetFrame

    rng = np.random.default_rng(1)
    dra, ddec = rng.uniform(-0.4, 0.4, 50), rng.uniform(-0.4, 0.4, 50)
    for ra0, dec0 in ((53.1625, -27.7914), (150.1, 2.2), (10.0, 80.0), (359.99, -89.0)):
        ra, dec = move_offsets(dra, ddec, ra0, dec0)
        frame = SkyOffsetFrame(origin=SkyCoord(ra0 * u.deg, dec0 * u.deg))
        ref = SkyCoord(lon=dra * u.deg, lat=ddec * u.deg, frame=frame).icrs
        sep = SkyCoord(ra * u.deg, dec * u.deg).separation(ref).to_value(u.deg)
        assert sep.max() < 1e-9, (ra0, dec0, sep.max())
        # A rigid rotation: the distance to the centre equals the offset's distance to (0, 0).
        d_in = SkyCoord(dra * u.deg, ddec * u.deg).separation(SkyCoord(0 * u.deg, 0 * u.deg))
        d_out = SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(ra0 * u.deg,
                                                                      dec0 * u.deg))
        assert np.allclose(d_in.deg, d_out.deg, atol=1e-11)


def test_offsets_with_an_origin_other_than_zero():
    ra, dec = move_offsets([150.2], [2.3], 53.0, -27.0, origin=(150.2, 2.3))
    assert ra[0] == pytest.approx(53.0, abs=1e-12) and dec[0] == pytest.approx(-27.0, abs=1e-12)


# ---------------------------------------------------------------------------------------
# DREaM
# ---------------------------------------------------------------------------------------

def test_dream_reader_converts_units_and_conventions():
    t = dream_table()
    cat = read_dream(t, ["F115W", "F150W"], field_=Field(*CENTRE))
    assert len(cat.stars) == 1 and len(cat.galaxies) == 5
    g = cat.galaxies
    # Stars first, then galaxies; the file's ids are kept.
    assert list(cat.stars["index"]) == [1] and list(g["index"]) == [2, 3, 4, 5, 6]
    assert list(g["source_id"]) == [101, 102, 103, 104, 105]
    assert cat.stars["source_id"][0] == 106
    r_expected = kpc_to_arcsec(t["Re_maj"][:5], t["redshift"][:5])
    assert np.allclose(g["radius"], r_expected, rtol=1e-12)
    assert g["radius"][0] == pytest.approx(1.0 / 6.291, rel=1e-3)  # 1 kpc at z = 0.5
    assert np.allclose(g["axis_ratio"], t["axis_ratio"][:5])
    assert np.allclose(g["ellipticity"], 1 - t["axis_ratio"][:5])
    assert np.allclose(g["pos_angle"], np.mod(t["PA"][:5], 180.0))
    assert g["pos_angle"][4] == pytest.approx(162.0)                 # 162 stays, 200 -> 20
    assert np.allclose(g["redshift"], t["redshift"][:5])
    assert np.allclose(g[mag_column("F150W")], t["F150W"][:5])
    # Positions: offsets moved onto the centre (within 5" * sqrt 2 of it).
    d = angular_distance_deg(g["ra"], g["dec"], *CENTRE) * 3600
    d0 = np.hypot(t["RA"][:5], t["DEC"][:5]) * 3600
    assert np.allclose(d, d0, atol=1e-6) and d.max() < 7.1


@pytest.mark.parametrize("suffix", [".ecsv", ".fits", ".parquet"])
def test_dream_files_read_alike_and_stream_in_chunks(tmp_path, suffix):
    t = dream_table(n=40)
    path = tmp_path / f"d{suffix}"
    t.write(path, overwrite=True)
    whole = read_dream(t, ["F150W"], field_=Field(*CENTRE))
    for chunk in (1_000_000, 7):
        cat = read_catalog_file(path, "dream", ["F150W"], centre=CENTRE,
                                options=ReadOptions(chunk_rows=chunk))
        for name in ("ra", "dec", "radius", "mag_f150w", "source_id"):
            assert np.array_equal(cat.galaxies[name], whole.galaxies[name]), (suffix, name)
        assert cat.meta["rows_in_file"] == 40


def test_dream_column_map_and_arcsec_radius():
    t = dream_table()
    t.rename_columns(["RA", "F150W"], ["ra_off", "H"])
    t["r_arcsec"] = np.full(len(t), 0.25)
    cat = read_dream(t, ["F150W"], field_=Field(*CENTRE),
                     options=ReadOptions(column_map={"ra": "ra_off", "mag_f150w": "H",
                                                     "radius": "r_arcsec"}))
    assert np.allclose(cat.galaxies["radius"], 0.25)
    assert np.allclose(cat.galaxies["mag_f150w"], t["H"][:5])


def test_dream_footprint_cut_and_mag_limit_are_counted(quickstart_plan, caplog):
    t = dream_table(n=6)
    t["RA"][0] = 0.1     # 6 arcmin away: outside the field circle
    t["F150W"][1] = 28.5
    t["F115W"][1] = 29.0  # fainter than the limit in both bands
    with caplog.at_level(logging.INFO, logger="simval.catalogs"):
        cat = read_catalog_file(_write(t, "d.ecsv"), "dream", ["F115W", "F150W"],
                                plan=quickstart_plan, options=ReadOptions(mag_limit=27.0))
    drops = cat.meta["drops"]
    assert drops["outside_field_circle"] == 1 and drops["fainter_than_mag_limit"] == 1
    assert len(cat.galaxies) + len(cat.stars) + drops.get("outside_footprint", 0) == 4
    assert "fainter than mag limit" in caplog.text


def _write(t: Table, name: str) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / name
    t.write(path, overwrite=True)
    return path


# ---------------------------------------------------------------------------------------
# JAGUAR
# ---------------------------------------------------------------------------------------

def jaguar_file(tmp_path: Path, name: str, n: int, id0: int, flux_f115w=None) -> Path:
    rng = np.random.default_rng(id0)
    t = Table()
    t["ID"] = np.arange(id0, id0 + n)
    t["RA"] = CENTRE[0] + rng.uniform(-3, 3, n) / 3600.0
    t["DEC"] = CENTRE[1] + rng.uniform(-3, 3, n) / 3600.0
    t["redshift"] = rng.uniform(0.5, 4.0, n)
    t["Re_maj"] = rng.uniform(0.05, 0.5, n)
    t["axis_ratio"] = rng.uniform(0.3, 1.0, n)
    t["sersic_n"] = rng.uniform(0.8, 4.0, n)
    t["position_angle"] = rng.uniform(0, 180, n)
    t["NRC_F115W_fnu"] = flux_f115w if flux_f115w is not None else rng.uniform(10, 1000, n)
    t["NRC_F150W_fnu"] = rng.uniform(10, 1000, n)
    path = tmp_path / name
    t.write(path, overwrite=True)
    return path


def test_jaguar_two_files_fluxes_to_ab_and_nonpositive_flux(tmp_path, caplog):
    sf = jaguar_file(tmp_path, "sf.fits", 5, 1, flux_f115w=np.array([100.0, 0.0, -3.0,
                                                                      np.nan, 1.0]))
    q = jaguar_file(tmp_path, "q.fits", 3, 1)   # same ids as the SF file: allowed
    with caplog.at_level(logging.INFO, logger="simval.catalogs"):
        cat = read_catalog_file(sf, "jaguar", ["F115W", "F150W"], quiescent_file=q,
                                centre=CENTRE)
    g = cat.galaxies
    assert len(g) == 8 and len(cat.stars) == 0
    assert list(g["population"]) == ["star_forming"] * 5 + ["quiescent"] * 3
    m = np.asarray(g["mag_f115w"])
    # m = 31.4 - 2.5 log10(f / nJy): 100 nJy -> 26.40, 1 nJy -> 31.40
    assert m[0] == pytest.approx(31.4 - 5.0, abs=0.001)
    assert m[4] == pytest.approx(AB_NJY_ZEROPOINT, abs=1e-9)
    assert AB_NJY_ZEROPOINT == pytest.approx(31.4, abs=0.001)
    assert np.isnan(m[1:4]).all()
    assert cat.meta["drops"]["nonpositive_flux_in_F115W"] == 3
    assert "3 source(s) with flux <= 0 or NaN" in caplog.text
    # Those three stay in F150W and are left out of the F115W MIRAGE catalogs, with a log.
    _, gals = cat.for_band("F115W")
    assert len(gals) == 5 and np.isfinite(gals["mag"]).all()
    assert len(cat.for_band("F150W")[1]) == 8
    assert np.allclose(g["radius"], np.concatenate([Table.read(sf)["Re_maj"],
                                                    Table.read(q)["Re_maj"]]))


def test_jaguar_needs_a_file():
    with pytest.raises(CatalogError, match="at least one of the star-forming and quiescent"):
        read_jaguar(None, None, ["F150W"])


# ---------------------------------------------------------------------------------------
# Generic and MIRAGE
# ---------------------------------------------------------------------------------------

def test_generic_parquet_and_nan_magnitudes(tmp_path):
    t = Table({"ra": [CENTRE[0]] * 3, "dec": [CENTRE[1], CENTRE[1] + 1e-4, CENTRE[1] + 2e-4],
               "mag_f150w": [20.0, np.nan, 99.0], "mag_f115w": [20.5, 21.0, np.nan],
               "radius": [np.nan, 0.3, np.nan], "axis_ratio": [1.0, 0.5, 1.0],
               "pos_angle": [0.0, 30.0, 0.0], "sersic_index": [1.0, 1.5, 1.0],
               "redshift": [np.nan, 1.2, np.nan]})
    path = tmp_path / "g.parquet"
    t.write(path)
    cat = read_catalog_file(path, "generic", ["F115W", "F150W"])
    # Row 3 has no magnitude in either band (NaN, 99 = no data): dropped, counted.
    assert cat.meta["drops"] == {"no_magnitude_in_F150W": 2, "no_magnitude_in_F115W": 1,
                                 "no_magnitude_in_any_band": 1}
    assert len(cat.stars) == 1 and len(cat.galaxies) == 1
    assert cat.galaxies["redshift"][0] == 1.2
    assert np.isnan(cat.galaxies["mag_f150w"][0])


def test_generic_table_round_trip(tmp_path):
    cat = read_dream(dream_table(), ["F115W", "F150W"], field_=Field(*CENTRE))
    for suffix in (".ecsv", ".fits", ".parquet"):
        path = cat.write_generic(tmp_path / f"c{suffix}")
        back = read_catalog_file(path, "generic", ["F115W", "F150W"])
        assert len(back.stars) == 1 and len(back.galaxies) == 5
        for name in ("ra", "dec", "radius", "pos_angle", "mag_f150w", "redshift", "index"):
            assert np.array_equal(back.galaxies[name], cat.galaxies[name]), name
        # axis_ratio is recomputed as 1 - ellipticity
        assert np.allclose(back.galaxies["axis_ratio"], cat.galaxies["axis_ratio"], rtol=1e-14)


def test_mirage_ascii_write_and_read_back(tmp_path):
    from simval.simulate.mirage_catalogs import write_catalogs

    cat = read_dream(dream_table(), ["F150W"], field_=Field(*CENTRE))
    stars, gals = cat.for_band("F150W")
    ps, gal = write_catalogs(stars, gals, tmp_path, "x", filter_name="F150W")
    back = read_catalog_file(gal, "mirage", ["F150W"])
    assert len(back.galaxies) == 5
    for name in ("ra", "dec", "radius", "ellipticity", "pos_angle", "sersic_index",
                 "mag_f150w"):
        assert np.allclose(back.galaxies[name], cat.galaxies[name], rtol=1e-12), name
    assert list(back.galaxies["index"]) == [2, 3, 4, 5, 6]
    assert read_catalog_file(ps, "mirage", ["F150W"]).stars["index"][0] == 1


# ---------------------------------------------------------------------------------------
# Bad input: a clear CatalogError naming file, column and expectation
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, match", [
    (lambda t: t.remove_column("Re_maj"), r"lacks column\(s\) 'Re_maj' \(radius_kpc: "
                                          r"half-light radius along the major axis, kpc\)"),
    (lambda t: t.rename_column("F150W", "H160"), r"'F150W' \(mag_f150w: AB magnitude in "
                                                 r"F150W\).*the file has: ID, RA"),
    (lambda t: t["F150W"].__setitem__(2, 51.0),
     r"column 'F150W' .* absurd magnitude.*e\.g\. 51;"),
    (lambda t: t["F150W"].__setitem__(2, -3.0),
     r"absurd magnitude.*-3; expected AB magnitudes in \[0\.0, 45\.0\]"),
    (lambda t: t["Re_maj"].__setitem__(1, -0.5), r"column 'Re_maj'.*not a finite size > 0 kpc"
                                                 r".*-0\.5 \(source id 102\)"),
    (lambda t: t["redshift"].__setitem__(0, 0.0), r"column 'redshift'.*redshift > 0"),
    (lambda t: t["axis_ratio"].__setitem__(0, 1.5), r"'axis_ratio'.*b/a in \(0, 1\]"),
    (lambda t: t["sersic_n"].__setitem__(0, 0.0), r"'sersic_n'.*Sersic index in \(0, 10\]"),
    (lambda t: t["ID"].__setitem__(3, 101), r"column 'ID' has 1 duplicated id.*101"),
    (lambda t: t["RA"].__setitem__(2, np.nan), r"column 'RA' row 2 is not a finite number"),
    (lambda t: t["DEC"].__setitem__(2, 95.0), r"column 'DEC' row 2 = 95 is outside"),
    (lambda t: t["type"].__setitem__(0, "qso"), r"column 'type' holds \['qso'\]; expected "
                                                r"'galaxy' or 'star'"),
])
def test_dream_bad_input_is_named(tmp_path, change, match):
    t = dream_table()
    change(t)
    path = tmp_path / "bad.ecsv"
    t.write(path)
    with pytest.raises(CatalogError, match=match) as err:
        read_catalog_file(path, "dream", ["F115W", "F150W"], centre=CENTRE)
    assert str(path) in str(err.value)


def test_sources_off_the_field_and_not_a_catalog(tmp_path, quickstart_plan):
    t = dream_table()
    t["RA"] += 1.0   # one degree away from the pointing
    path = tmp_path / "far.ecsv"
    t.write(path)
    with pytest.raises(CatalogError, match=r"none of the 6 sources falls on the field centred "
                                           r"on RA 53\.162500, Dec -27\.791400"):
        read_catalog_file(path, "dream", ["F150W"], plan=quickstart_plan)
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not a table\n\x00\x01")
    with pytest.raises(CatalogError, match=r"cannot read .*notes\.txt as a table"):
        read_catalog_file(junk, "dream", ["F150W"], centre=CENTRE)
    with pytest.raises(CatalogError, match=r"cannot read .*notes\.txt as a table"):
        read_catalog_file(junk, "generic", ["F150W"])
    fits_no_table = tmp_path / "img.fits"
    from astropy.io import fits

    fits.PrimaryHDU(np.zeros((2, 2))).writeto(fits_no_table)
    with pytest.raises(CatalogError, match="no table extension"):
        read_catalog_file(fits_no_table, "dream", ["F150W"], centre=CENTRE)
    with pytest.raises(CatalogError, match="file not found"):
        read_catalog_file(tmp_path / "missing.parquet", "dream", ["F150W"], centre=CENTRE)


def test_unknown_names_cosmology_and_band_are_refused(tmp_path):
    t = dream_table()
    with pytest.raises(CatalogError, match=r"unknown simval name\(s\) 'rad'.*allowed:"):
        read_dream(t, ["F150W"], field_=Field(*CENTRE),
                   options=ReadOptions(column_map={"rad": "Re_maj"}))
    with pytest.raises(CatalogError, match=r"unknown cosmology 'LCDM'; astropy provides .*"
                                           r"Planck18"):
        read_dream(t, ["F150W"], field_=Field(*CENTRE), options=ReadOptions(cosmology="LCDM"))
    with pytest.raises(ValueError, match="unknown passband 'F151W'"):
        read_dream(t, ["F151W"], field_=Field(*CENTRE))


def test_generic_bad_input(tmp_path):
    base = {"ra": [1.0, 1.0001], "dec": [2.0, 2.0], "mag": [20.0, 21.0],
            "radius": [0.2, 0.3], "axis_ratio": [0.5, 0.5], "pos_angle": [0.0, 0.0],
            "sersic_index": [1.0, 1.0]}
    for change, match in (({"radius": [-0.2, 0.3]}, r"'radius' has 1 negative value"),
                          ({"index": [5, 5]}, r"'index' has 1 duplicated value.*\[5\]"),
                          ({"axis_ratio": [1.2, 0.5]}, r"'ellipticity'.*in \[0, 1\)"),
                          ({"mag": [20.0, 77.0]}, r"absurd magnitude")):
        path = tmp_path / "g.ecsv"
        Table({**base, **change}).write(path, overwrite=True)
        with pytest.raises(CatalogError, match=match):
            read_catalog_file(path, "generic", ["F150W"])


def test_ids_that_are_not_mirage_indices_are_renumbered_and_kept(tmp_path, caplog):
    path = tmp_path / "g.ecsv"
    Table({"index": [0, 7], "ra": [1.0, 1.0001], "dec": [2.0, 2.0], "mag": [20.0, 21.0]}).write(
        path)
    with caplog.at_level(logging.INFO, logger="simval.catalogs"):
        cat = read_catalog_file(path, "generic", ["F150W"])
    assert list(cat.stars["index"]) == [1, 2] and list(cat.stars["source_id"]) == [0, 7]
    assert "renumbered" in caplog.text


def test_for_band_leaves_out_nan_magnitudes(caplog):
    t = Table({"index": [1, 2], "ra": [1.0, 1.0], "dec": [2.0, 2.1],
               "mag_f150w": [20.0, np.nan]})
    cat = SourceCatalog(stars=t, galaxies=t[:0])
    with caplog.at_level(logging.INFO, logger="simval.catalogs"):
        stars, _ = cat.for_band("F150W")
    assert list(stars["index"]) == [1] and stars["mag"][0] == 20.0
    assert "1 source(s) have no F150W magnitude" in caplog.text


# ---------------------------------------------------------------------------------------
# Scenario schema
# ---------------------------------------------------------------------------------------

def _scenario(tmp_path: Path, catalog: dict):

    from simval.scenario import validate_scenario

    data = quickstart_data()
    data["catalog"] = catalog
    return validate_scenario(data, str(tmp_path / "case.yaml"), tmp_path)


def test_scenario_catalog_fields(tmp_path, quickstart_plan):
    from simval.catalogs import catalog_spec, make_catalog
    from simval.scenario import ScenarioError

    t = dream_table(n=12)
    t.write(tmp_path / "d.ecsv")
    s = _scenario(tmp_path, {"file": "d.ecsv", "format": "dream", "cosmology": "WMAP9",
                             "mag_limit": 24.0, "margin_arcsec": 3.0})
    params, files = catalog_spec(s, quickstart_plan)
    assert params["cosmology"] == "WMAP9" and params["mag_limit"] == 24.0
    assert params["margin_arcsec"] == 3.0 and files["catalog_file"].endswith("d.ecsv")
    cat = make_catalog(s, quickstart_plan)
    assert cat.meta["cosmology"] == "WMAP9"
    assert (np.nanmin(np.vstack([cat.galaxies["mag_f115w"], cat.galaxies["mag_f150w"]]),
                      axis=0) <= 24.0).all()
    jag = jaguar_file(tmp_path, "sf.ecsv", 4, 1)
    jaguar_file(tmp_path, "q.ecsv", 2, 10)
    s = _scenario(tmp_path, {"file": jag.name, "format": "jaguar", "quiescent_file": "q.ecsv"})
    assert len(make_catalog(s, quickstart_plan).galaxies) == 6
    bad = [({"file": "d.ecsv", "format": "generic", "cosmology": "WMAP9"},
            "catalog.cosmology = 'WMAP9': not used by format 'generic'"),
           ({"file": "d.ecsv", "format": "dream", "quiescent_file": "q.ecsv"},
            "catalog.quiescent_file = 'q.ecsv': not used by format 'dream'"),
           ({"file": jag.name, "format": "jaguar", "quiescent_file": "nope.ecsv"},
            "catalog.quiescent_file = 'nope.ecsv': catalog file not found"),
           ({"file": "d.ecsv", "format": "dream", "cosmology": "LCDM"}, "catalog.cosmology"),
           ({"file": "d.ecsv", "format": "jaguar", "origin": [1.0, 2.0]},
            "origin goes with positions: offsets")]
    for block, match in bad:
        with pytest.raises(ScenarioError, match=match):
            _scenario(tmp_path, block)


def test_new_fields_leave_the_normalised_scenario_unchanged(tmp_path):
    """The keys a scenario without the new fields normalises to are the old ones, so its
    hash did not change."""
    from simval.scenario.loader import normalised

    s = _scenario(tmp_path, {"generator": {"kind": "simple", "n_stars": 30, "n_galaxies": 30,
                                           "mag_range": [18, 26]}})
    cat = normalised(s)["catalog"]
    assert set(cat) == {"file", "format", "column_map", "generator"}
    assert set(cat["generator"]) == {"kind", "n_stars", "n_galaxies", "mag_range", "seed"}
    s = _scenario(tmp_path, {"generator": {"kind": "dream_like", "mag_limit": 27.0}})
    assert normalised(s)["catalog"]["generator"]["mag_limit"] == 27.0
    assert math.isclose(s.catalog.generator.spec(5)["params"]["mag_limit"], 27.0)
    assert s.catalog.generator.spec(5)["params"]["n_stars"] is None
