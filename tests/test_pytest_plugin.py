"""The pytest plugin (entry point ``pytest11`` ``simval``), run inside ``pytester`` sessions.

No pipeline runs here: ``--simval-run`` reads a fake finished run, and the ``--simval``
tests replace :func:`simval.run.run_scenario` and :func:`simval.run.evaluate_run`
with fakes (installed by the inner session's conftest, removed when it ends).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from simval.metrics_schema import read_metrics
from simval.report.rundir import format_value
from simval.testing import make_fake_run, product_name
from tests.scenario_data import quickstart_data

pytest_plugins = ["pytester"]

QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml"
BANDS = ("F115W", "F150W")
THRESHOLDS = {
    "phot_bias_bright_star_mag": {"all": {"abs_max": 0.02}},
    "astrom_rms_mas": {"all": {"max": 10.0}},
    "completeness_snr20": {"all": {"min": 0.95}},
}


@pytest.fixture(autouse=True)
def quiet_rewrite_warning(pytester: pytest.Pytester) -> None:
    """The inner sessions run in this process, where simval is already imported, so pytest
    warns that it cannot assertion-rewrite the plugin's package; that is expected here."""
    pytester.makeini("[pytest]\nfilterwarnings =\n"
                     "    ignore::pytest.PytestAssertRewriteWarning\n")


def fake_run(root: Path, *, status: str = "complete", bias150: float = -0.031) -> Path:
    """A finished run of two filters with three thresholds
    (:func:`simval.testing.make_fake_run`): F150W's fluxes are off by ``bias150`` mag, so
    its bright-star bias fails ``|x| <= 0.02`` and the other 5 checks pass."""
    return make_fake_run(root, bands=BANDS, status=status, thresholds=THRESHOLDS,
                         scale={"F150W": 10 ** (-0.4 * bias150)},
                         scenario=("quickstart", "0123456789abcdef"))


def test_entry_point_is_registered():
    eps = [e for e in entry_points(group="pytest11") if e.name == "simval"]
    assert [e.value for e in eps] == ["simval.pytest_plugin"], \
        "run `.venv/bin/pip install -e . --no-deps` to register the entry point"


