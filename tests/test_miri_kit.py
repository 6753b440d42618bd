"""The synthetic MIRI kit: its own CRDS cache whose context CRDS certifies and serves, and
whose references calibrate a simulated MIRI exposure back to the sky it was given.

The end-to-end case: a uniform sky of known surface brightness (MJy/sr) through the MIRI
ramp simulator (every effect on, EMI included) on SUB256, then calwebb_detector1 (emicorr
enabled) and calwebb_image2 with nothing but the kit's CRDS context: every step the facts
list runs, and the cal file reads the injected sky back.
"""

from __future__ import annotations

import numpy as np
import pytest

from simval.instruments import miri
from simval.instruments.miri_detector import MiriDetectorModel, MiriEffects, Readout
from simval.kit import crds_mappings as cm
from tests.conftest import MIRI_FILTERS, MIRI_KIT_SEED

SKY_MJY_SR = {"F770W": 1.5, "F1500W": 24.0}
READOUT = Readout("SUB256", "FASTR1", ngroups=40, nints=2)
FILTERS = MIRI_FILTERS


def test_miri_parkeys_are_subsets_of_crds_miri_specs():
    from crds.core import reftypes

    specs = reftypes.get_types_object("jwst").unified_defs["miri"]
    for reftype, keys in cm.MIRI_PARKEYS.items():
        assert set(keys) <= set(specs[reftype]["parkey"][0]), reftype
    assert cm.parkeys_for("dark", "miri") == (cm.DETECTOR, cm.READPATT, cm.SUBARRAY)
    with pytest.raises(ValueError, match="knows nircam, miri"):
        cm.parkeys_for("dark", "nirspec")


def test_kit_spec_keeps_the_longest_readout_per_window():
    from simval.kit.miri_jobs import MiriKitSpec

    spec = MiriKitSpec(filters=("f770w",), readouts=(Readout("SUB256", "FASTR1", 10, 1),
                                                      Readout("SUB256", "FASTR1", 40, 3),
                                                      Readout("FULL", "FASTR1", 5, 1)))
    assert spec.filters == ("F770W",)
    assert spec.readouts == (Readout("FULL", "FASTR1", 5, 1),
                             Readout("SUB256", "FASTR1", 40, 2))
    with pytest.raises(ValueError, match="no flux calibration for F560W"):
        MiriKitSpec(filters=("F560W",))
    with pytest.raises(ValueError, match="SLOWR1 cannot read SUB256"):
        MiriKitSpec(readouts=(Readout("SUB256", "SLOWR1", 10, 1),))


def test_miri_context_is_certified_and_selects_only_miri(miri_kit):
    from simval.kit.certify import certify_context
    from simval.kit.crds_cache import context_mappings

    assert miri_kit.layout.root.name.startswith("miri-seed11-")
    assert miri_kit.layout.references.name == "miri"
    selected = context_mappings(miri_kit.layout, miri_kit.context)
    for reftype in cm.MIRI_PARKEYS:
        assert selected[reftype].startswith("jwst_miri_"), reftype
    assert selected["superbias"] == "N/A"
    result = certify_context(miri_kit.layout, miri_kit.context)
    assert result.ok, result.messages()


def test_psf_matches_the_published_fwhm(miri_kit):
    """The kit's PSF (a perfect JWST pupil and the cruciform) against the on-sky FWHM of
    JDox: diffraction sets it at these wavelengths, so it must agree to ~10 %."""
    from astropy.io import fits

    from simval.kit.psf import measure_fwhm

    for filt in FILTERS:
        (path,) = miri_kit.outputs(f"psf/{filt}")
        data = fits.getdata(path)
        fwhm = measure_fwhm(data, miri.PIXEL_SCALE_ARCSEC[0] / 3)
        assert fwhm == pytest.approx(miri.FILTERS[filt].fwhm_arcsec, rel=0.12), filt


