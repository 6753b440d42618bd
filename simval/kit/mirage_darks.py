"""MIRAGE's linearized dark (``Reffiles: linearized_darkfile``) for one detector and window.

What MIRAGE 2.5 requires of the file (``mirage/dark/dark_prep.py``, ``utils/read_fits.py``):

- Extensions found by EXTNAME: ``SCI`` (the linearized dark, DN, 4-D (nint, nframes, y,
  x)) and ``SBANDREFPIX`` (superbias + reference-pixel signal, same shape). ``ZEROFRAME``
  is optional: for a RAPID dark MIRAGE takes frame 0.
- Primary header: ``READPATT`` (RAPID, so that MIRAGE can average frames into any
  readout pattern; NSKIP comes from its pattern table), ``NFRAMES`` = 1, ``DETECTOR``
  (DMS name: MIRAGE copies it into the uncal file and looks up MEAN_GAIN_VALUES with it,
  ``...LONG`` -> ``...5``), ``INSTRUME``, ``FASTAXIS``/``SLOWAXIS`` (copied into the uncal
  file; the pipeline's refpix step uses them).
- Full-frame y, x: ``dark_prep.crop_dark`` slices the array with the FULL-FRAME science
  frame bounds of the aperture (e.g. [1648:2048, 1648:2048] for NRCB1_SUB400P) unless the
  array is exactly that window at the origin, so a subarray-sized array is cut to nothing.
  Only the window is filled here; the rest is zero and costs almost nothing compressed.
- One integration per file. For NINTS > 1 MIRAGE draws darks at random from every
  ``*.fits`` in the dark's directory (``glob``): a directory must hold only darks of the
  same detector, window and frame count (write several with different ``realization``).
- At least ``ngroups * (nframes + nskip)`` frames: with fewer, MIRAGE appends copies of
  the ramp (a discontinuous dark); extra frames are dropped.
- MIRAGE does not rescale frames by frame time: they must be at the window's frame time
  (its own frame time comes from the cropped dark's shape and the subarray's outputs).

Content (DN): SCI = dark current accumulated frame by frame with shot noise (its mean is
the pipeline DARK of :func:`simval.kit.detector_refs.dark_frames`)
+ white read noise + 1/f noise correlated between outputs and per output, in readout time
order. Per pixel and frame, white and 1/f noise add up in quadrature to the single-read noise
(the READNOISE reference / sqrt(2): the reference holds CDS noise, as stcal reads it), with
the NGHXRG split (Rauscher 2015, PASP 127, 1144, defaults rd_noise 5.2, c_pink 3,
u_pink 1). SBANDREFPIX = the superbias reference (integer DN) + integer per-frame output
offsets, common and per output with an even/odd-column part — what refpix removes.

Storage: tile-compressed FITS (RICE). SBANDREFPIX is int32 (lossless). SCI is float32
quantized with an absolute step of 1/8 DN and subtractive dithering (seeded): unbiased,
adding 0.036 DN rms to a ~5 DN read noise.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.fft
from astropy.io import fits

from simval.atomic import atomic_path
from simval.kit import detector_maps as maps
from simval.kit.defects import defect_map
from simval.kit.detectors import FULL_SIZE, Detector
from simval.kit.readout import ROW_OVERHEAD_PIXELS, Subarray, get_subarray
from simval.seeding import component_rng

#: NGHXRG noise split (Rauscher 2015): white, correlated 1/f, uncorrelated 1/f.
NGHXRG_WHITE, NGHXRG_C_PINK, NGHXRG_U_PINK = 5.2, 3.0, 1.0
#: Per-frame output offsets (DN, rms): common to all outputs, per output, even/odd column.
OFFSET_COMMON_DN, OFFSET_AMP_DN, OFFSET_EVEN_ODD_DN = 4.0, 2.0, 1.0
#: Absolute quantization step of SCI in the compressed file, DN.
SCI_QUANTUM_DN = 0.125
#: Compression tile: 128 full-frame rows of one frame (all-zero tiles compress to nothing).
TILE_SHAPE = (1, 1, 128, FULL_SIZE)


def pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` samples of 1/f (pink) noise with zero mean and unit rms, float32."""
    m = scipy.fft.next_fast_len(max(n, 2), real=True)
    nf = m // 2 + 1
    amp = np.zeros(nf, dtype=np.float32)
    amp[1:] = np.arange(1, nf, dtype=np.float32) ** -0.5   # power ~ 1/f
    spec = np.empty(nf, dtype=np.complex64)
    spec.real = rng.standard_normal(nf, dtype=np.float32) * amp
    spec.imag = rng.standard_normal(nf, dtype=np.float32) * amp
    x = scipy.fft.irfft(spec, m)[:n]
    x -= x.mean()
    x /= x.std()
    return x