def test_finished_run_gives_one_item_per_filter_and_metric(pytester: pytest.Pytester):
    run = fake_run(pytester.path / "runs" / "quickstart")
    result = pytester.runpytest("--simval-run", str(run), "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, failed=1)
    ids = [f"quickstart::{b}::{m}" for b in ("F115W", "F150W") for m in THRESHOLDS]
    for nodeid in ids:
        outcome = "FAILED" if nodeid == "quickstart::F150W::phot_bias_bright_star_mag" \
            else "PASSED"
        result.stdout.fnmatch_lines([f"{nodeid} {outcome}*"])
    # the failure shows the measured value (the run's -0.031 mag), the limit and the
    # sample size
    bias = read_metrics(run / "metrics.json").get("F150W", "phot_bias_bright_star_mag")
    assert bias.value == pytest.approx(-0.031, abs=0.006) and bias.n >= 10
    measured = format_value(bias.value, bias.uncertainty, "mag")
    result.stdout.fnmatch_lines(["*quickstart F150W phot_bias_bright_star_mag FAILED*",
                                 f"*measured: {measured} (n = {bias.n})*",
                                 "*required: |x| <= 0.02*"])
    assert "Traceback" not in result.stdout.str()
    assert not (run / "report.html").exists()  # reading a run writes nothing


def test_collect_only_lists_the_ids(pytester: pytest.Pytester):
    run = fake_run(pytester.path / "quick")
    result = pytester.runpytest("--simval-run", str(run), "--co", "-q")
    lines = [ln for ln in result.stdout.lines if ln.startswith("quickstart::")]
    assert lines == [f"quickstart::{b}::{m}" for b in ("F115W", "F150W") for m in THRESHOLDS]
    # a directory of runs works too; two runs of the same scenario get distinct ids
    fake_run(pytester.path / "many" / "a")
    fake_run(pytester.path / "many" / "b")
    result = pytester.runpytest("--simval-run", str(pytester.path / "many"), "--co", "-q",
                                "--simval-run", str(pytester.path / "many" / "a"))
    result.stdout.fnmatch_lines(["*12 tests collected*"])  # a given twice is judged once
    assert any(ln.startswith("quickstart@b::F115W::") for ln in result.stdout.lines)
    # -k selects as usual
    result = pytester.runpytest("--simval-run", str(run), "-k", "F150W and bias",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)


def test_failed_finished_run_is_one_failing_item(pytester: pytest.Pytester):
    run = fake_run(pytester.path / "failed", status="failed")
    result = pytester.runpytest("--simval-run", str(run), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    stage = f"image3.{product_name('F115W')}"
    result.stdout.fnmatch_lines([f"*stage {stage} failed: ValueError: resample found no "
                                 f"valid pixels (log: *logs/{stage}.log)",
                                 "FAILED quickstart::run*"])


def test_without_options_nothing_changes(pytester: pytest.Pytester):
    pytester.makepyfile(test_plain="def test_a():\n    pass\n")
    fake_run(pytester.path / "runs" / "quickstart")  # present but not asked for
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("--co", "-q", "-p", "no:cacheprovider")
    assert [ln for ln in result.stdout.lines if "::" in ln] == ["test_plain.py::test_a"]
    assert "simval" not in result.stdout.str().replace("simval-", "")  # no summary section
    # the plugin is loaded all the same (its options exist)
    assert "--simval-run" in pytester.runpytest("--help").stdout.str()


def test_test_paths_are_collected_only_when_given(pytester: pytest.Pytester):
    pytester.makepyfile(test_plain="def test_a():\n    pass\n")
    run = fake_run(pytester.path / "r")
    result = pytester.runpytest("--simval-run", str(run), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, failed=1)  # only the simval items
    result = pytester.runpytest("--simval-run", str(run), "test_plain.py",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6, failed=1)


def test_usage_errors(pytester: pytest.Pytester):
    result = pytester.runpytest("--simval", str(pytester.path / "absent.yaml"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--simval*absent.yaml: no such file or directory*"])
    (pytester.path / "empty").mkdir()
    result = pytester.runpytest("--simval-run", str(pytester.path / "empty"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*not a run directory*"])


# --- --simval: running scenarios (with fakes) ---------------------------------------------

FAKE_CONFTEST = '''
import os
from pathlib import Path
from types import SimpleNamespace

import simval.run
from simval.metrics_schema import Measurement, MetricsDocument
from simval.scenario import load_scenario
from simval.verdict import evaluate_thresholds

CALLS = Path(__file__).with_name("calls.txt")
_saved, _state = {}, {}


def fake_run_scenario(path, run_dir, workers=None, kit_dir=None, **kw):
    with CALLS.open("a") as f:
        f.write(f"run {Path(path).name} -> {Path(run_dir).name}"
                + (f" kit {Path(kit_dir).name}" if kit_dir else "") + "\\n")
    _state["comparison"] = load_scenario(path).comparison
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    status = os.environ.get("FAKE_STATUS", "complete")
    failed = [] if status == "complete" else [
        SimpleNamespace(stage_id="detector1.x", error="RuntimeError: jump step exploded")]
    return SimpleNamespace(status=status, failed=failed)


def fake_evaluate_run(run_dir, **kw):
    with CALLS.open("a") as f:
        f.write("evaluate\\n")
    doc = MetricsDocument("fakeq", "0" * 16)
    doc.add("F115W", {"phot_bias_bright_star_mag": Measurement.of(
        "phot_bias_bright_star_mag", 0.004, 0.003, 15),
        "astrom_rms_mas": Measurement.of("astrom_rms_mas", 3.0, 0.2, 15)})
    doc.add("F150W", {"phot_bias_bright_star_mag": Measurement.of(
        "phot_bias_bright_star_mag", -0.032, 0.005, 14)})
    return SimpleNamespace(verdicts=evaluate_thresholds(doc, _state["comparison"]))


def pytest_configure(config):
    _saved["run"], _saved["evaluate"] = simval.run.run_scenario, simval.run.evaluate_run
    simval.run.run_scenario = fake_run_scenario
    simval.run.evaluate_run = fake_evaluate_run


def pytest_unconfigure(config):
    simval.run.run_scenario, simval.run.evaluate_run = _saved["run"], _saved["evaluate"]
'''


@pytest.fixture(scope="module")
def jwst_imported() -> None:
    """Validating a scenario imports jwst's pipelines (seconds); pytester drops modules an
    inner session imported, so import them once out here."""
    from simval.scenario import load_scenario

    load_scenario(QUICKSTART)


@pytest.fixture
def scenario_dir(pytester: pytest.Pytester, jwst_imported) -> Path:
    """scenarios/fakeq.yaml: the quickstart observation with three thresholds, and a
    conftest with the fake run and evaluation."""
    doc = quickstart_data()
    doc["name"] = "fakeq"
    doc["comparison"] = {"match_radius_mas": 100, "thresholds": {
        "phot_bias_bright_star_mag": {"abs_max": 0.02},
        "astrom_rms_mas": {"F115W": {"max": 10}}}}
    d = pytester.path / "scenarios"
    d.mkdir()
    (d / "fakeq.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (d / "notes.txt").write_text("not a scenario")
    pytester.makeconftest(FAKE_CONFTEST)
    return d


IDS = ["fakeq::F115W::phot_bias_bright_star_mag", "fakeq::F115W::astrom_rms_mas",
       "fakeq::F150W::phot_bias_bright_star_mag"]


def test_scenarios_are_collected_without_running(pytester: pytest.Pytester, scenario_dir):
    result = pytester.runpytest("--simval", str(scenario_dir), "--co", "-q")
    assert [ln for ln in result.stdout.lines if ln.startswith("fakeq")] == IDS
    assert not (pytester.path / "calls.txt").exists()
    assert not (pytester.path / "runs").exists()


def test_scenario_runs_once_lazily(pytester: pytest.Pytester, scenario_dir):
    result = pytester.runpytest("--simval", str(scenario_dir), "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*simval: running scenario fakeq (*fakeq.yaml) in *fakeq",
                                 f"{IDS[2]} FAILED*", "*measured: -0.0320 ± 0.0050 mag (n = 14)*",
                                 "*required: |x| <= 0.02*", "*report: *report.html*"])
    calls = (pytester.path / "calls.txt").read_text().splitlines()
    assert calls == ["run fakeq.yaml -> fakeq", "evaluate"]
    # the default run root is ./runs, and the report is written there
    assert (pytester.path / "runs" / "fakeq" / "report.html").is_file()
    result.stdout.fnmatch_lines(["*simval*", "fakeq: 2 passed, 1 failed*"])


def test_scenario_run_root_and_selection(pytester: pytest.Pytester, scenario_dir):
    root = pytester.path / "elsewhere"
    result = pytester.runpytest("--simval", str(scenario_dir / "fakeq.yaml"),
                                "--simval-run-root", str(root), "--simval-no-report",
                                "--simval-kit-dir", str(pytester.path / "kits"),
                                "-k", "astrom", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "calls.txt").read_text().startswith(
        "run fakeq.yaml -> fakeq kit kits")
    assert not (root / "fakeq" / "report.html").exists()


def test_failed_scenario_run_is_one_failing_item(pytester: pytest.Pytester, scenario_dir,
                                                 monkeypatch):
    monkeypatch.setenv("FAKE_STATUS", "failed")
    result = pytester.runpytest("--simval", str(scenario_dir), "-p", "no:cacheprovider",
                                "-rs")
    result.assert_outcomes(failed=1, skipped=2)
    result.stdout.fnmatch_lines(["*fakeq: could not be judged*",
                                 "*stage detector1.x failed: RuntimeError: jump step exploded*",
                                 f"*fakeq was not judged: see {IDS[0]}*"])
    assert (pytester.path / "calls.txt").read_text().splitlines() == [
        "run fakeq.yaml -> fakeq"]


def test_invalid_scenario_is_a_collection_error(pytester: pytest.Pytester):
    bad = pytester.path / "bad.yaml"
    bad.write_text("name: bad\nfilters: [F999W]\n")
    result = pytester.runpytest("--simval", str(bad))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting*", "*bad.yaml*"])
