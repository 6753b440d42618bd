"""Detector references, MIRAGE's linearized dark and cosmic-ray library (simval.kit)."""

from __future__ import annotations

import hashlib
import os
import types

import numpy as np
import pytest
from astropy.io import fits
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

from simval.kit import cosmic_rays, detector_maps, detector_refs, mirage_darks
from simval.kit.defects import DEFECT_CLASSES, defect_map, science_mask
from simval.kit.detectors import FULL_SIZE, get_detector
from simval.kit.readout import frame_time, get_subarray

FLAG = dqflags.pixel
SEED = 20221
NRCB1 = get_detector("NRCB1")
NRCBLONG = get_detector("NRCBLONG")
DARK_FRAMES = 8


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    """The detector references of NRCB1, written once."""
    out = tmp_path_factory.mktemp("refs")
    paths = {}
    for name in ("mask", "saturation", "superbias", "linearity", "gain", "readnoise", "ipc"):
        paths[name] = getattr(detector_refs, f"write_{name}")(out / f"{name}.fits", NRCB1, SEED)
    paths["flat"] = detector_refs.write_flat(out / "flat.fits", NRCB1, SEED, "F150W")
    paths["dark"] = detector_refs.write_dark(out / "dark.fits", NRCB1, SEED, "SUB400P",
                                             DARK_FRAMES)
    return paths


@pytest.fixture(scope="module")
def mirage_dark(tmp_path_factory):
    path = tmp_path_factory.mktemp("mdark") / "dark.fits"
    return mirage_darks.write_mirage_dark(path, NRCB1, "SUB400P", DARK_FRAMES, SEED)


# --- readout geometry -------------------------------------------------------------------

def test_subarray_corners_and_frame_times_match_mirage(mirage):
    sub = get_subarray(NRCB1, "SUB400P")
    assert (sub.xstart, sub.ystart, sub.xsize, sub.ysize, sub.namps) == (1649, 1649, 400, 400, 1)
    assert sub.frame_time == pytest.approx(1.65624, abs=1e-9)          # JDox
    assert get_subarray(NRCB1, "FULL").frame_time == pytest.approx(10.73677, abs=1e-9)
    for det, name in ((NRCB1, "SUB64P"), (NRCBLONG, "SUB400P"), (NRCBLONG, "SUB160P")):
        s = get_subarray(det, name)
        xc, yc = mirage.siaf_interface.sci_subarray_corners("nircam", s.aperture)
        assert (s.xstart - 1, s.ystart - 1, s.xstart + s.xsize - 2, s.ystart + s.ysize - 2) == (
            xc[0], yc[0], xc[1], yc[1])
        assert s.frame_time == pytest.approx(
            mirage.utils.calc_frame_time("nircam", s.aperture, s.xsize, s.ysize, s.namps))
    assert frame_time(2048, 2048, 4) == pytest.approx(
        mirage.utils.calc_frame_time("nircam", "NRCB1_FULL", 2048, 2048, 4))
    assert (sub.fastaxis, sub.slowaxis) == (1, -2)
    nrca1 = get_subarray(get_detector("NRCA1"), "FULL")
    assert (nrca1.fastaxis, nrca1.slowaxis) == (-1, 2)
    with pytest.raises(ValueError, match="SUB400P"):
        get_subarray(NRCB1, "SUB999")


# --- every reference --------------------------------------------------------------------

MODELS = {"mask": datamodels.MaskModel, "saturation": datamodels.SaturationModel,
          "superbias": datamodels.SuperBiasModel, "linearity": datamodels.LinearityModel,
          "gain": datamodels.GainModel, "readnoise": datamodels.ReadnoiseModel,
          "ipc": datamodels.IPCModel, "flat": datamodels.FlatModel, "dark": datamodels.DarkModel}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_reference_validates_and_reopens(refs, name):
    with MODELS[name](str(refs[name])) as model:
        model.validate()
        assert model.meta.reftype == name.upper()
        assert model.meta.instrument.detector == "NRCB1"
        assert model.meta.pedigree == "SIMULATION"
        assert model.meta.filename == refs[name].name
        assert model.meta.date == detector_refs.FILE_DATE
        primary = model.get_primary_array_name()
        assert np.all(np.isfinite(getattr(model, primary)))
    # MIRAGE reads hdul[1] of these files (read_cal_file); it must be the data array.
    first = {"mask": "DQ", "linearity": "COEFFS"}.get(name, "SCI")
    assert fits.getheader(refs[name], 1)["EXTNAME"] == first


