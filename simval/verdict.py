"""Pass/fail verdicts: scenario thresholds, and comparison with a baseline run.

Thresholds come from a scenario's ``comparison.thresholds``
(:class:`simval.scenario.inputs.Comparison`): ``metric -> {filter or "all" -> Bounds}``,
with :class:`~simval.scenario.inputs.Bounds` ``{min, max, abs_max}`` meaning
``value >= min``, ``value <= max``, ``|value| <= abs_max``. A filter-specific entry
replaces the ``all`` entry for that filter. ``all`` applies to every filter of the
metrics document; a named filter absent from the document fails ("no metrics").

A value that could not be measured (``null`` in ``metrics.json``, or the metric missing
for that filter) **fails** any threshold on it: a check that cannot be made is not passed.

Baseline mode compares each metric of a run with the same metric of an earlier run:
pass if ``|current - baseline| <= abs + rel * |baseline|`` (numpy's ``isclose`` rule),
tolerances per metric (default: the registry's ``baseline_abs``, ``rel`` 0).

Every :class:`Verdict` carries the measured value, its uncertainty and unit, the limit,
the sample size, pass/fail and a one-line message.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from simval.metrics_schema import (
    REGISTRY,
    Measurement,
    MetricsDocument,
    check_metric_names,
)
from simval.scenario.inputs import Bounds, Comparison

__all__ = [
    "Tolerance",
    "Verdict",
    "all_passed",
    "check_bounds",
    "compare_to_baseline",
    "describe_bounds",
    "evaluate_thresholds",
    "verdict_table",
]


@dataclass(frozen=True)
class Verdict:
    """The judgement of one (filter, metric).

    Attributes
    ----------
    metric, filter : str
    kind : {"threshold", "baseline"}
    passed : bool
    value, uncertainty : float or None
        Measured value (None = not measured) and its uncertainty, in ``unit``.
    unit : str
    n : int
        Sample size behind the value.
    limit : str
        The bound(s) in words (``|x| <= 0.02``, ``>= 0.95``, ``0.011 +/- 0.005``).
    message : str
        One line: metric[filter] = value +/- unc unit (n=..): PASS/FAIL, limit [, why].
    baseline : float or None
        Baseline value (baseline mode).
    """

    metric: str
    filter: str
    kind: str
    passed: bool
    value: float | None
    uncertainty: float | None
    unit: str
    n: int
    limit: str
    message: str
    baseline: float | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def describe_bounds(bounds: Bounds) -> str:
    """``Bounds`` in words: ``>= 0.95``, ``<= 10``, ``[a, b]``, ``|x| <= 0.02``."""
    parts = []
    if bounds.min is not None and bounds.max is not None:
        parts.append(f"in [{bounds.min:g}, {bounds.max:g}]")
    elif bounds.min is not None:
        parts.append(f">= {bounds.min:g}")
    elif bounds.max is not None:
        parts.append(f"<= {bounds.max:g}")
    if bounds.abs_max is not None:
        parts.append(f"|x| <= {bounds.abs_max:g}")
    return " and ".join(parts)


def check_bounds(value: float | None, bounds: Bounds) -> tuple[bool, str]:
    """(passed, reason if failed) of ``value`` against ``bounds``; None/NaN fails."""
    if value is None or not math.isfinite(value):
        return False, "not measured"
    if bounds.min is not None and value < bounds.min:
        return False, f"below min {bounds.min:g}"
    if bounds.max is not None and value > bounds.max:
        return False, f"above max {bounds.max:g}"
    if bounds.abs_max is not None and abs(value) > bounds.abs_max:
        return False, f"|value| above {bounds.abs_max:g}"
    return True, ""


def _fmt(value: float | None, unc: float | None, unit: str) -> str:
    if value is None:
        return "not measured"
    text = f"{value:+.4g}" if unit in ("mag", "mas", "MJy/sr") else f"{value:.4g}"
    if unc is not None:
        text += f" +/- {unc:.2g}"
    return f"{text} {unit}" if unit not in ("count",) else text


def _message(metric: str, flt: str, m: Measurement | None, passed: bool, limit: str,
             reason: str, unit: str) -> str:
    value = None if m is None else m.value
    unc = None if m is None else m.uncertainty
    n = 0 if m is None else m.n
    text = (f"{metric}[{flt}] = {_fmt(value, unc, unit)} (n={n}): "
            f"{'PASS' if passed else 'FAIL'}, required {limit}")
    return f"{text} ({reason})" if reason and not passed else text


def _filters_in(doc: MetricsDocument | Mapping[str, Mapping[str, Measurement]]
                ) -> Mapping[str, Mapping[str, Measurement]]:
    return doc.filters if isinstance(doc, MetricsDocument) else doc


def evaluate_thresholds(metrics: MetricsDocument | Mapping[str, Mapping[str, Measurement]],
                        thresholds: Comparison | Mapping[str, Mapping[str, Bounds]],
                        *, where: str = "comparison.thresholds") -> list[Verdict]:
    """Apply scenario thresholds to a metrics document.

    Parameters
    ----------
    metrics : MetricsDocument or mapping
        filter -> metric -> :class:`~simval.metrics_schema.Measurement`.
    thresholds : Comparison or mapping
        A scenario's ``comparison`` (or its ``thresholds``): metric -> {filter or "all"
        -> Bounds}. Bounds given as plain dicts are validated into ``Bounds``.
    where : str
        Named in the error for unknown metric names.

    Returns
    -------
    list of Verdict
        One per (metric, filter), in threshold order then filter order.

    Raises
    ------
    simval.metrics_schema.UnknownMetricError
        If a threshold names a metric that is not in the registry (lists the known ones).
    """
    th = thresholds.thresholds if isinstance(thresholds, Comparison) else thresholds
    check_metric_names(th, where=where)
    filters = _filters_in(metrics)
    out: list[Verdict] = []
    for metric, per_filter in th.items():
        unit = REGISTRY[metric].unit
        targets: dict[str, Bounds] = {}
        if "all" in per_filter:
            for flt in sorted(filters):
                targets[flt] = _bounds(per_filter["all"])
        for flt, b in per_filter.items():
            if flt != "all":
                targets[flt.upper()] = _bounds(b)
        for flt, bounds in targets.items():
            limit = describe_bounds(bounds)
            m = filters.get(flt, {}).get(metric)
            if flt not in filters:
                passed, reason = False, f"no metrics for filter {flt}"
            elif m is None:
                passed, reason = False, "metric not computed for this filter"
            else:
                passed, reason = check_bounds(m.value, bounds)
            out.append(Verdict(metric, flt, "threshold", passed,
                               None if m is None else m.value,
                               None if m is None else m.uncertainty, unit,
                               0 if m is None else m.n, limit,
                               _message(metric, flt, m, passed, limit, reason, unit)))
    return out


def _bounds(b: Bounds | Mapping[str, float]) -> Bounds:
    return b if isinstance(b, Bounds) else Bounds.model_validate(dict(b))


@dataclass(frozen=True)
class Tolerance:
    """Baseline tolerance: pass if ``|current - baseline| <= abs + rel * |baseline|``."""

    abs: float = 0.0
    rel: float = 0.0

    def __post_init__(self) -> None:
        if self.abs < 0 or self.rel < 0:
            raise ValueError(f"tolerances must be >= 0 (abs={self.abs}, rel={self.rel})")

    def allowed(self, baseline: float) -> float:
        return self.abs + self.rel * abs(baseline)


def compare_to_baseline(current: MetricsDocument, baseline: MetricsDocument, *,
                        tolerances: Mapping[str, Tolerance] | None = None,
                        metrics: Iterable[str] | None = None) -> list[Verdict]:
    """Compare a run's metrics with an earlier run's, metric by metric and filter by filter.

    Parameters
    ----------
    current, baseline : MetricsDocument
        This run and the reference run (e.g. from :func:`simval.metrics_schema.read_metrics`).
    tolerances : mapping, optional
        metric -> :class:`Tolerance`; the key ``"default"`` applies to metrics not listed;
        otherwise the registry's ``baseline_abs``.
    metrics : iterable of str, optional
        Metrics to compare (default: every metric in the baseline).

    Returns
    -------
    list of Verdict
        ``kind="baseline"``; ``limit`` reads ``baseline +/- allowed``. A metric measured
        in the baseline but missing or unmeasured now fails; one unmeasured in both passes.
        A different scenario hash is noted in every message.

    Raises
    ------
    simval.metrics_schema.UnknownMetricError
        For unknown names in ``tolerances`` or ``metrics``.
    """
    tol = dict(tolerances or {})
    check_metric_names([k for k in tol if k != "default"], where="baseline tolerances")
    wanted = None if metrics is None else list(metrics)
    if wanted is not None:
        check_metric_names(wanted, where="baseline metrics")
    note = ""
    if current.scenario_hash != baseline.scenario_hash:
        note = (f"; baseline scenario {baseline.scenario_name} ({baseline.scenario_hash}) "
                f"differs from {current.scenario_name} ({current.scenario_hash})")
    out: list[Verdict] = []
    for flt in sorted(baseline.filters):
        for metric in sorted(baseline.filters[flt]):
            if wanted is not None and metric not in wanted:
                continue
            b = baseline.filters[flt][metric]
            m = current.get(flt, metric)
            unit = REGISTRY[metric].unit
            t = tol.get(metric, tol.get("default", Tolerance(REGISTRY[metric].baseline_abs)))
            value = None if m is None else m.value
            if b.value is None:
                passed = value is None
                limit = "not measured (as in the baseline)"
                reason = "" if passed else "baseline had no value"
            else:
                allowed = t.allowed(b.value)
                limit = f"{b.value:.4g} +/- {allowed:.2g} (baseline)"
                if value is None:
                    passed, reason = False, "not measured"
                else:
                    passed = abs(value - b.value) <= allowed
                    reason = f"differs by {value - b.value:+.3g}"
            msg = _message(metric, flt, m, passed, limit, reason, unit) + note
            out.append(Verdict(metric, flt, "baseline", passed, value,
                               None if m is None else m.uncertainty, unit,
                               0 if m is None else m.n, limit, msg, b.value))
    return out


def all_passed(verdicts: Iterable[Verdict]) -> bool:
    """True if every verdict passed (and True for none)."""
    return all(v.passed for v in verdicts)


def verdict_table(verdicts: Iterable[Verdict]) -> str:
    """Plain-text table (filter, metric, value, limit, n, result), failures first."""
    rows = sorted(verdicts, key=lambda v: (v.passed, v.filter, v.metric))
    head = ("filter", "metric", "value", "limit", "n", "result")
    body = [(v.filter, v.metric, _fmt(v.value, v.uncertainty, v.unit), v.limit, str(v.n),
             "PASS" if v.passed else "FAIL") for v in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [head, *body]]
    return "\n".join(lines)
