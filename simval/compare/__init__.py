"""Compare finished runs: pipeline versions, CRDS contexts, step parameters.

``simval compare RUN_A RUN_B [RUN_C ...]`` compares every run with the first (A):

* every metric of every filter of the runs' ``metrics.json``: values, the difference
  **B - A** and its uncertainty (bootstrap over sources for catalog metrics, recorded
  uncertainties in quadrature otherwise), and the threshold verdicts that changed
  (:mod:`~simval.compare.metrics_diff`);
* the same sources across the two catalogs: median flux ratio B/A of the S/N > 20
  sources with a bootstrap uncertainty, and its trend with magnitude
  (:mod:`~simval.compare.catalogs`);
* the mosaics pixel by pixel on a common grid: ratio and difference statistics and a
  difference image (:mod:`~simval.compare.pixels`);
* what differs in the manifests: CRDS contexts, reference files, step parameters,
  software versions (:mod:`~simval.compare.provenance`);

and writes ``compare.html`` (:mod:`~simval.compare.html`) and ``compare.json`` (schema
``simval.compare`` version 1, docs/compare.md). Checks — ``--tolerance metric=VALUE`` on
|B - A| and ``--fail-on-flux-ratio X`` on |median ratio - 1| — make the exit code 1 when
they fail; bad input is exit code 2 (:class:`CompareInputError`).

From Python::

    from simval.compare import compare_runs, write_compare
    result = compare_runs(["runs/base", "runs/photom"], tolerances={"phot_bias_star_mag": 0.01})
    write_compare(result, "compare/base_vs_photom")
    result.exit_code
"""

from __future__ import annotations

from simval.compare.core import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    Check,
    CompareResult,
    FilterComparison,
    PairComparison,
    VerdictChange,
    compare_runs,
    default_output,
    parse_tolerances,
    write_compare,
)
from simval.compare.runs import CompareInputError, CompareRun, common_filters, load_runs

__all__ = [
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "Check",
    "CompareInputError",
    "CompareResult",
    "CompareRun",
    "FilterComparison",
    "PairComparison",
    "VerdictChange",
    "common_filters",
    "compare_runs",
    "default_output",
    "load_runs",
    "parse_tolerances",
    "write_compare",
]
