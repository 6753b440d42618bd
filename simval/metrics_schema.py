"""Metric names, the :class:`Measurement` record, and ``metrics.json`` (versioned schema).

This module is light (numpy and pydantic) so that scenario validation, the report and the
pytest plugin can import the registry without the metric code. The file format is the
pydantic model :class:`MetricsFile`; its JSON Schema (:func:`metrics_json_schema`) is
generated from it.

Registry
--------
:data:`REGISTRY` maps every metric name that may appear in ``metrics.json``, in a scenario's
``comparison.thresholds`` or in a baseline comparison to its :class:`MetricSpec` (unit,
family, one-line definition with sign convention, default baseline tolerance). Unknown
names are an error that lists the known ones (:func:`check_metric_names`).

``metrics.json`` (schema version 1)
-----------------------------------
::

    {
      "schema": "simval.metrics",
      "schema_version": 1,
      "scenario": {"name": "quickstart", "hash": "0123456789abcdef"},
      "provenance": {...},                     # free-form, optional (software versions...)
      "filters": {
        "F115W": {
          "phot_bias_bright_star_mag": {
            "value": 0.011,                    # number or null (not measurable)
            "uncertainty": 0.004,              # number or null
            "n": 12,                           # sample size (sources, pixels, exposures...)
            "unit": "mag",                     # must equal the registry's unit
            "details": {...}                   # free-form JSON (bins, per-exposure values)
          }, ...
        }, ...
      }
    }

Filters are upper-case names (``F115W``); metric names come from :data:`REGISTRY`. NaN
and infinities are written as ``null``. :func:`read_metrics` validates all of the above
and raises :class:`MetricsFileError` naming the file and the dotted field.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
)
from pydantic_core import PydanticCustomError

from simval.atomic import write_text

__all__ = [
    "CORONAGRAPHY_GROUPS",
    "GROUPS",
    "INPUTS",
    "REGISTRY",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "Measurement",
    "MetricEntry",
    "MetricSpec",
    "MetricsDocument",
    "MetricsFile",
    "MetricsFileError",
    "UnknownMetricError",
    "check_metric_names",
    "group_metrics",
    "jsonable",
    "metrics_json_schema",
    "read_metrics",
    "registry_markdown",
    "write_metrics",
]

SCHEMA_NAME = "simval.metrics"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class MetricSpec:
    """The one declaration of a metric: evaluation, docs, verdicts and compare read it.

    Attributes
    ----------
    name : str
        Registry name (lower-case identifier, unit suffix where it has one).
    unit : str
        Unit of ``value``: ``mag`` (a magnitude difference), ``AB mag``, ``mas``,
        ``MJy/sr``, ``fraction`` (0..1), ``ratio`` or ``count``.
    family : str
        Module of :mod:`simval.metrics` that computes it.
    description : str
        Definition and sign convention (measured - true).
    baseline_abs : float
        Default absolute tolerance when comparing with a baseline run.
    group : str
        The computation that produces it (:data:`GROUPS`): metrics of one group are
        computed together, and fail or succeed together.
    needs : tuple of str
        The run files it is computed from (:data:`INPUTS`).
    empty_reason : str
        Why the value is ``null`` although its group ran (``details.not_computed``).
    """

    name: str
    unit: str
    family: str
    description: str
    baseline_abs: float
    group: str
    needs: tuple[str, ...]
    empty_reason: str


#: The run files metrics are computed from.
INPUTS = {
    "truth": "truth table, truth/<product>_truth.ecsv",
    "catalog": "pipeline source catalog, image3/<product>/<product>_cat.ecsv",
    "i2d.SCI": "mosaic, image3/<product>/<product>_i2d.fits SCI",
    "i2d.ERR": "the mosaic's ERR extension",
    "i2d.WHT": "the mosaic's WHT extension",
    "i2d.CON": "the mosaic's CON (context) extension",
    "i2d.PIXAR_SR": "PIXAR_SR of the mosaic's SCI header",
    "i2d.resample": "the mosaic's resample parameters: PIXFRAC and PXSCLRT (primary "
                    "header) and the kernel (meta.resample in the ASDF extension)",
    "segm": "pipeline segmentation map, image3/<product>/<product>_segm.fits",
    "truth_mosaic": "noiseless truth mosaic, truth/<product>_truth_i2d.fits",
    "backgrounds": "injected and recovered sky per exposure, truth/<product>_backgrounds.ecsv",
    "cal": "the exposures' image2 cal files, image2/<base>_cal.fits (WCS, array, DQ)",
    "tweakreg_wcs": "the WCS tweakreg gave each exposure, image3/<product>/"
                    "<base>_tweakreg_wcs.asdf (when tweakreg is skipped: the cal file's)",
    "plan": "the run's plan.json (each exposure's injected pointing error)",
    "rate": "the exposures' detector1 rate files, detector1/<base>_rate.fits (SCI, "
            "VAR_POISSON, DQ; TGROUP and NGROUPS)",
    "uncal": "GAIN in the primary header of the exposures' uncal files (the gain the "
             "simulator converted electrons to DN with, e-/DN)",
    "coron_truth": "the coronagraphic simulator's truth per exposure, exposures/<base>/"
                   "<base>_coron_truth.ecsv (pixels, offsets from the mask, fluxes, the "
                   "mask's transmission)",
    "psfsub": "calwebb_coron3's PSF-subtracted integrations per science exposure, "
              "image3/<product>/<base>_<product>_psfsub.fits",
    "psfalign": "the references align_refs aligned to each science exposure, _psfalign.fits",
    "psfstack": "the stacked references, image3/<product>/<product>_psfstack.fits",
    "calints": "the science exposures' calwebb_image2 products, image2/<base>_calints.fits",
    "coron_disk": "the simulator's noiseless disk per science exposure, exposures/<base>/"
                  "<base>_disk_rate.fits (DN/s)",
    "psf_cache": "the kit's occulted PSFs (the simulator's optics), for encircled energies",
    "crf": "the exposures' outlier_detection products, image3/<product>/<base>_crf.fits "
           "(DQ with OUTLIER, WCS)",
}

_NO_BRIGHT = "no matched bright, isolated, fully covered star"
_NO_STAR = "no matched star in the footprint"
_CATALOG = ("truth", "catalog")
_NO_SEAM = "no exposure edge inside the mosaic with sky on both sides"
_BREAKDOWN = ("truth", "catalog", "i2d.SCI", "i2d.WHT", "truth_mosaic", "backgrounds", "cal")
_FOOTPRINT = ("truth", "catalog", "segm", "i2d.SCI", "i2d.WHT", "i2d.PIXAR_SR", "truth_mosaic",
              "backgrounds")
_NO_CAL = "no cal file with enough valid, source-free pixels"
_NO_ALIGN = "no exposure whose final WCS could be read"
_NO_MOSAIC_NOISE = "too few valid, source-free mosaic pixels"
_NO_CRF = "outlier_detection did not run (no _crf.fits) or no bright star fell on one"
_NO_SMEAR = "no bright isolated star with a whole stamp in the mosaic and the truth mosaic"
_NO_GALAXY_SEGMENT = "no matched galaxy with isophotal S/N >= 20 and a segment"
_NO_STAR_SEGMENT = "no matched star with isophotal S/N >= 20 and a segment"

#: Computation groups: name -> (metric family module, inputs).
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "catalog": ("completeness, photometry, astrometry", _CATALOG),
    "footprint_photometry": ("galaxy_photometry", _FOOTPRINT),
    "background": ("background", ("i2d.SCI", "i2d.WHT", "truth_mosaic", "backgrounds")),
    "skymatch": ("background", ("backgrounds",)),
    "err_ratio": ("noise", ("i2d.SCI", "i2d.ERR")),
    "depth": ("noise", ("i2d.SCI", "i2d.PIXAR_SR", "catalog")),
    "sensitivity": ("sensitivity", ("truth", "catalog", "i2d.SCI", "i2d.PIXAR_SR",
                                    "truth_mosaic")),
    "aperture_noise": ("aperture_noise", ("i2d.SCI", "i2d.ERR", "i2d.WHT", "i2d.resample")),
    "holes": ("mosaic", ("i2d.SCI", "i2d.WHT")),
    "seams": ("mosaic", ("i2d.SCI", "i2d.CON", "backgrounds")),
    "defects": ("mosaic_defects", ("i2d.SCI", "i2d.WHT", "cal")),
    "striping": ("striping", ("cal",)),
    "jumps": ("jumps", ("cal",)),
    "poisson_gain": ("poisson_gain", ("rate", "uncal")),
    "striping_mosaic": ("striping", ("i2d.SCI", "i2d.WHT", "truth_mosaic", "cal")),
    "alignment": ("alignment", ("cal", "tweakreg_wcs", "plan")),
    "psf_smear": ("smearing", ("truth", "i2d.SCI", "truth_mosaic")),
    "outlier_cores": ("outliers", ("truth", "catalog", "crf")),
    "coron_companions": ("coron_evaluate", ("coron_truth", "psfsub", "i2d.SCI",
                                            "i2d.PIXAR_SR", "psf_cache")),
    "coron_contrast": ("coron_evaluate", ("coron_truth", "psfsub", "calints", "psf_cache")),
    "coron_alignment": ("coron_alignment", ("coron_truth", "psfstack", "psfalign")),
    "coron_disk": ("coron_evaluate", ("coron_disk", "psfsub")),
    "detectors": ("breakdown", _BREAKDOWN),
    "visits": ("breakdown", _BREAKDOWN),
}


#: The groups of a coronagraphy run (:mod:`simval.metrics.coron_evaluate`); an imaging
#: run's evaluation computes the others.
CORONAGRAPHY_GROUPS = ("coron_companions", "coron_contrast", "coron_alignment",
                       "coron_disk")


def _specs() -> dict[str, MetricSpec]:
    # (name, unit, family, group, baseline tolerance, definition, reason when null)
    rows = [
        ("completeness", "fraction", "completeness", "catalog", 0.02,
         "matched / all truth sources inside the footprint",
         "no truth source inside the mosaic footprint"),
        ("completeness_snr20", "fraction", "completeness", "catalog", 0.02,
         "completeness of truth sources with (expected) S/N >= 20 and no brighter "
         "neighbour within the blending radius",
         "no truth source with expected S/N >= 20 inside the footprint"),
        ("completeness_50_mag", "AB mag", "completeness", "catalog", 0.1,
         "true AB magnitude where binned completeness falls through 50% (faintest crossing)",
         "the binned completeness curve does not fall through 50%"),
        ("completeness_90_mag", "AB mag", "completeness", "catalog", 0.1,
         "true AB magnitude where binned completeness falls through 90% (faintest crossing)",
         "the binned completeness curve does not fall through 90%"),
        ("purity", "fraction", "completeness", "catalog", 0.02,
         "matched / all measured sources", "the pipeline catalog is empty"),
        ("spurious_fraction", "fraction", "completeness", "catalog", 0.02,
         "unmatched / all measured sources (1 - purity)", "the pipeline catalog is empty"),
        ("phot_bias_star_mag", "mag", "photometry", "catalog", 0.01,
         "median(aper_total_abmag - mag_true_ab), matched stars; negative = measured brighter",
         "no matched star with a finite aper_total_abmag in the footprint"),
        ("phot_nmad_star_mag", "mag", "photometry", "catalog", 0.01,
         "1.4826 MAD of (measured - true) mag, matched stars",
         "no matched star with a finite aper_total_abmag in the footprint"),
        ("phot_bias_galaxy_mag", "mag", "photometry", "catalog", 0.02,
         "median(isophotal_abmag - mag_true_ab), matched galaxies; positive = measured "
         "fainter (calibration and the isophote's definition together: see "
         "phot_calib_bias_galaxy_mag)",
         "no matched galaxy with a finite isophotal_abmag in the footprint"),
        ("phot_nmad_galaxy_mag", "mag", "photometry", "catalog", 0.02,
         "1.4826 MAD of (measured - true) mag, matched galaxies",
         "no matched galaxy with a finite isophotal_abmag in the footprint"),
        ("phot_bias_bright_star_mag", "mag", "photometry", "catalog", 0.005,
         "median(aper_total_abmag - mag_true_ab), bright isolated fully covered stars",
         _NO_BRIGHT),
        ("phot_nmad_bright_star_mag", "mag", "photometry", "catalog", 0.005,
         "1.4826 MAD of (measured - true) mag, bright isolated stars", _NO_BRIGHT),
        ("phot_outlier_frac_bright_star", "fraction", "photometry", "catalog", 0.05,
         "fraction of bright isolated stars with |dmag - median| > 0.1 mag", _NO_BRIGHT),
        ("phot_calib_bias_galaxy_mag", "mag", "galaxy_photometry", "footprint_photometry",
         0.01,
         "median(-2.5 log10(F_mosaic / F_truth)) in the interior (eroded by 2 pixels) of "
         "each matched galaxy's pipeline segment (isophotal S/N >= 20): mosaic and "
         "noiseless truth mosaic summed pixel by pixel over the same pixels, skies "
         "removed; calibration only (perfect = 0); positive = measured fainter",
         _NO_GALAXY_SEGMENT),
        ("phot_calib_nmad_galaxy_mag", "mag", "galaxy_photometry", "footprint_photometry",
         0.01, "1.4826 MAD of the same calibration dmag, galaxies", _NO_GALAXY_SEGMENT),
        ("phot_calib_bias_star_mag", "mag", "galaxy_photometry", "footprint_photometry",
         0.01, "the same calibration-only median in the segments of matched stars",
         _NO_STAR_SEGMENT),
        ("phot_calib_bias_aper_galaxy_mag", "mag", "galaxy_photometry",
         "footprint_photometry", 0.01,
         "median(-2.5 log10(catalog aper<EE>_flux / the same aperture and annulus on the "
         "truth mosaic)), the catalog's largest aperture, matched galaxies; positive = "
         "measured fainter",
         "no galaxy of the sample with a finite catalog aperture flux (aperture_params?)"),
        ("phot_calib_bias_aper_star_mag", "mag", "galaxy_photometry", "footprint_photometry",
         0.01, "the same aperture comparison, matched stars",
         "no star of the sample with a finite catalog aperture flux (aperture_params?)"),
        ("phot_segment_edge_galaxy_mag", "mag", "galaxy_photometry",
         "footprint_photometry", 0.01,
         "median of the same calibration dmag over the whole segment minus over its "
         "interior, galaxies: the noise the detection threshold let into the segment's "
         "edge; negative = measured brighter", _NO_GALAXY_SEGMENT),
        ("phot_catalog_sky_galaxy_mag", "mag", "galaxy_photometry", "footprint_photometry",
         0.01,
         "median(-2.5 log10(isophotal_flux / F_mosaic)), galaxies: the source catalog's own "
         "background estimate; positive = it removed more sky than the mosaic holds",
         _NO_GALAXY_SEGMENT),
        ("phot_iso_loss_galaxy_mag", "mag", "galaxy_photometry", "footprint_photometry",
         0.02,
         "median(-2.5 log10(F_truth / total true flux)), galaxies without a brighter "
         "neighbour: the light outside the segment, the catalog's definition "
         "(information); positive = the segment holds less than the total",
         "no isolated galaxy in the sample"),
        ("astrom_dra_mas", "mas", "astrometry", "catalog", 1.0,
         "median RA*cos(Dec) offset measured - truth, stars; positive = measured east",
         _NO_STAR),
        ("astrom_ddec_mas", "mas", "astrometry", "catalog", 1.0,
         "median Dec offset measured - truth, stars; positive = measured north", _NO_STAR),
        ("astrom_offset_mas", "mas", "astrometry", "catalog", 1.0,
         "length of the median offset vector, stars", _NO_STAR),
        ("astrom_rms_mas", "mas", "astrometry", "catalog", 1.0,
         "sqrt(mean(dra_cosdec**2 + ddec**2)) about zero, stars (includes a shift)",
         _NO_STAR),
        ("astrom_rms_bright_star_mas", "mas", "astrometry", "catalog", 0.5,
         "sqrt(mean(dra_cosdec**2 + ddec**2)) about zero, bright isolated fully covered "
         "stars (the closure sample; faint blends excluded)", _NO_BRIGHT),
        ("bkg_residual_mjysr", "MJy/sr", "background", "background", 0.002,
         "sigma-clipped median of source-masked mosaic pixels minus the expected level",
         "no valid source-free mosaic pixel"),
        ("bkg_residual_frac", "fraction", "background", "background", 0.005,
         "bkg_residual_mjysr / injected sky", "the injected sky is zero"),
        ("skymatch_error_max_mjysr", "MJy/sr", "background", "skymatch", 0.005,
         "largest per-exposure error of skymatch's sky level against the injected sky",
         "no skymatch level recorded"),
        ("skymatch_error_max_frac", "fraction", "background", "skymatch", 0.01,
         "skymatch_error_max_mjysr / injected sky", "the injected sky is zero"),
        ("err_ratio_median", "ratio", "noise", "err_ratio", 0.05,
         "median of (sky pixel - sky level) / ERR over source-free pixels (~0)",
         "no valid source-free pixel with ERR > 0"),
        ("err_ratio_nmad", "ratio", "noise", "err_ratio", 0.05,
         "1.4826 MAD of (sky pixel - sky level) / ERR (~1 if ERR is right)",
         "no valid source-free pixel with ERR > 0"),
        ("depth_5sigma_mag", "AB mag", "noise", "depth", 0.05,
         "5-sigma point-source depth from random apertures on source-free sky",
         "no aperture fits on valid, source-free sky"),
        ("limit_10sigma_njy", "nJy", "sensitivity", "sensitivity", 0.5,
         "10-sigma point-source limit as the NIRCam sensitivity tables define it: aperture "
         "radius the larger of 2.5 native pixels or 1.2 lambda_pivot/D; 10 x the clipped "
         "scatter of random source-free aperture sums in the mosaic / the encircled energy "
         "of the bright isolated stars in the same aperture on the truth mosaic (against "
         "their true total flux)", "no bright isolated star or no room for sky apertures"),
        ("err_ratio_nmad_drizzle", "ratio", "aperture_noise", "aperture_noise", 0.05,
         "err_ratio_nmad x R, R the Casertano et al. (2000) noise correlation ratio of the "
         "mosaic's pixfrac and pixel scale ratio (~1 if ERR is right)",
         "no valid source-free pixel with ERR > 0"),
        ("aper_noise_ratio_r2", "ratio", "aperture_noise", "aperture_noise", 0.05,
         "NMAD of sum / sigma_pred over random source-free 2-pixel apertures, sigma_pred = "
         "ERR propagated with drizzle's pixel covariance (~1 if ERR is right, 0.5 if ERR "
         "is twice the noise)", "no 2-pixel aperture fits on valid, source-free sky"),
        ("aper_noise_ratio_r4", "ratio", "aperture_noise", "aperture_noise", 0.05,
         "the same with 4-pixel apertures",
         "no 4-pixel aperture fits on valid, source-free sky"),
        ("aper_noise_ratio_raw_r2", "ratio", "aperture_noise", "aperture_noise", 0.05,
         "NMAD of sum / sqrt(sum (w ERR)**2) over the same 2-pixel apertures (covariance "
         "ignored)", "no 2-pixel aperture fits on valid, source-free sky"),
        ("aper_noise_ratio_raw_r4", "ratio", "aperture_noise", "aperture_noise", 0.05,
         "the same raw ratio with 4-pixel apertures",
         "no 4-pixel aperture fits on valid, source-free sky"),
        ("hole_frac", "fraction", "mosaic", "holes", 0.002,
         "NaN or zero-weight pixels / pixels inside the footprint",
         "the mosaic has no footprint"),
        ("black_line_count", "count", "mosaic", "holes", 0.0,
         "number of line-shaped hole regions inside the footprint",
         "the mosaic has no footprint"),
        ("black_line_frac", "fraction", "mosaic", "holes", 0.002,
         "pixels in line-shaped holes / pixels inside the footprint",
         "the mosaic has no footprint"),
        ("seam_step_max_mjysr", "MJy/sr", "mosaic", "seams", 0.002,
         "largest |median inside - median outside| across an exposure edge", _NO_SEAM),
        ("seam_step_max_frac", "fraction", "mosaic", "seams", 0.005,
         "seam_step_max_mjysr / injected sky", _NO_SEAM),
        ("hole_resample_frac", "fraction", "mosaic_defects", "defects", 0.002,
         "hole pixels that an exposure covers with a usable (not DO_NOT_USE) pixel, i.e. "
         "NaN from resample / pixels inside the footprint",
         "the mosaic has no footprint"),
        ("stripe_row_amp_mjysr", "MJy/sr", "striping", "striping", 0.001,
         "per cal file: scatter of the per-amplifier row means of valid, source-free pixels "
         "less the white-noise expectation, in quadrature (1/f noise); median over the "
         "exposures", _NO_CAL),
        ("stripe_row_frac", "fraction", "striping", "striping", 0.02,
         "stripe_row_amp / the same pixels' noise; median over the exposures", _NO_CAL),
        ("stripe_col_amp_mjysr", "MJy/sr", "striping", "striping", 0.001,
         "the same for column means", _NO_CAL),
        ("stripe_col_frac", "fraction", "striping", "striping", 0.02,
         "stripe_col_amp / the same pixels' noise; median over the exposures", _NO_CAL),
        ("stripe_mosaic_row_frac", "fraction", "striping", "striping_mosaic", 0.02,
         "the same row statistic on the mosaic - truth mosaic (sources and pipeline "
         "segments masked), turned so the detector rows run along its rows, as a fraction "
         "of its pixel noise", _NO_MOSAIC_NOISE),
        ("stripe_mosaic_col_frac", "fraction", "striping", "striping_mosaic", 0.02,
         "the same across the rows: drizzle's pixel correlation alone (the floor of "
         "stripe_mosaic_row_frac)", _NO_MOSAIC_NOISE),
        ("jump_frac", "fraction", "jumps", "jumps", 0.0005,
         "science pixels whose cal DQ carries JUMP_DET / science pixels (not reference, "
         "non-science or DO_NOT_USE for another reason), over the exposures; with cosmic "
         "rays off every flag is a false positive", _NO_CAL),
        ("gain_ratio", "ratio", "poisson_gain", "poisson_gain", 0.01,
         "median over rate-file pixels with one ramp segment (DQ 0) and >= 500 DN of signal "
         "of SCI / (VAR_POISSON * TGROUP * (NGROUPS - 1)), the gain ramp_fit used, over the "
         "simulator's gain (uncal GAIN); 1 = the GAIN reference agrees with the detector",
         "fewer than 50 rate-file pixels with one ramp segment and >= 500 DN"),
        ("align_rel_max_mas", "mas", "alignment", "alignment", 2.0,
         "per exposure: residual r = final WCS - true WCS (mean over a 5 x 5 pixel grid; "
         "final: tweakreg's, or the cal file's when skipped; true: the cal WCS corrected by "
         "the injected pointing error); the largest |r - median(r)| (exposures misaligned "
         "with each other)", _NO_ALIGN),
        ("align_rel_rms_mas", "mas", "alignment", "alignment", 2.0,
         "rms of |r - median(r)| over the exposures", _NO_ALIGN),
        ("align_abs_mas", "mas", "alignment", "alignment", 2.0,
         "|median(r)|: the whole mosaic's offset from the sky (what abs_refcat fixes)",
         _NO_ALIGN),
        ("smear_fwhm_ratio", "ratio", "smearing", "psf_smear", 0.01,
         "median over bright isolated stars of FWHM(mosaic) / FWHM(truth mosaic), circular "
         "Gaussian fits (photutils fit_fwhm) at the true positions; 1 = no smearing",
         _NO_SMEAR),
        ("smear_ee_ratio", "ratio", "smearing", "psf_smear", 0.01,
         "median of EE(mosaic) / EE(truth mosaic), EE = flux within 2 px / within 6 px "
         "(annulus 8-12 px subtracted); below 1 = light pushed out of the core", _NO_SMEAR),
        ("outlier_core_frac", "fraction", "outliers", "outlier_cores", 0.01,
         "pixels within 1.5 px of a bright isolated star (true position, each crf file's "
         "WCS) that outlier_detection flagged OUTLIER / all such pixels, over the "
         "exposures", _NO_CRF),
        ("outlier_core_star_frac", "fraction", "outliers", "outlier_cores", 0.05,
         "bright isolated stars with at least one core pixel flagged in some exposure / "
         "the stars", _NO_CRF),
        ("outlier_frac", "fraction", "outliers", "outlier_cores", 0.0005,
         "science pixels flagged OUTLIER / science pixels of the crf files (cosmic rays "
         "jump missed, and false flags)", _NO_CRF),
        ("companion_flux_ratio_worst", "ratio", "coron_evaluate", "coron_companions", 0.05,
         "per science exposure's psfsub (integrations averaged) and companion: flux in a "
         "4 px aperture / (injected flux x mask transmission x the aperture's encircled "
         "energy from the simulator's occulted PSF); the one farthest from 1 (signed)",
         "no companion in the scenario"),
        ("companion_position_error_max_mas", "mas", "coron_evaluate", "coron_companions", 3.0,
         "2-D Gaussian centroid of each companion in each psfsub minus its true pixel; the "
         "largest", "no companion in the scenario"),
        ("companion_snr_min", "ratio", "coron_evaluate", "coron_companions", 1.0,
         "per companion and psfsub: one-FWHM aperture sum over the standard deviation of "
         "the same apertures around its separation ring (other companions masked); the "
         "smallest", "no companion in the scenario"),
        ("companion_flux_ratio_i2d_worst", "ratio", "coron_evaluate", "coron_companions",
         0.05, "as companion_flux_ratio_worst in the resampled _i2d (true sky position "
         "through its WCS, expected flux the rolls' mean)", "no companion in the scenario"),
        ("companion_position_error_i2d_max_mas", "mas", "coron_evaluate", "coron_companions",
         3.0, "as companion_position_error_max_mas in the _i2d (its pixel scale)",
         "no companion in the scenario"),
        ("contrast_0p5_arcsec", "ratio", "coron_evaluate", "coron_contrast", 2e-6,
         "5-sigma point-source contrast at 0.5 arcsec with Mawet et al. (2014)'s "
         "small-sample correction (companions masked); the worst psfsub",
         "too few apertures at this separation"),
        ("contrast_1_arcsec", "ratio", "coron_evaluate", "coron_contrast", 1e-6,
         "as contrast_0p5_arcsec at 1 arcsec", "too few apertures at this separation"),
        ("contrast_2_arcsec", "ratio", "coron_evaluate", "coron_contrast", 2e-7,
         "as contrast_0p5_arcsec at 2 arcsec", "too few apertures at this separation"),
        ("contrast_4_arcsec", "ratio", "coron_evaluate", "coron_contrast", 1e-7,
         "as contrast_0p5_arcsec at 4 arcsec", "too few apertures at this separation"),
        ("klip_gain_1_arcsec", "ratio", "coron_evaluate", "coron_contrast", 2.0,
         "contrast of the unsubtracted calints / of the psfsub at 1 arcsec, median over "
         "science exposures", "too few apertures at this separation"),
        ("disk_flux_ratio", "ratio", "coron_evaluate", "coron_disk", 0.02,
         "the disk's surface brightness summed in each psfsub over the simulator's noiseless "
         "disk on the same pixels (above 20 % of its peak, outside 0.8\", away from the "
         "companions); mean over the science exposures; below 1: KLIP over-subtracts it",
         "no disk (extended_emission) in the scenario"),
        ("align_refs_error_rms_mas", "mas", "coron_alignment", "coron_alignment", 1.0,
         "shift align_refs applied to each reference frame (fitted from psfstack to the "
         "first science integration's psfalign) minus the dither truth (science star's "
         "pixel minus the reference star's); rms length", "no reference frame"),
        ("align_refs_applied_rms_mas", "mas", "coron_alignment", "coron_alignment", 1.0,
         "rms length of the shifts align_refs applied", "no reference frame"),
        ("align_refs_expected_rms_mas", "mas", "coron_alignment", "coron_alignment", 1.0,
         "rms length of the shifts the dither truth asks for", "no reference frame"),
        ("phot_offset_detector_worst_mag", "mag", "breakdown", "detectors", 0.01,
         "per detector: median(measured - true) mag of the bright isolated stars (else all "
         "matched stars) its exposures cover; the detector farthest from 0 (signed)",
         "no matched star covered by any detector"),
        ("astrom_offset_detector_worst_mas", "mas", "breakdown", "detectors", 1.0,
         "per detector: length of the mean (dRA cos Dec, dDec) offset measured - true of the "
         "same stars; the largest",
         "no matched star covered by any detector"),
        ("astrom_rms_detector_worst_mas", "mas", "breakdown", "detectors", 1.0,
         "per detector: sqrt(mean(dra_cosdec**2 + ddec**2)) about zero of the same stars; "
         "the largest", "no matched star covered by any detector"),
        ("bkg_residual_detector_worst_frac", "fraction", "breakdown", "detectors", 0.005,
         "per detector: background residual of the source-free pixels its exposures cover / "
         "injected sky; the detector farthest from 0 (signed)",
         "no valid source-free pixel in any detector"),
        ("phot_offset_visit_worst_mag", "mag", "breakdown", "visits", 0.01,
         "per visit: median(measured - true) mag of the bright isolated stars (else all "
         "matched stars) its exposures cover; the visit farthest from 0 (signed)",
         "no matched star covered by any visit"),
        ("astrom_offset_visit_worst_mas", "mas", "breakdown", "visits", 1.0,
         "per visit: length of the mean (dRA cos Dec, dDec) offset measured - true of the "
         "same stars; the largest",
         "no matched star covered by any visit"),
        ("astrom_rms_visit_worst_mas", "mas", "breakdown", "visits", 1.0,
         "per visit: sqrt(mean(dra_cosdec**2 + ddec**2)) about zero of the same stars; "
         "the largest", "no matched star covered by any visit"),
        ("bkg_residual_visit_worst_frac", "fraction", "breakdown", "visits", 0.005,
         "per visit: background residual of the source-free pixels its exposures cover / "
         "injected sky; the visit farthest from 0 (signed)",
         "no valid source-free pixel in any visit"),
    ]
    return {n: MetricSpec(n, u, f, d, b, g, GROUPS[g][1], r)
            for n, u, f, g, b, d, r in rows}


#: Every metric name -> its :class:`MetricSpec`.
REGISTRY: dict[str, MetricSpec] = _specs()


def group_metrics(group: str) -> tuple[str, ...]:
    """Names of the metrics one computation group produces, in registry order."""
    if group not in GROUPS:
        raise KeyError(f"unknown metric group {group!r}; groups: {', '.join(GROUPS)}")
    return tuple(n for n, s in REGISTRY.items() if s.group == group)


def registry_markdown() -> str:
    """The registry as the Markdown table of ``docs/metrics.md`` (section 4)."""
    lines = ["| name | unit | family | computed from | baseline tolerance |",
             "|---|---|---|---|---|"]
    for s in REGISTRY.values():
        lines.append(f"| `{s.name}` | {s.unit} | {s.family} | {', '.join(s.needs)} | "
                     f"{s.baseline_abs:g} |")
    return "\n".join(lines)


class UnknownMetricError(KeyError):
    """A metric name that is not in :data:`REGISTRY`; the message lists the known ones."""

    def __init__(self, names: Iterable[str], where: str = ""):
        self.names = sorted(set(names))
        known = ", ".join(REGISTRY)
        place = f" in {where}" if where else ""
        super().__init__(f"unknown metric name(s){place}: {', '.join(self.names)}. "
                         f"Known metrics: {known}")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


def check_metric_names(names: Iterable[str], where: str = "") -> None:
    """Raise :class:`UnknownMetricError` if any name is not in :data:`REGISTRY`."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise UnknownMetricError(unknown, where)


