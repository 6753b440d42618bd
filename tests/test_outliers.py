"""outlier_detection's flags in bright-star cores (metrics/outliers.py), and sweeping a
whole step's parameters."""

from __future__ import annotations

import numpy as np
import pytest

from simval.metrics.outliers import core_pixels, outlier_flags
from simval.scenario.sweep import check_sweep_keys, expand_sweep

CRVAL = (53.16, -27.79)
SCALE = 0.031  # arcsec / pixel
SHAPE = (120, 140)


def test_core_pixels_are_the_pixel_centres_within_the_radius():
    on_pixel, between, edge = core_pixels(SHAPE, np.array([50.0, 50.5, 0.0]),
                                          np.array([60.0, 60.5, 0.0]), 1.5)
    assert on_pixel[0].size == 9       # the centre, 4 sides (1 px) and 4 corners (1.41 px)
    assert between[0].size == 4        # 4 centres at 0.71 px; the next ring is at 1.58 px
    assert edge[0].size == 4           # clipped to the array
    assert set(zip(*(a.tolist() for a in edge), strict=True)) == {(0, 0), (0, 1), (1, 0), (1, 1)}


def _crf(path, dq):
    from astropy.coordinates import ICRS
    from astropy.modeling import models
    from gwcs import WCS as GWCS
    from gwcs import coordinate_frames as cf
    from stdatamodels.jwst.datamodels import ImageModel

    s = SCALE / 3600.0
    transform = ((models.Shift(-70.0) & models.Shift(-60.0)) | (models.Scale(-s) & models.Scale(s))
                 | models.Pix2Sky_TAN() | models.RotateNative2Celestial(*CRVAL, 180.0))
    model = ImageModel(np.zeros(SHAPE, np.float32))
    model.meta.wcs = GWCS([(cf.Frame2D(name="detector"), transform),
                           (cf.CelestialFrame(reference_frame=ICRS(), name="world"), None)])
    model.dq = dq
    model.save(path)
    return model.meta.wcs


def test_outlier_flags_count_core_pixels_at_the_true_positions(tmp_path):
    from stdatamodels.jwst.datamodels import dqflags

    flag = dqflags.pixel
    out = flag["OUTLIER"] | flag["DO_NOT_USE"]
    dq = np.zeros(SHAPE, np.uint32)
    stars_xy = [(30.0, 40.0), (100.0, 80.0)]
    dq[40, 29:32] = out                 # 3 of star 1's 9 core pixels
    dq[5, 5:15] = out                   # 10 sky pixels
    dq[60, 60] = flag["DEAD"] | flag["DO_NOT_USE"]   # not a science pixel
    wcs = _crf(tmp_path / "a_crf.fits", dq)
    ra, dec = wcs(np.array([x for x, _ in stars_xy] + [500.0]),
                  np.array([y for _, y in stars_xy] + [500.0]))  # a third star off the frame
    got = outlier_flags([str(tmp_path / "a_crf.fits")], ["a"], ra, dec).measurements()
    assert got["outlier_core_frac"].value == pytest.approx(3 / 18)
    assert got["outlier_core_frac"].n == 18
    assert got["outlier_core_star_frac"].value == pytest.approx(1 / 2)
    science = SHAPE[0] * SHAPE[1] - 1
    assert got["outlier_frac"].value == pytest.approx(13 / science)


def test_a_step_key_sweeps_parameter_sets_merged_over_the_scenario():
    data = {"name": "s", "pipeline": {"image3": {"outlier_detection": {"skip": False,
                                                                       "snr": "5.0 4.0"}}},
            "sweep": {"image3.outlier_detection": [{"skip": True}, {}, {"scale": "3.0 1.5"}]}}
    check_sweep_keys(data["sweep"])
    got = {v.label: v.data["pipeline"]["image3"]["outlier_detection"]
           for v in expand_sweep(data)}
    assert got == {
        "outlier_detection-skipTrue": {"skip": True, "snr": "5.0 4.0"},
        "outlier_detection-defaults": {"skip": False, "snr": "5.0 4.0"},
        "outlier_detection-scale3.01.5": {"skip": False, "snr": "5.0 4.0", "scale": "3.0 1.5"},
    }
    with pytest.raises(ValueError, match="a step's values are parameter mappings"):
        check_sweep_keys({"image3.outlier_detection": [True]})
