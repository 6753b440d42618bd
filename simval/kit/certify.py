"""Run CRDS's own ``crds certify`` on kit mappings and references, offline.

``crds certify FILE... --comparison-context jwst_NNNN.pmap`` checks references against
CRDS's type rules (the ``.tpn`` files of ``crds/jwst/tpns`` plus datamodel validation) and
mappings against the context. It runs in a child process with the kit's CRDS environment,
so it never sees another cache and never calls a server.

What certify (crds 14.0.3) demands of a kit reference, measured with the kit's rmaps:

- every reference: TELESCOP=JWST, INSTRUME, REFTYPE, AUTHOR, DESCRIP, PEDIGREE (a CRDS
  pedigree, e.g. SIMULATION), USEAFTER, at least one HISTORY entry;
- every rmap Match key that CRDS's NIRCam .tpn files know becomes required in the
  reference: DETECTOR, SUBARRAY (superbias, dark, psfmask), FILTER and PUPIL (flat,
  psfmask), CHANNEL (distortion, filteroffset), CORONMSK (psfmask). MODULE is not checked;
- see :data:`REQUIREMENTS` for the per-type rules.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from simval.kit import crds_cache
from simval.kit.crds_mappings import context_name
from simval.kit.layout import KitLayout

#: Per-type certify requirements beyond the common ones (see module docstring).
REQUIREMENTS: dict[str, str] = {
    "mask": "DETECTOR; DQ 2-D; full frame (2048x2048) unless SUBARRAY/SUBSTRT/SUBSIZE say "
            "otherwise; DQ_DEF columns BIT, VALUE, NAME, DESCRIPTION if present",
    "saturation": "DETECTOR; SCI 2-D",
    "superbias": "DETECTOR, SUBARRAY",
    "linearity": "DETECTOR; COEFFS 3-D",
    "dark": "DETECTOR, SUBARRAY (not GENERIC or N/A, with SUBSTRT/SUBSIZE of that "
            "subarray), NFRAMES, NGROUPS, GROUPGAP; SCI 3-D",
    "gain": "DETECTOR; SCI 2-D; BUNIT=ELECTRONS/DN recommended (warning otherwise)",
    "readnoise": "DETECTOR; SCI 2-D; BUNIT=DN recommended (warning otherwise)",
    "ipc": "DETECTOR; SCI 2-D or 4-D, odd-sized, each kernel summing to 1 +- 1e-6 (error); "
           "a centre pixel < 1.0 gives a 'Possible bad IPC Kernel' warning",
    "flat": "DETECTOR, FILTER, PUPIL",
    "photom": "DETECTOR; PHOTOM table (a 'no comparison reference' warning is normal)",
    "area": "DETECTOR, PIXAR_SR, PIXAR_A2; SCI 2048x2048",
    "distortion": "DETECTOR, CHANNEL (stdatamodels also wants MODULE and P_PUPIL)",
    "filteroffset": "CHANNEL (MODULE is matched but not checked)",
    "apcorr": "EXP_TYPE an imaging mode (NRC_IMAGE); P_EXP_TY alone is NOT enough: without "
              "EXP_TYPE certify applies the spectroscopic rules (NELEM_WL, WAVELENGTH, ...)",
    "abvegaoffset": "nothing beyond the common keywords",
    "psfmask": "FILTER, CORONMSK, SUBARRAY; SCI 2-D",
}

_SUMMARY = re.compile(r"CRDS - INFO -\s+(\d+) (errors|warnings)\s*$", re.MULTILINE)
#: crds.certify.check_rmap_updates writes test rmaps to the literal "/tmp/<rmap name>"
#: (crds 14.0.3), so concurrent certify runs would overwrite each other's; they are
#: serialised with this lock and the leftovers removed.
_RMAP_SCRATCH = Path("/tmp")
_LOCK = _RMAP_SCRATCH / "simval-crds-certify.lock"


class CertifyError(RuntimeError):
    """``crds certify`` ended without its error/warning summary (it crashed)."""


@dataclass(frozen=True)
class CertifyResult:
    """Outcome of one ``crds certify`` run.

    Attributes
    ----------
    n_errors, n_warnings : CRDS's own summary counts.
    log_text : everything certify printed.
    """

    n_errors: int
    n_warnings: int
    log_text: str

    @property
    def ok(self) -> bool:
        return self.n_errors == 0

    def messages(self, level: str = "ERROR") -> list[str]:
        """Log lines at ``level`` (``ERROR`` or ``WARNING``)."""
        return [line for line in self.log_text.splitlines() if f"CRDS - {level} -" in line]


def parse_summary(log_text: str) -> tuple[int, int]:
    """``(n_errors, n_warnings)`` from certify's final summary lines."""
    counts = {kind: int(n) for n, kind in _SUMMARY.findall(log_text)}
    if "errors" not in counts:
        tail = "\n".join(log_text.splitlines()[-20:])
        raise CertifyError(f"crds certify printed no error summary; last lines:\n{tail}")
    return counts["errors"], counts.get("warnings", 0)


