"""The alignment measurement and the coron3 call's guard, without a run."""

from __future__ import annotations

import numpy as np
import pytest


def test_fitted_shift_reads_a_known_shift():
    from simval.metrics.coron_alignment import fitted_shift, shift_image

    yy, xx = np.mgrid[0:64, 0:64]
    psf = np.exp(-((xx - 31.3) ** 2 + (yy - 32.1) ** 2) / (2 * 2.0**2))
    psf += 0.1 * np.exp(-((xx - 31.3) ** 2 + (yy - 32.1) ** 2) / (2 * 6.0**2))
    moved = 1.7 * shift_image(psf, 0.32, -0.21)
    dx, dy = fitted_shift(moved, psf)
    assert (dx, dy) == pytest.approx((0.32, -0.21), abs=1e-3)


def test_applied_shifts_against_expected_give_the_error():
    from simval.metrics.coron_alignment import applied_shifts, shift_image

    yy, xx = np.mgrid[0:48, 0:48]
    psf = np.exp(-((xx - 23.6) ** 2 + (yy - 24.2) ** 2) / (2 * 1.8**2))
    stack = np.array([psf, psf])
    aligned = np.array([shift_image(psf, 0.25, 0.0), psf])  # frame 2 left where it was
    shifts = applied_shifts(stack, aligned, expected=[[0.25, 0.0], [0.0, -0.3]])
    assert shifts.applied == pytest.approx(np.array([[0.25, 0.0], [0.0, 0.0]]), abs=1e-3)
    assert shifts.rms_px() == pytest.approx(0.3 / np.sqrt(2), abs=1e-3)


def test_coron3_needs_science_and_psf_members(tmp_path):
    from simval import calibrate

    with pytest.raises(ValueError, match="science and psf members"):
        calibrate.coron3([(tmp_path / "a_calints.fits", "science")], "p", tmp_path,
                         calibrate.CrdsSetup(), tmp_path / "log")


def test_the_klip_pre_hook_realigns_the_references_in_place():
    """The workaround for align_refs' zero shifts: each reference frame moved onto its
    science integration (known shifts of 0.3 and -0.2 px come back to 2e-3 px)."""
    from stdatamodels.jwst import datamodels

    from simval.metrics.coron_alignment import fitted_shift, realign_references, shift_image

    yy, xx = np.mgrid[0:100, 0:100]
    psf = np.exp(-((xx - 50.2) ** 2 + (yy - 49.7) ** 2) / (2 * 2.2**2))
    psf += 0.05 * np.exp(-((xx - 50.2) ** 2 + (yy - 49.7) ** 2) / (2 * 8.0**2))
    target = datamodels.CubeModel(np.array([shift_image(psf, 0.3, -0.2)] * 2, np.float32))
    target.meta.wcsinfo.crpix1, target.meta.wcsinfo.crpix2 = 51.0, 50.0
    refs = np.array([[psf, shift_image(psf, 0.1, 0.1)]] * 2, np.float32)
    aligned = datamodels.QuadModel(refs.copy())
    assert realign_references(target, aligned) is None
    for i in range(2):
        for k in range(2):
            residual = fitted_shift(target.data[i], aligned.data[i, k])
            assert residual == pytest.approx((0.0, 0.0), abs=2e-3)
    assert fitted_shift(aligned.data[0, 0], refs[0, 0]) == pytest.approx((0.3, -0.2), abs=2e-3)
    # jwst 3.0's align_refs makes one cube: the references aligned to the first integration
    cube = datamodels.CubeModel(refs[0].copy())
    realign_references(target, cube)
    for k in range(2):
        assert fitted_shift(target.data[0], cube.data[k]) == pytest.approx((0, 0), abs=2e-3)
