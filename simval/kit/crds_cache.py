"""A local CRDS cache that CRDS itself serves to the jwst pipeline, with no network.

Layout (see :class:`simval.kit.layout.KitLayout` and the offline facts, docs/offline.md)::

    crds/config/jwst/server_config           repr() of CRDS's server-info dict
    crds/config/jwst/ref_cache_subdir_mode   'instrument'
    crds/mappings/jwst/jwst_NNNN.pmap ...    rules, sha1sum computed by CRDS
    crds/references/jwst/<instrument>/*      reference files (written elsewhere)

Every mapping file is written atomically and the pmap last, so a context is complete or
absent. All mapping files created for context ``N`` carry the number ``N``; a derived
context shares the unchanged rmaps of its base.

CRDS in one process (crds 14.0.3, measured):

- Paths, mode and context are read from ``os.environ`` at call time, but results are
  memoised: the context's processing mode/config (``heavy_client.get_config_info``), loaded
  mappings by *name* (``get_symbolic_mapping``) and the cache's subdirectory mode (a module
  global). Two kits both holding ``jwst_0001.pmap`` would silently share the first one
  loaded; and changing ``CRDS_CONTEXT`` alone does not switch the pipeline's context
  (``get_processing_mode(observatory, None)`` is memoised, so stpipe keeps the first one).
  :func:`using_crds` clears CRDS's function caches on entry and on exit; with that, several
  kits and contexts work one after the other in one process (tested).
- ``import crds`` fixes the server URL from ``CRDS_SERVER_URL`` (default
  ``https://crds-serverless-mode.stsci.edu``); :func:`using_crds` re-points it with
  ``crds.client.api.set_crds_server`` so no server call is ever attempted.
- ``using_crds`` changes process-global state: do not use it from several threads at once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from simval.atomic import write_text
from simval.kit import crds_mappings as cm
from simval.kit.crds_mappings import (
    DEFAULT_PIPELINES,
    PARKEYS,
    USEAFTER_KEYS,
    RefEntry,
    context_name,
    required_reftypes,
)
from simval.kit.layout import KitLayout

__all__ = [
    "DEFAULT_PIPELINES",
    "PARKEYS",
    "USEAFTER_KEYS",
    "BestrefsError",
    "RefEntry",
    "best_references",
    "context_mappings",
    "crds_environment",
    "crds_subprocess_env",
    "derive_context",
    "list_contexts",
    "missing_references",
    "next_context_number",
    "required_reftypes",
    "using_crds",
    "verify_mapping_checksums",
    "write_config",
    "write_context",
]

#: A CRDS_SERVER_URL with "serverless" in it short-circuits every server call in crds
#: (crds.client.proxy); "jwst" in it is how crds guesses the observatory; the reserved
#: ".invalid" domain never resolves, should anything try it anyway.
SERVERLESS_URL = "https://jwst-crds-serverless.invalid"
SUBDIR_MODE = "instrument"
#: Environment variables that would point CRDS somewhere else than the kit.
_FOREIGN_PREFIXES = ("CRDS_MAPPATH", "CRDS_REFPATH", "CRDS_CFGPATH", "CRDS_PICKLEPATH",
                     "CRDS_PATH_SINGLE", "CRDS_MAPPING_URI", "CRDS_REFERENCE_URI",
                     "CRDS_PICKLE_URI", "CRDS_S3_", "CRDS_DOWNLOAD_", "CRDS_OBSERVATORY",
                     "CRDS_IGNORE_MAPPING_CHECKSUM")


class BestrefsError(LookupError):
    """CRDS found no reference for some reftypes.

    Attributes
    ----------
    failures : reftype -> CRDS's "NOT FOUND ..." message.
    found : reftype -> file name or ``'N/A'`` for the others.
    """

    def __init__(self, failures: Mapping[str, str], found: Mapping[str, str]):
        self.failures = dict(failures)
        self.found = dict(found)
        text = "; ".join(f"{k}: {v}" for k, v in sorted(self.failures.items()))
        super().__init__(f"CRDS found no reference for {len(self.failures)} type(s): {text}")


# ----------------------------------------------------------------------------- listing

def _numbers(layout: KitLayout, suffix: str) -> list[int]:
    if not layout.mappings.is_dir():
        return []
    found = (cm.mapping_number(p.name) for p in layout.mappings.glob(f"jwst_*{suffix}"))
    return sorted(n for n in found if n is not None)


def list_contexts(layout: KitLayout) -> list[str]:
    """Complete contexts of the kit (``jwst_NNNN.pmap``), oldest first."""
    return [cm.pmap_name(n) for n in _numbers(layout, ".pmap")]


def next_context_number(layout: KitLayout) -> int:
    """1 + the highest number of any mapping file, so leftovers of a failed write are never
    reused by a context that shares them."""
    used = _numbers(layout, ".pmap") + _numbers(layout, ".imap") + _numbers(layout, ".rmap")
    return max(used, default=0) + 1


# ----------------------------------------------------------------------------- writing

def _checksummed(text: str, name: str) -> str:
    """``text`` with its sha1sum filled in by CRDS, exactly as ``crds checksum`` does it.

    ``crds checksum`` (``crds.refactoring.checksum.update_checksum``) loads the mapping with
    ``rmap.Mapping.from_file(..., ignore_checksum=True)`` and calls ``write()``, which
    re-serialises it and stores the sha1 of that text without its sha1sum line. ``write()``
    needs a file, so it writes into a scratch directory.
    """
    import tempfile

    from crds.core import rmap

    mapping = rmap.Mapping.from_string(text, basename=name, ignore_checksum=True)
    with tempfile.TemporaryDirectory(prefix="simval-crds-") as tmp:
        path = Path(tmp) / name
        mapping.write(str(path))
        return path.read_text()


def _write_mappings(layout: KitLayout, texts: Mapping[str, str]) -> None:
    """Write checksummed mapping texts; an existing file must already hold the same text."""
    for name, text in texts.items():
        path = layout.mappings / name
        if path.exists():
            if path.read_text() != text:
                raise FileExistsError(f"{path} exists with different content; kit mappings "
                                      "are never rewritten (use a new context number)")
            continue
        write_text(path, text)


def _server_config(layout: KitLayout) -> str:
    contexts = list_contexts(layout)
    latest = contexts[-1] if contexts else cm.pmap_name(0)
    names = sorted(p.name for p in layout.mappings.glob("jwst_*map")) \
        if layout.mappings.is_dir() else []
    info = {
        "observatory": cm.OBSERVATORY,
        "operational_context": latest,
        "latest_context": latest,
        "edit_context": latest,
        "bad_files_list": [],
        "bad_files": "",
        "force_remote_mode": False,
        "last_synced": "simval offline kit (never synced)",
        "mappings": names,
        "download_metadata": {},
    }
    return repr(info)


def write_config(layout: KitLayout) -> None:
    """(Re)write ``server_config`` (naming the newest complete context) and the subdir mode."""
    write_text(layout.crds_config / "ref_cache_subdir_mode", SUBDIR_MODE)
    write_text(layout.crds_config / "server_config", _server_config(layout))
    layout.references.mkdir(parents=True, exist_ok=True)


def _imap_selections(rmaps: Mapping[str, str], na_reftypes: Iterable[str]) -> dict[str, str]:
    selections = {t.lower(): "N/A" for t in na_reftypes}
    selections.update({t.lower(): name for t, name in rmaps.items()})
    return selections


def _commit_context(layout: KitLayout, number: int, rmap_texts: Mapping[str, str],
                    selections: Mapping[str, str], derived_from: str,
                    description: str) -> str:
    """Checksum and write rmaps, then the imap, then the pmap; refresh the config."""
    inst = layout.instrument
    imap = cm.imap_name(number, inst)
    pmap = cm.pmap_name(number)
    ordered = {name: _checksummed(text, name) for name, text in rmap_texts.items()}
    ordered[imap] = _checksummed(cm.imap_text(number, selections, derived_from, description,
                                              inst), imap)
    ordered[pmap] = _checksummed(cm.pmap_text(number, imap, derived_from, description, inst),
                                 pmap)
    _write_mappings(layout, ordered)  # dict order: rmaps, imap, pmap last
    write_config(layout)
    return pmap


def write_context(layout: KitLayout, context: int | str,
                  entries: Mapping[str, Sequence[RefEntry]], *,
                  na_reftypes: Iterable[str] | None = None, description: str = "") -> str:
    """Write a complete context: one rmap per delivered reftype, N/A for the rest.

    Parameters
    ----------
    layout : the kit.
    context : context number or name (``3`` or ``'jwst_0003.pmap'``).
    entries : reftype -> the references of its rmap.
    na_reftypes : reftypes to declare N/A; default every type of
        ``required_reftypes(DEFAULT_PIPELINES)`` (imports jwst, ~6 s once per process).
    description : stored in the imap and pmap headers.

    Returns
    -------
    The context name. Writing the same context again with the same content is a no-op;
    different content for an existing name raises ``FileExistsError``.
    """
    name = context_name(context)
    number = cm.mapping_number(name)
    if na_reftypes is None:
        na_reftypes = required_reftypes(DEFAULT_PIPELINES)
    inst = layout.instrument
    rmaps = {t.lower(): cm.rmap_name(t, number, inst) for t in entries}
    texts = {cm.rmap_name(t, number, inst): cm.rmap_text(t, number, list(refs),
                                                         instrument=inst)
             for t, refs in entries.items()}
    selections = _imap_selections(rmaps, na_reftypes)
    return _commit_context(layout, number, texts, selections, "simval synthetic instrument kit",
                           description)


# ----------------------------------------------------------------------------- reading

def _load(path: Path):
    """A mapping file parsed by CRDS with its sha1sum checked, sub-mappings not loaded."""
    from crds.core import rmap

    cls = rmap.ReferenceMapping if path.suffix == ".rmap" else rmap.Mapping
    if not path.exists():
        raise FileNotFoundError(f"CRDS mapping {path.name} is missing from {path.parent}")
    return cls.from_string(path.read_text(), basename=path.name)


def context_mappings(layout: KitLayout, context: int | str) -> dict[str, str]:
    """The imap selections of a context: reftype -> rmap name or ``'N/A'``."""
    pmap = _load(layout.mappings / context_name(context))
    imap = _load(layout.mappings / pmap.selector[layout.instrument.upper()])
    return {str(k).lower(): str(v) for k, v in imap.selector.items()}


def verify_mapping_checksums(layout: KitLayout, context: int | str) -> list[str]:
    """Check every mapping of a context with CRDS's checksum verifier.

    Returns the names checked; raises ``crds`` ``ChecksumError``/``MappingError`` on the
    first bad one (this is ``crds checksum --verify`` in-process).
    """
    from crds.refactoring import checksum

    name = context_name(context)
    names = [name, _load(layout.mappings / name).selector[layout.instrument.upper()]]
    names += sorted(v for v in context_mappings(layout, name).values() if v != "N/A")
    with using_crds(layout, name):
        for mapping in names:
            checksum.verify_checksum(str(layout.mappings / mapping))
    return names


def missing_references(layout: KitLayout, context: int | str) -> list[str]:
    """Files a context names that are not in the kit: mappings first, then references.

    A reference missing from the cache is not reported by CRDS as missing: the pipeline's
    ``getreferences`` logs "Syncing 1 files" and a download failure and returns a path that
    does not exist. Call this before running the pipeline.
    """
    pmap = layout.mappings / context_name(context)
    if not pmap.exists():
        return [pmap.name]
    imap = layout.mappings / _load(pmap).selector[layout.instrument.upper()]
    if not imap.exists():
        return [imap.name]
    missing: list[str] = []
    refs: set[str] = set()
    for rmap_file in sorted(set(_load(imap).selector.values()) - {"N/A"}):
        path = layout.mappings / rmap_file
        if path.exists():
            refs |= set(_load(path).reference_names())
        else:
            missing.append(rmap_file)
    return missing + sorted(r for r in refs if not (layout.references / r).exists())


# ----------------------------------------------------------------------------- environment

def crds_environment(layout: KitLayout, context: int | str) -> dict[str, str]:
    """CRDS environment variables that make CRDS serve ``context`` from the kit, offline.

    ``CRDS_CONTEXT`` wins over server_config; a ``serverless`` server URL short-circuits
    server calls; ``CRDS_CONFIG_URI`` stops the server-info call MIRAGE's CRDS helper makes.
    Raises ``FileNotFoundError`` if the context is not in the kit.
    """
    name = context_name(context)
    if not (layout.mappings / name).exists():
        raise FileNotFoundError(f"context {name} is not in the kit at {layout.mappings}; "
                                f"available: {list_contexts(layout) or 'none'}")
    return {
        "CRDS_PATH": str(layout.crds_path),
        "CRDS_CONTEXT": name,
        "CRDS_SERVER_URL": SERVERLESS_URL,
        "CRDS_MODE": "local",
        "CRDS_CONFIG_URI": str(layout.crds_config),
    }


def _is_foreign(var: str) -> bool:
    return var.startswith(_FOREIGN_PREFIXES)


def crds_subprocess_env(layout: KitLayout, context: int | str,
                        base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A full environment for a child process: ``base`` (default ``os.environ``) without
    CRDS variables that would point elsewhere, plus :func:`crds_environment`."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not _is_foreign(k)}
    env.update(crds_environment(layout, context))
    return env


def _reset_crds_state(server_url: str) -> None:
    """Forget what CRDS memoised about the previous cache (see module docstring)."""
    from crds.client import api
    from crds.core import config, utils

    utils.clear_function_caches()
    # The cache's subdirectory mode is memoised in a module global with no public reset;
    # "None" makes crds re-read ref_cache_subdir_mode from the current CRDS_PATH.
    config.CRDS_REF_SUBDIR_MODE = "None"
    api.set_crds_server(server_url)


@contextlib.contextmanager
def using_crds(layout: KitLayout, context: int | str) -> Iterator[dict[str, str]]:
    """Within the block, CRDS (and the pipeline) in this process serve ``context`` from the kit.

    Sets :func:`crds_environment` in ``os.environ`` (removing CRDS variables that point
    elsewhere), clears CRDS's memoised state, and restores both afterwards.
    Yields the variables set.
    """
    with using_environment(crds_environment(layout, context)) as env:
        yield env


@contextlib.contextmanager
def using_environment(env: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Like :func:`using_crds` for any CRDS environment (a kit's, or a user's real cache)."""
    from crds.client import api

    env = dict(env)
    saved = {k: v for k, v in os.environ.items() if k.startswith("CRDS_")}
    saved_url = api.get_crds_server()
    for var in [k for k in os.environ if _is_foreign(k)]:
        del os.environ[var]
    os.environ.update(env)
    _reset_crds_state(env.get("CRDS_SERVER_URL", SERVERLESS_URL))
    try:
        yield env
    finally:
        for var in [k for k in os.environ if k.startswith("CRDS_")]:
            del os.environ[var]
        os.environ.update(saved)
        _reset_crds_state(saved_url)


