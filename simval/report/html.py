"""``report.html``: one self-contained page per run (inline CSS, PNGs as ``data:`` URIs,
no script, no external resource), readable in any browser and in a mail attachment.

Order of the page
-----------------
1. a header (scenario, run status, counts of failed and passed checks) and, for a run that
   did not complete, the failed stages with their errors;
2. the **verdict table**: metric, filter, value ± uncertainty, limit, n, PASS/FAIL,
   failures first, colour-coded;
3. per filter (one mosaic each): completeness vs true magnitude with binomial intervals;
   measured - true magnitude vs true magnitude with running median and NMAD band (stars
   and galaxies apart, bright isolated stars ringed); astrometric residuals
   (ΔRA·cos Dec vs ΔDec, mas, with the RMS circle); the background-residual map (the i2d
   with sources masked, smoothed, diverging colours centred on the expected level); the
   mosaic thumbnail (zscale, asinh) with matched, missed and spurious sources; then every
   metric of ``metrics.json`` for that filter (folded);
4. provenance from ``manifest.json`` and ``plan.json``: scenario, software versions, CRDS
   context, step parameters as run, reference files per stage (with the jwst steps that
   use each reference type, from the steps' ``reference_file_types``), stage times.

Inputs are files of the run directory only: ``metrics.json``,
``truth/<product>_truth.ecsv``, ``image3/<product>/<product>_i2d.fits``, ``_cat.ecsv``
(and ``_segm.fits`` if present), ``evaluation/<product>_match.ecsv`` (the evaluation's
pairs and samples: the ringed bright stars are the metric's sample), ``manifest.json``,
``plan.json``. Anything missing or unreadable becomes a visible note in its place, never
an exception.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.atomic import write_text
from simval.catalogs.validate import recovered_vs_input_counts
from simval.layout import RunLayout
from simval.match import column, radec_of, sky_offsets_mas
from simval.metrics import MAG_COLUMN
from simval.metrics.background import sky_level, source_mask
from simval.metrics_schema import REGISTRY
from simval.provenance import now_utc, package_version
from simval.report.plots import (
    astrometry_figure,
    background_figure,
    block_reduce,
    completeness_figure,
    counts_figure,
    delta_mag_figure,
    mosaic_figure,
    png_data_uri,
    smooth_nan,
)
from simval.report.rundir import (
    FilterInputs,
    RunContents,
    filter_inputs,
    format_value,
    load_run,
    sort_verdicts,
)

if TYPE_CHECKING:
    from astropy.table import Table
    from matplotlib.figure import Figure

    from simval.verdict import Verdict

__all__ = ["render_report", "write_report"]

log = logging.getLogger(__name__)

#: Largest side of the mosaic thumbnail and of the background map, in image pixels.
THUMBNAIL_PIX = 560
BACKGROUND_PIX = 280
#: Background map: sources (2-sigma segments, and the pipeline's segmentation image) are
#: grown by this many mosaic pixels, and the map is smoothed by a Gaussian of this sigma
#: (mosaic pixels; at least 1.5 map pixels).
MASK_GROW_PIX = 8
SMOOTH_PIX = 6.0

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 margin:0 auto;max-width:1240px;padding:0 18px 40px;color:#1b1b1b;background:#fff}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;margin:28px 0 8px;
 border-bottom:2px solid #ddd;padding-bottom:3px}h3{font-size:15px;margin:18px 0 6px}
.meta{color:#555;font-size:13px}.meta code{font-size:12px}
nav{font-size:13px;margin:8px 0}nav a{margin-right:10px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #d4d4d4;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f1f1f1}td.num{text-align:right;font-variant-numeric:tabular-nums;
 white-space:nowrap}
tr.fail td{background:#fde2e1}tr.pass td{background:#e6f4e6}
td.result{font-weight:700}tr.fail td.result{color:#a50f15}tr.pass td.result{color:#1a7431}
.summary span{display:inline-block;padding:2px 10px;border-radius:10px;margin-right:6px;
 font-weight:600}.summary .nfail{background:#fde2e1;color:#a50f15}
.summary .npass{background:#e6f4e6;color:#1a7431}.summary .nnone{background:#eee}
.note{background:#fff6d6;border-left:4px solid #e0b000;padding:6px 10px;margin:8px 0;
 font-size:13px}.error{background:#fde2e1;border-left:4px solid #c0392b;padding:6px 10px;
 margin:8px 0;font-size:13px;white-space:pre-wrap}
.figs{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0;border:1px solid #e3e3e3;
 padding:6px;background:#fafafa}figure img{display:block;max-width:100%;height:auto}
figcaption{font-size:12px;color:#444;max-width:520px;margin-top:4px}
details{margin:8px 0}summary{cursor:pointer;font-weight:600}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.dim{color:#777}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _note(text: str, cls: str = "note") -> str:
    return f'<div class="{cls}">{_e(text)}</div>'


def _table(head: Iterable[str], rows: Iterable[Iterable[Any]], *, cls: str = "",
           numeric: Iterable[int] = ()) -> str:
    num = set(numeric)
    out = [f'<table class="{cls}">' if cls else "<table>", "<thead><tr>"]
    out += [f"<th>{_e(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(
            f'<td class="num">{_e(c)}</td>' if i in num else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


# --- header and verdicts ------------------------------------------------------------------

def _header(run: RunContents, verdicts: list[Verdict]) -> str:
    failed = sum(not v.passed for v in verdicts)
    passed = len(verdicts) - failed
    prov = run.metrics.provenance if run.metrics else {}
    bits = [f"scenario <b>{_e(run.scenario_name)}</b>"]
    digest = (run.metrics.scenario_hash if run.metrics else
              ((run.manifest or {}).get("scenario") or {}).get("hash"))
    if digest:
        bits.append(f"hash <code>{_e(digest)}</code>")
    bits.append(f"run status <b>{_e(run.status)}</b>")
    if prov.get("evaluated_utc"):
        bits.append(f"evaluated {_e(prov['evaluated_utc'])}")
    bits.append(f"run directory <code>{_e(run.run_dir)}</code>")
    if verdicts:
        chips = (f'<span class="nfail">{failed} FAIL</span>' if failed else "") + \
                f'<span class="npass">{passed} PASS</span>'
    else:
        chips = '<span class="nnone">no verdicts</span>'
    nav = ['<a href="#verdicts">verdicts</a>']
    nav += [f'<a href="#filter-{_e(b)}">{_e(b)}</a>' for b in run.filters]
    nav.append('<a href="#provenance">provenance</a>')
    out = [f"<h1>simval report: {_e(run.scenario_name)}</h1>",
           f'<div class="meta">{" · ".join(bits)}</div>',
           f'<p class="summary">{chips}</p>', f"<nav>{''.join(nav)}</nav>"]
    if run.status not in ("complete", "unknown"):
        out.append(_run_failure(run))
    return "".join(out)


def _run_failure(run: RunContents) -> str:
    m = run.manifest or {}
    lines = [f"The run is {run.status}."]
    if m.get("error"):
        lines.append(f"error: {m['error']}")
    stages = m.get("stages") or {}
    for sid in m.get("failed_stages") or []:
        s = stages.get(sid) or {}
        where = ", ".join(f"{k}: {s[k]}" for k in ("log", "traceback") if s.get(k))
        lines.append(f"{sid} failed: {s.get('error') or 'no error recorded'}"
                     + (f" ({where})" if where else ""))
    blocked = m.get("blocked_stages") or []
    if blocked:
        lines.append(f"{len(blocked)} stage(s) not run because of it: {', '.join(blocked)}")
    return _note("\n".join(lines), "error")


def _verdict_section(verdicts: list[Verdict], run: RunContents) -> str:
    out = ['<section id="verdicts"><h2>Verdicts</h2>']
    if not verdicts:
        if run.metrics is None:
            why = "there is no valid metrics.json (see the note above)."
        elif run.comparison is None or not run.comparison.thresholds:
            why = "the scenario sets no thresholds (comparison.thresholds)."
        else:
            why = "the thresholds could not be applied (see the note above)."
        out.append(_note(f"No verdicts: {why}"))
        return "".join(out) + "</section>"
    out.append('<table class="verdicts"><thead><tr><th>metric</th><th>filter</th>'
               "<th>value ± unc</th><th>limit</th><th>n</th><th>result</th></tr></thead>"
               "<tbody>")
    for v in sort_verdicts(verdicts):
        spec = REGISTRY.get(v.metric)
        tip = f"{spec.description}. {v.message}" if spec else v.message
        kind = "" if v.kind == "threshold" else f' <span class="dim">({_e(v.kind)})</span>'
        cls = "pass" if v.passed else "fail"
        out.append(f'<tr class="{cls}"><td title="{_e(tip)}"><code>{_e(v.metric)}</code>{kind}'
                   f"</td><td>{_e(v.filter)}</td>"
                   f'<td class="num">{_e(format_value(v.value, v.uncertainty, v.unit))}</td>'
                   f"<td>{_e(v.limit)}</td><td class=\"num\">{v.n}</td>"
                   f'<td class="result">{"PASS" if v.passed else "FAIL"}</td></tr>')
    out.append("</tbody></table>")
    reasons = [v for v in verdicts if not v.passed and "(" in v.message]
    if reasons:
        out.append("<details open><summary>why each failure failed</summary><ul>")
        out += [f"<li class=\"mono\">{_e(v.message)}</li>" for v in sort_verdicts(reasons)]
        out.append("</ul></details>")
    return "".join(out) + "</section>"


# --- per filter ---------------------------------------------------------------------------

def _col(table: Table, name: str, dtype: Any = np.float64) -> np.ndarray:
    return column(table, name, dtype)


def _inside(truth: Table) -> np.ndarray:
    if "in_footprint" in truth.colnames:
        return _col(truth, "in_footprint", bool)
    return np.ones(len(truth), bool)


def _kinds(truth: Table) -> np.ndarray:
    return np.char.lower(np.asarray(truth["type"]).astype(str))


def _metric(run: RunContents, band: str, name: str) -> tuple[float | None, dict[str, Any]]:
    m = run.metrics.get(band, name) if run.metrics else None
    return (None, {}) if m is None else (m.value, dict(m.details or {}))


def _need(f: FilterInputs, *what: str) -> None:
    missing = [w for w in what if getattr(f, w) is None]
    if missing:
        raise _MissingInputError(f"needs the {' and '.join(missing)} (see the notes above)")


class _MissingInputError(Exception):
    """A plot's inputs are absent; the message says which."""


