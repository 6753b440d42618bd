"""`simval run` on the MIRI imager: the shipped miri_quickstart, cut to 2 dithers, from a
fresh kit directory, offline: simulated by simval's MIRI simulator, calibrated by
calwebb_detector1 (emicorr on), image2 and image3 with the MIRI kit's own CRDS context,
evaluated like a NIRCam run, and closing within the scenario's thresholds. The same
simulation calibrated again with a derived context (photom x 1.05) is what `simval compare`
and the pytest plugin read, as for NIRCam runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: The run's extended emission: MJy/sr at the pointing, and per 0.5" image pixel.
EMISSION_CENTRE, EMISSION_SLOPE = 0.9, 0.01

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def miri_run(tmp_path_factory):
    from simval.report import write_report
    from simval.run import run_scenario
    from simval.run.evaluation import evaluate_run
    from simval.scenario import validate_scenario
    from tests.test_miri_extended import write_image

    tmp = tmp_path_factory.mktemp("miri_run")
    data = yaml.safe_load((ROOT / "scenarios" / "miri_quickstart.yaml").read_text())
    data["dither"] = {"offsets": [[0.0, 0.0], [1.16, 0.61]]}
    # extended emission rising east to west, EMISSION_CENTRE MJy/sr at the pointing
    x = np.arange(121)
    ramp = np.broadcast_to(EMISSION_CENTRE + EMISSION_SLOPE * (x - 60), (121, 121))
    image = write_image(tmp / "emission.fits", ramp, data["pointing"]["ra"],
                        data["pointing"]["dec"], 0.5)
    data["extended_emission"] = {"file": str(image), "scale": {"F1500W": 2.0}}
    scenario = validate_scenario(data, "miri_quickstart (2 dithers)", ROOT / "scenarios")
    out = tmp / "run"
    # its own kit: the derived context below must not join a kit other tests inspect
    result = run_scenario(scenario, out, workers=2, kit_dir=tmp / "kits")
    evaluation = evaluate_run(out)  # as `simval run` does after the graph
    write_report(out, verdicts=evaluation.verdicts)
    return scenario, result, evaluation


@pytest.fixture(scope="module")
def miri_photom_run(miri_run):
    """The same simulation calibrated with the MIRI kit's photom x 1.05 (a derived context)."""
    from simval.run import run_scenario
    from simval.run.evaluation import evaluate_run
    from simval.scenario import validate_scenario

    scenario, base, _ = miri_run
    data = scenario.model_dump(mode="json", exclude_unset=True)
    data["crds"] = {"kit": {"seed": 20221, "derive": {"photom_scale": 1.05}}}
    derived = validate_scenario(data, "miri_quickstart (photom x1.05)", ROOT / "scenarios")
    out = base.run_dir.parent / "photom"
    result = run_scenario(derived, out, workers=2, kit_dir=base.run_dir.parent / "kits",
                          reuse_simulation=base.run_dir)
    evaluate_run(out)
    return result


def test_miri_run_completes_with_the_miri_simulator_and_kit(miri_run):
    _, result, _ = miri_run
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete", manifest["failed_stages"]
    assert manifest["instrument"] == "MIRI"
    assert "MIRI imager simulator" in manifest["simulator"]
    assert Path(manifest["kit"]["root"]).name.startswith("miri-seed20221-")
    assert manifest["crds"]["context"].startswith("jwst_")
    assert set(manifest["products"]) == {"F770W", "F1500W"}
    refs = manifest["reference_files"]
    det1 = next(v["detector1"] for k, v in refs.items() if "detector1" in v)
    assert {"emicorr", "reset", "rscd", "dark"} <= set(det1)
    assert all(det1[k].startswith("simval_miri_") for k in ("dark", "reset", "emicorr", "rscd"))
    report = (result.run_dir / "report.html").read_text()
    assert "MIRI imager simulator" in report