def test_references_are_byte_reproducible(tmp_path):
    a = detector_refs.write_gain(tmp_path / "a.fits", NRCBLONG, 7)
    b = detector_refs.write_gain(tmp_path / "b.fits", NRCBLONG, 7)
    c = detector_refs.write_gain(tmp_path / "c.fits", NRCBLONG, 8)
    # Identical but for the FILENAME card, which records the file's own name.
    a_bytes = a.read_bytes().replace(b"a.fits", b"x.fits")
    assert a_bytes == b.read_bytes().replace(b"b.fits", b"x.fits")
    assert sha256(c) != sha256(b)
    d = detector_refs.write_gain(tmp_path / "a.fits", NRCBLONG, 7)
    assert sha256(d) == hashlib.sha256(a.read_bytes()).hexdigest()


# --- mask and defects -------------------------------------------------------------------

def test_mask_reference_border_is_reference_pixel_only(refs):
    with datamodels.MaskModel(str(refs["mask"])) as mask:
        dq = mask.dq
        border = ~science_mask()
        assert np.all(dq[border] == FLAG["REFERENCE_PIXEL"])
        assert not np.any(dq[border] & FLAG["DO_NOT_USE"])
        names = {n.strip() for n in np.char.decode(mask.dq_def["NAME"].astype("S40"))}
        assert {"REFERENCE_PIXEL", "HOT", "DEAD", "WARM", "LOW_QE", "DO_NOT_USE"} <= names
        sci = dq[~border]
        n_sci = sci.size
        for name, (fraction, flag) in DEFECT_CLASSES.items():
            count = np.count_nonzero(sci == flag)
            assert count == pytest.approx(fraction * n_sci, rel=0.01), name
        unusable = np.count_nonzero(sci & FLAG["DO_NOT_USE"]) / n_sci
        assert unusable == pytest.approx(5e-4 + 2e-4, rel=0.01)     # hot + dead


def test_dq_init_keeps_reference_pixels_usable(refs):
    from jwst.dq_init.dq_initialization import do_dqinit

    sub = get_subarray(NRCB1, "SUB400P")
    ramp = datamodels.RampModel(data=np.zeros((1, 2, sub.ysize, sub.xsize), np.float32))
    ramp.meta.instrument.name, ramp.meta.instrument.detector = "NIRCAM", "NRCB1"
    ramp.meta.subarray.name = sub.name
    ramp.meta.subarray.xstart, ramp.meta.subarray.ystart = sub.xstart, sub.ystart
    ramp.meta.subarray.xsize, ramp.meta.subarray.ysize = sub.xsize, sub.ysize
    with datamodels.MaskModel(str(refs["mask"])) as mask:
        out = do_dqinit(ramp, mask)
    ref = (out.pixeldq & FLAG["REFERENCE_PIXEL"]) != 0
    # SUB400P sits in the top-right corner: 4 top rows and 4 right columns of reference pixels.
    assert ref.sum() == 4 * 400 + 4 * 400 - 16
    assert ref[-4:, :].all() and ref[:, -4:].all() and not ref[:-4, :-4].any()
    assert not np.any(out.pixeldq[ref] & FLAG["DO_NOT_USE"])


def test_defects_are_shared_by_mask_dark_and_flat(refs):
    defects = defect_map(NRCB1, SEED)
    hot = defects.mask("hot")
    sub = get_subarray(NRCB1, "SUB400P")
    with datamodels.DarkModel(str(refs["dark"])) as dark:
        hot_sub = hot[sub.slices]
        assert hot_sub.sum() > 40
        assert np.all(dark.dq[hot_sub] & FLAG["HOT"])
        last = dark.data[-1]
        assert last[hot_sub].min() > 20 * np.median(last)
    flat = detector_maps.flat(NRCB1, SEED, "F150W")
    assert np.all(flat[defects.mask("dead")] == 0)
    assert np.all(flat[defects.mask("low_qe")] < 0.7)
    other = defect_map(NRCB1, SEED + 1).mask("hot")
    assert np.count_nonzero(hot & other) < 0.05 * hot.sum()


# --- flat, gain, read noise, saturation, superbias --------------------------------------

