"""One exception for every invalid scenario, with the file, line, dotted path, value and rule.

Validators inside the schema raise :class:`FieldError` (a ``ValueError``, so pydantic
collects it); :func:`from_validation_error` turns pydantic's ``ValidationError`` into a
:class:`ScenarioError` whose message names, for every problem::

    <file>:<line>: <dotted.path> = <bad value>: <what is wrong>. Allowed: <what is allowed>

Pydantic's own error text never reaches the user unconverted.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: Marker for "this key is absent from the YAML".
MISSING = object()

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One reason a scenario is invalid.

    path : dotted path of the field (``readout.ngroups``, ``filters[1].name``).
    value : the offending value as written, or :data:`MISSING`.
    message : what is wrong with it.
    allowed : what would be accepted (values, range, type or allowed keys).
    line : 1-based line in the YAML file, when known.
    """

    path: str
    value: Any
    message: str
    allowed: str | None = None
    line: int | None = None

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        shown = "(missing)" if self.value is MISSING else _short_repr(self.value)
        text = f"{where}: {self.path or '(top level)'} = {shown}: {self.message}"
        if self.allowed:
            text += f". Allowed: {self.allowed}"
        return text


class ScenarioError(ValueError):
    """A scenario file or mapping is invalid; the message lists every problem found.

    Attributes
    ----------
    source : the YAML file (or a label for an in-memory mapping).
    problems : the individual :class:`Problem` s, in the order they were found.
    """

    def __init__(self, source: str, problems: Sequence[Problem]):
        self.source = str(source)
        self.problems = list(problems)
        n = len(self.problems)
        head = f"invalid scenario {self.source} ({n} problem{'s' if n != 1 else ''}):"
        super().__init__("\n".join([head, *("  " + p.render(self.source)
                                            for p in self.problems)]))


class FieldError(ValueError):
    """Raised by schema validators; carries paths relative to the validated field.

    ``items`` holds ``(subpath, value, message, allowed)`` tuples. ``subpath`` is appended to
    the location pydantic reports for the validator, unless ``absolute`` is true, in which
    case it is the full path from the top of the scenario.
    """

    def __init__(self, message: str, *, value: Any = MISSING, allowed: str | None = None,
                 subpath: Loc = (), absolute: bool = False,
                 items: Iterable[tuple[Loc, Any, str, str | None]] | None = None):
        self.items = list(items) if items is not None else [(tuple(subpath), value, message,
                                                             allowed)]
        self.absolute = absolute
        super().__init__("; ".join(i[2] for i in self.items))


def format_path(parts: Sequence[str | int]) -> str:
    """``("filters", 1, "name")`` -> ``filters[1].name``."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def _short_repr(value: Any, limit: int = 100) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def data_path(loc: Loc, data: Any, keep_last: bool) -> list[str | int]:
    """The part of pydantic's ``loc`` that addresses the input data.

    Pydantic inserts union tags and validator names (``'function-after[...]'``,
    ``'[key]'``) into locations; they are dropped by walking ``data`` along ``loc``. The last
    element is kept when it does not exist in the data only if ``keep_last`` (a missing key).
    """
    parts: list[str | int] = []
    cur = data
    for i, p in enumerate(loc):
        if isinstance(cur, dict) and p in cur:
            parts.append(p)
            cur = cur[p]
        elif isinstance(cur, list) and isinstance(p, int) and 0 <= p < len(cur):
            parts.append(p)
            cur = cur[p]
        elif i == len(loc) - 1 and keep_last and isinstance(p, str) and isinstance(cur, dict):
            parts.append(p)
    return parts


def value_at(data: Any, parts: Sequence[str | int]) -> Any:
    cur = data
    for p in parts:
        try:
            cur = cur[p]
        except (KeyError, IndexError, TypeError):
            return MISSING
    return cur


# --- what is allowed: read from the schema itself --------------------------------------

def _models_in(annotation: Any) -> list[type]:
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type] = []
    for arg in typing.get_args(annotation):
        out.extend(_models_in(arg))
    return out


def _container_item(annotation: Any) -> Any:
    """Item/value annotation of ``list[X]`` / ``dict[K, X]`` (searching through unions)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple, dict) and args:
        return args[-1]
    for arg in args:
        item = _container_item(arg)
        if item is not None:
            return item
    return None


def describe_field(root: type, parts: Sequence[str | int]) -> tuple[Any, list[type]]:
    """``(FieldInfo or None, models at the parent level)`` for a path in the schema."""
    annotation: Any = root
    info = None
    parents: list[type] = [root]
    for p in parts:
        if isinstance(p, int):
            annotation = _container_item(annotation)
            continue
        models = _models_in(annotation)
        parents = models
        hit = next((m for m in models if p in m.model_fields), None)
        if hit is None:
            item = _container_item(annotation)
            if item is None:
                return None, parents
            annotation, info = item, None
            continue
        info = hit.model_fields[p]
        annotation = info.annotation
    return info, parents


def allowed_keys(models: Sequence[type]) -> str:
    names: list[str] = []
    for m in models:
        names.extend(n for n in m.model_fields if n not in names)
    return ", ".join(names)


_CTX_RULES = {
    "greater_than": "> {gt}", "greater_than_equal": ">= {ge}", "less_than": "< {lt}",
    "less_than_equal": "<= {le}", "literal_error": "{expected}",
    "too_short": "at least {min_length} item(s)", "too_long": "at most {max_length} item(s)",
    "string_pattern_mismatch": "text matching {pattern}",
}


def from_validation_error(err: Any, data: Any, source: str, root: type,
                          line_of=None) -> ScenarioError:
    """Convert a pydantic ``ValidationError`` raised while validating ``data``."""
    problems: list[Problem] = []
    for e in err.errors():
        ctx = e.get("ctx") or {}
        inner = ctx.get("error")
        loc = tuple(e.get("loc", ()))
        if isinstance(inner, FieldError):
            base = [] if inner.absolute else data_path(loc, data, keep_last=False)
            for sub, value, message, allowed in inner.items:
                # drop sub-keys the user did not write (``name`` of a filter given as text)
                parts = data_path((*base, *sub), data, keep_last=True)
                shown = value if value is not MISSING else value_at(data, parts)
                problems.append(Problem(format_path(parts), shown, message, allowed,
                                        line_of(parts) if line_of else None))
            continue
        kind = e.get("type", "")
        parts = data_path(loc, data, keep_last=kind in ("missing", "extra_forbidden"))
        value = MISSING if kind == "missing" else value_at(data, parts)
        info, parents = describe_field(root, parts)
        if kind == "extra_forbidden":
            message, allowed = "unknown key", allowed_keys(parents)
        elif kind == "missing":
            message = "required key is missing"
            allowed = info.description if info is not None and info.description else None
        else:
            message = _plain(e.get("msg", "invalid value"))
            rule = _CTX_RULES.get(kind)
            allowed = rule.format(**ctx) if rule else None
            if info is not None and info.description:
                allowed = f"{allowed} ({info.description})" if allowed else info.description
        problems.append(Problem(format_path(parts), value, message, allowed,
                                line_of(parts) if line_of else None))
    return ScenarioError(source, problems)


def _plain(msg: str) -> str:
    """Pydantic messages start with a capital and may prefix 'Value error, '."""
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg[:1].lower() + msg[1:] if msg else msg