def _stripe_frames(series: np.ndarray, window: Subarray, nframes: int, width: int,
                   direction: int) -> np.ndarray:
    """Map an output's time series onto (nframes, ysize, width) pixels in DMS orientation.

    Each frame lasts ``window.ticks_per_frame`` samples; each row is ``width`` pixel reads
    followed by the row overhead; rows are read along SLOWAXIS, pixels along ``direction``.
    """
    row_len = width + ROW_OVERHEAD_PIXELS
    per_frame = series[: nframes * window.ticks_per_frame].reshape(nframes, -1)
    rows = per_frame[:, : window.ysize * row_len].reshape(nframes, window.ysize, row_len)
    pixels = rows[:, :, :width]
    if window.slowaxis < 0:
        pixels = pixels[:, ::-1, :]
    if direction < 0:
        pixels = pixels[:, :, ::-1]
    return pixels


def readout_noise(detector: Detector, seed: int, window: Subarray, nframes: int,
                  rng: np.random.Generator) -> np.ndarray:
    """White + 1/f read noise of a dark ramp, DN, (nframes, ysize, xsize) float32.

    The per-pixel total rms per frame is the single-read noise map
    (:func:`simval.kit.detector_maps.readnoise`); the READNOISE reference holds sqrt(2) times
    it, the CDS noise the pipeline expects (:func:`simval.kit.detector_refs.readnoise_cds`).
    """
    rn = maps.readnoise(detector, seed)[window.slices]
    total = np.hypot(np.hypot(NGHXRG_WHITE, NGHXRG_C_PINK), NGHXRG_U_PINK)
    rn_mean = float(rn.mean())
    sigma_c = rn_mean * NGHXRG_C_PINK / total
    sigma_u = rn_mean * NGHXRG_U_PINK / total
    sigma_w = np.sqrt(np.maximum(rn.astype(np.float64) ** 2 - sigma_c**2 - sigma_u**2,
                                 (0.5 * rn) ** 2)).astype(np.float32)
    noise = rng.standard_normal((nframes, window.ysize, window.xsize), dtype=np.float32)
    noise *= sigma_w
    n = nframes * window.ticks_per_frame
    common = pink_noise(rng, n) * np.float32(sigma_c)
    for cols, direction in window.amp_stripes():
        width = cols.stop - cols.start
        own = pink_noise(rng, n) * np.float32(sigma_u)
        noise[:, :, cols] += _stripe_frames(common + own, window, nframes, width, direction)
    return noise


def dark_signal(detector: Detector, seed: int, window: Subarray, nframes: int,
                rng: np.random.Generator) -> np.ndarray:
    """Accumulated dark current with shot noise, DN, (nframes, ysize, xsize) float32.

    Each frame adds Poisson-distributed electrons (mean rate x frame time x mean gain, the
    gain MIRAGE uses) to every pixel; the mean is
    :func:`simval.kit.detector_refs.dark_frames`.
    """
    gain = detector.gain_e_per_dn
    rate = defect_map(detector, seed).dark_rate[window.slices].astype(np.float64)
    per_frame_e = rate * window.frame_time * gain
    electrons = np.zeros(per_frame_e.shape, dtype=np.int64)
    out = np.empty((nframes, *per_frame_e.shape), dtype=np.float32)
    for k in range(nframes):
        electrons += rng.poisson(per_frame_e)
        out[k] = electrons / gain
    return out


def bias_and_refpix(detector: Detector, seed: int, window: Subarray, nframes: int,
                    rng: np.random.Generator) -> np.ndarray:
    """SBANDREFPIX: superbias + per-frame output offsets, integer DN, int32 (nframes, y, x)."""
    bias = maps.superbias(detector, seed)[window.slices].astype(np.int32)
    out = np.broadcast_to(bias, (nframes, *bias.shape)).copy()
    common = np.rint(rng.normal(0.0, OFFSET_COMMON_DN, nframes)).astype(np.int32)
    for cols, _ in window.amp_stripes():
        amp = np.rint(rng.normal(0.0, OFFSET_AMP_DN, nframes)).astype(np.int32)
        even_odd = np.rint(rng.normal(0.0, OFFSET_EVEN_ODD_DN, (nframes, 2))).astype(np.int32)
        # Parity of the full-frame column, as the refpix step's odd/even columns.
        first = (window.xstart - 1 + cols.start) % 2
        out[:, :, cols] += (common + amp)[:, None, None]
        out[:, :, cols.start + 0:cols.stop:2] += even_odd[:, first][:, None, None]
        out[:, :, cols.start + 1:cols.stop:2] += even_odd[:, 1 - first][:, None, None]
    return out


