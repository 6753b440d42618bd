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
           "check_sweep_keys", "expand_faults", "expand_sweep", "full_key", "sweep_keys"]

#: Top-level scenario keys a sweep may vary (they leave the simulated data unchanged).
SWEEPABLE = ("pipeline", "crds", "background_recipe", "comparison", "environment",
             "alignment")
PIPELINES = ("detector1", "image2", "image3", "coron3")


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
    if parts[0] == "pipeline" and (len(parts) not in (3, 4) or parts[1] not in PIPELINES):
        return ((key,), key, "a pipeline key is pipeline.step.parameter (or pipeline.step "
                "with {parameter: value} values)",
                "e.g. image3.skymatch.skymethod, image3.outlier_detection")
    return None


def check_fault_keys(settings: Mapping[str, Any]) -> None:
    """Raise ``FieldError`` for a fault's ``set`` key outside :data:`SWEEPABLE` (a fault is
    a calibration of the same simulated data) or an empty ``set``."""
    if not settings:
        raise FieldError("a fault sets at least one key", allowed="{dotted.key: value}")
    problems = [p for p in (_key_problem(k, "a fault") for k in settings) if p]
    if problems:
        raise FieldError(problems[0][2], items=problems)


def sweep_keys(sweep: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None) -> list[str]:
    """The dotted keys a sweep varies (a grid's keys, or every key of a variant list)."""
    if isinstance(sweep, Mapping):
        return list(sweep)
    keys: list[str] = []
    for item in sweep or []:
        keys += [k for k in item if k not in keys]
    return keys


def _value_problem(key: str, value: Any) -> tuple | None:
    if _is_step_key(key) and not isinstance(value, dict):
        return ((key,), value, "a step's values are parameter mappings",
                "[{skip: true}, {}, {snr: '8.0 6.0'}, ...] (merged over the scenario's own "
                "parameters of the step)")
    return None


def check_sweep_keys(sweep: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]
                     ) -> None:
    """Raise ``FieldError`` (scenario schema) for a key outside :data:`SWEEPABLE` or an empty
    list of values. A sweep is a grid (key -> values: every combination) or a list of
    variants (each a mapping key -> value; ``{}`` is the scenario as written)."""
    problems = []
    if not isinstance(sweep, Mapping):
        for i, item in enumerate(sweep):
            if not isinstance(item, Mapping):
                problems.append(((i,), item, "a variant is a mapping of dotted keys to values",
                                 "{image3.skymatch.skymethod: match}, or {} for the scenario "
                                 "as written"))
                continue
            for key, value in item.items():
                problem = _key_problem(key) or _value_problem(key, value)
                if problem:
                    problems.append(((i, *problem[0]), *problem[1:]))
        if problems:
            raise FieldError(problems[0][2], items=problems)
        return
    for key, values in sweep.items():
        problem = _key_problem(key)
        if problem:
            problems.append(problem)
        elif not isinstance(values, list) or not values:
            problems.append(((key,), values, "needs a non-empty list of values",
                             "[value, value, ...]"))
        else:
            bad = [v for v in values if _value_problem(key, v)]
            if bad:
                problems.append(_value_problem(key, bad[0]))
    if problems:
        raise FieldError(problems[0][2], items=problems)


@dataclass(frozen=True)
class Variant:
    """One point of the grid: ``label`` (file-system safe), the swept ``settings`` (dotted
    key -> value) and the complete scenario ``data`` (without ``sweep``)."""

    label: str
    settings: dict[str, Any]
    data: dict[str, Any]


def _is_step_key(key: str) -> bool:
    parts = full_key(key)
    return len(parts) == 3 and parts[0] == "pipeline"


def _set(data: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set ``value`` at ``parts``; a step's mapping (pipeline.stage.step) is merged over the
    step's own parameters."""
    if len(parts) == 3 and parts[0] == "pipeline" and isinstance(value, dict):
        for name, v in value.items():
            _set(data, [*parts, name], v)
        return
    node = data
    for p in parts[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            node[p] = nxt
        node = nxt
    node[parts[-1]] = value


def _short(value: Any) -> Any:
    """A value for a label: a dotted Python name (a step hook) by its last part, a list
    of them joined, an empty list ``none``."""
    if isinstance(value, list):
        return "+".join(str(_short(v)) for v in value) or "none"
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*){2,}", value):
        return value.rsplit(".", 1)[-1]
    return value


def _label(settings: Mapping[str, Any]) -> str:
    if not settings:
        return "base"
    text = "_".join(f"{k.split('.')[-1]}-{'defaults' if v == {} else _short(v)}"
                    for k, v in settings.items())
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
    raw = data.get("sweep") or {}
    base = {k: copy.deepcopy(v) for k, v in data.items() if k != "sweep"}
    if not isinstance(raw, Mapping):
        if (base.get("crds") or {}).get("contexts"):
            raise SweepError("crds.contexts makes a grid: with a list of variants, set "
                             "crds.kit.context (or crds.context) in each variant instead")
        return _variants(base, [dict(item) for item in raw])
    sweep = dict(raw)
    crds = base.get("crds")
    if isinstance(crds, dict) and crds.get("contexts"):  # crds.contexts: one per variant
        key = "crds.context" if crds.get("path") else "crds.kit.context"
        sweep[key] = list(crds.pop("contexts"))
    keys = list(sweep)
    return _variants(base, [dict(zip(keys, values, strict=True))
                            for values in itertools.product(*(sweep[k] for k in keys))])


def _variants(base: dict[str, Any], grid: list[dict[str, Any]]) -> list[Variant]:
    variants = []
    for settings in grid:
        d = copy.deepcopy(base)
        for key, value in settings.items():
            _set(d, full_key(key), value)
        _clean_derive(d)
        d["name"] = f"{base.get('name', 'scenario')}-{_label(settings)}"[:64]
        variants.append(Variant(_label(settings), settings, d))
    labels = [v.label for v in variants]
    if len(set(labels)) != len(labels):
        raise SweepError(f"sweep values give duplicate variant labels: {labels}")
    return variants