def _completeness_plot(run: RunContents, f: FilterInputs) -> Figure:
    _need(f, "truth", "match")
    inside = _inside(f.truth)
    mag50, _ = _metric(run, f.band, "completeness_50_mag")
    mag90, _ = _metric(run, f.band, "completeness_90_mag")
    return completeness_figure(_col(f.truth, "mag_true_ab")[inside], f.match.matched[inside],
                               _kinds(f.truth)[inside], band=f.band, mag50=mag50, mag90=mag90)


def _matched_rows(f: FilterInputs) -> np.ndarray:
    return np.flatnonzero(f.match.matched & _inside(f.truth))


def _delta_mag_plot(run: RunContents, f: FilterInputs) -> Figure:
    _need(f, "truth", "measured", "match")
    rows = _matched_rows(f)
    kinds = _kinds(f.truth)[rows]
    t2m = f.match.truth_to_measured[rows]
    mmag = np.full(rows.size, np.nan)
    for kind, colname in MAG_COLUMN.items():
        sel = kinds == kind
        if sel.any() and colname in f.measured.colnames:
            mmag[sel] = _col(f.measured, colname)[t2m[sel]]
    bright = f.bright_star[rows] if f.bright_star is not None else None
    bias, _ = _metric(run, f.band, "phot_bias_bright_star_mag")
    return delta_mag_figure(_col(f.truth, "mag_true_ab")[rows], mmag, kinds, band=f.band,
                            bright=bright, bias_bright=bias)