def _finite_or_none(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays as lists and NaN/inf as None (strict JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return _finite_or_none(obj)
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


@dataclass(frozen=True)
class Measurement:
    """One metric's value for one filter (an entry of ``metrics.json``).

    Attributes
    ----------
    value : float or None
        The measured value in ``unit``; None if it could not be measured (n = 0).
    uncertainty : float or None
        1-sigma statistical uncertainty of ``value``, same unit; None if not meaningful.
    n : int
        Sample size the value rests on (sources, pixels, apertures, exposures, edges).
    unit : str
        Must equal the registry's unit for the metric.
    details : dict
        JSON-able extras (binned curves, per-exposure values, selection parameters).
    """

    value: float | None
    uncertainty: float | None
    n: int
    unit: str
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, value: Any, uncertainty: Any = None, n: int = 0,
           details: Mapping[str, Any] | None = None) -> Measurement:
        """Build with the registry's unit, NaN -> None."""
        check_metric_names([name])
        return cls(_finite_or_none(value), _finite_or_none(uncertainty), int(n),
                   REGISTRY[name].unit, dict(details or {}))

    def to_json(self) -> dict[str, Any]:
        return {"value": _finite_or_none(self.value),
                "uncertainty": _finite_or_none(self.uncertainty),
                "n": int(self.n), "unit": self.unit, "details": jsonable(self.details)}


@dataclass
class MetricsDocument:
    """The content of ``metrics.json``.

    Attributes
    ----------
    scenario_name, scenario_hash : str
        The scenario (``simval.scenario.scenario_hash``).
    filters : dict
        filter name (upper case) -> metric name -> :class:`Measurement`.
    provenance : dict
        Free-form JSON (software versions, run directory, CRDS context...).
    schema_version : int
        :data:`SCHEMA_VERSION` when written by this code.
    """

    scenario_name: str
    scenario_hash: str
    filters: dict[str, dict[str, Measurement]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def add(self, band: str, measurements: Mapping[str, Measurement]) -> None:
        """Add (or replace) measurements of one filter; names must be registered."""
        check_metric_names(measurements, where=f"filter {band}")
        self.filters.setdefault(band.upper(), {}).update(measurements)

    def get(self, band: str, metric: str) -> Measurement | None:
        return self.filters.get(band.upper(), {}).get(metric)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_NAME,
            "schema_version": self.schema_version,
            "scenario": {"name": self.scenario_name, "hash": self.scenario_hash},
            "provenance": jsonable(self.provenance),
            "filters": {f: {m: meas.to_json() for m, meas in sorted(ms.items())}
                        for f, ms in sorted(self.filters.items())},
        }


def write_metrics(path: str | os.PathLike, doc: MetricsDocument) -> Path:
    """Write ``doc`` to ``path`` as ``metrics.json`` (atomically); return the path.

    The written file is validated by the same rules :func:`read_metrics` applies.
    """

    data = doc.to_json()
    _validate(data, str(path))
    return write_text(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False)
                      + "\n")


