"""The MIRI imager's facts against the pipeline's and the SIAF's own tables, and the errors
a scenario gets for a filter, subarray or read pattern MIRI does not have."""

from __future__ import annotations

import pytest

from simval.instruments import miri


@pytest.mark.parametrize("subarray, pattern, seconds", [
    ("FULL", "FASTR1", 2.77504), ("BRIGHTSKY", "FASTR1", 0.86528),
    ("SUB256", "FASTR1", 0.29952), ("SUB128", "FASTR1", 0.11904),
    ("SUB64", "FASTR1", 0.08512), ("FULL", "SLOWR1", 23.88992),
])
def test_frame_times_follow_the_clock_model(subarray, pattern, seconds):
    # JDox "MIRI Detector Subarrays": FULL 2.775 s, BRIGHTSKY 0.865 s, SUB256 0.300 s
    assert miri.frame_time(subarray, pattern) == pytest.approx(seconds, abs=1e-9)


def test_frame_clocks_agree_with_the_pipelines_emicorr_table():
    from jwst.emicorr.emicorr import subarray_clocks

    for name, sub in miri.SUBARRAYS.items():
        key = "FULL_FAST" if name == "FULL" else name
        assert miri.frame_clocks(name) == subarray_clocks[key]["frameclocks"], name
        assert sub.rowclocks == subarray_clocks[key]["rowclocks"], name
    assert miri.frame_clocks("FULL", "SLOWR1") == subarray_clocks["FULL_SLOW"]["frameclocks"]


def test_subarray_geometry_agrees_with_the_siaf():
    from simval.offline import import_pysiaf

    siaf = import_pysiaf().Siaf("MIRI")
    for name, sub in miri.SUBARRAYS.items():
        ap = siaf[f"MIRIM_{name}"]
        assert (ap.XSciSize, ap.YSciSize) == (sub.xsize, sub.ysize), name
        assert tuple(int(v) for v in ap.dms_corner()) == (sub.xstart, sub.ystart), name
    full = siaf["MIRIM_FULL"]
    assert (full.XSciScale, full.YSciScale) == pytest.approx(miri.PIXEL_SCALE_ARCSEC, abs=5e-5)


def test_detector_values_in_dn():
    d = miri.DETECTOR
    assert d.full_well_dn == pytest.approx(52_500.0)
    assert d.readnoise_frame_dn == pytest.approx(6.0 / 2**0.5)


@pytest.mark.parametrize("call, words", [
    (lambda: miri.check_filter("F770"), ["'F770' is not a MIRI imaging filter", "F770W"]),
    (lambda: miri.get_subarray("SUB400P"), ["unknown MIRI imaging subarray", "BRIGHTSKY"]),
    (lambda: miri.check_readout("SLOWR1", "SUB256"),
     ["SLOWR1 cannot read SUB256", "only FULL", "FASTR1"]),
    (lambda: miri.check_readout("DEEP8", "FULL"), ["unknown MIRI read pattern", "FASTR1, SLOWR1"]),
])
def test_what_miri_lacks_is_refused_with_the_allowed_values(call, words):
    with pytest.raises(ValueError) as info:
        call()
    for w in words:
        assert w in str(info.value)


def test_filters_are_read_in_either_case_and_ordered_by_wavelength():
    assert miri.check_filter("f1500w") == "F1500W"
    pivots = [f.pivot_um for f in miri.FILTERS.values()]
    assert pivots == sorted(pivots)


def test_emi_on_the_read_clock_model_is_what_the_pipelines_emicorr_removes():
    """A 218.3 Hz tone (not commensurate with the frame) placed with read_clocks on SUB64
    ramps, two integrations: jwst's own emicorr fit (emicorr_refwave) removes it."""
    import numpy as np
    from jwst.emicorr.emicorr import emicorr_refwave

    sub, ngroups, nints = miri.get_subarray("SUB64"), 12, 2
    group_start, offset = miri.read_clocks("SUB64", "FASTR1", ngroups, nints)
    assert group_start.shape == (nints, ngroups) and offset.shape == (sub.ysize, sub.xsize)
    period = 1.0 / (218.3 * miri.PIXEL_TIME_S)  # pixel clocks
    clocks = group_start[:, :, None, None] + offset[None, None]
    emi = 5.0 * np.sin(2 * np.pi * clocks / period + 0.7)
    rng = np.random.default_rng(3)
    ramps = np.arange(ngroups)[None, :, None, None] * rng.uniform(5, 50, (1, 1, 64, 72))
    data = (ramps + emi + rng.normal(0.0, 0.5, emi.shape)).astype(np.float64)
    phase = (np.arange(500) + 0.5) / 500
    cleaned = emicorr_refwave(data.copy(), np.zeros((64, 72), np.uint32),
                              np.sin(2 * np.pi * phase), 1, sub.rowclocks, sub.frameclocks,
                              period)
    left = cleaned - ramps
    assert np.std(data - ramps) > 3.0          # 5 DN of EMI, 0.5 DN of noise
    assert np.std(left) < 0.6                  # what remains is the noise
