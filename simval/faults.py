"""The fault x metric table of a fault panel: which metric flags which calibration fault.

A panel calibrates one simulation cleanly and once per fault (``faults`` in a scenario,
:func:`simval.scenario.sweep.expand_faults`); clean seeds are the clean calibration of other
simulations. Every run's metrics go through the scenario's thresholds
(:func:`simval.verdict.evaluate_thresholds`): a metric *flags* a run when its verdict fails.
A fault is *caught* when at least one of its expected metrics flags it; a *benign* fault
(one declared harmless at its size, with the reason) passes when no metric flags it. A
clean seed raises a *false alarm* for every failed verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from simval.metrics_schema import Measurement
from simval.scenario.inputs import Comparison
from simval.verdict import Verdict, evaluate_thresholds

__all__ = ["FaultCell", "FaultPanel", "fault_panel"]

Metrics = Mapping[str, Mapping[str, Measurement]]  # filter -> metric -> measurement


@dataclass(frozen=True)
class FaultCell:
    """One (fault, metric, filter): the clean and faulted values, the bound, the outcome.

    flagged : the faulted run's verdict failed. expected : the fault names this metric.
    clean_flagged : the clean run's verdict failed too (then the flag says nothing).
    """

    fault: str
    metric: str
    filter: str
    unit: str
    clean_value: float | None
    value: float | None
    limit: str
    expected: bool
    flagged: bool
    clean_flagged: bool

    @property
    def discriminating(self) -> bool:
        """Flagged in the faulted run and passed in the clean one."""
        return self.flagged and not self.clean_flagged


@dataclass
class FaultPanel:
    """Cells of every fault and threshold metric, plus the clean seeds' failed verdicts."""

    faults: list[str]
    expect: dict[str, list[str]]
    benign: dict[str, str] = field(default_factory=dict)
    cells: list[FaultCell] = field(default_factory=list)
    false_alarms: list[dict[str, object]] = field(default_factory=list)
    seeds: list[str] = field(default_factory=list)

    def caught(self, fault: str) -> bool:
        """An expected metric flags ``fault`` (and passes on the clean run); for a benign
        fault: no metric flags it."""
        if fault in self.benign:
            return not self.flagged_by(fault)
        return any(c.discriminating for c in self.cells if c.fault == fault and c.expected)

    def verdict(self, fault: str) -> str:
        """``caught`` / ``missed``; ``benign`` / ``not benign`` for a benign fault."""
        if fault in self.benign:
            return "benign" if self.caught(fault) else "not benign"
        return "caught" if self.caught(fault) else "missed"

    def flagged_by(self, fault: str) -> list[FaultCell]:
        """Every cell that flags ``fault`` against a clean pass, expected or not."""
        return [c for c in self.cells if c.fault == fault and c.discriminating]

    def missed(self) -> list[str]:
        return [f for f in self.faults if not self.caught(f)]

    def to_dict(self) -> dict[str, object]:
        return {
            "faults": [{"name": f, "expect": self.expect[f], "benign": self.benign.get(f),
                        "caught": self.caught(f), "verdict": self.verdict(f),
                        "flagged_by": sorted({f"{c.metric}[{c.filter}]"
                                              for c in self.flagged_by(f)})}
                       for f in self.faults],
            "cells": [asdict(c) for c in self.cells],
            "clean_seeds": self.seeds, "false_alarms": self.false_alarms,
        }

    def markdown(self) -> str:
        """The fault x expected-metric table, one row per (fault, expected metric, filter),
        then every other metric a fault flags, then the clean seeds' false alarms."""
        lines = ["| fault | metric | filter | clean | faulted | bound | flagged |",
                 "|---|---|---|---|---|---|---|"]
        for f in self.faults:
            for c in (c for c in self.cells if c.fault == f and c.expected):
                lines.append(f"| {f} | {c.metric} | {c.filter} | {_num(c.clean_value)} | "
                             f"{_num(c.value)} | {c.limit} | "
                             f"{'**yes**' if c.discriminating else 'no'} |")
        lines.append("")
        for f in self.faults:
            others = [c for c in self.flagged_by(f) if not c.expected]
            verdict = self.verdict(f) if self.caught(f) else f"**{self.verdict(f)}**"
            if f in self.benign:
                verdict += f" ({self.benign[f]})"
            also = ", ".join(f"{c.metric}[{c.filter}] {_num(c.value)}" for c in others)
            lines.append(f"- {f}: {verdict}" + (f"; also flagged by {also}" if also else ""))
        if self.seeds:
            lines.append("")
            lines.append(f"Clean seeds ({len(self.seeds)}): {len(self.false_alarms)} false "
                         "alarm(s)" + ("" if not self.false_alarms else ": " + ", ".join(
                             f"{a['seed']} {a['metric']}[{a['filter']}] {_num(a['value'])}"
                             for a in self.false_alarms)))
        return "\n".join(lines) + "\n"


def _num(value: object) -> str:
    return "not measured" if value is None else f"{value:.4g}"


def _by_key(verdicts: Sequence[Verdict]) -> dict[tuple[str, str], Verdict]:
    return {(v.metric, v.filter): v for v in verdicts}


def fault_panel(comparison: Comparison, clean: Metrics, faulted: Mapping[str, Metrics],
                expect: Mapping[str, Sequence[str]],
                seeds: Mapping[str, Metrics] | None = None,
                benign: Mapping[str, str] | None = None) -> FaultPanel:
    """The panel of ``faulted`` runs (fault name -> metrics, in order) against ``clean``
    under ``comparison``'s thresholds; ``seeds`` (label -> metrics) are other clean
    simulations, whose failed verdicts are false alarms; ``benign`` (fault -> reason) the
    faults that no metric should flag."""
    base = _by_key(evaluate_thresholds(clean, comparison))
    panel = FaultPanel(list(faulted), {f: list(expect.get(f, ())) for f in faulted},
                       {f: r for f, r in (benign or {}).items() if f in faulted})
    for name, metrics in faulted.items():
        for (metric, flt), v in _by_key(evaluate_thresholds(metrics, comparison)).items():
            b = base.get((metric, flt))
            panel.cells.append(FaultCell(
                name, metric, flt, v.unit, None if b is None else b.value, v.value, v.limit,
                metric in panel.expect[name], not v.passed, b is None or not b.passed))
    for label, metrics in (seeds or {}).items():
        panel.seeds.append(label)
        panel.false_alarms += [{"seed": label, "metric": v.metric, "filter": v.filter,
                                "value": v.value, "limit": v.limit}
                               for v in evaluate_thresholds(metrics, comparison)
                               if not v.passed]
    return panel