def test_flat_reference_pixels_and_structure(refs):
    with datamodels.FlatModel(str(refs["flat"])) as flat:
        border = ~science_mask()
        assert np.all(flat.dq[border] == FLAG["DO_NOT_USE"] | FLAG["NO_FLAT_FIELD"])
        assert np.all(flat.data[border] == 1.0)
        assert (flat.meta.instrument.filter, flat.meta.instrument.pupil) == ("F150W", "CLEAR")
        good = ~border & (flat.data > 0.8)
        assert flat.data[~border & (flat.data > 0)].mean() == pytest.approx(1.0, abs=1e-4)
        # ~1 % pixel-to-pixel: the difference of neighbouring pixels removes large scales.
        sci = flat.data[4:-4, 4:-4]
        normal = (sci > 0.8) & (sci < 1.2)
        pairs = normal[:, 1:] & normal[:, :-1]
        p2p = np.std(np.diff(sci, axis=1)[pairs]) / np.sqrt(2)
        assert 0.007 < p2p < 0.013
        binned = flat.data[4:2044, 4:2044].reshape(20, 102, 20, 102).mean(axis=(1, 3))
        assert 0.003 < binned.std() < 0.05
        assert np.all(flat.dq[good] == 0)
    f444 = detector_maps.flat(NRCBLONG, SEED, "F444W")
    f356 = detector_maps.flat(NRCBLONG, SEED, "F356W")
    normal = (np.abs(f444 - 1) < 0.2)[4:-4, 4:-4]
    pairs = (normal[:, 1:] & normal[:, :-1])
    corr = np.corrcoef(np.diff(f444[4:-4, 4:-4], axis=1)[pairs],
                       np.diff(f356[4:-4, 4:-4], axis=1)[pairs])[0, 1]
    # Shared detector pixel response (0.8 %) + filter-specific part (0.5 %): 0.72.
    assert corr == pytest.approx(0.72, abs=0.05)
    assert detector_refs.wheel_elements("F162M") == ("F150W2", "F162M")


@pytest.mark.parametrize("det", [NRCB1, NRCBLONG], ids=lambda d: d.name)
def test_gain_mean_is_mirages(mirage, det):
    gain = detector_maps.gain(det, SEED)
    key = det.siaf_name.lower()
    assert gain.astype(np.float64).mean() == pytest.approx(
        mirage.MEAN_GAIN_VALUES["nircam"][key], rel=1e-6)
    assert 0.02 < gain.std() / gain.mean() < 0.035


def test_gain_file_and_readnoise_levels(refs):
    with datamodels.GainModel(str(refs["gain"])) as g:
        assert g.data.astype(np.float64).mean() == pytest.approx(2.05, rel=1e-6)
    with datamodels.ReadnoiseModel(str(refs["readnoise"])) as rn:
        assert rn.data.astype(np.float64).mean() == pytest.approx(
            15.77 / 2.05, rel=1e-6)   # CDS noise in DN (stcal reads READNOISE as CDS)
        assert 0.05 < rn.data.std() / rn.data.mean() < 0.1


def test_saturation_and_superbias_levels(refs):
    with datamodels.SuperBiasModel(str(refs["superbias"])) as sb, \
            datamodels.SaturationModel(str(refs["saturation"])) as sat:
        bias = sb.data.astype(np.float64)
        assert np.all(bias == np.round(bias))
        amps = np.array([bias[4:-4, k * 512 + 4:(k + 1) * 512 - 4].mean() for k in range(4)])
        assert np.all(np.abs(amps - 12000) < 1000)
        assert np.ptp(amps) > 50
        columns = bias[4:-4, 8:504].mean(axis=0)
        assert 5 < columns.std() < 40      # column structure, well above pixel noise / sqrt(N)
        assert sb.err.shape == sb.dq.shape == bias.shape
        s = sat.data.astype(np.float64)
        assert 55000 < np.median(s) < 60000
        well = s - bias
        assert np.median(well) == pytest.approx(detector_maps.FULL_WELL_DN, rel=0.01)
        assert 0.01 < well.std() / well.mean() < 0.03


# --- linearity --------------------------------------------------------------------------

