"""``compare.html``: one self-contained page (inline CSS, PNGs as ``data:`` URIs, no script),
in the style of the run report (:mod:`simval.report.html`): the same jinja2 templates
(``compare.html.j2`` on ``base.html.j2``, the shared pieces of ``_macros.html.j2``,
autoescaped), fed by the view-model this module builds.

Order of the page
-----------------
1. header: the runs (label, directory, scenario, CRDS context, jwst), the overall result;
2. **headline table** per pair: the checks (tolerances, flux ratio) with PASS/FAIL, the
   median flux ratio B/A and the pixel ratio per filter, the threshold verdicts that
   changed, the reference types that differ;
3. per filter: the metric table (value per run, B - A ± uncertainty, how the uncertainty
   was obtained); overlaid completeness, photometry and astrometry of all runs; per pair
   the flux ratio vs magnitude, the pixel statistics and the difference image;
4. per pair the provenance diff: CRDS contexts, reference files (per type, then per
   exposure/product), step parameters, software versions, simulation reuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.compare import plots
from simval.compare.plots import RunCurve
from simval.match import column, radec_of, sky_offsets_mas
from simval.metrics import MAG_COLUMN
from simval.metrics_schema import REGISTRY
from simval.provenance import now_utc
from simval.report.coron import contrast_table, is_coronagraphy
from simval.report.html import Cell, FigureView, TableView, figure_view, render_template
from simval.report.rundir import diff_text, format_value, ratio_text

if TYPE_CHECKING:
    from simval.compare.core import Check, CompareResult, FilterComparison, PairComparison
    from simval.compare.runs import CompareRun

__all__ = ["render_html"]


def _num(x: float | None, fmt: str = ".4g") -> str:
    return "—" if x is None or not np.isfinite(x) else format(x, fmt)


def _pair_title(pair: PairComparison) -> str:
    return f"{pair.b.label} ({pair.b.name}) vs {pair.a.label} ({pair.a.name})"


# --- header and headline ------------------------------------------------------------------

@dataclass
class CheckRow:
    """One check of a pair as a verdict-table row (values in the check's unit)."""

    check: Check

    @property
    def passed(self) -> bool:
        return self.check.passed

    @property
    def title(self) -> str:
        return self.check.message

    @property
    def cells(self) -> list[Cell]:
        c = self.check
        if c.kind == "flux_ratio":
            a_txt, b_txt = "1", ratio_text(c.b, c.uncertainty)
            d_txt = _num(c.difference, "+.4f")
            limit = f"|B/A - 1| <= {c.limit:g}"
        else:
            a_txt = format_value(c.a, None, c.unit)
            b_txt = format_value(c.b, None, c.unit)
            d_txt = diff_text(c.difference, c.uncertainty, c.unit) \
                if c.difference is not None else "—"
            limit = f"|B - A| <= {c.limit:g}"
        return [Cell(c.metric, code=True), Cell(c.filter), Cell(a_txt, "num"),
                Cell(b_txt, "num"), Cell(d_txt, "num"), Cell(limit)]


def _runs_table(result: CompareResult) -> TableView:
    rows = []
    for r in result.runs:
        d = r.describe()
        rows.append([r.label, r.name, d["scenario"]["name"], d["scenario"]["hash"],
                     d["crds_context"] or "?", d["jwst"] or "?", str(r.path)])
    return TableView(["run", "directory name", "scenario", "hash", "CRDS context", "jwst",
                      "path"], rows)


def _ratios_table(result: CompareResult, pair: PairComparison) -> TableView:
    rows = []
    for band, fc in pair.filters.items():
        cat, pix = fc.catalog, fc.pixels
        flux = "—" if cat is None or cat.median_ratio is None else \
            f"{ratio_text(cat.median_ratio, cat.uncertainty)} (n={cat.n})"
        if pix is None:
            pixel = "not compared"
        elif not pix.same_grid:
            pixel = "different grids"
        else:
            pixel = (f"{_num(pix.ratio_median, '.5f')} (NMAD {_num(pix.ratio_nmad, '.2g')},"
                     f" n={pix.ratio_n})")
        sky = "—" if pix is None or pix.diff_median_mjysr is None else \
            f"{pix.diff_median_mjysr:+.3g} MJy/sr"
        rows.append([band, flux, pixel, sky])
    snr = f"{result.settings['snr_min']:g}"
    return TableView(["filter", f"median flux ratio B/A (catalog, S/N > {snr})",
                      f"pixel ratio B/A (S/N > {snr})", "sky B - A (median)"], rows)


def _differs(pair: PairComparison) -> list[str] | None:
    """What the manifests say differs (None: not compared)."""
    prov = pair.provenance
    if prov is None:
        return None
    bits = []
    if "context" in prov.crds:
        bits.append(f"CRDS context {prov.crds['context']['a']} → {prov.crds['context']['b']}")
    if prov.reftypes_changed:
        bits.append("reference types: " + ", ".join(prov.reftypes_changed))
    if prov.parameters:
        bits.append(f"{len(prov.parameters)} step parameter(s)")
    if prov.versions:
        bits.append("versions of " + ", ".join(prov.versions))
    return bits


def _headline(result: CompareResult, pair: PairComparison) -> dict[str, Any]:
    def verdict(passed: bool, value: float | None, unit: str) -> str:
        return f"{'PASS' if passed else 'FAIL'} ({format_value(value, None, unit)})"

    changes = TableView(["filter", "metric", "limit", "A", "B"],
                        [[v.filter, v.metric, v.limit, verdict(v.a_passed, v.a_value, v.unit),
                          verdict(v.b_passed, v.b_value, v.unit)]
                         for v in pair.verdict_changes])
    checks = sorted(pair.checks, key=lambda c: (c.passed, c.filter, c.metric))
    return {"title": _pair_title(pair), "checks": [CheckRow(c) for c in checks],
            "ratios": _ratios_table(result, pair), "changes": changes,
            "thresholds_from": pair.thresholds_from, "n_verdicts": len(pair.verdicts),
            "differs": _differs(pair)}


# --- per filter ---------------------------------------------------------------------------

@dataclass
class MetricDiffRow:
    """One metric of one filter: A's value, then per pair B's, B - A ± unc and the method."""

    cells: list[Cell]
    moved: bool

    @property
    def cls(self) -> str:
        return "moved" if self.moved else ""


def _value(m: Any, unit: str) -> str:
    return "absent" if m is None else format_value(m.value, m.uncertainty, unit)


def _metric_rows(result: CompareResult, band: str) -> tuple[list[str], list[MetricDiffRow]]:
    pairs = result.pairs
    names: list[str] = []
    for p in pairs:
        names += [n for n in p.filters[band].metrics if n not in names]
    head = ["metric", "unit", result.runs[0].label]
    for p in pairs:
        head += [p.b.label, f"{p.b.label} - {p.a.label} ± unc", "method"]
    rows = []
    for name in names:
        unit = REGISTRY[name].unit
        first = pairs[0].filters[band].metrics.get(name)
        cells = [Cell(name, title=REGISTRY[name].description, code=True), Cell(unit),
                 Cell(_value(first.a if first else None, unit), "num")]
        moved = False
        for p in pairs:
            d = p.filters[band].metrics.get(name)
            cells.append(Cell(_value(d.b if d else None, unit), "num"))
            if d is None or d.difference is None:
                cells += [Cell("—", "num"), Cell("")]
                continue
            sig = d.uncertainty is not None and d.uncertainty > 0 and \
                abs(d.difference) > 3 * d.uncertainty
            moved |= sig or (d.difference != 0 and d.uncertainty == 0)
            cells += [Cell(diff_text(d.difference, d.uncertainty, unit),
                           "num changed" if sig else "num"),
                      Cell((d.method or "") + (f" ({d.n_boot})" if d.n_boot else ""), "dim")]
        rows.append(MetricDiffRow(cells, moved))
    return head, rows


def _curves(runs: list[CompareRun], band: str) -> list[Any]:
    out = []
    for r in runs:
        f = r.inputs(band)
        if f.truth is None or f.measured is None or f.match is None:
            continue
        t = f.truth
        inside = column(t, "in_footprint", bool) if "in_footprint" in t.colnames else \
            np.ones(len(t), bool)
        kind = np.char.lower(np.asarray(t["type"]).astype(str))
        t2m = f.match.truth_to_measured
        det = t2m >= 0
        dm = np.full(len(t), np.nan)
        tmag = column(t, "mag_true_ab")
        for k, col in MAG_COLUMN.items():
            rows = np.flatnonzero((kind == k) & det)
            if rows.size and col in f.measured.colnames:
                dm[rows] = column(f.measured, col)[t2m[rows]] - tmag[rows]
        dx = np.full(len(t), np.nan)
        dy = np.full(len(t), np.nan)
        rows = np.flatnonzero(det)
        if rows.size:
            mra, mdec = radec_of(f.measured)
            tra, tdec = radec_of(t)
            dx[rows], dy[rows] = sky_offsets_mas(mra[t2m[rows]], mdec[t2m[rows]], tra[rows],
                                                 tdec[rows])
        s = inside
        out.append(RunCurve(f"{r.label} {r.name}", tmag[s], det[s], kind[s], dm[s], dx[s],
                            dy[s]))
    return out


def _contrast_curves(runs: list[CompareRun], band: str) -> list[tuple]:
    """Per coronagraphy run: (label, separations, worst psfsub contrast, worst calints
    contrast) at each separation of its evaluation."""
    out = []
    for r in runs:
        t = contrast_table(r.contents, band) if is_coronagraphy(r.contents) else None
        if t is None or not len(t):
            continue
        seps = np.unique(np.asarray(t["separation_arcsec"], float))
        at = [np.asarray(t["separation_arcsec"], float) == s for s in seps]
        out.append((f"{r.label} {r.name}", seps,
                    [float(np.nanmax(np.asarray(t["contrast"])[m])) for m in at],
                    [float(np.nanmax(np.asarray(t["contrast_raw"])[m])) for m in at]))
    return out


def _overlays(result: CompareResult, band: str) -> list[FigureView]:
    contrast = _contrast_curves(result.runs, band)
    if contrast:
        return [figure_view("contrast", "contrast curves", "5-sigma contrast (Mawet et al. "
                            "2014) of each run against separation: the worst psfsub (solid) "
                            "and the worst unsubtracted calints (dashed).",
                            lambda: plots.contrast_overlay(contrast, band=band))]
    curves = _curves(result.runs, band)
    if not curves:
        return [FigureView("overlays", "overlays", "", note="overlays not drawn: no run has a "
                           "readable truth table and catalog for this filter")]
    radius = next((r.inputs(band).radius_mas for r in result.runs
                   if r.inputs(band).radius_mas), 100.0)
    return [
        figure_view("completeness", "completeness", "Completeness vs true magnitude of each "
                    "run, 0.5 mag bins, 68% Wilson intervals (in-footprint truth sources).",
                    lambda: plots.completeness_overlay(curves, band=band)),
        figure_view("photometry", "photometry", "Measured - true magnitude of each run: "
                    "points, running median (equal-count bins) and ±NMAD band; < 0: measured "
                    "brighter.", lambda: plots.delta_mag_overlay(curves, band=band)),
        figure_view("astrometry", "astrometry", "Position offsets measured - truth of matched "
                    "stars, mas; +: each run's median; circle: its 2-D RMS about zero.",
                    lambda: plots.astrometry_overlay(curves, band=band,
                                                     radius_mas=float(radius))),
    ]


def _pair_filter(pair: PairComparison, fc: FilterComparison, band: str, index: int
                 ) -> dict[str, Any]:
    title = f"{pair.b.label} vs {pair.a.label}"
    out: dict[str, Any] = {"title": f"{band}: {title} ({pair.b.name} vs {pair.a.name})",
                           "catalog": fc.catalog, "ratio": None, "pixel_note": None,
                           "pixels": None, "pixel_reason": None, "diff_fits": None}
    figs = []
    cat = fc.catalog
    if cat is not None:
        out["ratio"] = ratio_text(cat.median_ratio, cat.uncertainty)
        figs.append(figure_view("flux_ratio", "flux ratio", "Flux ratio B/A of the sources "
                                "matched across the two catalogs vs A's magnitude; filled: "
                                "the headline sample; line: running median, band ±NMAD.",
                                lambda: plots.flux_ratio_figure(
                                    cat.mag_a, cat.ratio, cat.snr_a, band=band, pair=title,
                                    snr_min=cat.snr_min, median=cat.median_ratio,
                                    uncertainty=cat.uncertainty,
                                    colour=plots.run_colour(index))))
    pix = fc.pixels
    if pix is not None and not pix.same_grid:
        out["pixel_note"] = f"pixel comparison not made: {pix.reason}"
    elif pix is not None:
        rows = [[f"ratio (B - sky_B)/(A - sky_A), S/N > {pix.snr_min:g} in A",
                 _num(pix.ratio_median, ".5f"), _num(pix.ratio_nmad, ".3g"), pix.ratio_n],
                ["difference B - A on sky pixels (MJy/sr)", _num(pix.diff_median_mjysr, "+.4g"),
                 _num(pix.diff_nmad_mjysr, ".3g"), pix.diff_n],
                ["sky level A / B (MJy/sr)", f"{_num(pix.sky_a_mjysr)} / {_num(pix.sky_b_mjysr)}",
                 "", ""]]
        out["pixels"] = TableView(["pixel statistic (3σ-clipped)", "median", "NMAD", "pixels"],
                                  rows, [1, 2, 3])
        out["pixel_reason"] = pix.reason or None
        out["diff_fits"] = pix.diff_fits or None
        if pix.difference is not None:
            figs.append(figure_view("difference", "difference image", "B - A in MJy/sr on the "
                                    "common valid pixels (grey: not valid in both); red = B "
                                    "brighter.", lambda: plots.difference_figure(
                                        pix.difference, band=band, pair=title)))
    out["figures"] = figs
    return out


def _filter(result: CompareResult, band: str) -> dict[str, Any]:
    head, rows = _metric_rows(result, band)
    return {"band": band,
            "notes": [f"{p.b.label} vs {p.a.label}: {n}" for p in result.pairs
                      for n in p.filters[band].notes],
            "metric_head": head, "metric_rows": rows, "figures": _overlays(result, band),
            "pairs": [_pair_filter(p, p.filters[band], band, i)
                      for i, p in enumerate(result.pairs, start=1)]}


# --- provenance ---------------------------------------------------------------------------

def _provenance(pair: PairComparison) -> dict[str, Any]:
    prov = pair.provenance
    out: dict[str, Any] = {"title": _pair_title(pair), "compared": prov is not None}
    if prov is None:
        return out

    def text(v: Any) -> Any:
        return ", ".join(map(str, v)) if isinstance(v, list) else v

    def table(head: list[str], rows: list[list[Any]], numeric: list[int] | None = None
              ) -> TableView | None:
        return TableView(head, rows, numeric or []) if rows else None

    only = None
    if prov.only_in_a or prov.only_in_b:
        only = (f"exposures/products only in A: {', '.join(prov.only_in_a) or '—'}; "
                f"only in B: {', '.join(prov.only_in_b) or '—'}")
    files = [[c.name, c.pipeline, c.reftype, c.a, c.b] for c in prov.reference_files]
    out.update(
        notes=list(prov.notes), identical=prov.identical,
        crds=table(["what", "A", "B"], [[k.replace("_", " "), text(v["a"]), text(v["b"])]
                                        for k, v in {**prov.crds, **prov.other}.items()]),
        reftypes=table(["reference type", "A", "B", "pipelines", "exposures/products"],
                       [[g["reftype"], g["a"], g["b"], ", ".join(g["pipelines"]), g["n"]]
                        for g in prov.reftype_summary()], [4]) if files else None,
        files=table(["exposure / product", "pipeline", "reference type", "A", "B"], files),
        only=only,
        parameters=table(["pipeline.step.parameter", "A", "B"],
                         [[k, "default" if v["a"] is None else v["a"],
                           "default" if v["b"] is None else v["b"]]
                          for k, v in prov.parameters.items()]),
        versions=table(["package", "A", "B"], [[k, v["a"] or "—", v["b"] or "—"]
                                               for k, v in prov.versions.items()]),
        same_simulation=bool(prov.simulation.get("same_simulation")))
    return out


def render_html(result: CompareResult) -> str:
    """The HTML text of ``compare.html`` (see the module docstring)."""
    checks = result.checks
    view = {
        "title": " vs ".join(r.name for r in result.runs),
        "created_utc": result.created_utc, "runs": _runs_table(result),
        "n_checks": len(checks), "n_failed": sum(not c.passed for c in checks),
        "notes": list(result.notes),
        "headline": [_headline(result, p) for p in result.pairs],
        "filters": [_filter(result, band) for band in result.filters],
        "provenance": [_provenance(p) for p in result.pairs],
        "written_utc": now_utc(),
    }
    return render_template("compare.html.j2", v=view)
