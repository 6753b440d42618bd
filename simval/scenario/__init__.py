"""Scenarios: what to simulate, how to calibrate it and how to judge it (validated YAML).

Public API
----------
:func:`load_scenario` (path -> :class:`Scenario`), :func:`validate_scenario` (mapping ->
:class:`Scenario`), :func:`scenario_hash`, :func:`scenario_json_schema`, :class:`ScenarioError`
(the one exception every invalid scenario raises: file, line, dotted path, bad value, what
is allowed).

Modules: :mod:`~simval.scenario.schema` (the pydantic model),
:mod:`~simval.scenario.loader` (YAML, hashing), :mod:`~simval.scenario.errors`,
:mod:`~simval.scenario.dithers` (named dither patterns with sources),
:mod:`~simval.scenario.pipeline_params` (jwst step parameter validation),
:mod:`~simval.scenario.sweep` (a ``sweep`` block expanded into scenario variants).
NIRCam facts (detectors, filters, MIRAGE's readout/subarray/filter tables, frame timing) come
from :mod:`simval.instruments.nircam`.
"""

from simval.scenario.errors import Problem, ScenarioError
from simval.scenario.loader import (
    load_scenario,
    normalised,
    scenario_hash,
    scenario_json_schema,
    validate_scenario,
)
from simval.scenario.schema import FilterSpec, Scenario

__all__ = [
    "FilterSpec",
    "Problem",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "normalised",
    "scenario_hash",
    "scenario_json_schema",
    "validate_scenario",
]
