"""Pipeline environments: registry, spec parsing, failed creation, and the worker.

No second jwst is installed here (a real one takes about a minute and 0.8 GB): the worker is
exercised in the current interpreter registered as an environment, and must give the same
pixels as the in-process calibrate functions. Creating an environment for a jwst release
that does not exist needs the package index (a separate pip process; the in-process socket
guard does not apply to it) and is skipped, saying so, when the index cannot be reached.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from simval import calibrate
from simval.envs import create as envcreate
from simval.envs.create import EnvCreateError, create_env, parse_spec, register_env
from simval.envs.registry import (
    EnvError,
    EnvNotFoundError,
    EnvRecord,
    EnvRegistry,
    check_name,
    default_env_dir,
)
from simval.envs.runner import EnvRunError, for_stage, run_in_env, worker_environ
from simval.envs.worker import apply_crds_env

# ----------------------------------------------------------------------------- spec parsing


@pytest.mark.parametrize("text, requirement, exact, name", [
    ("jwst==1.20.2", "jwst==1.20.2", "1.20.2", "jwst-1.20.2"),
    ("1.20.2", "jwst==1.20.2", "1.20.2", "jwst-1.20.2"),
    ("  JWST == 3.0.0 ", "JWST==3.0.0", "3.0.0", "jwst-3.0.0"),
    ("jwst[sdp]==3.0.0", "jwst[sdp]==3.0.0", "3.0.0", "jwst-3.0.0"),
    ("jwst==1.20.0rc1", "jwst==1.20.0rc1", "1.20.0rc1", "jwst-1.20.0rc1"),
])
def test_parse_exact_specs(text, requirement, exact, name):
    spec = parse_spec(text)
    assert (spec.requirement, spec.exact_version, spec.default_name()) == (requirement, exact,
                                                                            name)


@pytest.mark.parametrize("text", ["jwst>=1.20,<1.21", "jwst==1.20.*", "jwst"])
def test_ranges_parse_but_need_a_name(text):
    spec = parse_spec(text)
    assert spec.exact_version is None
    with pytest.raises(EnvError, match="give --name"):
        spec.default_name()


@pytest.mark.parametrize("text, message", [
    ("numpy==2.0", "jwst release"),
    ("jwst @ https://example.invalid/jwst.whl", "URLs"),
    ("jwst==1.0; python_version<'3'", "markers"),
    ("jwst=1.20", "not a jwst requirement"),
    ("", "not a jwst requirement"),
])
def test_bad_specs_are_refused(text, message):
    with pytest.raises(EnvError, match=message):
        parse_spec(text)


@pytest.mark.parametrize("name", ["jwst-1.20.2", "a", "x_1.2+local"])
def test_valid_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", ".hidden", "a/b", "logs", "registry.json", "a b",
                                  "x" * 65])
def test_invalid_names(name):
    with pytest.raises(EnvError, match="invalid environment name"):
        check_name(name)


# ----------------------------------------------------------------------------- registry


def _record(name: str, root: Path, jwst: str = "1.20.2") -> EnvRecord:
    return EnvRecord(name=name, path=str(root / name), python=str(root / name / "bin/python"),
                     python_version="3.11.7", spec=f"jwst=={jwst}", installer="pip",
                     created_utc="2026-01-01T00:00:00+00:00", create_seconds=60.0,
                     size_bytes=8e8, versions={"jwst": jwst, "crds": "14.0.3"},
                     freeze=[f"jwst=={jwst}", "crds==14.0.3"])


def test_default_env_dir_follows_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("SIMVAL_ENV_DIR", str(tmp_path / "envs"))
    assert default_env_dir() == tmp_path / "envs"
    assert EnvRegistry().root == tmp_path / "envs"
    monkeypatch.delenv("SIMVAL_ENV_DIR")
    assert default_env_dir().parts[-2:] == ("simval", "envs")


def test_registry_round_trip(tmp_path):
    reg = EnvRegistry(tmp_path)
    assert reg.load() == {}
    reg.add(_record("jwst-1.20.2", tmp_path))
    reg.add(_record("jwst-3.0.0", tmp_path, "3.0.0"))
    doc = json.loads(reg.file.read_text())
    assert doc["schema"] == 1 and sorted(doc["envs"]) == ["jwst-1.20.2", "jwst-3.0.0"]
    got = EnvRegistry(tmp_path).get("jwst-3.0.0")
    assert got == _record("jwst-3.0.0", tmp_path, "3.0.0")
    assert got.jwst_version == "3.0.0"
    # written atomically: nothing but the registry and its lock is left beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == [".registry.lock", "registry.json"]
    with pytest.raises(EnvError, match="already registered"):
        reg.add(_record("jwst-1.20.2", tmp_path))
    reg.add(_record("jwst-1.20.2", tmp_path, "1.20.1"), replace=True)
    assert reg.get("jwst-1.20.2").versions["jwst"] == "1.20.1"
    assert reg.remove("jwst-1.20.2").name == "jwst-1.20.2"
    assert list(reg.load()) == ["jwst-3.0.0"]


def test_unknown_environment_names_the_known_ones(tmp_path):
    reg = EnvRegistry(tmp_path)
    reg.add(_record("jwst-3.0.0", tmp_path, "3.0.0"))
    with pytest.raises(EnvNotFoundError, match=r"'nope'.*registered: jwst-3.0.0"):
        reg.get("nope")
    with pytest.raises(EnvNotFoundError):
        reg.remove("nope")
    with pytest.raises(EnvNotFoundError):
        run_in_env("nope", "detector1", "x_uncal.fits", tmp_path, {}, tmp_path / "l.log",
                   registry=reg)


def test_corrupt_registry_is_reported(tmp_path):
    (tmp_path / "registry.json").write_text("{not json")
    with pytest.raises(EnvError, match="not valid JSON"):
        EnvRegistry(tmp_path).load()


def test_unknown_fields_are_ignored_when_reading(tmp_path):
    doc = {"schema": 1, "envs": {"e": {**_record("e", tmp_path).as_dict(), "future": 1}}}
    (tmp_path / "registry.json").write_text(json.dumps(doc))
    assert EnvRegistry(tmp_path).get("e").name == "e"


# ----------------------------------------------------------------------------- installers


def test_installer_commands(monkeypatch, tmp_path):
    py = tmp_path / "env/bin/python"
    monkeypatch.setattr(envcreate.shutil, "which", lambda name: None)
    pip = envcreate.Installer.choose()
    assert pip.kind == "pip"
    assert pip.venv_command(tmp_path / "env", "/usr/bin/python3") == [
        "/usr/bin/python3", "-m", "venv", str(tmp_path / "env")]
    assert pip.install_command(py, ["jwst==1.20.2"])[:4] == [str(py), "-m", "pip", "install"]
    with pytest.raises(EnvError, match="uv is not on PATH"):
        envcreate.Installer.choose("uv")
    monkeypatch.setattr(envcreate.shutil, "which", lambda name: "/opt/uv")
    uv = envcreate.Installer.choose()
    assert uv.kind == "uv"
    assert uv.install_command(py, ["x"]) == ["/opt/uv", "pip", "install", "--python", str(py),
                                             "x"]
    assert envcreate.Installer.choose("pip").kind == "pip"


def _fake_installer(monkeypatch, install_script: str) -> None:
    """A venv step that only makes the directory, and an install step running a script."""
    monkeypatch.setattr(envcreate.Installer, "venv_command", lambda self, path, python: [
        sys.executable, "-c", "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
        "p.mkdir(parents=True); (p / 'pyvenv.cfg').write_text('')", str(path)])
    monkeypatch.setattr(envcreate.Installer, "install_command",
                        lambda self, py, args: [sys.executable, "-c", install_script, *args])
    monkeypatch.setattr(envcreate.shutil, "which", lambda name: None)


def test_failed_install_registers_nothing_and_quotes_the_installer(monkeypatch, tmp_path):
    _fake_installer(monkeypatch, "import sys; print('Collecting', sys.argv[1]); "
                                 "print('ERROR: No matching distribution found for', "
                                 "sys.argv[1]); sys.exit(1)")
    reg = EnvRegistry(tmp_path)
    with pytest.raises(EnvCreateError) as info:
        create_env("jwst==1.20.2", registry=reg)
    msg = str(info.value)
    assert "'jwst-1.20.2' for jwst==1.20.2" in msg
    assert "exited with code 1" in msg
    assert "ERROR: No matching distribution found for jwst==1.20.2" in msg
    assert "nothing was registered" in msg
    assert reg.load() == {}
    assert not (tmp_path / "jwst-1.20.2").exists()
    log = tmp_path / "logs" / "jwst-1.20.2-create.log"
    assert "No matching distribution" in log.read_text()


def test_installer_timeout_is_a_clear_failure(monkeypatch, tmp_path):
    _fake_installer(monkeypatch, "import time; time.sleep(30)")
    reg = EnvRegistry(tmp_path)
    with pytest.raises(EnvCreateError, match=r"timed out after 2 s"):
        create_env("jwst==1.20.2", registry=reg, timeout_s=2)
    assert reg.load() == {} and not (tmp_path / "jwst-1.20.2").exists()


def test_create_refuses_a_registered_name_and_a_foreign_directory(monkeypatch, tmp_path):
    reg = EnvRegistry(tmp_path)
    reg.add(_record("jwst-1.20.2", tmp_path))
    with pytest.raises(EnvError, match="already exists"):
        create_env("jwst==1.20.2", registry=reg)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    with pytest.raises(EnvError, match="not an environment simval made"):
        create_env("jwst==1.20.2", name="mine", registry=reg)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"


@pytest.fixture(scope="module")
def package_index():
    """Skip unless the package index answers (pip, in its own process)."""
    cmd = [sys.executable, "-m", "pip", "index", "versions", "jwst", "--retries", "0",
           "--timeout", "15", "--disable-pip-version-check"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.skip("package index unreachable: `pip index versions jwst` timed out")
    if proc.returncode != 0 or "Available versions" not in proc.stdout:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        pytest.skip(f"package index unreachable: `pip index versions jwst` failed ({tail[0]})")
    return proc.stdout


needs_index = pytest.mark.usefixtures("package_index")


@needs_index
def test_nonexistent_release_fails_clearly_with_nothing_registered(tmp_path):
    """A real installer against the real index (about 10 s: venv, then pip resolving)."""
    reg = EnvRegistry(tmp_path)
    with pytest.raises(EnvCreateError) as info:
        create_env("jwst==99.99.99", registry=reg, timeout_s=600)
    msg = str(info.value)
    print(f"\n{msg}")
    assert "jwst==99.99.99" in msg and "nothing was registered" in msg
    assert "installing jwst==99.99.99" in msg
    assert "99.99.99" in msg.split("last lines:", 1)[1]  # the installer's own words
    assert reg.load() == {}
    assert not (tmp_path / "jwst-99.99.99").exists()


# ----------------------------------------------------------------------------- worker basics


def test_apply_crds_env_replaces_every_crds_variable():
    environ = {"CRDS_PATH": "/theirs", "CRDS_SERVER_URL": "https://jwst-crds.stsci.edu",
               "CRDS_MAPPATH": "/elsewhere", "HOME": "/root"}
    set_ = apply_crds_env({"CRDS_PATH": "/kit", "CRDS_CONTEXT": "jwst_0001.pmap"}, environ)
    assert environ == {"HOME": "/root", "CRDS_PATH": "/kit", "CRDS_CONTEXT": "jwst_0001.pmap",
                       "CRDS_SERVER_URL": "https://jwst-crds-serverless.invalid",
                       "CRDS_MODE": "local"}
    assert set_["CRDS_MODE"] == "local"


def test_worker_environ_drops_crds_and_python_path():
    env = worker_environ({"CRDS_PATH": "/kit"}, {"CRDS_PATH": "/theirs", "CRDS_MODE": "remote",
                                                "PYTHONPATH": "/x", "HOME": "/root"})
    assert env == {"HOME": "/root", "CRDS_PATH": "/kit"}


def test_worker_rejects_a_bad_spec(tmp_path, capsys):
    from simval.envs import worker

    assert worker.main([str(tmp_path / "missing.json")]) == 2
    (tmp_path / "s.json").write_text(json.dumps({"schema": 99}))
    assert worker.main([str(tmp_path / "s.json")]) == 2
    assert worker.main([]) == 2


def test_for_stage_dispatches_only_with_env():
    assert for_stage({}, "detector1", calibrate.detector1) is calibrate.detector1
    assert for_stage({"env": None}, "image2", calibrate.image2) is calibrate.image2
    f = for_stage({"env": "jwst-1.20.2"}, "image3", calibrate.image3)
    assert f is not calibrate.image3 and f.__name__ == "image3_in_jwst-1.20.2"
    with pytest.raises(ValueError, match="kind"):
        for_stage({"env": "x"}, "image4", calibrate.image3)


@pytest.fixture(scope="module")
def current(tmp_path_factory):
    """This interpreter registered as environment ``current``."""
    reg = EnvRegistry(tmp_path_factory.mktemp("envs"))
    record = register_env("current", sys.executable, registry=reg)
    return reg, record


def test_register_the_current_interpreter(current):
    import jwst

    reg, record = current
    assert record.managed is False and record.installer == "registered"
    assert record.versions["jwst"] == jwst.__version__
    assert record.spec == f"jwst=={jwst.__version__}"
    assert any(line.lower().startswith("jwst==") for line in record.freeze)
    assert reg.get("current").python == sys.executable


def test_worker_import_path_is_light():
    """The worker imports jwst and simval's light modules, none of simval's heavy ones."""
    info = envcreate.probe(sys.executable)
    assert info["import_error"] is None
    assert info["heavy"] == []


def test_worker_failure_is_reported_with_traceback(current, tmp_path):
    reg, _ = current
    missing = tmp_path / "jw00001001001_01101_00001_nrcb1_uncal.fits"
    crds = {"CRDS_PATH": str(tmp_path / "crds"), "CRDS_CONTEXT": "jwst_0001.pmap"}
    log = tmp_path / "logs" / "det1.log"
    result = run_in_env("current", "detector1", missing, tmp_path / "out", crds, log,
                        registry=reg, check=False)
    assert not result.ok and result.status == "failed"
    assert "calwebb_detector1 failed" in result.error
    assert result.traceback is not None and "Traceback" in result.traceback.read_text()
    assert result.raw["network_attempts"] == []
    assert not list((tmp_path / "out").glob(".simval-env-*"))  # spec and result cleaned up


def test_failures_raise_unless_asked_not_to(current, tmp_path, monkeypatch):
    """check=True: a failed result, and a worker that dies without one, raise EnvRunError
    (a CalibrationError) naming the environment and what happened."""
    from simval.envs import runner

    reg, _ = current

    def fake_worker(cmd, **kwargs):
        spec = json.loads(Path(cmd[-1]).read_text())
        if "dies" not in spec["input"]:
            Path(spec["result"]).write_text(json.dumps({
                "status": "failed", "error": "CalibrationError: boom",
                "traceback": spec["traceback"]}))
        return subprocess.CompletedProcess(cmd, 1, "", "Segmentation fault\n")

    monkeypatch.setattr(runner.subprocess, "run", fake_worker)
    args = (tmp_path / "out", {}, tmp_path / "x.log")
    with pytest.raises(EnvRunError, match=r"environment 'current' \(jwst .*\) failed on "
                                          r".*x_uncal.fits: CalibrationError: boom"):
        run_in_env("current", "detector1", tmp_path / "x_uncal.fits", *args, registry=reg)
    with pytest.raises(EnvRunError, match=r"exited with code 1 without a result"):
        run_in_env("current", "image2", tmp_path / "dies_rate.fits", *args, registry=reg)
    assert "Segmentation fault" in (tmp_path / "x.log").read_text()
    assert issubclass(EnvRunError, calibrate.CalibrationError)


def test_cli_register_list_show_remove(tmp_path, capsys):
    from simval.cli import main

    d = ["--env-dir", str(tmp_path)]
    assert main(["env", "register", "here", "--python", sys.executable, *d]) == 0
    assert main(["env", "list", "--json", *d]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{"):])["here"]["installer"] == "registered"
    assert main(["env", "show", "here", *d]) == 0
    assert main(["env", "show", "nope", *d]) == 1
    assert "no environment named 'nope'" in capsys.readouterr().err
    assert main(["env", "remove", "here", *d]) == 0
    assert "files left alone" in capsys.readouterr().out
    assert EnvRegistry(tmp_path).load() == {}
    assert Path(sys.executable).exists()  # a registered interpreter is never deleted
    assert main(["env", "create", "numpy==2.0", *d]) == 1
    assert "jwst release" in capsys.readouterr().err


# ----------------------------------------------------------------------------- worker end to end


@pytest.fixture(scope="module")
def uncal(small_exposure):
    """The session's small simulated exposure: (kit, its _uncal.fits)."""
    kit, result, _ = small_exposure
    return kit, result.uncal


