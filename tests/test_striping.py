"""Stripe amplitudes read the row offsets injected into white noise, and nothing without."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from simval.metrics.striping import amplifier_edges, stripe_amplitudes, striping_measurements


def _image(rows_sigma=0.0, cols_sigma=0.0, shape=(512, 2048), per_amp=True, seed=1):
    rng = np.random.default_rng(seed)
    img = 0.3 + rng.normal(0.0, 0.01, shape)        # sky 0.3, pixel noise 0.01 MJy/sr
    if rows_sigma:
        n_amp = 4 if per_amp else 1
        offsets = rng.normal(0.0, rows_sigma, (shape[0], n_amp))
        img += np.repeat(offsets, shape[1] // n_amp, axis=1)
    if cols_sigma:
        img += rng.normal(0.0, cols_sigma, shape[1])[None, :]
    return img


def test_amplifier_edges_follow_noutputs_and_the_subarray_start():
    assert amplifier_edges(2048, 4) == [0, 512, 1024, 1536, 2048]
    assert amplifier_edges(400, 1, 1649) == [0, 400]
    assert amplifier_edges(400, 4, 401) == [0, 112, 400]   # full-frame column 512 at x=112


@pytest.mark.parametrize("sigma", [0.002, 0.005])
def test_row_stripes_per_amplifier_read_their_amplitude(sigma):
    img = _image(rows_sigma=sigma)
    res = stripe_amplitudes(img, edges=amplifier_edges(2048, 4))
    assert res.row_amp == pytest.approx(sigma, rel=0.15)
    assert res.row_frac == pytest.approx(sigma / 0.01, rel=0.15)
    assert res.col_amp < 0.0005
    assert res.sigma_pix == pytest.approx(np.sqrt(0.01**2 + sigma**2), rel=0.05)
    # Averaging the four amplifiers' independent offsets would halve what is read.
    whole = stripe_amplitudes(img)
    assert whole.row_amp == pytest.approx(sigma / 2, rel=0.2)


def test_white_noise_reads_no_stripes_and_sources_do_not_make_any():
    img = _image()
    yy, xx = np.mgrid[:512, :2048]
    for x0, y0 in [(300, 100), (900, 400), (1700, 250)]:   # bright compact sources
        img += 50.0 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 2.0**2))
    res = stripe_amplitudes(img, edges=amplifier_edges(2048, 4))
    assert res.row_amp < 0.0005 and res.col_amp < 0.0005


def test_column_stripes_and_invalid_pixels():
    img = _image(cols_sigma=0.003)
    valid = np.ones(img.shape, bool)
    valid[:, :100] = False
    img[:, :100] = np.nan
    res = stripe_amplitudes(img, valid)
    assert res.col_amp == pytest.approx(0.003, rel=0.15) and res.row_amp < 0.0005
    assert res.n_cols == 2048 - 100


def test_cal_files_give_the_median_over_exposures(tmp_path):
    paths = []
    for i, sigma in enumerate((0.002, 0.004, 0.006)):
        hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(_image(sigma, seed=i), name="SCI"),
                             fits.ImageHDU(np.zeros((512, 2048), np.uint32), name="DQ")])
        hdul[0].header["NOUTPUTS"] = 4
        hdul[0].header["SUBSTRT1"] = 1
        hdul["DQ"].data[:, -4:] = 1  # DO_NOT_USE columns are left out
        paths.append(tmp_path / f"e{i}_cal.fits")
        hdul.writeto(paths[-1])
    got = striping_measurements([str(p) for p in paths], ["e0", "e1", "e2"]).measurements()
    assert got["stripe_row_amp_mjysr"].value == pytest.approx(0.004, rel=0.15)
    assert got["stripe_row_amp_mjysr"].n == 3 and got["stripe_row_amp_mjysr"].unit == "MJy/sr"
    per = got["stripe_row_frac"].details["exposures"]
    assert per["e2"]["row_amp_mjysr"] == pytest.approx(0.006, rel=0.15)
    assert per["e0"]["cols"] == 2048 - 4


def _rotated(img: np.ndarray, angle_deg: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.rotate(img, angle_deg, reshape=True, order=1, cval=np.nan)


@pytest.mark.parametrize("angle", [0.0, 20.0])
def test_mosaic_stripes_follow_the_detector_rows(angle):
    """Row offsets of 0.004 MJy/sr made in the detector frame and turned into a mosaic by
    ``angle``: read along the detector rows, not across them."""
    from simval.metrics.striping import mosaic_stripes

    det = _image(rows_sigma=0.004, shape=(1024, 1024), per_amp=False) - 0.3
    mosaic = det if angle == 0 else _rotated(det, angle)
    res = mosaic_stripes(mosaic, np.isfinite(mosaic), angle).result
    if angle == 0:
        assert res.row_amp == pytest.approx(0.004, rel=0.15)
    else:  # two bilinear resamplings average neighbouring rows' offsets
        assert 0.5 * 0.004 < res.row_amp < 1.05 * 0.004
    assert res.col_amp < 0.3 * res.row_amp
    # the wrong angle (across the rows) does not see them as rows
    if angle:
        across = mosaic_stripes(mosaic, np.isfinite(mosaic), angle + 90.0).result
        assert across.row_amp < 0.3 * res.row_amp


def test_mosaic_stripes_of_white_noise_read_a_floor_alike_both_ways():
    from simval.metrics.striping import mosaic_stripes

    noise = _rotated(_image(shape=(1024, 1024)) - 0.3, 20.0)
    res = mosaic_stripes(noise, np.isfinite(noise), 20.0).result
    assert res.row_frac < 0.05 and res.col_frac < 0.05
