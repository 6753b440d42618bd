"""CRDS rules (mappings) for the kit's NIRCam references: selection keys, names and text.

A context is three levels of CRDS mapping files::

    jwst_NNNN.pmap  ->  jwst_nircam_NNNN.imap  ->  jwst_nircam_<reftype>_NNNN.rmap

This module only builds their text (without the sha1sum, which
:mod:`simval.kit.crds_cache` has CRDS compute) and knows which reference types the
pipelines ask for. It needs no environment and touches no file.

Selection keys (:data:`PARKEYS`) are the ones CRDS's own type specs define for NIRCam
(``crds/jwst/specs/nircam_<reftype>.*``, read by ``crds.core.reftypes``), restricted to
keywords the kit's references carry, then ``UseAfter`` on the observation date and time.
A match value may be a literal (``'NRCB1'``), an or-pattern (``'F115W|F150W'``) or ``'N/A'``
(matches anything with less weight than a literal, so a subarray-specific reference beats a
``'N/A'`` full-frame one for the same detector).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from simval.kit import refmeta

OBSERVATORY = "jwst"
#: The default instrument of every function here (the kit's first one).
INSTRUMENT = "nircam"
#: Instruments the kit builds references for (one kit per instrument).
INSTRUMENTS = ("nircam", "miri")

DETECTOR = "META.INSTRUMENT.DETECTOR"
CHANNEL = "META.INSTRUMENT.CHANNEL"
MODULE = "META.INSTRUMENT.MODULE"
FILTER = "META.INSTRUMENT.FILTER"
PUPIL = "META.INSTRUMENT.PUPIL"
CORONAGRAPH = "META.INSTRUMENT.CORONAGRAPH"
SUBARRAY = "META.SUBARRAY.NAME"
READPATT = "META.EXPOSURE.READPATT"
#: Dataset keys of the UseAfter level of every kit rmap.
USEAFTER_KEYS = ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME")

#: Match keys of each NIRCam reftype the kit delivers; each tuple is a subset of the CRDS
#: spec's Match keys for that type (tests check this against the installed crds).
PARKEYS: dict[str, tuple[str, ...]] = {
    "mask": (DETECTOR,),
    "saturation": (DETECTOR,),
    "superbias": (DETECTOR, SUBARRAY),
    "linearity": (DETECTOR,),
    "dark": (DETECTOR, SUBARRAY),
    "gain": (DETECTOR,),
    "readnoise": (DETECTOR,),
    "ipc": (DETECTOR,),
    "flat": (DETECTOR, FILTER, PUPIL),
    "photom": (DETECTOR,),
    "area": (DETECTOR,),
    "distortion": (DETECTOR, CHANNEL),
    "filteroffset": (CHANNEL, MODULE),
    "apcorr": (),
    "abvegaoffset": (),
    "psfmask": (FILTER, CORONAGRAPH, SUBARRAY),
}
#: Match keys of each MIRI imager reftype the kit delivers (subsets of CRDS's MIRI specs,
#: tested like :data:`PARKEYS`). DARK and RESET are 4-D and cut to the readout, so they are
#: selected by subarray and read pattern; the others are full frame.
MIRI_PARKEYS: dict[str, tuple[str, ...]] = {
    "mask": (DETECTOR,),
    "saturation": (DETECTOR,),
    "reset": (DETECTOR, SUBARRAY, READPATT),
    "linearity": (DETECTOR,),
    "rscd": (DETECTOR,),
    "dark": (DETECTOR, READPATT, SUBARRAY),
    "gain": (DETECTOR,),
    "readnoise": (DETECTOR,),
    "emicorr": (),
    "distortion": (DETECTOR,),
    "filteroffset": (DETECTOR,),
    "flat": (DETECTOR, FILTER),
    "photom": (DETECTOR,),
    "area": (DETECTOR,),
    "apcorr": (),
    "abvegaoffset": (),
}
#: Match keys per instrument.
PARKEYS_OF: dict[str, dict[str, tuple[str, ...]]] = {"nircam": PARKEYS, "miri": MIRI_PARKEYS}
#: Match keys of a delivered step-parameter reference (``pars-*``): one per NIRCam context.
PARS_PARKEYS: tuple[str, ...] = ()

#: jwst pipeline classes by short name, imported only when needed (jwst imports in ~6 s).
PIPELINES = {
    "detector1": "jwst.pipeline.Detector1Pipeline",
    "image2": "jwst.pipeline.Image2Pipeline",
    "image3": "jwst.pipeline.Image3Pipeline",
    "coron3": "jwst.pipeline.Coron3Pipeline",
}
DEFAULT_PIPELINES = ("detector1", "image2", "image3", "coron3")

_NUMBERED = re.compile(r"^jwst(?:_(?:nircam|miri)(?:_(?P<reftype>[a-z0-9-]+))?)?"
                       r"_(?P<num>\d{4,})\.(?P<ext>pmap|imap|rmap)$")


def _parkeys_of(instrument: str) -> dict[str, tuple[str, ...]]:
    try:
        return PARKEYS_OF[instrument.lower()]
    except KeyError:
        raise ValueError(f"the kit builds no references for instrument {instrument!r}; "
                         f"it knows {', '.join(INSTRUMENTS)}") from None


def parkeys_for(reftype: str, instrument: str = INSTRUMENT) -> tuple[str, ...]:
    """Match keys of ``reftype`` (``KeyError`` naming the known types if it has none)."""
    reftype = reftype.lower()
    known = _parkeys_of(instrument)
    if reftype in known:
        return known[reftype]
    if reftype.startswith("pars-"):
        return PARS_PARKEYS
    raise KeyError(f"no CRDS selection keys defined for {instrument} reftype {reftype!r}; "
                   f"known: {', '.join(sorted(known))} and pars-*")


def normalize_useafter(value: str) -> str:
    """Return a USEAFTER date as CRDS rmaps write it: ``'YYYY-MM-DD HH:MM:SS'``."""
    try:
        when = datetime.fromisoformat(str(value).strip().replace(" ", "T"))
    except ValueError as exc:
        raise ValueError(f"USEAFTER {value!r} is not an ISO date-time") from exc
    return when.strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class RefEntry:
    """One reference file and where an rmap selects it.

    Attributes
    ----------
    filename : reference file name (no directory) in the kit's references directory.
    match : parkey -> value for every Match key of the reftype (see :data:`PARKEYS`).
    useafter : USEAFTER date; the kit default precedes JWST's launch.
    """

    filename: str
    match: Mapping[str, str] = field(default_factory=dict)
    useafter: str = refmeta.USEAFTER

    def __post_init__(self) -> None:
        if not self.filename or "/" in self.filename or "\\" in self.filename:
            raise ValueError(f"RefEntry filename must be a bare file name, got {self.filename!r}")
        match = {str(k).upper(): str(v).strip().upper() for k, v in dict(self.match).items()}
        object.__setattr__(self, "match", MappingProxyType(match))
        object.__setattr__(self, "useafter", normalize_useafter(self.useafter))

    def __hash__(self) -> int:
        return hash((self.filename, tuple(sorted(self.match.items())), self.useafter))

    def match_tuple(self, reftype: str, instrument: str = INSTRUMENT) -> tuple[str, ...]:
        """Match values in the order of ``parkeys_for(reftype)``; ``ValueError`` if keys differ."""
        keys = parkeys_for(reftype, instrument)
        if set(self.match) != set(keys):
            raise ValueError(
                f"{reftype} reference {self.filename!r} is matched on {sorted(self.match)}, "
                f"but the {reftype} rmap selects on {list(keys)}")
        return tuple(self.match[k] for k in keys)


# ----------------------------------------------------------------------------- names

def pmap_name(number: int) -> str:
    """``jwst_NNNN.pmap``."""
    return f"{OBSERVATORY}_{int(number):04d}.pmap"


def imap_name(number: int, instrument: str = INSTRUMENT) -> str:
    """``jwst_<instrument>_NNNN.imap``."""
    return f"{OBSERVATORY}_{instrument.lower()}_{int(number):04d}.imap"


def rmap_name(reftype: str, number: int, instrument: str = INSTRUMENT) -> str:
    """``jwst_<instrument>_<reftype>_NNNN.rmap``."""
    return f"{OBSERVATORY}_{instrument.lower()}_{reftype.lower()}_{int(number):04d}.rmap"


def mapping_number(name: str) -> int | None:
    """Serial number of a kit mapping file name, or ``None`` if it is not one."""
    found = _NUMBERED.match(name)
    return int(found["num"]) if found else None


def context_name(context: int | str) -> str:
    """``3``, ``'3'``, ``'jwst_0003'`` or ``'jwst_0003.pmap'`` -> ``'jwst_0003.pmap'``."""
    text = str(context).strip()
    if text.isdigit():
        return pmap_name(int(text))
    if not text.endswith(".pmap"):
        text += ".pmap"
    if not (text.startswith(OBSERVATORY + "_") and mapping_number(text) is not None):
        raise ValueError(f"not a kit context name: {context!r} (expected jwst_NNNN.pmap)")
    return text


# ----------------------------------------------------------------------------- text

def _header_text(fields: Mapping[str, object]) -> str:
    lines = [f"    {key!r} : {value!r}," for key, value in sorted(fields.items())]
    return "header = {\n" + "\n".join(lines) + "\n}\n"


def _type_spec(reftype: str, instrument: str = INSTRUMENT) -> Mapping[str, object]:
    """CRDS's own type spec of a reftype (filetype, suffix, text_descr, file_ext).

    The instrument's spec if CRDS has one, else another instrument's (CRDS defines most
    ``pars-*`` types only for some instruments), else a minimal spec.
    """
    from crds.core import reftypes

    specs = reftypes.get_types_object(OBSERVATORY).unified_defs
    for name in (instrument.lower(), *sorted(specs)):
        if reftype in specs.get(name, {}):
            return specs[name][reftype]
    return {"filetype": reftype.upper(), "suffix": reftype, "text_descr": reftype,
            "file_ext": ".asdf" if reftype.startswith("pars-") else ".fits"}


def rmap_text(reftype: str, number: int, entries: Sequence[RefEntry],
              derived_from: str = "simval synthetic instrument kit",
              instrument: str = INSTRUMENT) -> str:
    """Text of an rmap selecting ``entries`` (sha1sum left for CRDS to fill).

    Raises ``ValueError`` for no entries, entries with the wrong keys, or two entries with
    the same match and USEAFTER.
    """
    reftype = reftype.lower()
    keys = parkeys_for(reftype, instrument)
    if not entries:
        raise ValueError(f"an rmap needs at least one reference; none given for {reftype}")
    table: dict[tuple[str, ...], dict[str, str]] = {}
    for entry in entries:
        dates = table.setdefault(entry.match_tuple(reftype, instrument), {})
        if entry.useafter in dates:
            raise ValueError(f"{reftype}: {entry.filename!r} and {dates[entry.useafter]!r} "
                             f"have the same match {dict(entry.match)} and USEAFTER")
        dates[entry.useafter] = entry.filename
    spec = _type_spec(reftype, instrument)
    header = {
        "classes": ("Match", "UseAfter"),
        "derived_from": derived_from,
        "file_ext": spec.get("file_ext", ".fits"),
        "filekind": reftype.upper(),
        "filetype": str(spec["filetype"]).upper(),
        "instrument": instrument.upper(),
        "mapping": "REFERENCE",
        "name": rmap_name(reftype, number, instrument),
        "observatory": OBSERVATORY.upper(),
        "parkey": (keys, USEAFTER_KEYS),
        "sha1sum": "0" * 40,
        "suffix": spec.get("suffix", reftype),
        "text_descr": spec.get("text_descr", reftype),
    }
    body = []
    for match in sorted(table):
        dates = "".join(f"        {d!r} : {f!r},\n" for d, f in sorted(table[match].items()))
        body.append(f"    {match!r} : UseAfter({{\n{dates}    }}),\n")
    return _header_text(header) + "\nselector = Match({\n" + "".join(body) + "})\n"


def imap_text(number: int, selections: Mapping[str, str], derived_from: str,
              description: str = "", instrument: str = INSTRUMENT) -> str:
    """Text of an instrument's imap: reftype -> rmap name or ``'N/A'``."""
    header = {
        "derived_from": derived_from,
        "instrument": instrument.upper(),
        "mapping": "INSTRUMENT",
        "name": imap_name(number, instrument),
        "observatory": OBSERVATORY.upper(),
        "parkey": ("REFTYPE",),
        "sha1sum": "0" * 40,
    }
    if description:
        header["description"] = description
    lines = "".join(f"    {k.lower()!r} : {v!r},\n" for k, v in sorted(selections.items()))
    return _header_text(header) + "\nselector = {\n" + lines + "}\n"