class MetricsFileError(ValueError):
    """``metrics.json`` does not follow the schema; names the file and the dotted field."""

    def __init__(self, path: str, field_path: str, message: str):
        self.path, self.field, self.reason = path, field_path, message
        super().__init__(f"{path}: {field_path or '(top level)'}: {message}")


def read_metrics(path: str | os.PathLike) -> MetricsDocument:
    """Read and validate a ``metrics.json``.

    Raises
    ------
    MetricsFileError
        For unreadable JSON, an unsupported ``schema_version``, a missing or wrongly
        typed field, an unknown metric name, or a unit that differs from the registry.
    """
    src = str(path)
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise MetricsFileError(src, "", f"not valid JSON ({e})") from e
    except OSError as e:
        raise MetricsFileError(src, "", f"cannot read ({e})") from e
    _validate(data, src)
    filters = {
        f: {m: Measurement(e["value"], e["uncertainty"], e["n"], e["unit"],
                           e.get("details", {}))
            for m, e in ms.items()}
        for f, ms in data["filters"].items()
    }
    return MetricsDocument(data["scenario"]["name"], data["scenario"]["hash"], filters,
                           data.get("provenance", {}), data["schema_version"])


# --- the file format, as pydantic models -----------------------------------------------------

def _number(v: Any) -> Any:
    if v is None or (isinstance(v, int | float) and not isinstance(v, bool)
                     and math.isfinite(v)):
        return v
    raise PydanticCustomError("finite_number", "expected a finite number or null, got {got}",
                              {"got": repr(v)})