def test_linearity_inverts_mirages_unlinearize(refs, mirage):
    from stcal.linearity.linearity import apply_polynomial

    win = (slice(100, 164), slice(1000, 1064))
    with datamodels.LinearityModel(str(refs["linearity"])) as lin, \
            datamodels.SaturationModel(str(refs["saturation"])) as sat, \
            datamodels.SuperBiasModel(str(refs["superbias"])) as sb:
        coeffs = lin.coeffs[(slice(None), *win)].astype(np.float64)
        satmap = sat.data[win].astype(np.float64)
        bias = sb.data[win].astype(np.float64)
        assert lin.dq.shape == lin.coeffs.shape[1:]
    # As MIRAGE's obs_generator: linearized saturation of the bias-subtracted raw limit.
    unl = mirage.unlinearize
    lin_sat = unl.nonLinFunc(satmap - bias, coeffs, np.full(satmap.shape, 1e6))
    ramp = np.linspace(0.0, 0.995, 12)[:, None, None] * lin_sat[None]
    ramp[0] = 5.0
    raw = unl.unlinearize(ramp, coeffs, satmap, lin_sat, maxiter=10, accuracy=1e-6)
    back = apply_polynomial(raw.copy(), coeffs)   # the pipeline's own polynomial
    assert np.max(np.abs(back / ramp - 1)) < 1e-3
    # The non-linearity is real: a few % near saturation, and raw < linear.
    top = 1 - raw[-1] / ramp[-1]
    assert 0.02 < np.median(top) < 0.07
    assert 0.02 < np.std(coeffs[2]) / np.mean(coeffs[2]) < 0.1
    # Monotonic up to saturation: dL/dx > 0 on a fine grid.
    x = np.linspace(-1000, (satmap - bias).max(), 200)[:, None, None]
    deriv = coeffs[1] + 2 * coeffs[2] * x + 3 * coeffs[3] * x**2
    assert deriv.min() > 0.9


# --- IPC --------------------------------------------------------------------------------

def test_ipc_kernel_round_trips_through_mirage(refs, mirage, tmp_path):
    with datamodels.IPCModel(str(refs["ipc"])) as ipc:
        kernel = ipc.data.astype(np.float64)
    assert kernel.shape == (3, 3)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-6)
    assert kernel[1, 1] > 1.0 and kernel[0, 1] < 0
    # MIRAGE (invertIPC: True) inverts it into the kernel it convolves the signal with.
    fake = types.SimpleNamespace(detector="NRCB1", logger=types.SimpleNamespace(info=print),
                                 params={"Inst": {"instrument": "nircam"},
                                         "Reffiles": {"ipc": str(tmp_path / "ipc.fits")}})
    added = mirage.obs_generator.Observation.invert_ipc_kernel(fake, kernel)
    assert added.sum() == pytest.approx(1.0, abs=1e-6)
    alpha = added[0, 1]
    assert 0.004 < alpha < 0.011
    assert np.allclose(added, detector_maps.ipc_physical_kernel(NRCB1, SEED), atol=1e-6)
    assert added[0, 0] == pytest.approx(detector_maps.IPC_DIAGONAL_RATIO * alpha, rel=1e-3)


# --- pipeline dark ----------------------------------------------------------------------

def test_dark_reference_frames_and_frame_time(refs, mirage):
    sub = get_subarray(NRCB1, "SUB400P")
    with datamodels.DarkModel(str(refs["dark"])) as dark:
        assert dark.data.shape == (DARK_FRAMES, 400, 400)
        assert (dark.meta.exposure.nframes, dark.meta.exposure.groupgap) == (1, 0)
        assert dark.meta.exposure.ngroups == DARK_FRAMES
        s = dark.meta.subarray
        assert (s.name, s.xstart, s.ystart, s.xsize, s.ysize) == ("SUB400P", 1649, 1649, 400, 400)
        rate = defect_map(NRCB1, SEED).dark_rate[sub.slices].astype(np.float64)
        hot = rate > 1.0
        t_frame = dark.data[:, hot].astype(np.float64) / rate[hot]
        expected = mirage.utils.calc_frame_time("nircam", "NRCB1_SUB400P", 400, 400, 1)
        assert np.allclose(t_frame, (np.arange(1, DARK_FRAMES + 1) * expected)[:, None],
                           rtol=1e-5)
        assert np.all(dark.data[:, :, -4:] == 0) and np.all(dark.data[:, -4:, :] == 0)
        # Normal pixels: the JDox median dark current at the mean gain.
        normal = (dark.dq == 0)[:-4, :-4]
        per_s = dark.data[-1, :-4, :-4][normal] / (DARK_FRAMES * expected)
        assert per_s.mean() == pytest.approx(NRCB1.dark_e_per_s / NRCB1.gain_e_per_dn, rel=0.02)


# --- MIRAGE linearized dark -------------------------------------------------------------

