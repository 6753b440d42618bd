"""Validate ``pipeline:`` blocks against the installed jwst's own step parameter specs.

A scenario sets jwst parameters with jwst's names unchanged::

    pipeline:
      image3:                       # stage: detector1 | image2 | image3 | coron3
        tweakreg: {skip: true}      # step name (Pipeline.step_defs) -> parameter -> value
        skymatch: {skystat: median}
        in_memory: true             # a parameter of the pipeline itself (scalar value)

Step names come from ``Detector1Pipeline.step_defs`` etc.; each step's parameters and their
types from ``Step.load_spec_file()`` — the configobj spec strings stpipe itself validates
with (``float(min=0.0, max=1.0, default=1.0)``, ``option('local', 'global', ...)``).
Values are checked with configobj's ``Validator`` (what stpipe uses), plus strict types:
a boolean must be a YAML boolean and a number a YAML number, not a string.

Importing ``jwst.pipeline`` takes ~10 s, so the extracted specs are cached as JSON in
``$SIMVAL_CACHE_DIR`` (default: the user cache directory), keyed by the installed jwst and
stpipe versions and jwst's installed-file record; a new jwst rebuilds the cache.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from simval.atomic import write_text
from simval.scenario.errors import FieldError, Loc

#: Pipeline stages a scenario may configure, with jwst's pipeline class and command alias.
STAGES: dict[str, tuple[str, str]] = {
    "detector1": ("jwst.pipeline.calwebb_detector1.Detector1Pipeline", "calwebb_detector1"),
    "image2": ("jwst.pipeline.calwebb_image2.Image2Pipeline", "calwebb_image2"),
    "image3": ("jwst.pipeline.calwebb_image3.Image3Pipeline", "calwebb_image3"),
    "coron3": ("jwst.pipeline.calwebb_coron3.Coron3Pipeline", "calwebb_coron3"),
}
#: Parameters every stpipe step has; simval sets the file locations of every run itself.
RESERVED = frozenset({"output_dir", "output_file", "input_dir"})
CACHE_FORMAT = 3
ENV_CACHE_DIR = "SIMVAL_CACHE_DIR"


def _cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("simval"))


def _install_key() -> str:
    parts = [str(CACHE_FORMAT)]
    for dist in ("jwst", "stpipe"):
        d = importlib.metadata.distribution(dist)
        record = d.read_text("RECORD") or ""
        parts += [dist, d.version, hashlib.sha256(record.encode()).hexdigest()[:16]]
    return "-".join(parts)


def _extract() -> dict[str, Any]:
    """Step names and parameter specs of every stage, from the installed jwst."""
    import jwst
    from stpipe import Step

    base = set(Step.load_spec_file())
    stages: dict[str, Any] = {}
    for stage, (dotted, alias) in STAGES.items():
        module, _, name = dotted.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        own = {k: v for k, v in cls.load_spec_file().items()
               if isinstance(v, str) and k not in base}
        steps = {}
        for step, step_cls in cls.step_defs.items():
            spec = step_cls.load_spec_file()
            steps[step] = {
                "class": f"{step_cls.__module__}.{step_cls.__qualname__}",
                "params": {k: v for k, v in spec.items() if isinstance(v, str)},
            }
        stages[stage] = {"class": dotted, "alias": alias, "pipeline_params": own,
                         "steps": steps, "step_order": list(cls.step_defs)}
    return {"jwst": jwst.__version__, "stages": stages}


@lru_cache(maxsize=1)
def jwst_specs() -> dict[str, Any]:
    """``{"jwst": version, "stages": {stage: {"steps": {step: {"params": {name: spec}}}}}}``."""
    key = _install_key()
    path = _cache_dir() / "jwst-step-specs" / f"{key}.json"
    if path.exists():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass
    specs = _extract()
    try:
        write_text(path, json.dumps(specs, sort_keys=True, indent=1))
    except OSError:
        pass  # a read-only cache only costs time
    return specs


# --- checking one value -----------------------------------------------------------------

_CHECK = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*$", re.S)
_NUMERIC = {"integer", "float"}
_NUMERIC_LISTS = {"int_list", "float_list"}


def _validator():
    from configobj.validate import Validator, VdtTypeError

    def string_like(value, *args, **kwargs):
        if not isinstance(value, str):
            raise VdtTypeError(value)
        return value

    def refuse(value, *args, **kwargs):
        raise VdtTypeError(value)  # a datamodel cannot be written in YAML

    v = Validator()
    for name in ("input_file", "output_file", "is_string_or_datamodel"):
        v.functions[name] = string_like
    v.functions["is_datamodel"] = refuse
    return v


@lru_cache(maxsize=1)
def _shared_validator():
    return _validator()


def _none_allowed(spec: str, function: str, args: str) -> bool:
    try:
        if _shared_validator().get_default_value(spec) is None:
            return True
    except KeyError:
        pass
    if function == "option":
        head = re.sub(r"default\s*=.*$", "", args, flags=re.S)
        return re.search(r"(^|,)\s*None\s*(,|$)", head) is not None
    return False


def check_value(spec: str, value: Any, base_dir: Path | None = None) -> tuple[Any, str | None]:
    """``(normalised value, None)`` if ``value`` satisfies the stpipe ``spec``, else
    ``(None, reason)``."""
    from configobj.validate import ValidateError

    m = _CHECK.match(spec)
    function, args = (m.group(1), m.group(2) or "") if m else ("", "")
    if value is None:
        return (None, None) if _none_allowed(spec, function, args) else (
            None, "null is not allowed for this parameter")
    if function == "boolean" and not isinstance(value, bool):
        return None, "wrong type: expected a YAML boolean (true/false)"
    if function in _NUMERIC and (isinstance(value, bool) or not isinstance(value, int | float)):
        return None, f"wrong type: expected a YAML number ({function})"
    if function in _NUMERIC_LISTS and (not isinstance(value, list) or any(
            isinstance(x, bool) or not isinstance(x, int | float) for x in value)):
        return None, f"wrong type: expected a YAML list of numbers ({function})"
    if function == "option" and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # configobj options are text: option(4, 8) holds '4' and '8'
    try:
        checked = _shared_validator().check(spec, value)
    except ValidateError as exc:
        return None, str(exc).rstrip(".")
    if function in ("is_string_or_datamodel", "input_file") and isinstance(checked, str):
        path = Path(checked).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.exists():
            return None, f"file {str(path)!r} does not exist"
    return checked, None


def validate_pipeline(value: Any, base_dir: Path | None = None) -> dict[str, Any]:
    """Check a ``pipeline:`` mapping; return it with values normalised by their specs.

    Raises :class:`FieldError` listing every unknown stage, step or parameter and every bad
    value, each with what is allowed.
    """
    specs = jwst_specs()
    stages = specs["stages"]
    version = specs["jwst"]
    problems: list[tuple[Loc, Any, str, str | None]] = []
    out: dict[str, Any] = {}
    if not isinstance(value, dict):
        raise FieldError("must be a mapping stage -> step -> parameter -> value",
                         allowed=", ".join(stages))
    for stage, block in value.items():
        if stage not in stages:
            problems.append(((stage,), stage, "unknown pipeline stage",
                             ", ".join(stages)))
            continue
        info = stages[stage]
        label = f"{info['alias']} ({info['class'].rpartition('.')[2]}, jwst {version})"
        if not isinstance(block, dict):
            problems.append(((stage,), block, f"{stage} must map step names to parameters",
                             "step names: " + ", ".join(info["steps"])))
            continue
        out_stage: dict[str, Any] = {}
        for key, params in block.items():
            if key in info["steps"]:
                out_stage[key] = _check_step(stage, key, params, info["steps"][key],
                                             base_dir, problems)
            elif key in info["pipeline_params"]:
                checked, reason = check_value(info["pipeline_params"][key], params, base_dir)
                if reason:
                    problems.append(((stage, key), params, reason,
                                     info["pipeline_params"][key].strip()))
                else:
                    out_stage[key] = checked
            else:
                allowed = "steps: " + ", ".join(info["step_order"])
                if info["pipeline_params"]:
                    allowed += "; pipeline parameters: " + ", ".join(info["pipeline_params"])
                hint = _did_you_mean(key, [*info["steps"], *info["pipeline_params"]])
                problems.append(((stage, key), key, f"unknown step of {label}{hint}", allowed))
        out[stage] = out_stage
    if problems:
        raise FieldError("invalid pipeline parameters", items=problems)
    return out


def _check_step(stage: str, step: str, params: Any, info: dict[str, Any],
                base_dir: Path | None, problems: list) -> dict[str, Any]:
    names = [n for n in info["params"] if n not in RESERVED]
    if not isinstance(params, dict):
        problems.append(((stage, step), params,
                         f"parameters of step {step} must be a mapping name -> value",
                         ", ".join(names)))
        return {}
    out: dict[str, Any] = {}
    for name, val in params.items():
        if name in RESERVED:
            problems.append(((stage, step, name), val,
                             "set by simval for every run (files go to the run directory)",
                             ", ".join(names)))
            continue
        spec = info["params"].get(name)
        if spec is None:
            problems.append(((stage, step, name), name,
                             f"unknown parameter of step {step} ({info['class']})"
                             + _did_you_mean(name, names), ", ".join(names)))
            continue
        checked, reason = check_value(spec, val, base_dir)
        if reason:
            problems.append(((stage, step, name), val, reason, spec.strip()))
        else:
            out[name] = checked
    return out


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(str(word), choices, n=2, cutoff=0.75)
    return f" - did you mean {' or '.join(close)}?" if close else ""


def default_value(stage: str, step: str, name: str) -> Any:
    """jwst's default of one step parameter (e.g. ``image3, skymatch, skystat`` -> ``mode``)."""
    spec = jwst_specs()["stages"][stage]["steps"][step]["params"][name]
    return _shared_validator().get_default_value(spec)
