"""Load a scenario YAML file: syntax errors and invalid fields become :class:`ScenarioError`.

YAML is parsed once into both Python data and the node tree, so every problem can name the
file *and line* of the offending key. Duplicate keys (which PyYAML silently lets the last
one win) and integers with leading zeros (read as octal by YAML 1.1: ``program: 01345`` would
be 741) are errors. Relative paths inside a scenario start at the scenario file's
directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from simval.scenario.coronagraphy import coron_defaults
from simval.scenario.errors import Problem, ScenarioError, format_path, from_validation_error
from simval.scenario.schema import Scenario

#: Bumped when the normalised content hashed by :func:`scenario_hash` changes meaning.
HASH_VERSION = 1


def _parse(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(x for x in (exc.context, exc.problem) if x) or "invalid YAML"
        col = f", column {mark.column + 1}" if mark is not None else ""
        raise ScenarioError(source, [Problem("", yaml_text_at(text, line), f"YAML syntax "
                                             f"error{col}: {what}", "valid YAML", line)]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [Problem("", None, f"YAML error: {exc}", "valid YAML")]) \
            from None
    finally:
        loader.dispose()
    return data, node


def yaml_text_at(text: str, line: int | None) -> str:
    if not line:
        return ""
    lines = text.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


_OCTAL = re.compile(r"^[-+]?0[0-9_]+$")


def _node_problems(node: yaml.Node | None, path: list[str | int], out: list[Problem]) -> None:
    """Duplicate keys, and integers with a leading zero (YAML 1.1 reads ``01345`` as octal)."""
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":int") \
            and _OCTAL.match(node.value):
        out.append(Problem(format_path(path), node.value, "a leading zero makes YAML read "
                           "this as an octal number", "the number without leading zeros "
                           "(e.g. 1345 for program 01345)", node.start_mark.line + 1))
    elif isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else None
            if k is not None and k in seen:
                out.append(Problem(format_path([*path, k]), k, "key given twice (YAML keeps "
                                   "only the last)", "each key once", key.start_mark.line + 1))
            seen.add(k)
            _node_problems(value, [*path, k] if k is not None else path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_problems(item, [*path, i], out)


def _line_finder(node: yaml.Node | None):
    def line_of(parts: list[str | int]) -> int | None:
        cur = node
        line = cur.start_mark.line + 1 if cur is not None else None
        for p in parts:
            if isinstance(cur, yaml.MappingNode):
                hit = next(((k, v) for k, v in cur.value
                            if isinstance(k, yaml.ScalarNode) and k.value == p), None)
                if hit is None:
                    return line
                line, cur = hit[0].start_mark.line + 1, hit[1]
            elif isinstance(cur, yaml.SequenceNode) and isinstance(p, int) \
                    and p < len(cur.value):
                cur = cur.value[p]
                line = cur.start_mark.line + 1
            else:
                return line
        return line

    return line_of


def validate_scenario(data: Any, source: str = "<scenario>",
                      base_dir: str | os.PathLike | None = None,
                      _node: yaml.Node | None = None) -> Scenario:
    """Validate a mapping (as read from YAML) into a :class:`Scenario`.

    ``source`` names the input in error messages; ``base_dir`` is where relative paths
    start (default: the current directory). Raises :class:`ScenarioError`.
    """
    if not isinstance(data, Mapping):
        raise ScenarioError(source, [Problem("", data, "a scenario is a YAML mapping of "
                                             "keys to values", "name, seed, detectors, ...",
                                             1 if _node is not None else None)])
    data = coron_defaults(dict(data))
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    try:
        inst = data.get("instrument")
        context = {"base_dir": base,
                   "instrument": inst.strip().upper() if isinstance(inst, str) else "NIRCAM"}
        scenario = Scenario.model_validate(data, context=context)
    except ValidationError as exc:
        raise from_validation_error(exc, data, source, Scenario,
                                    _line_finder(_node) if _node is not None else None) from None
    scenario._source = source
    scenario._base_dir = base
    return scenario


def load_scenario(path: str | os.PathLike) -> Scenario:
    """Read and validate a scenario YAML file; raise :class:`ScenarioError` if invalid."""
    p = Path(path)
    source = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(source, [Problem("", str(p), "scenario file not found",
                                             "an existing YAML file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(source, [Problem("", str(p), f"cannot read: {exc}",
                                             "a readable UTF-8 YAML file")]) from None
    data, node = _parse(text, source)
    problems: list[Problem] = []
    _node_problems(node, [], problems)
    if problems:
        raise ScenarioError(source, problems)
    return validate_scenario(data, source, p.resolve().parent, _node=node)


def normalised(scenario: Scenario) -> dict[str, Any]:
    """The scenario's content as plain JSON data, defaults filled, names upper-cased."""
    return scenario.model_dump(mode="json")


def scenario_hash(scenario: Scenario) -> str:
    """Stable 16-hex-digit hash of the normalised content (and of the catalog file's bytes).

    Equal for scenarios that differ only in formatting, key order, comments, spelling of
    defaults or case of names; different when any value changes, including any pipeline
    parameter. The catalog file (and an extended-emission image) enter by content, not by
    their absolute paths.
    """
    content: dict[str, Any] = {"hash_version": HASH_VERSION, "scenario": normalised(scenario)}
    catalog = content["scenario"].get("catalog") or {}
    for key in ("file", "quiescent_file"):  # files enter by content, below
        if catalog.get(key) is not None:
            catalog[key] = "<content>"
    if scenario.catalog is not None and scenario.catalog.file is not None:
        data = scenario.resolve_path(scenario.catalog.file).read_bytes()
        content["catalog_sha256"] = hashlib.sha256(data).hexdigest()
    quiescent = getattr(scenario.catalog, "quiescent_file", None)
    if quiescent is not None:  # JAGUAR's second file
        data = scenario.resolve_path(quiescent).read_bytes()
        content["quiescent_sha256"] = hashlib.sha256(data).hexdigest()
    if scenario.extended_emission is not None:  # the image, by content too
        content["scenario"]["extended_emission"]["file"] = "<content>"
        data = scenario.resolve_path(scenario.extended_emission.file).read_bytes()
        content["extended_emission_sha256"] = hashlib.sha256(data).hexdigest()
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def scenario_json_schema() -> dict[str, Any]:
    """JSON schema of a scenario file (for ``simval scenario schema`` and editors)."""
    schema = Scenario.model_json_schema()
    schema["title"] = "simval scenario"
    return schema
