"""The ``dream_like`` generator: a seeded mock field in the DREaM-style schema.

DREaM (Drakos et al. 2022, ApJ 926, 194) builds galaxies from dark-matter halos; this
generator is much simpler but draws every property from a published relation, so that the
fields it makes have realistic numbers, redshifts, sizes, shapes and colours for validating a
pipeline. It writes the schema :func:`simval.catalogs.readers.read_dream` reads (positions as
offsets about (0, 0) deg, semi-major half-light radii in kpc), so generated fields go through
the same reader as real DREaM files. All draws come from ``numpy.random.default_rng`` streams
derived from one seed (same seed and parameters -> identical table).

What is drawn, in order (constants below; ``docs/catalogs.md`` has the full list):

1. **Number of galaxies and magnitudes** in the reference band (default F150W, which stands
   in for HST F160W/H): differential counts n(m) ∝ 10^(s m), slope s = 0.40 for
   m_AB < 21.25, 0.31 for 21.25 <= m < 26.0 (Yan et al. 1998, ApJ 503, L19: slope 0.31
   fainter than H = 20, read as Vega; H_AB = H + 1.25) and 0.25 beyond 26 (the flattening of
   the faint near-IR counts, Windhorst et al. 2011, ApJS 193, 27), normalised to
   N(m_AB < 26.0) = 4e5 deg^-2 (Yan et al. 1998: 4e5 deg^-2 to H = 24.75). With these numbers
   N(<27) ~ 220 arcmin^-2, close to the ~200 arcmin^-2 of CANDELS GOODS-S to H ~ 27
   (Guo et al. 2013). The number in the area is Poisson; ``density_scale`` multiplies it.
2. **Type and redshift**: the Bayesian photometric-redshift prior of Benitez (2000, ApJ 536,
   571; the HDF-N prior of BPZ): type fractions p(T | m) and p(z | T, m) ∝ z^a
   exp(-(z / z_m)^a), z_m = z0 + k_m (m - 20), for E/S0, spiral and irregular types, with m
   the F814W magnitude. We evaluate it at each galaxy's own F814W magnitude from its model
   spectrum (a fixed-point iteration, 4 passes; the F814W - reference colour entering it is
   limited to [0, 1] mag so that Lyman-break dropouts do not run away to ever higher z),
   truncated to 0.01 <= z <= 15. E/S0 galaxies
   are "quiescent", spirals and irregulars "star-forming".
3. **Spectrum and colours**: a piecewise power-law rest-frame f_nu (UV slope beta, a 4000 A
   break of strength D, two optical/near-IR slopes, a Rayleigh-Jeans-like decline beyond
   1.6 um and, for star-forming galaxies, a crude warm-dust rise in the mid-IR), with IGM
   absorption (Madau 1995, ApJ 441, 18: Lyman-alpha forest optical depth
   0.0036 (lambda_obs / 1216 A)^3.46 and no flux below the Lyman limit). beta follows
   Bouwens et al. (2014, ApJ 793, 115) at z = 4-8 (-1.85 ... -2.13) and is redder at low z;
   D ~ 1.3 (star-forming) or 1.8 (quiescent), the two peaks of D_n(4000) in Kauffmann et al.
   (2003, MNRAS 341, 33). The optical slopes are set so that rest-frame U-V and V-J fall in
   the star-forming and quiescent regions of the UVJ diagram (Williams et al. 2009, ApJ 691,
   1879; checked in the tests). Band magnitudes average f_nu over each band (a top-hat of
   :mod:`simval.catalogs.bands`).
4. **Size**: stellar mass from the rest-frame V luminosity (from the spectrum, the
   distance of ``cosmology`` and M_V,sun = 4.80 AB) and the colour-based mass-to-light ratio
   log(M/L_V) = -0.628 + 1.305 (B-V) (Bell et al. 2003, ApJS 149, 289); then the size-mass
   relations of van der Wel et al. (2014, ApJ 788, 28): R_e = A (M*/5e10)^alpha
   ((1+z)/1.25)^beta_z kpc, late types log A = 0.86, alpha = 0.22, beta_z = -0.75; early
   types log A = 0.60, alpha = 0.75 above 2e10 Msun (0.22 below), beta_z = -1.48; log-normal
   scatter 0.18 / 0.14 dex (they find <~ 0.2). Beyond z = 3 star-forming sizes follow
   (1+z)^-1.10 (Shibuya et al. 2015, ApJS 219, 15). R_e is the semi-major half-light radius
   (van der Wel et al. fit GALFIT Sersic models, whose r_e is along the major axis).
5. **Sersic index**: log-normal, median 1.5 for star-forming galaxies (Shibuya et al. 2015)
   and 4 for quiescent ones (de Vaucouleurs), 0.15 / 0.10 dex, clipped to [0.5, 4] / [2.5, 5.5].
6. **Axis ratio**: random orientations of triaxial ellipsoids: star-forming B/A = 0.95, 0.92,
   0.84, 0.81 at z < 0.5, < 0.85, < 1.4, >= 1.4 and C/A = 0.25 (Takeuchi et al. 2015,
   ApJ 801, 2), quiescent B/A = 0.95 and C/A = 0.45 (thick oblate, Satoh et al. 2019,
   ApJ 876, 40: C/A ~ 0.4-0.5); Gaussian spreads 0.07 (B/A) and 0.05 (C/A) are our choice.
   Position angles are uniform in [0, 180) deg East of North.
7. **Stars**: ``n_stars`` (or a Poisson number from ``star_density_arcmin2``) with
   d log N / dm = ``star_slope`` (default 0.1: the nearly flat faint high-latitude counts of
   halo stars, cf. the Bahcall & Soneira 1980 model, ApJS 44, 73) in ``star_mag_range``
   (reference band), and black-body colours with T uniform in [3500, 6500] K. The default
   density (1 arcmin^-2 for AB 18-25) is an order of magnitude for |b| > 50 deg; give
   ``n_stars`` for a test field that needs bright stars, and ``star_isolation_arcsec`` to keep
   them away from galaxy centres and each other.

The model's colours in the mid-IR (MIRI) and the exact counts in bands other than the
reference band are approximate: compare them with the reference relations of
:mod:`simval.catalogs.validate` and with real data before relying on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.catalogs.bands import DEFAULT_BANDS, normalise_band, pivot_um, width_um
from simval.catalogs.cosmology import angular_diameter_distance_mpc
from simval.catalogs.readers import Field, ReadOptions, read_dream
from simval.sky import Footprint, from_tangent, to_tangent, uniform_positions

if TYPE_CHECKING:
    from astropy.table import Table

    from simval.plan import Plan

SCHEMA = "simval-dream-like/1"

# --- 1. number counts (reference band ~ H / F160W) ------------------------------------------
COUNTS_BREAKS_AB = (21.25, 26.0)
COUNTS_SLOPES = (0.40, 0.31, 0.25)
COUNTS_NORM_MAG_AB = 26.0
COUNTS_NORM_PER_DEG2 = 4.0e5
_COUNTS_GRID = np.arange(10.0, 36.0 + 1e-9, 0.001)

# --- 2. Benitez (2000) HDF-N prior: E/S0, spiral, irregular ---------------------------------
BPZ_ALPHA = (2.465, 1.806, 0.906)
BPZ_Z0 = (0.431, 0.390, 0.0626)
BPZ_KM = (0.0913, 0.0636, 0.123)
BPZ_F0 = (0.35, 0.50)       # E/S0, spiral fractions at m = 20 (BPZ: 0.35, 2 x 0.25)
BPZ_KT = (0.450, 0.147)
BPZ_MAG_RANGE = (20.0, 32.0)
Z_RANGE = (0.01, 15.0)
#: F814W - reference-band colour allowed into the prior: a Lyman-break dropout (F814W
#: faint or absent) enters at m_ref + 1, not at ever fainter F814W (which would push the
#: prior to ever higher z: the prior was calibrated on F814W-detected galaxies).
PRIOR_COLOUR_RANGE = (0.0, 1.0)

# --- 3. spectra -----------------------------------------------------------------------------
#: beta (UV slope) of star-forming galaxies vs z: Bouwens et al. 2014 at z = 4-8, redder
#: (our extrapolation) toward z = 0.
BETA_Z = (0.0, 2.0, 4.0, 5.0, 6.0, 7.0, 8.0)
BETA_SF = (-1.3, -1.6, -1.85, -1.91, -2.00, -2.05, -2.13)
BETA_SCATTER = 0.30
#: (mean, sigma) of the spectral parameters by type.
SED_PARAMS = {
    "star_forming": {"D4000": (1.30, 0.08), "slope_opt": (1.6, 0.4), "slope_nir": (0.5, 0.2)},
    "quiescent": {"D4000": (1.80, 0.08), "slope_opt": (3.0, 0.3), "slope_nir": (0.6, 0.15),
                  "beta": (0.5, 0.3)},
}
SLOPE_BEYOND_1P6UM = -1.0
DUST_AMPLITUDE_SF = 0.2       # warm dust at 5 um rest, relative to f_nu(1.6 um)
DUST_SLOPE_SF = 1.5
MADAU_TAU0, MADAU_INDEX = 0.0036, 3.46
LYA_UM, LYLIMIT_UM = 0.1216, 0.0912

# --- 4. sizes -------------------------------------------------------------------------------
M_SUN_V_AB = 4.80
BELL_V = (-0.628, 1.305)      # log(M/L_V) = a + b (B - V)
VDW_LATE = {"logA": 0.86, "alpha": 0.22, "beta_z": -0.75, "scatter": 0.18}
VDW_EARLY = {"logA": 0.60, "alpha": 0.75, "alpha_low": 0.22, "m_break": 2e10,
             "beta_z": -1.48, "scatter": 0.14}
SHIBUYA_BETA_Z = -1.10
RADIUS_KPC_LIMITS = (0.05, 30.0)

# --- 5./6. shapes ---------------------------------------------------------------------------
SERSIC = {"star_forming": (1.5, 0.15, 0.5, 4.0), "quiescent": (4.0, 0.10, 2.5, 5.5)}
TAKEUCHI_BA = ((0.5, 0.95), (0.85, 0.92), (1.4, 0.84), (np.inf, 0.81))
SF_CA = 0.25
Q_BA, Q_CA = 0.95, 0.45
BA_SPREAD, CA_SPREAD = 0.07, 0.05

# --- 7. stars -------------------------------------------------------------------------------
STAR_TEFF_K = (3500.0, 6500.0)

_SAMPLES_PER_BAND = 21


@dataclass(frozen=True)
class DreamLikeParams:
    """Parameters of the ``dream_like`` generator (see the module docstring).

    mag_limit, mag_bright : galaxy magnitude range in ``ref_band`` (AB).
    ref_band : band of the number counts and of the star magnitudes.
    density_scale : multiplies the galaxy number counts (e.g. 0 for no galaxies).
    n_stars : exact number of stars; ``None``: Poisson(star_density_arcmin2 * area).
    star_mag_range : [bright, faint] AB in ``ref_band``.
    star_density_arcmin2 : stars per arcmin^2 in ``star_mag_range`` when n_stars is None.
    star_slope : d log10 N / dm of the star counts.
    cosmology : astropy realisation used for distances (kpc <-> arcsec, luminosities).
    star_isolation_arcsec : redraw a star's position while it lies closer than this to a
        galaxy centre or another star (0: no constraint; a convenience for closure tests that
        need isolated stars, not a property of real fields).
    """

    mag_limit: float = 28.0
    mag_bright: float = 16.0
    ref_band: str = "F150W"
    density_scale: float = 1.0
    n_stars: int | None = None
    star_mag_range: tuple[float, float] = (18.0, 25.0)
    star_density_arcmin2: float = 1.0
    star_slope: float = 0.1
    cosmology: str = "Planck18"
    star_isolation_arcsec: float = 0.0

    def __post_init__(self) -> None:
        if not self.mag_bright < self.mag_limit:
            raise ValueError(f"mag_bright ({self.mag_bright}) must be brighter (smaller) than "
                             f"mag_limit ({self.mag_limit})")
        lo, hi = self.star_mag_range
        if not lo < hi:
            raise ValueError(f"star_mag_range must be [bright, faint], got {[lo, hi]}")
        if self.density_scale < 0 or self.star_density_arcmin2 < 0 or (
                self.star_isolation_arcsec < 0):
            raise ValueError("density_scale, star_density_arcmin2 and star_isolation_arcsec "
                             "must be >= 0")
        if self.n_stars is not None and self.n_stars < 0:
            raise ValueError("n_stars must be >= 0")
        normalise_band(self.ref_band)


# --- number counts --------------------------------------------------------------------------

def _log_counts_shape(m: np.ndarray) -> np.ndarray:
    """log10 n(m) up to a constant: continuous broken power law."""
    b1, b2 = COUNTS_BREAKS_AB
    s1, s2, s3 = COUNTS_SLOPES
    m = np.asarray(m, dtype=float)
    out = s1 * (np.minimum(m, b1) - b1)
    out += s2 * (np.clip(m, b1, b2) - b1)
    out += s3 * (np.maximum(m, b2) - b2)
    return out


def _counts_normalisation() -> float:
    grid = _COUNTS_GRID
    shape = 10.0 ** _log_counts_shape(grid)
    below = grid <= COUNTS_NORM_MAG_AB
    integral = np.trapezoid(shape[below], grid[below])
    return COUNTS_NORM_PER_DEG2 / integral


_COUNTS_A = _counts_normalisation()


def differential_counts(mag_ab) -> np.ndarray:
    """Galaxies per deg^2 per magnitude in the reference band at ``mag_ab``."""
    return _COUNTS_A * 10.0 ** _log_counts_shape(mag_ab)


def cumulative_counts(mag_bright: float, mag_faint: float) -> float:
    """Galaxies per deg^2 with mag_bright <= m < mag_faint (reference band)."""
    grid = np.linspace(mag_bright, mag_faint, 4001)
    return float(np.trapezoid(differential_counts(grid), grid))


def draw_counts_magnitudes(n: int, mag_bright: float, mag_faint: float,
                           rng: np.random.Generator) -> np.ndarray:
    """``n`` magnitudes distributed as the differential counts in [bright, faint)."""
    grid = np.linspace(mag_bright, mag_faint, 20001)
    pdf = differential_counts(grid)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    return np.interp(rng.uniform(0.0, 1.0, n), cdf, grid)


# --- redshift prior -------------------------------------------------------------------------

def bpz_type_fractions(mag_f814w) -> np.ndarray:
    """(N, 3) probabilities of E/S0, spiral, irregular at F814W magnitude (Benitez 2000)."""
    dm = np.clip(np.asarray(mag_f814w, float), *BPZ_MAG_RANGE) - 20.0
    f_e = BPZ_F0[0] * np.exp(-BPZ_KT[0] * dm)
    f_s = BPZ_F0[1] * np.exp(-BPZ_KT[1] * dm)
    return np.stack([f_e, f_s, np.clip(1.0 - f_e - f_s, 0.0, 1.0)], axis=-1)


def bpz_redshift(u: np.ndarray, type_index: np.ndarray, mag_f814w: np.ndarray,
                 z_max: float = Z_RANGE[1]) -> np.ndarray:
    """Inverse CDF of p(z | T, m) ∝ z^a exp(-(z/z_m)^a), truncated to [Z_RANGE[0], z_max].

    With x = (z/z_m)^a the density of x is Gamma(1 + 1/a), so z = z_m x^(1/a).
    """
    from scipy.special import gammainc, gammaincinv

    a = np.asarray(BPZ_ALPHA)[type_index]
    dm = np.clip(np.asarray(mag_f814w, float), *BPZ_MAG_RANGE) - 20.0
    zm = np.asarray(BPZ_Z0)[type_index] + np.asarray(BPZ_KM)[type_index] * dm
    k = 1.0 + 1.0 / a
    lo = gammainc(k, (Z_RANGE[0] / zm) ** a)
    hi = gammainc(k, (z_max / zm) ** a)
    x = gammaincinv(k, lo + np.asarray(u) * (hi - lo))
    return np.clip(zm * x ** (1.0 / a), Z_RANGE[0], z_max)


def max_redshift(ref_band: str) -> float:
    """Highest redshift of a galaxy drawn from ``ref_band``'s counts: Lyman alpha at the
    band's pivot wavelength. Beyond it the band sees mostly the IGM-absorbed side of the
    break; normalising such a dropout to a reference-band magnitude from the counts made its
    redder bands absurdly bright (a z = 13.2 galaxy of F150W 27.2 came out F277W 9.4, with a
    5.6" radius from its implied mass). F150W: z <= 11.3; F115W: 8.4; F444W: Z_RANGE."""
    return float(min(Z_RANGE[1], pivot_um(ref_band) / LYA_UM - 1.0))


# --- spectra --------------------------------------------------------------------------------

@dataclass
class SedParams:
    """Per-galaxy parameters of the rest-frame f_nu model (arrays of length N)."""

    quiescent: np.ndarray
    beta: np.ndarray
    d4000: np.ndarray
    slope_opt: np.ndarray
    slope_nir: np.ndarray

    def take(self, idx) -> SedParams:
        return SedParams(*(getattr(self, f)[idx] for f in
                           ("quiescent", "beta", "d4000", "slope_opt", "slope_nir")))


def draw_sed_params(quiescent: np.ndarray, z: np.ndarray, rng: np.random.Generator
                    ) -> SedParams:
    """Spectral parameters by type; the UV slope of star-forming galaxies depends on z."""
    n = len(quiescent)
    q = np.asarray(quiescent, dtype=bool)
    sf, qu = SED_PARAMS["star_forming"], SED_PARAMS["quiescent"]
    normal = rng.normal(size=(4, n))
    beta = np.where(q, qu["beta"][0] + qu["beta"][1] * normal[0],
                    np.interp(z, BETA_Z, BETA_SF) + BETA_SCATTER * normal[0])
    d4000 = np.where(q, qu["D4000"][0] + qu["D4000"][1] * normal[1],
                     sf["D4000"][0] + sf["D4000"][1] * normal[1])
    s_opt = np.where(q, qu["slope_opt"][0] + qu["slope_opt"][1] * normal[2],
                     sf["slope_opt"][0] + sf["slope_opt"][1] * normal[2])
    s_nir = np.where(q, qu["slope_nir"][0] + qu["slope_nir"][1] * normal[3],
                     sf["slope_nir"][0] + sf["slope_nir"][1] * normal[3])
    return SedParams(q, beta, np.clip(d4000, 1.0, None), s_opt, s_nir)


def rest_fnu(lam_um: np.ndarray, p: SedParams) -> np.ndarray:
    """Rest-frame f_nu (arbitrary units, 1 just blueward of 4000 A) at ``lam_um`` of shape
    (N, K) for the N galaxies of ``p``."""
    lam = np.asarray(lam_um, dtype=float)
    def col(v):
        return np.asarray(v, dtype=float)[:, None]

    beta, d, s_opt, s_nir = col(p.beta), col(p.d4000), col(p.slope_opt), col(p.slope_nir)
    f_07 = d * (0.7 / 0.4) ** s_opt
    f_16 = f_07 * (1.6 / 0.7) ** s_nir
    f = np.where(lam < 0.4, (lam / 0.4) ** (beta + 2.0), d * (lam / 0.4) ** s_opt)
    f = np.where(lam >= 0.7, f_07 * (lam / 0.7) ** s_nir, f)
    f = np.where(lam >= 1.6, f_16 * (lam / 1.6) ** SLOPE_BEYOND_1P6UM, f)
    dust = DUST_AMPLITUDE_SF * f_16 * (lam / 5.0) ** DUST_SLOPE_SF
    f = np.where((lam >= 2.0) & ~col(p.quiescent).astype(bool), f + dust, f)
    return np.where(lam < LYLIMIT_UM, 0.0, f)


def igm_transmission(lam_obs_um: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Madau (1995) mean IGM transmission: Lyman-alpha forest between the Lyman limit and
    Lyman alpha, nothing below the Lyman limit (lam_obs shape (N, K), z shape (N,))."""
    zz = np.asarray(z, dtype=float)[:, None]
    lam = np.asarray(lam_obs_um, dtype=float)
    tau = MADAU_TAU0 * (lam / LYA_UM) ** MADAU_INDEX
    t = np.where(lam < LYA_UM * (1.0 + zz), np.exp(-tau), 1.0)
    return np.where(lam < LYLIMIT_UM * (1.0 + zz), 0.0, t)


def _band_grid(band: str) -> np.ndarray:
    c, w = pivot_um(band), width_um(band)
    return np.linspace(c - w / 2.0, c + w / 2.0, _SAMPLES_PER_BAND)


def band_fluxes(p: SedParams, z: np.ndarray, bands: Sequence[str]) -> dict[str, np.ndarray]:
    """Mean observed f_nu (model units) over each band (top-hat) for galaxies at ``z``."""
    out = {}
    zz = np.asarray(z, dtype=float)
    for band in bands:
        lam_obs = np.broadcast_to(_band_grid(band), (len(zz), _SAMPLES_PER_BAND))
        f = rest_fnu(lam_obs / (1.0 + zz[:, None]), p) * igm_transmission(lam_obs, zz)
        out[band] = f.mean(axis=1)
    return out


def rest_colour(p: SedParams, lam1_um: float, lam2_um: float) -> np.ndarray:
    """Rest-frame AB colour m(lam1) - m(lam2) of the model spectra (monochromatic)."""
    lam = np.array([[lam1_um, lam2_um]])
    f = rest_fnu(np.broadcast_to(lam, (len(p.beta), 2)), p)
    return -2.5 * np.log10(f[:, 0] / f[:, 1])


def _mags_from_fluxes(fluxes: dict[str, np.ndarray], ref: np.ndarray, ref_mag: np.ndarray
                      ) -> dict[str, np.ndarray]:
    out = {}
    for band, f in fluxes.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            m = ref_mag - 2.5 * np.log10(f / ref)
        m[~np.isfinite(m) | (m > 45.0)] = np.nan   # no flux (e.g. below the Lyman break)
        out[band] = m
    return out


# --- distances ------------------------------------------------------------------------------

def distance_modulus(z, cosmology: str) -> np.ndarray:
    """5 log10(D_L / 10 pc), D_L = D_A (1 + z)^2."""

    z = np.asarray(z, dtype=float)
    dl_pc = angular_diameter_distance_mpc(z, cosmology) * (1.0 + z) ** 2 * 1e6
    return 5.0 * np.log10(dl_pc / 10.0)


# --- sizes and shapes -----------------------------------------------------------------------

def stellar_mass(mag_ref: np.ndarray, ref_flux: np.ndarray, p: SedParams, z: np.ndarray,
                 cosmology: str) -> np.ndarray:
    """M* (Msun) from the rest-frame V luminosity and the Bell et al. (2003) M/L_V(B-V)."""
    lam_v_obs = 0.55 * (1.0 + np.asarray(z))
    f_v = rest_fnu(np.full((len(z), 1), 0.55), p)[:, 0] * igm_transmission(
        lam_v_obs[:, None], z)[:, 0]
    m_v_obs = mag_ref - 2.5 * np.log10(f_v / ref_flux)
    abs_v = m_v_obs - distance_modulus(z, cosmology) + 2.5 * np.log10(1.0 + np.asarray(z))
    b_minus_v = rest_colour(p, 0.44, 0.55)
    log_ml = BELL_V[0] + BELL_V[1] * b_minus_v
    return 10.0 ** (log_ml - 0.4 * (abs_v - M_SUN_V_AB))


def size_kpc(mstar: np.ndarray, z: np.ndarray, quiescent: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """Semi-major half-light radius, kpc (van der Wel et al. 2014; Shibuya et al. 2015)."""
    z = np.asarray(z, dtype=float)
    q = np.asarray(quiescent, dtype=bool)
    x = np.log10(np.asarray(mstar, dtype=float) / 5e10)
    late = VDW_LATE["logA"] + VDW_LATE["alpha"] * x
    zf = np.log10(np.minimum(1.0 + z, 4.0) / 1.25)
    late += VDW_LATE["beta_z"] * zf + SHIBUYA_BETA_Z * np.log10(np.maximum(1.0 + z, 4.0) / 4.0)
    xb = math.log10(VDW_EARLY["m_break"] / 5e10)
    early = (VDW_EARLY["logA"] + VDW_EARLY["alpha"] * np.maximum(x, xb)
             + VDW_EARLY["alpha_low"] * np.minimum(x - xb, 0.0)
             + VDW_EARLY["beta_z"] * np.log10((1.0 + z) / 1.25))
    scatter = np.where(q, VDW_EARLY["scatter"], VDW_LATE["scatter"])
    log_r = np.where(q, early, late) + scatter * rng.normal(size=len(z))
    return np.clip(10.0 ** log_r, *RADIUS_KPC_LIMITS)


def sersic_indices(quiescent: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    q = np.asarray(quiescent, dtype=bool)
    out = np.empty(len(q))
    for flag, key in ((False, "star_forming"), (True, "quiescent")):
        med, sig, lo, hi = SERSIC[key]
        sel = q == flag
        out[sel] = np.clip(10.0 ** (math.log10(med) + sig * rng.normal(size=int(sel.sum()))),
                           lo, hi)
    return out


def _random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3, 3) rotation matrices uniform on SO(3) (unit quaternions)."""
    qv = rng.normal(size=(n, 4))
    qv /= np.linalg.norm(qv, axis=1, keepdims=True)
    w, x, y, z = qv.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], axis=1)


