"""Make, register and remove pipeline environments.

``create_env("jwst==1.20.2")`` makes a virtual environment ``<env dir>/jwst-1.20.2``:

1. ``uv venv`` when ``uv`` is on PATH, else ``python -m venv``;
2. one resolver call installs the jwst requirement, :data:`WORKER_REQUIREMENTS`, any
   ``extra`` requirements and the :data:`KNOWN_CONSTRAINTS` that apply to the release, from
   the package index (each release gets the dependencies its own metadata asks for, within
   those pins);
3. simval itself with ``--no-deps``: editable (``-e``) from a source checkout, so the
   worker always runs the caller's current simval code; from an installed simval, a copy
   of the package put on the environment's path by a ``.pth`` file;
4. a probe run with the environment's interpreter imports the worker's import path
   (``simval.envs.worker``, ``simval.calibrate``, ``simval.kit.crds_cache``, ``jwst``,
   ``crds``) and fails the creation if it pulls a module simval's heavy dependencies bring
   (:data:`HEAVY_MODULES`) or does not import at all;
5. the record (resolved versions, ``pip freeze``, size, time) goes into the registry.

Any failure removes the environment directory and registers nothing; the error names the
requirement and quotes the end of the installer's output (the whole output stays in
``<env dir>/logs/NAME-create.log``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import simval
from simval.envs.registry import EnvError, EnvRecord, EnvRegistry, check_name
from simval.provenance import now_utc

#: What the worker needs beside jwst's own dependencies: photutils and scipy are jwst
#: dependencies in every release this was tried with (1.20.2, 3.0.0) and are listed so that a
#: release that dropped them still gets them; platformdirs is imported by
#: ``simval.kit.crds_cache`` (via ``simval.kit.layout``).
WORKER_REQUIREMENTS = ("photutils", "scipy", "platformdirs")
#: Pins added for releases whose own metadata lets the resolver pick a dependency they cannot
#: run with: (releases, requirement, why). Skipped when ``extra`` names the same package.
KNOWN_CONSTRAINTS = (
    ("<2.0", "photutils<3",
     "jwst 1.x asks for photutils>=2.1 with no upper bound, and photutils 3.0 renamed "
     "SourceFinder's npixels to n_pixels: image3's source_catalog fails with TypeError "
     "(measured with jwst 1.20.2; jwst 2.0.1 declares photutils<3 itself)"),
)
#: Distributions whose versions are recorded for every environment.
VERSION_DISTS = ("jwst", "crds", "stcal", "stdatamodels", "stpipe", "numpy", "astropy",
                 "asdf", "gwcs", "photutils", "scipy", "tweakwcs", "drizzle", "simval")
#: Modules the worker's import path must not pull (simval's heavy dependencies).
HEAVY_MODULES = ("pydantic", "dask", "distributed", "mirage", "rich", "matplotlib",
                 "pyarrow", "galsim", "poppy", "yaml_include")
#: Default time limit of one installer call.
INSTALL_TIMEOUT_S = 3600
ERROR_TAIL_LINES = 15

_VERSION = re.compile(r"^\d+(\.\d+)*([abrc]+\d+|\.post\d+|\.dev\d+)*$")


class EnvCreateError(EnvError):
    """Creating an environment failed; nothing was registered."""


@dataclass(frozen=True)
class JwstSpec:
    """A parsed ``jwst`` requirement: ``requirement`` as given to the installer, and the
    exact version when it pins one with ``==``."""

    requirement: str
    exact_version: str | None

    def default_name(self) -> str:
        if self.exact_version is None:
            raise EnvError(f"{self.requirement!r} does not pin one release: give --name")
        return f"jwst-{self.exact_version}"


def parse_spec(text: str) -> JwstSpec:
    """Parse a jwst requirement: ``jwst==1.20.2``, ``jwst>=1.20,<1.21``, ``jwst[sdp]==3.0.0``.

    A bare version (``1.20.2``) means ``jwst==1.20.2``. Anything that is not a requirement
    on the ``jwst`` project (another package, a URL, a marker) is an :class:`EnvError`.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    text = text.strip()
    if _VERSION.match(text):
        text = f"jwst=={text}"
    try:
        req = Requirement(text)
    except InvalidRequirement as err:
        raise EnvError(f"not a jwst requirement: {text!r} ({err}); expected e.g. "
                       "jwst==1.20.2") from err
    if canonicalize_name(req.name) != "jwst":
        raise EnvError(f"{text!r}: an environment is made for a jwst release "
                       "(jwst==X.Y.Z); add other packages with --with")
    if req.url or req.marker:
        raise EnvError(f"{text!r}: URLs and environment markers are not supported")
    specs = list(req.specifier)
    exact = None
    if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
        exact = specs[0].version
    return JwstSpec(str(req), exact)


