"""Run one calibrate call inside a pipeline environment: ``python -m simval.envs.worker SPEC``.

``SPEC`` is a JSON file (written by :func:`simval.envs.runner.run_in_env`)::

    {"schema": 1, "kind": "detector1" | "image2" | "image3",
     "input": ".../x_uncal.fits" (image3: the association), "out_dir": "...",
     "log": ".../stage.log", "crds_env": {"CRDS_PATH": ..., "CRDS_CONTEXT": ..., ...},
     "params": {step: {param: value}, ...},
     "result": ".../result.json", "traceback": ".../traceback.txt"}

The call is :func:`simval.calibrate.detector1` / ``image2`` / ``image3`` with those
arguments, so the environment's jwst runs exactly the code the in-process stages run. Before
jwst is imported the process's CRDS variables are replaced by ``crds_env`` (with no
``CRDS_SERVER_URL`` given: the kit's serverless URL and ``CRDS_MODE=local``, so CRDS never
tries a server) and astropy's downloads are turned off; with such an offline CRDS, every
non-loopback connection or host-name lookup is refused and recorded
(``network_attempts``).

The result JSON (written atomically, also on failure)::

    {"schema": 1, "kind", "status": "ok" | "failed", "outputs": {...paths...},
     "versions": {jwst, crds, stcal, stdatamodels, ...}, "python", "simval",
     "seconds", "peak_rss_mb", "ref_files": {reftype: file}, "cal_step": {...},
     "reftype_steps": {reftype: [steps of this pipeline that use it]} (this jwst's),
     "prefetch": {reftype: what CRDS returned, as the pipeline logged it},
     "network_attempts": [connections refused], "error": "Type: message" | null,
     "traceback": path | null}

Exit code 0 when the call succeeded, 1 when it failed (result written), 2 when the spec
itself could not be read. Imports: the standard library and simval's light modules
(:mod:`simval.atomic`, :mod:`simval.calibrate`, :mod:`simval.kit.crds_cache`,
:mod:`simval.offline`) plus the pipeline; nothing of simval's heavy dependencies.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from simval import calibrate, offline
from simval.atomic import write_text
from simval.kit.crds_cache import SERVERLESS_URL

SCHEMA = 1
KINDS = ("detector1", "image2", "image3")
#: Distributions whose versions go into the result.
RESULT_VERSIONS = ("jwst", "crds", "stcal", "stdatamodels", "stpipe", "numpy", "astropy",
                   "gwcs", "asdf", "photutils", "scipy")
_PREFETCH = re.compile(r"Prefetch for (\S+) reference file is '([^']*)'")


def apply_crds_env(crds_env: dict[str, str], environ=None) -> dict[str, str]:
    """Replace every ``CRDS_*`` variable of ``environ`` (default ``os.environ``) with
    ``crds_env``; without a server URL, the serverless one and local mode. Returns what was
    set."""

    environ = os.environ if environ is None else environ
    env = {str(k): str(v) for k, v in crds_env.items()}
    if not env.get("CRDS_SERVER_URL"):
        env["CRDS_SERVER_URL"] = SERVERLESS_URL
        env.setdefault("CRDS_MODE", "local")
    for var in [k for k in environ if k.startswith("CRDS_")]:
        del environ[var]
    environ.update(env)
    return env


def block_network(attempts: list[str]) -> None:
    """Refuse (and record in ``attempts``) every connection and host-name lookup that is
    not loopback or a Unix socket: with an offline CRDS nothing in the worker may reach
    the network, and an attempt is reported instead of hanging where DNS hangs."""
    import socket

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo
    unix = getattr(socket, "AF_UNIX", None)

    def local(host) -> bool:
        return host is None or (isinstance(host, str) and (
            host.startswith("127.") or host in ("", "::1", "localhost", "0.0.0.0")))

    def refuse(what: str):
        attempts.append(what)
        return OSError(f"simval worker: network disabled (offline CRDS): {what}")

    def connect(self, address):
        if self.family == unix or local(address[0] if isinstance(address, tuple) else None):
            return real_connect(self, address)
        raise refuse(f"connect {address!r}")

    def connect_ex(self, address):
        if self.family == unix or local(address[0] if isinstance(address, tuple) else None):
            return real_connect_ex(self, address)
        raise refuse(f"connect {address!r}")

    def getaddrinfo(host, *args, **kwargs):
        if local(host):
            return real_getaddrinfo(host, *args, **kwargs)
        raise refuse(f"resolve {host!r}")

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.getaddrinfo = getaddrinfo


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for dist in RESULT_VERSIONS:
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def _prepare() -> None:
    """As :func:`simval.run.stages.prepare_process`: no downloads, pysiaf imported offline
    (when installed), the pipeline imported, then ``gc.freeze()`` (stpipe's per-step
    ``gc.collect()`` then skips the import-time objects)."""
    import gc
    import importlib.util

    offline.configure()
    if importlib.util.find_spec("pysiaf") is not None:
        offline.import_pysiaf()
    import jwst.pipeline  # noqa: F401

    gc.collect()
    gc.freeze()


def _prefetched(log: Path, offset: int) -> dict[str, str]:
    """reftype -> what CRDS returned, from the pipeline's "Prefetch for ..." log lines
    written after ``offset``."""
    if not log.is_file():
        return {}
    with log.open("rb") as fh:
        fh.seek(offset)
        text = fh.read().decode("utf-8", "replace")
    found = {}
    for m in _PREFETCH.finditer(text):
        value = m.group(2)
        found[m.group(1).lower()] = value if value.upper() == "N/A" else os.path.basename(
            value.removeprefix("crds://"))
    return found


def _call(spec: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    """Run the calibrate function; returns (outputs, main product)."""

    crds = calibrate.CrdsSetup(dict(spec["crds_env"]))
    inp, out_dir, log = Path(spec["input"]), Path(spec["out_dir"]), Path(spec["log"])
    params = spec.get("params") or {}
    kind = spec["kind"]
    if kind == "image3":
        p = calibrate.image3(inp, out_dir, crds, log, params)
        outputs = {"i2d": str(p.i2d),
                   "catalog": None if p.catalog is None else str(p.catalog),
                   "segmentation": None if p.segmentation is None else str(p.segmentation),
                   "background_levels": dict(p.background_levels)}
        return outputs, p.i2d
    run = calibrate.detector1 if kind == "detector1" else calibrate.image2
    product = run(inp, out_dir, crds, log, params)
    return {"product": str(product)}, product


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one spec (in this process); returns the result document (also on failure)."""
    import resource

    t0 = time.perf_counter()
    log = Path(spec["log"])
    offset = log.stat().st_size if log.is_file() else 0
    result: dict[str, Any] = {
        "schema": SCHEMA, "kind": spec.get("kind"), "status": "failed", "outputs": {},
        "versions": {}, "python": sys.version.split()[0], "executable": sys.executable,
        "simval": None, "ref_files": {}, "reftype_steps": {}, "cal_step": {}, "prefetch": {},
        "error": None, "traceback": None, "network_attempts": [],
    }
    attempts: list[str] = result["network_attempts"]
    try:
        if spec.get("kind") not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {spec.get('kind')!r}")
        env = apply_crds_env(spec.get("crds_env") or {})
        if "serverless" in env["CRDS_SERVER_URL"]:
            block_network(attempts)
        import simval

        result["simval"] = str(Path(simval.__file__).parent)
        result["versions"] = versions()
        _prepare()
        outputs, product = _call(spec)
        result["outputs"] = outputs
        from simval import calibrate

        result["ref_files"] = calibrate.ref_files_used(product)
        result["cal_step"] = calibrate.cal_step_status(product)
        try:  # a record of the provenance: it must not fail a calibration that worked
            result["reftype_steps"] = calibrate.reftype_steps(spec["kind"])
        except Exception as err:
            result["reftype_steps"] = {}
            print(f"simval.envs.worker: reftype_steps: {type(err).__name__}: {err}",
                  file=sys.stderr)
        result["status"] = "ok"
    except (Exception, SystemExit) as err:  # CRDS calls sys.exit() on some cache errors
        result["error"] = f"{type(err).__name__}: {err}"
        tb_path = Path(spec.get("traceback") or f"{spec['result']}.traceback.txt")
        from simval.atomic import write_text

        write_text(tb_path, "".join(traceback.format_exception(err)))
        result["traceback"] = str(tb_path)
    result["prefetch"] = _prefetched(log, offset)
    result["seconds"] = round(time.perf_counter() - t0, 3)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m simval.envs.worker SPEC.json", file=sys.stderr)
        return 2
    try:
        spec = json.loads(Path(argv[0]).read_text())
        if spec.get("schema") != SCHEMA or "result" not in spec:
            raise ValueError(f"not a worker spec of schema {SCHEMA} with a 'result' path")
    except (OSError, ValueError) as err:
        print(f"simval.envs.worker: cannot read {argv[0]}: {err}", file=sys.stderr)
        return 2
    result = run(spec)

    write_text(spec["result"], json.dumps(result, indent=1, default=str) + "\n")
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
