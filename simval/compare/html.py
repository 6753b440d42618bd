"""``compare.html``: one self-contained page (inline CSS, PNGs as ``data:`` URIs, no script),
in the style of the run report (:mod:`simval.report.html`).

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

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.compare import plots
from simval.compare.plots import RunCurve
from simval.match import column, radec_of, sky_offsets_mas
from simval.metrics import MAG_COLUMN
from simval.metrics_schema import REGISTRY
from simval.provenance import now_utc
from simval.report.html import CSS, _e, _note, _table
from simval.report.plots import png_data_uri
from simval.report.rundir import diff_text, format_value, ratio_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from simval.compare.core import CompareResult, FilterComparison, PairComparison
    from simval.compare.runs import CompareRun

__all__ = ["render_html"]

log = logging.getLogger(__name__)

EXTRA_CSS = """
td.changed{font-weight:700}.up{color:#a50f15}.down{color:#08519c}
tr.moved td{background:#fff3e0}
"""


def _img(make: Callable[[], Figure], title: str, caption: str) -> str:
    try:
        uri, w, h = png_data_uri(make())
    except Exception as exc:  # a plot problem must not lose the page
        log.warning("compare plot %s failed", title, exc_info=True)
        return _note(f"{title}: could not be drawn: {type(exc).__name__}: {exc}")
    return (f'<figure><img src="{uri}" width="{w}" height="{h}" alt="{_e(title)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _num(x: float | None, fmt: str = ".4g") -> str:
    return "—" if x is None or not np.isfinite(x) else format(x, fmt)


def _signed(x: float, unc: float | None, unit: str) -> str:
    return diff_text(x, unc, unit)


# --- header and headline ------------------------------------------------------------------

def _header(result: CompareResult) -> str:
    checks = result.checks
    failed = sum(not c.passed for c in checks)
    rows = []
    for r in result.runs:
        d = r.describe()
        rows.append((r.label, r.name, d["scenario"]["name"], d["scenario"]["hash"],
                     d["crds_context"] or "?", d["jwst"] or "?", str(r.path)))
    if not checks:
        summary = '<span class="nnone">no checks requested</span>'
    else:
        summary = (f'<span class="nfail">{failed} failed</span>' if failed else "") + \
            f'<span class="npass">{len(checks) - failed} passed</span>'
    return (f"<h1>simval compare: {_e(' vs '.join(r.name for r in result.runs))}</h1>"
            f'<div class="meta">written {_e(result.created_utc)}; every difference is '
            "<b>B - A</b> (each run against the first, A)</div>"
            + _table(("run", "directory name", "scenario", "hash", "CRDS context", "jwst",
                      "path"), rows)
            + f'<div class="summary">{summary}</div>')


def _headline(result: CompareResult) -> str:
    out = ['<section id="headline"><h2>Headline</h2>']
    for pair in result.pairs:
        out.append(f"<h3>{_e(pair.b.label)} ({_e(pair.b.name)}) vs {_e(pair.a.label)} "
                   f"({_e(pair.a.name)})</h3>")
        if pair.checks:
            out.append('<table class="verdicts"><thead><tr><th>check</th><th>filter</th>'
                       "<th>A</th><th>B</th><th>B - A ± unc</th><th>limit</th>"
                       "<th>result</th></tr></thead><tbody>")
            for c in sorted(pair.checks, key=lambda c: (c.passed, c.filter, c.metric)):
                cls = "pass" if c.passed else "fail"
                if c.kind == "flux_ratio":
                    a_txt, b_txt = "1", ratio_text(c.b, c.uncertainty)
                    d_txt = _num(c.difference, "+.4f")
                    limit = f"|B/A - 1| <= {c.limit:g}"
                else:
                    a_txt = format_value(c.a, None, c.unit)
                    b_txt = format_value(c.b, None, c.unit)
                    d_txt = _signed(c.difference, c.uncertainty, c.unit) \
                        if c.difference is not None else "—"
                    limit = f"|B - A| <= {c.limit:g}"
                out.append(f'<tr class="{cls}" title="{_e(c.message)}"><td><code>'
                           f"{_e(c.metric)}</code></td><td>{_e(c.filter)}</td>"
                           f'<td class="num">{_e(a_txt)}</td><td class="num">{_e(b_txt)}</td>'
                           f'<td class="num">{_e(d_txt)}</td><td>{_e(limit)}</td>'
                           f'<td class="result">{"PASS" if c.passed else "FAIL"}</td></tr>')
            out.append("</tbody></table>")
        else:
            out.append('<p class="dim">no checks requested (--tolerance, '
                       "--fail-on-flux-ratio): the numbers below are informative.</p>")
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
            rows.append((band, flux, pixel, sky))
        out.append(_table(("filter", "median flux ratio B/A (catalog, S/N > "
                           f"{result.settings['snr_min']:g})",
                           "pixel ratio B/A (S/N > "
                           f"{result.settings['snr_min']:g})", "sky B - A (median)"), rows))
        if pair.verdict_changes:
            def verdict(passed: bool, value: float | None, unit: str) -> str:
                return f"{'PASS' if passed else 'FAIL'} ({format_value(value, None, unit)})"

            vrows = [(v.filter, v.metric, v.limit, verdict(v.a_passed, v.a_value, v.unit),
                      verdict(v.b_passed, v.b_value, v.unit)) for v in pair.verdict_changes]
            out.append(f"<p><b>{len(vrows)} threshold verdict(s) changed</b> (thresholds of "
                       f"run {_e(pair.thresholds_from)} applied to both):</p>"
                       + _table(("filter", "metric", "limit", "A", "B"), vrows))
        elif pair.thresholds_from:
            out.append(f'<p class="dim">no threshold verdict changed ({len(pair.verdicts)} '
                       f"verdicts, thresholds of run {_e(pair.thresholds_from)}).</p>")
        else:
            out.append('<p class="dim">neither scenario sets thresholds: no verdicts to '
                       "compare.</p>")
        prov = pair.provenance
        if prov is not None:
            bits = []
            if "context" in prov.crds:
                bits.append(f"CRDS context {prov.crds['context']['a']} → "
                            f"{prov.crds['context']['b']}")
            if prov.reftypes_changed:
                bits.append("reference types: " + ", ".join(prov.reftypes_changed))
            if prov.parameters:
                bits.append(f"{len(prov.parameters)} step parameter(s)")
            if prov.versions:
                bits.append("versions of " + ", ".join(prov.versions))
            out.append("<p>What differs: " + (_e("; ".join(bits)) if bits else
                                              "nothing recorded in the manifests") + "</p>")
    return "".join(out) + "</section>"


# --- per filter ---------------------------------------------------------------------------

def _value(m: Any, unit: str) -> str:
    return "absent" if m is None else format_value(m.value, m.uncertainty, unit)


def _metric_table(result: CompareResult, band: str) -> str:
    pairs = result.pairs
    names = []
    for p in pairs:
        names += [n for n in p.filters[band].metrics if n not in names]
    head = ["metric", "unit", result.runs[0].label]
    for p in pairs:
        head += [p.b.label, f"{p.b.label} - {p.a.label} ± unc", "method"]
    rows_html = []
    for name in names:
        unit = REGISTRY[name].unit
        first = pairs[0].filters[band].metrics.get(name)
        a = first.a if first else None
        cells = [f'<td title="{_e(REGISTRY[name].description)}"><code>{_e(name)}</code></td>',
                 f"<td>{_e(unit)}</td>", f'<td class="num">{_e(_value(a, unit))}</td>']
        moved = False
        for p in pairs:
            d = p.filters[band].metrics.get(name)
            b = d.b if d else None
            cells.append(f'<td class="num">{_e(_value(b, unit))}</td>')
            if d is None or d.difference is None:
                cells.append('<td class="num">—</td><td></td>')
                continue
            diff = d.difference
            sig = d.uncertainty is not None and d.uncertainty > 0 and \
                abs(diff) > 3 * d.uncertainty
            moved |= sig or (diff != 0 and d.uncertainty == 0)
            text = _signed(diff, d.uncertainty, unit)
            cls = "num changed" if sig else "num"
            cells.append(f'<td class="{cls}">{_e(text)}</td>'
                         f'<td class="dim">{_e(d.method or "")}'
                         + (f" ({d.n_boot})" if d.n_boot else "") + "</td>")
        rows_html.append(f'<tr class="{"moved" if moved else ""}">' + "".join(cells) + "</tr>")
    return ("<details open><summary>metrics of this filter (every entry of metrics.json; "
            "highlighted: |B - A| > 3 σ)</summary><table><thead><tr>"
            + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(rows_html) + "</tbody></table></details>")


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


def _filter_section(result: CompareResult, band: str) -> str:
    out = [f'<section class="filter" id="filter-{_e(band)}"><h2>{_e(band)}</h2>']
    for p in result.pairs:
        out += [_note(f"{p.b.label} vs {p.a.label}: {n}") for n in p.filters[band].notes]
    out.append(_metric_table(result, band))
    curves = _curves(result.runs, band)
    radius = next((r.inputs(band).radius_mas for r in result.runs
                   if r.inputs(band).radius_mas), 100.0)
    figs = []
    if curves:
        figs.append(_img(lambda: plots.completeness_overlay(curves, band=band),
                         "completeness", "Completeness vs true magnitude of each run, 0.5 mag "
                         "bins, 68% Wilson intervals (in-footprint truth sources)."))
        figs.append(_img(lambda: plots.delta_mag_overlay(curves, band=band), "photometry",
                         "Measured - true magnitude of each run: points, running median "
                         "(equal-count bins) and ±NMAD band; < 0: measured brighter."))
        figs.append(_img(lambda: plots.astrometry_overlay(curves, band=band,
                                                          radius_mas=float(radius)),
                         "astrometry", "Position offsets measured - truth of matched stars, "
                         "mas; +: each run's median; circle: its 2-D RMS about zero."))
    else:
        figs.append(_note("overlays not drawn: no run has a readable truth table and "
                          "catalog for this filter"))
    out.append(f'<div class="figs">{"".join(figs)}</div>')
    for i, p in enumerate(result.pairs, start=1):
        out.append(_pair_filter(p, p.filters[band], band, i))
    return "".join(out) + "</section>"


def _pair_filter(pair: PairComparison, fc: FilterComparison, band: str, index: int) -> str:
    title = f"{pair.b.label} vs {pair.a.label}"
    out = [f"<h3>{_e(band)}: {_e(title)} ({_e(pair.b.name)} vs {_e(pair.a.name)})</h3>"]
    figs = []
    cat = fc.catalog
    if cat is not None:
        out.append(f'<div class="meta">catalogs: A {cat.n_a}, B {cat.n_b} sources, '
                   f"{cat.n_matched} matched one-to-one within {cat.radius_mas:g} mas; "
                   f"<code>{_e(cat.flux_column)}</code>; median B/A over S/N &gt; "
                   f"{cat.snr_min:g} in A: <b>"
                   f"{_e(ratio_text(cat.median_ratio, cat.uncertainty))}</b> "
                   f"(n={cat.n}, bootstrap {cat.n_boot})"
                   + (f"; {_e(cat.note)}" if cat.note else "") + "</div>")
        figs.append(_img(lambda: plots.flux_ratio_figure(
            cat.mag_a, cat.ratio, cat.snr_a, band=band, pair=title, snr_min=cat.snr_min,
            median=cat.median_ratio, uncertainty=cat.uncertainty,
            colour=plots.run_colour(index)), "flux ratio",
            "Flux ratio B/A of the sources matched across the two catalogs vs A's "
            "magnitude; filled: the headline sample; line: running median, band ±NMAD."))
    pix = fc.pixels
    if pix is not None and not pix.same_grid:
        out.append(_note(f"pixel comparison not made: {pix.reason}"))
    elif pix is not None:
        rows = [("ratio (B - sky_B)/(A - sky_A), S/N > " f"{pix.snr_min:g} in A",
                 _num(pix.ratio_median, ".5f"), _num(pix.ratio_nmad, ".3g"), pix.ratio_n),
                ("difference B - A on sky pixels (MJy/sr)", _num(pix.diff_median_mjysr, "+.4g"),
                 _num(pix.diff_nmad_mjysr, ".3g"), pix.diff_n),
                ("sky level A / B (MJy/sr)", f"{_num(pix.sky_a_mjysr)} / {_num(pix.sky_b_mjysr)}",
                 "", "")]
        out.append(_table(("pixel statistic (3σ-clipped)", "median", "NMAD", "pixels"), rows,
                          numeric=(1, 2, 3)))
        if pix.reason:
            out.append(_note(pix.reason))
        if pix.diff_fits:
            out.append(f'<div class="meta">difference image written to <code>'
                       f"{_e(pix.diff_fits)}</code></div>")
        if pix.difference is not None:
            figs.append(_img(lambda: plots.difference_figure(pix.difference, band=band,
                                                             pair=title),
                             "difference image", "B - A in MJy/sr on the common valid "
                             "pixels (grey: not valid in both); red = B brighter."))
    out.append(f'<div class="figs">{"".join(figs)}</div>')
    return "".join(out)


# --- provenance ---------------------------------------------------------------------------

def _provenance(pair: PairComparison) -> str:
    prov = pair.provenance
    out = [f"<h3>{_e(pair.b.label)} ({_e(pair.b.name)}) vs {_e(pair.a.label)} "
           f"({_e(pair.a.name)})</h3>"]
    if prov is None:
        return out[0] + '<p class="dim">not compared</p>'
    out += [_note(n) for n in prov.notes]
    if prov.identical:
        out.append('<p>The manifests record the same CRDS context, reference files, step '
                   "parameters and software versions.</p>")
    if prov.crds or prov.other:
        def text(v: Any) -> Any:
            return ", ".join(map(str, v)) if isinstance(v, list) else v

        rows = [(k.replace("_", " "), text(v["a"]), text(v["b"]))
                for k, v in {**prov.crds, **prov.other}.items()]
        out.append("<h4>Run and CRDS</h4>" + _table(("what", "A", "B"), rows))
    if prov.reference_files:
        summary = [(g["reftype"], g["a"], g["b"], ", ".join(g["pipelines"]), g["n"])
                   for g in prov.reftype_summary()]
        out.append("<h4>Reference files that differ, per type</h4>"
                   + _table(("reference type", "A", "B", "pipelines", "exposures/products"),
                            summary, numeric=(4,)))
        rows = [(c.name, c.pipeline, c.reftype, c.a, c.b) for c in prov.reference_files]
        out.append(f"<details><summary>per exposure/product ({len(rows)})</summary>"
                   + _table(("exposure / product", "pipeline", "reference type", "A", "B"),
                            rows) + "</details>")
    if prov.only_in_a or prov.only_in_b:
        out.append(_note(f"exposures/products only in A: {', '.join(prov.only_in_a) or '—'}; "
                         f"only in B: {', '.join(prov.only_in_b) or '—'}"))
    if prov.parameters:
        rows = [(k, "default" if v["a"] is None else v["a"],
                 "default" if v["b"] is None else v["b"]) for k, v in prov.parameters.items()]
        out.append("<h4>Step parameters that differ</h4>"
                   + _table(("pipeline.step.parameter", "A", "B"), rows))
    if prov.versions:
        rows = [(k, v["a"] or "—", v["b"] or "—") for k, v in prov.versions.items()]
        out.append("<h4>Software versions that differ</h4>"
                   + _table(("package", "A", "B"), rows))
    same = prov.simulation.get("same_simulation")
    if same:
        out.append("<p>Both runs calibrated the same simulated exposures (simulation "
                   "reused): the differences come from the calibration alone.</p>")
    return "".join(out)


def render_html(result: CompareResult) -> str:
    """The HTML text of ``compare.html`` (see the module docstring)."""
    body = [_header(result), *(_note(n) for n in result.notes), _headline(result)]
    body += [_filter_section(result, band) for band in result.filters]
    body.append('<section id="provenance"><h2>Provenance differences</h2>'
                + "".join(_provenance(p) for p in result.pairs) + "</section>")
    body.append(f'<p class="dim">written by simval compare at {_e(now_utc())}; compare.json '
                "beside this page holds every number.</p>")
    title = " vs ".join(r.name for r in result.runs)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>simval compare: {_e(title)}</title>"
            f"<style>{CSS}{EXTRA_CSS}</style></head>\n<body>\n" + "\n".join(body)
            + "\n</body></html>\n")