def known_constraints(spec: JwstSpec, extra: Sequence[str] = ()) -> list[str]:
    """Requirements of :data:`KNOWN_CONSTRAINTS` that apply to an exact release (none for a
    range), less those on a package ``extra`` already constrains."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name

    if spec.exact_version is None:
        return []
    given = {canonicalize_name(Requirement(r).name) for r in extra}
    return [req for releases, req, _why in KNOWN_CONSTRAINTS
            if SpecifierSet(releases).contains(spec.exact_version, prereleases=True)
            and canonicalize_name(Requirement(req).name) not in given]


# ----------------------------------------------------------------------------- installers

@dataclass(frozen=True)
class Installer:
    """``uv`` (when on PATH) or ``venv`` + ``pip``."""

    kind: str  # "uv" or "pip"
    uv: str | None = None

    @classmethod
    def choose(cls, prefer: str | None = None) -> Installer:
        """``prefer``: ``"uv"``, ``"pip"`` or None (uv if ``uv`` is on PATH)."""
        uv = shutil.which("uv")
        if prefer == "uv" and uv is None:
            raise EnvError("--installer uv: uv is not on PATH")
        if prefer == "pip" or uv is None:
            return cls("pip")
        return cls("uv", uv)

    def venv_command(self, path: Path, python: str) -> list[str]:
        if self.kind == "uv":
            return [str(self.uv), "venv", "--python", python, str(path)]
        return [python, "-m", "venv", str(path)]

    def install_command(self, env_python: Path, args: Sequence[str]) -> list[str]:
        if self.kind == "uv":
            return [str(self.uv), "pip", "install", "--python", str(env_python), *args]
        return [str(env_python), "-m", "pip", "install", "--no-input",
                "--disable-pip-version-check", "--progress-bar", "off", *args]

    def freeze_command(self, env_python: Path) -> list[str]:
        if self.kind == "uv":
            return [str(self.uv), "pip", "freeze", "--python", str(env_python)]
        return [str(env_python), "-m", "pip", "freeze", "--disable-pip-version-check"]


def env_python(path: Path) -> Path:
    """The interpreter of the virtual environment at ``path``."""
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _resolve_python(python: str | None) -> str:
    if python is None:
        return sys.executable
    found = shutil.which(python) if os.sep not in python else python
    if not found or not Path(found).exists():
        raise EnvError(f"--python {python}: no such interpreter")
    return str(Path(found).absolute())


def _tail(text: str, n: int = ERROR_TAIL_LINES, width: int = 400) -> str:
    lines = [ln if len(ln) <= width else ln[:width] + " ..." for ln in text.splitlines()
             if ln.strip()]
    return "\n".join("  " + ln for ln in lines[-n:])


class _Log:
    """Installer output, appended to the create log as it comes."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        path.write_text("")

    def run(self, cmd: Sequence[str], what: str, timeout_s: float | None,
            echo: Callable[[str], None] | None = None) -> str:
        """Run ``cmd``; its output goes to the log (and ``echo``); returns the output.
        Raises :class:`_StepFailedError` on a non-zero exit or a timeout."""
        with self.path.open("a") as fh:
            fh.write(f"$ {' '.join(cmd)}\n")
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
        env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env, bufsize=1)
        out: list[str] = []
        timer, fired = None, []

        def kill() -> None:
            fired.append(True)
            proc.kill()

        if timeout_s is not None:  # kill a silent, hung installer too
            timer = threading.Timer(timeout_s, kill)
            timer.start()
        assert proc.stdout is not None
        try:
            with self.path.open("a") as fh:
                for line in proc.stdout:
                    out.append(line)
                    fh.write(line)
                    if echo is not None:
                        echo(line.rstrip("\n"))
            rc = proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = "".join(out)
        if fired:
            raise _StepFailedError(what, f"timed out after {timeout_s:.0f} s", text)
        if rc != 0:
            raise _StepFailedError(what, f"exited with code {rc}", text)
        return text


