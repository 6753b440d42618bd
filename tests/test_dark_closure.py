"""The kit's dark ramps, as MIRAGE reads them, against the pipeline's noise and dark models.

A frame-averaged readout (SHALLOW4: 4 frames averaged per group, 1 skipped) with a faint sky
is where the two must agree exactly: the sky of a FULL-frame SHALLOW4 x 5 exposure (0.105
DN/s, read-noise limited) came out 2-3% low when the READNOISE reference held single-read
noise, because stcal reads that reference as CDS noise. Known answers: a ramp with no cosmic
ray has no jump, and the slope of a ramp fitted by the pipeline is the injected rate.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
from astropy.io import ascii, fits
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

from simval.instruments.nircam import mirage_config_file
from simval.kit import detector_maps, detector_refs, mirage_darks
from simval.kit.defects import defect_map
from simval.kit.detectors import get_detector
from simval.kit.readout import get_subarray

SEED = 20221
NRCB1 = get_detector("NRCB1")
#: SHALLOW4 x 5 (MIRAGE's nircam_read_pattern_definitions.list: nframe 4, nskip 1).
NFRAMES, GROUPGAP, NGROUPS = 4, 1, 5
FRAMES = NGROUPS * (NFRAMES + GROUPGAP)
#: Zodiacal sky of the F150W full-frame case, DN/s.
SKY_DN_S = 0.105


@pytest.fixture(scope="module")
def window():
    return get_subarray(NRCB1, "SUB400P")


@pytest.fixture(scope="module")
def mirage_dark_sci(tmp_path_factory, window):
    """SCI of the kit's white-noise MIRAGE dark (FRAMES frames), cut to the window, DN."""
    path = mirage_darks.write_mirage_dark(tmp_path_factory.mktemp("dark") / "dark.fits",
                                          NRCB1, window.name, FRAMES, SEED,
                                          correlated_noise=False)
    with fits.open(path) as hdus:
        return hdus["SCI"].data[0][(slice(None), *window.slices)].astype(np.float64)


@pytest.fixture(scope="module")
def readnoise_ref(tmp_path_factory, window):
    """The kit's READNOISE reference, cut to the window, DN."""
    path = detector_refs.write_readnoise(tmp_path_factory.mktemp("rn") / "rn.fits", NRCB1, SEED)
    with datamodels.ReadnoiseModel(str(path)) as model:
        return np.array(model.data[window.slices], dtype=np.float64)


@pytest.fixture(scope="module")
def quiet(window):
    """Science pixels with no defect (normal dark current), away from the window edge."""
    good = defect_map(NRCB1, SEED).dq[window.slices] == 0
    good[:4] = good[-4:] = False
    good[:, :4] = good[:, -4:] = False
    return good


def _groups(frames: np.ndarray) -> np.ndarray:
    """Frames averaged into SHALLOW4 groups, frames ``g*(nf+gap) .. +nf-1`` in group g."""
    step = NFRAMES + GROUPGAP
    return np.stack([frames[g * step: g * step + NFRAMES].mean(axis=0)
                     for g in range(NGROUPS)])


def test_readnoise_reference_is_the_cds_noise_of_the_mirage_dark(mirage_dark_sci,
                                                                 readnoise_ref, quiet):
    """stcal reads READNOISE as CDS noise: sqrt(2) x the noise of each MIRAGE dark frame."""
    mean = detector_refs.dark_frames(NRCB1, SEED, "SUB400P", FRAMES).astype(np.float64)
    cds = np.diff(mirage_dark_sci - mean, axis=0)[:, quiet]
    measured = float(np.sqrt(np.mean(cds**2)))
    expected = float(np.sqrt(np.mean(readnoise_ref[quiet] ** 2)))
    assert measured == pytest.approx(expected, rel=0.01)
    single = detector_maps.readnoise(NRCB1, SEED)[get_subarray(NRCB1, "SUB400P").slices]
    assert readnoise_ref == pytest.approx(np.sqrt(2.0) * single, rel=1e-6)


