"""Gridded PSF libraries and PSF wings for MIRAGE, computed offline with poppy.

What MIRAGE 2.5 requires (``mirage/psf/psf_selection.py``, ``seed_image/catalog_seed_image.py``)
----------------------------------------------------------------------------------------------
Library (``get_gridded_psf_library``), in ``simSignals:psfpath``:

- name ``nircam_<det>_<filt>_<pupil>_fovp<N>_samp<K>_npsf<M>_<wfe>_realization<G>.fits``,
  lower case; ``<det>`` is the SIAF name (``nrcb1``, ``nrcb5``), ``<filt>/<pupil>`` the filter
  and pupil wheel elements (``f150w2_f162m`` for pupil-wheel filters), ``<wfe>`` the yaml's
  ``psfwfe`` (predicted|requirements) and ``<G>`` its ``psfwfegroup``. Exactly one file may
  match the glob, otherwise MIRAGE opens every file and compares headers.
- primary header: INSTRUME, DETECTOR, FILTER, PUPIL (CLEAR; a pupil-wheel filter is written as
  FILTER with PUPIL=CLEAR, as webbpsf does), OPD_FILE containing the word ``predicted`` or
  ``requirements`` and OPDSLICE (= ``psfwfegroup``; both checked only when ``psfpath`` is
  exactly ``$MIRAGE_DATA/nircam/gridded_psf_library``), OVERSAMP, and ``DET_YX<i>`` = the
  string ``'(y, x)'``, 0-based full-frame position of PSF ``i`` (parsed by
  ``stpsf.utils.to_griddedpsfmodel``); the positions must form a rectangular grid
  (photutils ``GriddedPSFModel``), 1 or >= 4 PSFs.
- data (npsf, ny, nx) with each PSF's sum / OVERSAMP**2 in [0.8, 1.0]
  (``check_normalization``; sums in (1, 1.1] are silently rescaled to 1).
- MIRAGE evaluates only the central ``fovp - gridded_psf_library_row_padding`` (4) native
  pixels of the core.

Wings (``get_psf_wings``), in ``<psfpath>/psf_wings``:

- name ``nircam_<det>_<filt>_<pupil>_fovp*_samp*_<wfe>_realization<G>.fits`` (the stpsf
  convention is ``fovp301_samp1_npsf1``); extension ``DET_DIST`` holds a native-sampled 2-D PSF
  whose header has the same INSTRUME/DETECTOR/FILTER/PUPIL/OPD_FILE/OPDSLICE keys (the
  primary header is read when the glob fails). MIRAGE crops one row/column on every side
  (301 -> 299, which must stay odd), centres it on the source's nearest pixel and pastes the
  library core, evaluated at the true sub-pixel position, over its centre. With
  ``add_psf_wings: True`` every star brighter than the faintest row of
  ``nircam_psf_wing_rate_thresholds.txt`` (mag 30) gets the full 299 x 299 pixel stamp.

Normalisation used here (the kit's definition of a point source's total flux)
----------------------------------------------------------------------------
The optical PSF is normalised to unit flux over the whole image plane (Parseval over the
sampled pupil), convolved with the native pixel (pixel-integrated: any sub-pixel phase
conserves flux) and then divided by its flux inside the 299 x 299 native-pixel box that MIRAGE
actually pastes. So the synthetic instrument's PSF is *defined* as that box: the wings file
sums to exactly 1 over it, a library PSF holds the fraction of that unit flux that falls
inside its stamp (``sum / OVERSAMP**2`` ~ 0.96-0.98, recorded per PSF as ``PSFSUM<i>``), and the
rest lies in the wings. The fraction of the untruncated optical PSF beyond the box (dropped by
definition) is recorded as ``TRUNCFRA``. MIRAGE's catalog count rate (an infinite aperture)
is then exactly what it injects, and the aperture corrections (:mod:`simval.kit.apcorr`) refer
to the same total.

Spectral weighting: a source flat in f_nu (AB magnitudes) detected in photons, i.e. weights
``T(lambda) / lambda`` with ``T`` MIRAGE's own ``<FILTER>_<PUPIL>_nircam_plus_ote_throughput_mod
<a|b>_sorted.txt`` for the detector's module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from simval.atomic import atomic_path
from simval.constants import ARCSEC_PER_RAD
from simval.instruments.nircam import throughput_file, wheel_elements
from simval.kit.detectors import FULL_SIZE, Detector, check_filter, get_detector
from simval.kit.pupil import (
    GRID_DIAMETER_M,
    MAX_BASELINE_M,
    WavefrontModel,
    jwst_pupil,
    wavefront_model,
)
from simval.kit.spec import KIT_VERSION
from simval.offline import nircam_siaf

#: Wavefront-error type and realization written in names and headers (yaml ``psfwfe`` and
#: ``psfwfegroup`` must match).
WFE_TYPE = "predicted"
WFE_GROUP = 0
#: Wings stamp, native pixels (stpsf/MIRAGE convention) and the part MIRAGE uses (cropped).
WINGS_FOV_PIXELS = 301
NORM_BOX_PIXELS = WINGS_FOV_PIXELS - 2
DEFAULT_OVERSAMPLE = 4
DEFAULT_NPSF = 9
DEFAULT_FOV_PIXELS = 41
#: Minimum pupil sampling: pixels across GRID_DIAMETER_M (1.8 cm at 384).
DEFAULT_PUPIL_NPIX = 384


# --------------------------------------------------------------------------- inputs
def throughput_path(filter_name: str, module: str) -> Path:
    """MIRAGE's filter+OTE throughput curve for ``filter_name`` in NIRCam module A or B."""
    path = throughput_file(*wheel_elements(filter_name), module)
    if not path.is_file():
        raise FileNotFoundError(f"MIRAGE throughput curve {path} is missing")
    return path