def _astrometry_plot(run: RunContents, f: FilterInputs) -> Figure:
    _need(f, "truth", "measured", "match")
    rows = _matched_rows(f)
    t2m = f.match.truth_to_measured[rows]
    mra, mdec = radec_of(f.measured)
    tra, tdec = radec_of(f.truth)
    dx, dy = sky_offsets_mas(mra[t2m], mdec[t2m], tra[rows], tdec[rows])
    rms, _ = _metric(run, f.band, "astrom_rms_mas")
    return astrometry_figure(dx, dy, _kinds(f.truth)[rows], band=f.band,
                             radius_mas=f.match.radius_mas, rms_mas=rms)


@dataclass
class _Mosaic:
    data: np.ndarray
    wht: np.ndarray | None
    header: Any


def _read_mosaic(path: Path) -> _Mosaic:
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        names = {h.name for h in hdul}
        if "SCI" not in names:
            raise _MissingInputError(f"{path.name} has no SCI extension")
        data = np.asarray(hdul["SCI"].data, np.float64)
        if data.ndim != 2:
            raise _MissingInputError(f"{path.name}: SCI is {data.ndim}-D, expected 2-D")
        wht = np.asarray(hdul["WHT"].data, np.float64) if "WHT" in names else None
        return _Mosaic(data, wht, hdul["SCI"].header.copy())


