"""simval run: stage records and resume, the simple catalog, the CLI, and one end-to-end run.

The unit tests use trivial stage functions (milliseconds). The end-to-end test runs a
reduced quickstart (NRCB1 SUB400P, F115W, 2 dithers, BRIGHT2 x 3 groups) with MIRAGE and
the full pipeline on 2 Dask workers, in a fresh kit (SIMVAL_KIT_DIR in tmp), then a
median_masked copy in a second run directory (~3-4 min on 2 cores).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.table import Table

from simval.catalogs import CatalogError, mag_column, read_catalog_file
from simval.catalogs.simple import Footprint, generate_simple
from simval.layout import RunLayout
from simval.run.records import (
    BLOCKED,
    CACHED,
    COMPLETE,
    FAILED,
    StageResult,
    StageSpec,
    execute_stage,
    load_record,
)
from tests.conftest import mini_scenario
from tests.scenario_data import quickstart_data

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"


# ---------------------------------------------------------------------------------------
# Stage records and resume (trivial stage functions)
# ---------------------------------------------------------------------------------------

CALLS: list[str] = []


def _source(ctx):
    """Writes ``a.txt`` = params['text']."""
    CALLS.append(ctx.spec.stage_id)
    out = ctx.layout.root / "a.txt"
    out.write_text(ctx.params["text"])
    return StageResult({"a": out}, {"n": len(ctx.params["text"])})


def _upper(ctx):
    """Reads input ``a``, writes its upper-case copy ``b.txt``."""
    CALLS.append(ctx.spec.stage_id)
    out = ctx.layout.root / "b.txt"
    out.write_text(ctx.inputs["a"].read_text().upper())
    print("this goes to the stage log")
    return StageResult({"b": out})


def _boom(ctx):
    CALLS.append(ctx.spec.stage_id)
    raise RuntimeError("stage exploded on purpose")


def _specs(run_dir: Path, text: str = "hello", second=_upper):
    a = StageSpec("src", "test", str(run_dir), params={"text": text}, func=_source)
    b = StageSpec("up", "test", str(run_dir), uses={"a": ("src", "a")}, func=second)
    return a, b


def _run_both(run_dir: Path, **kw):
    a, b = _specs(run_dir, **kw)
    oa = execute_stage(a)
    return oa, execute_stage(b, oa)


def test_stage_runs_then_is_reused_with_unchanged_record(tmp_path):
    CALLS.clear()
    layout = RunLayout(tmp_path)
    oa, ob = _run_both(tmp_path)
    assert (oa.status, ob.status) == (COMPLETE, COMPLETE)
    assert (tmp_path / "b.txt").read_text() == "HELLO"
    rec = load_record(layout, "up")
    assert rec["status"] == "complete" and rec["inputs"]["a"]["path"] == "a.txt"
    assert rec["outputs"]["b"]["size"] == 5 and rec["wall_s"] >= 0 and rec["peak_rss_mb"] > 0
    assert rec["software"]["jwst"] and rec["parameters"] == {}
    assert "this goes to the stage log" in layout.log("up").read_text()
    before = {p.name: p.read_bytes() for p in layout.stages.iterdir()}

    CALLS.clear()
    oa, ob = _run_both(tmp_path)
    assert (oa.status, ob.status) == (CACHED, CACHED) and CALLS == []
    assert {p.name: p.read_bytes() for p in layout.stages.iterdir()} == before
    assert ob.wall_s == rec["wall_s"]  # the recorded time of the run that made it


def test_records_follow_their_schema_and_a_foreign_record_is_not_trusted(tmp_path, capsys):
    from simval.cli import main
    from simval.run.records import StageRecord

    CALLS.clear()
    layout = RunLayout(tmp_path)
    _run_both(tmp_path)
    assert main(["schema", "record"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == StageRecord.model_json_schema(by_alias=True)
    jsonschema = pytest.importorskip("jsonschema")
    rec = json.loads(layout.record("up").read_text())
    jsonschema.validate(rec, schema)
    rec["schema"] = 0  # a record of another schema version: read as absent, the stage reruns
    layout.record("up").write_text(json.dumps(rec))
    CALLS.clear()
    _, ob = _run_both(tmp_path)
    assert ob.status == COMPLETE and CALLS == ["up"]


def test_changed_parameters_rerun_the_stage_and_downstream(tmp_path):
    _run_both(tmp_path)
    CALLS.clear()
    _run_both(tmp_path, text="world")
    assert CALLS == ["src", "up"] and (tmp_path / "b.txt").read_text() == "WORLD"
    CALLS.clear()
    # Same content again: "src" reruns (its params changed), "up" sees identical input bytes.
    _run_both(tmp_path, text="hello")
    assert CALLS == ["src", "up"]
    CALLS.clear()
    _run_both(tmp_path, text="hello")
    assert CALLS == []


@pytest.mark.parametrize("damage", ["delete", "truncate", "edit_same_size"])
def test_missing_or_altered_output_is_rebuilt(tmp_path, damage):
    _run_both(tmp_path)
    out = tmp_path / "b.txt"
    if damage == "delete":
        out.unlink()
    elif damage == "truncate":
        out.write_text("HE")  # a half-written file
    else:
        out.write_text("HELLx")
    CALLS.clear()
    oa, ob = _run_both(tmp_path)
    assert CALLS == ["up"] and (oa.status, ob.status) == (CACHED, COMPLETE)
    assert out.read_text() == "HELLO"


def test_running_record_from_a_killed_run_is_not_trusted(tmp_path):
    layout = RunLayout(tmp_path)
    _run_both(tmp_path)
    rec = load_record(layout, "up")
    rec["status"] = "running"  # what a run killed mid-stage leaves behind
    layout.record("up").write_text(json.dumps(rec))
    CALLS.clear()
    _run_both(tmp_path)
    assert CALLS == ["up"] and load_record(layout, "up")["status"] == "complete"


def test_failed_stage_leaves_record_and_blocks_downstream(tmp_path):
    layout = RunLayout(tmp_path)
    a, b = _specs(tmp_path, second=_boom)
    c = StageSpec("after", "test", str(tmp_path), uses={"b": ("up", "b")}, func=_upper)
    oa = execute_stage(a)
    ob = execute_stage(b, oa)
    oc = execute_stage(c, ob)
    assert ob.status == FAILED and "stage exploded on purpose" in ob.error
    rec = load_record(layout, "up")
    assert rec["status"] == "failed" and "RuntimeError" in rec["error"]
    assert "raise RuntimeError" in (tmp_path / rec["traceback"]).read_text()
    assert oc.status == BLOCKED and oc.blocked_by == "up"
    assert load_record(layout, "after") is None
    # Fixed: the failed stage runs again, the good one is reused.
    CALLS.clear()
    oa, ob = _run_both(tmp_path)
    assert CALLS == ["up"] and ob.status == COMPLETE


def test_fork_servers_are_started_ahead_only_for_exposures_still_to_simulate(tmp_path,
                                                                               monkeypatch):
    from simval.run.executor import warm_up_simulators
    from simval.simulate import mirage_backend

    calls = []

    class Client:
        def run(self, function):
            calls.append(function)

    layout = RunLayout(tmp_path)
    sim = StageSpec("sim", "simulate", str(tmp_path),
                    params={"text": "x", "mirage_exposure": {}}, func=_source)
    other = StageSpec("other", "test", str(tmp_path), params={"text": "y"}, func=_source)
    ours = StageSpec("ours", "simulate", str(tmp_path), params={"text": "z"}, func=_source)
    assert warm_up_simulators(Client(), [other], layout) is False  # nothing to simulate
    # simval's own simulators (MIRI, coronagraphy) need no MIRAGE fork server
    assert warm_up_simulators(Client(), [ours, other], layout) is False
    assert warm_up_simulators(Client(), [sim, other], layout) is True  # no record yet
    assert calls == [mirage_backend.start_in_background]
    assert execute_stage(sim).status == COMPLETE
    assert warm_up_simulators(Client(), [sim, other], layout) is False  # resumed: all done
    monkeypatch.setenv("SIMVAL_MIRAGE_START", "spawn")
    assert mirage_backend.start_in_background() is False  # spawned children need no server


def test_dask_graph_failure_and_resume(tmp_path):
    """The executor on an in-process cluster: a failure blocks only its own branch."""
    from simval.run.executor import dask_client, run_graph

    layout = RunLayout(tmp_path)
    layout.make()
    good_a, good_b = _specs(tmp_path / "good")
    (tmp_path / "good").mkdir()
    bad_src = StageSpec("bad_src", "test", str(tmp_path), params={}, func=_boom)
    bad_next = StageSpec("bad_next", "test", str(tmp_path), uses={"a": ("bad_src", "a")},
                         func=_upper)
    specs = [good_a, good_b, bad_src, bad_next]
    with dask_client(workers=1, processes=False) as (client, how):
        assert how.workers == 1
        outcomes = run_graph(client, specs, layout)
        assert [outcomes[s.stage_id].status for s in specs] == [COMPLETE, COMPLETE, FAILED,
                                                                 BLOCKED]
        assert outcomes["bad_next"].blocked_by == "bad_src"
        again = run_graph(client, [good_a, good_b], layout)
        assert {o.status for o in again.values()} == {CACHED}


def test_manifest_names_the_failed_stage(tmp_path):
    from simval.testing import manifest_of

    layout = RunLayout(tmp_path)
    a, b = _specs(tmp_path, second=_boom)
    c = StageSpec("after", "test", str(tmp_path), uses={"b": ("up", "b")}, func=_upper)
    oa = execute_stage(a)
    ob = execute_stage(b, oa)
    outcomes = {o.stage_id: o for o in (oa, ob, execute_stage(c, ob))}

    doc = manifest_of(layout, outcomes)
    assert doc["status"] == "failed" and doc["failed_stages"] == ["up"]
    assert doc["blocked_stages"] == ["after"]
    assert doc["stages"]["up"]["traceback"] == "logs/up.traceback.txt"
    assert "stage exploded" in doc["stages"]["up"]["error"]
    assert doc["stages"]["after"]["blocked_by"] == "up"
    assert doc["versions"]["jwst"] and doc["host"]["cpu_count"]

    # the written manifest is a valid Manifest; its failure lines name stage, error, log
    from simval.manifest_schema import ManifestFileError, read_manifest
    from simval.run.manifest import write_manifest

    write_manifest(layout, doc)
    lines = read_manifest(layout.manifest).failure_lines(tmp_path)
    assert lines[0].startswith("stage up failed: RuntimeError: stage exploded on purpose")
    assert f"traceback: {tmp_path / 'logs/up.traceback.txt'}" in lines[0]
    assert lines[1] == "1 stage(s) not run because of it: after"
    # a manifest of another schema version is refused, naming file, field and version
    layout.manifest.write_text(json.dumps({**doc, "schema": 2}))
    with pytest.raises(ManifestFileError) as err:
        read_manifest(layout.manifest)
    assert str(err.value).startswith(f"{layout.manifest}: schema: schema version 2; this "
                                     "simval reads version 1")


# ---------------------------------------------------------------------------------------
# The simple catalog generator
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def quickstart_plan():
    from simval.plan import make_plan
    from simval.scenario import load_scenario

    return make_plan(load_scenario(QUICKSTART))


def test_simple_catalog_is_deterministic_and_seeded(quickstart_plan):
    kw = dict(n_stars=40, n_galaxies=25, mag_range=[19.0, 25.0])
    a = generate_simple(quickstart_plan, seed=7, **kw)
    b = generate_simple(quickstart_plan, seed=7, **kw)
    c = generate_simple(quickstart_plan, seed=8, **kw)
    for name in ("stars", "galaxies"):
        ta, tb = getattr(a, name), getattr(b, name)
        assert ta.colnames == tb.colnames
        for col in ta.colnames:
            assert np.array_equal(ta[col], tb[col])
    assert not np.array_equal(a.stars["ra"], c.stars["ra"])
    # Stars do not move when only the number of galaxies changes.
    d = generate_simple(quickstart_plan, seed=7, n_stars=40, n_galaxies=3,
                        mag_range=[19.0, 25.0])
    assert np.array_equal(a.stars["ra"], d.stars["ra"])


def test_simple_catalog_counts_ranges_and_footprint(quickstart_plan):
    cat = generate_simple(quickstart_plan, n_stars=200, n_galaxies=150, mag_range=[18, 26],
                          seed=11)
    assert len(cat.stars) == 200 and len(cat.galaxies) == 150
    assert list(cat.stars["index"]) == list(range(1, 201))
    assert list(cat.galaxies["index"]) == list(range(201, 351))
    for band in ("F115W", "F150W"):
        for t in (cat.stars, cat.galaxies):
            m = np.asarray(t[mag_column(band)])
            assert m.min() >= 18 and m.max() <= 26 and m.max() - m.min() > 6
    g = cat.galaxies
    assert np.all((g["radius"] >= 0.05) & (g["radius"] <= 1.0))
    assert np.all((g["sersic_index"] >= 0.8) & (g["sersic_index"] <= 4.0))
    assert np.all((g["ellipticity"] >= 0) & (g["ellipticity"] <= 0.7))
    assert np.allclose(g["ellipticity"], 1 - g["axis_ratio"])
    assert np.all((g["pos_angle"] >= 0) & (g["pos_angle"] < 180))
    # Fainter galaxies are smaller (the size-magnitude relation).
    mags = np.asarray(g["mag_f115w"])
    assert np.median(g["radius"][mags > 24]) < np.median(g["radius"][mags < 20])

    footprint = Footprint.of_plan(quickstart_plan)
    for t in (cat.stars, cat.galaxies):
        assert footprint.contains(t["ra"], t["dec"]).all()
    # ... and cover it: sources fall in every exposure's aperture (no margin).
    for e in quickstart_plan.exposures[:4]:
        own = Footprint.of_plan(quickstart_plan, 0.0, base_names=[e.base_name])
        assert own.contains(cat.stars["ra"], cat.stars["dec"]).sum() > 50
    # Nothing beyond the margin: a point 5" outside every aperture is refused.
    x0, x1, _, _ = footprint.bounding_box()
    from simval.catalogs.simple import from_tangent

    ra, dec = from_tangent([x1 + 5.0, x0 - 5.0], [0.0, 0.0], footprint.ra0_deg,
                           footprint.dec0_deg)
    assert not footprint.contains(ra, dec).any()


def test_catalog_tables_fit_mirage_writer(quickstart_plan, tmp_path):
    from simval.simulate.mirage_catalogs import read_mirage_catalog, write_catalogs

    cat = generate_simple(quickstart_plan, n_stars=5, n_galaxies=4, mag_range=[20, 22],
                          seed=3)
    stars, gals = cat.for_band("F150W")
    _, gal = write_catalogs(stars, gals, tmp_path, "x", filter_name="F150W")
    back = read_mirage_catalog(gal)
    assert list(back["index"]) == [6, 7, 8, 9]
    assert np.allclose(back["mag"], cat.galaxies["mag_f150w"])
    paths = cat.write(tmp_path / "cat")
    again = Table.read(paths[1], format="ascii.ecsv")
    assert np.array_equal(again["radius"], cat.galaxies["radius"])


def test_generic_file_catalog_is_split_and_cut(quickstart_plan, tmp_path):
    centre = (quickstart_plan.ra_deg, quickstart_plan.dec_deg)
    t = Table({"RA": [centre[0], centre[0] + 0.0005, centre[0] + 1.0],
               "DEC": [centre[1], centre[1], centre[1]],
               "mag": [20.0, 21.0, 22.0], "radius": [np.nan, 0.3, 0.2],
               "axis_ratio": [1.0, 0.5, 0.5], "pos_angle": [0.0, 30.0, 0.0],
               "sersic_index": [1.0, 1.0, 1.0]})
    path = tmp_path / "field.ecsv"
    t.write(path, format="ascii.ecsv")
    cat = read_catalog_file(path, "generic", ["F115W"], plan=quickstart_plan,
                            column_map={"ra": "RA", "dec": "DEC"})
    assert len(cat.stars) == 1 and len(cat.galaxies) == 1  # the third is 1 deg away
    assert cat.galaxies["ellipticity"][0] == pytest.approx(0.5)
    assert cat.meta["rows_in_file"] == 3 and cat.meta["rows_in_footprint"] == 2
    with pytest.raises(CatalogError, match=r"catalog\.format: 'dream'"):
        read_catalog_file(path, "dream", ["F115W"])
    with pytest.raises(CatalogError, match="missing column 'ra'"):
        read_catalog_file(path, "generic", ["F115W"])


# ---------------------------------------------------------------------------------------
# CLI: user errors are exit 2 with a message, no traceback
# ---------------------------------------------------------------------------------------

def test_cli_run_invalid_scenario_exits_2(tmp_path, capsys):
    from simval.cli import main

    bad = quickstart_data()
    bad["readout"]["ngroups"] = 99
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert main(["run", str(path), "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "readout.ngroups" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_cli_run_unsupported_setting_exits_2(tmp_path, capsys):
    from simval.cli import main

    data = quickstart_data()
    data["mirage_data"] = str(tmp_path)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["run", str(path), "-o", str(tmp_path / "run")]) == 2
    assert "mirage_data" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# End to end: MIRAGE + calwebb_detector1/image2/image3 on 2 Dask workers
# ---------------------------------------------------------------------------------------

def _records(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / "stages").iterdir())}


@pytest.fixture(scope="module")
def e2e(mini_run):
    """The session's reduced quickstart (tests/conftest.py ``mini_run``)."""
    return {"tmp": mini_run["tmp"], "scenario": mini_run["scenario"],
            "kit_dir": mini_run["kit_dir"], "first": mini_run["result"]}


