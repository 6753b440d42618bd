"""Shared pieces of the scenario models: strict configuration, paths, JSON-schema hooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo

from simval.scenario.errors import FieldError

#: Every scenario model: unknown keys refused, immutable, no type coercion (a YAML string is
#: not a number), no NaN/inf.
CFG = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class StrictModel(BaseModel):
    """Base of every scenario (sub-)model; see :data:`CFG`."""

    model_config = CFG


def or_shorthand(short: dict[str, Any]):
    """JSON-schema hook: the value may also be written in a short form (``short``)."""
    def hook(schema: dict[str, Any], *args: Any) -> None:
        full = dict(schema)
        description = full.pop("description", None)
        schema.clear()
        schema["anyOf"] = [short, full]
        if description:
            schema["description"] = description
    return hook


def base_dir(info: ValidationInfo) -> Path | None:
    """Directory relative paths start from (validation context ``base_dir``), if given."""
    ctx = info.context or {}
    base = ctx.get("base_dir")
    return Path(base) if base is not None else None


def instrument_of(info: ValidationInfo) -> str:
    """The scenario's instrument (validation context ``instrument``): ``NIRCAM`` or ``MIRI``;
    ``NIRCAM`` when not given."""
    ctx = info.context or {}
    return str(ctx.get("instrument") or "NIRCAM").strip().upper()


def resolve(path: str, base: Path | None) -> Path:
    """``path`` (``~`` expanded) made absolute against ``base`` when relative."""
    p = Path(path).expanduser()
    return p if p.is_absolute() or base is None else base / p


def two_numbers(v: list[float], names: str, unit: str) -> list[float]:
    """``v`` if it holds two numbers, else a FieldError saying ``must be [names]``."""
    if len(v) != 2:
        raise FieldError(f"must be [{names}]", allowed=f"two numbers, {unit}")
    return v
