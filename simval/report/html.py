"""``report.html``: one self-contained page per run (inline CSS, PNGs as ``data:`` URIs,
no script, no external resource), readable in any browser and in a mail attachment; and
``report.json`` beside it, the same content for programs.

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
   mosaic thumbnail (zscale, asinh) with matched, missed and spurious sources; the
   photometry split (calibration against the truth mosaic in the pipeline's footprints and
   apertures, catalog sky, isophotal loss) and the noise against ERR (raw and corrected
   for drizzle's correlation); then every metric of ``metrics.json`` for that filter
   (folded);
4. provenance from ``manifest.json`` and ``plan.json``: scenario, software versions, CRDS
   context, step parameters as run, reference files per stage (with the jwst steps that
   use each reference type, as the calibration stages recorded them in the manifest's
   ``reftype_steps``; a run made before that record shows the files alone), stage times.

Inputs are files of the run directory only: ``metrics.json``,
``truth/<product>_truth.ecsv``, ``image3/<product>/<product>_i2d.fits``, ``_cat.ecsv``
(and ``_segm.fits`` if present), ``evaluation/<product>_match.ecsv`` (the evaluation's
pairs and samples: the ringed bright stars are the metric's sample), ``manifest.json``,
``plan.json``. Anything missing or unreadable becomes a visible note in its place, never
an exception.

Construction
------------
Python builds a view-model (:class:`ReportView`: dataclasses of text, numbers and PNG data
URIs); the jinja2 templates in ``simval/report/templates`` (``report.html.j2`` on
``base.html.j2``, with the pieces shared with ``compare.html`` in ``_macros.html.j2``)
turn it into HTML with autoescape on, so every value from a run is escaped.
``report.json`` is the view-model as JSON without the PNGs (each figure keeps its title,
caption and ``drawn``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np

from simval.atomic import write_text
from simval.catalogs.validate import recovered_vs_input_counts
from simval.evaluate import MissingProductError, Mosaic, read_mosaic
from simval.layout import RunLayout
from simval.manifest_schema import Manifest
from simval.match import column, radec_of, sky_offsets_mas
from simval.metrics import MAG_COLUMN
from simval.metrics.background import sky_level, source_mask
from simval.metrics_schema import REGISTRY
from simval.provenance import now_utc, package_version
from simval.report.coron import coron_section, is_coronagraphy
from simval.report.plots import (
    astrometry_figure,
    background_figure,
    block_reduce,
    completeness_figure,
    counts_figure,
    delta_mag_figure,
    group_offsets_figure,
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
from simval.verdict import Verdict

if TYPE_CHECKING:
    from astropy.table import Table
    from matplotlib.figure import Figure


__all__ = ["Cell", "Fact", "FigureView", "ReportView", "TableView", "build_report_view",
           "figure_view", "render_report", "render_template", "report_json", "write_report"]

log = logging.getLogger(__name__)

#: Largest side of the mosaic thumbnail and of the background map, in image pixels.
THUMBNAIL_PIX = 560
BACKGROUND_PIX = 280
#: Background map: sources (2-sigma segments, and the pipeline's segmentation image) are
#: grown by this many mosaic pixels, and the map is smoothed by a Gaussian of this sigma
#: (mosaic pixels; at least 1.5 map pixels).
MASK_GROW_PIX = 8
SMOOTH_PIX = 6.0
#: Schema of ``report.json``.
REPORT_JSON_SCHEMA = "simval.report"
REPORT_JSON_VERSION = 1
#: Pipelines in the order their reference-file tables are shown.
_PIPELINES = ("detector1", "image2", "image3", "coron3")


# --- view-model pieces shared with compare.html -------------------------------------------

@dataclass(frozen=True)
class Cell:
    """One table cell: ``text``, its CSS class (``"num"``: right-aligned number), a hover
    ``title``, shown as ``code``, and a dim ``note`` in parentheses after it."""

    text: Any
    cls: str = ""
    title: str | None = None
    code: bool = False
    note: str | None = None


@dataclass
class TableView:
    """A plain table: column ``head``, ``rows`` of values, the ``numeric`` column indices
    (right-aligned) and the table's CSS class."""

    head: list[str]
    rows: list[list[Any]]
    numeric: list[int] = field(default_factory=list)
    cls: str = ""