# ----------------------------------------------------------------------------- bestrefs

def best_references(layout: KitLayout, context: int | str, header: Mapping[str, object],
                    reftypes: Iterable[str]) -> dict[str, str]:
    """Best references CRDS selects for a dataset, computed offline by CRDS itself.

    Parameters
    ----------
    header : dataset keywords as datamodel paths, any case (``model.get_crds_parameters()``
        gives exactly what the pipeline passes).
    reftypes : types to look up.

    Returns
    -------
    reftype -> reference file name, or ``'N/A'``. Raises :class:`BestrefsError` if CRDS
    matched nothing for some type (an unknown type, or no rmap entry for the dataset).
    """
    import crds

    name = context_name(context)
    wanted = sorted({t.lower() for t in reftypes})
    params = {str(k): v for k, v in header.items()}
    with using_crds(layout, name):
        raw = crds.getrecommendations(params, reftypes=wanted, context=name,
                                      observatory=cm.OBSERVATORY)
    found, failures = {}, {}
    for reftype in wanted:
        value = str(raw.get(reftype, "NOT FOUND (not returned by CRDS)"))
        if value.upper() in ("N/A", "NOT FOUND N/A"):  # CRDS's two spellings of N/A
            found[reftype] = "N/A"
        elif value.upper().startswith("NOT FOUND"):
            failures[reftype] = value
        else:
            found[reftype] = value
    if failures:
        raise BestrefsError(failures, found)
    return found


