"""The dream_like generator: published relations, determinism, DREaM schema round trip,
scenario and CLI, and the shipped sample catalogs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from simval.catalogs import dream_like as dl
from simval.catalogs.readers import Field, ReadOptions, kpc_to_arcsec, read_dream
from tests.scenario_data import quickstart_data

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"


@pytest.fixture(scope="module")
def field_3arcmin() -> Table:
    """A 3' x 3' field to AB 28 (~3700 galaxies), drawn once."""
    return dl.generate_box(180.0, 180.0, seed=11, params=dl.DreamLikeParams(n_stars=40))


@pytest.fixture(scope="module")
def quickstart_plan():
    from simval.plan import make_plan
    from simval.scenario import load_scenario

    return make_plan(load_scenario(QUICKSTART))


# ---------------------------------------------------------------------------------------
# The relations
# ---------------------------------------------------------------------------------------

def test_number_counts_follow_the_cited_relation():
    # Normalisation: N(< 26.0 AB) = 4e5 deg^-2 (Yan et al. 1998, H <= 24.75 Vega).
    assert dl.cumulative_counts(10.0, 26.0) == pytest.approx(4.0e5, rel=1e-3)
    # Slopes d log10 n / dm: 0.40 (bright), 0.31 (21.25-26), 0.25 (faint).
    n = dl.differential_counts
    assert math.log10(n(20.0) / n(19.0)) == pytest.approx(0.40, abs=1e-9)
    assert math.log10(n(25.0) / n(24.0)) == pytest.approx(0.31, abs=1e-9)
    assert math.log10(n(28.0) / n(27.0)) == pytest.approx(0.25, abs=1e-9)
    # The CANDELS check quoted in the docs: ~220 arcmin^-2 to AB 27.
    assert dl.cumulative_counts(10.0, 27.0) / 3600 == pytest.approx(219, abs=2)


def test_number_of_galaxies_is_poisson_around_the_counts(field_3arcmin):
    g = field_3arcmin[field_3arcmin["type"] == "galaxy"]
    expected = dl.cumulative_counts(16.0, 28.0) * (180.0 * 180.0 / 3600.0**2)
    assert abs(len(g) - expected) < 4 * math.sqrt(expected), (len(g), expected)
    # Magnitudes follow the differential counts: fraction in 24-26 vs 26-28.
    m = np.asarray(g["F150W"])
    frac = np.mean((m >= 24) & (m < 26)) / np.mean(m >= 26)
    ref = dl.cumulative_counts(24, 26) / dl.cumulative_counts(26, 28)
    assert frac == pytest.approx(ref, rel=0.12)


def test_bpz_redshift_inverse_cdf_matches_the_prior():
    """Sampled z follow p(z | T, m) ∝ z^a exp(-(z/z_m)^a) of Benitez (2000)."""
    from scipy.integrate import cumulative_trapezoid

    rng = np.random.default_rng(2)
    n = 40000
    for t, m in ((0, 22.0), (1, 25.0), (2, 28.0)):
        z = dl.bpz_redshift(rng.uniform(size=n), np.full(n, t), np.full(n, m))
        a, z0, km = dl.BPZ_ALPHA[t], dl.BPZ_Z0[t], dl.BPZ_KM[t]
        zm = z0 + km * (m - 20)
        grid = np.linspace(0.01, 15, 30001)
        pdf = grid ** a * np.exp(-(grid / zm) ** a)
        cdf = cumulative_trapezoid(pdf, grid, initial=0)
        cdf /= cdf[-1]
        for q in (0.1, 0.5, 0.9):
            assert np.quantile(z, q) == pytest.approx(np.interp(q, cdf, grid), rel=0.03)
    # Type fractions at m = 20: E/S0 0.35, spiral 0.50, irregular 0.15; spirals decline
    # as exp(-0.147 (m - 20)).
    f = dl.bpz_type_fractions(np.array([20.0, 25.0]))
    assert np.allclose(f[0], [0.35, 0.50, 0.15])
    assert f[1, 1] == pytest.approx(0.50 * math.exp(-0.147 * 5))


def test_size_mass_relation_is_van_der_wel():
    rng = np.random.default_rng(4)
    n = 20000
    for quiescent, mstar, z, log_a, alpha, beta in ((False, 5e10, 0.25, 0.86, 0.22, -0.75),
                                                    (False, 1e9, 1.75, 0.86, 0.22, -0.75),
                                                    (True, 1e11, 1.0, 0.60, 0.75, -1.48)):
        r = dl.size_kpc(np.full(n, mstar), np.full(n, z), np.full(n, quiescent), rng)
        expected = log_a + alpha * math.log10(mstar / 5e10) + beta * math.log10((1 + z) / 1.25)
        assert np.median(np.log10(r)) == pytest.approx(expected, abs=0.01)
        sigma = 0.5 * np.diff(np.percentile(np.log10(r), [16, 84]))[0]
        assert sigma == pytest.approx(0.14 if quiescent else 0.18, abs=0.01)
    # Beyond z = 3 star-forming sizes follow (1+z)^-1.10 (Shibuya et al. 2015).
    r3 = np.median(dl.size_kpc(np.full(n, 1e9), np.full(n, 3.0), np.zeros(n, bool), rng))
    r7 = np.median(dl.size_kpc(np.full(n, 1e9), np.full(n, 7.0), np.zeros(n, bool), rng))
    assert math.log10(r7 / r3) == pytest.approx(-1.10 * math.log10(8 / 4), abs=0.01)


def test_model_spectra_fall_in_their_uvj_regions():
    """Williams et al. (2009): quiescent if U-V > 1.3, V-J < 1.6, U-V > 0.88 (V-J) + 0.69."""
    rng = np.random.default_rng(5)
    for quiescent in (False, True):
        p = dl.draw_sed_params(np.full(5000, quiescent), np.full(5000, 1.5), rng)
        uv = dl.rest_colour(p, 0.365, 0.551)
        vj = dl.rest_colour(p, 0.551, 1.22)
        in_box = (uv > 1.3) & (vj < 1.6) & (uv > 0.88 * vj + 0.69)
        assert in_box.mean() > 0.95 if quiescent else in_box.mean() < 0.02


def test_igm_and_lyman_break():
    z = np.array([6.5])
    lam = np.array([[0.65, 0.85, 0.95]])
    t = dl.igm_transmission(lam, z)[0]
    # 0.65 um < 912 A * 7.5: nothing; 0.85 um in the Lyman-alpha forest: exp(-tau);
    # 0.95 um > 1216 A * 7.5: transmitted.
    assert t[0] == 0.0 and t[2] == 1.0
    assert t[1] == pytest.approx(math.exp(-0.0036 * (0.85 / 0.1216) ** 3.46))


def test_no_galaxy_is_a_dropout_in_its_own_reference_band():
    """Redshifts stop where Lyman alpha reaches the reference band's pivot; before, a
    z = 13.2 galaxy of F150W 27.2 was drawn with F277W 9.4 and a 5.6" radius (it hid every
    source within 40" of it in a COSMOS-Web-like F277W/F444W mosaic)."""
    assert dl.max_redshift("F150W") == pytest.approx(1.501 / 0.1216 - 1.0, abs=0.05)
    assert dl.max_redshift("F444W") == dl.Z_RANGE[1]
    rng = np.random.default_rng(7)
    g = dl.draw_galaxies(200_000, dl.DreamLikeParams(mag_limit=28.5), ["F150W", "F277W",
                                                                       "F444W"], rng)
    assert g.z.max() <= dl.max_redshift("F150W") + 1e-9
    for band in ("F277W", "F444W"):  # redder bands at most a few mag brighter
        colour = np.asarray(g.mags["F150W"]) - np.asarray(g.mags[band])
        assert np.nanmax(colour) < 4.0, band


