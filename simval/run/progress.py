"""The terminal side of a run: one live table (exposures x stages, then mosaics) and the
summary tables at the end. Nothing else of a run reaches the terminal: pipeline and MIRAGE
logs go to ``logs/<stage_id>.log``.

A stage's cell reads ``·`` (waiting), ``running 12s``, ``12.3s`` (done now), ``cached``,
``FAILED`` or ``blocked``. Running stages are seen through their records (status
``running`` with this run's id), so the display needs nothing from the workers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from simval.layout import RunLayout
from simval.run.records import BLOCKED, CACHED, COMPLETE, FAILED, StageOutcome, read_record

EXPOSURE_KINDS = ("simulate", "detector1", "image2")
PRODUCT_KINDS = ("image3", "truth", "evaluate")
#: A coronagraphy run: simval's simulator writes rateints (no detector1), coron3 replaces
#: image3 and there is no truth mosaic.
CORON_EXPOSURE_KINDS = ("simulate", "image2")
CORON_PRODUCT_KINDS = ("coron3", "evaluate")


class RunProgress:
    """Live progress of a run. Use as a context manager; call :meth:`done` per outcome and
    :meth:`poll` periodically. ``enabled=False`` shows nothing."""

    def __init__(self, plan, layout: RunLayout, run_id: str, console: Console | None = None,
                 enabled: bool = True):
        self.plan, self.layout, self.run_id = plan, layout, run_id
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.outcomes: dict[str, StageOutcome] = {}
        self.running: dict[str, float] = {}
        self.t0 = time.monotonic()
        self._live: Live | None = None
        self._note = ""

    def __enter__(self) -> RunProgress:
        if self.enabled:
            self._live = Live(self.render(), console=self.console, refresh_per_second=2,
                              transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.update(self.render())
            self._live.__exit__(*exc)
            self._live = None

    def done(self, outcome: StageOutcome) -> None:
        self.outcomes[outcome.stage_id] = outcome
        self.running.pop(outcome.stage_id, None)
        self._refresh()

    def poll(self, pending: list[str]) -> None:
        """Mark stages whose record says this run is executing them."""
        if not self.enabled:
            return
        for sid in pending:
            if sid in self.running:
                continue
            rec = read_record(self.layout, sid)
            if rec is not None and rec.status == "running" and rec.run_id == self.run_id:
                started = rec.started_utc
                try:
                    age = (datetime.now().astimezone() - datetime.fromisoformat(started)
                           ).total_seconds()
                except (TypeError, ValueError):
                    age = 0.0
                self.running[sid] = time.monotonic() - max(age, 0.0)
        self._refresh()

    def note(self, text: str) -> None:
        """A line under the heading (e.g. kit build progress); empty to clear it."""
        self._note = text
        self._refresh()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self.render())

    def _cell(self, sid: str) -> Text:
        o = self.outcomes.get(sid)
        if o is None:
            if sid in self.running:
                return Text(f"running {time.monotonic() - self.running[sid]:.0f}s", "yellow")
            return Text("·", "dim")
        if o.status == COMPLETE:
            return Text(f"{o.wall_s:.1f}s", "green")
        if o.status == CACHED:
            return Text("cached", "cyan")
        if o.status == FAILED:
            return Text("FAILED", "bold red")
        return Text("blocked", "magenta")

    def render(self) -> Group:
        coron = getattr(self.plan, "coronagraphy", None) is not None
        exposure_kinds = CORON_EXPOSURE_KINDS if coron else EXPOSURE_KINDS
        product_kinds = CORON_PRODUCT_KINDS if coron else PRODUCT_KINDS
        n_total = (len(self.plan.exposures) * len(exposure_kinds)
                   + len(self.plan.products) * len(product_kinds) + 2 + (not coron))
        n_done = len(self.outcomes)
        head = Text(f"simval run {self.plan.scenario_name}: {n_done}/{n_total} stages, "
                    f"{time.monotonic() - self.t0:.0f} s  ({self.layout.root})", "bold")
        table = Table(show_edge=False, pad_edge=False, box=None)
        table.add_column("exposure / product")
        table.add_column("filter")
        for kind in (*exposure_kinds, *product_kinds):
            table.add_column(kind, justify="right")
        pad = [""] * (len(exposure_kinds) - 1)
        blank = [""] * len(product_kinds)
        table.add_row("kit", "", self._cell("kit"), *pad, *blank)
        if not coron:
            table.add_row("catalog", "", self._cell("catalog"), *pad, *blank)
        for e in self.plan.exposures:
            table.add_row(e.base_name, e.filter_name,
                          *[self._cell(f"{k}.{e.base_name}") for k in exposure_kinds], *blank)
        for p in self.plan.products:
            table.add_row(p.name, p.filter_name, *pad, "",
                          *[self._cell(f"{k}.{p.name}") for k in product_kinds])
        table.add_row("metrics.json", "", *pad, "", *blank[:-1], self._cell("metrics"))
        parts = [head, Text(self._note, "dim")] if self._note else [head]
        return Group(*parts, table)


def summary_tables(manifest: Mapping[str, Any]) -> list[Table]:
    """End-of-run tables: products, and wall time / peak memory per stage kind. The verdict
    table of the metrics will be appended after these."""
    products = Table(title="products")
    for col in ("filter", "mosaic (_i2d.fits)", "catalog (_cat.ecsv)", "sources"):
        products.add_column(col)
    for band, p in manifest.get("products", {}).items():
        products.add_row(band, p["i2d"], p["catalog"], str(p.get("n_sources", "")))
    stages = Table(title=f"stages (run wall time {manifest.get('wall_s', 0):.1f} s, status "
                         f"{manifest.get('status')})")
    for col, just in (("stage", "left"), ("ran", "right"), ("cached", "right"),
                      ("failed", "right"), ("wall s (sum)", "right"),
                      ("wall s (max)", "right"), ("peak MiB (max)", "right")):
        stages.add_column(col, justify=just)
    kinds: dict[str, list[dict[str, Any]]] = {}
    for entry in manifest.get("stages", {}).values():
        kinds.setdefault(entry["kind"], []).append(entry)
    for kind, entries in kinds.items():
        ran = [e for e in entries if e["status"] == COMPLETE]
        stages.add_row(
            kind, str(len(ran)), str(sum(e["status"] == CACHED for e in entries)),
            str(sum(e["status"] in (FAILED, BLOCKED) for e in entries)),
            f"{sum(e['wall_s'] for e in ran):.1f}",
            f"{max((e['wall_s'] for e in ran), default=0.0):.1f}",
            f"{max((e['peak_rss_mb'] for e in entries), default=0.0):.0f}")
    return [products, stages]