@dataclass
class FigureView:
    """A plot: ``uri`` is its PNG as a ``data:`` URI (``width`` x ``height`` pixels), or
    None with ``note`` saying why it is not drawn."""

    name: str
    title: str
    caption: str
    uri: str | None = None
    width: int = 0
    height: int = 0
    note: str | None = None
    cls: str = ""

    def to_json(self) -> dict[str, Any]:
        """The figure without its PNG."""
        return {"name": self.name, "title": self.title, "caption": self.caption,
                "drawn": self.uri is not None, "width": self.width, "height": self.height,
                "note": self.note}


@dataclass(frozen=True)
class Fact:
    """One item of a header line: ``label``, then ``value`` as ``style`` (``"b"``: bold,
    ``"code"``, ``""``: plain; no value: the label alone)."""

    label: str
    value: Any = None
    style: str = ""


class _MissingInputError(Exception):
    """A plot's inputs are absent; the message says which."""


def figure_view(name: str, title: str, caption: str, make: Callable[[], Figure], *,
                cls: str = "") -> FigureView:
    """Draw ``make()`` as an embedded PNG; a failure becomes the figure's note (logged)."""
    from matplotlib.figure import Figure as _Figure

    try:
        fig = make()
        if not isinstance(fig, _Figure):
            raise TypeError(f"expected a Figure, got {type(fig).__name__}")
        uri, w, h = png_data_uri(fig)
    except _MissingInputError as exc:
        return FigureView(name, title, caption, note=f"{title}: not available: {exc}.")
    except Exception as exc:  # a plot problem must not lose the page
        log.warning("plot %s failed", title, exc_info=True)
        return FigureView(name, title, caption,
                          note=f"{title}: could not be drawn: {type(exc).__name__}: {exc}")
    return FigureView(name, title, caption, uri, w, h, cls=cls)


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("simval.report", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def render_template(name: str, **context: Any) -> str:
    """Render ``simval/report/templates/<name>`` (autoescaped) with ``context``."""
    return _environment().get_template(name).render(**context)


# --- the report's view-model --------------------------------------------------------------

@dataclass(frozen=True)
class VerdictRow(Verdict):
    """One row of the verdict table: the verdict, its value as text and the metric's
    definition (from the registry)."""

    value_text: str = ""
    definition: str = ""

    title = None  # no hover text on the row itself

    @property
    def cells(self) -> list[Cell]:
        tip = f"{self.definition}. {self.message}" if self.definition else self.message
        return [Cell(self.metric, title=tip, code=True,
                     note=None if self.kind == "threshold" else self.kind),
                Cell(self.filter), Cell(self.value_text, "num"), Cell(self.limit),
                Cell(self.n, "num")]


@dataclass
class VerdictsView:
    """The verdict table (failures first), the failures' messages, or why there is none."""

    rows: list[VerdictRow]
    failures: list[str]
    empty_reason: str | None


@dataclass
class HeaderView:
    """The page's header: facts, counts, links (section id, label), a failed run's errors."""

    facts: list[Fact]
    n_fail: int
    n_pass: int
    nav: list[tuple[str, str]]
    run_failure: str | None


@dataclass
class MetricRow:
    """One metric of ``metrics.json`` for one filter (value and uncertainty in ``unit``)."""

    name: str
    value: float | None
    uncertainty: float | None
    unit: str
    n: int
    value_text: str
    definition: str
    not_computed: str | None = None

    cls = ""

    @property
    def cells(self) -> list[Cell]:
        what = f"not computed: {self.not_computed}" if self.not_computed else self.definition
        return [Cell(self.name), Cell(self.value_text, "num"), Cell(self.n, "num"),
                Cell(what)]


@dataclass
class DefectRow:
    """One hole or black line of ``evaluation/<product>_defects.ecsv``, as shown."""

    defect_id: int
    kind: str
    where: str
    sky: str
    size: str
    cause: str
    dq_flags: str
    visits: str
    explanation: str


@dataclass
class DefectsView:
    """The mosaic's defects: counts per cause, the largest rows, the file they come from."""

    source: str
    summary: str
    rows: list[DefectRow]
    n_total: int
    note: str | None = None


@dataclass
class TitledTable:
    """A table with a heading and a caption under it."""

    title: str
    table: TableView
    caption: str


@dataclass
class FilterView:
    """One filter's section: facts, notes, figures, the photometry and noise tables
    (``tables``), every metric of ``metrics.json``, the per-detector / per-visit tables
    (``groups``: by -> table), the defects and the DS9 region files (``regions``: (label,
    run-relative path))."""

    band: str
    product: str | None
    facts: list[Fact]
    notes: list[str]
    figures: list[FigureView]
    metrics: list[MetricRow]
    groups: dict[str, TableView] = field(default_factory=dict)
    defects: DefectsView | None = None
    regions: list[tuple[str, str]] = field(default_factory=list)
    tables: list[TitledTable] = field(default_factory=list)


@dataclass
class RefGroupView:
    """The reference files of one stage shared by a group of exposures or products."""

    stage: str
    names: list[str]
    shown: str
    context: str
    table: TableView


@dataclass
class ProvenanceView:
    """Run facts (key, value), versions, step parameters, reference files, stage times."""

    manifest_missing: bool
    run: list[tuple[str, Any]]
    versions: TableView | None
    worker_versions: str | None
    step_parameters: TableView | None
    reference_files: list[RefGroupView]
    steps_recorded: bool
    stage_times: TableView | None
    stage_total_s: float


@dataclass
class ReportView:
    """Everything ``report.html`` shows (``report.json``: the same without the PNGs)."""

    title: str
    run_dir: str
    status: str
    header: HeaderView
    notes: list[str]
    verdicts: VerdictsView
    filters: list[FilterView]
    provenance: ProvenanceView
    simval_version: str
    written_utc: str


# --- header and verdicts ------------------------------------------------------------------

def _header(run: RunContents, verdicts: list[Verdict]) -> HeaderView:
    failed = sum(not v.passed for v in verdicts)
    prov = run.metrics.provenance if run.metrics else {}
    facts = [Fact("scenario", run.scenario_name, "b")]
    digest = (run.metrics.scenario_hash if run.metrics else
              ((run.manifest or {}).get("scenario") or {}).get("hash"))
    if digest:
        facts.append(Fact("hash", digest, "code"))
    facts.append(Fact("run status", run.status, "b"))
    if prov.get("evaluated_utc"):
        facts.append(Fact("evaluated", prov["evaluated_utc"]))
    facts.append(Fact("run directory", str(run.run_dir), "code"))
    nav = [("verdicts", "verdicts"), *((f"filter-{b}", b) for b in run.filters),
           ("provenance", "provenance")]
    failure = _run_failure(run) if run.status not in ("complete", "unknown") else None
    return HeaderView(facts, failed, len(verdicts) - failed, nav, failure)


def _run_failure(run: RunContents) -> str:
    lines = [f"The run is {run.status}."]
    if run.manifest is not None:
        lines += Manifest.model_validate(run.manifest).failure_lines()
    return "\n".join(lines)


def _verdicts(verdicts: list[Verdict], run: RunContents) -> VerdictsView:
    if not verdicts:
        if run.metrics is None:
            why = "there is no valid metrics.json (see the note above)."
        elif run.comparison is None or not run.comparison.thresholds:
            why = "the scenario sets no thresholds (comparison.thresholds)."
        else:
            why = "the thresholds could not be applied (see the note above)."
        return VerdictsView([], [], why)
    rows = []
    for v in sort_verdicts(verdicts):
        spec = REGISTRY.get(v.metric)
        rows.append(VerdictRow(**{f.name: getattr(v, f.name) for f in fields(Verdict)},
                               value_text=format_value(v.value, v.uncertainty, v.unit),
                               definition=spec.description if spec else ""))
    failures = [v.message for v in sort_verdicts(verdicts)
                if not v.passed and "(" in v.message]
    return VerdictsView(rows, failures, None)


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


def _read_mosaic(path: Path) -> Mosaic:
    try:
        return read_mosaic(path, extensions=("WHT",), resample=False)
    except MissingProductError as exc:
        raise _MissingInputError(str(exc)) from None


def _valid(mosaic: Mosaic) -> np.ndarray:
    valid = np.isfinite(mosaic.data)
    if mosaic.wht is not None and mosaic.wht.shape == mosaic.data.shape:
        valid &= np.isfinite(mosaic.wht) & (mosaic.wht > 0)
    return valid


def _counts_plot(run: RunContents, f: FilterInputs, mosaic: Mosaic) -> Figure:
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


def _background_plot(run: RunContents, f: FilterInputs, mosaic: Mosaic) -> Figure:
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


def _mosaic_plot(run: RunContents, f: FilterInputs, mosaic: Mosaic) -> Figure:
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
    "detectors": "Per detector (a source counts for every detector whose exposures cover "
                 "it with a usable pixel): median measured − true magnitude, mean "
                 "astrometric offsets (east, north > 0) and their RMS about zero, and the "
                 "residual sky of the source-free pixels the detector covers, in % of the "
                 "injected sky; bars are 1σ (metrics *_detector_worst_*).",
    "visits": "The same per visit (mosaic tile): a pointing error of one visit shows as an "
              "astrometric offset of that visit alone (metrics *_visit_worst_*).",
}