def pmap_text(number: int, imap: str, derived_from: str, description: str = "",
              instrument: str = INSTRUMENT) -> str:
    """Text of the pipeline mapping: the instrument (e.g. ``NIRCAM``) -> ``imap``."""
    header = {
        "derived_from": derived_from,
        "mapping": "PIPELINE",
        "name": pmap_name(number),
        "observatory": OBSERVATORY.upper(),
        "parkey": ("META.INSTRUMENT.NAME",),
        "sha1sum": "0" * 40,
    }
    if description:
        header["description"] = description
    return (_header_text(header)
            + f"\nselector = {{\n    {instrument.upper()!r} : {imap!r},\n}}\n")


# ----------------------------------------------------------------------------- reftypes

def _pipeline_class(name: str) -> type:
    import importlib

    try:
        dotted = PIPELINES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown pipeline {name!r}; known: {', '.join(PIPELINES)}") from None
    module, _, cls = dotted.rpartition(".")
    return getattr(importlib.import_module(module), cls)


def _pars_reftypes(pipeline_cls: type) -> set[str]:
    """``pars-*`` types stpipe asks CRDS for: the pipeline's and each step class's."""
    found = {pipeline_cls.get_config_reftype()}
    for step_cls in getattr(pipeline_cls, "step_defs", {}).values():
        found |= _pars_reftypes(step_cls)
    return found


