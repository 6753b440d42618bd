"""NIRCam facts and physical constants: one definition each, agreeing with their sources."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from simval import constants
from simval.instruments import nircam

#: The pupil-wheel pairs kit/psf.py once typed by hand (from mirage.utils.constants
#: NIRCAM_GO_PW_FILTER_PAIRINGS): pupil-wheel filter -> filter-wheel element.
HAND_TYPED_PUPIL_WHEEL_PAIRS = {"F162M": "F150W2", "F164N": "F150W2", "F323N": "F322W2",
                                "F405N": "F444W", "F466N": "F444W", "F470N": "F444W"}


@pytest.mark.parametrize("band", nircam.SW_FILTERS + nircam.LW_FILTERS)
def test_wheel_elements_equal_the_old_hand_typed_table(band):
    expected = ((HAND_TYPED_PUPIL_WHEEL_PAIRS[band], band)
                if band in HAND_TYPED_PUPIL_WHEEL_PAIRS else (band, "CLEAR"))
    assert nircam.wheel_elements(band) == expected


def test_wheel_elements_with_a_pupil():
    assert nircam.wheel_elements("F162M", "F162M") == ("F150W2", "F162M")
    assert nircam.wheel_elements("f115w", "clear") == ("F115W", "CLEAR")
    assert nircam.wheel_elements("F115W", "WLP8") == ("F115W", "WLP8")
    assert nircam.wheel_elements("WLP8/F115W") == ("F115W", "WLP8")
    assert nircam.allowed_pupils("F162M") == ["F162M", "WLP8", "WLM8"]
    with pytest.raises(ValueError, match="nircam_filter_pupil_pairings"):
        nircam.wheel_elements("F162M", "CLEAR")


def test_wheel_elements_agree_with_mirage_constants():
    from mirage.utils.constants import NIRCAM_GO_PW_FILTER_PAIRINGS

    assert NIRCAM_GO_PW_FILTER_PAIRINGS == HAND_TYPED_PUPIL_WHEEL_PAIRS
    for pw, fw in NIRCAM_GO_PW_FILTER_PAIRINGS.items():
        assert nircam.wheel_elements(pw) == (fw, pw)


def test_mirage_tables():
    assert nircam.mirage_config_dir().is_dir()
    assert nircam.read_patterns()["DEEP8"] == nircam.ReadPattern("DEEP8", 8, 12, 20)
    subarrays = nircam.imaging_subarrays()
    assert subarrays["NRCB1"]["SUB400P"] == 1 and subarrays["NRCB5"]["FULL"] == 4
    amps = nircam.subarray_amplifiers()
    assert amps["NRCB1_SUB400P"] == 1
    assert nircam.read_patterns(nircam.mirage_config_file(
        "nircam_read_pattern_definitions.list")) == nircam.read_patterns()
    assert nircam.throughput_file("F150W2", "F162M", "B").is_file()
    assert nircam.zeropoint_file().is_file()


def test_frame_time_is_the_flight_value():
    assert nircam.frame_time(2048, 2048, 4) == pytest.approx(10.73677, abs=1e-9)
    assert nircam.frame_time(400, 400, 1) == pytest.approx(1.65624, abs=1e-9)


def test_one_base_name_for_plan_and_mirage():
    from simval.plan import exposure_base_name
    from simval.simulate.mirage_yaml import MirageExposure

    assert exposure_base_name is nircam.exposure_base_name
    assert nircam.base36(37, 2) == "11" and nircam.base36(0, 2) == "00"
    exp = MirageExposure(detector="NRCB5", filter_name="F444W", ngroups=2, ra_deg=53.1,
                         dec_deg=-27.8, pa_v3_deg=0.0, seed=1, program=1234, observation=1,
                         visit=2, activity=37, exposure=12)
    assert exp.base_name == "jw01234001002_01111_00012_nrcblong"
    assert exp.base_name == exposure_base_name(1234, 1, 2, 1, 1, 37, 12, "NRCBLONG")


def test_get_detector_accepts_a_detector():
    det = nircam.get_detector("nrcb5")
    assert det.name == "NRCBLONG" and nircam.get_detector(det) is det
    from simval.kit.detectors import get_detector

    assert get_detector is nircam.get_detector


def test_constants():
    assert constants.ARCSEC_PER_RAD == 206264.80624709636
    assert constants.MAS_PER_RAD == pytest.approx(1e3 * constants.ARCSEC_PER_RAD, rel=1e-15)
    assert constants.SR_PER_ARCSEC2 == pytest.approx(constants.ARCSEC_PER_RAD ** -2, rel=1e-15)
    # MIRAGE's cgs zero point and 3631 Jy agree to 3e-10 mag.
    cgs = -2.5 * math.log10(constants.AB_FLUX_JY * constants.CGS_PER_JY)
    assert constants.AB_ZEROPOINT_CGS == pytest.approx(cgs, abs=1e-9)
    assert constants.AB_ZEROPOINT_NJY == pytest.approx(31.4, abs=1e-4)


def test_scenario_reads_nircam_facts_not_the_kit():
    """Validating a scenario needs the NIRCam facts, not the kit's reference makers: no
    kit module beyond the spec, its readout geometry and the table of derive knobs, and
    none of the heavy packages the kit, the simulator or the pipeline use."""
    code = ("import sys, simval.scenario; "
            "print(sorted(m for m in sys.modules if m.startswith('simval.kit'))); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'stdatamodels', 'crds', "
            "'mirage', 'jwst', 'poppy', 'galsim', 'photutils', 'matplotlib', 'distributed'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == "['simval.kit', 'simval.kit.changes', 'simval.kit.detectors', " \
                     "'simval.kit.readout', 'simval.kit.spec']"
    assert out[1] == "[]"