_PLOTS = (("completeness", "completeness"), ("photometry", "photometry"),
          ("astrometry", "astrometry"))
_MOSAIC_PLOTS = (("background", "background residual map"), ("mosaic", "mosaic thumbnail"),
                 ("counts", "number counts"))
#: Per-group breakdowns: (by, figure name, title).
_GROUP_PLOTS = (("detector", "detectors", "offsets per detector"),
                ("visit", "visits", "offsets per visit"))
#: Largest defects listed in the report (the ECSV file has them all).
MAX_DEFECT_ROWS = 40


def _figure(name: str, title: str, make: Callable[[], Figure]) -> FigureView:
    return figure_view(name, title, _CAPTIONS[name], make, cls=f"plot-{name}")


def _metric_rows(run: RunContents, band: str) -> list[MetricRow]:
    entries = (run.metrics.filters.get(band) or {}) if run.metrics else {}
    rows = []
    for name in [n for n in REGISTRY if n in entries] + sorted(set(entries) - set(REGISTRY)):
        m = entries[name]
        spec = REGISTRY.get(name)
        why = (m.details or {}).get("not_computed")
        rows.append(MetricRow(name, m.value, m.uncertainty, m.unit, int(m.n),
                              format_value(m.value, m.uncertainty, m.unit),
                              spec.description if spec else "",
                              None if not why else str(why)))
    return rows