def _valid(mosaic: _Mosaic) -> np.ndarray:
    valid = np.isfinite(mosaic.data)
    if mosaic.wht is not None and mosaic.wht.shape == mosaic.data.shape:
        valid &= np.isfinite(mosaic.wht) & (mosaic.wht > 0)
    return valid


def _counts_plot(run: RunContents, f: FilterInputs, mosaic: _Mosaic) -> Figure:
    """Input vs recovered vs reference counts over the mosaic's valid area (the question a
    mock-catalog builder asks: do the simulated images look like the real survey?)."""

    _need(f, "truth", "measured", "match")
    pixar = mosaic.header.get("PIXAR_SR") if mosaic.header is not None else None
    if not pixar:
        raise _MissingInputError("the mosaic's SCI header has no PIXAR_SR (pixel area)")
    area = float(_valid(mosaic).sum()) * float(pixar) * (180.0 / np.pi * 60.0) ** 2
    inside = _inside(f.truth)
    true_mag = _col(f.truth, "mag_true_ab")
    measured = f.measured["isophotal_abmag"] if "isophotal_abmag" in f.measured.colnames \
        else f.measured["aper_total_abmag"]
    counts = recovered_vs_input_counts(true_mag[inside], np.asarray(measured, float), area,
                                       band=f.band,
                                       matched_input_mags=true_mag[inside & f.match.matched])
    return counts_figure(counts, band=f.band)


def _truth_mosaic(run: RunContents, details: dict, shape: tuple[int, ...]
                  ) -> np.ndarray | None:
    """The truth mosaic named in the background metric's details, if readable."""
    rel = details.get("truth")
    path = run.run_dir / str(rel) if rel else None
    if path is None or not path.is_file():
        return None
    from astropy.io import fits

    data = np.asarray(fits.getdata(path, "SCI"), np.float64)
    return data if data.shape == shape else None


def _background_plot(run: RunContents, f: FilterInputs, mosaic: _Mosaic) -> Figure:
    img = mosaic.data
    valid = _valid(mosaic)
    mask = source_mask(img, valid=valid, dilate_radius_pix=MASK_GROW_PIX)
    segm_path = run.product_path(f.band, "_segm.fits")
    if segm_path is not None and segm_path.is_file():
        from astropy.io import fits

        segm = np.asarray(fits.getdata(segm_path, "SCI"))
        if segm.shape == img.shape:
            mask |= source_mask(img, segmentation=segm, valid=valid,
                                dilate_radius_pix=MASK_GROW_PIX)
    _, details = _metric(run, f.band, "bkg_residual_mjysr")
    expected = details.get("expected_mjysr")
    injected = details.get("injected_sky_mjysr")
    if expected is None:
        expected, _, _ = sky_level(img, mask=mask | ~valid)
        note = "no expected level in metrics.json: centred on the measured sky level"
    else:
        note = (f"expected level {expected:.4g} MJy/sr "
                f"({details.get('background_recipe', 'recipe unknown')})")
    model = float(expected)
    bar_label = None
    truth = _truth_mosaic(run, details, img.shape)
    if truth is not None and injected is not None and \
            details.get("recipe_expected_mjysr") is not None:
        # pixel by pixel against the noiseless truth (faint light is signal, not sky)
        model = truth - float(injected) + float(details["recipe_expected_mjysr"])
        note = f"against {Path(str(details['truth'])).name}"
        bar_label = "mosaic - truth mosaic (MJy/sr)"
        expected = float(details["recipe_expected_mjysr"])
    residual = np.where(valid & ~mask, img - model, np.nan)
    reduced, block = block_reduce(residual, BACKGROUND_PIX)
    sigma_red = max(SMOOTH_PIX / block, 1.5)
    smoothed = smooth_nan(reduced, sigma_red)
    return background_figure(smoothed, band=f.band, expected_mjysr=float(expected),
                             block=block, sigma_pix=sigma_red * block,
                             injected_sky_mjysr=injected, level_note=note,
                             bar_label=bar_label)


