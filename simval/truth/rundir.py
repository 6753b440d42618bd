"""What the truth stage reads of a run directory besides the simulator's lists.

:class:`TruthError` (the run's files do not fit together), the run argument as a
:class:`~simval.layout.RunLayout`, the one file of a directory with a given ending, a
product's association members (in association order) and the truth table's path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from simval.layout import RunLayout

if TYPE_CHECKING:
    from simval.plan import Product

__all__ = ["TruthError", "as_layout", "asn_members", "file_ending", "truth_path"]


class TruthError(ValueError):
    """The run directory's simulator outputs and input catalog do not fit together."""


def as_layout(run: str | os.PathLike | RunLayout) -> RunLayout:
    """``run`` as a :class:`~simval.layout.RunLayout` (a path is the run directory)."""
    return run if isinstance(run, RunLayout) else RunLayout(Path(run))


def truth_path(layout: RunLayout, product_name: str) -> Path:
    """``<run>/truth/<product>_truth.ecsv``."""
    return layout.truth_table(product_name)


def file_ending(directory: Path, suffix: str) -> Path | None:
    """The one file of ``directory`` whose name ends with ``suffix`` (None if there is none;
    :class:`TruthError` if there are several)."""
    found = sorted(directory.glob(f"*{suffix}"))
    if len(found) > 1:
        raise TruthError(f"{directory}: several *{suffix} files: "
                         f"{', '.join(p.name for p in found)}")
    return found[0] if found else None


def asn_members(layout: RunLayout, product: Product) -> list[str]:
    """Base names of a product's association members, in association order (the order of
    resample's context bits and of the i2d ``HDRTAB``); the plan's order without the file."""
    asn = layout.product_dir(product.name) / product.asn_name
    if not asn.is_file():
        return list(product.members)
    doc = json.loads(asn.read_text())
    return [m["expname"].removesuffix("_cal.fits")
            for p in doc.get("products", []) for m in p.get("members", [])]
