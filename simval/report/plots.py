"""Figures of the run report, drawn with matplotlib's object API (no pyplot, Agg canvas)
and encoded as small palette PNGs for ``data:`` URIs.

Every ``*_figure`` function takes plain arrays (the reading and matching happen in
:mod:`simval.report.html`) and returns a :class:`matplotlib.figure.Figure`. Units:
magnitudes AB, offsets in mas, surface brightness in MJy/sr, pixel positions 0-based.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from simval.metrics.completeness import completeness_curve, mag_bins

__all__ = [
    "DPI",
    "astrometry_figure",
    "background_figure",
    "block_reduce",
    "completeness_figure",
    "counts_figure",
    "delta_mag_figure",
    "diverging_map",
    "finish_astrometry_axes",
    "group_offsets_figure",
    "mosaic_figure",
    "png_data_uri",
    "running_stats",
    "smooth_nan",
    "sweep_figure",
]

#: Resolution of the embedded PNGs, dots per inch (a 5.6 x 4.2 in figure is 504 x 378 px).
DPI = 90
#: Colours: stars, galaxies, matched, missed, spurious (colour-blind-safe where it matters).
STAR, GALAXY = "#1f77b4", "#d95f02"
MATCHED, MISSED, SPURIOUS = "#1a9850", "#d73027", "#fd8d3c"
P = ParamSpec("P")
_FONT = {"font.size": 8.5, "axes.titlesize": 9.5, "axes.labelsize": 8.5,
         "legend.fontsize": 7.5, "xtick.labelsize": 7.5, "ytick.labelsize": 7.5}


def _styled(func: Callable[P, Figure]) -> Callable[P, Figure]:
    """Draw the figure under the report's font sizes (rcParams are read at draw calls)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        import matplotlib as mpl

        with mpl.rc_context(_FONT):
            return func(*args, **kwargs)

    return wrapper


def _figure(width_in: float = 5.6, height_in: float = 4.2) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_data_uri(fig: Figure, *, colors: int = 256) -> tuple[str, int, int]:
    """Encode a figure as a ``data:image/png;base64,...`` URI.

    The PNG is reduced to an adaptive (octree) palette of ``colors`` entries (plots have
    few colours; image panels use one 256-entry colormap anyway), which makes it 3-5 times
    smaller. No PNG text chunks are written (matplotlib's ``Software`` chunk would carry
    a URL).

    Returns
    -------
    uri : str
    width, height : int
        Pixel size of the PNG.
    """
    from PIL import Image

    raw = io.BytesIO()
    fig.savefig(raw, format="png", dpi=DPI, metadata={"Software": None})
    raw.seek(0)
    with Image.open(raw) as img:
        rgb = img.convert("RGB")
    pal = rgb.quantize(colors=colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    pal.save(out, format="PNG", optimize=True)
    uri = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")
    return uri, pal.width, pal.height


def block_reduce(image: ArrayLike, max_pix: int) -> tuple[NDArray[np.float64], int]:
    """Mean over ``f x f`` blocks (NaN ignored) so that the result is at most ``max_pix``
    on a side; returns ``(reduced, f)`` (``f = 1``: a float copy). Pixel ``(i, j)`` of the
    result covers input pixels ``f*i .. f*i + f - 1``; edges that do not fill a block are
    dropped (less than ``f`` pixels)."""
    img = np.asarray(image, np.float64)
    f = max(1, int(np.ceil(max(img.shape) / max_pix)))
    if f == 1:
        return img.copy(), 1
    ny, nx = img.shape[0] // f, img.shape[1] // f
    blocks = img[:ny * f, :nx * f].reshape(ny, f, nx, f)
    good = np.isfinite(blocks)
    total = np.where(good, blocks, 0.0).sum(axis=(1, 3))
    count = good.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan), f