def _world_to_pixel(header: Any, ra: np.ndarray, dec: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    from astropy.wcs import WCS

    wcs = WCS(header)
    if not wcs.has_celestial:
        return None
    x, y = wcs.celestial.all_world2pix(ra, dec, 0)
    return np.asarray(x, float), np.asarray(y, float)


def _mosaic_plot(run: RunContents, f: FilterInputs, mosaic: _Mosaic) -> Figure:
    thumb, block = block_reduce(np.where(_valid(mosaic), mosaic.data, np.nan), THUMBNAIL_PIX)
    marks: dict[str, Any] = {}
    note = ""
    if f.match is None:
        note = "no matched catalogs: sources not marked"
    else:
        mra, mdec = radec_of(f.measured)
        tra, tdec = radec_of(f.truth)
        meas = _world_to_pixel(mosaic.header, mra, mdec)
        true = _world_to_pixel(mosaic.header, tra, tdec)
        if meas is None or true is None:
            note = "no celestial WCS in the SCI header: sources not marked"
        else:
            ok = f.match.measured_matched
            missed = f.match.missed & _inside(f.truth)
            marks = {"matched_xy": (meas[0][ok], meas[1][ok]),
                     "missed_xy": (true[0][missed], true[1][missed]),
                     "spurious_xy": (meas[0][~ok], meas[1][~ok])}
    return mosaic_figure(thumb, band=f.band, block=block, note=note, **marks)


_CAPTIONS = {
    "completeness": "Fraction of truth sources inside the footprint that were matched, per "
                    "0.5 mag bin of true AB magnitude; bars are 68% Wilson binomial "
                    "intervals; grey bars count the truth sources.",
    "photometry": "Measured minus true AB magnitude of matched sources (stars: "
                  "aper_total_abmag, galaxies: isophotal_abmag). Lines: running median in "
                  "equal-count bins; bands: ±NMAD. Triangles: beyond the axis.",
    "astrometry": "Position offsets measured - truth in the tangent plane, mas. Solid "
                  "circle: 2-D RMS of the stars about zero (astrom_rms_mas); dashed: the "
                  "match radius.",
    "background": "Mosaic minus what it should be — the noiseless truth mosaic (MIRAGE's "
                  "seed images drizzled on the same grid) less the sky the background "
                  "recipe removes, or the expected level where no truth mosaic exists — with "
                  "sources masked (2-sigma segments and the pipeline's segmentation, grown "
                  f"by {MASK_GROW_PIX} pixels) and smoothed; red = too much sky left, blue "
                  "= over-subtracted; grey = masked or outside the footprint.",
    "counts": "Differential number counts per arcmin² per mag over the mosaic's valid "
              "area: the input catalog's sources in the footprint (true magnitude), the "
              "pipeline catalog (isophotal magnitude) and the reference relation shipped "
              "with simval (docs/catalogs.md).",
    "mosaic": "The i2d (zscale, asinh stretch). Green: matched detections; red: truth "
              "sources in the footprint without a detection; orange: detections without a "
              "truth counterpart.",
}


def _figure_html(name: str, title: str, make: Callable[[], Figure]) -> str:
    from matplotlib.figure import Figure as _Figure


    try:
        fig = make()
        if not isinstance(fig, _Figure):
            raise TypeError(f"expected a Figure, got {type(fig).__name__}")
        uri, w, h = png_data_uri(fig)
    except _MissingInputError as exc:
        return _note(f"{title}: not available: {exc}.")
    except Exception as exc:
        log.warning("report plot %s failed", title, exc_info=True)
        return _note(f"{title}: could not be drawn: {type(exc).__name__}: {exc}")
    return (f'<figure class="plot-{name}"><img src="{uri}" width="{w}" height="{h}" '
            f'alt="{_e(title)}"><figcaption>{_e(_CAPTIONS[name])}</figcaption></figure>')


def _metrics_details(run: RunContents, band: str) -> str:
    entries = (run.metrics.filters.get(band) or {}) if run.metrics else {}
    if not entries:
        return ""
    rows = []
    for name in [n for n in REGISTRY if n in entries] + sorted(set(entries) - set(REGISTRY)):
        m = entries[name]
        spec = REGISTRY.get(name)
        why = (m.details or {}).get("not_computed")
        rows.append((name, format_value(m.value, m.uncertainty, m.unit), m.n,
                     f"not computed: {why}" if why else (spec.description if spec else "")))
    return ("<details><summary>all metrics of this filter "
            f"({len(rows)})</summary>"
            + _table(("metric", "value ± unc", "n", "definition"), rows, numeric=(1, 2))
            + "</details>")


def _filter_section(run: RunContents, band: str) -> str:
    f = filter_inputs(run, band)
    out = [f'<section class="filter" id="filter-{_e(band)}"><h2>{_e(band)}</h2>']
    prov = ((run.metrics.provenance if run.metrics else {}).get("filters") or {}).get(band)
    facts = [f"product <code>{_e(f.product or 'unknown')}</code>"]
    if f.truth is not None:
        facts.append(f"truth {len(f.truth)} ({int(_inside(f.truth).sum())} in the footprint)")
    if f.measured is not None:
        facts.append(f"detections {len(f.measured)}")
    if f.match is not None:
        facts.append(f"matched {f.match.n_pairs} within {f.match.radius_mas:g} mas")
    if isinstance(prov, Mapping) and prov.get("not_computed"):
        facts.append(f"{len(prov['not_computed'])} metric(s) not computed")
    out.append(f'<div class="meta">{" · ".join(facts)}</div>')
    out += [_note(n) for n in f.notes]
    figs = [_figure_html("completeness", "completeness", lambda: _completeness_plot(run, f)),
            _figure_html("photometry", "photometry", lambda: _delta_mag_plot(run, f)),
            _figure_html("astrometry", "astrometry", lambda: _astrometry_plot(run, f))]
    mosaic = None
    if f.i2d is not None:
        try:
            mosaic = _read_mosaic(f.i2d)
        except Exception as exc:
            out.append(_note(f"the mosaic cannot be read: {type(exc).__name__}: {exc}"))
    for name, title, make in (("background", "background residual map", _background_plot),
                              ("mosaic", "mosaic thumbnail", _mosaic_plot),
                              ("counts", "number counts", _counts_plot)):
        if mosaic is None:
            figs.append(_note(f"{title}: not available: no readable mosaic."))
        else:
            figs.append(_figure_html(name, title, lambda m=make: m(run, f, mosaic)))
    out.append(f'<div class="figs">{"".join(figs)}</div>')
    out.append(_metrics_details(run, band))
    return "".join(out) + "</section>"


# --- provenance ---------------------------------------------------------------------------

def _kv(mapping: Mapping[str, Any]) -> str:
    rows = [(k, json.dumps(v) if isinstance(v, dict | list) else v)
            for k, v in mapping.items() if v not in (None, "", {}, [])]
    return _table(("key", "value"), rows) if rows else '<p class="dim">none recorded</p>'


def _run_summary(run: RunContents) -> str:
    m = run.manifest or {}
    scen = m.get("scenario") or {}
    plan = run.plan or {}
    crds = m.get("crds") or {}
    kit = m.get("kit") or {}
    prov = run.metrics.provenance if run.metrics else {}
    rows = {
        "scenario": f"{scen.get('name', run.scenario_name)} ({scen.get('hash', '?')}), "
                    f"source {scen.get('source', '?')}",
        "run status": run.status,
        "started / finished (UTC)": f"{m.get('created_utc', '?')} / {m.get('finished_utc', '?')}",
        "wall time (s)": m.get("wall_s"),
        "peak memory of a stage (MiB)": m.get("peak_rss_mb_max"),
        "CRDS context": crds.get("context") or prov.get("crds_context"),
        "CRDS cache": f"{crds.get('kind', '?')}: {crds.get('path', '?')}" if crds else None,
        "synthetic kit": (f"{kit.get('root')} (seed {kit.get('seed')}, version "
                          f"{kit.get('version')})") if kit else None,
        "background recipe": m.get("background_recipe") or prov.get("background_recipe"),
        "skymatch skymethod": prov.get("skymethod"),
        "host": ", ".join(f"{k} {v}" for k, v in (m.get("host") or {}).items()),
        "execution": ", ".join(f"{k} {v}" for k, v in (m.get("execution") or {}).items()),
        "pointing": (f"RA {plan.get('ra_deg')}, Dec {plan.get('dec_deg')} deg, PA_V3 "
                     f"{plan.get('pa_v3_deg')} deg, aperture {plan.get('pointing_aperture')}"
                     if plan.get("ra_deg") is not None else None),
        "exposures / mosaics": (f"{len(plan.get('exposures') or [])} / "
                                f"{len(plan.get('products') or [])}" if plan else None),
        "evaluated (UTC)": prov.get("evaluated_utc"),
    }
    return _kv(rows)


def _versions(run: RunContents) -> str:
    m = run.manifest or {}
    versions = dict(m.get("versions") or {})
    if not versions and run.metrics:
        versions = dict(run.metrics.provenance.get("versions") or {})
    out = [_table(("package", "version"), sorted(versions.items())) if versions else
           '<p class="dim">no versions recorded</p>']
    if m.get("worker_versions"):
        out.append(_note("Dask workers ran other versions: "
                         + json.dumps(m["worker_versions"], sort_keys=True)))
    return "".join(out)


def _step_parameters(run: RunContents) -> str:
    params = (run.manifest or {}).get("pipeline_parameters")
    if params is None:
        params = ((run.plan or {}).get("scenario") or {}).get("pipeline")
    if not params:
        return '<p class="dim">no step parameters recorded (pipeline defaults)</p>'
    rows = []
    for stage in ("detector1", "image2", "image3", *sorted(set(params) - {"detector1",
                                                                          "image2", "image3"})):
        steps = params.get(stage)
        if stage not in params:
            continue
        if not steps:
            rows.append((stage, "(all steps)", "pipeline defaults"))
            continue
        for step, values in steps.items():
            text = ", ".join(f"{k} = {json.dumps(v)}" for k, v in values.items()) \
                if isinstance(values, Mapping) else json.dumps(values)
            rows.append((stage, step, text))
    return _table(("pipeline", "step", "parameters as run"), rows)


@functools.lru_cache(maxsize=1)
def _reftype_steps() -> dict[str, tuple[str, ...]]:
    """Reference type -> the ``pipeline.step`` s that use it, from jwst's own pipeline
    classes (``Step.reference_file_types``); empty if jwst cannot be imported."""
    try:
        from jwst.pipeline import Detector1Pipeline, Image2Pipeline, Image3Pipeline
    except Exception:  # the table is still useful without the step names
        return {}
    out: dict[str, list[str]] = {}
    for name, pipeline in (("detector1", Detector1Pipeline), ("image2", Image2Pipeline),
                           ("image3", Image3Pipeline)):
        for step, cls in pipeline.step_defs.items():
            for reftype in getattr(cls, "reference_file_types", ()) or ():
                out.setdefault(str(reftype), []).append(f"{name}.{step}")
    return {k: tuple(v) for k, v in out.items()}


def _reference_files(run: RunContents) -> str:
    refs = (run.manifest or {}).get("reference_files") or {}
    if not refs:
        return '<p class="dim">no reference files recorded</p>'
    out = []
    for stage in ("detector1", "image2", "image3"):
        groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for name, per_stage in refs.items():
            files = (per_stage or {}).get(stage)
            if files:
                key = tuple(sorted((str(k), str(v)) for k, v in files.items()))
                groups.setdefault(key, []).append(name)
        for key, names in groups.items():
            files = dict(key)
            context = files.pop("crds_context", None)
            version = files.pop("crds_version", None)
            used = sorted((k, v) for k, v in files.items() if v.upper() != "N/A")
            shown = ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4
                                            else "")
            ctx = f" · CRDS {context}" + (f" (crds {version})" if version else "") \
                if context else ""
            steps = _reftype_steps()
            rows = [(k, v, ", ".join(steps.get(k, ()))) for k, v in used]
            out.append(f"<h3>{_e(stage)}: {_e(shown)}<span class=\"dim\">{_e(ctx)}</span></h3>"
                       + _table(("reference type", "file", "used by step"), rows))
    return "".join(out)


