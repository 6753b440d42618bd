"""simval.metrics.aperture_noise: is ERR right once drizzle's pixel correlation is counted?

Known answers:

* Casertano et al. (2000)'s R from its closed form against the numerical correlation model
  (pixfrac 1 at the native scale: R = 1.5, the pixel variance 4/9 of ERR**2);
* a mosaic whose noise is white noise convolved with the 2 x 2 kernel ``k = [a, 1] x [a,
  1]``, ``a = 2 - sqrt(3)``: its covariance is ``(k*k)/sum(k)**2``, [1/6, 2/3, 1/6] per
  axis, the correlation drizzle makes at pixfrac 1 and the native scale, and the noise of
  a large-area sum is the white sigma per pixel, so ERR = sigma is right. It reads 1 with
  ERR right, 0.5 with ERR x 2, 2 with ERR / 2; the raw ratio reads what the kernel's
  covariance predicts for the aperture (computed here from the kernel, not the model) and
  the pixel NMAD 2/3 (x R = 1);
* white noise really drizzled (the ``drizzle`` package, square kernel, pixfrac 0.8, 4
  exposures with sub-pixel shifts on a rotated grid) with ERR propagated as jwst's resample
  does reads 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import correlate2d

from simval.evaluate import EvaluationSettings, mosaic_measurements, read_mosaic
from simval.metrics import aperture_noise, casertano_r, drizzle_correlation, source_mask
from simval.metrics.aperture_noise import sky_aperture_positions
from simval.metrics_schema import read_metrics, write_metrics
from simval.report.html import render_report
from simval.testing import make_fake_run, make_i2d, make_truth, make_truth_mosaic
from tests.test_report import parse_html

A = 2.0 - math.sqrt(3.0)
KERNEL = np.outer([A, 1.0], [A, 1.0])
SIGMA = 0.01
SHAPE = (600, 600)
NATIVE = {"pixfrac": 1.0, "pixel_scale_ratio": 1.0}


def _covariance_of_kernel(kernel: np.ndarray) -> np.ndarray:
    """Covariance (per unit white variance, kernel normalised to unit sum) at the lags of
    ``correlate2d``'s full output: the noise's true covariance."""
    k = kernel / kernel.sum()
    return correlate2d(k, k, mode="full")


def test_correlation_model_reproduces_casertano_r():
    for pixfrac, scale in ((1.0, 1.0), (0.8, 1.0), (0.5, 0.5), (1.0, 0.6), (0.6, 1.3),
                           (1.0, 2.0), (0.7, 0.65)):
        c = drizzle_correlation(pixfrac, scale)
        assert c.rho1.sum() == pytest.approx(1.0)
        assert c.r_factor == pytest.approx(casertano_r(pixfrac, scale), rel=2e-4)
    assert casertano_r(1.0, 1.0) == pytest.approx(1.5)
    assert casertano_r(0.5, 1.0) == pytest.approx(1 / (1 - 0.5 / 3))
    assert casertano_r(2.0, 1.0) == pytest.approx(2.0 / (1 - 1 / 6))
    native = drizzle_correlation(1.0, 1.0)
    assert native.rho1 == pytest.approx([1 / 6, 2 / 3, 1 / 6], abs=1e-5)
    # the test kernel's covariance is the drizzle model at pixfrac 1, native scale
    cov = _covariance_of_kernel(KERNEL)
    assert cov == pytest.approx(native.kernel2d, abs=1e-5)
    # the point kernel drops input pixels on output pixels: no correlation at the native
    # scale; kernels without a model say so
    assert drizzle_correlation(1.0, 1.0, "point").rho1 == pytest.approx([1.0])
    assert drizzle_correlation(0.8, 1.0, "turbo").r_factor == pytest.approx(1 / (1 - 0.8 / 3),
                                                                           rel=2e-4)
    with pytest.raises(ValueError, match="lanczos3"):
        drizzle_correlation(1.0, 1.0, "lanczos3")


def _correlated_mosaic(tmp_path, err_scale: float, *, resample=NATIVE, seed: int = 3):
    truth = make_truth(1, n_stars=30, n_galaxies=0, shape=SHAPE, mag_range=(19.0, 22.0))
    path = tmp_path / f"m{err_scale:g}_i2d.fits"
    make_i2d(path, truth, seed=seed, shape=SHAPE, noise_mjysr=SIGMA, noise_kernel=KERNEL,
             err_scale=err_scale, resample=resample, hole=(slice(0, 40), slice(0, 600)))
    return read_mosaic(path)


def _usable(mosaic):
    valid = np.isfinite(mosaic.data) & (mosaic.wht > 0)
    return valid, source_mask(mosaic.data, valid=valid)


def _expected_raw_ratio(radius: float) -> float:
    """sqrt(w C w / w w) of a centred aperture with the kernel's true covariance."""
    from photutils.aperture import CircularAperture

    w = CircularAperture((20.0, 20.0), radius).to_mask(method="exact").data
    cov = _covariance_of_kernel(KERNEL)  # 3 x 3, lag 0 at the centre
    num = sum(cov[1 + dy, 1 + dx] * np.sum(w[max(dy, 0):w.shape[0] + min(dy, 0),
                                             max(dx, 0):w.shape[1] + min(dx, 0)] *
                                           w[max(-dy, 0):w.shape[0] + min(-dy, 0),
                                             max(-dx, 0):w.shape[1] + min(-dx, 0)])
              for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    return math.sqrt(num / np.sum(w ** 2))


@pytest.mark.parametrize("err_scale", [1.0, 2.0, 0.5])
def test_known_kernel_reads_one_over_the_err_fault(tmp_path, err_scale):
    mosaic = _correlated_mosaic(tmp_path, err_scale)
    assert mosaic.resample["pixfrac"] == 1.0 and mosaic.resample["kernel"] == "square"
    valid, mask = _usable(mosaic)
    corr = drizzle_correlation(1.0, 1.0)
    res = aperture_noise(mosaic.data, mosaic.err, correlation=corr, mask=mask, valid=valid,
                         rng=np.random.default_rng(5), n_apertures=3000)
    want = 1.0 / err_scale
    for r in res.radii:
        assert r.n > 600, r
        # 4 sigma of an NMAD of n values: 1.1664 / sqrt(n)
        assert r.ratio == pytest.approx(want, abs=4 * 1.1664 * want / math.sqrt(r.n)), r
        assert r.ratio_err == pytest.approx(1.1664 * r.ratio / math.sqrt(r.n))
        raw = want * _expected_raw_ratio(r.radius_pix)
        assert r.ratio_raw == pytest.approx(raw, abs=4 * 1.1664 * raw / math.sqrt(r.n)), r
    # pixels: the NMAD is 2/3 of what ERR says for a right ERR; times R it is 1
    assert res.pixel_nmad == pytest.approx(want * 2 / 3, rel=0.02)
    assert res.pixel_nmad_corrected == pytest.approx(want, rel=0.02)
    m = res.measurements()
    assert m["aper_noise_ratio_r2"].value == pytest.approx(res.radii[0].ratio)
    assert m["aper_noise_ratio_raw_r4"].value == pytest.approx(res.radii[1].ratio_raw)
    assert m["err_ratio_nmad_drizzle"].details["casertano_r"] == pytest.approx(1.5, rel=1e-5)


def test_raw_ratio_cannot_tell_and_white_noise_needs_no_correction(tmp_path):
    """With the correlation ignored a right ERR reads below 1 in small apertures (what the
    issue measured on the pixel NMAD); white noise at the point kernel reads 1 raw."""
    mosaic = _correlated_mosaic(tmp_path, 1.0)
    valid, mask = _usable(mosaic)
    res = aperture_noise(mosaic.data, mosaic.err, correlation=drizzle_correlation(1.0, 1.0),
                         mask=mask, valid=valid, rng=np.random.default_rng(5), radii=(1.0,),
                         n_apertures=3000)
    raw = _expected_raw_ratio(1.0)
    assert raw < 0.9
    (r,) = res.radii
    assert r.ratio_raw == pytest.approx(raw, abs=4 * 1.1664 * raw / math.sqrt(r.n))
    assert r.ratio == pytest.approx(1.0, abs=4 * 1.1664 / math.sqrt(r.n))

    truth = make_truth(1, n_stars=0, n_galaxies=0, shape=(300, 300))
    path = tmp_path / "white_i2d.fits"
    make_i2d(path, truth, seed=4, shape=(300, 300), noise_mjysr=SIGMA, hole=None,
             resample=NATIVE)
    white = read_mosaic(path)
    res = aperture_noise(white.data, white.err,
                         correlation=drizzle_correlation(1.0, 1.0, "point"),
                         rng=np.random.default_rng(6), n_apertures=2000)
    for r in res.radii:
        assert r.ratio_raw == pytest.approx(r.ratio, rel=1e-9)
        assert r.ratio == pytest.approx(1.0, abs=4 * 1.1664 / math.sqrt(r.n))


def _drizzled_white_noise(pixfrac: float, scale: float, rot_deg: float, n_exp: int = 4):
    """White noise (sigma 1 per input pixel) of ``n_exp`` exposures with random sub-pixel
    shifts drizzled onto a grid ``scale`` times the input pixel, rotated by ``rot_deg``;
    ERR as jwst's resample propagates it (each exposure's sigma drizzled like data,
    combined as sum(w**2 var) / sum(w)**2, divided by scale**2)."""
    from drizzle.resample import Drizzle

    rng = np.random.default_rng(11)
    n_in = 480
    n_out = int(n_in / scale * 0.7)
    sci = Drizzle(kernel="square", out_shape=(n_out, n_out), fillval=np.nan,
                  disable_ctx=True)
    yy, xx = np.mgrid[0:n_in, 0:n_in].astype(float) - n_in / 2
    th = math.radians(rot_deg)
    wsum = np.zeros((n_out, n_out))
    w2var = np.zeros((n_out, n_out))
    for _ in range(n_exp):
        dx, dy = rng.uniform(0, 1, 2)
        pixmap = np.dstack([(math.cos(th) * xx - math.sin(th) * yy) / scale + n_out / 2 + dx,
                            (math.sin(th) * xx + math.cos(th) * yy) / scale + n_out / 2 + dy])
        ones = np.ones((n_in, n_in), np.float32)
        sci.add_image(rng.normal(0.0, 1.0, (n_in, n_in)).astype(np.float32), exptime=1.0,
                      pixmap=pixmap, pixfrac=pixfrac, weight_map=ones, in_units="cps")
        sig = Drizzle(kernel="square", out_shape=(n_out, n_out), fillval=np.nan,
                      disable_ctx=True)
        sig.add_image(ones, exptime=1.0, pixmap=pixmap, pixfrac=pixfrac, weight_map=ones,
                      in_units="cps")
        covered = np.isfinite(sig.out_img) & (sig.out_wht > 0)
        wsum[covered] += 1.0
        w2var[covered] += sig.out_img[covered] ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.sqrt(w2var / wsum ** 2 / scale ** 2)
    full = wsum == n_exp
    return np.where(full, sci.out_img, np.nan), np.where(full, err, np.nan)


def test_drizzled_white_noise_with_jwst_err_reads_one():
    data, err = _drizzled_white_noise(0.8, 0.8, 10.0)
    corr = drizzle_correlation(0.8, 0.8)
    res = aperture_noise(data, err, correlation=corr, rng=np.random.default_rng(2),
                         n_apertures=3000)
    for r in res.radii:
        assert r.n > 400, r
        assert r.ratio == pytest.approx(1.0, abs=0.03 + 4 * 1.1664 / math.sqrt(r.n)), r
        assert r.ratio_raw < r.ratio  # a right ERR reads low without the covariance
    assert res.pixel_nmad == pytest.approx(1 / corr.r_factor, rel=0.1)
    assert res.pixel_nmad_corrected == pytest.approx(1.0, abs=0.1)


def test_apertures_lie_apart_on_usable_sky():
    use = np.ones((120, 160), bool)
    use[50:70, :] = False
    pos = sky_aperture_positions(use, 3.0, 500, np.random.default_rng(1), spacing_pix=10)
    assert 40 < len(pos) <= 500
    x, y = pos[:, 0], pos[:, 1]
    assert np.all((x >= 4) & (x <= 155) & (y >= 4) & (y <= 115))
    assert not np.any((y > 50 - 4.5) & (y < 70 + 3.5))  # whole aperture off the masked band
    cheb = np.maximum(np.abs(np.rint(x)[:, None] - np.rint(x)[None]),
                      np.abs(np.rint(y)[:, None] - np.rint(y)[None]))
    np.fill_diagonal(cheb, 99)
    assert cheb.min() >= 10
    assert len(sky_aperture_positions(np.zeros((50, 50), bool), 2.0, 10,
                                      np.random.default_rng(1))) == 0


def _settings() -> EvaluationSettings:
    return EvaluationSettings(match_radius_mas=None, background_recipe="skymatch",
                              skymethod="match", match_down=True, seed=0, catalog_options={})


def test_mosaic_measurements_report_the_aperture_noise(tmp_path):
    """The evaluation path reads PIXFRAC / PXSCLRT from the i2d; without them only the raw
    ratios are measured and the corrected ones say why not."""
    mosaic = _correlated_mosaic(tmp_path, 2.0)
    common = dict(segm=None, injected=np.array([0.2]), levels=np.array([np.nan]),
                  names=["a"], member_names=["a"], settings=_settings(),
                  aperture=(3.0, 1.0, "test"), rng=np.random.default_rng(0),
                  aperture_rng=np.random.default_rng(1))
    m = mosaic_measurements(mosaic, **common)
    for name in ("aper_noise_ratio_r2", "aper_noise_ratio_r4", "err_ratio_nmad_drizzle"):
        assert m[name].value == pytest.approx(0.5, abs=0.06), name
        assert m[name].unit == "ratio" and m[name].n > 100
    assert m["err_ratio_nmad"].value == pytest.approx(1 / 3, abs=0.02)  # 0.5 x 2/3
    assert m["aper_noise_ratio_r2"].details["kernel_source"].startswith("not recorded")

    bare = _correlated_mosaic(tmp_path / "bare", 2.0, resample=None)
    m = mosaic_measurements(bare, **common)
    assert m["aper_noise_ratio_r2"].value is None
    assert "PIXFRAC" in m["aper_noise_ratio_r2"].details["not_computed"]
    assert m["aper_noise_ratio_raw_r2"].value == pytest.approx(
        0.5 * _expected_raw_ratio(2.0), abs=0.06)


def test_the_report_shows_raw_and_corrected_ratios(tmp_path):

    mosaic = _correlated_mosaic(tmp_path, 2.0)
    valid, mask = _usable(mosaic)
    res = aperture_noise(mosaic.data, mosaic.err, correlation=drizzle_correlation(1.0, 1.0),
                         mask=mask, valid=valid, rng=np.random.default_rng(5))
    root = make_fake_run(tmp_path / "run", bands=("F150W",))
    doc = read_metrics(root / "metrics.json")
    doc.add("F150W", res.measurements())
    write_metrics(root / "metrics.json", doc)
    html = render_report(root)
    table = parse_html(html).find("table", cls="noise-ratio")
    rows = [[td.text for td in tr.find_all("td")] for tr in table.find("tbody").find_all("tr")]
    assert [r[0] for r in rows] == ["pixel", "apertures r = 2 pix", "apertures r = 4 pix"]
    for r, got in zip(res.radii, rows[1:], strict=True):
        assert got[3].startswith(f"{r.ratio:.3f}") and got[2].startswith(f"{r.ratio_raw:.3f}")
        assert abs(float(got[3].split()[0]) - 0.5) < 0.06
    assert "R = 1.500" in html


def test_the_truth_mosaic_takes_faint_undetected_sources_out_of_the_sky(tmp_path):
    """20000 sources below the detection limit (AB 29-30.5: peaks of 0.5-4 sigma) spread
    the sky's aperture sums: on the mosaic the ratio reads 2-4 although ERR is right; on
    mosaic - truth mosaic (what the evaluation uses when the run has one) it reads 1."""
    shape = (600, 600)
    truth = make_truth(1, n_stars=20000, n_galaxies=0, shape=shape, mag_range=(29.0, 30.5))
    path = tmp_path / "faint_i2d.fits"
    make_i2d(path, truth, seed=3, shape=shape, noise_mjysr=SIGMA, noise_kernel=KERNEL,
             resample=NATIVE, hole=None)
    tru = make_truth_mosaic(tmp_path / "faint_truth_i2d.fits", truth, shape=shape)
    mosaic = read_mosaic(path)
    common = dict(segm=None, injected=np.array([0.2]), levels=np.array([np.nan]),
                  names=["a"], member_names=["a"], settings=_settings(),
                  aperture=(3.0, 1.0, "test"), rng=np.random.default_rng(0))
    blind = mosaic_measurements(mosaic, aperture_rng=np.random.default_rng(1), **common)
    seen = mosaic_measurements(mosaic, aperture_rng=np.random.default_rng(1),
                               truth=(tru, "test truth"), **common)
    assert blind["aper_noise_ratio_r4"].value > 2.0
    assert "no truth mosaic" in blind["aper_noise_ratio_r4"].details["image"]
    for name in ("aper_noise_ratio_r2", "aper_noise_ratio_r4", "err_ratio_nmad_drizzle"):
        m = seen[name]
        assert m.value == pytest.approx(1.0, abs=max(0.02, 4 * m.uncertainty)), name
        assert m.details["image"].startswith("mosaic - truth mosaic (test truth)")