def _filter(run: RunContents, band: str) -> FilterView:
    if is_coronagraphy(run):
        return _coron_filter(run, band)
    f = filter_inputs(run, band)
    prov = ((run.metrics.provenance if run.metrics else {}).get("filters") or {}).get(band)
    facts = [Fact("product", f.product or "unknown", "code")]
    if f.truth is not None:
        facts.append(Fact(f"truth {len(f.truth)} ({int(_inside(f.truth).sum())} in the "
                          "footprint)"))
    if f.measured is not None:
        facts.append(Fact(f"detections {len(f.measured)}"))
    if f.match is not None:
        facts.append(Fact(f"matched {f.match.n_pairs} within {f.match.radius_mas:g} mas"))
    if isinstance(prov, Mapping) and prov.get("not_computed"):
        facts.append(Fact(f"{len(prov['not_computed'])} metric(s) not computed"))
    notes = list(f.notes)
    makers = {"completeness": _completeness_plot, "photometry": _delta_mag_plot,
              "astrometry": _astrometry_plot}
    figures = [_figure(name, title, lambda m=makers[name]: m(run, f))
               for name, title in _PLOTS]
    mosaic = None
    if f.i2d is not None:
        try:
            mosaic = _read_mosaic(f.i2d)
        except Exception as exc:
            notes.append(f"the mosaic cannot be read: {type(exc).__name__}: {exc}")
    mosaic_makers = {"background": _background_plot, "mosaic": _mosaic_plot,
                     "counts": _counts_plot}
    for name, title in _MOSAIC_PLOTS:
        if mosaic is None:
            figures.append(FigureView(name, title, _CAPTIONS[name],
                                      note=f"{title}: not available: no readable mosaic."))
        else:
            figures.append(_figure(name, title,
                                   lambda m=mosaic_makers[name]: m(run, f, mosaic)))
    groups: dict[str, TableView] = {}
    for by, name, title in _GROUP_PLOTS:
        _, details = _metric(run, band, f"astrom_offset_{by}_worst_mas")
        if details.get("groups"):
            groups[by] = _group_table(by, details["groups"])
            figures.append(_figure(name, title, lambda b=by, d=details: _group_plot(
                band, b, d)))
    defects, links = _defects(run, band, notes)
    tables = [t for t in (_photometry_table(run, band), _noise_table(run, band)) if t]
    return FilterView(band, f.product, facts, notes, figures, _metric_rows(run, band),
                      groups, defects, links, tables)


