"""Gain maps: derived contexts with the gain matched to MIRAGE's mean or read from a user's
file, their scenario keys and errors, and the jump-flag metric."""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import pytest
import yaml
from astropy.io import fits

from simval.kit import crds_cache
from simval.kit.certify import certify
from simval.kit.derive import Changes, derive_context
from simval.metrics.jumps import jump_flags
from simval.scenario import ScenarioError, load_scenario, scenario_hash
from tests.scenario_data import quickstart_data

HEADER = {
    "META.INSTRUMENT.NAME": "NIRCAM", "META.INSTRUMENT.DETECTOR": "NRCB1",
    "META.INSTRUMENT.CHANNEL": "SHORT", "META.INSTRUMENT.MODULE": "B",
    "META.INSTRUMENT.FILTER": "F115W", "META.INSTRUMENT.PUPIL": "CLEAR",
    "META.EXPOSURE.TYPE": "NRC_IMAGE", "META.EXPOSURE.READPATT": "BRIGHT2",
    "META.SUBARRAY.NAME": "SUB400P", "META.OBSERVATION.DATE": "2023-01-01",
    "META.OBSERVATION.TIME": "00:00:00", "META.TELESCOPE": "JWST",
    "META.INSTRUMENT.CORONAGRAPH": "N/A", "META.EXPOSURE.NOUTPUTS": 1,
}


def _gain_data(layout, context) -> np.ndarray:
    from stdatamodels.jwst.datamodels import GainModel

    name = crds_cache.best_references(layout, context, HEADER, ["gain"])["gain"]
    with GainModel(str(layout.references / name)) as model:
        return np.array(model.data)


def _user_map(path, shape=(2048, 2048)) -> tuple[str, str, str]:
    y, x = np.mgrid[:shape[0], :shape[1]]
    data = (2.0 + 0.1 * x / shape[1] + 0.05 * y / shape[0]).astype(np.float32)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name="SCI")]).writeto(path)
    return ("NRCB1", str(path), hashlib.sha256(path.read_bytes()).hexdigest())


def test_gain_uniform_and_user_maps_chain_with_gain_scale(quickstart_kit, tmp_path):
    layout, base = quickstart_kit.layout, quickstart_kit.context
    kit_gain = _gain_data(layout, base)
    science = kit_gain[4:-4, 4:-4]
    assert science.std() / science.mean() > 0.02  # the kit's map has structure

    uniform = derive_context(layout, base, Changes(gain_uniform=True, gain_scale=0.8))
    got = _gain_data(layout, uniform)
    assert np.ptp(got) == 0.0
    assert got[0, 0] == pytest.approx(0.8 * science.mean(), rel=1e-6)

    entry = _user_map(tmp_path / "my_gain_nrcb1.fits")
    user = derive_context(layout, base, Changes(gain_map=(entry,), gain_scale=1.1))
    with fits.open(entry[1]) as hdul:
        mine = hdul["SCI"].data
    np.testing.assert_allclose(_gain_data(layout, user), 1.1 * mine, rtol=1e-6)
    assert not list(layout.references.glob("*.step*"))  # no intermediate file left

    for context in (uniform, user):
        name = crds_cache.best_references(layout, context, HEADER, ["gain"])["gain"]
        result = certify([layout.references / name], layout, context)
        assert result.n_errors == 0, result.log_text[-3000:]


def test_a_user_map_of_the_wrong_shape_is_refused_by_the_derive(quickstart_kit, tmp_path):
    entry = _user_map(tmp_path / "small.fits", shape=(400, 400))
    with pytest.raises(ValueError, match=r"small.fits: gain map for NRCB1 is 400 x 400"):
        derive_context(quickstart_kit.layout, quickstart_kit.context,
                       Changes(gain_map=(entry,)))


def _scenario_with(tmp_path, derive: dict):
    data = copy.deepcopy(quickstart_data())
    data["crds"] = {"kit": {"seed": 20221, "derive": derive}}
    path = tmp_path / "gain.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_scenario_gain_map_is_resolved_hashed_and_checked(tmp_path):
    entry = _user_map(tmp_path / "g1.fits")
    scenario = load_scenario(_scenario_with(tmp_path, {"gain_map": {"nrcb1": "g1.fits"},
                                                      "gain_scale": 1.05}))
    changes = scenario.crds.kit.derive.changes()
    assert changes.gain_map == (entry,) and changes.gain_scale == 1.05
    assert "user gain map for NRCB1 (g1.fits)" in changes.label()

    for bad, words in (
            ({"gain_map": {"NRCB9": "g1.fits"}}, ["crds.kit.derive.gain_map.NRCB9",
                                                   "unknown detector", "NRCB1"]),
            ({"gain_map": {"NRCB1": "none.fits"}}, ["gain map not found", "none.fits"]),
            ({"gain_map": {"NRCB1": "small.fits"}}, ["small.fits", "400 x 400",
                                                      "full frame, 2048 x 2048"])):
        if "small.fits" in str(bad):
            _user_map(tmp_path / "small.fits", shape=(400, 400))
        with pytest.raises(ScenarioError) as info:
            load_scenario(_scenario_with(tmp_path, bad))
        for word in words:
            assert word in str(info.value), (word, str(info.value))


def test_gain_keys_left_unset_keep_the_scenario_hash(tmp_path):
    plain = load_scenario(_scenario_with(tmp_path, {"gain_scale": 1.05}))
    dumped = plain.model_dump()["crds"]["kit"]["derive"]
    assert "gain_uniform" not in dumped and "gain_map" not in dumped
    other = load_scenario(_scenario_with(tmp_path, {"gain_scale": 1.05, "gain_uniform": True}))
    assert scenario_hash(other) != scenario_hash(plain)


def test_jump_frac_counts_flags_on_science_pixels_only(tmp_path):
    from stdatamodels.jwst.datamodels import dqflags

    flag = dqflags.pixel
    dq = np.zeros((100, 100), np.uint32)
    dq[:4, :] = dq[-4:, :] = dq[:, :4] = dq[:, -4:] = flag["REFERENCE_PIXEL"] | flag["DO_NOT_USE"]
    dq[0, 10] |= flag["JUMP_DET"]                       # a reference pixel: not counted
    dq[10:15, 10] = flag["DEAD"] | flag["DO_NOT_USE"]   # unusable: out of the sample
    jumps = [(20, 20), (30, 31), (50, 60)]
    for y, x in jumps:
        dq[y, x] = flag["JUMP_DET"]
    dq[70, 70] = flag["JUMP_DET"] | flag["DO_NOT_USE"]  # a jump in every group: counted
    path = tmp_path / "a_cal.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(dq, name="DQ")]).writeto(path)
    got = jump_flags([str(path)], ["a"]).measurements()["jump_frac"]
    science = 92 * 92 - 5
    assert got.n == science
    assert got.value == pytest.approx(4 / science)
    assert got.details["per_exposure"]["a"] == pytest.approx(4 / science)
