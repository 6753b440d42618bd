"""What a finished run directory holds, read without running anything.

:func:`load_run` reads ``manifest.json``, ``plan.json``, the scenario's ``comparison``
block and ``metrics.json`` (and recomputes the threshold verdicts from it);
:func:`filter_inputs` reads one filter's truth table, source catalog and the evaluation's
match table. The report and compare build on these two and on :func:`format_value` and
:func:`sort_verdicts`. Nothing here imports matplotlib or the pipeline.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.layout import RunLayout
from simval.manifest_schema import ManifestFileError, read_manifest
from simval.match_table import read_match_table
from simval.metrics_schema import MetricsFileError, UnknownMetricError, read_metrics
from simval.scenario.inputs import Comparison
from simval.verdict import evaluate_thresholds

if TYPE_CHECKING:
    from astropy.table import Table

    from simval.match import MatchResult
    from simval.metrics_schema import MetricsDocument
    from simval.scenario.inputs import Comparison
    from simval.verdict import Verdict

__all__ = ["FilterInputs", "RunContents", "diff_text", "filter_inputs", "format_value",
           "load_run", "ratio_text", "sort_verdicts"]


@dataclass
class RunContents:
    """What a run directory holds, read without running anything.

    Attributes
    ----------
    run_dir : Path
        Absolute run directory.
    manifest, plan : dict or None
        ``manifest.json`` and ``plan.json`` as JSON (None if absent or unreadable).
    comparison : simval.scenario.inputs.Comparison or None
        The scenario's ``comparison`` (thresholds, match radius) from ``plan.json``, else
        from ``scenario.yaml``.
    metrics : MetricsDocument or None
        ``metrics.json`` (None if absent or invalid; see ``notes``).
    verdicts : list of Verdict
        Threshold verdicts of ``metrics`` against ``comparison`` (empty without either).
    filters : list of str
        Filters of the run, upper case: the plan's products in plan order, then any other
        filter of ``metrics``.
    products : dict
        filter -> product (mosaic) name.
    notes : list of str
        What is missing or could not be read, one sentence each.
    """

    run_dir: Path
    manifest: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    comparison: Comparison | None = None
    metrics: MetricsDocument | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    filters: list[str] = field(default_factory=list)
    products: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def scenario_name(self) -> str:
        """The scenario's name (metrics, plan or manifest; else the directory name)."""
        if self.metrics is not None:
            return self.metrics.scenario_name
        for doc, key in ((self.plan, "scenario_name"), (self.manifest, "scenario")):
            value = (doc or {}).get(key)
            if isinstance(value, dict):
                value = value.get("name")
            if isinstance(value, str) and value:
                return value
        return self.run_dir.name

    @property
    def status(self) -> str:
        """``manifest.json``'s status (``complete``, ``failed``, ``interrupted``), or
        ``unknown`` without a manifest."""
        return str((self.manifest or {}).get("status", "unknown"))

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.run_dir)

    def product_path(self, band: str, suffix: str) -> Path | None:
        """``image3/<product>/<product><suffix>`` of a filter (None without a product)."""
        name = self.products.get(band.upper())
        return None if name is None else self.layout.product_file(name, suffix)

    def truth_path(self, band: str) -> Path | None:
        """``truth/<product>_truth.ecsv`` of a filter (None without a product)."""
        name = self.products.get(band.upper())
        return None if name is None else self.layout.truth_table(name)

    def match_path(self, band: str) -> Path | None:
        """``evaluation/<product>_match.ecsv`` of a filter (None without a product)."""
        name = self.products.get(band.upper())
        return None if name is None else self.layout.match_table(name)


