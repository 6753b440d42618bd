"""Simulate once, calibrate many: adopt another run's catalog, simulated exposures and
ramp fits.

A run started with ``reuse_simulation=BASE`` first links (hard links, or copies across
file systems) the files and stage records of BASE's complete ``catalog``, ``simulate``
and ``detector1`` stages into its own directory. The ordinary resume rule then decides: a
stage is reused only if its record's fingerprint equals the one this run computes (same
catalog, same simulator parameters, same kit files, same software; for detector1 the same
uncal, CRDS context, step parameters and pipeline environment) and every output's sha256
matches, so a scenario that simulates or fits ramps differently silently gets fresh
stages rather than wrong ones, and the manifest says how many were reused. A sweep over
image2/image3 parameters then fits each exposure's ramps once (a MIRI FULL exposure of
60 groups takes about a minute in calwebb_detector1); a new context, a detector1 step
parameter or another environment re-runs them. image2 and later always run in the new
directory.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from simval.atomic import write_text
from simval.layout import RunLayout

__all__ = ["REUSED_KINDS", "ReuseError", "adopt_simulation"]

#: Stage kinds whose outputs a run can take from another run.
REUSED_KINDS = ("catalog", "simulate", "detector1")


class ReuseError(ValueError):
    """The run to reuse is not usable; the message names the directory and what is wrong."""


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".part")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def adopt_simulation(base: str | os.PathLike, layout: RunLayout) -> dict[str, Any]:
    """Link BASE's complete catalog and simulate stages into ``layout``.

    Returns ``{"run": BASE, "stages": [...], "files": N}``. Raises :class:`ReuseError` when
    BASE is not a run directory, is ``layout`` itself, or has no complete simulate stage.
    """
    src = RunLayout(Path(base).resolve())
    if src.root == layout.root.resolve():
        raise ReuseError(f"{src.root}: a run cannot reuse its own directory")
    if not src.stages.is_dir():
        raise ReuseError(f"{src.root}: not a simval run directory (no stages/)")
    adopted, files = [], 0
    for record_path in sorted(src.stages.glob("*.json")):
        try:
            record = json.loads(record_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if record.get("kind") not in REUSED_KINDS or record.get("status") != "complete":
            continue
        outputs = record.get("outputs", {})
        paths = [src.abs(ref["path"]) for ref in outputs.values()]
        if not all(p.is_file() and p.is_relative_to(src.root) for p in paths):
            continue
        for p in paths:
            _link(p, layout.root / p.relative_to(src.root))
            files += 1
        if record.get("kind") == "simulate":  # seed images beside the uncal: the truth
            for directory in {p.parent for p in paths if p.parent != src.exposures}:
                for p in sorted(directory.glob("*")):
                    target = layout.root / p.relative_to(src.root)
                    if p.is_file() and not target.exists():
                        _link(p, target)
                        files += 1
        write_text(layout.stages / record_path.name, record_path.read_text())
        adopted.append(record["stage_id"])
    if not any(s.startswith("simulate.") for s in adopted):
        raise ReuseError(f"{src.root}: no complete simulate stage to reuse")
    return {"run": str(src.root), "stages": adopted, "files": files}
