"""Round trip: dream_like generator -> DREaM schema file -> DREaM reader -> MIRAGE catalog ->
MIRAGE seed image (catalog_seed_image, in a child process) -> fluxes, half-light radii,
axis ratios and position angles measured on the noiseless seed image.

What it pins down (MIRAGE 2.5.0, ``mirage/seed_image/catalog_seed_image.py``):
``create_galaxy`` renders ``astropy.modeling.models.Sersic2D(r_eff=radius / XSciScale,
ellip=ellipticity, theta=<PA turned into the detector frame by calc_x_position_angle>)``,
whose semi-axes are a = r_eff and b = (1 - ellip) r_eff: the catalog radius is the
half-light radius along the major axis, not a circularised one, and the stamp is rescaled to
0.9995 of the catalog flux (SERSIC_FRACTIONAL_SIGNAL) before the PSF convolution.

The seed image is convolved with the kit's PSF, which alone makes a 0.2-0.35" galaxy look
5-7 % larger and rounder by 0.03-0.07 in q (measured below). So each galaxy is also rendered
independently here, with the documented conventions (Sersic2D with a = catalog radius along
the major axis, the catalog PA turned into the detector frame through the SIAF, the flux
0.9995 x the catalog count rate) and convolved with the same PSF (the kit library's,
pixel-integrated, at the nearest grid point); the seed image is compared with that model,
and with the model of the other reading of the radius (circularised: a = radius/sqrt(q)).

Tolerances: total flux within a circle of radius R (2.5 arcsec) between
0.99 * 0.9995 * F_ell(R) and 1.01 of the catalog count rate, where F_ell(R) is the Sersic
fraction inside the elliptical isophote of semi-major axis R (a lower bound for the circle);
major-axis half-light radius within 1 % of the model's (the circularised model is off by
> 10 %); axis ratio within 0.015 of the model's; position angle within 2 deg of the catalog's.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from astropy.io import fits

from simval.catalogs import dream_like as dl
from simval.catalogs import read_catalog_file
from simval.catalogs.readers import kpc_to_arcsec

RA0, DEC0, PA_V3 = 53.1625, -27.7914, 30.0
BAND = "F150W"
APERTURE_ARCSEC = 2.5

_CHILD = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from simval.simulate import mirage_backend as mb
    yaml_path, workdir = Path(sys.argv[1]), Path(sys.argv[2])
    mb._forbid_network()
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)          # MIRAGE writes mirage_latest.log into the current directory
    mb._import_mirage(workdir / "mirage.log")
    from mirage.seed_image.catalog_seed_image import Catalog_seed
    seed = Catalog_seed(offline=True)
    seed.paramfile = str(yaml_path)
    seed.make_seed()
    print(json.dumps({"seed": seed.seed_file, "basename": seed.basename}))
""")


def _sersic_b(n):
    from scipy.special import gammaincinv

    return gammaincinv(2 * n, 0.5)


def _enclosed(n, r_over_re):
    """Fraction of a Sersic profile's light inside the isophote of semi-major r."""
    from scipy.special import gammainc

    return gammainc(2 * n, _sersic_b(n) * r_over_re ** (1.0 / n))


def _moments(img, x0, y0, radius, q=1.0, theta=0.0):
    """(q, theta) of the second moments of ``img`` inside an ellipse (semi-major radius)."""
    yy, xx = np.mgrid[:img.shape[0], :img.shape[1]]
    dx, dy = xx - x0, yy - y0
    c, s = math.cos(theta), math.sin(theta)
    u, v = dx * c + dy * s, -dx * s + dy * c
    inside = (u / radius) ** 2 + (v / (q * radius)) ** 2 <= 1.0
    w = img * inside
    mxx, myy, mxy = (w * dx * dx).sum(), (w * dy * dy).sum(), (w * dx * dy).sum()
    lam = np.linalg.eigvalsh([[mxx, mxy], [mxy, myy]])
    return math.sqrt(lam[0] / lam[1]), 0.5 * math.atan2(2 * mxy, mxx - myy)


