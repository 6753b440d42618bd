"""Figures of ``compare.html``: the runs overlaid, in the report's style.

Every function takes plain arrays and returns a :class:`matplotlib.figure.Figure`
(object API, Agg canvas, the report's fonts via :func:`simval.report.plots._styled`);
:func:`simval.report.plots.png_data_uri` embeds them. One colour per run, in the order
given (A first, black).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from simval.metrics.completeness import completeness_curve, mag_bins
from simval.report.coron import contrast_curves_figure
from simval.report.plots import (
    _figure,
    _styled,
    block_reduce,
    diverging_map,
    finish_astrometry_axes,
    running_stats,
)

__all__ = ["RUN_COLOURS", "RunCurve", "astrometry_overlay", "completeness_overlay",
           "contrast_overlay", "delta_mag_overlay", "difference_figure", "flux_ratio_figure",
           "run_colour"]

RUN_COLOURS = ("#222222", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
               "#a6761d")


def run_colour(index: int) -> str:
    return RUN_COLOURS[index % len(RUN_COLOURS)]


@dataclass(frozen=True)
class RunCurve:
    """One run's matched sources of one filter, as arrays over its truth rows
    (in-footprint rows only)."""

    label: str
    true_mag: np.ndarray
    detected: np.ndarray
    kind: np.ndarray
    delta_mag: np.ndarray     # measured - true, NaN where not matched / not measured
    dra_mas: np.ndarray       # measured - truth, NaN where not matched
    ddec_mas: np.ndarray


@_styled
def completeness_overlay(curves: Sequence[RunCurve], *, band: str,
                         bin_width: float = 0.5) -> Figure:
    """Completeness vs true magnitude, one curve per run (68% Wilson intervals), on the
    same magnitude bins."""

    allmag = np.concatenate([c.true_mag for c in curves]) if curves else np.zeros(0)
    edges = mag_bins(allmag, bin_width)
    fig = _figure()
    ax = fig.add_subplot()
    n = len(curves)
    for i, c in enumerate(curves):
        cc = completeness_curve(c.true_mag, c.detected, bins=edges)
        ok = cc.n_true > 0
        dx = (i - (n - 1) / 2) * 0.04
        yerr = np.clip(np.vstack([cc.fraction - cc.lower, cc.upper - cc.fraction])[:, ok], 0, 1)
        ax.errorbar(cc.bin_centres[ok] + dx, cc.fraction[ok], yerr=yerr, fmt="o-", ms=3.5,
                    lw=1.1, capsize=2, color=run_colour(i),
                    label=f"{c.label} ({int(c.detected.sum())}/{c.detected.size})")
    for level in (0.5, 0.9):
        ax.axhline(level, color="0.6", lw=0.6, ls=":")
    ax.set_ylim(-0.03, 1.08)
    ax.set_xlabel("true magnitude (AB)")
    ax.set_ylabel("completeness (68% binomial interval)")
    ax.set_title(f"{band}: completeness, runs overlaid")
    ax.legend(loc="lower left")
    return fig


@_styled
def delta_mag_overlay(curves: Sequence[RunCurve], *, band: str) -> Figure:
    """Measured - true magnitude vs true magnitude: per run the points (faint), the
    running median (line) and ±NMAD (band), stars and galaxies in separate panels."""
    panels = [(t, k) for t, k in (("stars: aper_total_abmag", "star"),
                                  ("galaxies: isophotal_abmag", "galaxy"))
              if any(np.isfinite(c.delta_mag[c.kind == k]).any() for c in curves)]
    fig = _figure(5.6, 5.4 if len(panels) > 1 else 4.2)
    axes = fig.subplots(max(len(panels), 1), 1, sharex=True, squeeze=False)[:, 0]
    if not panels:
        axes[0].text(0.5, 0.5, "no matched source with a measured magnitude", ha="center",
                     va="center", transform=axes[0].transAxes)
    for ax, (title, kind) in zip(axes, panels, strict=False):
        spans = []
        for i, c in enumerate(curves):
            sel = (c.kind == kind) & np.isfinite(c.delta_mag)
            if not sel.any():
                continue
            x, y = c.true_mag[sel], c.delta_mag[sel]
            med = float(np.median(y))
            spans.append((med, 1.4826 * float(np.median(np.abs(y - med)))))
            ax.scatter(x, y, s=7, color=run_colour(i), alpha=0.35, lw=0)
            cx, cm, cs = running_stats(x, y)
            if cx.size:
                ax.plot(cx, cm, "o-", ms=3, color=run_colour(i), lw=1.5,
                        label=f"{c.label}: median {med:+.3f} mag")
                ax.fill_between(cx, cm - cs, cm + cs, color=run_colour(i), alpha=0.12, lw=0)
        if spans:
            centre = float(np.median([s[0] for s in spans]))
            half = float(np.clip(5 * max(s[1] for s in spans), 0.1, 1.5))
            ax.set_ylim(min(centre - half, -0.05), max(centre + half, 0.05))
        ax.axhline(0.0, color="0.5", lw=0.7)
        ax.set_ylabel("measured - true (mag)")
        ax.set_title(title, fontsize=8.5, loc="left")
        ax.legend(loc="best", fontsize=7)
    axes[-1].set_xlabel("true magnitude (AB)")
    fig.suptitle(f"{band}: measured - true per run (< 0: brighter; line: running median, "
                 "band: ±NMAD)", fontsize=8.5)
    return fig


@_styled
def astrometry_overlay(curves: Sequence[RunCurve], *, band: str,
                       radius_mas: float) -> Figure:
    """Astrometric residuals (measured - truth, mas) of matched stars, one colour per run,
    with each run's median (+) and 2-D RMS circle."""
    fig = _figure(4.9, 4.7)
    ax = fig.add_subplot()
    ax.axhline(0, color="0.75", lw=0.6)
    ax.axvline(0, color="0.75", lw=0.6)
    t = np.linspace(0, 2 * np.pi, 200)
    lim = 5.0
    for i, c in enumerate(curves):
        sel = (c.kind == "star") & np.isfinite(c.dra_mas) & np.isfinite(c.ddec_mas)
        if not sel.any():
            continue
        dx, dy = c.dra_mas[sel], c.ddec_mas[sel]
        rms = float(np.sqrt(np.mean(dx ** 2 + dy ** 2)))
        ax.scatter(dx, dy, s=11, color=run_colour(i), alpha=0.6, lw=0,
                   label=f"{c.label}: n={int(sel.sum())}, RMS {rms:.1f} mas")
        ax.plot(np.median(dx), np.median(dy), "+", color=run_colour(i), ms=11, mew=1.6)
        ax.plot(rms * np.cos(t), rms * np.sin(t), color=run_colour(i), lw=0.9)
        lim = max(lim, 1.2 * float(np.percentile(np.maximum(np.abs(dx), np.abs(dy)), 95)),
                  1.3 * rms)
    finish_astrometry_axes(ax, min(lim, 1.05 * radius_mas),
                           f"{band}: astrometric residuals of stars (+: median; circle: RMS)")
    return fig