def projected_axis_ratio(ba: np.ndarray, ca: np.ndarray, rng: np.random.Generator
                         ) -> np.ndarray:
    """Axis ratio b/a of randomly oriented ellipsoids with axes 1 >= ba >= ca.

    The ellipsoid x^T M x = 1 projects along the line of sight onto the ellipse given by the
    Schur complement of M's line-of-sight element; b/a = sqrt(lambda_min / lambda_max).
    """
    n = len(ba)
    rot = _random_rotations(n, rng)
    inv2 = np.stack([np.ones(n), 1.0 / ba ** 2, 1.0 / ca ** 2], axis=-1)
    m = np.einsum("nij,nj,nkj->nik", rot, inv2, rot)
    s = m[:, :2, :2] - np.einsum("ni,nj->nij", m[:, :2, 2], m[:, 2, :2]) / m[:, 2, 2][:, None,
                                                                                      None]
    ev = np.linalg.eigvalsh(s)
    return np.sqrt(ev[:, 0] / ev[:, 1])


def axis_ratios(quiescent: np.ndarray, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    q = np.asarray(quiescent, dtype=bool)
    z = np.asarray(z, dtype=float)
    edges = np.array([e for e, _ in TAKEUCHI_BA])
    ba_sf = np.array([v for _, v in TAKEUCHI_BA])[np.searchsorted(edges, z, side="right")
                                                   .clip(0, len(edges) - 1)]
    ba = np.where(q, Q_BA, ba_sf) + BA_SPREAD * rng.normal(size=len(z))
    ca = np.where(q, Q_CA, SF_CA) + CA_SPREAD * rng.normal(size=len(z))
    ca = np.clip(ca, 0.08, 0.95)
    ba = np.clip(ba, ca + 0.02, 1.0)
    return np.clip(projected_axis_ratio(ba, ca, rng), 0.05, 1.0)


# --- stars ----------------------------------------------------------------------------------

def _planck_fnu(lam_um: np.ndarray, teff: np.ndarray) -> np.ndarray:
    hc_k = 14387.77  # um K
    lam = np.asarray(lam_um, dtype=float)
    t = np.asarray(teff, dtype=float)[:, None]
    return lam ** -3 / np.expm1(hc_k / (lam * t))


def star_magnitudes(n: int, params: DreamLikeParams, bands: Sequence[str],
                    rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Star magnitudes (ref band from the counts slope, others from black-body colours)."""
    lo, hi = params.star_mag_range
    s = params.star_slope
    u = rng.uniform(size=n)
    if abs(s) < 1e-9:
        m_ref = lo + u * (hi - lo)
    else:
        a, b = 10.0 ** (s * lo), 10.0 ** (s * hi)
        m_ref = np.log10(a + u * (b - a)) / s
    teff = rng.uniform(*STAR_TEFF_K, size=n)
    ref = params.ref_band
    f_ref = _planck_fnu(np.broadcast_to(_band_grid(ref), (n, _SAMPLES_PER_BAND)),
                        teff).mean(axis=1)
    mags = {}
    for band in bands:
        f = _planck_fnu(np.broadcast_to(_band_grid(band), (n, _SAMPLES_PER_BAND)),
                        teff).mean(axis=1)
        mags[band] = m_ref - 2.5 * np.log10(f / f_ref)
    return mags, teff


# --- galaxies -------------------------------------------------------------------------------

@dataclass
class GalaxyDraw:
    """Everything drawn for N galaxies (before positions)."""

    mags: dict[str, np.ndarray]
    z: np.ndarray
    quiescent: np.ndarray
    radius_kpc: np.ndarray
    sersic: np.ndarray
    axis_ratio: np.ndarray
    pos_angle: np.ndarray
    mstar: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


def draw_galaxies(n: int, params: DreamLikeParams, bands: Sequence[str],
                  rng: np.random.Generator) -> GalaxyDraw:
    """Draw ``n`` galaxies' magnitudes, redshifts, types, sizes and shapes."""
    ref = normalise_band(params.ref_band)
    m_ref = draw_counts_magnitudes(n, params.mag_bright, params.mag_limit, rng)
    u_type, u_z = rng.uniform(size=n), rng.uniform(size=n)
    sed_seed = int(rng.integers(2**63))
    m_i = m_ref + 0.5
    z_max = max_redshift(ref)
    for _ in range(4):
        frac = bpz_type_fractions(m_i)
        t = np.minimum((u_type[:, None] > np.cumsum(frac, axis=1)).sum(axis=1), 2)
        z = bpz_redshift(u_z, t, m_i, z_max)
        p = draw_sed_params(t == 0, z, np.random.default_rng(sed_seed))
        fl = band_fluxes(p, z, [ref, "F814W"])
        with np.errstate(divide="ignore"):
            colour = -2.5 * np.log10(fl["F814W"] / fl[ref])
        m_i = m_ref + np.clip(np.nan_to_num(colour, nan=PRIOR_COLOUR_RANGE[1]),
                              *PRIOR_COLOUR_RANGE)
    quiescent = t == 0
    all_bands = list(dict.fromkeys([ref, *bands]))
    fluxes = band_fluxes(p, z, all_bands)
    mags = _mags_from_fluxes({b: fluxes[b] for b in bands}, fluxes[ref], m_ref)
    mstar = stellar_mass(m_ref, fluxes[ref], p, z, params.cosmology)
    radius = size_kpc(mstar, z, quiescent, rng)
    sersic = sersic_indices(quiescent, rng)
    q = axis_ratios(quiescent, z, rng)
    pa = rng.uniform(0.0, 180.0, n)
    return GalaxyDraw(mags, z, quiescent, radius, sersic, q, pa, mstar,
                      {"mag_ref": m_ref, "mag_f814w": m_i, "type_index": t})


# --- the generator --------------------------------------------------------------------------

Sampler = Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def box_sampler(x_range: tuple[float, float], y_range: tuple[float, float]) -> Sampler:
    """Uniform (x, y) arcsec in a box of the tangent plane."""
    def sample(n: int, rng: np.random.Generator):
        return rng.uniform(*x_range, n), rng.uniform(*y_range, n)
    return sample


def _offsets(x_arcsec: np.ndarray, y_arcsec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ra, dec = from_tangent(x_arcsec, y_arcsec, 0.0, 0.0)
    return np.where(ra > 180.0, ra - 360.0, ra), dec


def generate_dream_like(*, area_arcmin2: float, sampler: Sampler, seed: int,
                        params: DreamLikeParams | None = None,
                        bands: Sequence[str] | None = None) -> Table:
    """A DREaM-schema table of galaxies and stars over an area of the tangent plane about
    (0, 0) deg.

    Parameters
    ----------
    area_arcmin2 : area the sampler covers (sets the expected numbers).
    sampler : ``(n, rng) -> (x, y)`` tangent-plane positions, arcsec (:func:`box_sampler`).
    seed : seed of every draw.
    params : :class:`DreamLikeParams` (default parameters if None).
    bands : magnitude columns to write (default :data:`DEFAULT_BANDS`).

    Returns
    -------
    astropy Table: ``ID``, ``RA``, ``DEC`` (deg offsets about (0, 0)), ``type``
    ('galaxy'/'star'), ``population`` ('star_forming'/'quiescent'/'star'), ``redshift``,
    ``Re_maj`` (kpc, semi-major half-light radius), ``axis_ratio``, ``sersic_n``, ``PA``
    (deg East of North), ``log_mstar`` and one AB magnitude column per band (NaN where the
    model has no flux, e.g. below the Lyman break); star rows have NaN shapes and z = 0.
    """
    from astropy.table import Table

    params = params or DreamLikeParams()
    bands = [normalise_band(b) for b in (bands or DEFAULT_BANDS)]
    area_deg2 = area_arcmin2 / 3600.0
    rng_n = np.random.default_rng([int(seed), 1])
    mean_gal = params.density_scale * cumulative_counts(params.mag_bright,
                                                        params.mag_limit) * area_deg2
    n_gal = int(rng_n.poisson(mean_gal))
    n_star = (int(params.n_stars) if params.n_stars is not None
              else int(rng_n.poisson(params.star_density_arcmin2 * area_arcmin2)))
    gal = draw_galaxies(n_gal, params, bands, np.random.default_rng([int(seed), 2]))
    gx, gy = sampler(n_gal, np.random.default_rng([int(seed), 3]))
    rng_s = np.random.default_rng([int(seed), 4])
    smags, teff = star_magnitudes(n_star, params, bands, rng_s)
    sx, sy = sampler(n_star, np.random.default_rng([int(seed), 5]))
    if params.star_isolation_arcsec > 0 and n_star:
        sx, sy = _isolate(sx, sy, gx, gy, params.star_isolation_arcsec, sampler,
                          np.random.default_rng([int(seed), 6]))

    ra_g, dec_g = _offsets(gx, gy)
    ra_s, dec_s = _offsets(sx, sy)
    nan_s = np.full(n_star, np.nan)
    t = Table()
    t["ID"] = np.arange(1, n_gal + n_star + 1, dtype=np.int64)
    t["RA"] = np.concatenate([ra_g, ra_s])
    t["DEC"] = np.concatenate([dec_g, dec_s])
    t["type"] = np.array(["galaxy"] * n_gal + ["star"] * n_star, dtype="U6")
    t["population"] = np.array(
        [("quiescent" if qq else "star_forming") for qq in gal.quiescent] + ["star"] * n_star,
        dtype="U12")
    t["redshift"] = np.concatenate([gal.z, np.zeros(n_star)])
    t["Re_maj"] = np.concatenate([gal.radius_kpc, nan_s])
    t["axis_ratio"] = np.concatenate([gal.axis_ratio, nan_s])
    t["sersic_n"] = np.concatenate([gal.sersic, nan_s])
    t["PA"] = np.concatenate([gal.pos_angle, nan_s])
    t["log_mstar"] = np.concatenate([np.log10(gal.mstar), nan_s])
    t["teff"] = np.concatenate([np.full(n_gal, np.nan), teff])
    for b in bands:
        t[b] = np.concatenate([gal.mags[b], smags[b]])
        t[b].unit = "mag(AB)"
        t[b].description = f"AB magnitude in {b}"
    units = {"RA": "deg", "DEC": "deg", "Re_maj": "kpc", "PA": "deg", "teff": "K"}
    for name, unit in units.items():
        t[name].unit = unit
    t["RA"].description = "RA offset about (0, 0) deg (DREaM convention)"
    t["DEC"].description = "Dec offset about (0, 0) deg (DREaM convention)"
    t["Re_maj"].description = "half-light radius along the major axis, kpc"
    t["PA"].description = "major-axis position angle, deg East of North"
    t.meta.update({
        "schema": SCHEMA, "generator": "dream_like", "seed": int(seed),
        "area_arcmin2": float(area_arcmin2), "positions": "offsets about (0, 0) deg",
        "params": {k: (list(v) if isinstance(v, tuple) else v)
                   for k, v in asdict(params).items()},
        "bands": bands, "n_galaxies": n_gal, "n_stars": n_star,
        "citations": CITATIONS,
    })
    return t


def _isolate(sx, sy, gx, gy, distance: float, sampler: Sampler, rng: np.random.Generator,
             max_rounds: int = 200):
    """Redraw stars closer than ``distance`` to a galaxy or an earlier star."""
    from scipy.spatial import cKDTree

    sx, sy = np.array(sx, dtype=float), np.array(sy, dtype=float)
    gal_tree = cKDTree(np.column_stack([gx, gy])) if len(gx) else None
    for _ in range(max_rounds):
        bad = np.zeros(len(sx), dtype=bool)
        if gal_tree is not None:
            d, _ = gal_tree.query(np.column_stack([sx, sy]), k=1)
            bad |= d < distance
        pairs = cKDTree(np.column_stack([sx, sy])).query_pairs(distance, output_type="ndarray")
        if len(pairs):
            bad[np.maximum(pairs[:, 0], pairs[:, 1])] = True
        if not bad.any():
            return sx, sy
        nx, ny = sampler(int(bad.sum()), rng)
        sx[bad], sy[bad] = nx, ny
    raise ValueError(f"could not place the stars {distance} arcsec from every other source "
                     f"in {max_rounds} rounds: lower star_isolation_arcsec or n_stars")


def generate_box(width_arcsec: float, height_arcsec: float, *, seed: int,
                 params: DreamLikeParams | None = None,
                 bands: Sequence[str] | None = None) -> Table:
    """:func:`generate_dream_like` over a width x height box centred on (0, 0)."""
    if width_arcsec <= 0 or height_arcsec <= 0:
        raise ValueError("width and height must be > 0 arcsec")
    w, h = width_arcsec / 2.0, height_arcsec / 2.0
    table = generate_dream_like(area_arcmin2=width_arcsec * height_arcsec / 3600.0,
                                sampler=box_sampler((-w, w), (-h, h)), seed=seed,
                                params=params, bands=bands)
    table.meta["box_arcsec"] = [float(width_arcsec), float(height_arcsec)]
    return table


def generate_for_plan(plan: Plan, *, seed: int, params: DreamLikeParams | None = None,
                      bands: Sequence[str] | None = None, margin_arcsec: float = 2.0):
    """A :class:`~simval.catalogs.SourceCatalog` over ``plan``'s footprint: the DREaM-schema
    table is drawn over the footprint (offsets about (0, 0) that the DREaM reader moves onto
    the plan's centre) and read back with :func:`simval.catalogs.readers.read_dream`."""

    params = params or DreamLikeParams()
    bands = list(bands) if bands is not None else [p.filter_name for p in plan.products]
    footprint = Footprint.of_plan(plan, margin_arcsec)

    def sampler(n, rng):
        ra, dec = uniform_positions(footprint, n, rng)
        return to_tangent(ra, dec, plan.ra_deg, plan.dec_deg)

    area = footprint.area_arcsec2() / 3600.0
    table = generate_dream_like(area_arcmin2=area, sampler=sampler, seed=seed, params=params,
                                bands=bands)
    cat = read_dream(table, bands, field_=Field.of_plan(plan, margin_arcsec),
                     options=ReadOptions(cosmology=params.cosmology,
                                         margin_arcsec=margin_arcsec))
    cat.meta.update({"generator": "dream_like", "seed": int(seed),
                     "footprint_area_arcmin2": round(area, 5), "area_arcmin2": area,
                     "mag_limit": params.mag_limit, "params": table.meta["params"]})
    cat.meta.pop("file", None)
    return cat


CITATIONS = [
    "Drakos et al. 2022, ApJ 926, 194 (DREaM: the schema this generator writes)",
    "Yan et al. 1998, ApJ 503, L19 (H-band counts: slope 0.31, N(H<=24.75) = 4e5 deg^-2)",
    "Windhorst et al. 2011, ApJS 193, 27 (flattening of faint near-IR counts)",
    "Guo et al. 2013, ApJS 207, 24 (CANDELS GOODS-S source density, a check)",
    "Benitez 2000, ApJ 536, 571 (redshift/type prior p(z, T | m), HDF-N parameters)",
    "Madau 1995, ApJ 441, 18 (IGM transmission)",
    "Bouwens et al. 2014, ApJ 793, 115 (UV slopes beta at z = 4-8)",
    "Kauffmann et al. 2003, MNRAS 341, 33 (D4000 of star-forming and quiescent galaxies)",
    "Williams et al. 2009, ApJ 691, 1879 (UVJ regions used to set the optical slopes)",
    "Bell et al. 2003, ApJS 149, 289 (M/L_V vs B-V)",
    "van der Wel et al. 2014, ApJ 788, 28 (size-mass relations and their evolution)",
    "Shibuya et al. 2015, ApJS 219, 15 (size evolution beyond z = 3, Sersic n ~ 1.5)",
    "Takeuchi et al. 2015, ApJ 801, 2 (intrinsic shapes of star-forming galaxies)",
    "Satoh et al. 2019, ApJ 876, 40 (intrinsic thickness of quiescent galaxies)",
    "Bahcall & Soneira 1980, ApJS 44, 73 (Galactic star counts, high latitude)",
]


#: Decimal places kept by :func:`round_for_storage` (DREaM schema) and
#: :func:`round_generic_for_storage`: positions to 1e-9 / 1e-8 deg (< 0.04 mas), magnitudes to
#: 1e-4 mag, sizes to 1e-4 kpc / 1e-5 arcsec: far below anything a simulation resolves.
_STORAGE_DECIMALS = {"RA": 9, "DEC": 9, "redshift": 4, "Re_maj": 4, "axis_ratio": 4,
                     "sersic_n": 3, "PA": 2, "log_mstar": 3, "teff": 0}
_GENERIC_DECIMALS = {"ra": 8, "dec": 8, "radius": 5, "ellipticity": 4, "axis_ratio": 4,
                     "pos_angle": 2, "sersic_index": 3, "redshift": 4}


def round_for_storage(table: Table) -> Table:
    """A copy of a DREaM-schema table rounded for small files (see _STORAGE_DECIMALS)."""
    out = table.copy()
    for name in out.colnames:
        if name in _STORAGE_DECIMALS:
            out[name] = np.round(np.asarray(out[name], dtype=float), _STORAGE_DECIMALS[name])
        elif out[name].dtype.kind == "f":
            out[name] = np.round(np.asarray(out[name], dtype=float), 4)
        if name in table.colnames and table[name].unit is not None:
            out[name].unit = table[name].unit
    return out


def round_generic_for_storage(table: Table) -> None:
    """Round a SourceCatalog table (stars or galaxies) in place for small files; the axis
    ratio is rounded first and the ellipticity derived from it, so 1 - e == q exactly."""
    for name in list(table.colnames):
        unit = table[name].unit
        if name in _GENERIC_DECIMALS:
            table[name] = np.round(np.asarray(table[name], dtype=float),
                                   _GENERIC_DECIMALS[name])
        elif name.startswith("mag_"):
            table[name] = np.round(np.asarray(table[name], dtype=float), 4)
        table[name].unit = unit
    if "axis_ratio" in table.colnames:
        table["ellipticity"] = np.round(1.0 - np.asarray(table["axis_ratio"], dtype=float), 6)
