"""MIRAGE's cosmic-ray library: ten files of 1000 charge stamps (21x21 pixels, electrons).

MIRAGE 2.5 (``ramp_generator/obs_generator.py``, ``read_cr_files``/``do_cosmic_rays``)
opens ``<cosmicRay:path>/CRs_MCD1.7_<LIBRARY>_<NN>_<cosmicRay:suffix>.fits`` for
NN = 00..09, reads ``hdul[1].data`` (1000, 21, 21) and ``hdul[0].header``, picks a
random file and stamp per hit, centres it on the hit pixel and adds ``stamp / gain``.
Its own yaml generator writes the suffix ``IPC_NIRCam_<module+number>`` (``B1``, ``B5``
for NRCBLONG) — :func:`cr_library_suffix`. The library name (SUNMIN/SUNMAX/FLARES) only
selects the hit rate inside MIRAGE; the stamps can be the same.

MIRAGE convolves everything it adds, cosmic rays included, with the IPC kernel
(``obs_generator.create``: ``add_crs_and_noise`` then ``add_ipc``), so these stamps hold
the charge collected by each pixel WITHOUT IPC (the flight library's "IPC" stamps
would get IPC twice).

Event model (deterministic from ``component_rng(seed, "cosmic_rays", detector, file)``):

- direction: isotropic flux through the detector plane (cos(theta) = sqrt(U)), uniform
  azimuth; the track crosses the HgCdTe absorber (thickness ~6 um SW, ~8 um LW, 18 um
  pixels, JDox "NIRCam Detector Overview") with projected length t tan(theta), truncated
  at the stamp edge;
- charge: Moyal (Landau-like) energy loss per um of path, most probable 350 e-/um (SW) and
  600 e-/um (LW) for minimum-ionising protons (~1 keV/um in HgCdTe over a pair-creation
  energy of ~2 eV (SW) or ~1.2 eV (LW)), times Z^2 for the galactic-cosmic-ray mix
  (87 % H, 12 % He, 1 % Z = 6-26; Robberto 2009, JWST-STScI-001928);
- charge diffusion: Gaussian, sigma 0.25 pixel;
- stamps are integer electrons, stored as int32 in RICE-compressed FITS (lossless).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from astropy.io import fits

from simval.atomic import atomic_path
from simval.kit.detectors import Detector
from simval.seeding import component_rng

N_FILES = 10
N_STAMPS = 1000
STAMP_SIZE = 21
PIXEL_PITCH_UM = 18.0
THICKNESS_UM = {"SHORT": 6.0, "LONG": 8.0}
MPV_E_PER_UM = {"SHORT": 350.0, "LONG": 600.0}
MOYAL_WIDTH = 0.15           # Moyal scale / most probable value
DIFFUSION_SIGMA_PX = 0.25
POINTS_PER_TRACK = 96
#: Galactic cosmic-ray species: (probability, Z range).
SPECIES = ((0.87, (1, 1)), (0.12, (2, 2)), (0.01, (6, 26)))
LIBRARIES = ("SUNMIN", "SUNMAX", "FLARES")


def cr_library_suffix(detector: Detector) -> str:
    """MIRAGE's ``cosmicRay: suffix`` of ``detector``: ``IPC_NIRCam_B1``, ``IPC_NIRCam_B5``..."""
    return f"IPC_NIRCam_{detector.siaf_name[3:]}"


def cr_library_files(directory: str | os.PathLike, detector: Detector,
                     library: str = "SUNMIN") -> list[Path]:
    """The ten file paths MIRAGE opens for ``detector`` and ``library``."""
    library = library.upper()
    if library not in LIBRARIES:
        raise ValueError(f"MIRAGE cosmic-ray libraries are {', '.join(LIBRARIES)}, "
                         f"not {library!r}")
    suffix = cr_library_suffix(detector)
    return [Path(directory) / f"CRs_MCD1.7_{library}_{i:02d}_{suffix}.fits"
            for i in range(N_FILES)]