def test_projected_axis_ratios_of_thin_disks():
    """A thin oblate disk (B/A = 1, C/A = 0.25) seen at random: P(q < x) =
    sqrt((x^2 - C^2) / (1 - C^2))."""
    rng = np.random.default_rng(6)
    n = 60000
    q = dl.projected_axis_ratio(np.ones(n), np.full(n, 0.25), rng)
    assert q.min() >= 0.25 - 1e-9 and q.max() <= 1.0 + 1e-9
    for x in (0.4, 0.6, 0.8):
        assert np.mean(q < x) == pytest.approx(math.sqrt((x**2 - 0.0625) / 0.9375), abs=0.008)


def test_generator_is_deterministic_and_seeded():
    a = dl.generate_box(40, 40, seed=3, params=dl.DreamLikeParams(n_stars=5))
    b = dl.generate_box(40, 40, seed=3, params=dl.DreamLikeParams(n_stars=5))
    c = dl.generate_box(40, 40, seed=4, params=dl.DreamLikeParams(n_stars=5))
    assert a.colnames == b.colnames
    for col in a.colnames:
        assert np.array_equal(a[col], b[col], equal_nan=a[col].dtype.kind == "f"), col
    assert len(a) != len(c) or not np.array_equal(a["RA"], c["RA"])