@dataclass(frozen=True)
class Bandpass:
    """Wavelengths (µm) and weights (sum 1) that represent a filter for the PSF."""

    wavelengths_um: np.ndarray
    weights: np.ndarray

    @property
    def mean_um(self) -> float:
        return float(np.sum(self.wavelengths_um * self.weights))


def default_nlambda(fractional_width: float) -> int:
    """Wavelengths for a band of relative width ``fractional_width``: 3 (N, M), 5 (W), 9
    (W2). Measured for F115W/F150W/F200W/F444W: 5 instead of 11 wavelengths changes no
    library sample by more than 5e-4 of the peak and the flux inside the core by < 1e-5."""
    return int(np.clip(round(20.0 * fractional_width), 3, 9))


@lru_cache(maxsize=64)
def bandpass(filter_name: str, module: str, nlambda: int | None = None) -> Bandpass:
    """Sample MIRAGE's throughput for a flat-f_nu source counted in photons.

    The band (0.1 to 99.9 % of the cumulative weight ``T(lambda)/lambda``) is split into
    ``nlambda`` equal-width bins; each bin is represented by its weighted mean wavelength
    and carries its integrated weight.
    """
    lam, thr = np.loadtxt(throughput_path(filter_name, module), skiprows=1, unpack=True)
    w = np.clip(thr, 0.0, None) / lam
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * np.diff(lam))])
    cum /= cum[-1]
    lo, hi = np.interp([0.001, 0.999], cum, lam)
    n = nlambda or default_nlambda((hi - lo) / (0.5 * (hi + lo)))
    fine = np.linspace(lo, hi, 40 * n + 1)
    wf = np.interp(fine, lam, w)
    idx = np.minimum(((fine - lo) / (hi - lo) * n).astype(int), n - 1)
    weight = np.bincount(idx, wf, n)
    centre = np.bincount(idx, wf * fine, n) / weight
    return Bandpass(wavelengths_um=centre, weights=weight / weight.sum())