def _count(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    raise PydanticCustomError("count", "expected a non-negative integer, got {got}",
                              {"got": repr(v)})


def _nonempty(v: Any) -> Any:
    if isinstance(v, str) and v:
        return v
    raise PydanticCustomError("nonempty", "expected a non-empty string, got {got}",
                              {"got": repr(v)})


class MetricEntry(BaseModel):
    """One metric of one filter in ``metrics.json`` (see :class:`Measurement`)."""

    model_config = ConfigDict(extra="forbid")

    value: Annotated[float | None, BeforeValidator(_number)]
    uncertainty: Annotated[Annotated[float, Field(ge=0.0)] | None, BeforeValidator(_number)]
    n: Annotated[int, BeforeValidator(_count)]
    unit: str
    details: dict[str, Any] = Field(default_factory=dict)


def _unit_of(name: str) -> Any:
    unit = REGISTRY[name].unit

    def check(entry: MetricEntry | None) -> MetricEntry | None:
        if entry is not None and entry.unit != unit:
            raise PydanticCustomError("unit", "expected {unit} for {name}, got {got}",
                                      {"unit": repr(unit), "name": name,
                                       "got": repr(entry.unit)})
        return entry

    return check


#: The metrics of one filter: one optional field per registered metric, nothing else.
FilterMetrics = create_model(
    "FilterMetrics", __config__=ConfigDict(extra="forbid"),
    **{name: (Annotated[MetricEntry | None, AfterValidator(_unit_of(name))], None)
       for name in REGISTRY})

FilterName = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9_./+-]+$")]