def _coron_filter(run: RunContents, band: str) -> FilterView:
    """A coronagraphy run's filter (:mod:`simval.report.coron`)."""
    s = coron_section(run, band)
    return FilterView(
        band, s.product, [Fact(*f) for f in s.facts], s.notes,
        [figure_view(n, t, c, make, cls=f"plot-{n}") for n, t, c, make in s.figures],
        _metric_rows(run, band),
        tables=[TitledTable(t, TableView(head, rows, num), c)
                for t, head, rows, num, c in s.tables])


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _entry(run: RunContents, band: str, name: str) -> tuple[Any, Any, int, dict[str, Any]]:
    """(value, uncertainty, n, details) of one metric of one filter (None, None, 0, {})."""
    m = ((run.metrics.filters.get(band) or {}) if run.metrics else {}).get(name)
    if m is None:
        return None, None, 0, {}
    return m.value, m.uncertainty, int(m.n), dict(m.details or {})


def _photometry_table(run: RunContents, band: str) -> TitledTable | None:
    """The isophotal Δm of galaxies and stars split into calibration, catalog sky and
    isophotal loss (:mod:`simval.metrics.galaxy_photometry`); None without those metrics."""
    rows = []
    for kind in ("galaxy", "star"):
        value, err, n, details = _entry(run, band, f"phot_calib_bias_{kind}_mag")
        if not details:
            continue
        dec = details.get("decomposition") or {}
        aper, aper_err, _, _ = _entry(run, band, f"phot_calib_bias_aper_{kind}_mag")
        total, _, _, _ = _entry(run, band, f"phot_bias_{kind}_mag")
        rows.append([{"galaxy": "galaxies", "star": "stars"}[kind], n,
                     _pm(total, None, "+.3f"),
                     _pm(dec.get("total_mag"), None, "+.3f"), _pm(value, err, "+.4f"),
                     _pm(dec.get("segment_edge_mag"), None, "+.4f"),
                     _pm(dec.get("catalog_sky_mag"), None, "+.4f"),
                     _pm(dec.get("iso_loss_mag"), None, "+.3f"), _pm(aper, aper_err, "+.4f")])
    if not rows or all(r[1] == 0 for r in rows):
        return None
    snr = _entry(run, band, "phot_calib_bias_galaxy_mag")[3].get("snr_min", 20)
    return TitledTable(
        "Photometry like for like: the pipeline's footprints on the truth mosaic",
        TableView(["sample", "n", "Δm as measured (all)", "isophotal Δm (sample)",
                   "calibration", "segment edge", "catalog sky", "isophotal loss",
                   "calibration (aperture)"],
                  rows, [1, 2, 3, 4, 5, 6, 7, 8], cls="photometry-split"),
        "Medians in mag, positive = measured fainter, over matched sources with isophotal "
        f"S/N ≥ {snr:g}. The isophotal Δm splits, source by source, into: calibration "
        "(mosaic against the noiseless truth mosaic summed pixel by pixel over the "
        "segment's interior: 0 for a perfect instrument), segment edge (the same over the "
        "whole segment minus the interior: the segment is drawn on the noisy mosaic, so its "
        "edge holds the pixels where the noise was high), catalog sky (the source "
        "catalog's own background estimate times the segment's area) and isophotal loss "
        "(truth light outside the segment: the catalog's definition, information only). "
        "Calibration "
        "(aperture): the catalog's largest aperture flux against the same aperture and "
        "annulus on the truth mosaic. 'Δm as measured': phot_bias_<sample>_mag over every "
        "matched source (stars: aper_total_abmag, galaxies: isophotal_abmag).")


