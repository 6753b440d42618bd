"""Derived CRDS contexts: a base context with named references changed, nothing else.

Context comparisons need a controlled difference: ``flat`` scaled by 1.02 should divide
every calibrated surface brightness by 1.02; ``photom`` scaled by 1.05 should multiply it
by 1.05; ``distortion`` shifted by N mas should move every source by N mas. Each changed
reference is a new file (its name carries the change), and the derived context differs
from its base only in the rmaps of those reference types.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from simval.kit import crds_cache
from simval.kit.changes import KNOBS, Changes
from simval.kit.layout import KitLayout
from simval.kit.registry import Registry, locked
from simval.kit.spec import content_key

__all__ = ["KNOBS", "Changes", "derive_context"]


def _apply_in_turn(changes: Changes, fields: list[str], src: Path, dst: Path) -> None:
    """Apply the knobs ``fields`` (one reference type) to ``src`` one after the other, the
    last one writing ``dst``; intermediate files are removed."""
    current = src
    steps: list[Path] = []
    for i, field_name in enumerate(fields):
        out = dst if i == len(fields) - 1 else dst.with_name(f"{dst.stem}.step{i}{dst.suffix}")
        KNOBS[field_name].apply(current, out, getattr(changes, field_name))
        steps.append(out)
        current = out
    for path in steps[:-1]:
        path.unlink(missing_ok=True)


def derive_context(layout: KitLayout, base: str, changes: Changes) -> str:
    """Write (or reuse) a context equal to ``base`` except for ``changes``; return its name."""
    if not changes.reftypes:
        raise ValueError("a derived context needs at least one change ("
                         + ", ".join(KNOBS) + ")")
    with locked(layout):
        reg = Registry.load(layout)
        if base not in reg.contexts:
            raise ValueError(f"unknown base context {base!r} in kit {layout.root}; "
                             f"known: {', '.join(sorted(reg.contexts)) or 'none'}")
        wanted = json.loads(json.dumps(asdict(changes)))
        for name, ctx in reg.contexts.items():
            if ctx.get("base") == base and ctx.get("changes") == wanted:
                if not crds_cache.missing_references(layout, name):
                    return name
        entries = reg.contexts[base]["entries"]
        replacements: dict[str, str] = {}
        new_entries = {k: dict(v) for k, v in entries.items()}
        by_type: dict[str, list[str]] = {}
        for field_name in changes.active():
            by_type.setdefault(KNOBS[field_name].reftype, []).append(field_name)
        for reftype, fields in by_type.items():
            if not entries.get(reftype):
                raise ValueError(f"{fields[0]}: base context {base} has no {reftype} "
                                 "reference to change")
            for match, filename in entries[reftype].items():
                src = layout.references / filename
                stem, ext = filename.rsplit(".", 1)
                key = content_key(filename, asdict(changes), reftype)
                dst = layout.references / f"{stem}_derived{key}.{ext}"
                _apply_in_turn(changes, fields, src, dst)
                replacements[filename] = dst.name
                new_entries[reftype][match] = dst.name
                reg.record_job(layout, f"derived/{dst.name}", key, [dst])
        name = crds_cache.derive_context(layout, base, replacements,
                                         f"simval derived from {base}: {changes.label()}")
        reg.contexts[name] = {"entries": new_entries, "base": base, "changes": wanted,
                              "label": changes.label()}
        reg.save(layout)
        return name
