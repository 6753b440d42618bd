"""The fault panel as a page: the fault x metric matrix (``OUT/panel.html``).

One row per fault (and the clean calibration first), one column per threshold metric and
filter; a cell shows the faulted value, red when that metric flags the fault against a
clean pass, outlined when the fault names the metric as expected. Then the clean seeds'
false alarms. Built from :class:`simval.faults.FaultPanel` only.
"""

from __future__ import annotations

from dataclasses import dataclass

from simval.faults import FaultCell, FaultPanel
from simval.report.html import render_template

__all__ = ["render_panel_html"]


@dataclass(frozen=True)
class MatrixCell:
    text: str
    cls: str
    title: str


@dataclass(frozen=True)
class MatrixRow:
    fault: str
    verdict: str
    cells: list[MatrixCell]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _cell(c: FaultCell | None) -> MatrixCell:
    if c is None:
        return MatrixCell("", "", "")
    cls = " ".join(k for k, on in (("flag", c.discriminating), ("expected", c.expected),
                                   ("cleanfail", c.clean_flagged)) if on)
    title = (f"{c.metric} [{c.filter}]: clean {_num(c.clean_value)} -> {_num(c.value)} "
             f"{c.unit}; bound {c.limit}" + ("; expected to flag" if c.expected else "")
             + ("; fails on the clean run too" if c.clean_flagged else ""))
    return MatrixCell(_num(c.value), cls, title)


def render_panel_html(panel: FaultPanel, *, title: str) -> str:
    """The panel page (self-contained HTML)."""
    columns = sorted({(c.metric, c.filter) for c in panel.cells})
    by_key = {(c.fault, c.metric, c.filter): c for c in panel.cells}
    clean = {(c.metric, c.filter): c.clean_value for c in panel.cells}
    rows = [MatrixRow("clean", "", [MatrixCell(_num(clean.get(k)), "", "the clean "
                                               "calibration") for k in columns])]
    for fault in panel.faults:
        rows.append(MatrixRow(fault, panel.verdict(fault),
                              [_cell(by_key.get((fault, m, f))) for m, f in columns]))
    return render_template("panel.html.j2", title=title, columns=columns, rows=rows,
                           n_caught=sum(panel.caught(f) for f in panel.faults
                                        if f not in panel.benign),
                           n_faults=len(panel.faults) - len(panel.benign),
                           n_benign=len(panel.benign),
                           n_benign_ok=sum(panel.caught(f) for f in panel.benign),
                           seeds=panel.seeds,
                           false_alarms=panel.false_alarms)