def _full_frame(cube: np.ndarray, window: Subarray) -> np.ndarray:
    """(1, n, 2048, 2048) array, zero except ``cube`` in the window (zero pages are lazy)."""
    full = np.zeros((1, cube.shape[0], FULL_SIZE, FULL_SIZE), dtype=cube.dtype)
    full[0][(slice(None), *window.slices)] = cube
    return full


def _primary_header(detector: Detector, window: Subarray, nframes: int, seed: int,
                    realization: int) -> fits.Header:
    h = fits.Header()
    h["INSTRUME"] = ("NIRCAM", "Instrument")
    h["DETECTOR"] = (detector.name, "DMS detector name")
    h["READPATT"] = ("RAPID", "Readout pattern: one frame per group")
    h["NFRAMES"] = (1, "Frames per group")
    h["NSKIP"] = (0, "Skipped frames per group")
    h["GROUPGAP"] = (0, "Frames dropped between groups")
    h["NGROUPS"] = (nframes, "Frames in the ramp")
    h["NINTS"] = (1, "Integrations")
    h["TFRAME"] = (round(window.frame_time, 6), "[s] Frame time of the window")
    h["TGROUP"] = (round(window.frame_time, 6), "[s] Group time")
    h["FASTAXIS"] = (window.fastaxis, "Fast readout axis (DMS)")
    h["SLOWAXIS"] = (window.slowaxis, "Slow readout axis (DMS)")
    h["SUBARRAY"] = (window.name, "Window the data are filled for")
    h["SUBSTRT1"] = (window.xstart, "Window first column (1-based, full frame)")
    h["SUBSTRT2"] = (window.ystart, "Window first row (1-based, full frame)")
    h["SUBSIZE1"] = (window.xsize, "Window columns")
    h["SUBSIZE2"] = (window.ysize, "Window rows")
    h["NOUTPUTS"] = (window.namps, "Outputs used to read the window")
    h["BUNIT"] = ("DN", "Units of SCI and SBANDREFPIX")
    h["SEED"] = (seed, "simval kit seed")
    h["REALIZ"] = (realization, "Noise realization")
    h["ORIGIN"] = ("simval", "Synthetic linearized dark")
    return h


def write_mirage_dark(path: str | os.PathLike, detector: Detector, subarray: str,
                      nframes: int, seed: int, *, realization: int = 0,
                      correlated_noise: bool = True) -> Path:
    """Write MIRAGE's linearized dark for ``detector`` read in ``subarray``.

    Parameters
    ----------
    path : output FITS file.
    detector : kit detector.
    subarray : DMS readout window (``SUB400P``, ``FULL``, ...).
    nframes : frames in the ramp (>= ngroups * (nframe + nskip) of the longest exposure).
    seed : kit seed. Hot pixels, dark rates, superbias and read-noise level come from the
        detector's shared maps; the noise is drawn from
        ``component_rng(seed, "mirage_dark", detector, subarray, nframes, realization)``.
    realization : noise realization, for several darks of one window (NINTS > 1).
    correlated_noise : add 1/f noise and per-frame output offsets (the flight detectors'
        behaviour). Without them the read noise is white with the same per-pixel rms and
        SBANDREFPIX is the superbias alone: the "perfect instrument" for closure tests,
        where a single dark realization shared by every exposure would otherwise leave a
        common sky error after refpix (tens of percent of a 0.2 MJy/sr sky in SUB400P).
    """
    if nframes < 1:
        raise ValueError(f"a dark needs at least one frame, got {nframes}")
    window = get_subarray(detector, subarray)
    rng = component_rng(seed, "mirage_dark", detector.name, window.name, nframes, realization)
    sci = dark_signal(detector, seed, window, nframes, rng)
    if correlated_noise:
        sci += readout_noise(detector, seed, window, nframes, rng)
        sbr = bias_and_refpix(detector, seed, window, nframes, rng)
    else:
        rn = maps.readnoise(detector, seed)[window.slices]
        sci += rng.standard_normal(sci.shape, dtype=np.float32) * rn.astype(np.float32)
        bias = maps.superbias(detector, seed)[window.slices].astype(np.int32)
        sbr = np.broadcast_to(bias, (nframes, *bias.shape)).copy()
    dither = int(rng.integers(1, 10001))
    hdus = fits.HDUList([
        fits.PrimaryHDU(header=_primary_header(detector, window, nframes, seed, realization)),
        fits.CompImageHDU(_full_frame(sci, window), name="SCI", compression_type="RICE_1",
                          quantize_level=-SCI_QUANTUM_DN, quantize_method=2,
                          dither_seed=dither, tile_shape=TILE_SHAPE),
        fits.CompImageHDU(_full_frame(sbr, window), name="SBANDREFPIX",
                          compression_type="RICE_1", tile_shape=TILE_SHAPE),
    ])
    final = Path(path)
    with atomic_path(final) as tmp:
        hdus.writeto(tmp)
    return final