def test_mirage_dark_is_what_mirage_reads(mirage_dark, mirage):
    reader = mirage.read_fits.Read_fits()
    reader.file = str(mirage_dark)
    reader.read_astropy()
    assert reader.data.shape == (1, DARK_FRAMES, FULL_SIZE, FULL_SIZE)
    assert reader.sbAndRefpix.shape == reader.data.shape
    assert reader.data.dtype == np.float32
    h = reader.header
    assert (h["READPATT"], h["NFRAMES"], h["DETECTOR"], h["INSTRUME"]) == (
        "RAPID", 1, "NRCB1", "NIRCAM")
    assert (h["FASTAXIS"], h["SLOWAXIS"]) == (1, -2)
    assert h["TFRAME"] == pytest.approx(1.65624)
    sub = get_subarray(NRCB1, "SUB400P")
    outside = np.ones((FULL_SIZE, FULL_SIZE), bool)
    outside[sub.slices] = False
    assert not reader.data[0, 0][outside].any() and not reader.sbAndRefpix[0, -1][outside].any()
    assert os.path.getsize(mirage_dark) < 8e6      # vs 268 MB uncompressed


def _window(path, ext):
    sub = get_subarray(NRCB1, "SUB400P")
    with fits.open(path) as h:
        return np.asarray(h[ext].data[0][(slice(None), *sub.slices)], dtype=np.float64)


def test_mirage_dark_bias_is_the_superbias_plus_frame_offsets(mirage_dark, refs):
    sbr = _window(mirage_dark, "SBANDREFPIX")
    sub = get_subarray(NRCB1, "SUB400P")
    with datamodels.SuperBiasModel(str(refs["superbias"])) as sb:
        offsets = sbr - sb.data[sub.slices]
    # SUB400P starts at an even 0-based column (1648): even/odd columns carry their offsets.
    even, odd = offsets[:, :, 0::2], offsets[:, :, 1::2]
    assert np.all(even == even[:, :1, :1]) and np.all(odd == odd[:, :1, :1])
    per_frame = even[:, 0, 0]
    assert np.all(per_frame == np.round(per_frame))
    assert 1.0 < np.std(np.concatenate([per_frame, odd[:, 0, 0]])) < 10.0


def test_mirage_dark_signal_mean_is_the_pipeline_dark():
    sub = get_subarray(NRCBLONG, "SUB400P")
    rng = np.random.default_rng(5)
    signal = mirage_darks.dark_signal(NRCBLONG, SEED, sub, DARK_FRAMES, rng).astype(np.float64)
    ref = detector_refs.dark_frames(NRCBLONG, SEED, "SUB400P", DARK_FRAMES).astype(np.float64)
    gain = NRCBLONG.gain_e_per_dn
    # Shot noise only: the sum over the window is Poisson with variance sum(ref) * gain (e-).
    for k in (0, DARK_FRAMES - 1):
        sigma = np.sqrt(ref[k].sum() * gain) / gain
        assert abs(signal[k].sum() - ref[k].sum()) < 4 * sigma
    assert ref[-1].sum() > 100 * np.sqrt(ref[-1].sum() * gain) / gain   # a 1 % test at most
    increments = np.diff(signal, axis=0)
    assert increments.min() >= 0                                     # charge only accumulates


def test_mirage_dark_mean_is_the_pipeline_dark(mirage_dark, refs):
    sci = _window(mirage_dark, "SCI")
    with datamodels.DarkModel(str(refs["dark"])) as dark:
        ref = dark.data.astype(np.float64)
    t = np.arange(DARK_FRAMES, dtype=np.float64)
    slope = np.polyfit(t, sci.reshape(DARK_FRAMES, -1), 1)[0].reshape(400, 400)
    ref_slope = (ref[-1] - ref[0]) / (DARK_FRAMES - 1)
    hot = ref_slope > 0.3
    assert hot.sum() > 40
    # Remove what is common to all pixels (the 1/f drift between frames).
    excess = slope - np.median(slope[~hot])
    sigma = np.std(excess[~hot])                      # slope noise per pixel, DN/frame
    gain_fit, _ = np.polyfit(ref_slope[hot], excess[hot], 1)
    lever = np.sqrt(np.sum((ref_slope[hot] - ref_slope[hot].mean()) ** 2))
    assert gain_fit == pytest.approx(1.0, abs=4 * sigma / lever)
    assert np.corrcoef(ref_slope[hot], excess[hot])[0, 1] > 0.9
    # Per-frame noise about the pipeline dark is the read noise of the readnoise reference.
    resid = sci - ref
    rn = detector_maps.readnoise(NRCB1, SEED)[get_subarray(NRCB1, "SUB400P").slices]
    frame_rms = np.std(resid[:, :-4, :-4] - resid[:, :-4, :-4].mean(axis=(1, 2),
                                                                   keepdims=True))
    assert frame_rms == pytest.approx(float(np.sqrt(np.mean(rn**2))), rel=0.08)