def _stage_times(run: RunContents) -> str:
    stages = (run.manifest or {}).get("stages") or {}
    if not stages:
        return '<p class="dim">no stage records</p>'
    rows = []
    total = 0.0
    for sid, s in stages.items():
        wall = s.get("wall_s")
        total += float(wall or 0.0) if s.get("status") == "complete" else 0.0
        rows.append((sid, s.get("kind", ""), s.get("status", ""),
                     "" if wall is None else f"{float(wall):.1f}",
                     "" if s.get("peak_rss_mb") is None else f"{float(s['peak_rss_mb']):.0f}",
                     s.get("error") or (f"blocked by {s['blocked_by']}" if s.get("blocked_by")
                                        else ""), s.get("log") or ""))
    note = ('<p class="dim">wall time of the run that made each output (cached stages: '
            f'the recorded time); stages run now: {total:.1f} s in total.</p>')
    return _table(("stage", "kind", "status", "wall (s)", "peak RSS (MiB)", "error", "log"),
                  rows, numeric=(3, 4)) + note


def _provenance(run: RunContents) -> str:
    out = ['<section id="provenance"><h2>Provenance</h2>']
    if run.manifest is None:
        out.append(_note("no manifest.json: the run has not finished (it is written last)."))
    out += ["<h3>Run</h3>", _run_summary(run), "<h3>Software versions</h3>", _versions(run),
            "<h3>Step parameters</h3>", _step_parameters(run),
            "<h3>Reference files per stage</h3>", _reference_files(run),
            "<h3>Stage times</h3>", _stage_times(run)]
    return "".join(out) + "</section>"