def _charge_per_um(rng: np.random.Generator, detector: Detector, n: int) -> np.ndarray:
    """Deposited electrons per um of path for ``n`` particles (Moyal x Z^2)."""
    mpv = MPV_E_PER_UM[detector.channel]
    # Moyal variate: -ln(chi2_1) shifted so its mode is 0 (mode of Moyal(0, 1) is 0).
    moyal = -np.log(rng.chisquare(1, n))
    per_um = mpv * (1.0 + MOYAL_WIDTH * np.minimum(moyal, 60.0))
    probs = np.array([p for p, _ in SPECIES])
    kind = rng.choice(len(SPECIES), size=n, p=probs / probs.sum())
    z = np.empty(n)
    for k, (_, (zlo, zhi)) in enumerate(SPECIES):
        sel = kind == k
        z[sel] = rng.integers(zlo, zhi + 1, sel.sum())
    return np.maximum(per_um, 0.0) * z**2


def cr_stamps(detector: Detector, seed: int, index: int) -> np.ndarray:
    """Library file ``index``'s stamps, (1000, 21, 21) int32 electrons."""
    rng = component_rng(seed, "cosmic_rays", detector.name, index)
    n, m, size = N_STAMPS, POINTS_PER_TRACK, STAMP_SIZE
    half = size // 2
    thickness = THICKNESS_UM[detector.channel]
    cos_t = np.sqrt(rng.uniform(1e-6, 1.0, n))
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    proj_px = thickness * np.sqrt(1.0 - cos_t**2) / cos_t / PIXEL_PITCH_UM
    path_um = thickness / cos_t
    centre = rng.uniform(-0.5, 0.5, (n, 2)) + half
    # Sample points along the projected track; keep those inside the stamp.
    t = (np.arange(m) + 0.5) / m - 0.5
    along = proj_px[:, None] * t[None, :]
    x = centre[:, :1] + along * np.cos(phi)[:, None]
    y = centre[:, 1:] + along * np.sin(phi)[:, None]
    x += rng.normal(0.0, DIFFUSION_SIGMA_PX, x.shape)
    y += rng.normal(0.0, DIFFUSION_SIGMA_PX, y.shape)
    charge = (_charge_per_um(rng, detector, n) * path_um / m)[:, None] * np.ones((1, m))
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    inside = (ix >= 0) & (ix < size) & (iy >= 0) & (iy < size)
    event = np.broadcast_to(np.arange(n)[:, None], (n, m))
    flat = (event[inside] * size + iy[inside]) * size + ix[inside]
    stamps = np.bincount(flat, weights=charge[inside], minlength=n * size * size)
    return np.rint(stamps).astype(np.int32).reshape(n, size, size)


def write_cr_library(directory: str | os.PathLike, detector: Detector, seed: int, *,
                     library: str = "SUNMIN") -> list[Path]:
    """Write the ten library files of ``detector`` into ``directory``; return their paths."""
    paths = cr_library_files(directory, detector, library)
    for index, path in enumerate(paths):
        header = fits.Header()
        header["INSTRUME"] = ("NIRCAM", "Instrument")
        header["DETECTOR"] = (detector.name, "DMS detector name")
        header["LIBRARY"] = (library.upper(), "MIRAGE library name (rate selector)")
        header["FILEIDX"] = (index, "File number in the library")
        header["NSTAMPS"] = (N_STAMPS, "Cosmic-ray stamps in this file")
        header["BUNIT"] = ("electron", "Collected charge, before IPC")
        header["THICKUM"] = (THICKNESS_UM[detector.channel], "[um] Absorber thickness")
        header["SEED"] = (seed, "simval kit seed")
        header["ORIGIN"] = ("simval", "Synthetic cosmic-ray library")
        hdus = fits.HDUList([
            fits.PrimaryHDU(header=header),
            fits.CompImageHDU(cr_stamps(detector, seed, index), name="CRS",
                              compression_type="RICE_1", tile_shape=(100, STAMP_SIZE, STAMP_SIZE)),
        ])
        with atomic_path(path) as tmp:
            hdus.writeto(tmp)
    return paths