def _read_json(path: Path, notes: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        notes.append(f"{path.name} cannot be read ({type(exc).__name__}: {exc}).")
        return None
    if not isinstance(data, dict):
        notes.append(f"{path.name} is not a JSON object.")
        return None
    return data


def _read_manifest(path: Path, notes: list[str]) -> dict[str, Any] | None:
    """``manifest.json`` validated as :class:`simval.manifest_schema.Manifest` (as JSON;
    None with a note naming the file and field if it is absent or not valid)."""
    if not path.is_file():
        return None
    try:
        return read_manifest(path).model_dump(mode="json", by_alias=True)
    except ManifestFileError as exc:
        notes.append(f"manifest.json is not valid: {exc}")
        return None


def _comparison(root: Path, plan: dict[str, Any] | None, notes: list[str]
                ) -> Comparison | None:
    """The scenario's comparison block: plan.json's normalised scenario, else scenario.yaml."""

    raw = ((plan or {}).get("scenario") or {}).get("comparison")
    if raw is None and (root / "scenario.yaml").is_file():
        import yaml

        try:
            doc = yaml.safe_load((root / "scenario.yaml").read_text()) or {}
            raw = doc.get("comparison") if isinstance(doc, dict) else None
        except (OSError, yaml.YAMLError) as exc:
            notes.append(f"scenario.yaml cannot be read ({type(exc).__name__}: {exc}).")
    if raw is None:
        return None
    try:
        return Comparison.model_validate(raw)
    except ValueError as exc:
        notes.append(f"the scenario's comparison block is invalid: {exc}")
        return None


def load_run(run_dir: str | os.PathLike) -> RunContents:
    """Read a run directory's manifest, plan, thresholds and ``metrics.json``.

    The threshold verdicts are recomputed from ``metrics.json`` with
    :func:`simval.verdict.evaluate_thresholds` (baseline verdicts need the baseline run and
    are not recomputed). Missing or unreadable files are recorded in ``notes``; nothing
    raises except a missing directory.

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` is not a directory.
    """

    root = Path(run_dir).expanduser().absolute()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such run directory")
    out = RunContents(root)
    out.manifest = _read_manifest(root / "manifest.json", out.notes)
    out.plan = _read_json(root / "plan.json", out.notes)
    out.comparison = _comparison(root, out.plan, out.notes)
    metrics_path = RunLayout(root).metrics
    if metrics_path.is_file():
        try:
            out.metrics = read_metrics(metrics_path)
        except MetricsFileError as exc:
            out.notes.append(f"metrics.json is not valid: {exc}")
    else:
        out.notes.append("no metrics.json yet: the run has not been evaluated "
                         "(`simval report RUN` evaluates it).")

    for p in (out.plan or {}).get("products") or []:
        if isinstance(p, dict) and p.get("filter_name") and p.get("name"):
            out.products[str(p["filter_name"]).upper()] = str(p["name"])
    for band, p in ((out.manifest or {}).get("products") or {}).items():
        if isinstance(p, dict) and p.get("name"):
            out.products.setdefault(str(band).upper(), str(p["name"]))
    prov = (out.metrics.provenance.get("filters") or {}) if out.metrics else {}
    for band, p in prov.items():
        if isinstance(p, dict) and p.get("product"):
            out.products.setdefault(str(band).upper(), str(p["product"]))
    out.filters = list(out.products)
    for band in sorted(out.metrics.filters if out.metrics else ()):
        if band not in out.filters:
            out.filters.append(band)

    if out.metrics is not None and out.comparison is not None and out.comparison.thresholds:
        try:
            out.verdicts = evaluate_thresholds(out.metrics, out.comparison)
        except UnknownMetricError as exc:
            out.notes.append(f"thresholds cannot be applied: {exc}")
    elif out.comparison is None or not out.comparison.thresholds:
        out.notes.append("the scenario sets no thresholds (comparison.thresholds): "
                         "there are no verdicts.")
    return out


def sort_verdicts(verdicts: list[Verdict]) -> list[Verdict]:
    """Failures first, then by filter and metric (as :func:`simval.verdict.verdict_table`)."""
    return sorted(verdicts, key=lambda v: (v.passed, v.filter, v.metric))


def format_value(value: float | None, uncertainty: float | None, unit: str) -> str:
    """``+0.031 ± 0.005 mag``; ``not measured`` for None.

    With an uncertainty, the value is rounded to the uncertainty's second significant
    digit (``0.667 ± 0.061``); without, to 4 significant digits. Differences (unit
    ``mag``, ``mas``, ``MJy/sr``) carry a sign; fractions, ratios, counts and AB magnitudes
    do not.
    """
    import math

    if value is None:
        return "not measured"
    sign = "+" if unit in ("mag", "mas", "MJy/sr") else ""
    if uncertainty is not None and 0 < uncertainty < 1e6 and abs(value) < 1e9:
        decimals = min(max(0, 1 - math.floor(math.log10(uncertainty))), 9)
        text = f"{value:{sign}.{decimals}f} ± {uncertainty:.{decimals}f}"
    else:
        text = f"{value:{sign}.4g}"
        if uncertainty is not None:
            text += f" ± {uncertainty:.2g}"
    return text if unit in ("count", "") else f"{text} {unit}"


@dataclass
class FilterInputs:
    """What one filter's plots and comparisons read (None where missing; ``notes`` say
    why): the truth table, the pipeline catalog, what the evaluation matched
    (:func:`simval.match_table.read_match_table`: the pairs and the per-truth-row
    ``bright_star`` sample) and the mosaic's path."""

    band: str
    product: str | None
    truth: Table | None = None
    measured: Table | None = None
    match: MatchResult | None = None
    bright_star: np.ndarray | None = None
    i2d: Path | None = None
    radius_mas: float | None = None
    notes: list[str] = field(default_factory=list)


def _read_table(path: Path | None, what: str, notes: list[str]) -> Table | None:
    from astropy.table import Table

    if path is None:
        notes.append(f"no {what}: the run has no product for this filter.")
        return None
    if not path.is_file():
        notes.append(f"no {what} ({path.name} is missing).")
        return None
    try:
        return Table.read(path, format="ascii.ecsv")
    except Exception as exc:
        notes.append(f"{what} {path.name} cannot be read: {type(exc).__name__}: {exc}")
        return None


def filter_inputs(run: RunContents, band: str) -> FilterInputs:
    """Read one filter's :class:`FilterInputs` from the run directory (never matches
    again: the pairs are the evaluation's match table)."""

    f = FilterInputs(band, run.products.get(band))
    f.truth = _read_table(run.truth_path(band), "truth table", f.notes)
    f.measured = _read_table(run.product_path(band, "_cat.ecsv"), "source catalog", f.notes)
    i2d = run.product_path(band, "_i2d.fits")
    if i2d is not None and i2d.is_file():
        f.i2d = i2d
    else:
        f.notes.append("no mosaic" + (f" ({i2d.name} is missing)." if i2d else "."))
    path = run.match_path(band)
    if path is None or not path.is_file():
        if path is not None:
            f.notes.append(f"no match table ({path.name} is missing: the run has not been "
                           "evaluated).")
        return f
    try:
        table = read_match_table(path)
    except Exception as exc:
        f.notes.append(f"match table {path.name} cannot be read: {type(exc).__name__}: {exc}")
        return f
    if f.truth is not None and len(f.truth) != table.match.n_truth:
        f.notes.append(f"{path.name} has {table.match.n_truth} truth rows but the truth table "
                       f"{len(f.truth)}: the run was changed after its evaluation.")
        return f
    f.match, f.bright_star, f.radius_mas = table.match, table.bright_star, \
        table.match.radius_mas
    return f


def diff_text(x: float | None, uncertainty: float | None, unit: str) -> str:
    """A difference with its sign and uncertainty: ``-0.0530 ± 0.0012 mag``. Rounded to
    the uncertainty's second digit, unless the uncertainty is below 1e-4 of the value or
    below 1e-5 (then 4 significant digits and the uncertainty to 2:
    ``-0.05297 ± 4.6e-08 mag``, ``+5e-08 ± 1.1e-07 mag``)."""
    if x is None:
        return "not measured"
    if uncertainty is not None and (0 <= uncertainty < 1e-4 * abs(x)
                                    or 0 < uncertainty < 1e-5):
        text = f"{x:+.4g} ± {uncertainty:.2g}"
    else:
        text = format_value(x, uncertainty, "mag").removesuffix(" mag")  # signed
    return text if unit in ("count", "") else f"{text} {unit}"


def ratio_text(ratio: float | None, uncertainty: float | None) -> str:
    """``1.0500 ± 0.0030`` or ``1.05000 ± 2.4e-08``: the ratio rounded to its uncertainty's
    second significant digit, with 3 to 5 decimals, and the uncertainty to 2 digits."""
    if ratio is None:
        return "not measured"
    decimals = 5
    if uncertainty is not None and uncertainty > 0:
        decimals = int(min(max(1 - math.floor(math.log10(uncertainty)), 3), 5))
    text = f"{ratio:.{decimals}f}"
    return text if uncertainty is None else f"{text} ± {uncertainty:.2g}"