def test_field_properties(field_3arcmin):
    t = field_3arcmin
    g = t[t["type"] == "galaxy"]
    s = t[t["type"] == "star"]
    assert len(s) == 40
    # positions: offsets within the 3' box about (0, 0)
    assert np.abs(np.asarray(g["RA"])).max() * 3600 <= 90.0 + 1e-6
    assert np.abs(np.asarray(g["DEC"])).max() * 3600 <= 90.0 + 1e-6
    m = np.asarray(g["F150W"])
    assert m.min() >= 16.0 and m.max() < 28.0
    # Stars: AB 18-25 in F150W, black-body colours (F115W - F150W of a 3500-6500 K star).
    sm = np.asarray(s["F150W"])
    assert sm.min() >= 18.0 and sm.max() <= 25.0
    assert (np.asarray(s["F115W"] - s["F150W"]) > -0.6).all()
    assert (np.asarray(s["F115W"] - s["F150W"]) < 0.2).all()
    # Sizes shrink toward faint magnitudes; quiescent galaxies are rarer at the faint end.
    r = kpc_to_arcsec(g["Re_maj"], g["redshift"])
    assert np.median(r[m < 24]) > 1.5 * np.median(r[m > 27])
    q = np.asarray(g["population"]) == "quiescent"
    assert q[m < 22].mean() > 3 * max(q[m > 26].mean(), 1e-3)
    # Sersic indices: medians 1.5 (star-forming) and 4 (quiescent).
    n = np.asarray(g["sersic_n"])
    assert np.median(n[~q]) == pytest.approx(1.5, rel=0.05)
    assert np.median(n[q]) == pytest.approx(4.0, rel=0.08)
    # Redshifts grow with magnitude (Benitez prior).
    z = np.asarray(g["redshift"])
    assert np.median(z[m < 24]) < np.median(z[m > 27])


def test_dream_schema_round_trip_through_the_reader(field_3arcmin):
    t = field_3arcmin
    cat = read_dream(t, ["F115W", "F150W", "F444W"], field_=Field(53.1625, -27.7914))
    g = t[t["type"] == "galaxy"]
    assert len(cat.galaxies) == len(g) and len(cat.stars) == 40
    assert np.allclose(cat.galaxies["radius"], kpc_to_arcsec(g["Re_maj"], g["redshift"]),
                       rtol=1e-6)
    assert np.array_equal(cat.galaxies["source_id"], g["ID"])
    assert np.allclose(cat.galaxies["axis_ratio"], g["axis_ratio"])
    for band in ("F115W", "F150W", "F444W"):
        assert np.array_equal(cat.galaxies[f"mag_{band.lower()}"], g[band], equal_nan=True)
    # A different cosmology changes the angular sizes by the ratio of D_A.
    other = read_dream(t, ["F150W"], field_=Field(53.1625, -27.7914),
                       options=ReadOptions(cosmology="WMAP9"))
    ratio = np.asarray(other.galaxies["radius"] / cat.galaxies["radius"])
    assert 0.95 < np.median(ratio) < 1.05 and np.std(ratio) > 0


def test_star_isolation():
    params = dl.DreamLikeParams(n_stars=25, star_isolation_arcsec=1.0)
    t = dl.generate_box(40, 40, seed=2, params=params)
    s, g = t[t["type"] == "star"], t[t["type"] == "galaxy"]
    xs, ys = np.asarray(s["RA"]) * 3600, np.asarray(s["DEC"]) * 3600
    xg, yg = np.asarray(g["RA"]) * 3600, np.asarray(g["DEC"]) * 3600
    d_sg = np.hypot(xs[:, None] - xg[None], ys[:, None] - yg[None]).min(axis=1)
    d_ss = np.hypot(xs[:, None] - xs[None], ys[:, None] - ys[None]) + np.eye(len(xs)) * 99
    assert d_sg.min() >= 1.0 - 1e-3 and d_ss.min() >= 1.0 - 1e-3


