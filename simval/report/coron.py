"""The coronagraphy section of a run's report: each psfsub (and the i2d) with the
companions ringed at their true positions, the contrast curves against the unsubtracted
data and the injected companions, and the tables of companion recovery and of the
shifts align_refs applied against the dither truth.

Reads the run directory only: the evaluation's tables (``evaluation/<product>_
{companions,contrast,alignment}.ecsv``), the coron3 stage's record (its products) and each
exposure's truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.layout import RunLayout
from simval.report.plots import _figure, _styled

if TYPE_CHECKING:
    from astropy.table import Table
    from matplotlib.figure import Figure

    from simval.report.rundir import RunContents

__all__ = ["CoronSection", "contrast_curves_figure", "contrast_table", "coron_section",
           "is_coronagraphy"]

_CAPTIONS = {
    "psfsub": "calwebb_coron3's PSF-subtracted images (integrations averaged; the i2d "
              "combines the rolls on the sky), asinh stretch; circles: the companions' true "
              "positions (4 px radius), '+' the star behind the mask.",
    "contrast": "5-sigma contrast with Mawet et al. (2014)'s small-sample correction against "
                "separation: each psfsub (solid), the unsubtracted calints (dashed; their "
                "ratio is the KLIP gain) and the injected companions (stars).",
    "alignment": "Shift align_refs applied to each reference frame (fitted from _psfstack to "
                 "_psfalign) against the shift the dither truth asks for, px; on the "
                 "diagonal when align_refs follows the small-grid dither.",
}


def is_coronagraphy(run: RunContents) -> bool:
    """Whether the run's plan is a coronagraphic observation."""
    return bool(((run.plan or {}).get("scenario") or {}).get("coronagraphy"))


def contrast_table(run: RunContents, band: str) -> Table | None:
    """The run's contrast table of ``band`` (``evaluation/<product>_contrast.ecsv``), or
    None."""
    product = run.products.get(band)
    if product is None:
        return None
    return _table(RunLayout(run.run_dir).evaluation_table(product, "contrast"))


def _table(path: Path) -> Table | None:
    from astropy.table import Table

    return Table.read(path, format="ascii.ecsv") if path.is_file() else None


def _coron3_outputs(run: RunContents, band: str) -> dict[str, Path]:
    """The coron3 product's psfsub files (``psfsub:<base>``) and i2d, from the manifest."""
    product = ((run.manifest or {}).get("products") or {}).get(band) or {}
    layout = RunLayout(run.run_dir)
    out = {f"psfsub:{b}": layout.abs(p) for b, p in (product.get("psfsub") or {}).items()}
    if out and product.get("i2d"):
        out["i2d"] = layout.abs(product["i2d"])
    return out


@_styled
def psfsub_figure(images: list[tuple[str, np.ndarray, list[tuple[float, float]],
                                     tuple[float, float]]]) -> Figure:
    """Panels of (title, image, companion pixels, star pixel)."""
    from matplotlib.patches import Circle

    n = len(images)
    fig = _figure(3.0 * n, 3.2)
    for k, (title, img, comps, star) in enumerate(images, start=1):
        ax = fig.add_subplot(1, n, k)
        finite = img[np.isfinite(img)]
        scale = float(np.percentile(np.abs(finite), 99.5)) if finite.size else 1.0
        ax.imshow(np.arcsinh(img / max(scale / 20.0, 1e-30)), origin="lower", cmap="gray",
                  vmin=-3, vmax=float(np.arcsinh(20.0)))
        for x, y in comps:
            ax.add_patch(Circle((x, y), 4.0 * img.shape[0] / 320.0, fill=False,
                                color="#d73027", lw=1.0))
        ax.plot(*star, "+", color="#1f77b4", ms=8)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    return fig