# --- the document -------------------------------------------------------------------------

def render_report(run_dir: str | os.PathLike, *, verdicts: list[Verdict] | None = None
                  ) -> str:
    """The HTML text of a run's report (see the module docstring).

    Parameters
    ----------
    run_dir : path
        The run directory.
    verdicts : list of Verdict, optional
        Default: the threshold verdicts recomputed from ``metrics.json``.

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` is not a directory (everything else becomes a note).
    """
    run = load_run(run_dir)
    shown = run.verdicts if verdicts is None else list(verdicts)
    simval_version = package_version("simval", "unknown")
    notes = [n for n in run.notes if "sets no thresholds" not in n]  # said with the verdicts
    body = [_header(run, shown), *(_note(n) for n in notes), _verdict_section(shown, run)]
    if not run.filters:
        body.append(_note("No filter to show: the run has no plan.json products and no "
                          "metrics.json."))
    body += [_filter_section(run, band) for band in run.filters]
    body.append(_provenance(run))
    body.append(f'<p class="dim">written by simval {_e(simval_version)} at '
                f'{_e(now_utc())}</p>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>simval report: {_e(run.scenario_name)}</title>"
            f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(run_dir: str | os.PathLike, *, verdicts: list[Verdict] | None = None,
                 output: str | os.PathLike | None = None) -> Path:
    """Write the report (atomically) to ``output`` (default ``run_dir/report.html``).

    Returns
    -------
    Path
        The file written.
    """

    text = render_report(run_dir, verdicts=verdicts)
    path = Path(output) if output is not None else RunLayout(Path(run_dir)).report
    return write_text(path, text)