def test_generate_for_plan_and_scenario(quickstart_plan, tmp_path):

    from simval.catalogs import make_catalog
    from simval.scenario import ScenarioError, validate_scenario
    from simval.sky import Footprint

    data = quickstart_data()
    data["catalog"] = {"generator": {"kind": "dream_like", "n_stars": 12, "mag_limit": 27.0,
                                     "seed": 9}}
    s = validate_scenario(data, "case.yaml", tmp_path)
    cat = make_catalog(s, quickstart_plan)
    fp = Footprint.of_plan(quickstart_plan)
    assert len(cat.stars) == 12
    assert fp.contains(cat.stars["ra"], cat.stars["dec"]).all()
    assert fp.contains(cat.galaxies["ra"], cat.galaxies["dec"]).all()
    expected = dl.cumulative_counts(16, 27.0) * cat.meta["footprint_area_arcmin2"] / 3600
    assert abs(len(cat.galaxies) - expected) < 4 * math.sqrt(expected) + 1
    assert np.nanmax(cat.galaxies["mag_f150w"]) < 27.0
    again = make_catalog(s, quickstart_plan)
    assert np.array_equal(again.galaxies["ra"], cat.galaxies["ra"])
    for gen, match in (({"kind": "dream_like", "n_galaxies": 5}, "only meaningful with kind: "
                                                                 "simple"),
                       ({"kind": "simple", "mag_limit": 27}, "only meaningful with kind: "
                                                             "dream_like"),
                       ({"kind": "dream_like", "mag_bright": 28, "mag_limit": 27},
                        "mag_bright must be brighter"),
                       ({"kind": "dream_like", "ref_band": "F151W"}, "unknown band")):
        data["catalog"] = {"generator": gen}
        with pytest.raises(ScenarioError, match=match):
            validate_scenario(data, "case.yaml", tmp_path)


# ---------------------------------------------------------------------------------------
# Shipped samples and CLI
# ---------------------------------------------------------------------------------------

def test_shipped_quickstart_field(quickstart_plan):
    from simval.catalogs import read_catalog_file
    from simval.sky import to_tangent

    path = ROOT / "catalogs" / "quickstart_field.ecsv"
    assert path.stat().st_size < 300_000
    cat = read_catalog_file(path, "generic", ["F115W", "F150W"])
    assert len(cat.stars) == 30
    sm = np.asarray(cat.stars["mag_f150w"])
    assert sm.min() >= 18.0 and sm.max() <= 24.0
    # ~18" x 18" centred on the quickstart pointing (the SUB400P footprint + margin)
    ra = np.concatenate([cat.stars["ra"], cat.galaxies["ra"]])
    dec = np.concatenate([cat.stars["dec"], cat.galaxies["dec"]])
    x, y = to_tangent(ra, dec, 53.1625, -27.7914)
    assert -9.0 <= x.min() < -7.5 and 7.5 < x.max() <= 9.0
    assert -9.0 <= y.min() < -7.5 and 7.5 < y.max() <= 9.0
    expected = dl.cumulative_counts(16, 28) * (18 * 18 / 3600.0**2)
    assert abs(len(cat.galaxies) - expected) < 3 * math.sqrt(expected)
    assert cat.galaxies["redshift"].min() > 0
    # Cut to the quickstart footprint: most of the field, nothing outside it kept.
    cut = read_catalog_file(path, "generic", ["F115W", "F150W"], plan=quickstart_plan)
    assert 0 < len(cut.stars) <= 30 and 0 < len(cut.galaxies) <= len(cat.galaxies)
    n_file = len(cat.stars) + len(cat.galaxies)
    assert cut.meta["drops"].get("outside_footprint", 0) == \
        n_file - len(cut.stars) - len(cut.galaxies)


def test_shipped_dream_like_sample():
    from simval.catalogs import read_catalog_file

    path = ROOT / "catalogs" / "dream_like_90arcsec.ecsv"
    assert path.stat().st_size < 300_000
    cat = read_catalog_file(path, "dream", ["F150W", "F444W"], centre=(150.1, 2.2))
    assert len(cat.galaxies) > 800
    meta = Table.read(path).meta
    assert meta["schema"] == dl.SCHEMA and meta["area_arcmin2"] == pytest.approx(2.25)


def test_cli_generate(tmp_path, capsys):
    from simval.cli import main

    out = tmp_path / "f.parquet"
    assert main(["catalog", "generate", str(out), "--width", "30", "--n-stars", "3",
                 "--seed", "5", "--bands", "F115W,F150W"]) == 0
    t = Table.read(out)
    assert (t["type"] == "star").sum() == 3 and set(t.colnames) >= {"F115W", "F150W", "Re_maj"}
    assert "galaxies + 3 stars" in " ".join(capsys.readouterr().out.split())
    assert main(["catalog", "generate", str(tmp_path / "g.ecsv"), "--ra", "1"]) == 2
    assert "--ra/--dec go with --schema generic" in " ".join(capsys.readouterr().err.split())
    assert main(["catalog", "generate", str(tmp_path / "g.txt")]) == 2
    assert main(["catalog", "generate", str(tmp_path / "g.ecsv"), "--bands", "F999W"]) == 2
    assert "unknown passband 'F999W'" in " ".join(capsys.readouterr().err.split())