# ----------------------------------------------------------------------------- deriving

def _rmap_with_replacements(layout: KitLayout, rmap_file: str, number: int,
                            replacements: Mapping[str, str]) -> tuple[str, set[str]] | None:
    """New rmap text with references replaced, and which old names it held; None if none."""
    from crds.core import rmap

    old = _load(layout.mappings / rmap_file)
    held = set(old.reference_names()) & set(replacements)
    if not held:
        return None
    head, sep, body = (layout.mappings / rmap_file).read_text().partition("\nselector = ")
    for name in held:  # file names appear only as quoted values of the selector
        body = body.replace(repr(name), repr(replacements[name]))
    new = rmap.Mapping.from_string(head + sep + body, ignore_checksum=True)
    new.header["name"] = cm.rmap_name(str(old.filekind), number, layout.instrument)
    new.header["derived_from"] = rmap_file
    return new.format(), held


def derive_context(layout: KitLayout, base_context: int | str,
                   replacements: Mapping[str, str], description: str) -> str:
    """A new context equal to ``base_context`` except that references are replaced.

    Parameters
    ----------
    replacements : old reference file name -> new file name (the new file's content is
        made elsewhere; :func:`missing_references` tells whether it is in place).
    description : why this context exists (stored in the imap and pmap headers).

    Returns
    -------
    The new context's name. Only the rmaps holding a replaced file get new files (numbered
    like the new context); all other rmaps are shared with the base. ``KeyError`` if a
    replaced file is not in the base context, ``ValueError`` if nothing is replaced.
    """
    if not replacements:
        raise ValueError("a derived context needs at least one replaced reference")
    base = context_name(base_context)
    number = next_context_number(layout)
    selections = context_mappings(layout, base)
    texts: dict[str, str] = {}
    seen: set[str] = set()
    for reftype, rmap_file in sorted(selections.items()):
        if rmap_file == "N/A":
            continue
        result = _rmap_with_replacements(layout, rmap_file, number, replacements)
        if result is not None:
            new_name = cm.rmap_name(reftype, number, layout.instrument)
            texts[new_name], held = result
            selections[reftype] = new_name
            seen |= held
    unknown = sorted(set(replacements) - seen)
    if unknown:
        raise KeyError(f"not referenced by {base}: {', '.join(unknown)}")
    imap_base = _load(layout.mappings / base).selector[layout.instrument.upper()]
    return _commit_context(layout, number, texts, selections,
                           f"{base} ({imap_base})", description)
