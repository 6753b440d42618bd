"""gain_ratio: the gain behind ramp_fit's Poisson variance over the simulator's, on ramps
fitted by stcal itself (known answer: the GAIN reference over the true gain)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from simval.metrics import poisson_gain

TRUE_GAIN = 2.05  # e-/DN, what the ramps are simulated with
TGROUP, NGROUPS = 3.0, 10
READ_NOISE = 10.0  # DN per read


def _ramps(rng: np.random.Generator, rate_dn_s: np.ndarray) -> np.ndarray:
    """(1, ngroups, ny, nx) float32 ramps: Poisson electrons per group over TRUE_GAIN plus
    white read noise."""
    electrons = rng.poisson(rate_dn_s * TRUE_GAIN * TGROUP, (NGROUPS, *rate_dn_s.shape))
    dn = np.cumsum(electrons, axis=0) / TRUE_GAIN
    return (dn + rng.normal(0.0, READ_NOISE, dn.shape))[None].astype(np.float32)


def _fit(ramps: np.ndarray, pipeline_gain: float) -> tuple[np.ndarray, ...]:
    """stcal's OLS_C ramp fit with ``pipeline_gain`` as the GAIN reference."""
    from stcal.ramp_fitting.ramp_fit import ramp_fit_data
    from stcal.ramp_fitting.ramp_fit_class import RampData
    from stdatamodels.jwst.datamodels import dqflags

    shape = ramps.shape[2:]
    rd = RampData()
    rd.set_arrays(ramps, np.zeros(ramps.shape, np.uint8), np.zeros(shape, np.uint32),
                  np.zeros(shape, np.float32))
    rd.set_meta(name="NIRCAM", frame_time=TGROUP, group_time=TGROUP, groupgap=0, nframes=1,
                drop_frames1=None)
    rd.set_dqflags(dqflags.pixel)
    rd.start_row, rd.num_rows = 0, shape[0]
    rd.algorithm, rd.suppress_one_group_ramps = "OLS_C", False
    image, _, _ = ramp_fit_data(rd, False, np.full(shape, READ_NOISE, np.float32),
                                np.full(shape, pipeline_gain, np.float32), "OLS_C", "optimal",
                                "none")
    return image["slope"], image["dq"], image["var_poisson"]


def _files(tmp_path, sci, dq, var_poisson, name="a"):
    rate = tmp_path / f"{name}_rate.fits"
    fits.HDUList([fits.PrimaryHDU(header=fits.Header({"TGROUP": TGROUP, "NGROUPS": NGROUPS})),
                  fits.ImageHDU(sci, name="SCI"), fits.ImageHDU(dq, name="DQ"),
                  fits.ImageHDU(var_poisson, name="VAR_POISSON")]).writeto(rate)
    uncal = tmp_path / f"{name}_uncal.fits"
    fits.PrimaryHDU(header=fits.Header({"GAIN": TRUE_GAIN})).writeto(uncal)
    return str(rate), str(uncal)


@pytest.mark.parametrize("scale", [1.0, 1.05, 0.9])
def test_gain_ratio_reads_the_reference_over_the_true_gain(tmp_path, scale):
    rng = np.random.default_rng(7)
    rate = np.full((40, 40), 0.1)
    rate[5:25, 5:25] = rng.uniform(20.0, 300.0, (20, 20))  # 540-8100 DN over the ramp
    sci, dq, var = _fit(_ramps(rng, rate), TRUE_GAIN * scale)
    rate_path, uncal_path = _files(tmp_path, sci, dq, var)
    got = poisson_gain([rate_path], [uncal_path], ["a"]).measurements()["gain_ratio"]
    assert got.n == 400  # only the bright block: the 3-DN sky pixels are left out
    assert got.value == pytest.approx(scale, abs=0.01)
    assert got.details["simulator_gain"] == [TRUE_GAIN]


def test_gain_ratio_is_null_with_a_reason_without_bright_pixels_or_gain(tmp_path):
    rng = np.random.default_rng(8)
    sci, dq, var = _fit(_ramps(rng, np.full((20, 20), 0.5)), TRUE_GAIN)
    rate_path, uncal_path = _files(tmp_path, sci, dq, var)
    faint = poisson_gain([rate_path], [uncal_path], ["a"]).measurements()["gain_ratio"]
    assert faint.value is None and "need 50" in faint.details["not_computed"]
    fits.PrimaryHDU().writeto(uncal_path, overwrite=True)
    nogain = poisson_gain([rate_path], [uncal_path], ["a"]).measurements()["gain_ratio"]
    assert nogain.value is None and "GAIN" in nogain.details["not_computed"]
