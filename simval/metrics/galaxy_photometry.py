"""Photometry like for like: the pipeline's footprints and apertures on the truth mosaic.

``phot_bias_galaxy_mag`` compares the catalog's isophotal flux with the total true flux:
it mixes calibration with the catalog's definition. Per matched source, in magnitudes
(**positive = measured fainter**), the isophotal Δm splits exactly into four terms

    isophotal_abmag - mag_true_ab = calibration + segment edge + catalog sky + isophotal loss

measured in the source's segment of the pipeline's segmentation map (``_segm.fits``,
labels = the catalog's ``label``) on the mosaic and on the noiseless truth mosaic
(:mod:`simval.truth.mosaic`: MIRAGE's seed images drizzled on the same grid, MJy/sr,
holding the injected sky). With ``D`` = ``mosaic - truth - delta`` (``delta`` the
sigma-clipped median of ``mosaic - truth`` over valid source-free pixels: the sky the
mosaic keeps relative to the truth) and ``T`` = ``truth - sky_truth`` (the injected sky):

* **calibration** ``-2.5 log10(1 + sum D / sum T)`` over the segment's *interior* (the
  segment eroded by ``edge_pix`` = 2 pixels). Pixel by pixel over the same pixels, so
  neither the sky level, nor faint neighbours, nor the light the segment leaves out
  enter: a perfect instrument reads 0 (to the noise), a flat or photom error of x1.03
  reads -0.032 mag (``phot_calib_bias_<galaxy|star>_mag``, ``phot_calib_nmad_galaxy_mag``);
* **segment edge**: the same over the whole segment minus the interior's. The segment is
  drawn on the noisy mosaic, so its edge pixels were chosen where the noise was high: the
  whole-segment sum of ``D`` is biased bright by an amount that scales as 1/(S/N) (on a
  full-frame F444W mosaic: -0.021 mag at S/N 20-40, -0.002 at S/N > 300; -0.0008 in
  the interior). A property of isophotal photometry on noisy data, not calibration
  (``phot_segment_edge_galaxy_mag``; negative = measured brighter);
* **catalog sky** ``-2.5 log10(isophotal_flux / F_mosaic)``, ``F_mosaic`` = sum over the
  segment of ``T + D``: the source catalog subtracts its own background (a 2-D
  sigma-clipped median of the noisy mosaic, which faint undetected sources push up) times
  the segment's area (``phot_catalog_sky_galaxy_mag``; positive = the catalog removed
  more sky than the mosaic holds);
* **isophotal loss** ``-2.5 log10(F_truth / F_total)``, ``F_truth`` = sum over the
  segment of ``T``: the light of the source outside its segment, the catalog's definition
  (``phot_iso_loss_galaxy_mag``, over sources without a brighter neighbour; information,
  no threshold by default).

**Apertures** (``phot_calib_bias_aper_<galaxy|star>_mag``): the catalog's largest
circular aperture (``aper<EE>_flux``, radius and background annulus from the catalog's
``aperture_params``) against the same measurement of the truth mosaic at the catalog's
centroid, as jwst's ``source_catalog`` does it: the exact-overlap sum in the circle minus
the area times the 3-sigma clipped median of the annulus (``photutils.aperture``). The
clipped median is affine-invariant, so a flux scale reads its own magnitude exactly;
``aper_total_flux`` is the same aperture times an aperture correction, with the same
ratio. Faint sources read slightly faint: the annulus median of the noisy mosaic sits
higher than the noiseless truth's (the skew of faint light under noise).

Sample: matched truth sources of the type, in the footprint, whose counterpart has
``isophotal_flux / isophotal_flux_err >= snr_min`` (20) and a segment in the map (and,
for the calibration term, a non-empty interior). Statistics as
:mod:`simval.metrics.photometry`: the median (uncertainty ``sqrt(pi/2) NMAD / sqrt(n)``)
and the NMAD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simval.constants import AB_FLUX_JY, JY_PER_MJY
from simval.match import column
from simval.metrics.background import sky_level, usable_pixels
from simval.metrics.photometry import MEDIAN_ERR_FACTOR, NMAD_ERR_FACTOR, nmad
from simval.metrics_schema import Measurement

__all__ = [
    "EDGE_PIX",
    "SNR_MIN",
    "CatalogAperture",
    "FootprintPhotometry",
    "FootprintSources",
    "SampleStats",
    "catalog_aperture",
    "footprint_photometry",
    "footprint_sources",
    "segment_interior",
]

#: Isophotal S/N of the counterparts in the samples.
SNR_MIN = 20.0
#: Most source-free pixels (evenly strided) the mosaic - truth sky offset is computed from.
MAX_SKY_PIXELS = 2_000_000
#: Pixels the calibration term leaves out at each segment's edge (the noise the detection
#: threshold selected: a 2-pixel FWHM smoothing kernel correlates it over ~2 pixels).
EDGE_PIX = 2


@dataclass(frozen=True)
class CatalogAperture:
    """The catalog's largest circular aperture: flux ``column`` (Jy), ``radius_pix`` and
    the background annulus radii (pixels), from ``source_catalog``'s ``aperture_params``."""

    column: str
    radius_pix: float
    annulus_inner_pix: float
    annulus_outer_pix: float