def test_miri_run_simulates_the_extended_emission(miri_run):
    """The scenario's extended-emission image reaches the noiseless truth mosaic: a plane
    fitted to its 8 x 8 block medians has the image's gradient (0.02 MJy/sr per arcsec,
    x 2 in F1500W) and, at the mosaic centre (a few arcsec from the pointing), the uniform
    background plus the image's level there."""
    from astropy.io import fits

    _, result, _ = miri_run
    records = sorted((result.run_dir / "stages").glob("simulate.*.json"))
    assert records and all(json.loads(r.read_text())["info"]["extended_emission"]["file"]
                           == "emission.fits" for r in records)
    for band, sky, scale in (("F770W", 2.0, 1.0), ("F1500W", 25.0, 2.0)):
        truth = next((result.run_dir / "truth").glob(f"*_{band.lower()}_truth_i2d.fits"))
        data = fits.getdata(truth, "SCI")
        ny, nx = data.shape
        rows = []
        for i in range(8):
            for j in range(8):
                block = data[i * ny // 8:(i + 1) * ny // 8, j * nx // 8:(j + 1) * nx // 8]
                block = block[np.isfinite(block) & (block != 0)]
                if block.size > 100:
                    rows.append(((j + 0.5) * nx / 8 - nx / 2, (i + 0.5) * ny / 8 - ny / 2,
                                 np.median(block)))
        x, y, v = np.array(rows).T
        level, gx, gy = np.linalg.lstsq(np.c_[np.ones_like(x), x, y], v, rcond=None)[0]
        per_pixel = scale * EMISSION_SLOPE / 0.5 * 0.11  # MJy/sr per 0.11" mosaic pixel
        assert np.hypot(gx, gy) == pytest.approx(per_pixel, rel=0.1), band
        assert level == pytest.approx(sky + scale * EMISSION_CENTRE, abs=0.1 * scale), band


def test_miri_run_closes_within_the_thresholds(miri_run):
    _, _, evaluation = miri_run
    verdicts = evaluation.verdicts
    assert len(verdicts) == 8  # 4 thresholds x 2 filters
    assert evaluation.passed, [(v.filter, v.metric, v.value) for v in verdicts if not v.passed]
    values = {(v.filter, v.metric): v.value for v in verdicts}
    for band in ("F770W", "F1500W"):
        assert abs(values[band, "phot_bias_bright_star_mag"]) < 0.02
        assert values[band, "astrom_rms_bright_star_mas"] < 10.0


def test_miri_photom_x_1_05_reads_1_05_in_compare(miri_run, miri_photom_run, tmp_path):
    """A derived MIRI context (crds.kit.derive photom_scale 1.05) calibrates the same ramps:
    `simval compare` reads 1.05 in every filter, names photom as the one reference type
    changed and the simulation as the same."""
    from simval.compare import compare_runs, write_compare

    base = miri_run[1].run_dir
    photom = miri_photom_run.run_dir
    manifest = json.loads((photom / "manifest.json").read_text())
    assert manifest["status"] == "complete", manifest["failed_stages"]
    result = compare_runs([base, photom], n_boot=50)
    write_compare(result, tmp_path / "out")
    pair = result.pairs[0]
    for band in ("F770W", "F1500W"):
        fc = pair.filters[band]
        assert abs(fc.catalog.median_ratio / 1.05 - 1) < 0.005 and fc.catalog.n >= 5, band
        assert fc.pixels.same_grid and abs(fc.pixels.ratio_median / 1.05 - 1) < 0.005, band
    assert pair.provenance.reftypes_changed == ["photom"]
    assert pair.provenance.simulation["same_simulation"] is True
    assert (tmp_path / "out" / "compare.html").is_file()


def test_pytest_plugin_reads_a_miri_run(miri_run, pytester):
    """`pytest --simval-run` on the MIRI run: one passing item per filter and threshold."""
    run = miri_run[1].run_dir
    result = pytester.runpytest("--simval-run", str(run), "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["*miri_quickstart::F1500W::astrom_rms_bright_star_mas PASSED*"])


def test_miri_run_measures_its_10_sigma_limit(miri_run):
    """The sensitivity metric works for MIRI: 10-sigma point-source limit in an aperture of
    max(2.5 px, 1.2 lambda/D), finite and fainter in F770W than in F1500W (the 12x higher
    sky and the 2x larger aperture at 15 um)."""
    _, _, evaluation = miri_run
    filters = evaluation.document.filters
    limits = {b: filters[b]["limit_10sigma_njy"] for b in ("F770W", "F1500W")}
    assert all(m.value is not None and m.value > 0 for m in limits.values()), limits
    assert limits["F770W"].value < limits["F1500W"].value
