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
