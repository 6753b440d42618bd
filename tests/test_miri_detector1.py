"""The MIRI ramp simulator and the kit's MIRI detector references agree: calwebb_detector1's
steps, given those references, give back the injected rates; without the RESET reference,
the reset anomaly shows.

Until the MIRI kit has its own CRDS mappings the steps run one by one with explicit
``override_<reftype>`` references (superbias N/A, as MIRI's rmap says); stpipe still opens
a CRDS configuration, which the session's NIRCam kit provides (it selects nothing here).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simval.instruments.miri_detector import MiriDetectorModel, MiriEffects, Readout
from simval.kit.miri_refs import (
    write_miri_dark,
    write_miri_detector_refs,
    write_miri_reset,
    write_miri_rscd,
)
from simval.pointing import attitude_at_pa_v3
from simval.simulate.miri_ramps import miri_ramps
from simval.simulate.miri_uncal import MiriExposure, miri_aperture, write_miri_uncal

SEED = 7
READOUT = Readout("SUB64", "FASTR1", ngroups=15, nints=2)


@pytest.fixture(scope="module")
def miri_case(quickstart_kit, tmp_path_factory):
    out = tmp_path_factory.mktemp("miri")
    effects = replace(MiriEffects(), emi=(), cosmic_rays_per_cm2_s=0.0)
    refs = write_miri_detector_refs(out, SEED)
    refs["dark"] = write_miri_dark(out / "miri_dark.fits", READOUT, SEED)
    refs["reset"] = write_miri_reset(out / "miri_reset.fits", READOUT, effects, SEED)
    refs["rscd"] = write_miri_rscd(out / "miri_rscd.fits", SEED)
    ny, nx = READOUT.shape
    rate = np.tile(np.linspace(5.0, 400.0, nx), (ny, 1))
    ramps = miri_ramps(rate, READOUT, effects, seed=3, detector=MiriDetectorModel(SEED))
    ap = miri_aperture(READOUT.subarray)
    att = attitude_at_pa_v3(ap.V2Ref, ap.V3Ref, 339.0, 33.96, 45.0)
    uncal = write_miri_uncal(out / "jw02732002001_01101_00001_mirimage_uncal.fits", ramps,
                             READOUT, MiriExposure("F770W", 60000.25), att)
    return quickstart_kit.crds_env(), refs, uncal, rate


def _detector1(refs, uncal, reset: bool) -> np.ndarray:
    from jwst.dark_current import DarkCurrentStep
    from jwst.dq_init import DQInitStep
    from jwst.firstframe import FirstFrameStep
    from jwst.jump import JumpStep
    from jwst.lastframe import LastFrameStep
    from jwst.linearity import LinearityStep
    from jwst.ramp_fitting import RampFitStep
    from jwst.reset import ResetStep
    from jwst.rscd import RscdStep
    from jwst.saturation import SaturationStep

    noise = {"override_gain": str(refs["gain"]), "override_readnoise": str(refs["readnoise"])}
    m = DQInitStep.call(str(uncal), override_mask=str(refs["mask"]))
    m = SaturationStep.call(m, override_saturation=str(refs["saturation"]),
                            override_superbias="N/A")
    m = LastFrameStep.call(FirstFrameStep.call(m))
    if reset:
        m = ResetStep.call(m, override_reset=str(refs["reset"]))
    m = LinearityStep.call(m, override_linearity=str(refs["linearity"]))
    m = RscdStep.call(m, override_rscd=str(refs["rscd"]))
    m = DarkCurrentStep.call(m, override_dark=str(refs["dark"]))
    m = JumpStep.call(m, **noise)
    rate = RampFitStep.call(m, **noise)
    return np.asarray((rate[0] if isinstance(rate, (list, tuple)) else rate).data)


def test_detector1_gives_back_the_injected_rates(miri_case, monkeypatch):
    env, refs, uncal, rate = miri_case
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    got = _detector1(refs, uncal, reset=True)[:, 4:]  # columns 1-4: reference, dark
    ratio = got / rate[:, 4:]
    assert abs(np.median(ratio) - 1.0) < 0.003
    faint = ratio[:, :16]  # 5-90 DN/s
    assert abs(np.median(faint) - 1.0) < 0.01


def test_without_the_reset_reference_the_reset_anomaly_biases_the_slopes(miri_case,
                                                                         monkeypatch):
    env, refs, uncal, rate = miri_case
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    got = _detector1(refs, uncal, reset=False)[:, 4:]
    assert np.median(got - rate[:, 4:]) < -2.0  # DN/s: the anomaly's decay read as a slope
