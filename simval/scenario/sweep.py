"""A scenario's ``sweep`` block: which keys may vary, and the grid of variants it makes.

Pure transforms of scenario mappings (no runs): :func:`check_sweep_keys` validates the
block for the schema, :func:`expand_sweep` turns a scenario mapping into its variants (the
Cartesian product of the swept values, in the order written). Running them is
:func:`simval.sweep.run_sweep`.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simval.kit.changes import KNOBS
from simval.scenario.errors import FieldError

__all__ = ["PIPELINES", "SWEEPABLE", "SweepError", "Variant", "check_fault_keys",
           "check_sweep_keys", "expand_faults", "expand_sweep", "full_key"]

#: Top-level scenario keys a sweep may vary (they leave the simulated data unchanged).
SWEEPABLE = ("pipeline", "crds", "background_recipe", "comparison", "environment")
PIPELINES = ("detector1", "image2", "image3")


class SweepError(ValueError):
    """A sweep cannot be expanded or run; the message names the key."""


def full_key(key: str) -> list[str]:
    """A dotted sweep key as scenario path parts, ``pipeline`` added where it was left out:
    ``image3.skymatch.skymethod -> ['pipeline', 'image3', 'skymatch', 'skymethod']``."""
    parts = [p for p in str(key).split(".") if p]
    if parts and parts[0] in PIPELINES:
        parts = ["pipeline", *parts]
    return parts


def _key_problem(key: str, what: str = "a sweep") -> tuple | None:
    parts = full_key(key)
    if not parts or parts[0] not in SWEEPABLE:
        return ((key,), key, f"{what} may only vary what leaves the simulated data unchanged",
                f"keys under {', '.join(SWEEPABLE)} (pipeline. may be left out: "
                "image3.skymatch.skymethod)")
    if parts[0] == "pipeline" and (len(parts) != 4 or parts[1] not in PIPELINES):
        return ((key,), key, "a pipeline key is pipeline.step.parameter",
                "e.g. image3.skymatch.skymethod")
    return None


def check_fault_keys(settings: Mapping[str, Any]) -> None:
    """Raise ``FieldError`` for a fault's ``set`` key outside :data:`SWEEPABLE` (a fault is
    a calibration of the same simulated data) or an empty ``set``."""
    if not settings:
        raise FieldError("a fault sets at least one key", allowed="{dotted.key: value}")
    problems = [p for p in (_key_problem(k, "a fault") for k in settings) if p]
    if problems:
        raise FieldError(problems[0][2], items=problems)


def check_sweep_keys(sweep: Mapping[str, Sequence[Any]]) -> None:
    """Raise ``FieldError`` (scenario schema) for a key outside :data:`SWEEPABLE` or an empty
    list of values."""
    problems = []
    for key, values in sweep.items():
        problem = _key_problem(key)
        if problem:
            problems.append(problem)
        elif not isinstance(values, list) or not values:
            problems.append(((key,), values, "needs a non-empty list of values",
                             "[value, value, ...]"))
    if problems:
        raise FieldError(problems[0][2], items=problems)


@dataclass(frozen=True)
class Variant:
    """One point of the grid: ``label`` (file-system safe), the swept ``settings`` (dotted
    key -> value) and the complete scenario ``data`` (without ``sweep``)."""

    label: str
    settings: dict[str, Any]
    data: dict[str, Any]


def _set(data: dict[str, Any], parts: list[str], value: Any) -> None:
    node = data
    for p in parts[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            node[p] = nxt
        node = nxt
    node[parts[-1]] = value


def _label(settings: Mapping[str, Any]) -> str:
    if not settings:
        return "base"
    text = "_".join(f"{k.split('.')[-1]}-{v}" for k, v in settings.items())
    text = re.sub(r"[\s'\"{}\[\]:,]", "", text).replace("+", "_plus_")  # global+match
    return re.sub(r"[^A-Za-z0-9_.-]", "", text)[:100] or "variant"


def _clean_derive(data: dict[str, Any]) -> None:
    """A derive block whose values are all neutral means the base context: drop it."""
    kit = (data.get("crds") or {}).get("kit")
    derive = kit.get("derive") if isinstance(kit, dict) else None
    if isinstance(derive, dict):
        if not any(name in derive and knob.changes(tuple(derive[name]) if isinstance(
                knob.neutral, tuple) else derive[name]) for name, knob in KNOBS.items()):
            kit.pop("derive")


def expand_faults(data: Mapping[str, Any]) -> list[Variant]:
    """The fault panel of a scenario mapping: ``clean`` (the scenario as written, without
    ``faults`` and ``sweep``) then one variant per fault, each the clean scenario with its
    ``set`` keys applied (one fault at a time, not a grid)."""
    base = {k: copy.deepcopy(v) for k, v in data.items() if k not in ("faults", "sweep")}
    variants = [Variant("clean", {}, copy.deepcopy(base))]
    for fault in data.get("faults") or []:
        d = copy.deepcopy(base)
        settings = dict(fault["set"])
        for key, value in settings.items():
            _set(d, full_key(key), value)
        _clean_derive(d)
        label = re.sub(r"[^A-Za-z0-9_.-]", "", re.sub(r"[\s/]+", "_", fault["name"]))[:60]
        d["name"] = f"{base.get('name', 'scenario')}-{label}"[:64]
        variants.append(Variant(label or "fault", settings, d))
    labels = [v.label for v in variants]
    if len(set(labels)) != len(labels):
        raise SweepError(f"fault names give duplicate labels: {labels}")
    return variants


def expand_sweep(data: Mapping[str, Any]) -> list[Variant]:
    """The variants of a scenario mapping with a ``sweep`` block (one variant without)."""
    sweep = dict(data.get("sweep") or {})
    base = {k: copy.deepcopy(v) for k, v in data.items() if k != "sweep"}
    crds = base.get("crds")
    if isinstance(crds, dict) and crds.get("contexts"):  # crds.contexts: one per variant
        key = "crds.context" if crds.get("path") else "crds.kit.context"
        sweep[key] = list(crds.pop("contexts"))
    keys = list(sweep)
    variants = []
    for values in itertools.product(*(sweep[k] for k in keys)):
        d = copy.deepcopy(base)
        settings = dict(zip(keys, values, strict=True))
        for key, value in settings.items():
            _set(d, full_key(key), value)
        _clean_derive(d)
        d["name"] = f"{base.get('name', 'scenario')}-{_label(settings)}"[:64]
        variants.append(Variant(_label(settings), settings, d))
    labels = [v.label for v in variants]
    if len(set(labels)) != len(labels):
        raise SweepError(f"sweep values give duplicate variant labels: {labels}")
    return variants
