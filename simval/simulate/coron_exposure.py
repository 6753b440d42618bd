"""One coronagraphic exposure, file to file: the star (target or PSF reference) behind the
mask at its dither offset, its companions, an optional disk image, the sky; out come
``<base>_rateints.fits``
(:mod:`simval.simulate.coron_rateints`), the noiseless rate image and a truth table.

The truth (``<base>_coron_truth.ecsv``), one row per source: ``kind`` (star, companion),
``ra``/``dec`` (deg), ``flux_jy``, ``x``/``y`` (0-based subarray pixels where the
source's light lands: the SIAF's Sci2Idl inverted, as the kit's DISTORTION does),
``offset_x``/``offset_y`` (arcsec from the mask centre, the optics' frame),
``rate_dn_s`` (the source's unocculted count rate, ``F 1e-23 / PHOTFNU``) and
``transmission`` (the mask's intensity transmission at its offset). The table's metadata
hold the dither offset (arcsec), the roll (ROLL_REF, deg), whether it is a PSF reference,
the optics' wavefront state and the disk (file, factor, its total DN/s on the subarray).
The noiseless rate holds everything but the noise.

Units: deg, arcsec, Jy, DN/s, 0-based pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simval import offline
from simval.atomic import atomic_path
from simval.instruments.nircam_coron import CoronMask
from simval.simulate.coron_disk import disk_rate, offaxis_kernel
from simval.simulate.coron_rateints import CoronReadout, noisy_rateints, write_rateints
from simval.simulate.coron_scene import PsfFor, Source, render_scene
from simval.simulate.dms_meta import ExposureIds
from simval.simulate.miri_extended import EmissionImage

__all__ = ["CoronProducts", "CoronSetup", "simulate_coron_exposure"]


@dataclass(frozen=True)
class CoronSetup:
    """What every exposure of a coronagraphic observation shares: the calibration
    (PHOTFNU of the CLEAR pupil, PHOTMJSR_clear, the Lyot stop's throughput), the sky
    (MJy/sr) and the detector (gain e-/DN, CDS read noise e-)."""

    photfnu: float
    photmjsr_clear: float
    lyot_throughput: float
    sky_mjysr: float
    gain_e_per_dn: float
    readnoise_cds_e: float


@dataclass(frozen=True)
class CoronProducts:
    """Files written for one exposure (``disk``: the disk's own noiseless rate, DN/s, when
    the scene has one)."""

    rateints: Path
    rate: Path
    truth: Path
    disk: Path | None = None


def simulate_coron_exposure(out_dir: str | os.PathLike, base_name: str, *, mask: CoronMask,
                            psf_for: PsfFor, star: Source, companions: list[Source],
                            attitude: np.ndarray, ids: ExposureIds, readout: CoronReadout,
                            setup: CoronSetup, psf_reference: bool, seed: int,
                            poisson: bool = True, wavefront: str = "",
                            disk: tuple[EmissionImage, float] | None = None) -> CoronProducts:
    """Simulate one exposure into ``out_dir`` (module docstring); deterministic in
    ``seed``. ``psf_for`` carries the exposure's optics (its wavefront state, named in
    ``wavefront`` for the truth); ``disk`` an extended image (MJy/sr) and its factor, seen
    through the coronagraph (:mod:`simval.simulate.coron_disk`)."""
    from astropy.io import fits
    from astropy.table import Table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sources = [star, *companions]
    scene = render_scene(mask, psf_for, sources, attitude, photfnu=setup.photfnu,
                         photmjsr_clear=setup.photmjsr_clear,
                         lyot_throughput=setup.lyot_throughput, sky_mjysr=setup.sky_mjysr)
    rate, disk_dn_s, disk_path = scene.rate, 0.0, None
    if disk is not None:
        extended = disk_rate(disk[0], disk[1], mask, attitude, offaxis_kernel(psf_for, mask),
                             photmjsr_clear=setup.photmjsr_clear,
                             lyot_throughput=setup.lyot_throughput)
        rate, disk_dn_s = rate + extended, float(extended.sum())
        disk_path = out / f"{base_name}_disk_rate.fits"
        with atomic_path(disk_path) as tmp:
            fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(extended.astype(np.float32),
                                                           name="SCI")]).writeto(tmp)
    noise = noisy_rateints(rate, readout, mask, gain_e_per_dn=setup.gain_e_per_dn,
                           readnoise_cds_e=setup.readnoise_cds_e, seed=seed, poisson=poisson)
    rateints = write_rateints(out / f"{base_name}_rateints.fits", noise, mask, ids, readout,
                              attitude, psf_reference=psf_reference)
    rate_path = out / f"{base_name}_noiseless_rate.fits"
    with atomic_path(rate_path) as tmp:
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(rate.astype(np.float32),
                                                       name="SCI")]).writeto(tmp)
    offsets = np.array(scene.offsets)
    r = np.hypot(offsets[:, 0], offsets[:, 1])
    truth = Table({
        "kind": ["star"] + ["companion"] * len(companions),
        "ra": [s.ra for s in sources], "dec": [s.dec for s in sources],
        "flux_jy": [s.flux_jy for s in sources],
        "x": scene.x, "y": scene.y, "offset_x": offsets[:, 0], "offset_y": offsets[:, 1],
        "rate_dn_s": [s.flux_jy * 1e-23 / setup.photfnu for s in sources],
        "transmission": mask.intensity(r)})
    rot = offline.siaf_rotations()
    ap = offline.nircam_siaf()[mask.aperture]
    truth.meta.update({
        "base_name": base_name, "psf_reference": bool(psf_reference),
        "dither_arcsec": list(ids.offset_arcsec),
        "roll_ref_deg": float(rot.posangle(attitude, ap.V2Ref, ap.V3Ref)) % 360.0,
        "wavefront": wavefront, "mask": mask.name, "filter": ids.filter_name,
        "disk_file": Path(disk[0].path).name if disk else None,
        "disk_scale": float(disk[1]) if disk else None, "disk_dn_s": disk_dn_s})
    truth_path = out / f"{base_name}_coron_truth.ecsv"
    with atomic_path(truth_path) as tmp:
        truth.write(tmp, format="ascii.ecsv")
    return CoronProducts(rateints, rate_path, truth_path, disk_path)
