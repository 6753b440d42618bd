"""What differs between two runs' ``manifest.json``: CRDS contexts, reference files, step
parameters, software versions, scenario, background recipe and simulation reuse.

Each difference is a row ``(key, A value, B value)``; a value missing from one run is
``None`` (for step parameters: the pipeline default). Reference files are compared per
exposure or product (the keys of ``reference_files``), per pipeline (``detector1``,
``image2``, ``image3``) and per reference type; the CRDS context and version each
pipeline recorded are reported with the contexts, not as reference types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ProvenanceDiff", "RefFileChange", "provenance_diff"]

#: Keys of a pipeline's reference-file record that are not reference types.
_NOT_REFTYPES = ("crds_context", "crds_version")


@dataclass(frozen=True)
class RefFileChange:
    """One reference file that differs: ``name`` is the exposure or product."""

    name: str
    pipeline: str
    reftype: str
    a: str | None
    b: str | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "pipeline": self.pipeline, "reftype": self.reftype,
                "a": self.a, "b": self.b}


@dataclass
class ProvenanceDiff:
    """Differences between two manifests (empty lists/dicts: nothing differs).

    Attributes
    ----------
    crds : dict
        ``context``, ``kind``, ``path`` of the run's CRDS cache, and the distinct
        contexts the pipelines recorded (``pipeline_contexts``) -> {"a", "b"}.
    versions : dict
        package -> {"a", "b"} for every package whose version differs.
    parameters : dict
        ``pipeline.step.parameter`` -> {"a", "b"} (None = not set, the pipeline default).
    reference_files : list of RefFileChange
    only_in_a, only_in_b : list of str
        Exposures/products with reference files in one run only.
    other : dict
        scenario name/hash, background recipe, status -> {"a", "b"}.
    simulation : dict
        Each run's ``*_reused_from`` records, and ``same_simulation``: True if B adopted
        A's simulated exposures (or both adopted the same run's), None if unknown.
    notes : list of str
    """

    crds: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference_files: list[RefFileChange] = field(default_factory=list)
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)
    other: dict[str, dict[str, Any]] = field(default_factory=dict)
    simulation: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def reftypes_changed(self) -> list[str]:
        """Reference types with at least one different file, sorted."""
        return sorted({c.reftype for c in self.reference_files})

    def reftype_summary(self) -> list[dict[str, Any]]:
        """Per reference type and (A file, B file): the pipelines and how many
        exposures/products use that change."""
        groups: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}
        for c in self.reference_files:
            g = groups.setdefault((c.reftype, c.a, c.b), {
                "reftype": c.reftype, "a": c.a, "b": c.b, "pipelines": set(), "names": []})
            g["pipelines"].add(c.pipeline)
            if c.name not in g["names"]:
                g["names"].append(c.name)
        return [{**g, "pipelines": sorted(g["pipelines"]), "n": len(g["names"])}
                for g in groups.values()]

    @property
    def identical(self) -> bool:
        return not (self.crds or self.versions or self.parameters or self.reference_files
                    or self.only_in_a or self.only_in_b or self.other)

    def to_json(self) -> dict[str, Any]:
        return {
            "identical": self.identical, "crds": self.crds, "versions": self.versions,
            "parameters": self.parameters, "reftypes_changed": self.reftypes_changed,
            "reftype_summary": self.reftype_summary(),
            "reference_files": [c.to_json() for c in self.reference_files],
            "only_in_a": self.only_in_a, "only_in_b": self.only_in_b, "other": self.other,
            "simulation": self.simulation, "notes": self.notes,
        }


def _pair(a: Any, b: Any) -> dict[str, Any]:
    return {"a": a, "b": b}


def _flatten(params: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(params, Mapping):
        for k, v in params.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, Mapping) and v:
                out.update(_flatten(v, key))
            elif isinstance(v, Mapping):
                continue  # an empty block: defaults
            else:
                out[key] = v
    return out


def _diff_maps(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: _pair(a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)}


def _contexts(refs: Mapping[str, Any]) -> list[str]:
    out = set()
    for per_stage in refs.values():
        for files in (per_stage or {}).values():
            if isinstance(files, Mapping) and files.get("crds_context"):
                out.add(str(files["crds_context"]))
    return sorted(out)


def _same_simulation(ma: Mapping[str, Any], mb: Mapping[str, Any], path_a: Path | None,
                     path_b: Path | None) -> bool | None:
    def source(m: Mapping[str, Any]) -> Path | None:
        rec = m.get("simulation_reused_from")
        if isinstance(rec, Mapping) and rec.get("run") and rec.get("reused"):
            return Path(str(rec["run"])).resolve()
        return None

    ra, rb = source(ma), source(mb)
    pa = path_a.resolve() if path_a else None
    pb = path_b.resolve() if path_b else None
    if pa is not None and pa == pb:
        return True
    if (rb is not None and rb == pa) or (ra is not None and ra == pb):
        return True
    if ra is not None and ra == rb:
        return True
    return None


def provenance_diff(manifest_a: Mapping[str, Any] | None,
                    manifest_b: Mapping[str, Any] | None, *, path_a: Path | None = None,
                    path_b: Path | None = None) -> ProvenanceDiff:
    """Differences between two runs' manifests (see the module docstring).

    ``path_a``/``path_b`` (the run directories) let it tell whether B reused A's
    simulation. A missing manifest gives an empty diff with a note.
    """
    out = ProvenanceDiff()
    if not manifest_a or not manifest_b:
        which = [n for n, m in (("A", manifest_a), ("B", manifest_b)) if not m]
        out.notes.append(f"no manifest.json in run {' and '.join(which)}: provenance not "
                         "compared")
        return out
    ma, mb = manifest_a, manifest_b
    ca, cb = ma.get("crds") or {}, mb.get("crds") or {}
    out.crds = _diff_maps({k: ca.get(k) for k in ("context", "kind", "path")},
                          {k: cb.get(k) for k in ("context", "kind", "path")})
    refs_a, refs_b = ma.get("reference_files") or {}, mb.get("reference_files") or {}
    pc_a, pc_b = _contexts(refs_a), _contexts(refs_b)
    if pc_a != pc_b:
        out.crds["pipeline_contexts"] = _pair(pc_a, pc_b)
    out.versions = _diff_maps(calibration_versions(ma), calibration_versions(mb))
    out.parameters = _diff_maps(_flatten(ma.get("pipeline_parameters") or {}),
                                _flatten(mb.get("pipeline_parameters") or {}))
    sa, sb = ma.get("scenario") or {}, mb.get("scenario") or {}
    out.other = _diff_maps(
        {"scenario name": sa.get("name"), "scenario hash": sa.get("hash"),
         "background recipe": ma.get("background_recipe"), "status": ma.get("status")},
        {"scenario name": sb.get("name"), "scenario hash": sb.get("hash"),
         "background recipe": mb.get("background_recipe"), "status": mb.get("status")})
    out.only_in_a = sorted(set(refs_a) - set(refs_b))
    out.only_in_b = sorted(set(refs_b) - set(refs_a))
    for name in [n for n in refs_a if n in refs_b]:
        sa_, sb_ = refs_a.get(name) or {}, refs_b.get(name) or {}
        for pipeline in list(dict.fromkeys([*sa_, *sb_])):
            fa, fb = sa_.get(pipeline) or {}, sb_.get(pipeline) or {}
            for reftype in sorted(set(fa) | set(fb)):
                if reftype in _NOT_REFTYPES:
                    continue
                va, vb = fa.get(reftype), fb.get(reftype)
                if va != vb:
                    out.reference_files.append(RefFileChange(
                        name, pipeline, reftype, None if va is None else str(va),
                        None if vb is None else str(vb)))
    out.simulation = {
        "a": {k: v for k, v in ma.items() if k.endswith("_reused_from")},
        "b": {k: v for k, v in mb.items() if k.endswith("_reused_from")},
        "same_simulation": _same_simulation(ma, mb, path_a, path_b),
    }
    return out


def calibration_versions(manifest: dict[str, Any]) -> dict[str, Any]:
    """The software a run calibrated with: the manifest's ``versions``, overridden by those
    of the pipeline environment when the calibration ran in one (``environment``)."""
    versions = dict(manifest.get("versions") or {})
    env = manifest.get("environment")
    if isinstance(env, dict):
        versions.update(env.get("versions") or {})
        versions["environment"] = env.get("name")
    return versions
