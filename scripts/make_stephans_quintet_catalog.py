"""Write ``catalogs/stephans_quintet.ecsv``: a Stephan's Quintet-like mid-infrared field for
``scenarios/stephans_quintet.yaml``.

Five bright extended galaxies at the positions of NGC 7317, 7318a, 7318b, 7319 and 7320
(J2000, rounded) as Sersic profiles, with illustrative MIRI fluxes (AB mag; ellipticals
fading with wavelength, the star-forming galaxies and the Seyfert 2 NGC 7319 rising): a
realistic-looking field to calibrate, not measured photometry. Plus 40 stars, AB 19-22 in
F770W, fainter at longer wavelengths along the Rayleigh-Jeans tail (f_nu ~ nu^2:
+5 log10(lambda / 7.639 um) mag), seeded. Run from the repository root:
``python scripts/make_stephans_quintet_catalog.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.table import Table

from simval.instruments import miri

BANDS = ("F770W", "F1000W", "F1500W")
#: name, RA, Dec (deg), AB mag F770W/F1000W/F1500W, r_eff (arcsec), ellipticity, PA (deg),
#: Sersic index
GALAXIES = [
    ("NGC7317", 338.9663, 33.9450, (14.0, 14.4, 15.0), 7.0, 0.10, 30.0, 4.0),
    ("NGC7318a", 338.9863, 33.9656, (13.7, 14.0, 14.6), 8.0, 0.10, 0.0, 4.0),
    ("NGC7318b", 338.9933, 33.9658, (12.4, 12.6, 12.2), 15.0, 0.40, 60.0, 1.5),
    ("NGC7319", 339.0146, 33.9758, (12.0, 11.9, 11.2), 12.0, 0.30, 140.0, 2.0),
    ("NGC7320", 339.0142, 33.9481, (12.2, 12.4, 12.0), 20.0, 0.50, 135.0, 1.0),
]
SEED = 7320


def main() -> Path:
    rng = np.random.default_rng(SEED)
    n_stars = 40
    ra0, dec0, half = 338.99, 33.96, 1.6 / 60.0
    rows = []
    for i, (_name, ra, dec, mags, reff, ell, pa, n) in enumerate(GALAXIES, start=1):
        rows.append({"index": i, "type": "galaxy", "ra": ra, "dec": dec,
                     **{f"mag_{b.lower()}": m for b, m in zip(BANDS, mags, strict=True)},
                     "radius": reff, "ellipticity": ell, "pos_angle": pa, "sersic_index": n})
    m770 = rng.uniform(19.0, 22.0, n_stars)
    ras = ra0 + rng.uniform(-half, half, n_stars) / np.cos(np.radians(dec0))
    decs = dec0 + rng.uniform(-half, half, n_stars)
    for k in range(n_stars):
        rj = {b: m770[k] + 5 * np.log10(miri.FILTERS[b].pivot_um / miri.FILTERS["F770W"].pivot_um)
              for b in BANDS}
        rows.append({"index": len(GALAXIES) + k + 1, "type": "star", "ra": ras[k],
                     "dec": decs[k], **{f"mag_{b.lower()}": float(rj[b]) for b in BANDS},
                     "radius": 0.0, "ellipticity": 0.0, "pos_angle": 0.0,
                     "sersic_index": 1.0})
    table = Table(rows=rows)
    table.meta = {"description": "a Stephan's Quintet-like mid-infrared field "
                                 "(scripts/make_stephans_quintet_catalog.py)", "seed": SEED,
                  "galaxies": [g[0] for g in GALAXIES]}
    out = Path("catalogs/stephans_quintet.ecsv")
    table.write(out, format="ascii.ecsv", overwrite=True)
    return out


if __name__ == "__main__":
    print(main())