def _noise_table(run: RunContents, band: str) -> TitledTable | None:
    """Sky noise against ERR, raw and with drizzle's correlation
    (:mod:`simval.metrics.aperture_noise`); None without those metrics."""
    pixel_raw, pixel_raw_err, pixel_n, _ = _entry(run, band, "err_ratio_nmad")
    pixel, pixel_err, _, details = _entry(run, band, "err_ratio_nmad_drizzle")
    if not details:
        return None
    rows = [["pixel", pixel_n, _pm(pixel_raw, pixel_raw_err, ".3f"),
             _pm(pixel, pixel_err, ".3f")]]
    for radius in ("2", "4"):
        raw, raw_err, n, _ = _entry(run, band, f"aper_noise_ratio_raw_r{radius}")
        cor, cor_err, _, _ = _entry(run, band, f"aper_noise_ratio_r{radius}")
        rows.append([f"apertures r = {radius} pix", n, _pm(raw, raw_err, ".3f"),
                     _pm(cor, cor_err, ".3f")])
    if "casertano_r" in details:
        how = (f"pixfrac {details.get('pixfrac'):g}, pixel scale ratio "
               f"{details.get('pixel_scale_ratio'):g}, kernel {details.get('kernel')}: "
               f"R = {details['casertano_r']:.3f}")
    else:
        how = f"no correlation model: {details.get('not_computed', 'unknown')}"
    return TitledTable(
        "Noise against ERR",
        TableView(["measured on", "n", "raw (correlation ignored)", "drizzle-corrected"],
                  rows, [1, 2, 3], cls="noise-ratio"),
        "Robust scatter (NMAD) of source-free sky over the scatter ERR predicts: 1 = ERR "
        "right, 2 = the noise is twice ERR, 0.5 = half. Raw: pixel (value - sky) / ERR, "
        "and random aperture sums over sqrt(Σ ERR²); drizzle-corrected: the pixel ratio "
        "times the Casertano et al. (2000) noise correlation ratio R, and the sums over "
        f"ERR propagated with drizzle's pixel covariance ({how}).")


def _pm(value: Any, err: Any, fmt: str = "+.1f") -> str:
    v, e = _num(value), _num(err)
    if not math.isfinite(v):
        return "–"
    return f"{v:{fmt}}" + (f" ± {e:{fmt.lstrip('+')}}" if math.isfinite(e) else "")


def _group_table(by: str, groups: Mapping[str, Any]) -> TableView:
    """Per-group numbers of ``metrics.json`` (the ``details.groups`` of the breakdown)."""
    rows = []
    for name, g in groups.items():
        rows.append([name if by == "detector" else f"visit {name}", g.get("n_exposures"),
                     g.get("n_sources"),
                     f"{_pm(g.get('dx_mas'), g.get('dx_err_mas'))}, "
                     f"{_pm(g.get('dy_mas'), g.get('dy_err_mas'))}",
                     _pm(g.get("rms_mas"), g.get("rms_err_mas")),
                     _pm(g.get("phot_offset_mag"), g.get("phot_offset_err_mag"), "+.4f"),
                     _pm(100.0 * _num(g.get("bkg_residual_frac")), None, "+.2f")])
    return TableView([by, "exposures", "stars", "mean ΔRA·cos Dec, ΔDec (mas)", "RMS (mas)",
                      "Δmag (mag)", "sky residual (%)"], rows, [1, 2], cls="groups")


def _group_plot(band: str, by: str, details: Mapping[str, Any]) -> Figure:
    groups = details["groups"]
    names = list(groups)

    def col(key: str) -> list[float]:
        return [_num(groups[n].get(key)) for n in names]

    inj = [_num(g.get("bkg_residual_mjysr")) / _num(g.get("bkg_residual_frac"))
           if _num(g.get("bkg_residual_frac")) else float("nan") for g in groups.values()]
    bkg_err = [e / i if i and math.isfinite(i) else float("nan")
               for e, i in zip(col("bkg_residual_err_mjysr"), inj, strict=True)]
    return group_offsets_figure(
        names, band=band, by=by, phot_mag=col("phot_offset_mag"),
        phot_err_mag=col("phot_offset_err_mag"), dx_mas=col("dx_mas"),
        dx_err_mas=col("dx_err_mas"), dy_mas=col("dy_mas"), dy_err_mas=col("dy_err_mas"),
        rms_mas=col("rms_mas"), bkg_frac=col("bkg_residual_frac"), bkg_err_frac=bkg_err,
        sample=str(details.get("sample", "")))


def _text(value: Any) -> str:
    return "" if np.ma.is_masked(value) else str(value)


