"""The evaluation of a coronagraphy run: companions, contrast and alignment from
calwebb_coron3's products against the simulator's truth.

Companions (each science exposure's ``_psfsub``, integrations averaged, and the ``_i2d``):
the position is a 2-D Gaussian centroid in a 7 x 7 px box around the true pixel (the
i2d's through its WCS); the flux is the sum in a 4 px aperture (Jy, from MJy/sr and
PIXAR_SR) over the injected flux x the mask's transmission x the aperture's encircled
energy, this taken from the very occulted PSF the simulator used (the kit's PSF cache)
so 1.0 is perfect recovery; the S/N is the aperture sum (diameter one FWHM) over the
standard deviation of the same apertures around the ring at that separation.

Contrast: the 5-sigma curve with Mawet et al. (2014)'s correction
(:func:`simval.metrics.contrast.contrast_curve`) of each psfsub and of the unsubtracted
``_calints`` (companions masked; EE of a one-FWHM aperture from an off-axis PSF at 2"),
their ratio the KLIP gain.

Disk (a scenario with ``extended_emission``): the disk's surface brightness summed in each
psfsub over the simulator's noiseless disk on the same pixels, where the disk is bright
(above 20 % of its peak), outside 0.8" and away from the companions: 1 if KLIP keeps the
disk, below 1 for its over-subtraction.

Alignment: the shift align_refs applied to each reference frame of the first science
integration (fitted from ``_psfstack`` to ``_psfalign``,
:func:`simval.metrics.coron_alignment.applied_shifts`) against the dither truth: the
science star's pixel minus the reference star's.

Units: mas, px, Jy, flux ratios.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simval.atomic import atomic_path
from simval.instruments.nircam_coron import LW_SCALE_ARCSEC, get_mask
from simval.kit.coron_psf import CoronOptics, cached_psf
from simval.metrics.contrast import contrast_curve, ring_sums
from simval.metrics.coron_alignment import applied_shifts
from simval.metrics_schema import Measurement, MetricsDocument, write_metrics

__all__ = ["CONTRAST_SEPARATIONS_ARCSEC", "CoronEvaluation", "evaluate_coron",
           "write_coron_evaluation"]

#: Separations of the contrast metrics, arcsec -> metric name.
CONTRAST_SEPARATIONS_ARCSEC = {0.5: "contrast_0p5_arcsec", 1.0: "contrast_1_arcsec",
                               2.0: "contrast_2_arcsec", 4.0: "contrast_4_arcsec"}
#: Radius of the companion flux aperture, px.
APERTURE_PX = 4.0
#: The disk metric's pixels: where the noiseless disk exceeds this fraction of its peak...
DISK_LEVEL = 0.2
#: ... outside this radius from the star, arcsec (the mask's edge).
DISK_MIN_ARCSEC = 0.8
#: Offset of the off-axis PSF whose encircled energy normalises the contrast, arcsec.
EE_OFFSET_ARCSEC = (2.0, 0.0)


@dataclass
class CoronEvaluation:
    """What :func:`evaluate_coron` measured: the metrics and their tables (rows as dicts)."""

    band: str
    product: str
    measurements: dict[str, Measurement]
    companions: list[dict[str, Any]] = field(default_factory=list)
    contrast: list[dict[str, Any]] = field(default_factory=list)
    alignment: list[dict[str, Any]] = field(default_factory=list)
    disk: list[dict[str, Any]] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        return {"band": self.band, "n_companions": len(self.companions),
                "n_contrast_rows": len(self.contrast),
                "n_alignment_rows": len(self.alignment),
                "values": {k: m.value for k, m in self.measurements.items()}}


def _psf_flux(optics, offset: tuple[float, float], radius_px: float, cache: str) -> float:
    """Fraction of a unit source at ``offset`` (arcsec) in a ``radius_px`` aperture on its
    position, from the occulted PSF (Lyot stop and mask included)."""
    from photutils.aperture import CircularAperture, aperture_photometry


    psf = cached_psf(optics, offset, cache)[0]
    os_ = optics.oversample
    c = (psf.shape[0] - 1) / 2.0
    xy = (c + offset[0] / LW_SCALE_ARCSEC * os_, c + offset[1] / LW_SCALE_ARCSEC * os_)
    ap = CircularAperture(xy, r=radius_px * os_)
    return float(aperture_photometry(psf, ap)["aperture_sum"][0])


def _mean_image(path: Path) -> tuple[np.ndarray, float]:
    """The SCI data averaged over integrations (MJy/sr) and PIXAR_SR."""
    from astropy.io import fits

    with fits.open(path) as h:
        data = np.asarray(h["SCI"].data, float)
        pixar = float(h["SCI"].header.get("PIXAR_SR") or h[0].header.get("PIXAR_SR"))
    if data.ndim == 3:
        with np.errstate(all="ignore"):
            data = np.nanmean(data, axis=0)
    return data, pixar


def _centroid(img: np.ndarray, x: float, y: float) -> tuple[float, float]:
    from photutils.centroids import centroid_2dg

    ix, iy = round(x), round(y)
    box = img[iy - 3:iy + 4, ix - 3:ix + 4]
    if box.shape != (7, 7) or not np.all(np.isfinite(box)):
        return np.nan, np.nan
    cx, cy = centroid_2dg(box - np.min(box))
    return ix - 3 + float(cx), iy - 3 + float(cy)


def _companion_row(img, pixar, x, y, expected_jy, scale_mas, others, centre, fwhm):
    """Position error, flux ratio and S/N of one companion on ``img``."""
    from photutils.aperture import CircularAperture, aperture_photometry


    jy = img * pixar * 1e6
    cx, cy = _centroid(jy, x, y)
    flux = float(aperture_photometry(np.nan_to_num(jy), CircularAperture(
        (x, y), r=APERTURE_PX * 63.0 / scale_mas))["aperture_sum"][0])
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    bad = ~np.isfinite(jy)
    for ox, oy in [(x, y), *others]:  # every companion, this one too, out of the noise
        bad |= np.hypot(xx - ox, yy - oy) < 2.0 * fwhm
    sep = float(np.hypot(x - centre[0], y - centre[1]))
    sums = ring_sums(np.where(bad, 0.0, jy), bad, centre, sep, fwhm)
    own = float(aperture_photometry(np.nan_to_num(jy), CircularAperture(
        (x, y), r=fwhm / 2.0))["aperture_sum"][0])
    snr = (own - float(np.mean(sums))) / float(np.std(sums, ddof=1)) \
        if sums is not None and sums.size >= 3 else np.nan
    return {"x_true": x, "y_true": y, "x": cx, "y": cy,
            "position_error_mas": float(np.hypot(cx - x, cy - y)) * scale_mas,
            "flux_jy": flux, "expected_jy": expected_jy, "flux_ratio": flux / expected_jy,
            "snr": snr}


def evaluate_coron(inputs: dict[str, Path], p: dict[str, Any]) -> CoronEvaluation:
    """Measure one coron3 product (module docstring). ``inputs``: ``truth:<base>``,
    ``calints:<base>``, ``psfsub:<base>``, ``psfalign:<base>``, ``psfstack``, ``i2d``;
    ``p``: ``product``, ``band``, ``mask``, ``roles`` (base -> science|psf), ``optics``
    (the target's), ``psf_cache``, ``lyot_throughput``."""
    from astropy.table import Table


    mask = get_mask(p["mask"])
    optics = CoronOptics.from_params(p["optics"])
    lyot = float(p["lyot_throughput"])
    cache = p["psf_cache"]
    scale_mas = LW_SCALE_ARCSEC * 1000.0
    fwhm = optics.fwhm_px
    truths = {b: Table.read(inputs[f"truth:{b}"], format="ascii.ecsv") for b in p["roles"]}
    science = [b for b, r in p["roles"].items() if r == "science"]
    refs = [b for b, r in p["roles"].items() if r == "psf"]
    ee_fwhm = _psf_flux(optics, EE_OFFSET_ARCSEC, fwhm / 2.0, cache) / lyot / float(
        mask.intensity(float(np.hypot(*EE_OFFSET_ARCSEC))))
    seps_arcsec = np.array(sorted(CONTRAST_SEPARATIONS_ARCSEC))
    companions: list[dict[str, Any]] = []
    contrast_rows: list[dict[str, Any]] = []
    align_rows: list[dict[str, Any]] = []
    disk_rows: list[dict[str, Any]] = []
    for base in science:
        truth = truths[base]
        star = truth[truth["kind"] == "star"][0]
        comps = truth[truth["kind"] == "companion"]
        centre = (float(star["x"]), float(star["y"]))
        img, pixar = _mean_image(inputs[f"psfsub:{base}"])
        positions = [(float(c["x"]), float(c["y"])) for c in comps]
        for k, c in enumerate(comps):
            offset = (float(c["offset_x"]), float(c["offset_y"]))
            expected = float(c["flux_jy"]) * _psf_flux(optics, offset, APERTURE_PX, cache) / lyot
            others = [q for j, q in enumerate(positions) if j != k]
            row = _companion_row(img, pixar, float(c["x"]), float(c["y"]), expected,
                                 scale_mas, others, centre, fwhm)
            companions.append({"product": "psfsub", "exposure": base, "companion": k + 1,
                               "separation_arcsec": float(np.hypot(*offset)),
                               "contrast": float(c["flux_jy"] / star["flux_jy"]), **row})
        yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
        masked = np.zeros(img.shape, bool)
        for x, y in positions:
            masked |= np.hypot(xx - x, yy - y) < APERTURE_PX

        def curve(image, pix, centre=centre, masked=masked, star_jy=float(star["flux_jy"])):
            return contrast_curve(image * pix * 1e6, centre, fwhm, star_flux=star_jy,
                                  ee=ee_fwhm,
                                  transmission=lambda r: mask.intensity(r * LW_SCALE_ARCSEC),
                                  separations_px=seps_arcsec / LW_SCALE_ARCSEC, mask=masked)

        sub = curve(img, pixar)
        raw = curve(*_mean_image(inputs[f"calints:{base}"]))
        for i, s in enumerate(seps_arcsec):
            contrast_rows.append({"exposure": base, "separation_arcsec": float(s),
                                  "contrast": float(sub.contrast[i]),
                                  "contrast_gaussian": float(sub.contrast_gaussian[i]),
                                  "contrast_raw": float(raw.contrast[i]),
                                  "klip_gain": float(raw.contrast[i] / sub.contrast[i]),
                                  "n_apertures": int(sub.n_apertures[i])})
        align_rows += _alignment_rows(inputs, base, star, refs, truths)
        if f"disk:{base}" in inputs:
            disk_rows.append(_disk_row(inputs, base, img, centre, positions))
    ev = CoronEvaluation(p["band"], p["product"], {}, companions, contrast_rows, align_rows,
                         disk_rows)
    companions += _i2d_companions(inputs["i2d"], truths, science, companions, fwhm)
    ev.measurements = _measurements(ev)
    return ev


def _disk_row(inputs, base, img, centre, positions) -> dict[str, Any]:
    """The disk's surface brightness in a psfsub (MJy/sr, integrations averaged) over the
    simulator's noiseless disk on the same pixels (its DN/s x the psfsub's PHOTMJSR), where
    the disk is above :data:`DISK_LEVEL` of its peak, outside :data:`DISK_MIN_ARCSEC` and
    away from the companions."""
    from astropy.io import fits

    with fits.open(inputs[f"psfsub:{base}"]) as h:
        photmjsr = float(h["SCI"].header["PHOTMJSR"])
    truth = np.asarray(fits.getdata(inputs[f"disk:{base}"], "SCI"), float) * photmjsr
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    r = np.hypot(xx - centre[0], yy - centre[1]) * LW_SCALE_ARCSEC
    use = (truth > DISK_LEVEL * truth.max()) & (r > DISK_MIN_ARCSEC) & np.isfinite(img)
    for x, y in positions:
        use &= np.hypot(xx - x, yy - y) >= 2.0 * APERTURE_PX
    ratio = float(img[use].sum() / truth[use].sum()) if use.any() else np.nan
    return {"exposure": base, "pixels": int(use.sum()), "disk_flux_ratio": ratio,
            "truth_mjysr_sum": float(truth[use].sum()), "psfsub_mjysr_sum": float(img[use].sum())}


def _alignment_rows(inputs, base, star, refs, truths) -> list[dict[str, Any]]:
    from astropy.io import fits


    stack = np.asarray(fits.getdata(inputs["psfstack"], "SCI"), float)
    aligned = np.asarray(fits.getdata(inputs[f"psfalign:{base}"], "SCI"), float)
    aligned = aligned[0] if aligned.ndim == 4 else aligned
    nints = stack.shape[0] // max(len(refs), 1)
    expected = []
    for r in refs:
        rs = truths[r][truths[r]["kind"] == "star"][0]
        expected += [(float(star["x"] - rs["x"]), float(star["y"] - rs["y"]))] * nints
    shifts = applied_shifts(stack, aligned, expected=np.array(expected))
    rows = []
    for k in range(len(expected)):
        (ax, ay), (ex, ey) = shifts.applied[k], shifts.expected[k]
        rows.append({"exposure": base, "reference": refs[k // nints], "integration": k % nints + 1,
                     "applied_dx_px": float(ax), "applied_dy_px": float(ay),
                     "expected_dx_px": float(ex), "expected_dy_px": float(ey),
                     "error_mas": float(np.hypot(ax - ex, ay - ey)) * LW_SCALE_ARCSEC * 1e3})
    return rows


def _i2d_companions(i2d: Path, truths, science, psfsub_rows, fwhm_px: float
                    ) -> list[dict[str, Any]]:
    """Each companion in the resampled product: true sky position through the i2d's WCS,
    expected flux the mean of its psfsub expectations (the rolls')."""
    from stdatamodels.jwst import datamodels

    with datamodels.open(str(i2d)) as m:
        img = np.asarray(m.data, float)
        pixar = float(m.meta.photometry.pixelarea_steradians)
        wcs = m.meta.wcs
        scale_mas = float(np.sqrt(pixar) * 206264.806e3)
        first = truths[science[0]]
        star = first[first["kind"] == "star"][0]
        comps = first[first["kind"] == "companion"]
        sx, sy = wcs.invert(float(star["ra"]), float(star["dec"]))
        xy = [wcs.invert(float(c["ra"]), float(c["dec"])) for c in comps]
    i2d_fwhm = fwhm_px * LW_SCALE_ARCSEC * 1000.0 / scale_mas  # in the i2d's pixels
    rows = []
    for k, (c, (x, y)) in enumerate(zip(comps, xy, strict=True)):
        mine = [r for r in psfsub_rows if r["companion"] == k + 1]
        expected = float(np.mean([r["expected_jy"] for r in mine]))
        others = [q for j, q in enumerate(xy) if j != k]
        row = _companion_row(img, pixar, float(x), float(y), expected, scale_mas, others,
                             (float(sx), float(sy)), i2d_fwhm)
        rows.append({"product": "i2d", "exposure": "", "companion": k + 1,
                     "separation_arcsec": mine[0]["separation_arcsec"],
                     "contrast": float(c["flux_jy"] / star["flux_jy"]), **row})
    return rows


def _worst(values: list[float], target: float) -> float:
    ok = [v for v in values if np.isfinite(v)]
    return max(ok, key=lambda v: abs(v - target)) if ok else np.nan


def _measurements(ev: CoronEvaluation) -> dict[str, Measurement]:
    m: dict[str, Measurement] = {}
    for product, suffix in (("psfsub", ""), ("i2d", "_i2d")):
        rows = [r for r in ev.companions if r["product"] == product]
        details = {"rows": [{k: r[k] for k in ("exposure", "companion", "separation_arcsec",
                                               "contrast", "flux_ratio",
                                               "position_error_mas", "snr")} for r in rows]}
        flux_name = "companion_flux_ratio_worst" if not suffix else \
            "companion_flux_ratio_i2d_worst"
        pos_name = "companion_position_error_max_mas" if not suffix else \
            "companion_position_error_i2d_max_mas"
        errors = [r["position_error_mas"] for r in rows if np.isfinite(r["position_error_mas"])]
        m[flux_name] = Measurement.of(flux_name, _worst([r["flux_ratio"] for r in rows], 1.0),
                                      n=len(rows), details=details)
        m[pos_name] = Measurement.of(pos_name, max(errors) if errors else np.nan,
                                     n=len(errors), details=details)
    psfsub = [r for r in ev.companions if r["product"] == "psfsub"]
    snrs = [r["snr"] for r in psfsub if np.isfinite(r["snr"])]
    m["companion_snr_min"] = Measurement.of("companion_snr_min", min(snrs) if snrs else np.nan,
                                            n=len(snrs))
    for sep, name in CONTRAST_SEPARATIONS_ARCSEC.items():
        rows = [r for r in ev.contrast if r["separation_arcsec"] == sep]
        vals = [r["contrast"] for r in rows if np.isfinite(r["contrast"])]
        m[name] = Measurement.of(name, max(vals) if vals else np.nan, n=len(vals), details={
            "per_exposure": {r["exposure"]: r["contrast"] for r in rows},
            "raw": {r["exposure"]: r["contrast_raw"] for r in rows}})
    gains = [r["klip_gain"] for r in ev.contrast
             if r["separation_arcsec"] == 1.0 and np.isfinite(r["klip_gain"])]
    m["klip_gain_1_arcsec"] = Measurement.of("klip_gain_1_arcsec",
                                             float(np.median(gains)) if gains else np.nan,
                                             n=len(gains))
    if ev.disk:
        ratios = [r["disk_flux_ratio"] for r in ev.disk if np.isfinite(r["disk_flux_ratio"])]
        m["disk_flux_ratio"] = Measurement.of(
            "disk_flux_ratio", float(np.mean(ratios)) if ratios else np.nan, n=len(ratios),
            details={"per_exposure": {r["exposure"]: r["disk_flux_ratio"] for r in ev.disk},
                     "pixels": {r["exposure"]: r["pixels"] for r in ev.disk}})
    rows = ev.alignment
    if rows:
        err = np.array([r["error_mas"] for r in rows])
        applied = np.hypot([r["applied_dx_px"] for r in rows], [r["applied_dy_px"] for r in rows])
        wanted = np.hypot([r["expected_dx_px"] for r in rows],
                          [r["expected_dy_px"] for r in rows])
        mas = 63.0
        m["align_refs_error_rms_mas"] = Measurement.of(
            "align_refs_error_rms_mas", float(np.sqrt(np.mean(err**2))), n=len(rows))
        m["align_refs_applied_rms_mas"] = Measurement.of(
            "align_refs_applied_rms_mas", float(np.sqrt(np.mean(applied**2))) * mas,
            n=len(rows))
        m["align_refs_expected_rms_mas"] = Measurement.of(
            "align_refs_expected_rms_mas", float(np.sqrt(np.mean(wanted**2))) * mas,
            n=len(rows))
    return m


def write_coron_evaluation(ev: CoronEvaluation, layout, p: dict[str, Any]) -> dict[str, Path]:
    """``evaluation/<product>_metrics.json`` and the tables ``_companions.ecsv``,
    ``_contrast.ecsv``, ``_alignment.ecsv``."""
    from astropy.table import Table


    out: dict[str, Path] = {}
    for kind, rows in (("companions", ev.companions), ("contrast", ev.contrast),
                       ("alignment", ev.alignment), ("disk", ev.disk)):
        if kind == "disk" and not rows:
            continue
        path = layout.evaluation_table(ev.product, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            Table(rows=rows).write(tmp, format="ascii.ecsv") if rows else \
                Table().write(tmp, format="ascii.ecsv")
        out[kind] = path
    doc = MetricsDocument(p.get("scenario_name", "-"), "-")
    doc.add(ev.band, ev.measurements)
    doc.provenance = {"filters": {ev.band: {
        "product": ev.product, "mode": "coronagraphy",
        "tables": {k: layout.rel(v) for k, v in out.items()}}}}
    out["metrics"] = write_metrics(layout.product_metrics(ev.product), doc)
    return out