def test_mirage_dark_one_over_f_is_correlated_along_rows(mirage_dark, refs):
    with datamodels.DarkModel(str(refs["dark"])) as dark:
        resid = _window(mirage_dark, "SCI") - dark.data
    frame = resid[3, :-4, :-4] - resid[3, :-4, :-4].mean()
    lag1 = np.mean(frame[:, 1:] * frame[:, :-1]) / frame.var()
    across = np.mean(frame[1:, :] * frame[:-1, :]) / frame.var()
    assert lag1 > 0.1           # white noise alone: |lag1| < 0.01
    assert lag1 > across + 0.05  # neighbours in read order correlate more than across rows
    row_means = frame.mean(axis=1)
    white = frame.var() / frame.shape[1]
    assert row_means.var() > 5 * white


def test_one_over_f_is_common_to_the_four_outputs():
    full = get_subarray(NRCB1, "FULL")
    noise = mirage_darks.readout_noise(NRCB1, SEED, full, 1, np.random.default_rng(3))[0]
    rows = noise[4:-4].reshape(2040, 4, 512).mean(axis=2)
    corr = np.corrcoef(rows.T)
    assert corr[0, 2] > 0.5 and corr[1, 3] > 0.5 and corr[0, 1] > 0.5
    rn = detector_maps.readnoise(NRCB1, SEED)
    assert noise.std() == pytest.approx(float(np.sqrt(np.mean(rn**2))), rel=0.1)


def test_mirage_dark_is_reproducible(mirage_dark, tmp_path):
    again = mirage_darks.write_mirage_dark(tmp_path / "a.fits", NRCB1, "SUB400P", DARK_FRAMES,
                                           SEED)
    assert sha256(again) == sha256(mirage_dark)
    other = mirage_darks.write_mirage_dark(tmp_path / "b.fits", NRCB1, "SUB400P", DARK_FRAMES,
                                           SEED, realization=1)
    assert sha256(other) != sha256(mirage_dark)
    a, b = _window(mirage_dark, "SCI"), _window(other, "SCI")
    assert np.corrcoef(a[-1].ravel(), b[-1].ravel())[0, 1] < 0.5   # independent noise ...
    hot = defect_map(NRCB1, SEED).mask("hot")[get_subarray(NRCB1, "SUB400P").slices]
    assert np.corrcoef(a[-1][hot], b[-1][hot])[0, 1] > 0.9          # ... same hot pixels


# --- cosmic-ray library -----------------------------------------------------------------

def test_cosmic_ray_library(tmp_path):
    paths = cosmic_rays.write_cr_library(tmp_path, NRCBLONG, SEED)
    assert [p.name for p in paths] == [f"CRs_MCD1.7_SUNMIN_{i:02d}_IPC_NIRCam_B5.fits"
                                       for i in range(10)]
    assert cosmic_rays.cr_library_suffix(NRCB1) == "IPC_NIRCam_B1"
    stamps = []
    for p in paths:
        with fits.open(p) as h:           # what MIRAGE's read_cr_files does
            stamps.append(np.asarray(h[1].data))
            assert h[0].header["DETECTOR"] == "NRCBLONG"
    stamps = np.array(stamps)
    assert stamps.shape == (10, 1000, 21, 21)
    assert stamps.min() >= 0
    total = stamps.sum(axis=(2, 3))
    assert np.all(total > 0)
    assert 2e3 < np.median(total) < 2e4                       # electrons
    assert not np.array_equal(stamps[0], stamps[1])
    # Thin absorber: most hits are compact, a few percent are long oblique tracks.
    extent = (stamps > 0.05 * stamps.max(axis=(2, 3), keepdims=True)).sum(axis=(2, 3))
    assert np.median(extent) <= 6
    assert 0.005 < np.mean(extent > 8) < 0.05
    assert sum(os.path.getsize(p) for p in paths) < 3e6
    again = cosmic_rays.write_cr_library(tmp_path / "again", NRCBLONG, SEED)
    assert [sha256(p) for p in again] == [sha256(p) for p in paths]
    other = cosmic_rays.write_cr_library(tmp_path / "other", NRCBLONG, SEED + 1)
    assert sha256(other[0]) != sha256(paths[0])
