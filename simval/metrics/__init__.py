"""Truth-vs-measurement metrics: small pure functions, one module per family.

Families (each function returns a small frozen dataclass with the value(s), uncertainty
where meaningful, sample size, and ``measurements()`` -> registry-named
:class:`~simval.metrics_schema.Measurement` s for ``metrics.json``):

* :mod:`~simval.metrics.completeness` — completeness vs true magnitude with binomial
  intervals, 50%/90% completeness magnitudes, completeness above S/N, purity;
* :mod:`~simval.metrics.photometry` — bias (median measured - true, mag) and NMAD, per
  sample (stars / galaxies / bright isolated stars) and per magnitude bin;
* :mod:`~simval.metrics.astrometry` — median RA*cos(Dec), Dec offsets and RMS, mas;
* :mod:`~simval.metrics.background` — mosaic residual sky, skymatch levels vs injected;
* :mod:`~simval.metrics.galaxy_photometry` — photometry like for like: the pipeline's
  segmentation footprints and apertures measured on the noiseless truth mosaic
  (calibration only), the catalog's sky term and the isophotal-versus-total loss;
* :mod:`~simval.metrics.noise` — (sky pixel / ERR) distribution, random-aperture depth;
* :mod:`~simval.metrics.sensitivity` — the 10-sigma point-source limit as the NIRCam
  sensitivity tables define it;
* :mod:`~simval.metrics.aperture_noise` — random sky apertures against the ERR propagated
  with drizzle's pixel covariance (Casertano et al. 2000);
* :mod:`~simval.metrics.mosaic` — holes, black lines, seams;
* :mod:`~simval.metrics.mosaic_defects` — each hole located and explained (no coverage,
  DO_NOT_USE in every input, NaN from resample);
* :mod:`~simval.metrics.breakdown` — photometric, astrometric and sky offsets per
  detector and per visit;
* :mod:`~simval.metrics.striping` — row- and column-correlated residuals (1/f noise) in
  the cal files;
* :mod:`~simval.metrics.jumps` — the fraction of science pixels ``jump`` flagged;
* :mod:`~simval.metrics.poisson_gain` — the gain behind ramp_fit's Poisson variance against
  the simulator's;
* :mod:`~simval.metrics.outliers` — outlier_detection's flags in bright-star cores;
* :mod:`~simval.metrics.alignment` — each exposure's final WCS against the truth (tweakreg);
* :mod:`~simval.metrics.smearing` — bright stars' FWHM and encircled energy in the mosaic
  against the truth mosaic.

:func:`catalog_metrics` runs every catalog family of one filter; the mosaic families are
run by :func:`simval.evaluate.mosaic_measurements`, group by group as the registry
(:data:`simval.metrics_schema.REGISTRY`) declares them. See docs/metrics.md for every
definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from simval.match import MatchResult, column, radec_of
from simval.metrics.alignment import AlignmentResult, alignment_residuals
from simval.metrics.aperture_noise import (
    ApertureNoise,
    DrizzleCorrelation,
    aperture_noise,
    casertano_r,
    drizzle_correlation,
)
from simval.metrics.astrometry import AstrometryResult, astrometric_offsets
from simval.metrics.background import (
    BackgroundResidual,
    SkymatchComparison,
    background_residual,
    expected_mosaic_level,
    skymatch_comparison,
    source_mask,
)
from simval.metrics.breakdown import (
    Breakdown,
    GroupStats,
    frame_pixel_masks,
    group_breakdown,
    source_coverage,
)
from simval.metrics.completeness import (
    CompletenessCurve,
    FractionResult,
    PurityCurve,
    completeness_above_snr,
    completeness_curve,
    estimate_truth_snr,
    magnitude_at_completeness,
    purity_curve,
)
from simval.metrics.galaxy_photometry import (
    CatalogAperture,
    FootprintPhotometry,
    FootprintSources,
    catalog_aperture,
    footprint_photometry,
    footprint_sources,
    segment_interior,
)
from simval.metrics.jumps import JumpFlags, jump_flags
from simval.metrics.mosaic import (
    HoleStats,
    SeamResult,
    footprint_from_polygons,
    footprint_from_weight,
    hole_mask,
    hole_statistics,
    masks_from_context,
    masks_from_polygons,
    seam_steps,
)
from simval.metrics.mosaic_defects import Defect, DefectReport, explain_holes, frame_outline
from simval.metrics.noise import DepthResult, ErrRatio, error_ratio, random_aperture_depth
from simval.metrics.outliers import OutlierFlags, outlier_flags
from simval.metrics.photometry import (
    PhotometryResult,
    delta_mag,
    nmad,
    photometric_bias,
    select_bright_isolated_stars,
)
from simval.metrics.poisson_gain import PoissonGain, implied_gain, poisson_gain
from simval.metrics.sensitivity import (
    SensitivityLimit,
    aperture_radius_arcsec,
    encircled_energy,
    sensitivity_limit,
)
from simval.metrics.smearing import SmearResult, psf_smearing
from simval.metrics.striping import (
    MosaicStripes,
    StripeResult,
    Striping,
    mosaic_stripes,
    stripe_amplitudes,
    striping_measurements,
)
from simval.metrics_schema import Measurement

__all__ = [
    "AlignmentResult",
    "ApertureNoise",
    "AstrometryResult",
    "BackgroundResidual",
    "Breakdown",
    "CatalogAperture",
    "CatalogMetrics",
    "CompletenessCurve",
    "Defect",
    "DefectReport",
    "DepthResult",
    "DrizzleCorrelation",
    "ErrRatio",
    "FootprintPhotometry",
    "FootprintSources",
    "FractionResult",
    "GroupStats",
    "HoleStats",
    "JumpFlags",
    "MosaicStripes",
    "OutlierFlags",
    "PhotometryResult",
    "PoissonGain",
    "PurityCurve",
    "SeamResult",
    "SensitivityLimit",
    "SkymatchComparison",
    "SmearResult",
    "StripeResult",
    "Striping",
    "alignment_residuals",
    "aperture_noise",
    "aperture_radius_arcsec",
    "astrometric_offsets",
    "background_residual",
    "casertano_r",
    "catalog_aperture",
    "catalog_metrics",
    "completeness_above_snr",
    "completeness_curve",
    "delta_mag",
    "drizzle_correlation",
    "encircled_energy",
    "error_ratio",
    "estimate_truth_snr",
    "expected_mosaic_level",
    "explain_holes",
    "footprint_from_polygons",
    "footprint_from_weight",
    "footprint_photometry",
    "footprint_sources",
    "frame_outline",
    "frame_pixel_masks",
    "group_breakdown",
    "hole_mask",
    "hole_statistics",
    "implied_gain",
    "jump_flags",
    "magnitude_at_completeness",
    "masks_from_context",
    "masks_from_polygons",
    "mosaic_stripes",
    "nmad",
    "outlier_flags",
    "photometric_bias",
    "poisson_gain",
    "psf_smearing",
    "purity_curve",
    "random_aperture_depth",
    "seam_steps",
    "segment_interior",
    "select_bright_isolated_stars",
    "sensitivity_limit",
    "skymatch_comparison",
    "source_coverage",
    "source_mask",
    "stripe_amplitudes",
    "striping_measurements",
]

#: Measured magnitude column per truth type.
MAG_COLUMN = {"star": "aper_total_abmag", "galaxy": "isophotal_abmag"}
#: Measured flux / error columns (Jy) for S/N per truth type.
SNR_COLUMNS = {"star": ("aper_total_flux", "aper_total_flux_err"),
               "galaxy": ("isophotal_flux", "isophotal_flux_err")}


@dataclass(frozen=True)
class CatalogMetrics:
    """Every catalog metric of one filter (the objects behind the numbers, for plots).

    ``photometry`` maps sample name (star, galaxy, bright_star) to its result;
    ``truth_snr`` is the S/N per truth row used for ``completeness_snr20``;
    ``bright_star`` the truth mask of the bright isolated star sample.
    """

    completeness: CompletenessCurve
    completeness_snr: FractionResult
    purity: PurityCurve
    photometry: dict[str, PhotometryResult]
    astrometry: AstrometryResult
    truth_snr: np.ndarray
    bright_star: np.ndarray
    settings: dict[str, Any]
    astrometry_bright: AstrometryResult | None = None

    def measurements(self) -> dict[str, Measurement]:
        out = dict(self.completeness.measurements())
        c = self.completeness_snr
        out["completeness_snr20"] = Measurement.of(
            "completeness_snr20", c.value, c.uncertainty, c.n,
            {"k": c.k, "lower": c.lower, "upper": c.upper,
             "snr_min": self.settings["snr_min"], "snr_source": self.settings["snr_source"],
             "n_blended_excluded": self.settings.get("n_blended_excluded", 0)})
        out.update(self.purity.measurements())
        for res in self.photometry.values():
            out.update(res.measurements())
        out.update(self.astrometry.measurements())
        if self.astrometry_bright is not None:
            b = self.astrometry_bright
            out["astrom_rms_bright_star_mas"] = Measurement.of(
                "astrom_rms_bright_star_mas", b.rms_mas, b.rms_err_mas, b.n, b.details())
        return out


def _measured_snr(measured: Any, kind: str) -> np.ndarray:
    f, e = SNR_COLUMNS[kind]
    with np.errstate(divide="ignore", invalid="ignore"):
        return column(measured, f) / column(measured, e)


def catalog_metrics(truth: Any, measured: Any, match: MatchResult, *,
                    bins: float | ArrayLike = 0.5, bright_mag_max: float | None = None,
                    bright_snr_min: float | None = 100.0, min_exposures: int | None = None,
                    blend_radius_mas: float = 500.0, snr_min: float = 20.0,
                    outlier_mag: float = 0.1, purity_mag_column: str = "isophotal_abmag",
                    confidence_level: float = 0.682689) -> CatalogMetrics:
    """Completeness, purity, photometry and astrometry of one filter's matched catalogs.

    Parameters
    ----------
    truth, measured : Table
        Truth table and pipeline catalog (column contract in :mod:`simval.match`).
    match : MatchResult
        From :func:`simval.match.match_catalogs` over the *whole* truth table.
    bins : float or array_like
        Magnitude bin width (mag) or edges for the binned curves.
    bright_mag_max, bright_snr_min : float, optional
        Bright isolated star sample: ``mag_true_ab < bright_mag_max`` and/or S/N >=
        ``bright_snr_min`` (S/N from ``snr_expected`` or estimated from the matches).
    min_exposures, blend_radius_mas
        Full coverage and isolation (:func:`select_bright_isolated_stars`).
    snr_min : float
        S/N threshold of ``completeness_snr20`` (keep 20 for that name).
    outlier_mag : float
        Outlier threshold of the bright star sample, mag.
    purity_mag_column : str
        Measured magnitude for the purity curve (isophotal: defined for every segment).
    confidence_level : float
        Of the binomial intervals.

    Returns
    -------
    CatalogMetrics
    """
    names = list(truth.colnames) if hasattr(truth, "colnames") else list(truth)
    kind = np.char.lower(np.asarray(truth["type"]).astype(str))
    unknown = set(np.unique(kind)) - set(MAG_COLUMN)
    if unknown:
        raise ValueError(f"truth column 'type' has {sorted(unknown)}; expected star, galaxy")
    t_mag = column(truth, "mag_true_ab")
    inside = column(truth, "in_footprint", bool) if "in_footprint" in names else \
        np.ones(len(t_mag), bool)
    detected = match.matched
    t2m = match.truth_to_measured

    # measured magnitude / S/N of each truth row's counterpart, by truth type
    m_mag = np.full(t_mag.size, np.nan)
    m_snr = np.full(t_mag.size, np.nan)
    for k in MAG_COLUMN:
        rows = np.flatnonzero((kind == k) & detected)
        m_mag[rows] = column(measured, MAG_COLUMN[k])[t2m[rows]]
        m_snr[rows] = _measured_snr(measured, k)[t2m[rows]]

    comp = completeness_curve(t_mag[inside], detected[inside], bins=bins,
                              confidence_level=confidence_level)
    if "snr_expected" in names:
        snr, snr_source = column(truth, "snr_expected"), "truth snr_expected"
    else:
        snr, snr_source = estimate_truth_snr(t_mag, m_snr, detected, kind), \
            "Theil-Sen fit of log10(S/N) vs true mag of matched sources, per type"
    # resolvable sources only: one within the blending radius of a brighter source is
    # beyond any deblender (the quickstart has a star 0.1" from a brighter one)
    resolvable = inside & ~(column(truth, "has_bright_neighbour", bool)
                            if "has_bright_neighbour" in names else np.zeros(inside.size, bool))
    comp_snr = completeness_above_snr(snr[resolvable], detected[resolvable], snr_min,
                                      confidence_level=confidence_level)
    n_blended = int(np.sum(inside & ~resolvable & (snr >= snr_min)))
    pur = purity_curve(column(measured, purity_mag_column), match.measured_matched,
                       bins=bins, confidence_level=confidence_level)

    phot = {}
    for k in ("star", "galaxy"):
        sel = (kind == k) & detected & inside
        phot[k] = photometric_bias(m_mag[sel], t_mag[sel], sample=k, bins=bins,
                                   outlier_mag=outlier_mag)
    bright = select_bright_isolated_stars(truth, mag_max=bright_mag_max, snr=snr,
                                          snr_min=bright_snr_min, min_exposures=min_exposures,
                                          blend_radius_mas=blend_radius_mas)
    sel = bright & detected
    phot["bright_star"] = photometric_bias(m_mag[sel], t_mag[sel], sample="bright_star",
                                           bins=bins, outlier_mag=outlier_mag)

    stars = (kind == "star") & detected & inside
    mra, mdec = radec_of(measured)
    tra, tdec = radec_of(truth)
    astro = astrometric_offsets(mra[t2m[stars]], mdec[t2m[stars]], tra[stars], tdec[stars])
    astro_bright = astrometric_offsets(mra[t2m[sel]], mdec[t2m[sel]], tra[sel], tdec[sel])
    settings = {"snr_min": snr_min, "snr_source": snr_source, "bright_mag_max": bright_mag_max,
                "bright_snr_min": bright_snr_min, "match_radius_mas": match.radius_mas,
                "prefer": match.prefer, "n_bright_selected": int(bright.sum()),
                "n_blended_excluded": n_blended}
    return CatalogMetrics(comp, comp_snr, pur, phot, astro, snr, bright, settings, astro_bright)
