"""Mock-catalog validation against the shipped reference relations, and input vs recovered
counts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from astropy.table import Table

from simval.catalogs import dream_like as dl
from simval.catalogs import validate as v
from simval.catalogs.readers import Field, read_dream

BANDS = ["F115W", "F150W", "F200W", "F444W"]


@pytest.fixture(scope="module")
def mock():
    """A 4' x 4' dream_like field to AB 28 (~6500 galaxies) read as a SourceCatalog."""
    t = dl.generate_box(240.0, 240.0, seed=21, params=dl.DreamLikeParams(n_stars=10),
                        bands=BANDS)
    cat = read_dream(t, BANDS, field_=Field(150.1, 2.2))
    cat.meta["params"] = t.meta["params"]
    return cat


def _copy(cat):
    from simval.catalogs import SourceCatalog

    return SourceCatalog(cat.stars.copy(), cat.galaxies.copy(), dict(cat.meta))


def test_reference_files_carry_their_citations():
    counts, model = v.load_references()
    assert any("Yan et al. 1998" in c for c in counts.meta["citations"])
    assert any("van der Wel et al. 2014" in c for c in model.meta["citations"])
    # H-band reference = the cited relation: bin 24.0-24.5 averages n(m) over the bin.
    row = counts[(counts["mag_lo"] == 24.0)][0]
    grid = np.linspace(24.0, 24.5, 51)
    assert row["log10_n_deg2_mag"] == pytest.approx(
        math.log10(np.mean(dl.differential_counts(grid))), abs=1e-4)
    assert np.isnan(counts[counts["mag_lo"] == 29.0]["log10_n_deg2_mag"][0])   # beyond 28
    assert set(model["band"]) >= {"F090W", "F150W", "F444W", "F770W"}


def test_a_dream_like_field_passes(mock, tmp_path):
    res = v.validate_catalog(mock, area_arcmin2=16.0, out_dir=tmp_path, label="mock")
    assert res.passed, [c.as_dict() for c in res.checks if not c.passed]
    by = {(c.name, c.band): c for c in res.checks}
    # Every kind of check judged several bins.
    assert by[("counts", "F150W")].n_bins_judged >= 8
    assert by[("log10_radius", "F150W")].n_bins_judged >= 8
    assert by[("colour", "F444W")].n_bins_judged >= 8
    assert by[("log10_1pz", "F150W")].n_bins_judged >= 8
    # The counts agree with the published H-band relation: < 0.25 dex in every judged bin,
    # < 0.06 dex where a bin holds >= 100 galaxies (Poisson 0.04 dex).
    assert by[("counts", "F150W")].max_abs_deviation < 0.25
    rows = res.bins[(res.bins["quantity"] == "log10_counts") & (res.bins["band"] == "F150W")
                    & (res.bins["n"] >= 100) & res.bins["judged"]]
    assert len(rows) >= 4 and np.abs(rows["deviation"]).max() < 0.06
    summary = json.loads((tmp_path / "validation_summary.json").read_text())
    assert summary["passed"] is True and summary["n_galaxies"] == len(mock.galaxies)
    assert summary["ref_band_limit"] == 28.0
    for name in ("counts.png", "sizes.png", "colours.png", "redshift.png",
                 "validation_bins.ecsv"):
        assert (tmp_path / name).stat().st_size > 1000, name
    bins = Table.read(tmp_path / "validation_bins.ecsv")
    assert set(bins["quantity"]) == {"log10_counts", "log10_radius", "log10_1pz", "colour"}


@pytest.mark.parametrize("spoil, expected", [
    ("half_the_galaxies", {("counts", "F150W")}),                       # -0.30 dex
    ("sizes_halved", {("log10_radius", "F150W")}),                      # -0.30 dex
    # +0.6 mag in F444W: its colours, and its counts (shifted by 0.6 mag ~ 0.17 dex)
    ("redder_f444w", {("colour", "F444W"), ("counts", "F444W")}),
])
def test_a_spoiled_field_fails_the_right_check(mock, spoil, expected):
    cat = _copy(mock)
    g = cat.galaxies
    if spoil == "half_the_galaxies":
        cat.galaxies = g[::2]
    elif spoil == "sizes_halved":
        g["radius"] = g["radius"] * 0.5
    else:
        g["mag_f444w"] = g["mag_f444w"] + 0.6
    res = v.validate_catalog(cat, area_arcmin2=16.0)
    failed = {(c.name, c.band) for c in res.checks if not c.passed}
    assert failed == expected


def test_area_from_positions_and_limit_from_magnitudes(mock):
    cat = _copy(mock)
    cat.meta.pop("params")
    res = v.validate_catalog(cat)
    assert res.summary["area_arcmin2"] == pytest.approx(16.0, rel=0.02)
    assert res.summary["area"].startswith("bounding box")
    assert 27.9 < res.summary["ref_band_limit"] < 28.0


def test_recovered_vs_input_counts_numbers():
    t = v.recovered_vs_input_counts([20.1, 20.2, 20.7, 21.3, np.nan], [20.15, 20.8, 25.0],
                                    2.0, band="F150W", bins=[20.0, 20.5, 21.0, 21.5],
                                    matched_input_mags=[20.1, 20.7])
    assert list(t["n_input"]) == [2, 1, 1]
    assert list(t["n_recovered"]) == [1, 1, 0]
    assert list(t["n_matched"]) == [1, 1, 0]
    assert np.allclose(t["density_input"], [2.0, 1.0, 1.0])         # n / 2 arcmin2 / 0.5 mag
    assert np.allclose(t["density_recovered"], [1.0, 1.0, 0.0])
    assert np.allclose(t["ratio"], [0.5, 1.0, 0.0])
    assert np.allclose(t["completeness"], [0.5, 1.0, 0.0])
    # Reference: the H-band relation, per arcmin^2: interpolated bin averages at 20.25 ...
    counts, _ = v.load_references()
    mid = 0.5 * (np.asarray(counts["mag_lo"]) + np.asarray(counts["mag_hi"]))
    expected = 10 ** np.interp(20.25, mid, counts["log10_n_deg2_mag"]) / 3600
    assert t["density_reference"][0] == pytest.approx(expected, rel=1e-12)
    assert t["density_reference"][0] == pytest.approx(dl.differential_counts(20.25) / 3600,
                                                      rel=0.01)
    assert t.meta == {"band": "F150W", "area_arcmin2": 2.0, "reference": "number_counts_h.ecsv"}
    other = v.recovered_vs_input_counts([26.1], [26.2], 1.0, band="F444W")
    assert other.meta["reference"] == "model_relations.ecsv"
    assert np.isfinite(other["density_reference"][other["mag_lo"] == 26.0][0])
    none = v.recovered_vs_input_counts([26.1], [26.2], 1.0, band="F2550W", reference=True)
    assert none.meta["reference"] == "none" and np.isnan(none["density_reference"]).all()
    with pytest.raises(ValueError, match="area_arcmin2 must be > 0"):
        v.recovered_vs_input_counts([20.0], [20.0], 0.0, band="F150W")
    with pytest.raises(ValueError, match="increasing"):
        v.recovered_vs_input_counts([20.0], [20.0], 1.0, band="F150W", bins=[21, 20])


def test_cli_validate_exit_codes(tmp_path, capsys):
    from simval.cli import main

    good = tmp_path / "good.ecsv"
    t = dl.generate_box(180.0, 180.0, seed=8, bands=["F150W", "F200W"])
    t.write(good)
    assert main(["catalog", "validate", str(good), "--out", str(tmp_path / "v1"),
                 "--no-plots"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "passed" in out and "(given)" in out      # area from the file's metadata
    bad = tmp_path / "bad.ecsv"
    t["Re_maj"] = t["Re_maj"] * 3.0
    t.write(bad)
    assert main(["catalog", "validate", str(bad), "--out", str(tmp_path / "v2"),
                 "--no-plots"]) == 1
    assert "failed" in capsys.readouterr().out
    junk = tmp_path / "junk.ecsv"
    junk.write_text("# %ECSV 1.0\nnot yaml: [\n")
    assert main(["catalog", "validate", str(junk)]) == 2
    assert "cannot read" in " ".join(capsys.readouterr().err.split())
    assert main(["catalog", "validate", str(good), "--column-map", "ra"]) == 2
    assert "NAME=COLUMN" in capsys.readouterr().err


def test_cli_convert(tmp_path, capsys):
    from simval.catalogs import read_catalog_file
    from simval.cli import main

    src = tmp_path / "d.ecsv"
    dl.generate_box(30.0, 30.0, seed=8, params=dl.DreamLikeParams(n_stars=4),
                    bands=["F115W", "F150W"]).write(src)
    generic = tmp_path / "g.parquet"
    assert main(["catalog", "convert", str(src), str(generic), "--ra", "53.1", "--dec",
                 "-27.8"]) == 0
    a = read_catalog_file(generic, "generic", ["F150W"])
    assert len(a.stars) == 4 and abs(np.median(a.galaxies["ra"]) - 53.1) < 0.01
    back = tmp_path / "d2.ecsv"
    assert main(["catalog", "convert", str(generic), str(back), "--format", "generic",
                 "--to", "dream", "--ra", "53.1", "--dec", "-27.8"]) == 0
    b = read_catalog_file(back, "dream", ["F150W"], centre=(53.1, -27.8))
    assert np.allclose(b.galaxies["radius"], a.galaxies["radius"], rtol=1e-9)
    assert np.allclose(b.galaxies["ra"], a.galaxies["ra"], atol=1e-10)
    mirage_dir = tmp_path / "mirage"
    assert main(["catalog", "convert", str(src), str(mirage_dir), "--to", "mirage",
                 "--bands", "F115W,F150W"]) == 0
    assert sorted(p.name for p in mirage_dir.iterdir()) == [
        "d_f115w_galaxies.cat", "d_f115w_pointsources.cat", "d_f150w_galaxies.cat",
        "d_f150w_pointsources.cat"]