@_styled
def contrast_curves_figure(curves, *, title: str, colours=None,
                           companions: tuple | None = None) -> Figure:
    """5-sigma contrast against separation (arcsec): per curve (label, separations,
    psfsub contrast, calints contrast), solid and dashed in one colour (``colours``, else
    matplotlib's cycle); ``companions``: (separations, contrasts) of the injected ones."""
    fig = _figure(5.6, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    for k, (label, sep, sub, raw) in enumerate(curves):
        colour = colours[k] if colours else f"C{k}"
        ax.plot(sep, sub, "o-", color=colour, label=f"{label} psfsub")
        ax.plot(sep, raw, "o--", color=colour, alpha=0.6, label=f"{label} calints")
    if companions is not None and len(companions[0]):
        ax.plot(*companions, "*", color="k", ms=10, label="injected companions")
    ax.set_yscale("log")
    ax.set_xlabel("separation (arcsec)")
    ax.set_ylabel("5-sigma contrast")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right")
    return fig


def contrast_figure(contrast: Table, companions: Table | None, band: str) -> Figure:
    """One run's curves, one per science exposure, with its injected companions."""
    curves = []
    for base in dict.fromkeys(contrast["exposure"]):
        rows = contrast[contrast["exposure"] == base]
        curves.append((base.split("_")[1], rows["separation_arcsec"], rows["contrast"],
                       rows["contrast_raw"]))
    injected = None
    if companions is not None and len(companions):
        first = companions[companions["product"] == "psfsub"]
        injected = (first["separation_arcsec"], first["contrast"])
    return contrast_curves_figure(curves, title=f"{band}: contrast curve",
                                  companions=injected)


@_styled
def alignment_figure(alignment: Table) -> Figure:
    fig = _figure(5.6, 3.0)
    for k, axis in enumerate(("dx", "dy"), start=1):
        ax = fig.add_subplot(1, 2, k)
        e, a = alignment[f"expected_{axis}_px"], alignment[f"applied_{axis}_px"]
        lim = 1.2 * max(float(np.max(np.abs(e))), float(np.max(np.abs(a))), 0.05)
        ax.plot([-lim, lim], [-lim, lim], color="0.7", lw=0.8)
        ax.plot(e, a, "o", ms=4)
        ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim)
        ax.set_xlabel(f"expected {axis} (px)")
        ax.set_ylabel(f"applied {axis} (px)")
    return fig


def _psfsub_panels(layout: RunLayout, outputs: dict[str, Path], truths: dict[str, Path]
                   ) -> list[tuple[str, np.ndarray, list, tuple]]:
    from astropy.io import fits
    from astropy.table import Table

    panels = []
    for key in sorted(k for k in outputs if k.startswith("psfsub:")):
        base = key.split(":", 1)[1]
        with fits.open(outputs[key]) as h:
            data = np.asarray(h["SCI"].data, float)
        with np.errstate(all="ignore"):
            img = np.nanmean(data, axis=0) if data.ndim == 3 else data
        truth = Table.read(truths[base], format="ascii.ecsv")
        star = truth[truth["kind"] == "star"][0]
        comps = [(float(r["x"]), float(r["y"])) for r in truth if r["kind"] == "companion"]
        panels.append((f"psfsub {base.split('_')[1]}", img, comps,
                       (float(star["x"]), float(star["y"]))))
    return panels


def _i2d_panel(i2d: Path, truth: Path) -> tuple[str, np.ndarray, list, tuple]:
    from astropy.table import Table
    from stdatamodels.jwst import datamodels

    t = Table.read(truth, format="ascii.ecsv")
    with datamodels.open(str(i2d)) as m:
        img = np.asarray(m.data, float)
        inv = m.meta.wcs.invert
        star = t[t["kind"] == "star"][0]
        sx, sy = inv(float(star["ra"]), float(star["dec"]))
        comps = [tuple(float(v) for v in inv(float(r["ra"]), float(r["dec"])))
                 for r in t if r["kind"] == "companion"]
    return "i2d", img, comps, (float(sx), float(sy))


@dataclass
class CoronSection:
    """What the report shows of a coronagraphy run's filter: ``facts`` (label, value,
    style), ``notes``, ``figures`` (name, title, caption, make) and ``tables`` (title,
    head, rows, numeric columns, caption); :mod:`simval.report.html` lays them out."""

    product: str | None
    facts: list[tuple[str, Any, str]]
    notes: list[str] = field(default_factory=list)
    figures: list[tuple[str, str, str, Callable[[], Figure]]] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[Any]], list[int], str]] = field(
        default_factory=list)