@lru_cache(maxsize=16)
def pixel_scale(detector_name: str) -> tuple[float, float]:
    """(x, y) pixel scale, arcsec per pixel, of a detector's full frame from pysiaf
    (XSciScale, YSciScale; e.g. NRCB1 0.0307/0.0308, NRCB5 0.0629/0.0631)."""

    det = get_detector(detector_name)
    aperture = nircam_siaf()[det.full_aperture]
    return float(aperture.XSciScale), float(aperture.YSciScale)


def grid_positions(npsf: int) -> list[tuple[int, int]]:
    """Full-frame 0-based (x, y) positions of an ``n x n`` grid (``npsf = n**2``), spanning the
    detector edge to edge like stpsf's ``psf_grid``: 3x3 -> 0, 1024, 2047. ``npsf=1`` gives
    the centre."""
    n = round(np.sqrt(npsf))
    if n * n != npsf or npsf in (2, 3) or npsf < 1:
        raise ValueError(f"npsf must be 1 or a square >= 4 (rectangular grid), got {npsf}")
    if n == 1:
        return [(FULL_SIZE // 2, FULL_SIZE // 2)]
    loc = [round(v * (FULL_SIZE - 1)) for v in np.linspace(0.0, 1.0, n)]
    return [(x, y) for y in loc for x in loc]


#: A NIRCam kit detector, or the (x, y) pixel scale (arcsec/pixel) of another imager.
Sampling = Detector | tuple[float, float]


def _scale(detector: Sampling) -> tuple[float, float]:
    """(x, y) pixel scale, arcsec/pixel, of a NIRCam detector or as given."""
    if isinstance(detector, tuple):
        return float(detector[0]), float(detector[1])
    return pixel_scale(detector.name)


def min_oversample(detector: Sampling, band: Bandpass) -> float:
    """Smallest sampling (samples per native pixel) at which the intensity PSF is band-limited
    (Nyquist for the longest pupil baseline at the band's shortest wavelength)."""
    scale = max(_scale(detector)) / ARCSEC_PER_RAD
    return 2.0 * MAX_BASELINE_M * scale / (band.wavelengths_um.min() * 1e-6)


# --------------------------------------------------------------------------- optics
def optical_psf(detector: Sampling, band: Bandpass, opd_nm: np.ndarray, npix: int,
                oversample: int, pupil_npix: int = DEFAULT_PUPIL_NPIX) -> np.ndarray:
    """Polychromatic optical (not pixel-integrated) PSF, ``npix`` x ``npix`` samples of
    1/``oversample`` native pixel, centred at ``(npix - 1) / 2``.

    Values are the flux fraction per sample of a PSF normalised to 1 over the whole image
    plane (Parseval: |MFT|^2 / sum |pupil|^2), computed with poppy's matrix DFT in single
    precision (2x faster; differs from double precision by 1e-7 of the peak).
    """
    import poppy
    from poppy.matrixDFT import matrix_dft

    pupil = jwst_pupil(pupil_npix)
    sx, sy = _scale(detector)
    total = float(np.sum(pupil.amplitude**2))
    lit = pupil.amplitude > 0
    amp, opd = pupil.amplitude[lit], opd_nm[lit]
    field = np.zeros(pupil.amplitude.shape, dtype=np.complex64)
    image = np.zeros((npix, npix))
    with poppy.conf.set_temp("double_precision", False):
        for lam_um, weight in zip(band.wavelengths_um, band.weights, strict=True):
            lam_over_d = lam_um * 1e-6 / GRID_DIAMETER_M * ARCSEC_PER_RAD  # arcsec
            nlamd = (npix * sy / oversample / lam_over_d, npix * sx / oversample / lam_over_d)
            field[lit] = amp * np.exp(2j * np.pi * opd * 1e-3 / lam_um)
            out = matrix_dft(field, nlamd, npix, centering="SYMMETRIC")
            image += weight * (out.real.astype(float) ** 2 + out.imag.astype(float) ** 2)
    return image / total


def pixel_integrate(image: np.ndarray, oversample: int) -> np.ndarray:
    """Convolve a band-limited image sampled ``oversample`` times per pixel with the native
    pixel (a box ``oversample`` samples wide), exactly, by multiplying its Fourier transform
    by ``sinc(oversample * f)``. Flux is conserved (the transfer function is 1 at f = 0).
    """
    import scipy.fft

    ny, nx = image.shape
    py = scipy.fft.next_fast_len(ny + 2 * oversample)
    px = scipy.fft.next_fast_len(nx + 2 * oversample)
    ft = scipy.fft.rfft2(image, s=(py, px))
    fy = np.sinc(oversample * scipy.fft.fftfreq(py))[:, None]
    fx = np.sinc(oversample * scipy.fft.rfftfreq(px))[None, :]
    return scipy.fft.irfft2(ft * fy * fx, s=(py, px))[:ny, :nx]


def integrated_stamp(detector: Sampling, band: Bandpass, opd_nm: np.ndarray, fov_pixels: int,
                      oversample: int, pupil_npix: int) -> np.ndarray:
    """Pixel-integrated PSF on ``fov_pixels * oversample`` samples (1-pixel margin computed
    and cropped so the box convolution sees the light just outside the stamp)."""
    npix = (fov_pixels + 2) * oversample
    raw = optical_psf(detector, band, opd_nm, npix, oversample, pupil_npix)
    return pixel_integrate(raw, oversample)[oversample:-oversample, oversample:-oversample]


#: Radius (native pixels) of the window in which the PSF's centroid is put on the source.
CENTROID_RADIUS_PIX = 5.0


def windowed_centroid(image: np.ndarray, oversample: int,
                      radius_pix: float = CENTROID_RADIUS_PIX) -> tuple[float, float]:
    """Centroid (x, y) in native pixels, relative to the array centre ``(n - 1) / 2``, of the
    samples within ``radius_pix`` native pixels of that centre."""
    ny, nx = image.shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    xx -= (nx - 1) / 2.0
    yy -= (ny - 1) / 2.0
    w = image * (np.hypot(xx, yy) <= radius_pix * oversample)
    return float(np.sum(w * xx) / np.sum(w) / oversample), float(np.sum(w * yy) / np.sum(w)
                                                                   / oversample)


def centred_opd(detector: Sampling, band: Bandpass, opd_nm: np.ndarray,
                pupil_npix: int) -> np.ndarray:
    """``opd_nm`` plus the global tilt that puts the PSF's centroid (within
    :data:`CENTROID_RADIUS_PIX`, at the band's mean wavelength) on the array centre.

    Segment tilts and coma otherwise shift it by up to ~0.09 pixel (~3 mas) in a
    field-dependent way that the distortion reference would not know about; the pipeline
    would report it as an astrometric error. Two iterations leave < 1e-4 pixel.
    """
    pupil = jwst_pupil(pupil_npix)
    sx, sy = (s / ARCSEC_PER_RAD for s in _scale(detector))
    mono = Bandpass(wavelengths_um=np.array([band.mean_um]), weights=np.array([1.0]))
    npix = int(2 * np.ceil(CENTROID_RADIUS_PIX + 1)) * 4
    opd = opd_nm
    for _ in range(2):
        cx, cy = windowed_centroid(optical_psf(detector, mono, opd, npix, 4, pupil_npix), 4)
        # A gradient g (nm/m) moves the PSF by -g * 1e-9 rad: cancel (cx, cy) pixels.
        opd = opd + WavefrontModel.tilt_nm(pupil, cx * sx * 1e9, cy * sy * 1e9)
    return opd


def _check_sampling(detector: Detector, band: Bandpass, oversample: int, what: str) -> None:
    need = min_oversample(detector, band)
    if oversample < need:
        raise ValueError(f"{what}: oversample={oversample} undersamples the {detector.name} PSF "
                         f"at {band.wavelengths_um.min():.3f} µm; need >= {need:.2f}")


def _odd_oversample(need: float) -> int:
    k = int(np.ceil(need))
    return k if k % 2 else k + 1


def _pupil_npix_for(band: Bandpass, half_width_arcsec: float) -> int:
    """Pupil pixels so the MFT's periodic replicas (every npix lambda/D) stay >= 2.5
    half-widths of the wings stamp away: 384 for F115W and longer, 640 for F070W.

    Library and wings of a filter use the same pupil: finer pupils resolve the 7 mm gaps
    better and scatter ~0.1 % more light beyond the wings box, which the normalisation to the
    box absorbs only if both files come from the same pupil.
    """
    lam_over_d = band.wavelengths_um.min() * 1e-6 / GRID_DIAMETER_M * ARCSEC_PER_RAD
    need = 2.5 * half_width_arcsec / lam_over_d
    return int(max(DEFAULT_PUPIL_NPIX, 128 * np.ceil(need / 128)))


# --------------------------------------------------------------------------- products
@dataclass(frozen=True)
class PsfWings:
    """Native-sampled, pixel-integrated PSF at the detector centre (``WINGS_FOV_PIXELS``^2).

    data : sums to 1 over the central ``NORM_BOX_PIXELS``^2 (MIRAGE's cropped stamp).
    truncated_fraction : flux of the untruncated optical PSF beyond that box, dropped by
        definition (fraction of the untruncated total).
    """

    detector: str
    filter: str
    seed: int
    data: np.ndarray
    truncated_fraction: float
    norm: float
    band: Bandpass
    pupil_npix: int
    oversample_used: int


@dataclass(frozen=True)
class PsfLibrary:
    """A grid of pixel-integrated, oversampled PSFs in the kit's normalisation.

    data : (npsf, fov*oversample, fov*oversample); each PSF's sum / oversample**2 is its flux
        fraction inside the stamp (of the unit flux defined by the wings box).
    positions : full-frame 0-based (x, y) of each PSF.
    """

    detector: str
    filter: str
    seed: int
    data: np.ndarray
    positions: tuple[tuple[int, int], ...]
    oversample: int
    fov_pixels: int
    band: Bandpass
    wings: PsfWings
    tel_wfe_nm: tuple[float, ...]

    def model(self):
        """The library as a photutils ``GriddedPSFModel`` (what MIRAGE evaluates)."""
        from astropy.nddata import NDData
        from photutils.psf import GriddedPSFModel

        meta = {"grid_xypos": [tuple(map(float, p)) for p in self.positions],
                "oversampling": self.oversample}
        return GriddedPSFModel(NDData(np.array(self.data, dtype=float), meta=meta))


def psf_wings(detector: str | Detector, band: str, seed: int,
              nlambda: int | None = None) -> PsfWings:
    """The wings PSF of a detector/filter at the detector centre (cached per process).

    Sampled at the smallest odd oversampling that is band-limited, pixel-integrated, then
    decimated at the native pixel centres.
    """
    det = get_detector(detector)
    return _psf_wings(det.name, check_filter(det, band), int(seed), nlambda)


@lru_cache(maxsize=8)
def _psf_wings(detector_name: str, filt: str, seed: int, nlambda: int | None) -> PsfWings:
    det = get_detector(detector_name)
    band_full = bandpass(filt, det.module)
    n = nlambda or min(len(band_full.weights), 4)
    band = bandpass(filt, det.module, n)
    os_ = _odd_oversample(min_oversample(det, band))
    half = (WINGS_FOV_PIXELS / 2.0) * max(pixel_scale(det.name))
    pupil_npix = _pupil_npix_for(band, half)
    centre = FULL_SIZE // 2
    opd = wavefront_model(seed, det).opd_nm(jwst_pupil(pupil_npix), centre, centre)
    opd = centred_opd(det, bandpass(filt, det.module), opd, pupil_npix)
    fine = integrated_stamp(det, band, opd, WINGS_FOV_PIXELS, os_, pupil_npix)
    native = fine[os_ // 2::os_, os_ // 2::os_] * os_**2
    inner = float(native[1:-1, 1:-1].sum())
    return PsfWings(detector=det.name, filter=filt, seed=int(seed), data=native / inner,
                    truncated_fraction=1.0 - inner, norm=1.0 / inner, band=band,
                    pupil_npix=pupil_npix, oversample_used=os_)


def psf_library(detector: str | Detector, band: str, seed: int, npsf: int = DEFAULT_NPSF,
                fov_pixels: int = DEFAULT_FOV_PIXELS, oversample: int = DEFAULT_OVERSAMPLE,
                nlambda: int | None = None) -> PsfLibrary:
    """The gridded PSF library of a detector/filter in the kit normalisation (cached per
    process, so the apcorr and the library file share one computation).

    ``fov_pixels`` (odd) is the stamp side in native pixels, ``oversample`` the samples per
    native pixel, ``npsf`` the number of grid PSFs (1, 4, 9, 16, ...).
    """
    det = get_detector(detector)
    return _psf_library(det.name, check_filter(det, band), int(seed), int(npsf),
                        int(fov_pixels), int(oversample), nlambda)


@lru_cache(maxsize=8)
def _psf_library(detector_name: str, filt: str, seed: int, npsf: int, fov_pixels: int,
                 oversample: int, nlambda: int | None) -> PsfLibrary:
    det = get_detector(detector_name)
    if fov_pixels % 2 == 0 or fov_pixels < 9:
        raise ValueError(f"fov_pixels must be odd and >= 9 (PSF centred on a pixel), got "
                         f"{fov_pixels}")
    band = bandpass(filt, det.module, nlambda)
    _check_sampling(det, band, oversample, "PSF library")
    wings = psf_wings(det.name, filt, seed)
    pupil = jwst_pupil(wings.pupil_npix)
    wfe = wavefront_model(seed, det)
    positions = tuple(grid_positions(npsf))
    stamps, rms = [], []
    for x, y in positions:
        opd = centred_opd(det, band, wfe.opd_nm(pupil, x, y), wings.pupil_npix)
        rms.append(pupil.rms_nm(opd))
        stamps.append(integrated_stamp(det, band, opd, fov_pixels, oversample,
                                        wings.pupil_npix) * wings.norm * oversample**2)
    return PsfLibrary(detector=det.name, filter=filt, seed=int(seed),
                      data=np.array(stamps, dtype=np.float32), positions=positions,
                      oversample=oversample, fov_pixels=fov_pixels, band=band, wings=wings,
                      tel_wfe_nm=tuple(rms))


# --------------------------------------------------------------------------- files
def _name_stem(detector: Detector, filter_name: str) -> str:
    wheel, pupil = wheel_elements(filter_name)
    return f"nircam_{detector.siaf_name.lower()}_{wheel.lower()}_{pupil.lower()}"


def library_filename(detector: str | Detector, band: str, *, npsf: int = DEFAULT_NPSF,
                     fov_pixels: int = DEFAULT_FOV_PIXELS,
                     oversample: int = DEFAULT_OVERSAMPLE) -> str:
    """MIRAGE's library file name, e.g.
    ``nircam_nrcb1_f115w_clear_fovp41_samp4_npsf9_predicted_realization0.fits``."""
    det = get_detector(detector)
    return (f"{_name_stem(det, band)}_fovp{fov_pixels}_samp{oversample}_npsf{npsf}_"
            f"{WFE_TYPE}_realization{WFE_GROUP}.fits")


def wings_filename(detector: str | Detector, band: str) -> str:
    """MIRAGE's wings file name, e.g.
    ``nircam_nrcb1_f115w_clear_fovp301_samp1_npsf1_predicted_realization0.fits``."""
    det = get_detector(detector)
    return (f"{_name_stem(det, band)}_fovp{WINGS_FOV_PIXELS}_samp1_npsf1_"
            f"{WFE_TYPE}_realization{WFE_GROUP}.fits")


def _common_cards(det: Detector, filt: str, seed: int, band: Bandpass) -> list[tuple]:
    sx, sy = pixel_scale(det.name)
    lam = band.mean_um
    return [
        ("INSTRUME", "NIRCAM", "Instrument name"),
        ("DETECTOR", det.siaf_name, "Detector name (SIAF)"),
        ("FILTER", filt, "Filter name"),
        ("PUPIL", "CLEAR", "Pupil wheel element"),
        ("PUPILOPD", "simval JWST-like pupil + synthetic WFE", "Pupil OPD source name"),
        ("OPD_FILE", f"simval_synthetic_{WFE_TYPE}_opd_seed{seed}", "Pupil OPD (synthetic)"),
        ("OPDSLICE", WFE_GROUP, "Pupil OPD slice number"),
        ("NWAVES", len(band.weights), "Number of wavelengths used in calculation"),
        ("WAVELEN", lam * 1e-6, "Weighted mean wavelength in meters"),
        ("DIFFLMT", lam * 1e-6 / GRID_DIAMETER_M * ARCSEC_PER_RAD,
         "lambda/D in arcsec (D = pupil grid 6.8 m)"),
        ("PIXSCLX", sx, "[arcsec/pix] native x scale (pysiaf XSciScale)"),
        ("PIXSCLY", sy, "[arcsec/pix] native y scale (pysiaf YSciScale)"),
        ("PIXINTEG", True, "PSF convolved with the native pixel"),
        ("NORMALIZ", f"unit flux in {NORM_BOX_PIXELS}x{NORM_BOX_PIXELS} px", "PSF normalization"),
        ("SVSEED", int(seed), "simval kit seed"),
        ("SVKITVER", KIT_VERSION, "simval kit version"),
    ]


def _write_hdul(hdul, path: Path) -> Path:
    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True)
    return path


def write_psf_library(directory: str | os.PathLike, detector: str | Detector,
                      band: str, seed: int, *, npsf: int = DEFAULT_NPSF,
                      fov_pixels: int = DEFAULT_FOV_PIXELS, oversample: int = DEFAULT_OVERSAMPLE,
                      nlambda: int | None = None) -> Path:
    """Write MIRAGE's gridded PSF library for one detector and filter; return its path.

    Same inputs give byte-identical files. See the module docstring for format and
    normalisation.
    """
    from astropy.io import fits

    det = get_detector(detector)
    lib = psf_library(det.name, band, seed, npsf, fov_pixels, oversample, nlambda)
    sx, _ = pixel_scale(det.name)
    hdu = fits.PrimaryHDU(lib.data)
    cards = [
        *_common_cards(det, lib.filter, seed, lib.band),
        ("FOVPIXEL", fov_pixels, "Field of view in pixels (full array)"),
        ("FOV", fov_pixels * sx, "Field of view in arcsec (full array)"),
        ("OVERSAMP", oversample, "Oversampling factor"),
        ("DET_SAMP", oversample, "Oversampling factor for MFT to detector plane"),
        ("PIXELSCL", sx / oversample, "[arcsec/pix] scale of the oversampled x axis"),
        ("TRUNCFRA", lib.wings.truncated_fraction, "PSF flux dropped beyond the box"),
    ]
    for i, ((x, y), wfe) in enumerate(zip(lib.positions, lib.tel_wfe_nm, strict=True)):
        cards.append((f"DET_YX{i}", str((float(y), float(x))),
                      f"The #{i} PSF's (y,x) detector pixel position"))
        cards.append((f"PSFSUM{i}", float(lib.data[i].sum(dtype=np.float64) / oversample**2),
                      f"PSF #{i} flux fraction inside the stamp"))
        cards.append((f"TELWFE{i}", round(wfe, 3), f"[nm] RMS WFE of PSF #{i}"))
    cards.append(("NUM_PSFS", len(lib.positions), "The total number of fiducial PSFs"))
    hdu.header.extend(cards)
    hdu.header["COMMENT"] = ("Data [i, y, x]: PSF i at DET_YX<i>, pixel-integrated, sampled "
                             f"{oversample}x, sum/OVERSAMP**2 = flux fraction in the stamp.")
    path = Path(directory) / library_filename(det, lib.filter, npsf=npsf,
                                               fov_pixels=fov_pixels, oversample=oversample)
    return _write_hdul(fits.HDUList([hdu]), path)


def write_psf_wings(directory: str | os.PathLike, detector: str | Detector, band: str,
                    seed: int) -> Path:
    """Write MIRAGE's PSF wings file (``DET_DIST`` extension) into ``directory`` (the
    ``psf_wings`` folder of the library directory); return its path."""
    from astropy.io import fits

    det = get_detector(detector)
    wings = psf_wings(det.name, band, seed)
    sx, _ = pixel_scale(det.name)
    centre = FULL_SIZE // 2
    cards = [
        *_common_cards(det, wings.filter, seed, wings.band),
        ("FOVPIXEL", WINGS_FOV_PIXELS, "Field of view in pixels (full array)"),
        ("FOV", WINGS_FOV_PIXELS * sx, "Field of view in arcsec (full array)"),
        ("OVERSAMP", 1, "Oversampling factor"),
        ("DET_SAMP", 1, "Oversampling factor for MFT to detector plane"),
        ("CALCSAMP", wings.oversample_used, "Samples per pixel before pixel binning"),
        ("PIXELSCL", sx, "[arcsec/pix] scale of the x axis"),
        ("TRUNCFRA", wings.truncated_fraction, "PSF flux dropped beyond the box"),
        ("DET_YX0", str((float(centre), float(centre))), "The #0 PSF's (y,x) detector position"),
        ("NUM_PSFS", 1, "The total number of fiducial PSFs"),
    ]
    primary = fits.PrimaryHDU()
    primary.header.extend(cards)
    ext = fits.ImageHDU(wings.data.astype(np.float32), name="DET_DIST")
    ext.header.extend(cards)
    path = Path(directory) / wings_filename(det, wings.filter)
    return _write_hdul(fits.HDUList([primary, ext]), path)


def measure_fwhm(image: np.ndarray, sample_arcsec: float) -> float:
    """FWHM in arcsec of a PSF image sampled every ``sample_arcsec`` arcsec, centred at
    ``(n - 1) / 2``: poppy's ``measure_fwhm`` (Gaussian fit to the samples above 10 % of the
    peak, the estimator behind webbpsf/JDox PSF widths)."""
    from astropy.io import fits
    from poppy.utils import measure_fwhm as poppy_fwhm

    hdu = fits.PrimaryHDU(np.asarray(image, dtype=float))
    hdu.header["PIXELSCL"] = sample_arcsec
    return float(poppy_fwhm(fits.HDUList([hdu])))


def read_psf_library(path: str | os.PathLike):
    """Load a library file as a photutils ``GriddedPSFModel`` the way MIRAGE does
    (``stpsf.utils.to_griddedpsfmodel``: ``DET_YX<i>`` is ``'(y, x)'``), without importing
    stpsf. photutils' own ``GriddedPSFModel.read(format='webbpsf')`` (3.0) takes the pair as
    (x, y), which transposes the grid."""
    from astropy.io import fits
    from astropy.nddata import NDData
    from photutils.psf import GriddedPSFModel

    with fits.open(path) as hdul:
        header, data = hdul[0].header, np.array(hdul[0].data, dtype=float)
    xy = []
    for i in range(int(header["NUM_PSFS"])):
        y, x = (float(v) for v in header[f"DET_YX{i}"].strip("()").split(","))
        xy.append((x, y))
    meta = {"grid_xypos": xy, "oversampling": int(header["OVERSAMP"])}
    return GriddedPSFModel(NDData(data[None] if data.ndim == 2 else data, meta=meta))