def _psf_for(psf_dir, band: str, x_full: float, y_full: float) -> np.ndarray:
    """The library PSF nearest (x, y) (full-frame pixels), summed to detector pixels."""
    path = next(p for p in sorted(psf_dir.glob(f"nircam_nrcb1_{band.lower()}_*.fits")))
    with fits.open(path) as hdul:
        head, cube = hdul[0].header, np.asarray(hdul[0].data, dtype=float)
    ov = int(head["OVERSAMP"])
    pos = [tuple(float(v) for v in head[f"DET_YX{i}"].strip("()").split(","))
           for i in range(cube.shape[0])]
    i = int(np.argmin([(y - y_full) ** 2 + (x - x_full) ** 2 for y, x in pos]))
    n = cube.shape[1] // ov * ov
    psf = cube[i, :n, :n].reshape(n // ov, ov, n // ov, ov).sum(axis=(1, 3))
    return psf / psf.sum()


def _model(shape, x0, y0, radius_px, n, q, theta, total, psf) -> np.ndarray:
    """A Sersic galaxy as MIRAGE's conventions say it is rendered, convolved with ``psf``."""
    from astropy.modeling.models import Sersic2D
    from scipy.signal import fftconvolve

    yy, xx = np.mgrid[:shape[0], :shape[1]]
    img = Sersic2D(amplitude=1.0, r_eff=radius_px, n=n, x_0=x0, y_0=y0, ellip=1.0 - q,
                   theta=theta)(xx, yy)
    img *= total / img.sum()
    return fftconvolve(img, psf, mode="same")


def _measure(img, x0, y0, re_px, rate):
    """(q, theta, major-axis half-light radius in px) as measured on ``img``."""
    from photutils.aperture import EllipticalAperture

    q_m, th = 1.0, 0.0
    for _ in range(4):
        q_m, th = _moments(img, x0, y0, 6.0 * re_px, q_m, th)
    a_grid = np.arange(1.0, 3.0 * re_px, 0.1)
    grow = np.array([EllipticalAperture((x0, y0), a, a * q_m, theta=th).do_photometry(
        img, method="exact")[0][0] for a in a_grid])
    return q_m, th, float(np.interp(0.5 * rate, grow, a_grid))


@pytest.mark.slow
def test_generator_to_mirage_seed_image(quickstart_kit, tmp_path):
    from photutils.aperture import CircularAperture

    from simval import offline
    from simval.kit.photometry import mag_to_countrate
    from simval.plan import attitude_at_pa_v3
    from simval.simulate.mirage_backend import mirage_environment
    from simval.simulate.mirage_catalogs import read_galaxy_list, write_catalogs
    from simval.simulate.mirage_yaml import (
        MirageExposure,
        MirageReferences,
        read_parameters,
        write_mirage_yaml,
    )

    # 1. The generator, in the DREaM schema. Four galaxies are taken whose shapes make the
    #    conventions measurable (0.15-0.35", q 0.35-0.7, n < 2.2) and, the only edit, placed
    #    on a 6" grid about (0, 0) so that they are isolated on one SUB400P subarray.
    params = dl.DreamLikeParams(mag_limit=23.5, mag_bright=20.0, n_stars=0)
    table = dl.generate_box(240.0, 240.0, seed=31, params=params, bands=[BAND])
    g = table[table["type"] == "galaxy"]
    r = kpc_to_arcsec(g["Re_maj"], g["redshift"])
    ok = ((r > 0.15) & (r < 0.35) & (g["axis_ratio"] > 0.35) & (g["axis_ratio"] < 0.7)
          & (g["sersic_n"] < 2.2))
    pick = g[ok][:4]
    assert len(pick) == 4
    pick["RA"] = np.array([-3.0, 3.0, -3.0, 3.0]) / 3600.0
    pick["DEC"] = np.array([-3.0, -3.0, 3.0, 3.0]) / 3600.0
    dream_file = tmp_path / "four.ecsv"
    pick.write(dream_file)

    # 2. DREaM reader -> SourceCatalog on the pointing -> MIRAGE galaxy catalog and yaml.
    cat = read_catalog_file(dream_file, "dream", [BAND], centre=(RA0, DEC0))
    _, gals = cat.for_band(BAND)
    out = tmp_path / "sim"
    exp = MirageExposure(detector="NRCB1", subarray="SUB400P", filter_name=BAND,
                         readpatt="BRIGHT2", ngroups=2, ra_deg=RA0, dec_deg=DEC0,
                         pa_v3_deg=PA_V3, seed=7, background_adu_s=0.0, psf_wings=False)
    _, gal_cat = write_catalogs(None, gals, out, exp.base_name, filter_name=BAND)
    kit = quickstart_kit
    refs = MirageReferences.from_mapping(kit.mirage_references("NRCB1", BAND, "SUB400P"),
                                         mirage_data=kit.mirage_data, crds_env=kit.crds_env())
    yaml_path = write_mirage_yaml(exp, refs, None, gal_cat, out)

    # 3. The seed image, MIRAGE in a child process (it takes over logging and numpy's RNG).
    work = tmp_path / "work"
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(yaml_path), str(work)],
                          env=mirage_environment(read_parameters(yaml_path), os.environ),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    seed = np.asarray(fits.getdata(res["seed"], 1), dtype=float)
    assert seed.shape == (400, 400)
    listed = read_galaxy_list(res["basename"] + "_galaxySources.list")
    assert sorted(listed["index"]) == list(gals["index"])

    # 4. Measure each galaxy on the noiseless seed image (ADU/s).
    siaf = offline.nircam_siaf()["NRCB1_SUB400P"]
    scale = float(siaf.XSciScale)            # what MIRAGE divides the radius by
    siaf.set_attitude_matrix(attitude_at_pa_v3(siaf.V2Ref, siaf.V3Ref, RA0, DEC0, PA_V3))
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    rows = []
    for row in gals:
        lst = listed[listed["index"] == row["index"]][0]
        x0, y0 = float(lst["pixelx"]), float(lst["pixely"])
        rate = float(mag_to_countrate(row["mag"], "NRCB1", BAND))
        assert float(lst["countrate_e/s"]) == pytest.approx(rate, rel=1e-4)
        n, re_arcsec, q = float(row["sersic_index"]), float(row["radius"]), float(
            row["axis_ratio"])
        re_px = re_arcsec / scale
        r_ap = APERTURE_ARCSEC / scale
        flux = float(CircularAperture((x0, y0), r_ap).do_photometry(seed, method="exact")[0][0])
        lower = 0.9995 * float(_enclosed(n, APERTURE_ARCSEC / re_arcsec))
        # Expected detector angle of the catalog PA (East of North): a point 1" along it.
        c = SkyCoord(row["ra"] * u.deg, row["dec"] * u.deg)
        p = c.directional_offset_by(row["pos_angle"] * u.deg, 1.0 * u.arcsec)
        xa, ya = siaf.sky_to_sci(c.ra.deg, c.dec.deg)
        xb, yb = siaf.sky_to_sci(p.ra.deg, p.dec.deg)
        th_expected = math.atan2(yb - ya, xb - xa)
        # Measured on the seed image, on the model, and on the circularised model.
        q_m, th, r_half = _measure(seed, x0, y0, re_px, rate)
        # MIRAGE samples the profile about the centre of the source's pixel (the sub-pixel
        # offset goes into the PSF it convolves with); the model does the same.
        psf = _psf_for(refs.psf_library, BAND, x0 + 1648, y0 + 1648)
        xi, yi = float(round(x0)), float(round(y0))
        model = _model(seed.shape, xi, yi, re_px, n, q, th_expected, 0.9995 * rate, psf)
        q_mod, _, r_mod = _measure(model, xi, yi, re_px, rate)
        circ = _model(seed.shape, xi, yi, re_px / math.sqrt(q), n, q, th_expected,
                      0.9995 * rate, psf)
        _, _, r_circ = _measure(circ, xi, yi, re_px, rate)
        dpa = (math.degrees(th - th_expected) + 90.0) % 180.0 - 90.0
        rows.append((row["index"], n, q, re_arcsec, flux / rate, lower, r_half / re_px,
                     r_half / r_mod, r_half / r_circ, q_m, q_mod, dpa))

    print("\nindex  n     q     r_e\"   flux/cat  lower   r_half/r_e  /model  /circ_model"
          "  q_seed  q_model  dPA(deg)")
    for i, n, q, re, fr, lo, rr, rm, rc, qs, qm, dpa in rows:
        print(f"{i:5d} {n:5.2f} {q:5.3f} {re:6.3f}   {fr:.4f}   {lo:.4f}  {rr:.4f}     "
              f"{rm:.4f}  {rc:.4f}       {qs:.3f}   {qm:.3f}    {dpa:+.2f}")
    for *_, fr, lo, _rr, rm, rc, qs, qm, dpa in rows:
        assert 0.99 * lo <= fr <= 1.01
        assert abs(rm - 1.0) < 0.01
        assert rc < 0.90          # the circularised reading of the radius is excluded
        assert abs(qs - qm) < 0.015
        assert abs(dpa) < 2.0