@functools.cache
def _reftypes_of(name: str, include_skipped: bool) -> frozenset[str]:
    cls = _pipeline_class(name)
    pipeline = cls()
    found = set(pipeline.reference_file_types)  # what stpipe prefetches (unskipped steps)
    if include_skipped:
        for step_name in cls.step_defs:
            found |= set(getattr(pipeline, step_name).reference_file_types)
    return frozenset(t.lower() for t in found | _pars_reftypes(cls))


#: Types older jwst releases ask CRDS for that the installed one does not: the persistence
#: step of jwst 1.x and 2.0 prefetches these (jwst 1.20.2 and 2.0.1 fail with "Unknown
#: reference type 'trappars'" on a context without them). The kit declares them N/A, so
#: contexts serve every release from 1.20 on (``simval env``).
OTHER_RELEASE_REFTYPES = frozenset({"persat", "trapdensity", "trappars"})


def required_reftypes(pipelines: Iterable[str] = ("detector1", "image2", "image3"),
                      *, include_skipped: bool = True) -> set[str]:
    """Reference types the jwst pipelines ask CRDS for, read from the installed jwst.

    Parameters
    ----------
    pipelines : short names from :data:`PIPELINES`.
    include_skipped : also the types of steps skipped by default (a scenario may turn them
        on) and :data:`OTHER_RELEASE_REFTYPES`; ``False`` gives exactly the installed
        pipeline's prefetch list.

    Returns
    -------
    Reference types, including every ``pars-<step class>`` step-parameter type.
    """
    found: set[str] = set(OTHER_RELEASE_REFTYPES) if include_skipped else set()
    for name in pipelines:
        found |= _reftypes_of(name.lower(), include_skipped)
    return found