def _defects(run: RunContents, band: str, notes: list[str]
             ) -> tuple[DefectsView | None, list[tuple[str, str]]]:
    """The defects table of a filter's mosaic (largest first) and its region files."""
    name = run.products.get(band)
    if name is None:
        return None, []
    layout = run.layout
    links = [(f"{kind} ({layout.regions_file(name, kind).name})",
              layout.rel(layout.regions_file(name, kind)))
             for kind in ("holes", "seams", "sources")
             if layout.regions_file(name, kind).is_file()]
    path = layout.defects_table(name)
    if not path.is_file():
        return None, links
    from astropy.table import Table

    try:
        table = Table.read(path, format="ascii.ecsv")
    except Exception as exc:
        notes.append(f"{path.name} cannot be read: {type(exc).__name__}: {exc}")
        return None, links
    by_cause: dict[str, int] = {}
    for c in table["cause"] if len(table) else []:
        by_cause[str(c)] = by_cause.get(str(c), 0) + 1
    total = int(table.meta.get("n_regions", len(table)))
    summary = (f"{total} hole region(s), {int(np.sum(table['kind'] == 'black_line'))} black "
               "line(s)" if len(table) else "no hole inside the footprint")
    if by_cause:
        summary += ": " + ", ".join(f"{n} {c}" for c, n in sorted(by_cause.items()))
    order = np.argsort(-np.asarray(table["n_pix"]), kind="stable")[:MAX_DEFECT_ROWS]
    rows = []
    for r in table[order]:
        rows.append(DefectRow(
            int(r["defect_id"]), str(r["kind"]),
            f"x {r['x']:.1f}, y {r['y']:.1f} (x {r['x_min']}–{r['x_max']}, "
            f"y {r['y_min']}–{r['y_max']})",
            f"{r['ra']:.6f}, {r['dec']:+.6f}",
            f"{int(r['n_pix'])} px, {r['length_pix']:.0f} × {r['width_pix']:.1f}",
            str(r["cause"]), _text(r["dq_flags"]).replace(",", "|"), _text(r["visits"]),
            _text(r["explanation"])))
    note = table.meta.get("frames_note")
    return DefectsView(layout.rel(path), summary, rows, total,
                       None if not note else f"causes unknown: {note}"), links


# --- provenance ---------------------------------------------------------------------------

def _kv_rows(mapping: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(k, json.dumps(v) if isinstance(v, dict | list) else v)
            for k, v in mapping.items() if v not in (None, "", {}, [])]


def _run_summary(run: RunContents) -> list[tuple[str, Any]]:
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
        "instrument": m.get("instrument"),
        "raw data simulated with": m.get("simulator"),
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
    return _kv_rows(rows)


def _versions(run: RunContents) -> tuple[TableView | None, str | None]:
    m = run.manifest or {}
    versions = dict(m.get("versions") or {})
    if not versions and run.metrics:
        versions = dict(run.metrics.provenance.get("versions") or {})
    table = TableView(["package", "version"], [list(kv) for kv in sorted(versions.items())]) \
        if versions else None
    workers = json.dumps(m["worker_versions"], sort_keys=True) \
        if m.get("worker_versions") else None
    return table, workers


def _step_parameters(run: RunContents) -> TableView | None:
    params = (run.manifest or {}).get("pipeline_parameters")
    if params is None:
        params = ((run.plan or {}).get("scenario") or {}).get("pipeline")
    if not params:
        return None
    rows: list[list[Any]] = []
    for stage in (*_PIPELINES, *sorted(set(params) - set(_PIPELINES))):
        if stage not in params:
            continue
        steps = params.get(stage)
        if not steps:
            rows.append([stage, "(all steps)", "pipeline defaults"])
            continue
        for step, values in steps.items():
            text = ", ".join(f"{k} = {json.dumps(v)}" for k, v in values.items()) \
                if isinstance(values, Mapping) else json.dumps(values)
            rows.append([stage, step, text])
    return TableView(["pipeline", "step", "parameters as run"], rows)