class _StepFailedError(Exception):
    def __init__(self, what: str, how: str, output: str):
        super().__init__(f"{what} {how}")
        self.what, self.how, self.output = what, how, output


# ----------------------------------------------------------------------------- simval itself

def simval_source_root() -> Path | None:
    """The source checkout simval is imported from (the directory holding its
    pyproject.toml), or None for an installed (non-editable) simval."""

    root = Path(simval.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and re.search(r'(?m)^name\s*=\s*"simval"', pyproject.read_text()):
        return root
    return None


def _install_simval(installer: Installer, py: Path, log: _Log, timeout_s: float | None,
                    echo) -> str:
    root = simval_source_root()
    if root is not None:
        log.run(installer.install_command(py, ["--no-deps", "-e", str(root)]),
                "installing simval (--no-deps, editable)", timeout_s, echo)
        return f"editable {root}"
    # An installed simval: a copy of the package on the environment's path.

    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True, check=True
                             ).stdout.strip()
    target = py.parent.parent / "simval-src"
    shutil.copytree(Path(simval.__file__).parent, target / "simval",
                    ignore=shutil.ignore_patterns("__pycache__"))
    Path(purelib, "simval_src.pth").write_text(str(target) + "\n")
    return f"copy {target / 'simval'}"


# ----------------------------------------------------------------------------- probing

_PROBE = r"""
import importlib.metadata as md, json, sys
wanted, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {"python_version": ".".join(map(str, sys.version_info[:3])), "prefix": sys.prefix,
       "versions": {}, "import_error": None, "heavy": []}
for dist in wanted:
    try:
        out["versions"][dist] = md.version(dist)
    except md.PackageNotFoundError:
        pass
out["freeze"] = sorted({f"{d.metadata['Name']}=={d.version}" for d in md.distributions()
                        if d.metadata["Name"]}, key=str.lower)
try:
    import simval.envs.worker, simval.calibrate, simval.kit.crds_cache, simval.atomic
    import jwst, crds, stdatamodels
    out["simval_file"] = simval.__file__
except Exception as err:
    out["import_error"] = f"{type(err).__name__}: {err}"
out["heavy"] = sorted(m for m in heavy if m in sys.modules)
print("SIMVAL-PROBE " + json.dumps(out))
"""