@pytest.mark.slow
def test_e2e_products_association_and_manifest(e2e):
    from astropy.io import fits

    from simval.calibrate import cal_step_status

    res = e2e["first"]
    assert res.ok, [(o.stage_id, o.error) for o in res.failed]
    prod = res.products["F115W"]
    assert prod.i2d.name.endswith("_i2d.fits") and prod.i2d.is_file()
    assert prod.catalog.name.endswith("_cat.ecsv") and prod.catalog.is_file()
    assert len(Table.read(prod.catalog, format="ascii.ecsv")) > 3

    # The association holds only this filter's exposures.
    asn = json.loads(prod.asn.read_text())
    members = [m["expname"] for m in asn["products"][0]["members"]]
    assert len(members) == 2
    for m in members:
        assert fits.getheader(prod.asn.parent / m)["FILTER"] == "F115W"

    # tweakreg.skip: true (the quickstart's setting) shows in the mosaic.
    status = cal_step_status(prod.i2d)
    assert status["tweakreg"] == "SKIPPED" and status["resample"] == "COMPLETE"

    doc = json.loads(res.manifest.read_text())
    assert doc["status"] == "complete" and doc["failed_stages"] == []
    for pkg in ("jwst", "mirage", "crds", "stcal", "stdatamodels", "photutils", "numpy",
                "python"):
        assert doc["versions"][pkg]
    context = doc["crds"]["context"]
    assert context.startswith("jwst_") and doc["kit"]["context"] == context
    for e in json.loads((res.run_dir / "plan.json").read_text())["exposures"]:
        refs = doc["reference_files"][e["base_name"]]
        assert refs["detector1"]["crds_context"] == context
        assert refs["detector1"]["dark"].startswith("simval_nircam_dark_nrcb1")
        assert refs["image2"]["flat"].startswith("simval_nircam_flat_nrcb1_f115w")
        assert refs["image2"]["photom"].startswith("simval_nircam_photom")
    assert doc["reference_files"][prod.name]["image3"]["crds_context"] == context
    for sid, entry in doc["stages"].items():
        assert entry["status"] == COMPLETE, sid
        if sid not in ("kit",):
            assert entry["wall_s"] > 0 and entry["peak_rss_mb"] > 0, sid
    assert doc["pipeline_parameters"]["image3"]["tweakreg"] == {"skip": True}
    levels = doc["background"][prod.name]["skymatch_levels_mjysr"]
    assert set(levels) == set(members)
    sim = json.loads((res.run_dir / "stages" / f"simulate.{members[0][:-9]}.json")
                     .read_text())
    assert sim["info"]["network_attempts"] == []
    assert (res.run_dir / "scenario.yaml").read_text().startswith("name: mini")
    # the graph evaluated the run: truth, match table and metrics.json are stage outputs
    for sid in (f"truth.{prod.name}", f"evaluate.{prod.name}", "metrics"):
        assert doc["stages"][sid]["status"] == COMPLETE, sid
    assert (res.run_dir / "evaluation" / f"{prod.name}_match.ecsv").is_file()
    assert (res.run_dir / "metrics.json").is_file()