def _recorded_reftype_steps(run: RunContents) -> dict[str, list[str]] | None:
    """Reference type -> ``pipeline.step`` s that use it, from the manifest's
    ``reftype_steps`` (recorded by the calibration stages); None for a run without it."""
    recorded = (run.manifest or {}).get("reftype_steps")
    if not isinstance(recorded, Mapping) or not recorded:
        return None
    out: dict[str, list[str]] = {}
    for pipeline in (*_PIPELINES, *sorted(set(recorded) - set(_PIPELINES))):
        for reftype, steps in (recorded.get(pipeline) or {}).items():
            out.setdefault(str(reftype).lower(), []).extend(
                f"{pipeline}.{s}" for s in steps or ())
    return out


def _reference_files(run: RunContents) -> tuple[list[RefGroupView], bool]:
    refs = (run.manifest or {}).get("reference_files") or {}
    steps = _recorded_reftype_steps(run)
    out = []
    for stage in _PIPELINES:
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
            if steps is None:
                table = TableView(["reference type", "file"], [[k, v] for k, v in used])
            else:
                table = TableView(["reference type", "file", "used by step"],
                                  [[k, v, ", ".join(steps.get(k.lower(), ()))]
                                   for k, v in used])
            out.append(RefGroupView(stage, names, shown, ctx, table))
    return out, steps is not None


def _stage_times(run: RunContents) -> tuple[TableView | None, float]:
    stages = (run.manifest or {}).get("stages") or {}
    if not stages:
        return None, 0.0
    rows = []
    total = 0.0
    for sid, s in stages.items():
        wall = s.get("wall_s")
        total += float(wall or 0.0) if s.get("status") == "complete" else 0.0
        rows.append([sid, s.get("kind", ""), s.get("status", ""),
                     "" if wall is None else f"{float(wall):.1f}",
                     "" if s.get("peak_rss_mb") is None else f"{float(s['peak_rss_mb']):.0f}",
                     s.get("error") or (f"blocked by {s['blocked_by']}" if s.get("blocked_by")
                                        else ""), s.get("log") or ""])
    return TableView(["stage", "kind", "status", "wall (s)", "peak RSS (MiB)", "error", "log"],
                     rows, [3, 4]), total


def _provenance(run: RunContents) -> ProvenanceView:
    versions, workers = _versions(run)
    refs, recorded = _reference_files(run)
    times, total = _stage_times(run)
    return ProvenanceView(run.manifest is None, _run_summary(run), versions, workers,
                          _step_parameters(run), refs, recorded, times, total)


# --- the document -------------------------------------------------------------------------

def build_report_view(run_dir: str | os.PathLike, *, verdicts: list[Verdict] | None = None
                      ) -> ReportView:
    """What the report of a run shows (see the module docstring); draws the figures.

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
    notes = [n for n in run.notes if "sets no thresholds" not in n]  # said with the verdicts
    return ReportView(
        title=run.scenario_name, run_dir=str(run.run_dir), status=run.status,
        header=_header(run, shown), notes=notes, verdicts=_verdicts(shown, run),
        filters=[_filter(run, band) for band in run.filters], provenance=_provenance(run),
        simval_version=package_version("simval", "unknown"), written_utc=now_utc())


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, FigureView):
        return obj.to_json()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


def report_json(view: ReportView) -> dict[str, Any]:
    """``report.json``: the view-model as JSON, figures without their PNG (``drawn``
    says whether the page shows one). Values and uncertainties in each row's ``unit``."""
    return {"schema": REPORT_JSON_SCHEMA, "schema_version": REPORT_JSON_VERSION,
            **_jsonable(view)}


def render_report(run_dir: str | os.PathLike, *, verdicts: list[Verdict] | None = None
                  ) -> str:
    """The HTML text of a run's report (see :func:`build_report_view`)."""
    return render_template("report.html.j2", v=build_report_view(run_dir, verdicts=verdicts))


def write_report(run_dir: str | os.PathLike, *, verdicts: list[Verdict] | None = None,
                 output: str | os.PathLike | None = None) -> Path:
    """Write the report (atomically) to ``output`` (default ``run_dir/report.html``), and
    ``report.json`` beside it (same directory, same stem).

    Returns
    -------
    Path
        The HTML file written.
    """
    view = build_report_view(run_dir, verdicts=verdicts)
    path = Path(output) if output is not None else RunLayout(Path(run_dir)).report
    write_text(path.with_suffix(".json"),
               json.dumps(report_json(view), indent=1, allow_nan=False) + "\n")
    return write_text(path, render_template("report.html.j2", v=view))