def catalog_aperture(meta: dict[str, Any] | None) -> CatalogAperture | None:
    """The largest aperture of a ``_cat.ecsv``'s meta (None without ``aperture_params``
    radii, encircled energies and annulus)."""
    params = (meta or {}).get("aperture_params") or {}
    radii, ee = params.get("aperture_radii"), params.get("aperture_ee")
    inner = params.get("bkg_aperture_inner_radius")
    outer = params.get("bkg_aperture_outer_radius")
    if radii is None or ee is None or inner is None or outer is None or not len(radii):
        return None
    return CatalogAperture(f"aper{int(np.asarray(ee)[-1])}_flux",
                           float(np.asarray(radii)[-1]), float(inner), float(outer))


@dataclass(frozen=True)
class FootprintSources:
    """The matched sources the footprint photometry measures, one entry each.

    ``label`` (segmentation label), ``kind`` (star/galaxy), ``flux_true_jy`` (total, Jy),
    ``isolated`` (no brighter neighbour), ``flux_jy``/``flux_err_jy`` (the catalog's
    isophotal flux), ``x``/``y`` (the catalog's centroid, 0-based pixels), ``aper_flux_jy``
    (the catalog's :class:`CatalogAperture` flux; NaN without it), ``truth_row``.
    """

    label: NDArray[np.int64]
    kind: NDArray[np.str_]
    flux_true_jy: NDArray[np.float64]
    isolated: NDArray[np.bool_]
    flux_jy: NDArray[np.float64]
    flux_err_jy: NDArray[np.float64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    aper_flux_jy: NDArray[np.float64]
    truth_row: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.label.size)


def footprint_sources(match: Any, catalog: Any,
                      aperture: CatalogAperture | None = None) -> FootprintSources:
    """The matched, in-footprint truth sources of a match table
    (:func:`simval.match_table.build_match_table`) with their counterparts' isophotal and
    aperture fluxes and centroids from the source ``catalog``."""
    t_row = column(match, "truth_row", np.int64)
    m_row = column(match, "measured_row", np.int64)
    keep = (t_row >= 0) & (m_row >= 0) & column(match, "in_footprint", bool)
    rows = m_row[keep]
    names = catalog.colnames

    def measured(name: str) -> NDArray[np.float64]:
        if name not in names:
            return np.full(rows.size, np.nan)
        return column(catalog, name)[rows]

    mag = column(match, "mag_true_ab")[keep]
    return FootprintSources(
        label=column(catalog, "label", np.int64)[rows],
        kind=np.char.lower(np.asarray(match["type"]).astype(str))[keep],
        flux_true_jy=AB_FLUX_JY * 10 ** (-0.4 * mag),
        isolated=column(match, "resolvable", bool)[keep],
        flux_jy=measured("isophotal_flux"), flux_err_jy=measured("isophotal_flux_err"),
        x=measured("xcentroid"), y=measured("ycentroid"),
        aper_flux_jy=measured(aperture.column) if aperture is not None else
        np.full(rows.size, np.nan), truth_row=t_row[keep])