def coron_section(run: RunContents, band: str) -> CoronSection:
    """The report's section of a coronagraphy run's filter (module docstring)."""
    layout = RunLayout(run.run_dir)
    product = run.products.get(band)
    c = ((run.plan or {}).get("scenario") or {}).get("coronagraphy") or {}
    facts = [("product", product or "unknown", "code"), ("mask", c.get("mask"), "b"),
             ("rolls", ", ".join(f"{r:+g}°" for r in c.get("rolls_deg", [])), ""),
             ("reference dither", str((c.get("reference") or {}).get("dither")), "")]
    section = CoronSection(product, facts)
    notes, figures, tables = section.notes, section.figures, section.tables
    if product is None:
        notes.append("no coron3 product in the plan")
        return section
    outputs = _coron3_outputs(run, band)
    truths = {e["base_name"]: layout.exposure_dir(e["base_name"])
              / f"{e['base_name']}_coron_truth.ecsv" for e in (run.plan or {})["exposures"]}
    companions = _table(layout.evaluation_table(product, "companions"))
    contrast = _table(layout.evaluation_table(product, "contrast"))
    alignment = _table(layout.evaluation_table(product, "alignment"))
    if not outputs:
        notes.append("calwebb_coron3 did not complete: no psfsub to show")
    else:
        def panels():
            science = [k.split(":", 1)[1] for k in outputs if k.startswith("psfsub:")]
            return psfsub_figure([*_psfsub_panels(layout, outputs, truths),
                                  _i2d_panel(outputs["i2d"], truths[science[0]])])

        figures.append(("psfsub", "PSF-subtracted images", _CAPTIONS["psfsub"], panels))
    if contrast is not None and len(contrast):
        figures.append(("contrast", "contrast curve", _CAPTIONS["contrast"],
                        lambda: contrast_figure(contrast, companions, band)))
        tables.append(("Contrast",
            ["exposure", "separation \"", "5σ contrast", "Gaussian 5σ", "unsubtracted",
             "KLIP gain", "apertures"],
            [[r["exposure"], f"{r['separation_arcsec']:g}", f"{r['contrast']:.2e}",
              f"{r['contrast_gaussian']:.2e}", f"{r['contrast_raw']:.2e}",
              f"{r['klip_gain']:.1f}", int(r["n_apertures"])] for r in contrast],
            [1, 2, 3, 4, 5, 6], _CAPTIONS["contrast"]))
    if companions is not None and len(companions):
        tables.append(("Companion recovery",
            ["product", "exposure", "companion", "separation \"", "contrast",
             "position error (mas)", "flux / injected", "S/N"],
            [[r["product"], r["exposure"], int(r["companion"]),
              f"{r['separation_arcsec']:.3f}", f"{r['contrast']:.1e}",
              f"{r['position_error_mas']:.2f}", f"{r['flux_ratio']:.3f}",
              f"{r['snr']:.1f}"] for r in companions], [2, 3, 4, 5, 6, 7],
            "Flux in a 4 px aperture over the injected flux x the mask's transmission x the "
            "aperture's encircled energy (1 = fully recovered); position: 2-D Gaussian "
            "centroid minus the true pixel; S/N against the ring of same-sized apertures at "
            "the companion's separation."))
    disk = _table(layout.evaluation_table(product, "disk"))
    if disk is not None and len(disk):
        tables.append(("Disk", ["exposure", "pixels", "psfsub / truth", "psfsub (MJy/sr, sum)",
                                "truth (MJy/sr, sum)"],
                       [[r["exposure"], int(r["pixels"]), f"{r['disk_flux_ratio']:.3f}",
                         f"{r['psfsub_mjysr_sum']:.4g}", f"{r['truth_mjysr_sum']:.4g}"]
                        for r in disk], [1, 2, 3, 4],
                       "The disk's surface brightness in each psfsub over the simulator's "
                       "noiseless disk on the same pixels (above 20 % of its peak, outside "
                       "0.8\", away from the companions): 1 if KLIP keeps it."))
    if alignment is not None and len(alignment):
        figures.append(("alignment", "align_refs against the dither truth",
                        _CAPTIONS["alignment"], lambda: alignment_figure(alignment)))
        applied = np.hypot(alignment["applied_dx_px"], alignment["applied_dy_px"])
        expected = np.hypot(alignment["expected_dx_px"], alignment["expected_dy_px"])
        if float(np.max(applied)) < 0.02 and float(np.max(expected)) > 0.1:
            notes.append(
                "align_refs applied no shift (largest "
                f"{float(np.max(applied)):.3f} px) where the dither truth asks for up to "
                f"{float(np.max(expected)):.2f} px: the installed jwst has the zero-shift "
                "bug (float32 data stay complex64 in align_refs' Fourier fit with numpy 2, "
                "so its finite-difference Jacobian never sees the step). KLIP with dithered "
                "references hides it in the companion photometry.")
        tables.append(("align_refs shifts",
            ["exposure", "reference", "int", "applied dx", "applied dy", "expected dx",
             "expected dy", "error (mas)"],
            [[r["exposure"], r["reference"], int(r["integration"]),
              f"{r['applied_dx_px']:+.3f}", f"{r['applied_dy_px']:+.3f}",
              f"{r['expected_dx_px']:+.3f}", f"{r['expected_dy_px']:+.3f}",
              f"{r['error_mas']:.1f}"] for r in alignment], [2, 3, 4, 5, 6, 7],
            _CAPTIONS["alignment"]))
    return section