def _fit(ramp: np.ndarray, readnoise: np.ndarray, gain: np.ndarray, frame_time: float):
    """stcal jump detection then OLS_C ramp fitting (jwst defaults) of one integration.

    Returns the fraction of pixels with a JUMP_DET flag and the slope image, DN/s.
    """
    from stcal.jump.jump import detect_jumps_data
    from stcal.jump.jump_class import JumpData
    from stcal.ramp_fitting.ramp_fit import ramp_fit

    model = datamodels.RampModel(data=ramp[None].astype(np.float32),
                                 groupdq=np.zeros((1, *ramp.shape), np.uint8),
                                 pixeldq=np.zeros(ramp.shape[1:], np.uint32))
    exp = model.meta.exposure
    exp.nframes, exp.groupgap, exp.ngroups, exp.nints = NFRAMES, GROUPGAP, NGROUPS, 1
    exp.frame_time, exp.group_time = frame_time, frame_time * (NFRAMES + GROUPGAP)
    jump = JumpData(model, gain, readnoise.astype(np.float32), dqflags.pixel)
    jump.max_cores = "1"
    gdq, _pdq, *_ = detect_jumps_data(jump)
    model.groupdq = gdq
    flagged = (gdq[0] & dqflags.group["JUMP_DET"]).any(axis=0)
    image, _, _ = ramp_fit(model, False, readnoise.astype(np.float32).copy(), gain, "OLS_C",
                           "optimal", "1", dqflags.pixel, suppress_one_group=True)
    return flagged, image["slope"]


def test_faint_sky_of_a_frame_averaged_ramp_closes(mirage_dark_sci, readnoise_ref, quiet,
                                                   window):
    """MIRAGE's dark + a Poisson sky at full-frame timing, calibrated as the pipeline does
    (dark averaged into groups, jump, OLS_C with the kit's READNOISE): no false jumps and
    the injected sky back, to 4 standard errors (0.2% of the sky)."""
    frame_time = get_subarray(NRCB1, "FULL").frame_time
    gain = detector_maps.gain(NRCB1, SEED)[window.slices].astype(np.float32)
    rng = np.random.default_rng(7)
    electrons = rng.poisson(SKY_DN_S * frame_time * NRCB1.gain_e_per_dn,
                            mirage_dark_sci.shape)
    sky = np.cumsum(electrons, axis=0) / NRCB1.gain_e_per_dn
    mean = detector_refs.dark_frames(NRCB1, SEED, window.name, FRAMES).astype(np.float64)
    ramp = _groups(mirage_dark_sci + sky) - _groups(mean)
    flagged, slope = _fit(ramp, readnoise_ref, gain, frame_time)
    assert flagged[quiet].mean() < 0.01          # single-read reference: 4.4%
    rate = slope[quiet]
    sem = rate.std() / np.sqrt(rate.size)
    assert abs(rate.mean() - SKY_DN_S) < 4 * sem  # single-read reference: -0.0024 DN/s


@pytest.fixture(scope="module")
def dark_prep(mirage):
    """MIRAGE's dark_prep module (imported offline, cwd in a temporary directory)."""
    return mirage.dark_prep


def test_pipeline_dark_averaged_by_stcal_is_mirage_dark_prep_of_the_same_frames(dark_prep):
    """MIRAGE averages the RAPID linearized dark into groups (``DarkPrep.reorder_dark``) as
    stcal averages the DARK reference (``average_dark_frames_3d``): same frames, same means."""
    from stcal.dark_current.dark_class import DarkData
    from stcal.dark_current.dark_sub import average_dark_frames_3d

    frames = detector_refs.dark_frames(NRCB1, SEED, "SUB64P", FRAMES)
    # A distinct value per frame, so that any other choice of frames shows.
    frames = frames + np.arange(FRAMES, dtype=np.float32)[:, None, None] ** 2
    prep = dark_prep.DarkPrep.__new__(dark_prep.DarkPrep)
    prep.logger = dark_prep.logging.getLogger("simval.test.dark_prep")
    prep.readpatterns = ascii.read(mirage_config_file("nircam_read_pattern_definitions.list"))
    prep.params = {"Reffiles": {"linearized_darkfile": "kit.fits"},
                   "Readout": {"readpatt": "SHALLOW4", "nframe": NFRAMES, "nskip": GROUPGAP,
                               "ngroup": NGROUPS, "nint": 1}}
    dark = types.SimpleNamespace(data=frames[None].copy(), sbAndRefpix=None, zeroframe=None,
                                 header={"READPATT": "RAPID", "NFRAMES": 1})
    mirage_groups, _ = prep.reorder_dark(dark)

    model = datamodels.DarkModel(data=frames)
    model.meta.exposure.nframes, model.meta.exposure.groupgap = 1, 0
    model.meta.exposure.ngroups = FRAMES
    pipeline = average_dark_frames_3d(DarkData(dark_model=model), NGROUPS, NFRAMES, GROUPGAP)
    np.testing.assert_allclose(mirage_groups.data[0], pipeline.data, rtol=1e-6)
    np.testing.assert_allclose(pipeline.data, _groups(frames.astype(np.float64)), rtol=1e-6)