def test_psf_has_the_cruciform_below_15_um(miri_kit):
    """F770W's PSF has the detector's cross: 30-45 px from the centre, a band of 11 rows
    (columns) along each arm holds A exp(-d / 25) of the flux per pixel of length (less
    the rescaling, 1 / 1.124, and the core's light outside the band) plus the pupil's
    faint diffraction spikes: 0.9-1.35 times that, and 10 times the diagonals. F1500W,
    with no cross, holds less than half of what F770W's cross would put there (its
    spikes)."""
    from astropy.io import fits

    a770 = miri.CRUCIFORM_AMPLITUDE["F770W"]
    d = np.arange(30, 46)
    model = 0.95 * a770 * np.exp(-d / miri.CRUCIFORM_EFOLD_PIX) / 1.124
    for filt in ("F770W", "F1500W"):
        (path,) = miri_kit.outputs(f"psf/{filt}")
        data = fits.getdata(path).astype(float)
        o = int(fits.getheader(path)["OVERSAMP"])
        native = data.reshape(data.shape[0] // o, o, data.shape[1] // o, o).sum(axis=(1, 3))
        native /= o * o  # flux fraction per native pixel
        c = native.shape[0] // 2
        band = slice(c - 5, c + 6)
        arm = (native[band, c + d].sum(axis=0) + native[band, c - d].sum(axis=0)
               + native[c + d, band].sum(axis=1) + native[c - d, band].sum(axis=1)) / 4
        off = np.array([(native[c + k - 5:c + k + 6, c + k].sum()
                         + native[c - k - 5:c - k + 6, c - k].sum()) / 2
                        for k in d])  # the same band across the diagonals
        ratio = float(np.mean(arm / model))
        if filt == "F770W":
            assert 0.9 < ratio < 1.35, ratio
            assert np.all(arm > 10 * off)
        else:
            assert ratio < 0.5, ratio


#: Stars on a 3 x 3 grid 80 px apart in SUB256 (0-based subarray pixels, off-centre by
#: different sub-pixel phases), AB magnitude per filter.
STAR_X = np.array([48.3, 128.0, 207.6] * 3)
STAR_Y = np.repeat([47.8, 128.45, 208.1], 3)
STAR_MAG = {"F770W": 17.0, "F1500W": 16.5}


def _stars_on_sky(kit, attitude):
    """RA, Dec (deg) of :data:`STAR_X`/:data:`STAR_Y` through the kit's distortion."""
    import asdf

    from simval import offline

    sub = miri.get_subarray(READOUT.subarray)
    with asdf.open(kit.output("distortion/MIRIMAGE")) as af:
        v2, v3 = af.tree["model"](STAR_X + sub.xstart - 1, STAR_Y + sub.ystart - 1,
                                  with_bounding_box=False)
    return offline.siaf_rotations().pointing(attitude, v2, v3)


def _simulate(kit, filt: str, out):
    from simval.pointing import attitude_at_pa_v3
    from simval.simulate.miri_ramps import miri_ramps
    from simval.simulate.miri_scene import MiriCalibration, scene_rate
    from simval.simulate.miri_uncal import MiriExposure, miri_aperture, write_miri_uncal

    det = MiriDetectorModel(kit.spec.seed)
    ap = miri_aperture(READOUT.subarray)
    att = attitude_at_pa_v3(ap.V2Ref, ap.V3Ref, 339.0, 33.96, 45.0)
    ra, dec = _stars_on_sky(kit, att)
    cal = MiriCalibration.from_kit(kit, filt)
    rate, x, y = scene_rate(READOUT.subarray, SKY_MJY_SR[filt], ra, dec,
                            np.full(ra.shape, STAR_MAG[filt]), att, cal, det)
    ramps = miri_ramps(rate, READOUT, MiriEffects(cosmic_rays_per_cm2_s=0.0), seed=5,
                       detector=det)
    name = f"jw02732002001_01101_0000{FILTERS.index(filt) + 1}_mirimage_uncal.fits"
    uncal = write_miri_uncal(out / name, ramps, READOUT, MiriExposure(filt, 60000.25), att)
    return uncal, {"ra": ra, "dec": dec, "x": x, "y": y, "cal": cal}


@pytest.fixture(scope="module")
def calibrated(miri_kit, tmp_path_factory):
    from jwst.pipeline import Detector1Pipeline, Image2Pipeline

    from simval.kit.crds_cache import using_crds

    out = tmp_path_factory.mktemp("miri_e2e")
    cals = {}
    with using_crds(miri_kit.layout, miri_kit.context):
        for filt in FILTERS:
            uncal, truth = _simulate(miri_kit, filt, out)
            rate = Detector1Pipeline.call(str(uncal), steps={"emicorr": {"skip": False}})
            cals[filt] = (rate, Image2Pipeline.call(rate)[0], truth)
    return cals


def test_every_miri_step_runs_from_the_kit_context(calibrated):
    rate, cal, _ = calibrated["F770W"]
    detector1 = ("dq_init", "emicorr", "saturation", "lastframe", "reset", "linearity",
                 "rscd", "dark_sub", "jump", "ramp_fit")
    for step in detector1:
        assert getattr(rate.meta.cal_step, step) == "COMPLETE", step
    # deprecated in jwst 3 and off by default: the RSCD reference's group_skip1 flags the
    # first group instead
    assert rate.meta.cal_step.firstframe == "SKIPPED"
    for step in ("assign_wcs", "flat_field", "photom"):
        assert getattr(cal.meta.cal_step, step) == "COMPLETE", step
    assert cal.meta.bunit_data == "MJy/sr"


def test_cal_reads_back_the_injected_sky(calibrated):
    """Sky in MJy/sr through the simulator and the pipeline with the kit: within 1 % in
    both filters (the flat divided out, PHOTMJSR applied, dark/reset/EMI removed)."""
    det = MiriDetectorModel(MIRI_KIT_SEED)
    field = det.cut(det.imager_field, READOUT.subarray)
    for filt, (_, cal, truth) in calibrated.items():
        far = np.min(np.hypot(*np.mgrid[0:256, 0:256][::-1, :, :, None]
                              - np.array([truth["x"], truth["y"]])[:, None, None, :]),
                     axis=-1) > 40
        good = field & (cal.dq & 1 == 0) & far
        level = float(np.median(cal.data[good]))
        assert level == pytest.approx(SKY_MJY_SR[filt], rel=0.01), filt
        # the flat is divided out: no 1 % pixel pattern left in the sky
        assert abs(np.corrcoef(cal.data[good], det.cut(det.pixel_flat,
                                                        READOUT.subarray)[good])[0, 1]) < 0.1


def test_stars_close_in_the_cal_files(calibrated):
    """Closure on a perfect instrument: the pipeline's WCS puts each star where the
    simulator did (< 1 mas), and a PSF fit with the kit's PSF on the cal image (sky known
    from the previous test) gives back position (< 10 mas) and flux (< 0.02 mag)."""
    from astropy.table import Table
    from photutils.psf import PSFPhotometry

    from simval.instruments.miri_psf_file import read_miri_psf

    scale_mas = 1e3 * float(np.mean(miri.PIXEL_SCALE_ARCSEC))
    for filt, (_, cal, truth) in calibrated.items():
        x_wcs, y_wcs = cal.meta.wcs.world_to_pixel_values(truth["ra"], truth["dec"])
        assert np.max(np.hypot(x_wcs - truth["x"], y_wcs - truth["y"])) * scale_mas < 1.0
        model = read_miri_psf(truth["cal"].psf_path)
        phot = PSFPhotometry(model, fit_shape=(15, 15), aperture_radius=6)
        init = Table({"x_0": truth["x"] + 0.2, "y_0": truth["y"] - 0.2,
                      "flux_0": np.full(truth["x"].shape, 1e3)})
        data = np.nan_to_num(cal.data - SKY_MJY_SR[filt])
        fit = phot(data, init_params=init)
        err_mas = np.hypot(fit["x_fit"] - truth["x"], fit["y_fit"] - truth["y"]) * scale_mas
        assert np.max(err_mas) < 10.0, (filt, err_mas)
        got_ujy = np.asarray(fit["flux_fit"]) * truth["cal"].pixar_sr * 1e12
        want_ujy = 3631e6 * 10 ** (-0.4 * STAR_MAG[filt])
        dmag = -2.5 * np.log10(got_ujy / want_ujy)
        assert abs(np.median(dmag)) < 0.02, (filt, dmag)
        assert np.max(np.abs(dmag)) < 0.03, (filt, dmag)


def test_photom_without_the_filter_row_fails_loudly(miri_kit, calibrated, tmp_path):
    """jwst's photom says COMPLETE and leaves DN/s when the PHOTOM reference has no row for
    the exposure's filter; simval's image2 stops with a message naming the reference, the
    filter and the subarray."""
    from stdatamodels.jwst import datamodels

    from simval.calibrate import CalibrationError, CrdsSetup, image2
    from simval.kit.crds_cache import derive_context
    from simval.kit.miri_imaging_refs import write_miri_photom

    old = miri_kit.output("photom")
    new = old.with_name(old.stem + "_nof770w.fits")
    if not new.exists():
        write_miri_photom(new, ["F1500W"])
    context = derive_context(miri_kit.layout, miri_kit.context, {old.name: new.name},
                             "PHOTOM without F770W")
    rate_model = calibrated["F770W"][0]
    rate = tmp_path / "jw02732002001_01101_00001_mirimage_rate.fits"
    rate_model.save(rate)
    with pytest.raises(CalibrationError, match=r"no row for FILTER=F770W SUBARRAY=SUB256"):
        image2(rate, tmp_path / "out", CrdsSetup.from_kit(miri_kit, context),
               tmp_path / "image2.log")
    with datamodels.open(tmp_path / "out" / "jw02732002001_01101_00001_mirimage_cal.fits") \
            as cal:  # what jwst itself left: the silent failure the check catches
        assert cal.meta.cal_step.photom == "COMPLETE"
        assert cal.meta.bunit_data != "MJy/sr"
