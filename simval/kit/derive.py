"""Derived CRDS contexts: a base context with named references changed, nothing else.

Context comparisons need a controlled difference: ``flat`` scaled by 1.02 should divide
every calibrated surface brightness by 1.02; ``photom`` scaled by 1.05 should multiply it
by 1.05; ``distortion`` shifted by N mas should move every source by N mas. Each changed
reference is a new file (its name carries the change), and the derived context differs
from its base only in the rmaps of those reference types.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from simval.atomic import save_model
from simval.kit import crds_cache
from simval.kit.layout import KitLayout
from simval.kit.registry import Registry, locked
from simval.kit.spec import content_key


@dataclass(frozen=True)
class Changes:
    """What a derived context changes with respect to its base.

    flat_scale : multiply the FLAT data (calibrated fluxes are divided by it).
    photom_scale : multiply PHOTMJSR (calibrated fluxes are multiplied by it).
    distortion_shift_mas : (dV2, dV3) added to the distortion's output, mas.
    """

    flat_scale: float = 1.0
    photom_scale: float = 1.0
    distortion_shift_mas: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        for name in ("flat_scale", "photom_scale"):
            value = getattr(self, name)
            if not (value > 0 and value == value and value != float("inf")):
                raise ValueError(f"{name} must be a positive finite number, got {value}")
        object.__setattr__(self, "distortion_shift_mas",
                           tuple(float(x) for x in self.distortion_shift_mas))

    @property
    def reftypes(self) -> list[str]:
        out = []
        if self.flat_scale != 1.0:
            out.append("flat")
        if self.photom_scale != 1.0:
            out.append("photom")
        if any(self.distortion_shift_mas):
            out.append("distortion")
        return out

    def label(self) -> str:
        parts = []
        if self.flat_scale != 1.0:
            parts.append(f"flat x{self.flat_scale:g}")
        if self.photom_scale != 1.0:
            parts.append(f"photom x{self.photom_scale:g}")
        if any(self.distortion_shift_mas):
            dv2, dv3 = self.distortion_shift_mas
            parts.append(f"distortion shifted by ({dv2:g}, {dv3:g}) mas in (V2, V3)")
        return ", ".join(parts)


def _scaled_flat(src: Path, dst: Path, scale: float) -> None:
    from stdatamodels.jwst.datamodels import FlatModel

    with FlatModel(str(src)) as model:
        model.data = (model.data * scale).astype(model.data.dtype)
        model.meta.description = f"{model.meta.description} (x{scale:g})"[:200]
        model.add_history_entry(f"simval derived: data x{scale:g} of {src.name}")
        save_model(model, dst)


def _scaled_photom(src: Path, dst: Path, scale: float) -> None:
    from stdatamodels.jwst.datamodels import open as dm_open

    with dm_open(str(src)) as model:
        table = model.phot_table.copy()
        table["photmjsr"] = table["photmjsr"] * scale
        model.phot_table = table
        model.add_history_entry(f"simval derived: PHOTMJSR x{scale:g} of {src.name}")
        save_model(model, dst)


def _shifted_distortion(src: Path, dst: Path, shift_mas: tuple[float, float]) -> None:
    from astropy.modeling.models import Shift
    from stdatamodels.jwst.datamodels import DistortionModel

    dv2, dv3 = (s / 1000.0 for s in shift_mas)  # arcsec: the model's V2/V3 output unit
    with DistortionModel(str(src)) as model:
        model.model = model.model | (Shift(dv2) & Shift(dv3))
        model.add_history_entry(f"simval derived: V2/V3 shifted by "
                                f"({shift_mas[0]:g}, {shift_mas[1]:g}) mas")
        save_model(model, dst)


def derive_context(layout: KitLayout, base: str, changes: Changes) -> str:
    """Write (or reuse) a context equal to ``base`` except for ``changes``; return its name."""
    if not changes.reftypes:
        raise ValueError("a derived context needs at least one change "
                         "(flat scale, photom scale or distortion shift)")
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
        for reftype in changes.reftypes:
            for match, filename in entries.get(reftype, {}).items():
                src = layout.references / filename
                stem, ext = filename.rsplit(".", 1)
                key = content_key(filename, asdict(changes), reftype)
                dst = layout.references / f"{stem}_derived{key}.{ext}"
                if reftype == "flat":
                    _scaled_flat(src, dst, changes.flat_scale)
                elif reftype == "photom":
                    _scaled_photom(src, dst, changes.photom_scale)
                else:
                    _shifted_distortion(src, dst, changes.distortion_shift_mas)
                replacements[filename] = dst.name
                new_entries[reftype][match] = dst.name
                reg.record_job(layout, f"derived/{dst.name}", key, [dst])
        name = crds_cache.derive_context(layout, base, replacements,
                                         f"simval derived from {base}: {changes.label()}")
        reg.contexts[name] = {"entries": new_entries, "base": base, "changes": wanted,
                              "label": changes.label()}
        reg.save(layout)
        return name