def probe(python: str | os.PathLike, timeout_s: float = 300) -> dict:
    """What an interpreter holds: python_version, prefix, versions of
    :data:`VERSION_DISTS`, freeze (name==version of every distribution), and whether the
    worker's import path imports there (``import_error``, ``heavy`` modules it pulled)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run([str(python), "-I", "-c", _PROBE, json.dumps(VERSION_DISTS),
                           json.dumps(HEAVY_MODULES)], capture_output=True, text=True,
                          timeout=timeout_s, env=env, cwd=os.path.expanduser("~"))
    for line in proc.stdout.splitlines():
        if line.startswith("SIMVAL-PROBE "):
            return json.loads(line.removeprefix("SIMVAL-PROBE "))
    raise EnvError(f"{python} could not be probed (exit {proc.returncode}):\n"
                   f"{_tail(proc.stderr or proc.stdout)}")


def _check_probe(info: dict, where: str) -> None:
    if info["import_error"]:
        raise EnvError(f"{where}: the worker does not import: {info['import_error']}")
    if info["heavy"]:
        raise EnvError(f"{where}: the worker's import path pulled {', '.join(info['heavy'])} "
                       "(simval.envs.worker must import only the pipeline and light modules)")


def dir_size(path: Path) -> int:
    """Bytes of the files under ``path`` (symbolic links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def _now() -> str:
    return now_utc()


# ----------------------------------------------------------------------------- public API

def create_env(spec: str, name: str | None = None, python: str | None = None, *,
               extra: Sequence[str] = (), registry: EnvRegistry | None = None,
               installer: str | None = None, timeout_s: float | None = INSTALL_TIMEOUT_S,
               known_pins: bool = True, echo: Callable[[str], None] | None = None
               ) -> EnvRecord:
    """Make and register an environment holding the jwst release ``spec``.

    Parameters
    ----------
    spec : a jwst requirement (:func:`parse_spec`), e.g. ``"jwst==1.20.2"``.
    name : environment name; default ``jwst-<version>`` for an exact pin.
    python : interpreter (path or name on PATH) to base it on; default this one.
    extra : further requirements resolved together with jwst (e.g. ``"numpy<2.3"``).
    known_pins : also add :func:`known_constraints` (recorded in the record's ``extra``).
    registry : where (default: :func:`~simval.envs.registry.default_env_dir`).
    installer : ``"uv"``, ``"pip"``, or None for uv when on PATH.
    echo : called with each line of installer output (progress display).

    Returns the registered record. Raises :class:`EnvCreateError` (the environment
    directory removed, nothing registered) if any step fails.
    """
    parsed = parse_spec(spec)
    name = check_name(name or parsed.default_name())
    if known_pins:
        extra = [*extra, *known_constraints(parsed, extra)]
    reg = registry or EnvRegistry()
    base_python = _resolve_python(python)
    tool = Installer.choose(installer)
    path = reg.env_path(name)
    with reg.locked(name):
        if name in reg.load():
            raise EnvError(f"environment {name!r} already exists ({reg.get(name).path}); "
                           f"`simval env remove {name}` first or choose another --name")
        if path.exists():
            if (path / "pyvenv.cfg").is_file() or not any(path.iterdir()):
                shutil.rmtree(path)  # left over by an interrupted create
            else:
                raise EnvError(f"{path} exists and is not an environment simval made; "
                               "remove it or choose another --name")
        log = _Log(reg.log_path(name))
        t0 = time.perf_counter()
        try:
            log.run(tool.venv_command(path, base_python), "making the virtual environment",
                    timeout_s, echo)
            py = env_python(path)
            log.run(tool.install_command(py, [parsed.requirement, *WORKER_REQUIREMENTS,
                                              *extra]),
                    f"installing {parsed.requirement}", timeout_s, echo)
            simval_install = _install_simval(tool, py, log, timeout_s, echo)
            freeze = log.run(tool.freeze_command(py), "pip freeze", 600).splitlines()
            info = probe(py)
            _check_probe(info, f"environment {name}")
        except BaseException as err:
            shutil.rmtree(path, ignore_errors=True)
            if isinstance(err, _StepFailedError):
                raise EnvCreateError(
                    f"could not create environment {name!r} for {parsed.requirement}: "
                    f"{err.what} ({tool.kind}) {err.how}; last lines:\n{_tail(err.output)}\n"
                    f"(full log: {log.path}; nothing was registered)") from None
            if isinstance(err, Exception):
                raise EnvCreateError(
                    f"could not create environment {name!r} for {parsed.requirement}: "
                    f"{err} (full log: {log.path}; nothing was registered)") from err
            raise
        seconds = time.perf_counter() - t0
        record = EnvRecord(
            name=name, path=str(path), python=str(py),
            python_version=info["python_version"], spec=parsed.requirement,
            extra=list(extra), managed=True, installer=tool.kind, created_utc=_now(),
            create_seconds=round(seconds, 1), size_bytes=dir_size(path),
            versions=info["versions"], freeze=[ln for ln in freeze if ln.strip()],
            simval_install=simval_install)
        reg.add(record)
    return record


def register_env(name: str, python: str, *, registry: EnvRegistry | None = None,
                 replace: bool = False) -> EnvRecord:
    """Register an existing interpreter (e.g. the current venv) as environment ``name``.

    The interpreter must import the worker (simval installed there, e.g. with
    ``pip install --no-deps -e <simval checkout>``). ``remove`` only unregisters it.
    """
    check_name(name)
    reg = registry or EnvRegistry()
    py = Path(_resolve_python(python))
    info = probe(py)
    _check_probe(info, f"{py}")
    record = EnvRecord(
        name=name, path=info["prefix"], python=str(py), python_version=info["python_version"],
        spec=f"jwst=={info['versions']['jwst']}" if "jwst" in info["versions"] else "",
        managed=False, installer="registered", created_utc=_now(),
        versions=info["versions"], freeze=info["freeze"],
        simval_install=str(Path(info.get("simval_file", "")).parent))
    reg.add(record, replace=replace)
    return record


def remove_env(name: str, *, registry: EnvRegistry | None = None) -> EnvRecord:
    """Unregister ``name`` and, if simval created it, delete its directory."""
    reg = registry or EnvRegistry()
    with reg.locked(name):
        record = reg.remove(name)
        if record.managed:
            path = Path(record.path)
            if path.resolve().parent == reg.root.resolve():
                shutil.rmtree(path, ignore_errors=True)
    return record