@_styled
def flux_ratio_figure(mag_a: ArrayLike, ratio: ArrayLike, snr_a: ArrayLike, *, band: str,
                      pair: str, snr_min: float, median: float | None,
                      uncertainty: float | None, colour: str = RUN_COLOURS[1]) -> Figure:
    """Flux ratio B/A of the sources matched across the catalogs vs A's AB magnitude:
    filled = S/N > ``snr_min`` in A (the headline sample), open = fainter; running median
    (line) and ±NMAD (band) over all pairs; the headline median dashed."""
    x = np.asarray(mag_a, np.float64)
    y = np.asarray(ratio, np.float64)
    s = np.asarray(snr_a, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    with np.errstate(invalid="ignore"):
        hi = ok & (s > snr_min)
    fig = _figure(5.6, 4.0)
    ax = fig.add_subplot()
    ax.axhline(1.0, color="0.5", lw=0.7)
    ax.scatter(x[hi], y[hi], s=16, color=colour, lw=0, alpha=0.8,
               label=f"S/N > {snr_min:g} in A (n={int(hi.sum())})")
    lo = ok & ~hi
    ax.scatter(x[lo], y[lo], s=16, facecolors="none", edgecolors=colour, lw=0.7, alpha=0.7,
               label=f"fainter (n={int(lo.sum())})")
    cx, cm, cs = running_stats(x[ok], y[ok])
    if cx.size:
        ax.plot(cx, cm, "-", color="k", lw=1.3, label="running median")
        ax.fill_between(cx, cm - cs, cm + cs, color="k", alpha=0.1, lw=0)
    if median is not None:
        unc = f" ± {uncertainty:.2g}" if uncertainty is not None else ""
        ax.axhline(median, color=colour, lw=1.0, ls="--", label=f"median {median:.4f}{unc}")
    if hi.any():
        centre = float(np.median(y[hi]))
        spread = 1.4826 * float(np.median(np.abs(y[hi] - centre)))
        half = float(np.clip(6 * spread, 0.02, 0.5))
        ax.set_ylim(min(centre - half, 0.98), max(centre + half, 1.02))
    ax.set_xlabel("A's magnitude, -2.5 log10(flux / 3631 Jy) (AB)")
    ax.set_ylabel("flux ratio B / A")
    ax.set_title(f"{band}: {pair}, sources matched across the catalogs")
    ax.legend(loc="best", fontsize=7)
    return fig


@_styled
def difference_figure(difference: ArrayLike, *, band: str, pair: str,
                      max_pix: int = 420) -> Figure:
    """The difference image B - A (MJy/sr), block-averaged to at most ``max_pix`` a side,
    diverging colours centred on 0 (symmetric limits at the 99th percentile of |B - A|);
    grey = not valid in both."""
    img, block = block_reduce(difference, max_pix)
    fig, ax, _ = diverging_map(img, block, 99.0, "B - A (MJy/sr)")
    ax.set_xlabel("mosaic x (pixel)")
    ax.set_ylabel("mosaic y (pixel)")
    ax.set_title(f"{band}: {pair} pixel difference (red: B brighter)"
                 + (f"\n{block}x{block} block mean" if block > 1 else ""), fontsize=8.5)
    return fig


def contrast_overlay(curves: Sequence[tuple[str, ArrayLike, ArrayLike, ArrayLike]], *,
                     band: str) -> Figure:
    """Each run's 5-sigma contrast against separation (arcsec): (label, separations,
    contrast of the psfsubs, of the unsubtracted calints), one colour per run."""
    return contrast_curves_figure(curves, title=f"{band}: contrast curves",
                                  colours=[run_colour(i) for i in range(len(curves))])
