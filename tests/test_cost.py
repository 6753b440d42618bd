"""simval plan --cost: the model reproduces the measurements it was fitted to, counts the
survey's exposures, and sizes the files it will write."""

from __future__ import annotations

from pathlib import Path

import pytest

from simval.cli import main
from simval.cost import estimate
from simval.plan import make_plan
from simval.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _plan(name: str):
    return make_plan(load_scenario(SCENARIOS / name))


@pytest.mark.parametrize(("name", "kind", "measured_s"), [
    ("quickstart.yaml", "simulate", 4.5),        # SUB400P BRIGHT2 x 10, MIRAGE alone
    ("quickstart.yaml", "detector1", 4.9),
    ("cosmos_web_like.yaml", "simulate", 57.8),  # FULL SHALLOW4 x 5 (1-visit slice means)
    ("cosmos_web_like.yaml", "detector1", 13.8),
    ("cosmos_web_like.yaml", "image2", 8.7),
])
def test_time_model_reproduces_its_measurements(name, kind, measured_s):
    k = estimate(_plan(name)).kinds[kind]
    assert k.cpu_s / k.count == pytest.approx(measured_s, rel=0.05)


def test_survey_counts_and_sizes():
    plan = _plan("cosmos_web.yaml")
    assert len(plan.exposures) == 152 * 4 * 2 * 10
    cost = estimate(plan)
    assert cost.kinds["simulate"].count == 12160 and cost.kinds["image3"].count == 4
    # uncal: int16 per pixel per group and zero frame (2048^2 x 6) + seed image and segmap
    # (16 B/px): 50.3 + 67.1 MB, the files of a FULL SHALLOW4 x 5 exposure (50.4 + 67.1 MB)
    per_exposure = 2048**2 * (2 * 6 + 16)
    assert cost.kinds["simulate"].disk_bytes == pytest.approx(12160 * per_exposure)
    assert per_exposure == pytest.approx(50_382_720 + 67_127_040, rel=0.01)
    # rate (81 MB; no rateints for one integration), cal (117.6 MB) and, unless skipped,
    # image2's i2d
    assert cost.kinds["detector1"].disk_bytes / 12160 == pytest.approx(81e6, rel=0.05)
    assert cost.kinds["image2"].disk_bytes / 12160 == pytest.approx(117.55e6 + 118.46e6,
                                                                    rel=0.02)
    # one mosaic per filter over the whole survey does not fit on a 24 GB machine
    assert cost.kinds["image3"].peak_mb > 24 * 1024
    like = estimate(_plan("cosmos_web_like.yaml"))
    assert like.kinds["simulate"].count == 160
    assert like.peak_mb < 24 * 1024  # the block runs on 2 cores / 24 GB
    # time scales with the number of exposures
    assert cost.kinds["simulate"].cpu_s / like.kinds["simulate"].cpu_s == pytest.approx(76)


def test_cli_prints_the_estimate(capsys):
    assert main(["plan", str(SCENARIOS / "cosmos_web_like.yaml"), "--cost", "--cores", "2",
                 "--memory-gb", "24"]) == 0
    out = capsys.readouterr().out
    assert "160 exposures" in out and "simulate" in out and "wall" in out


def test_run_refuses_to_start_without_the_disk_it_needs(tmp_path, capsys, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 0, 50 * 10**9))
    run_dir = tmp_path / "runs" / "block"
    assert main(["run", str(SCENARIOS / "cosmos_web_like.yaml"), "-o", str(run_dir)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    need = sum(k.disk_bytes for k in estimate(_plan("cosmos_web_like.yaml")).kinds.values())
    assert f"needs about {need / 1e9:.1f} GB more disk" in err and "50.0 GB are free" in err
    assert "--no-disk-check" in err and not run_dir.exists()


def test_a_full_disk_ends_the_command_with_a_message_not_a_traceback(tmp_path, capsys,
                                                                     monkeypatch):
    import errno

    import simval.cli as cli

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.part"))

    monkeypatch.setattr(cli, "run_scenario", full)
    assert main(["run", str(SCENARIOS / "quickstart.yaml"), "-o", str(tmp_path / "run"),
                 "--no-disk-check"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "no space left on the device writing" in err and "x.part" in err
    assert "run the same command again to resume" in err
    monkeypatch.setattr(cli, "run_scenario", lambda *a, **k: (_ for _ in ()).throw(
        OSError(errno.EIO, "I/O error")))
    with pytest.raises(OSError):  # other OS errors are not disguised
        main(["run", str(SCENARIOS / "quickstart.yaml"), "-o", str(tmp_path / "run2"),
              "--no-disk-check"])


def test_miri_exposures_are_costed_at_the_miri_array_size():
    """A MIRI FULL exposure is 1032 x 1024 pixels, not NIRCam's 2048 x 2048: the
    disk estimate of the one-visit Stephan's Quintet (24 FULL x 60 groups) is what the run
    wrote (6.0 GB measured), not 4 times more; so are the kit's DARK and RESET (1.4 GB
    measured for 60 groups x 1 integration)."""
    from simval.cost import estimate
    from simval.plan import make_plan
    from simval.run.stage_memory import subarray_pixels
    from simval.scenario import load_scenario

    assert subarray_pixels("FULL", "MIRIMAGE") == 1032 * 1024
    assert subarray_pixels("FULL", "NRCB1") == 2048 * 2048
    assert subarray_pixels("SUB64", "MIRIMAGE") == 72 * 64
    scenario = load_scenario(Path(__file__).resolve().parents[1] / "scenarios"
                             / "stephans_quintet.yaml")
    cost = estimate(make_plan(scenario))
    disk = sum(k.disk_bytes for k in cost.kinds.values())
    # 2 visits: ~12 GB at the measured 6.0 GB per visit with 60 groups in every filter, and
    # F1500W's 80 groups x 2 integrations (readout.by_filter) make its third 2.7 times larger
    assert 12e9 < disk < 20e9
    # the references cover the longest readout, F1500W's 80 x 2 frames, once
    assert cost.kit_dark_bytes == pytest.approx(24 * 1032 * 1024 * 160, rel=1e-6)


@pytest.mark.parametrize(("subarray", "ngroups", "nints", "simulate_gib", "detector1_gib"), [
    ("FULL", 106, 2, 10.83, 5.49),   # sensitivity_miri, measured
    ("FULL", 60, 1, 3.80, 2.20),     # Stephan's Quintet, one visit, measured
])
def test_miri_stages_declare_the_memory_they_were_measured_at(tmp_path, subarray, ngroups,
                                                              nints, simulate_gib,
                                                              detector1_gib):
    """The MIRI simulator's and calwebb_detector1's declarations (what the executor sizes
    workers by) follow their own measurements, not MIRAGE's or NIRCam's: 10.8 GiB for a FULL
    x 212-frame simulation, 5.5 GiB for its detector1."""
    from simval.run.records import StageSpec
    from simval.run.stage_memory import MIB, declared_memory

    readout = {"subarray": subarray, "pattern": "FASTR1", "ngroups": ngroups, "nints": nints}
    specs = [StageSpec("simulate.x", "simulate", str(tmp_path),
                       params={"base_name": "x", "readout": readout}),
             StageSpec("detector1.x", "detector1", str(tmp_path), params={"base_name": "x"},
                       uses={"uncal": ("simulate.x", "uncal")})]
    declared = declared_memory(specs)
    assert declared["simulate.x"] / MIB / 1024 == pytest.approx(simulate_gib, rel=0.1)
    assert declared["detector1.x"] / MIB / 1024 == pytest.approx(detector1_gib, rel=0.1)