def smooth_nan(image: ArrayLike, sigma_pix: float, min_weight: float = 0.2
               ) -> NDArray[np.float64]:
    """Gaussian smoothing that ignores NaN pixels (normalised convolution).

    A pixel's value is the Gaussian-weighted mean of its finite neighbours; it is NaN
    where the finite neighbours carry less than ``min_weight`` of the kernel.
    """
    from scipy.ndimage import gaussian_filter

    img = np.asarray(image, np.float64)
    good = np.isfinite(img)
    num = gaussian_filter(np.where(good, img, 0.0), sigma_pix, mode="constant")
    den = gaussian_filter(good.astype(np.float64), sigma_pix, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den >= min_weight, num / den, np.nan)


def running_stats(x: ArrayLike, y: ArrayLike, *, per_bin: int = 5, max_bins: int = 20
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Running median and NMAD of ``y`` along ``x`` in equal-count bins.

    The finite pairs are sorted by ``x`` and cut into ``min(max_bins, n // per_bin)``
    bins of equal count (at least one bin when n >= 3). Returns, per bin, the median
    ``x``, the median ``y`` and ``1.4826 * MAD(y)``; empty arrays for n < 3.
    """
    xs = np.asarray(x, np.float64)
    ys = np.asarray(y, np.float64)
    ok = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[ok], ys[ok]
    if xs.size < 3:
        empty = np.zeros(0)
        return empty, empty, empty
    order = np.argsort(xs, kind="stable")
    nb = int(np.clip(xs.size // per_bin, 1, max_bins))
    cx, cm, cs = [], [], []
    for idx in np.array_split(order, nb):
        v = ys[idx]
        med = float(np.median(v))
        cx.append(float(np.median(xs[idx])))
        cm.append(med)
        cs.append(1.4826 * float(np.median(np.abs(v - med))))
    return np.array(cx), np.array(cm), np.array(cs)


@_styled
def completeness_figure(true_mag: ArrayLike, detected: ArrayLike, kind: ArrayLike, *,
                        band: str, bin_width: float = 0.5, mag50: float | None = None,
                        mag90: float | None = None) -> Figure:
    """Completeness vs true AB magnitude with binomial (Wilson, 68%) intervals.

    Parameters
    ----------
    true_mag : array_like
        True AB magnitudes of the truth sources inside the footprint.
    detected : array_like of bool
        Whether each has a measured counterpart.
    kind : array_like of str
        ``star`` / ``galaxy`` per source: drawn separately, with all sources together.
    band : str
        Filter name (title).
    bin_width : float
        Magnitude bin width, mag.
    mag50, mag90 : float, optional
        Magnitudes of 50% / 90% completeness (from ``metrics.json``), marked if finite.
    """

    m = np.asarray(true_mag, np.float64)
    det = np.asarray(detected, bool)
    kinds = np.char.lower(np.asarray(kind).astype(str))
    edges = mag_bins(m, bin_width)
    fig = _figure()
    ax = fig.add_subplot()
    counts = ax.twinx()
    counts.hist(m, bins=edges, color="0.88", zorder=0)
    counts.set_ylabel("truth sources per bin", color="0.45")
    counts.tick_params(axis="y", colors="0.45")
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    for label, sel, colour, dx in (("all", np.ones(m.size, bool), "k", 0.0),
                                   ("stars", kinds == "star", STAR, -0.06),
                                   ("galaxies", kinds == "galaxy", GALAXY, 0.06)):
        if not sel.any():
            continue
        c = completeness_curve(m[sel], det[sel], bins=edges)
        x = c.bin_centres + dx
        ok = c.n_true > 0
        yerr = np.clip(np.vstack([c.fraction - c.lower, c.upper - c.fraction])[:, ok], 0, 1)
        ax.errorbar(x[ok], c.fraction[ok], yerr=yerr, fmt="o-" if label == "all" else "s--",
                    ms=3.5, lw=1.2 if label == "all" else 0.8, capsize=2, color=colour,
                    label=f"{label} ({int(det[sel].sum())}/{int(sel.sum())})")
    for level, mag, style in ((0.5, mag50, ":"), (0.9, mag90, "--")):
        ax.axhline(level, color="0.6", lw=0.6, ls=style)
        if mag is not None and np.isfinite(mag):
            ax.axvline(mag, color="0.3", lw=0.8, ls=style)
            ax.annotate(f"{int(level * 100)}%: {mag:.2f}", (mag, level), xytext=(3, 3),
                        textcoords="offset points", fontsize=7)
    ax.set_ylim(-0.03, 1.08)
    ax.set_xlabel("true magnitude (AB)")
    ax.set_ylabel("completeness (68% binomial interval)")
    ax.set_title(f"{band}: completeness vs true magnitude")
    ax.legend(loc="lower left")
    return fig


def _clipped(ax, x: NDArray[np.float64], y: NDArray[np.float64], lo: float, hi: float,
             **kw) -> None:
    """Scatter, with points beyond ``[lo, hi]`` drawn at the edge as triangles."""
    inside = (y >= lo) & (y <= hi)
    ax.scatter(x[inside], y[inside], **kw)
    kw = {k: v for k, v in kw.items() if k not in ("marker", "label")}
    ax.scatter(x[y > hi], np.full((y > hi).sum(), hi), marker="^", **kw)
    ax.scatter(x[y < lo], np.full((y < lo).sum(), lo), marker="v", **kw)


@_styled
def delta_mag_figure(true_mag: ArrayLike, measured_mag: ArrayLike, kind: ArrayLike, *,
                     band: str, bright: ArrayLike | None = None,
                     bias_bright: float | None = None) -> Figure:
    """Measured - true magnitude vs true magnitude, stars and galaxies apart.

    Parameters
    ----------
    true_mag, measured_mag : array_like
        AB magnitudes of matched sources (stars: ``aper_total_abmag``, galaxies:
        ``isophotal_abmag``); NaN = not measured (dropped).
    kind : array_like of str
        ``star`` / ``galaxy``.
    band : str
    bright : array_like of bool, optional
        The bright isolated star sample (ringed).
    bias_bright : float, optional
        ``phot_bias_bright_star_mag`` (mag), drawn as a horizontal line.

    Notes
    -----
    Negative = measured brighter. Stars and galaxies get a panel each (their magnitudes
    are different measurements: the galaxies' isophotal magnitude misses the flux outside
    the isophote), each with its running median (:func:`running_stats`: up to 20
    equal-count bins of at least 5 sources), a band of +/- NMAD around it, and its own
    y range (median +/- 5 NMAD, at least +/- 0.1 mag, at most +/- 1.5 mag); points beyond
    it are drawn at the edge as triangles.
    """
    mt = np.asarray(true_mag, np.float64)
    dm = np.asarray(measured_mag, np.float64) - mt
    kinds = np.char.lower(np.asarray(kind).astype(str))
    ok = np.isfinite(dm) & np.isfinite(mt)
    b = ok & (np.zeros(mt.size, bool) if bright is None else np.asarray(bright, bool))
    panels = [(title, value, colour, marker) for title, value, colour, marker in
              (("stars: aper_total_abmag", "star", STAR, "o"),
               ("galaxies: isophotal_abmag", "galaxy", GALAXY, "s"))
              if (ok & (kinds == value)).any()]
    fig = _figure(5.6, 5.2 if len(panels) > 1 else 4.2)
    axes = fig.subplots(max(len(panels), 1), 1, sharex=True, squeeze=False)[:, 0]
    if not panels:
        axes[0].text(0.5, 0.5, "no matched source with a measured magnitude",
                     ha="center", va="center", transform=axes[0].transAxes)
    for ax, (title, value, colour, marker) in zip(axes, panels, strict=False):
        sel = ok & (kinds == value)
        med = float(np.median(dm[sel]))
        half = float(np.clip(5.0 * 1.4826 * np.median(np.abs(dm[sel] - med)), 0.1, 1.5))
        lo, hi = min(med - half, -0.05), max(med + half, 0.05)
        ax.axhline(0.0, color="0.5", lw=0.7)
        _clipped(ax, mt[sel], dm[sel], lo, hi, s=10, marker=marker, color=colour, alpha=0.65,
                 lw=0, label=f"n={int(sel.sum())}, median {med:+.3f} mag")
        cx, cm, cs = running_stats(mt[sel], dm[sel])
        if cx.size:
            ax.plot(cx, cm, "-", color=colour, lw=1.4)
            ax.fill_between(cx, cm - cs, cm + cs, color=colour, alpha=0.15, lw=0)
        if value == "star" and b.any():
            ax.scatter(mt[b], np.clip(dm[b], lo, hi), s=42, facecolors="none",
                       edgecolors="k", lw=0.8, label=f"bright isolated stars, n={int(b.sum())}")
        if value == "star" and bias_bright is not None and np.isfinite(bias_bright):
            ax.axhline(bias_bright, color="k", lw=0.8, ls="--",
                       label=f"bright-star bias {bias_bright:+.3f} mag")
        ax.set_ylim(lo, hi)
        ax.set_ylabel("measured - true (mag)")
        ax.set_title(title, fontsize=8.5, loc="left")
        ax.legend(loc="best", fontsize=7)
    axes[-1].set_xlabel("true magnitude (AB)")
    fig.suptitle(f"{band}: photometry (< 0: measured brighter; line: running median, "
                 "band: ±NMAD)", fontsize=9)
    return fig


def _astrometry_limit(dx: NDArray[np.float64], dy: NDArray[np.float64],
                      rms_mas: float | None, radius_mas: float) -> float:
    """Half-width of the astrometry axes, mas: the offsets (95th percentile) and 3 x RMS
    with a margin, at least 5 mas, at most 1.05 x the match radius."""
    spans = [5.0]
    if dx.size:
        spans.append(1.2 * float(np.percentile(np.maximum(np.abs(dx), np.abs(dy)), 95)))
    if rms_mas is not None and np.isfinite(rms_mas):
        spans.append(3.0 * rms_mas)
    return min(max(spans), 1.05 * radius_mas)


@_styled
def astrometry_figure(dra_mas: ArrayLike, ddec_mas: ArrayLike, kind: ArrayLike, *,
                      band: str, radius_mas: float, rms_mas: float | None = None) -> Figure:
    """Astrometric residuals measured - truth: ``dRA cos(Dec)`` vs ``dDec``, mas.

    Parameters
    ----------
    dra_mas, ddec_mas : array_like
        Offsets of matched sources (positive = measured east / north), mas.
    kind : array_like of str
        ``star`` / ``galaxy``: stars define the RMS; galaxies are drawn faintly.
    band : str
    radius_mas : float
        The match radius (dashed circle). The axes span the offsets (95th percentile) and
        3 x the RMS, at most the match radius; points beyond are drawn at the edge (x).
    rms_mas : float, optional
        ``astrom_rms_mas`` (2-D RMS of the stars about zero); computed from the stars if
        not given. Drawn as a circle.
    """
    dx = np.asarray(dra_mas, np.float64)
    dy = np.asarray(ddec_mas, np.float64)
    kinds = np.char.lower(np.asarray(kind).astype(str))
    ok = np.isfinite(dx) & np.isfinite(dy)
    stars = ok & (kinds == "star")
    gals = ok & (kinds == "galaxy")
    if rms_mas is None and stars.any():
        rms_mas = float(np.sqrt(np.mean(dx[stars] ** 2 + dy[stars] ** 2)))
    fig = _figure(4.8, 4.6)
    ax = fig.add_subplot()
    ax.axhline(0, color="0.75", lw=0.6)
    ax.axvline(0, color="0.75", lw=0.6)
    if gals.any():
        ax.scatter(dx[gals], dy[gals], s=8, color=GALAXY, alpha=0.35, lw=0, marker="s",
                   label=f"galaxies, n={int(gals.sum())}")
    if stars.any():
        ax.scatter(dx[stars], dy[stars], s=12, color=STAR, alpha=0.8, lw=0,
                   label=f"stars, n={int(stars.sum())}")
        ax.plot(np.median(dx[stars]), np.median(dy[stars]), "k+", ms=10, mew=1.5,
                label=f"median ({np.median(dx[stars]):+.1f}, {np.median(dy[stars]):+.1f}) mas")
    t = np.linspace(0, 2 * np.pi, 200)
    if rms_mas is not None and np.isfinite(rms_mas):
        ax.plot(rms_mas * np.cos(t), rms_mas * np.sin(t), color="k", lw=1.0,
                label=f"RMS (stars) {rms_mas:.1f} mas")
    lim = _astrometry_limit(dx[ok], dy[ok], rms_mas, radius_mas)
    far = ok & (np.maximum(np.abs(dx), np.abs(dy)) > lim)
    if far.any():
        scale = 0.97 * lim / np.maximum(np.abs(dx[far]), np.abs(dy[far]))
        ax.scatter(dx[far] * scale, dy[far] * scale, s=30, marker="x", color="k", lw=1.0,
                   label=f"beyond the axes, n={int(far.sum())} (drawn at the edge)")
    shown = "" if lim >= radius_mas else " (beyond the axes)"
    ax.plot(radius_mas * np.cos(t), radius_mas * np.sin(t), color="0.5", lw=0.8, ls="--",
            label=f"match radius {radius_mas:.0f} mas{shown}")
    finish_astrometry_axes(ax, lim, f"{band}: astrometric residuals")
    return fig


def finish_astrometry_axes(ax, lim_mas: float, title: str) -> None:
    """Square ±``lim_mas`` axes with the measured - truth labels (east / north > 0)."""
    ax.set_xlim(-lim_mas, lim_mas)
    ax.set_ylim(-lim_mas, lim_mas)
    ax.set_aspect("equal")
    ax.set_xlabel("ΔRA·cos(Dec) (mas), > 0: measured east")
    ax.set_ylabel("ΔDec (mas), > 0: measured north")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=6.5)


def diverging_map(image: NDArray[np.float64], block: int, percentile: float,
                  bar_label: str) -> tuple[Figure, Any, Any]:
    """A signed map centred on 0 (red > 0, blue < 0, grey = NaN), symmetric limits at the
    ``percentile`` of ``|image|``, axes in mosaic pixels of a ``block``-reduced grid:
    ``(figure, axes, colour bar)``."""
    import matplotlib as mpl
    from matplotlib.colors import Normalize

    finite = image[np.isfinite(image)]
    lim = float(np.percentile(np.abs(finite), percentile)) if finite.size else 1.0
    lim = lim if lim > 0 else 1e-6
    fig = _figure(5.2, 4.6)
    ax = fig.add_subplot()
    cmap = mpl.colormaps["RdBu_r"].with_extremes(bad="0.82")
    ny, nx = image.shape
    im = ax.imshow(image, origin="lower", cmap=cmap, norm=Normalize(-lim, lim),
                   extent=(-0.5, nx * block - 0.5, -0.5, ny * block - 0.5),
                   interpolation="nearest")
    bar = fig.colorbar(im, ax=ax, shrink=0.85)
    bar.set_label(bar_label)
    return fig, ax, bar


@_styled
def background_figure(residual_mjysr: ArrayLike, *, band: str, expected_mjysr: float,
                      block: int, sigma_pix: float, injected_sky_mjysr: float | None = None,
                      level_note: str = "", bar_label: str | None = None) -> Figure:
    """Map of the smoothed, source-masked mosaic minus the expected sky level.

    Parameters
    ----------
    residual_mjysr : array_like
        Smoothed residual (mosaic - expected), MJy/sr, on the reduced grid; NaN where
        masked or outside the footprint (drawn grey).
    band : str
    expected_mjysr : float
        The level the map is centred on, MJy/sr.
    block : int
        Reduction factor of the grid (mosaic pixels per map pixel, per axis).
    sigma_pix : float
        Gaussian smoothing sigma, mosaic pixels.
    injected_sky_mjysr : float, optional
        Injected sky: the colour bar also reads in percent of it.
    level_note : str
        Where ``expected_mjysr`` comes from.
    bar_label : str, optional
        Colour-bar label (default ``mosaic - <expected> MJy/sr``).

    Notes
    -----
    Diverging colormap centred on zero (= the expected level), symmetric limits at the
    98th percentile of ``|residual|``.
    """
    res = np.asarray(residual_mjysr, np.float64)
    finite = res[np.isfinite(res)]
    fig, ax, bar = diverging_map(res, block, 98.0,
                                 bar_label or f"mosaic - {expected_mjysr:.4g} MJy/sr (MJy/sr)")
    if injected_sky_mjysr:
        sec = bar.ax.secondary_yaxis("left", functions=(
            lambda v: 100.0 * v / injected_sky_mjysr, lambda p: p * injected_sky_mjysr / 100))
        sec.set_ylabel("% of injected sky", fontsize=7)
        sec.tick_params(labelsize=6.5)
    median = float(np.median(finite)) if finite.size else float("nan")
    ax.set_title(f"{band}: background residual, sources masked\n"
                 f"smoothed σ = {sigma_pix:.1f} px; median {median:+.2e} MJy/sr", fontsize=8.5)
    ax.set_xlabel("mosaic x (pixel)" + (f"\n{level_note}" if level_note else ""))
    ax.set_ylabel("mosaic y (pixel)")
    return fig


@_styled
def mosaic_figure(image: ArrayLike, *, band: str, block: int,
                  matched_xy: Sequence[ArrayLike] | None = None,
                  missed_xy: Sequence[ArrayLike] | None = None,
                  spurious_xy: Sequence[ArrayLike] | None = None,
                  note: str = "") -> Figure:
    """Mosaic thumbnail (zscale interval, asinh stretch) with sources marked.

    Parameters
    ----------
    image : array_like
        The reduced mosaic (MJy/sr); NaN drawn in a neutral grey.
    band : str
    block : int
        Mosaic pixels per thumbnail pixel (positions are in mosaic pixels).
    matched_xy, missed_xy, spurious_xy : (x, y) arrays, optional
        0-based mosaic pixel positions of matched detections (green circles), truth
        sources inside the footprint without a detection (red circles) and detections
        without a truth counterpart (orange squares).
    note : str
        A line under the title (e.g. why markers are missing).
    """
    import matplotlib as mpl
    from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval

    img = np.asarray(image, np.float64)
    finite = np.isfinite(img)
    fig = _figure(5.2, 5.2)
    ax = fig.add_subplot()
    cmap = mpl.colormaps["gray"].with_extremes(bad="#c8c8d8")
    norm = None
    if finite.any():
        norm = ImageNormalize(img[finite], interval=ZScaleInterval(), stretch=AsinhStretch())
    ny, nx = img.shape
    ax.imshow(img, origin="lower", cmap=cmap, norm=norm, interpolation="nearest",
              extent=(-0.5, nx * block - 0.5, -0.5, ny * block - 0.5))
    for xy, label, colour, marker in ((matched_xy, "matched", MATCHED, "o"),
                                      (missed_xy, "missed", MISSED, "o"),
                                      (spurious_xy, "spurious", SPURIOUS, "s")):
        if xy is None:
            continue
        x, y = (np.asarray(a, np.float64) for a in xy)
        ax.scatter(x, y, s=40, facecolors="none", edgecolors=colour, lw=1.1, marker=marker,
                   label=f"{label} ({x.size})")
    ax.set_xlim(-0.5, nx * block - 0.5)
    ax.set_ylim(-0.5, ny * block - 0.5)
    ax.set_xlabel("mosaic x (pixel)")
    ax.set_ylabel("mosaic y (pixel)")
    title = f"{band}: mosaic (zscale, asinh)"
    ax.set_title(title + (f"\n{note}" if note else ""), fontsize=8.5)
    if any(xy is not None for xy in (matched_xy, missed_xy, spurious_xy)):
        ax.legend(loc="upper right", framealpha=0.8)
    return fig


@_styled
def counts_figure(counts: Any, *, band: str) -> Figure:
    """Differential number counts: the input catalog in the footprint, what the pipeline
    catalog recovered, and the reference relation (the table of
    :func:`simval.catalogs.validate.recovered_vs_input_counts`), per arcmin^2 per mag."""
    fig = _figure(5.2, 4.0)
    ax = fig.add_subplot()
    mid = np.asarray(counts["mag_mid"], float)
    for col, label, style in (("density_input", "input catalog (footprint)", "o-"),
                              ("density_recovered", "pipeline catalog", "s-"),
                              ("density_reference", "reference relation", "--")):
        if col not in counts.colnames:
            continue
        y = np.asarray(counts[col], float)
        ok = np.isfinite(y) & (y > 0)
        if ok.any():
            ax.plot(mid[ok], y[ok], style, ms=3.5, lw=1.2, label=label)
    ax.set_yscale("log")
    ax.set_xlabel(f"{band} AB magnitude (true for the input, isophotal for the pipeline)")
    ax.set_ylabel("sources / arcmin² / mag")
    ref = counts.meta.get("reference") if hasattr(counts, "meta") else None
    ax.set_title(f"{band}: number counts over {counts.meta.get('area_arcmin2', 0):.3g} "
                 "arcmin²" + (f"\nreference: {ref}" if ref else ""), fontsize=8.5)
    ax.legend(loc="upper left")
    return fig


@_styled
def group_offsets_figure(groups: Sequence[str], *, band: str, by: str,
                         phot_mag: ArrayLike, phot_err_mag: ArrayLike, dx_mas: ArrayLike,
                         dx_err_mas: ArrayLike, dy_mas: ArrayLike, dy_err_mas: ArrayLike,
                         rms_mas: ArrayLike, bkg_frac: ArrayLike, bkg_err_frac: ArrayLike,
                         sample: str = "") -> Figure:
    """Per detector (or visit): photometric offset (mag), mean astrometric offsets and RMS
    (mas), and residual sky (% of the injected sky), one panel each, with 1-sigma bars.

    Parameters
    ----------
    groups : sequence of str
        Group names (detectors, or visit numbers), one point each along x.
    band, by : str
        Filter and what the groups are (``detector``, ``visit``).
    phot_mag, phot_err_mag : array_like
        median(measured - true), mag (positive = measured fainter), and its uncertainty.
    dx_mas, dx_err_mas, dy_mas, dy_err_mas, rms_mas : array_like
        Mean offsets measured - true (east / north > 0), their uncertainties, and the 2-D
        RMS about zero, mas.
    bkg_frac, bkg_err_frac : array_like
        Residual sky / injected sky and its uncertainty (fractions; drawn in percent).
    sample : str
        The sources the offsets rest on (subtitle).
    """
    x = np.arange(len(groups), dtype=float)
    arr = {k: np.asarray(v, np.float64) for k, v in dict(
        phot=phot_mag, phot_err=phot_err_mag, dx=dx_mas, dx_err=dx_err_mas, dy=dy_mas,
        dy_err=dy_err_mas, rms=rms_mas, bkg=bkg_frac, bkg_err=bkg_err_frac).items()}
    fig = _figure(max(5.6, 1.0 + 0.45 * len(groups)), 5.6)
    axes = fig.subplots(3, 1, sharex=True)
    kw = {"capsize": 2.5, "ms": 4, "lw": 1.0}
    axes[0].errorbar(x, arr["phot"], yerr=arr["phot_err"], fmt="o", color=STAR, **kw)
    axes[0].set_ylabel("Δmag\n(meas. − true)")
    axes[1].errorbar(x - 0.08, arr["dx"], yerr=arr["dx_err"], fmt="o", color=STAR,
                     label="ΔRA·cos(Dec)", **kw)
    axes[1].errorbar(x + 0.08, arr["dy"], yerr=arr["dy_err"], fmt="s", color=GALAXY,
                     label="ΔDec", **kw)
    axes[1].plot(x, arr["rms"], "k_", ms=12, mew=1.5, ls="none", label="RMS about 0")
    axes[1].set_ylabel("offset (mas)")
    axes[1].legend(loc="best", fontsize=6.5, ncol=3)
    axes[2].errorbar(x, 100.0 * arr["bkg"], yerr=100.0 * arr["bkg_err"], fmt="D",
                     color=MISSED, **kw)
    axes[2].set_ylabel("sky residual\n(% of injected)")
    for ax in axes:
        ax.axhline(0.0, color="0.6", lw=0.7)
    axes[2].set_xticks(x)
    axes[2].set_xticklabels([f"visit {g}" if by == "visit" else g for g in groups],
                            rotation=30 if len(groups) > 6 else 0)
    axes[2].set_xlim(-0.6, len(groups) - 0.4)
    axes[0].set_title(f"{band}: offsets per {by}" + (f"\n{sample}" if sample else ""),
                      fontsize=8.5)
    return fig


@_styled
def sweep_figure(labels: Sequence[str], bands: Sequence[str],
                 values: dict[str, ArrayLike],
                 bounds: dict[str, tuple[float | None, float | None]] | None = None) -> Figure:
    """A sweep's metrics across its variants: one panel per metric, one point per variant
    and filter (unmeasured: left out), the acceptance band shaded.

    Parameters
    ----------
    labels : sequence of str
        The variants, in run order (x axis).
    bands : sequence of str
        Filters, one marker each.
    values : dict
        metric -> array ``(len(labels), len(bands))`` of values in the metric's unit (NaN:
        not measured).
    bounds : dict, optional
        metric -> (low, high) of its threshold (either may be None), drawn as lines and a
        shaded band.
    """
    metrics = list(values)
    x = np.arange(len(labels), dtype=float)
    fig = _figure(max(5.6, 1.2 + 0.55 * len(labels)), 1.2 + 1.6 * len(metrics))
    axes = np.atleast_1d(fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0])
    markers, colors = "osD^v<>", (STAR, GALAXY, MISSED, "0.3", "tab:purple", "tab:olive")
    offsets = (np.arange(len(bands)) - (len(bands) - 1) / 2.0) * 0.12
    for ax, metric in zip(axes, metrics, strict=True):
        arr = np.asarray(values[metric], np.float64).reshape(len(labels), len(bands))
        for j, band in enumerate(bands):
            ax.plot(x + offsets[j], arr[:, j], ls="none", marker=markers[j % len(markers)],
                    color=colors[j % len(colors)], ms=5, label=band)
        low, high = (bounds or {}).get(metric, (None, None))
        for edge in (low, high):
            if edge is not None:
                ax.axhline(edge, color="0.45", lw=0.8, ls="--")
        if low is not None or high is not None:
            ylim = ax.get_ylim()
            ax.axhspan(low if low is not None else ylim[0],
                       high if high is not None else ylim[1], color="#e5f5e0", zorder=0)
            ax.set_ylim(ylim)
        ax.set_ylabel(metric, fontsize=7)
    axes[0].legend(loc="best", fontsize=6.5, ncol=len(bands))
    axes[-1].set_xticks(x)
    axes[-1].set_xticklabels(labels, rotation=30 if len(labels) > 3 else 0, ha="right"
                             if len(labels) > 3 else "center", fontsize=6.5)
    axes[-1].set_xlim(-0.6, len(labels) - 0.4)
    return fig