@pytest.mark.slow
def test_e2e_second_run_redoes_nothing(e2e):
    from simval.run import run_scenario

    res = e2e["first"]
    before = _records(res.run_dir)
    again = run_scenario(e2e["scenario"], res.run_dir, workers=2, kit_dir=e2e["kit_dir"])
    assert again.ok
    assert {o.status for o in again.outcomes.values()} == {CACHED}
    assert _records(res.run_dir) == before
    doc = json.loads(again.manifest.read_text())
    assert all(s["status"] == "cached" for s in doc["stages"].values())


@pytest.mark.slow
def test_e2e_deleted_rate_reruns_that_exposure_only(e2e):
    from simval.run import run_scenario

    res = e2e["first"]
    plan = json.loads((res.run_dir / "plan.json").read_text())
    victim = plan["exposures"][1]["base_name"]
    (res.run_dir / "detector1" / f"{victim}_rate.fits").unlink()
    again = run_scenario(e2e["scenario"], res.run_dir, workers=2, kit_dir=e2e["kit_dir"])
    assert again.ok
    ran = {s for s, o in again.outcomes.items() if o.status == COMPLETE}
    product = plan["products"][0]["name"]
    redone = {f"detector1.{victim}", f"image2.{victim}", f"image3.{product}"}
    assert redone <= ran  # and, where their inputs' bytes changed, the evaluation after them
    assert ran - redone <= {f"truth.{product}", f"evaluate.{product}", "metrics"}
    assert (res.run_dir / "detector1" / f"{victim}_rate.fits").is_file()


