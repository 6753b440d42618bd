"""A run's cache holds across scenarios that share a kit: A, then B, then A again is free."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from simval.kit.layout import KitLayout
from simval.kit.registry import Registry
from simval.run import run_scenario
from tests.conftest import mini_scenario


@pytest.mark.slow
def test_scenario_a_stays_cached_after_b_grows_the_kit(mini_run):
    """B adds a filter (new APCORR / ABVEGAOFFSET / FILTEROFFSET tables) and a longer ramp
    (a longer dark) to A's kit and mints a newer context; resuming A reuses every stage,
    with A's own context, and the kit holds both scenarios' tables side by side."""
    tmp, kit_dir = mini_run["tmp"], mini_run["kit_dir"]
    run_a = mini_run["result"].run_dir
    context_a = json.loads((run_a / "manifest.json").read_text())["crds"]["context"]

    path_b = mini_scenario(tmp, name="mini_b")
    data = yaml.safe_load(path_b.read_text())
    data.update(filters=["F150W"], background_mjysr=0.25, dither={"offsets": [[0.0, 0.0]]})
    data["readout"]["ngroups"] = 8
    path_b.write_text(yaml.safe_dump(data, sort_keys=False))
    result_b = run_scenario(path_b, tmp / "run_b", workers=2, kit_dir=kit_dir)
    assert result_b.ok, [(o.stage_id, o.error) for o in result_b.failed]
    context_b = json.loads((result_b.run_dir / "manifest.json").read_text())["crds"]["context"]
    assert context_b != context_a

    # resume a copy of A (the session's mini_run stays as other tests expect it)
    copy_a = tmp / "run_a_again"
    shutil.rmtree(copy_a, ignore_errors=True)
    shutil.copytree(run_a, copy_a, symlinks=True)
    again = run_scenario(mini_run["scenario"], copy_a, workers=2, kit_dir=kit_dir)
    assert again.ok
    doc = json.loads((copy_a / "manifest.json").read_text())
    # every record of A unchanged, the kit's included (it fingerprints A's own references)
    for record in sorted((run_a / "stages").glob("*.json")):
        assert (copy_a / "stages" / record.name).read_bytes() == record.read_bytes(), record.name
    statuses = {sid: s["status"] for sid, s in doc["stages"].items()}
    assert set(statuses.values()) == {"cached"}, statuses
    assert doc["crds"]["context"] == context_a

    (kit_root,) = [p for p in kit_dir.iterdir() if p.is_dir()]
    jobs = Registry.load(KitLayout(kit_root)).jobs
    assert len([j for j in jobs if j.startswith("apcorr/")]) == 2
    assert len([j for j in jobs if j.startswith("mirage_dark/NRCB1/SUB400P/")]) >= 2
