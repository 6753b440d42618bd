"""simval compare: metric differences, flux and pixel ratios, provenance, checks, outputs.

Fast tests use synthetic run directories with the files a real run holds
(:func:`simval.testing.make_fake_run`: truth and catalog ECSV, an i2d with a TAN WCS,
metrics.json from the real metric functions, plan.json, manifest.json); a copy
"calibrated" with a known scale factor must read that factor. The slow tests make a real
pair: a reduced quickstart (F115W, 2 dithers) simulated and calibrated once, then
calibrated again with a kit context whose photom reference is scaled by 1.05
(``crds.kit.derive``, the simulation reused).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from simval.cli import main
from simval.compare import CompareInputError, compare_runs, load_runs, write_compare
from simval.testing import FIELD_CENTRE_DEG, PHOTOM_REFERENCE, make_fake_run, product_name
from simval.truth import read_truth
from tests.test_report import parse_html

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
RA0, DEC0 = FIELD_CENTRE_DEG
SHAPE = (180, 200)  # ny, nx
SKY = 0.2  # MJy/sr
ERR = 0.01  # MJy/sr per pixel
F115W = product_name("F115W")
DM_105 = -2.5 * math.log10(1.05)  # -0.05297 mag: B 5% brighter


THRESHOLDS = {"phot_bias_star_mag": {"abs_max": 0.03}, "completeness": {"min": 0.5}}


def make_run(root: Path, *, scale: float = 1.0, noise_seed: int = 7, truth_seed: int = 1,
             sigma_mag: float = 0.02, **options) -> Path:
    """A finished synthetic run of F115W (:func:`simval.testing.make_fake_run`): 300 stars
    and 60 galaxies of 18-26 mag on 180 x 200 pixels; the catalog detects those brighter
    than 25.5 (5 mas per axis, ``sigma_mag``) and 6 spurious ones; fluxes, mosaic and
    errors times ``scale``."""
    return make_fake_run(
        root, scale=scale, truth_seed=truth_seed, noise_seed=noise_seed, shape=SHAPE,
        thresholds=THRESHOLDS, match_radius_mas=100.0,
        truth_options={"n_stars": 300, "n_galaxies": 60, "mag_range": (18.0, 26.0)},
        catalog_options={"sigma_mag": sigma_mag, "sigma_mas": 5.0, "mag_limit": 25.5,
                         "n_spurious": 6},
        image_options={"sky_mjysr": SKY, "noise_mjysr": ERR}, **options)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return make_run(tmp_path / "base")


@pytest.fixture
def scaled(tmp_path: Path) -> Path:
    """The same data calibrated with photom x 1.05 in a derived context."""
    return make_run(tmp_path / "photom", scale=1.05, context="jwst_0002.pmap",
                    photom=PHOTOM_REFERENCE.replace(".fits", "_derived1234.fits"))


# --- known answers on synthetic runs ------------------------------------------------------

def test_a_run_compared_with_itself_differs_by_nothing(base: Path, tmp_path: Path):
    result = compare_runs([base, base], n_boot=50)
    pair = result.pairs[0]
    fc = pair.filters["F115W"]
    assert len(fc.metrics) == 20  # 18 catalog metrics + 2 image metrics in metrics.json
    for name, d in fc.metrics.items():
        assert d.difference == 0.0 or (d.a_value is None and d.difference is None), name
        if d.method == "paired bootstrap" and d.difference is not None:
            assert d.uncertainty == 0.0, name  # same sources, same detections
    assert fc.metrics["bkg_residual_mjysr"].method == "quadrature, upper bound"
    bkg = fc.metrics["bkg_residual_mjysr"]
    assert bkg.uncertainty == pytest.approx(bkg.a.uncertainty * math.sqrt(2))
    assert fc.catalog.median_ratio == 1.0 and fc.catalog.uncertainty == 0.0
    assert fc.catalog.n_matched == fc.catalog.n_a == fc.catalog.n_b
    assert fc.pixels.same_grid and fc.pixels.ratio_median == 1.0
    assert fc.pixels.diff_median_mjysr == 0.0 and fc.pixels.diff_nmad_mjysr == 0.0
    assert pair.provenance.identical and pair.verdict_changes == []
    assert len(pair.verdicts) == 2 and not any(v["changed"] for v in pair.verdicts)
    tolerances = [f"--tolerance={m}=0" for m in ("phot_bias_star_mag", "completeness",
                                                 "astrom_rms_mas", "bkg_residual_mjysr")]
    out = tmp_path / "self"
    assert main(["compare", str(base), str(base), "-o", str(out), "--n-boot", "20",
                 "--fail-on-flux-ratio", "0", *tolerances]) == 0
    doc = json.loads((out / "compare.json").read_text())
    assert doc["passed"] and len(doc["checks"]) == 5
    assert all(c["passed"] and c["difference"] == 0 for c in doc["checks"])


def test_fluxes_scaled_by_1_05_read_1_05_everywhere(base: Path, scaled: Path):
    result = compare_runs([base, scaled], n_boot=100, seed=3)
    pair = result.pairs[0]
    fc = pair.filters["F115W"]
    # catalog: the same sources, every flux x 1.05
    cat = fc.catalog
    n_detected = int(np.sum(read_truth(base / "truth" / f"{F115W}_truth.ecsv")
                            ["mag_true_ab"] < 25.5))
    assert cat.n_matched == cat.n_a == n_detected + 6  # the spurious ones match too
    assert cat.median_ratio == pytest.approx(1.05, abs=1e-9)
    assert cat.uncertainty == pytest.approx(0.0, abs=1e-9)
    assert cat.median_ratio_mag == pytest.approx(DM_105, abs=1e-9)
    # pixels: (B - sky_B) / (A - sky_A) = 1.05; sky difference 0.05 x 0.2 MJy/sr
    pix = fc.pixels
    assert pix.ratio_median == pytest.approx(1.05, abs=1e-5) and pix.ratio_n > 100
    assert pix.diff_median_mjysr == pytest.approx(0.05 * SKY, abs=2e-4)
    assert pix.sky_b_mjysr / pix.sky_a_mjysr == pytest.approx(1.05, abs=1e-4)
    # metrics: every magnitude bias moves by -0.053 mag, with a paired uncertainty ~0
    for name in ("phot_bias_star_mag", "phot_bias_galaxy_mag", "phot_bias_bright_star_mag"):
        d = fc.metrics[name]
        assert d.difference == pytest.approx(DM_105, abs=1e-6), name
        assert d.method == "paired bootstrap" and d.uncertainty < 1e-6, name
    assert fc.metrics["completeness"].difference == 0.0
    assert fc.metrics["astrom_rms_mas"].difference == pytest.approx(0.0, abs=1e-9)
    bkg = fc.metrics["bkg_residual_mjysr"]  # B's sky level is 1.05 x A's
    assert bkg.difference == pytest.approx(0.05 * (bkg.a.value + SKY), rel=1e-6)
    assert bkg.difference == pytest.approx(0.05 * SKY, abs=2e-4)
    assert fc.metrics["bkg_residual_mjysr"].method == "quadrature"  # no reuse recorded
    # the threshold |phot_bias_star_mag| <= 0.03 passes in A, fails in B
    changes = [(v.metric, v.a_passed, v.b_passed) for v in pair.verdict_changes]
    assert changes == [("phot_bias_star_mag", True, False)]
    # provenance: the context and the photom reference, nothing else
    prov = pair.provenance
    assert prov.reftypes_changed == ["photom"]
    assert prov.crds["context"] == {"a": "jwst_0001.pmap", "b": "jwst_0002.pmap"}
    assert {c.name for c in prov.reference_files} == {
        "jw00001001001_01101_00001_nrcb1", "jw00001001001_01102_00001_nrcb1", F115W}
    assert prov.parameters == {} and prov.versions == {}
    summary = prov.reftype_summary()
    assert len(summary) == 1 and summary[0]["n"] == 3
    assert summary[0]["pipelines"] == ["image2", "image3"]


def test_bootstrap_uncertainty_of_independent_noise_matches_the_formulas(tmp_path):
    """Same truth, independent noise in A and B (0.05 mag, 5 mas per axis): the paired
    bootstrap must give sigma(B - A) of
    - the 2-D RMS about zero of n star offsets: sigma_r(B - A) = sqrt(2) x 5 mas / sqrt(2n)
      (r^2 is a mean of 2-sigma^2 chi^2_2 terms: var(r) = sigma^2 / 2n);
    - the median star bias: sqrt(2) x sqrt(pi/2) x 0.05 / sqrt(n) (the bootstrap variance
      of a median converges slowly, as n^(-1/4): a looser check)."""
    a = make_run(tmp_path / "a", noise_seed=11, sigma_mag=0.05)
    b = make_run(tmp_path / "b", noise_seed=12, sigma_mag=0.05)
    ms = compare_runs([a, b], n_boot=300, seed=5, catalogs=False,
                      pixels=False).pairs[0].filters["F115W"].metrics
    rms, bias = ms["astrom_rms_mas"], ms["phot_bias_star_mag"]
    n = bias.a.n
    expected_rms = math.sqrt(2) * 5.0 / math.sqrt(2 * n)
    expected_bias = math.sqrt(2) * math.sqrt(math.pi / 2) * 0.05 / math.sqrt(n)
    print(f"bootstrap: astrom_rms {rms.uncertainty:.4f} mas (formula {expected_rms:.4f}); "
          f"phot_bias {bias.uncertainty:.5f} mag (formula {expected_bias:.5f}); n = {n}")
    assert rms.a.value == pytest.approx(5.0 * math.sqrt(2), rel=0.1)
    assert bias.method == rms.method == "paired bootstrap" and bias.n_boot == 300
    assert rms.uncertainty == pytest.approx(expected_rms, rel=0.2)
    assert bias.uncertainty == pytest.approx(expected_bias, rel=0.35)
    # the same seed gives the same numbers, another seed other numbers

    def unc(seed: int) -> float:
        return compare_runs([a, b], n_boot=20, seed=seed, catalogs=False, pixels=False
                            ).pairs[0].filters["F115W"].metrics["phot_bias_star_mag"].uncertainty

    assert unc(5) == unc(5) != unc(6)
    # another truth: the runs are resampled independently
    c = make_run(tmp_path / "c", truth_seed=2)
    d2 = compare_runs([a, c], n_boot=50, catalogs=False,
                      pixels=False).pairs[0].filters["F115W"].metrics["phot_bias_star_mag"]
    assert d2.method == "independent bootstrap" and d2.uncertainty > 0


def test_tolerances_and_flux_ratio_set_the_exit_code(base: Path, scaled: Path,
                                                     tmp_path: Path):
    common = [str(base), str(scaled), "--n-boot", "20"]
    out = tmp_path / "fail"
    assert main(["compare", *common, "-o", str(out), "--diff-fits",
                 "--tolerance", "phot_bias_star_mag=0.01",
                 "--tolerance", "completeness=0.01"]) == 1
    doc = json.loads((out / "compare.json").read_text())
    assert doc["schema"] == "simval.compare" and doc["schema_version"] == 1
    assert not doc["passed"]
    checks = {c["metric"]: c for c in doc["checks"]}
    assert not checks["phot_bias_star_mag"]["passed"] and checks["completeness"]["passed"]
    assert checks["phot_bias_star_mag"]["difference"] == pytest.approx(DM_105, abs=1e-6)
    assert "B - A = -0.05297" in checks["phot_bias_star_mag"]["message"]
    with fits.open(out / "diff_F115W.fits") as hdul:  # B - A, with A's WCS
        diff = hdul["DIFF"].data
        assert np.nanmedian(diff[40:60, 100:120]) == pytest.approx(0.05 * SKY, abs=0.003)
        assert WCS(hdul["DIFF"].header).has_celestial
        assert np.nanmedian(hdul["RATIO"].data) == pytest.approx(1.05, abs=1e-5)
    assert doc["comparisons"][0]["filters"]["F115W"]["pixels"]["diff_fits"] == "diff_F115W.fits"
    assert main(["compare", *common, "-o", str(tmp_path / "ok"),
                 "--tolerance", "phot_bias_star_mag=0.06"]) == 0
    assert main(["compare", *common, "-o", str(tmp_path / "flux1"),
                 "--fail-on-flux-ratio", "0.01"]) == 1
    assert main(["compare", *common, "-o", str(tmp_path / "flux2"), "--no-pixels",
                 "--fail-on-flux-ratio", "0.06"]) == 0
    doc = json.loads((tmp_path / "flux2" / "compare.json").read_text())
    assert doc["comparisons"][0]["filters"]["F115W"]["pixels"] is None
    assert doc["checks"][0]["b"] == pytest.approx(1.05, abs=1e-9)
    assert main(["compare", *common, "-o", str(tmp_path / "none")]) == 0  # nothing asked


def test_bad_input_is_exit_code_2_with_a_clear_message(base: Path, tmp_path: Path, capsys,
                                                       monkeypatch):
    from rich.console import Console

    monkeypatch.setattr("simval.cli.err_console", Console(stderr=True, width=500))

    def error(*args: str) -> str:
        assert main(["compare", *args, "-o", str(tmp_path / "out")]) == 2
        return " ".join(capsys.readouterr().err.split())

    assert "no such directory" in error(str(base), str(tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    assert "not a run directory" in error(str(base), str(tmp_path / "empty"))
    unevaluated = make_run(tmp_path / "unevaluated", evaluated=False)
    msg = error(str(base), str(unevaluated))
    assert "no metrics.json" in msg and f"simval report {unevaluated}" in msg
    two = make_run(tmp_path / "two", bands=("F115W", "F150W"))
    msg = error(str(base), str(two))
    assert "different filters" in msg and "F150W" in msg and "--filter F115W" in msg
    assert "at least two" in error(str(base))
    assert "Known metrics" in error(str(base), str(base), "--tolerance", "phot_bias=0.1")
    assert "METRIC=VALUE" in error(str(base), str(base), "--tolerance", "completeness")
    assert "METRIC=VALUE" in error(str(base), str(base), "--tolerance", "completeness=-1")
    assert "no metrics for filter" in error(str(base), str(two), "--filter", "F150W")
    broken = make_run(tmp_path / "broken")
    (broken / "metrics.json").write_text("{}")
    assert "metrics.json is not valid" in error(str(base), str(broken))
    assert not (tmp_path / "out").exists()
    # the common filter can be chosen
    assert main(["compare", str(base), str(two), "--filter", "F115W", "--n-boot", "0",
                 "--no-pixels", "-o", str(tmp_path / "common")]) == 0


def test_mosaics_on_different_grids_are_not_compared_pixel_by_pixel(base: Path,
                                                                    tmp_path: Path):
    moved = make_run(tmp_path / "moved", mosaic_crval=(RA0 + 0.2 / 3600, DEC0))
    result = compare_runs([base, moved], n_boot=0)
    fc = result.pairs[0].filters["F115W"]
    assert not fc.pixels.same_grid and fc.pixels.ratio_median is None
    assert "pixel grids differ" in fc.pixels.reason
    assert fc.pixels.grid_offset_mas == pytest.approx(200 * math.cos(math.radians(DEC0)),
                                                      rel=0.01)
    assert fc.catalog.median_ratio == 1.0  # the catalogs still compare
    html = write_compare(result, tmp_path / "out")["compare.html"].read_text()
    assert "different grids" in html and "pixel grids differ" in html


def test_three_runs_compare_each_with_the_first(base: Path, scaled: Path, tmp_path: Path,
                                               monkeypatch):
    faint = make_run(tmp_path / "faint", scale=0.98)
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(base), str(scaled), str(faint), "--n-boot", "10",
                 "--diff-fits", "--fail-on-flux-ratio", "0.03"]) == 1
    out = tmp_path / "compare" / "base_vs_photom_vs_faint"
    doc = json.loads((out / "compare.json").read_text())
    assert [r["label"] for r in doc["runs"]] == ["A", "B", "C"]
    pairs = {c["name"]: c for c in doc["comparisons"]}
    assert set(pairs) == {"base_vs_photom", "base_vs_faint"}
    ratios = {k: p["filters"]["F115W"]["catalog"]["median_flux_ratio"] for k, p in pairs.items()}
    assert ratios == {"base_vs_photom": pytest.approx(1.05), "base_vs_faint": pytest.approx(0.98)}
    assert [c["passed"] for c in doc["checks"]] == [False, True]
    assert sorted(p.name for p in out.glob("diff_*.fits")) == [
        "diff_F115W_base_vs_faint.fits", "diff_F115W_base_vs_photom.fits"]


def test_compare_html_is_self_contained_headline_first(base: Path, scaled: Path,
                                                       tmp_path: Path):
    result = compare_runs([base, scaled], n_boot=10,
                          tolerances={"phot_bias_star_mag": 0.01}, fail_on_flux_ratio=0.01)
    text = write_compare(result, tmp_path / "out")["compare.html"].read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text
    page = parse_html(text)
    assert not page.find_all("script") and not page.find_all("link")
    imgs = page.find_all("img")
    assert len(imgs) == 5  # 3 overlays, flux ratio, difference
    assert all(i.attrs["src"].startswith("data:image/png;base64,") for i in imgs)
    headline, band, provenance = (page.find("section", id=i) for i in
                                  ("headline", "filter-F115W", "provenance"))
    order = [page.index(s) for s in (headline, band, provenance)]
    assert order == sorted(order)
    checks = headline.find("table", cls="verdicts").find("tbody").find_all("tr")
    assert [tr.attrs["class"] for tr in checks] == ["fail", "fail"]
    assert [tr.find("td", cls="result").text for tr in checks] == ["FAIL", "FAIL"]
    assert "photom" in headline.text
    assert "1.05000 ± " in headline.text
    assert "jwst_0001.pmap → jwst_0002.pmap" in headline.text
    metrics = [tr.find("td").text for tr in band.find("details").find("tbody").find_all("tr")]
    assert "phot_bias_star_mag" in metrics
    moved = band.find("details").find_all("tr", cls="moved")
    assert "phot_bias_star_mag" in [tr.find("td").text for tr in moved]
    assert PHOTOM_REFERENCE.replace(".fits", "_derived1234.fits") in provenance.text


def test_compare_html_escapes_values_from_the_runs(base: Path, tmp_path: Path):
    evil = '<script>alert("x")</script>'
    result = compare_runs([base, base], n_boot=0, pixels=False)
    result.notes.append(f"note: {evil}")
    result.runs[1].name = evil
    text = write_compare(result, tmp_path / "out")["compare.html"].read_text()
    assert "<script" not in text.lower()
    page = parse_html(text)
    assert not page.find_all("script")
    assert page.find("title").text == f"simval compare: base vs {evil}"
    assert page.find("h1").text == f"simval compare: base vs {evil}"
    assert any(n.text == f"note: {evil}" for n in page.find_all("div", cls="note"))
    assert evil in [td.text for td in page.find("table").find_all("td")]


def test_load_runs_labels_and_unique_names(base: Path):
    runs = load_runs([base, base, base])
    assert [(r.label, r.name) for r in runs] == [("A", "base"), ("B", "base@2"),
                                                 ("C", "base@3")]
    with pytest.raises(CompareInputError, match="at least two"):
        load_runs([base])


# --- the pytest plugin's matching mode ----------------------------------------------------

@pytest.fixture(autouse=False)
def quiet(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfilterwarnings =\n"
                     "    ignore::pytest.PytestAssertRewriteWarning\n")


def test_pytest_compare_mode_one_item_per_filter_and_metric(pytester: pytest.Pytester,
                                                            quiet):
    a = make_run(pytester.path / "runs" / "base")
    b = make_run(pytester.path / "runs" / "photom", scale=1.05, context="jwst_0002.pmap")
    args = ["--simval-compare", str(a), str(b), "--simval-tolerance",
            "phot_bias_star_mag=0.01", "--simval-tolerance", "completeness=0.01",
            "-p", "no:cacheprovider"]
    result = pytester.runpytest(*args, "--co", "-q")
    assert [ln for ln in result.stdout.lines if "::" in ln] == [
        "base_vs_photom::F115W::phot_bias_star_mag", "base_vs_photom::F115W::completeness"]
    result = pytester.runpytest(*args, "--simval-fail-on-flux-ratio", "0.01", "-v",
                                "--simval-compare-output", str(pytester.path / "cmp"))
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*base_vs_photom::F115W::phot_bias_star_mag FAILED*",
        "*base_vs_photom F115W phot_bias_star_mag FAILED",
        "*A (base): *mag", "*B (photom): -0.0*mag", "*B - A: -0.05297 ± * mag",
        "*tolerance: |B - A| <= 0.01",
        "*base_vs_photom F115W flux_ratio FAILED", "*median flux ratio B/A: 1.05000 ± *",
        "*tolerance: |ratio - 1| <= 0.01",
        "*base_vs_photom: 1 passed, 2 failed*"])
    assert (pytester.path / "cmp" / "base_vs_photom" / "compare.html").is_file()
    # the same run twice: nothing moves
    result = pytester.runpytest("--simval-compare", str(a), str(a), "--simval-tolerance",
                                "phot_bias_star_mag=0", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_pytest_compare_mode_usage_errors(pytester: pytest.Pytester, quiet):
    a = make_run(pytester.path / "a")
    result = pytester.runpytest("--simval-compare", str(a), str(a))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*needs --simval-tolerance*"])
    result = pytester.runpytest("--simval-compare", str(a), str(pytester.path / "nope"),
                                "--simval-tolerance", "completeness=0.1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no such directory*"])
    result = pytester.runpytest("--simval-tolerance", "completeness=0.1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*apply to --simval-compare*"])


# --- a real pair: photom x 1.05 in a derived kit context ----------------------------------

@pytest.fixture(scope="module")
def real_pair(derived_sweep) -> tuple[Path, Path]:
    """(base, photom): one simulation, calibrated with the base context and with a context
    whose photom reference is scaled by 1.05 (the session's ``derived_sweep``)."""
    return derived_sweep["base"], derived_sweep["photom"]


@pytest.mark.slow
def test_real_photom_scaled_by_1_05_reads_1_05_and_names_photom(real_pair, tmp_path):
    base, photom = real_pair
    result = compare_runs([base, photom], fail_on_flux_ratio=0.01,
                          tolerances={"phot_bias_bright_star_mag": 0.01})
    write_compare(result, tmp_path / "out", diff_fits=True)
    pair = result.pairs[0]
    fc = pair.filters["F150W"]
    cat, pix = fc.catalog, fc.pixels
    bias = fc.metrics["phot_bias_bright_star_mag"]
    print(f"photom x1.05: median flux ratio {cat.median_ratio:.6f} ± {cat.uncertainty:.2g} "
          f"(n = {cat.n} of {cat.n_matched} matched); pixel ratio {pix.ratio_median:.6f} "
          f"(NMAD {pix.ratio_nmad:.2g}, n = {pix.ratio_n}); sky B - A "
          f"{pix.diff_median_mjysr:+.4f} MJy/sr; bright-star bias B - A "
          f"{bias.difference:+.5f} ± {bias.uncertainty:.2g} mag")
    assert abs(cat.median_ratio / 1.05 - 1) < 0.005 and cat.n >= 5
    assert cat.uncertainty < 0.005
    assert pix.same_grid and abs(pix.ratio_median / 1.05 - 1) < 0.005
    assert bias.difference == pytest.approx(DM_105, abs=0.005)
    assert bias.method == "paired bootstrap"
    assert [c.passed for c in result.checks] == [False, False] and result.exit_code == 1
    prov = pair.provenance
    assert prov.reftypes_changed == ["photom"]
    assert prov.crds["context"]["a"] != prov.crds["context"]["b"]
    assert prov.simulation["same_simulation"] is True
    assert prov.parameters == {} and prov.versions == {}
    assert (tmp_path / "out" / "diff_F150W.fits").is_file()


@pytest.mark.slow
def test_real_run_compared_with_itself(real_pair, tmp_path):
    base, _ = real_pair
    copy = tmp_path / "copy"  # a second directory with the same products
    shutil.copytree(base, copy, ignore=shutil.ignore_patterns("exposures", "detector1",
                                                              "image2", "logs", "stages"))
    measurable = [m for m, v in json.loads((base / "metrics.json").read_text())
                  ["filters"]["F150W"].items() if v["value"] is not None]
    args = ["compare", str(base), str(copy), "-o", str(tmp_path / "out"),
            "--fail-on-flux-ratio", "0", *[f"--tolerance={m}=0" for m in measurable]]
    assert main(args) == 0
    doc = json.loads((tmp_path / "out" / "compare.json").read_text())
    pair = doc["comparisons"][0]
    f = pair["filters"]["F150W"]
    assert all(m["difference"] in (0, None) for m in f["metrics"].values())
    assert all(m["uncertainty"] == 0 for m in f["metrics"].values()
               if m["uncertainty_method"] == "paired bootstrap" and m["difference"] is not None)
    assert f["catalog"]["median_flux_ratio"] == 1 and f["pixels"]["ratio"]["median"] == 1
    assert f["pixels"]["difference"]["median_mjysr"] == 0
    assert pair["verdict_changes"] == [] and pair["provenance"]["reftypes_changed"] == []
    assert len(doc["checks"]) == len(measurable) + 1 and doc["passed"]