@pytest.mark.slow
def test_e2e_same_seed_same_uncal_and_median_masked_recipe(e2e):
    """A second run directory (same seed, background_recipe median_masked): identical raw
    data; the subtracted sky levels are recorded in the stage record and meta.background."""
    from astropy.io import fits
    from astropy.stats import sigma_clipped_stats

    from simval.calibrate import cal_step_status
    from simval.run import run_scenario
    from simval.run.stages import PATH_CARDS

    first = e2e["first"]
    second = run_scenario(mini_scenario(e2e["tmp"], "mini_mm", "median_masked"),
                          e2e["tmp"] / "run_b", workers=2, kit_dir=e2e["kit_dir"])
    assert second.ok, [(o.stage_id, o.error) for o in second.failed]
    plan = json.loads((first.run_dir / "plan.json").read_text())
    for e in plan["exposures"]:
        rel = Path("exposures") / e["base_name"] / f"{e['base_name']}_uncal.fits"
        a, b = first.run_dir / rel, second.run_dir / rel
        sa = json.loads((first.run_dir / "stages" / f"simulate.{e['base_name']}.json")
                        .read_text())["info"]["uncal_content_sha256"]
        sb = json.loads((second.run_dir / "stages" / f"simulate.{e['base_name']}.json")
                        .read_text())["info"]["uncal_content_sha256"]
        assert sa == sb
        # The bytes differ only where MIRAGE wrote its input paths (they name the run dir).
        with fits.open(a) as ha, fits.open(b) as hb:
            for x, y in zip(ha, hb, strict=True):
                if x.name == "ASDF":
                    continue
                diff = {k for k in set(x.header) | set(y.header)
                        if x.header.get(k) != y.header.get(k)}
                assert diff <= PATH_CARDS, (x.name, diff)
                if x.data is not None:
                    assert np.array_equal(x.data, y.data)

    prod = second.products["F115W"]
    record = json.loads((second.run_dir / "stages" / f"image3.{prod.name}.json").read_text())
    bkg = record["info"]["background"]
    assert bkg["recipe"] == "median_masked"
    assert set(bkg["subtracted_levels_mjysr"]) == set(bkg["skymatch_levels_mjysr"])
    assert cal_step_status(prod.i2d)["skymatch"] == "SKIPPED"
    from photutils.segmentation import detect_sources
    from stdatamodels.jwst import datamodels

    for member, level in bkg["subtracted_levels_mjysr"].items():
        with datamodels.open(str(prod.asn.parent / member)) as model:
            assert model.meta.background.subtracted is True
            assert model.meta.background.method == "median_masked"
            assert model.meta.background.level == pytest.approx(level)
            data = model.data
            good = np.isfinite(data) & ((model.dq & 1) == 0)
            _, _, std = sigma_clipped_stats(data[good])
            segm = detect_sources(np.where(good, data, 0.0), 3 * std, 5)
            sky = good & (segm.data == 0 if segm is not None else True)
            _, median, _ = sigma_clipped_stats(data[sky])
            assert abs(median) < 0.1 * std + 1e-3, (median, std)
    doc = json.loads(second.manifest.read_text())
    assert doc["background"][prod.name]["subtracted_levels_mjysr"] == \
        bkg["subtracted_levels_mjysr"]
    shutil.rmtree(second.run_dir, ignore_errors=True)