class ScenarioRef(BaseModel):
    """The scenario a ``metrics.json`` belongs to."""

    name: Annotated[str, BeforeValidator(_nonempty)]
    hash: Annotated[str, BeforeValidator(_nonempty)]


class MetricsFile(BaseModel):
    """``metrics.json`` (schema :data:`SCHEMA_NAME`, version :data:`SCHEMA_VERSION`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True,
                              title="simval metrics.json")

    schema_name: Literal["simval.metrics"] = Field(alias="schema")
    schema_version: Literal[1]
    scenario: ScenarioRef
    provenance: dict[str, Any] = Field(default_factory=dict)
    filters: dict[FilterName, FilterMetrics]  # type: ignore[valid-type]


#: Messages for pydantic's own error types, by the last element of the location.
_MESSAGES = {
    "literal_error": {"schema": f"expected {SCHEMA_NAME!r}, got {{input!r}}",
                      "schema_version": f"unsupported version {{input!r}}; this simval reads "
                                        f"version {SCHEMA_VERSION}"},
    "dict_type": {"filters": "expected an object: filter -> metric -> entry",
                  "provenance": "expected an object", "details": "expected an object"},
    "model_type": {"scenario": "expected an object {name, hash}", "": "expected a JSON object"},
}


def _explain_error(err: Any) -> tuple[str, str]:
    """(dotted field, message) of one pydantic error, in this module's words."""
    loc = [str(x) for x in err["loc"]]
    kind = err["type"]
    if loc and loc[-1] == "[key]":  # a filter name that is not upper case
        return ".".join(loc[:-1]), "filter names are upper case (F115W)"
    where = ".".join(loc)
    if kind == "unit":
        return f"{where}.unit", err["msg"]
    if kind == "missing":
        if loc[:1] == ["scenario"]:
            return where, "expected a non-empty string, got None"
        return where, "required key is missing"
    if kind == "extra_forbidden":
        if len(loc) == 1:
            return where, ("unknown top-level key (allowed: schema, schema_version, scenario, "
                           "provenance, filters)")
        if len(loc) == 3:
            return where, f"unknown metric name; known: {', '.join(REGISTRY)}"
        return where, "unknown key (allowed: value, uncertainty, n, unit, details)"
    if kind == "model_type" and len(loc) == 2:
        return where, "expected an object: metric -> entry"
    if kind == "model_type" and len(loc) == 3:
        return where, "expected an object {value, uncertainty, n, unit, details}"
    if kind == "greater_than_equal":
        return where, f"must be >= 0, got {err.get('input')!r}"
    table = _MESSAGES.get(kind, {})
    template = table.get(loc[-1] if loc else "")
    if template is not None:
        return where, template.format(input=err.get("input"))
    return where, err["msg"]


def _validate(data: Any, src: str) -> None:
    """Validate ``metrics.json`` content with :class:`MetricsFile`; the first problem is
    raised as :class:`MetricsFileError` naming ``src`` and the dotted field."""
    try:
        MetricsFile.model_validate(data)
    except ValidationError as exc:
        field_path, message = _explain_error(exc.errors()[0])
        raise MetricsFileError(src, field_path, message) from None


def metrics_json_schema() -> dict[str, Any]:
    """JSON Schema of ``metrics.json`` version :data:`SCHEMA_VERSION`, generated from
    :class:`MetricsFile` (the model :func:`read_metrics` validates with)."""
    schema = MetricsFile.model_json_schema(by_alias=True)
    schema["properties"]["filters"]["additionalProperties"] = False  # upper-case names only
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