def _resolve(layout: KitLayout, path: str | os.PathLike) -> str:
    """Absolute path of a file, or of a bare name in the kit's mappings/references."""
    candidates = [Path(path)]
    if Path(path).name == str(path):
        candidates += [layout.mappings / str(path), layout.references / str(path)]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate.resolve())
    raise FileNotFoundError(f"nothing to certify at {path!s} (also looked in the kit)")


@contextlib.contextmanager
def _rmap_scratch_guard(layout: KitLayout, context: str) -> Iterator[None]:
    """Hold the certify lock and remove the test rmaps certify leaves in /tmp."""
    started = time.time()
    with open(_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            names = set(crds_cache.context_mappings(layout, context).values()) - {"N/A"}
            for name in names:
                leftover = _RMAP_SCRATCH / name
                with contextlib.suppress(OSError):
                    if leftover.stat().st_mtime >= started - 1:
                        leftover.unlink()
            fcntl.flock(lock, fcntl.LOCK_UN)


def certify(paths: Iterable[str | os.PathLike], layout: KitLayout, context: int | str, *,
            check_rmap_updates: bool = True, timeout: float = 900) -> CertifyResult:
    """Run ``crds certify PATHS --comparison-context CONTEXT`` against the kit, offline.

    Parameters
    ----------
    paths : mapping and reference files (paths, or bare names in the kit).
    layout, context : the kit and the context to compare against.
    check_rmap_updates : let certify test-insert the references into the context's rmaps
        (catches overlapping matches); ``False`` passes ``--dont-check-rmap-updates``.
    timeout : seconds before the child process is killed.

    Returns
    -------
    :class:`CertifyResult`; raises :class:`CertifyError` if certify crashed.
    """
    name = context_name(context)
    files = [_resolve(layout, p) for p in paths]
    if not files:
        raise ValueError("nothing to certify: no paths given")
    env = crds_cache.crds_subprocess_env(layout, name)
    # crds calls gc.collect() around every file access by default: 2/3 of certify's time.
    env["CRDS_EXPLICIT_GARBAGE_COLLECTION"] = "0"
    command = [sys.executable, "-m", "crds.certify", *files, "--comparison-context", name]
    if not check_rmap_updates:
        command.append("--dont-check-rmap-updates")
    guard = _rmap_scratch_guard(layout, name) if check_rmap_updates else contextlib.nullcontext()
    with guard:
        run = subprocess.run(command, env=env, capture_output=True, text=True,
                             timeout=timeout, cwd=layout.crds_path, check=False)
    log_text = run.stdout + run.stderr
    n_errors, n_warnings = parse_summary(log_text)
    return CertifyResult(n_errors, n_warnings, log_text)


def certify_context(layout: KitLayout, context: int | str, **kwargs) -> CertifyResult:
    """Certify a whole context: its mappings and every reference it names.

    Files the context names but the kit lacks are not certified (see
    :func:`simval.kit.crds_cache.missing_references`).
    """
    name = context_name(context)
    selections = crds_cache.context_mappings(layout, name)
    rmaps = sorted(set(selections.values()) - {"N/A"})
    refs: set[str] = set()
    from crds.core import rmap

    for rmap_file in rmaps:
        text = (layout.mappings / rmap_file).read_text()
        refs |= set(rmap.ReferenceMapping.from_string(text, basename=rmap_file)
                    .reference_names())
    present = sorted(r for r in refs if (layout.references / r).exists())
    return certify([name, *present], layout, name, **kwargs)