def _assert_same_pixels(a: Path, b: Path) -> None:
    with fits.open(a) as ha, fits.open(b) as hb:
        names = [h.name for h in ha if h.name in ("SCI", "ERR", "DQ", "VAR_POISSON",
                                                   "VAR_RNOISE", "VAR_FLAT")]
        assert "SCI" in names and names == [h.name for h in hb if h.name in names]
        for name in names:
            x, y = ha[name].data, hb[name].data
            assert x.shape == y.shape and x.dtype == y.dtype, name
            assert np.array_equal(x, y, equal_nan=True), (name, np.nanmax(np.abs(x - y)))


@pytest.mark.slow
def test_stage_in_env_equals_in_process(current, uncal, tmp_path):
    """detector1 through the run stage with ``env`` in its params, then image2 through
    run_in_env, give the in-process pipeline's pixels exactly, with the same references."""
    from simval.layout import RunLayout
    from simval.run.records import StageContext, StageSpec
    from simval.run.resources import Usage
    from simval.run.stages import detector1_stage

    reg, _ = current
    kit, uncal_path = uncal
    crds = calibrate.CrdsSetup.from_kit(kit)
    # in process
    rate0 = calibrate.detector1(uncal_path, tmp_path / "inproc", crds, tmp_path / "d1.log")
    cal0 = calibrate.image2(rate0, tmp_path / "inproc", crds, tmp_path / "i2.log")
    # the stage hook: params carry env
    layout = RunLayout(tmp_path / "run")
    base = uncal_path.name.removesuffix("_uncal.fits")
    spec = StageSpec(stage_id=f"detector1.{base}", kind="detector1", run_dir=str(layout.root),
                     params={"base_name": base, "pipeline": "calwebb_detector1", "steps": {},
                             "crds_env": dict(crds.env), "env": "current"})
    log = layout.log(spec.stage_id)
    log.parent.mkdir(parents=True)
    import os

    old = os.environ.get("SIMVAL_ENV_DIR")
    os.environ["SIMVAL_ENV_DIR"] = str(reg.root)  # the stage reads the default registry
    try:
        result = detector1_stage(StageContext(spec, layout, {"uncal": uncal_path}, log,
                                              Usage()))
    finally:
        if old is None:
            os.environ.pop("SIMVAL_ENV_DIR", None)
        else:
            os.environ["SIMVAL_ENV_DIR"] = old
    rate1 = result.outputs["rate"]
    assert rate1 == layout.detector1 / rate0.name
    assert not list(layout.detector1.glob(".*"))  # no scratch or worker files published
    _assert_same_pixels(rate0, rate1)
    assert result.info["ref_files"] == calibrate.ref_files_used(rate0)
    assert result.info["cal_step"] == calibrate.cal_step_status(rate0)
    assert "Prefetch for" in log.read_text()  # the worker's pipeline log is the stage's
    # run_in_env directly
    r2 = run_in_env("current", "image2", rate1, tmp_path / "env_img2", crds,
                    tmp_path / "env_i2.log", registry=reg)
    assert r2.ok and r2.product == tmp_path / "env_img2" / cal0.name
    _assert_same_pixels(cal0, r2.product)
    assert r2.ref_files == calibrate.ref_files_used(cal0)
    assert r2.ref_files["crds_context"] == kit.context
    assert r2.prefetch["flat"] == r2.ref_files["flat"]
    assert r2.prefetch["photom"] == r2.ref_files["photom"]
    assert r2.raw["network_attempts"] == []
    import jwst

    assert r2.versions["jwst"] == jwst.__version__
    print(f"\nworker image2: {r2.seconds:.1f} s in the worker, {r2.wall_s:.1f} s wall, "
          f"peak {r2.peak_rss_mb:.0f} MB; {len(r2.prefetch)} reftypes prefetched")