@dataclass(frozen=True)
class SampleStats:
    """Median and NMAD of one sample's Δm (mag), with uncertainties; NaN if empty."""

    median: float
    median_err: float
    nmad: float
    nmad_err: float
    n: int

    @classmethod
    def of(cls, dmag: ArrayLike) -> SampleStats:
        d = np.asarray(dmag, np.float64)
        d = d[np.isfinite(d)]
        n = int(d.size)
        if n == 0:
            nan = float("nan")
            return cls(nan, nan, nan, nan, 0)
        s = nmad(d)
        return cls(float(np.median(d)), MEDIAN_ERR_FACTOR * s / math.sqrt(n), s,
                   NMAD_ERR_FACTOR * s / math.sqrt(n), n)


def _dmag(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = num / den
        return np.where((r > 0) & (den > 0), -2.5 * np.log10(np.where(r > 0, r, 1.0)), np.nan)


@dataclass(frozen=True)
class FootprintPhotometry:
    """Per-source Δm terms (mag, NaN where not measured) and the samples.

    ``calib`` (segment interior), ``edge`` (whole segment minus interior), ``catalog_sky``,
    ``iso_loss`` (isophotal footprint) and ``calib_aper`` (the catalog's aperture), aligned
    with ``sources``; ``in_sample`` = S/N cut and a segment; ``delta_mjysr`` the mosaic -
    truth sky; ``truth_sky_mjysr`` the truth's sky; ``edge_pix`` the erosion.
    """

    sources: FootprintSources
    in_sample: NDArray[np.bool_]
    calib: NDArray[np.float64]
    edge: NDArray[np.float64]
    catalog_sky: NDArray[np.float64]
    iso_loss: NDArray[np.float64]
    calib_aper: NDArray[np.float64]
    flux_truth_jy: NDArray[np.float64]
    flux_mosaic_jy: NDArray[np.float64]
    delta_mjysr: float
    truth_sky_mjysr: float
    snr_min: float
    aperture: CatalogAperture | None
    edge_pix: int = EDGE_PIX

    def sample(self, kind: str) -> NDArray[np.bool_]:
        return self.in_sample & (self.sources.kind == kind)

    def stats(self, term: str, kind: str, *, isolated: bool = False) -> SampleStats:
        sel = self.sample(kind) & (self.sources.isolated if isolated else True)
        return SampleStats.of(getattr(self, term)[sel])

    def details(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "snr_min": self.snr_min, "truth_sky_mjysr": self.truth_sky_mjysr,
            "mosaic_minus_truth_sky_mjysr": self.delta_mjysr, "edge_pix": self.edge_pix,
            "sample": f"matched in-footprint sources, isophotal S/N >= {self.snr_min:g}, "
                      "with a segment"}
        if self.aperture is not None:
            d["aperture"] = {"column": self.aperture.column,
                             "radius_pix": self.aperture.radius_pix,
                             "annulus_pix": [self.aperture.annulus_inner_pix,
                                             self.aperture.annulus_outer_pix]}
        return d

    @property
    def total(self) -> NDArray[np.float64]:
        """Per source: the catalog's isophotal - true magnitude (the four terms' sum)."""
        return _dmag(self.sources.flux_jy, self.sources.flux_true_jy)

    def decomposition(self, kind: str = "galaxy") -> dict[str, float]:
        """Medians over the sample of the total isophotal Δm and of its four terms."""
        sel = self.sample(kind)
        return {name: float(np.nanmedian(v[sel])) if np.isfinite(v[sel]).any()
                else float("nan")
                for name, v in (("total_mag", self.total), ("calibration_mag", self.calib),
                                ("segment_edge_mag", self.edge),
                                ("catalog_sky_mag", self.catalog_sky),
                                ("iso_loss_mag", self.iso_loss))}

    def measurements(self) -> dict[str, Measurement]:
        """The ``footprint_photometry`` group of the registry."""
        base = self.details()
        out: dict[str, Measurement] = {}

        def put(name: str, st: SampleStats, value: str, extra: dict[str, Any]) -> None:
            v, e = (st.median, st.median_err) if value == "median" else (st.nmad, st.nmad_err)
            out[name] = Measurement.of(name, v, e, st.n, {**base, **extra})

        for kind in ("galaxy", "star"):
            dec = {"decomposition": self.decomposition(kind)}
            put(f"phot_calib_bias_{kind}_mag", self.stats("calib", kind), "median",
                {**dec, "nmad_mag": self.stats("calib", kind).nmad})
            put(f"phot_calib_bias_aper_{kind}_mag", self.stats("calib_aper", kind), "median",
                {"nmad_mag": self.stats("calib_aper", kind).nmad})
        put("phot_calib_nmad_galaxy_mag", self.stats("calib", "galaxy"), "nmad", {})
        put("phot_segment_edge_galaxy_mag", self.stats("edge", "galaxy"), "median",
            {"nmad_mag": self.stats("edge", "galaxy").nmad})
        put("phot_catalog_sky_galaxy_mag", self.stats("catalog_sky", "galaxy"), "median",
            {"nmad_mag": self.stats("catalog_sky", "galaxy").nmad})
        loss = self.stats("iso_loss", "galaxy", isolated=True)
        put("phot_iso_loss_galaxy_mag", loss, "median",
            {"nmad_mag": loss.nmad, "decomposition": self.decomposition("galaxy"),
             "isolated": "no brighter neighbour within the blending radius"})
        return out


def _segment_sums(image: NDArray[np.float64], segm: Any, labels: NDArray[np.int64]
                  ) -> NDArray[np.float64]:
    """Sum of ``image`` over each label's segment (photutils ``segment_flux``), non-finite
    pixels left out; image unit x pixels."""
    from photutils.segmentation import SourceCatalog

    if labels.size == 0:
        return np.zeros(0)
    cat = SourceCatalog(image, segm, mask=~np.isfinite(image), progress_bar=False)
    sub = cat.select_labels(labels)
    return np.atleast_1d(np.asarray(sub.segment_flux, np.float64))


def segment_interior(segmentation: ArrayLike, edge_pix: int = EDGE_PIX) -> NDArray[np.int32]:
    """The segmentation map with each segment eroded by ``edge_pix`` pixels: a pixel keeps
    its label when every pixel within ``edge_pix`` of it has the same label."""
    from photutils.utils import circular_footprint
    from scipy.ndimage import maximum_filter, minimum_filter

    seg = np.asarray(segmentation).astype(np.int32, copy=False)
    if edge_pix <= 0:
        return seg
    disk = circular_footprint(int(edge_pix))
    lo = minimum_filter(seg, footprint=disk, mode="constant", cval=0)
    hi = maximum_filter(seg, footprint=disk, mode="constant", cval=0)
    return np.where((lo == hi) & (seg > 0), seg, 0).astype(np.int32)


def _aperture_truth(image: NDArray[np.float64], x: NDArray[np.float64],
                    y: NDArray[np.float64], ap: CatalogAperture) -> NDArray[np.float64]:
    """``source_catalog``'s aperture flux measured on ``image`` (image unit x pixel): the
    circle's exact-overlap sum minus its area times the annulus' 3-sigma clipped median."""
    from astropy.stats import SigmaClip
    from photutils.aperture import (
        ApertureStats,
        CircularAnnulus,
        CircularAperture,
        aperture_photometry,
    )

    out = np.full(x.size, np.nan)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return out
    xy = np.column_stack([x[ok], y[ok]])
    circle = CircularAperture(xy, ap.radius_pix)
    annulus = CircularAnnulus(xy, ap.annulus_inner_pix, ap.annulus_outer_pix)
    sums = np.asarray(aperture_photometry(image, circle, method="exact")["aperture_sum"],
                      np.float64)
    bkg = np.atleast_1d(np.asarray(ApertureStats(image, annulus,
                                                 sigma_clip=SigmaClip(sigma=3.0)).median,
                                   np.float64))
    out[ok] = sums - bkg * circle.area
    return out


def footprint_photometry(data: ArrayLike, truth: ArrayLike, segmentation: ArrayLike,
                         sources: FootprintSources, *, truth_sky_mjysr: float,
                         pixar_sr: float, sky_mask: ArrayLike | None = None,
                         valid: ArrayLike | None = None,
                         aperture: CatalogAperture | None = None,
                         snr_min: float = SNR_MIN, edge_pix: int = EDGE_PIX
                         ) -> FootprintPhotometry:
    """Calibration, segment-edge, catalog-sky and isophotal-loss terms of each source
    (module docs).

    Parameters
    ----------
    data, truth : array_like
        The mosaic and the noiseless truth mosaic on the same grid, MJy/sr.
    segmentation : array_like of int
        The pipeline's segmentation map (labels = the catalog's ``label``).
    sources : FootprintSources
        The matched sources (:func:`footprint_sources`).
    truth_sky_mjysr : float
        The sky the truth mosaic holds (the injected sky), MJy/sr.
    pixar_sr : float
        Pixel solid angle (the i2d's PIXAR_SR), sr: MJy/sr x pixel -> Jy.
    sky_mask : array_like of bool, optional
        Sources (True) left out of the mosaic - truth sky offset.
    valid : array_like of bool, optional
        Usable pixels (e.g. WHT > 0).
    aperture : CatalogAperture, optional
        The catalog's aperture (:func:`catalog_aperture`); None: no aperture term.
    snr_min : float
        Isophotal S/N of the sample.
    edge_pix : int
        Erosion of the segments for the calibration term, pixels.

    Returns
    -------
    FootprintPhotometry
    """
    from photutils.segmentation import SegmentationImage

    img = np.asarray(data, np.float64)
    tru = np.asarray(truth, np.float64)
    seg = np.asarray(segmentation)
    if tru.shape != img.shape or seg.shape != img.shape:
        raise ValueError(f"shapes differ: mosaic {img.shape}, truth mosaic {tru.shape}, "
                         f"segmentation {seg.shape}")
    diff = img - tru
    idx = np.flatnonzero(usable_pixels(diff, valid, sky_mask))
    delta = sky_level(diff.ravel()[idx[::max(1, idx.size // MAX_SKY_PIXELS)]])[0]
    diff -= delta
    to_jy = JY_PER_MJY * float(pixar_sr)

    segm = SegmentationImage(seg.astype(np.int32, copy=False))
    have = np.isin(sources.label, segm.labels) if segm.n_labels else \
        np.zeros(len(sources), bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = sources.flux_jy / sources.flux_err_jy
    in_sample = have & np.isfinite(snr) & (snr >= snr_min)
    labels = np.unique(sources.label[in_sample])
    at = np.searchsorted(labels, sources.label[in_sample])
    n = len(sources)
    sums = {}
    for part, image in (("diff", diff), ("truth", tru - truth_sky_mjysr)):
        whole = np.full(n, np.nan)
        whole[in_sample] = _segment_sums(image, segm, labels)[at] * to_jy
        sums[part] = whole
    inner_map = segment_interior(segm.data, edge_pix)
    inner = SegmentationImage(inner_map) if inner_map.any() else None
    inner_labels = labels[np.isin(labels, inner.labels)] if inner is not None else labels[:0]
    for part, image in (("diff_in", diff), ("truth_in", tru - truth_sky_mjysr)):
        part_sums = np.full(n, np.nan)
        if inner_labels.size:
            got = dict(zip(inner_labels, _segment_sums(image, inner, inner_labels),
                           strict=True))
            part_sums[in_sample] = [got.get(k, np.nan) for k in sources.label[in_sample]]
        sums[part] = part_sums * to_jy
    del diff
    f_truth, f_mosaic = sums["truth"], sums["truth"] + sums["diff"]
    calib_whole = _dmag(f_mosaic, f_truth)
    calib = _dmag(sums["truth_in"] + sums["diff_in"], sums["truth_in"])
    calib_aper = np.full(n, np.nan)
    if aperture is not None and in_sample.any():
        truth_ap = _aperture_truth(tru, sources.x[in_sample], sources.y[in_sample], aperture)
        calib_aper[in_sample] = _dmag(sources.aper_flux_jy[in_sample], truth_ap * to_jy)
    return FootprintPhotometry(sources, in_sample, calib, calib_whole - calib,
                               _dmag(sources.flux_jy, f_mosaic),
                               _dmag(f_truth, sources.flux_true_jy), calib_aper, f_truth,
                               f_mosaic, float(delta), float(truth_sky_mjysr),
                               float(snr_min), aperture, int(edge_pix))
