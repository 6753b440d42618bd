"""``simval env ...``: create, register, list, show, remove and run pipeline environments."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from simval.console import console, err_console
from simval.envs.create import create_env, register_env, remove_env
from simval.envs.registry import EnvError, EnvRegistry
from simval.envs.runner import run_in_env
from simval.kit.crds_cache import SERVERLESS_URL


def _registry(args):
    return EnvRegistry(args.env_dir)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.0f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


def _guarded(func):
    """Print an environment error without a traceback (exit 1)."""

    def wrapper(args) -> int:
        try:
            return func(args)
        except EnvError as err:
            err_console.print(f"[bold red]error:[/] {err}", highlight=False, markup=True)
            return 1

    wrapper.__name__ = func.__name__
    return wrapper


@_guarded
def cmd_env_create(args) -> int:
    reg = _registry(args)
    echo = None
    if args.verbose:
        def echo(line: str) -> None:
            err_console.print(line, markup=False, highlight=False)
    with err_console.status(f"creating environment for {args.spec} in {reg.root} "
                            "(installer output: logs/) ..."):
        record = create_env(args.spec, args.name, args.python, extra=args.with_ or (),
                            registry=reg, installer=args.installer,
                            known_pins=not args.no_known_pins, echo=echo)
    v = record.versions
    console.print(f"[bold green]created[/] {record.name}: jwst {v.get('jwst')}, crds "
                  f"{v.get('crds')}, stcal {v.get('stcal')}, stdatamodels "
                  f"{v.get('stdatamodels')}, stpipe {v.get('stpipe')} (python "
                  f"{record.python_version}; {record.installer}; {record.create_seconds:.0f} s;"
                  f" {_size(record.size_bytes)})\n  {record.path}"
                  + (f"\n  with {', '.join(record.extra)}" if record.extra else ""),
                  highlight=False)
    return 0


@_guarded
def cmd_env_register(args) -> int:
    record = register_env(args.name, args.python, registry=_registry(args),
                          replace=args.replace)
    console.print(f"registered {record.name}: {record.python} (jwst "
                  f"{record.versions.get('jwst', '?')}, simval from {record.simval_install})",
                  highlight=False)
    return 0


@_guarded
def cmd_env_list(args) -> int:
    from rich.table import Table

    reg = _registry(args)
    records = reg.load()
    if args.json:
        console.print_json(json.dumps({n: r.as_dict() for n, r in records.items()}))
        return 0
    table = Table(title=f"pipeline environments in {reg.root}")
    for col in ("name", "jwst", "crds", "stcal", "stdatamodels", "python", "size"):
        table.add_column(col)
    for name, r in records.items():
        v = r.versions
        table.add_row(name, v.get("jwst", "-"), v.get("crds", "-"), v.get("stcal", "-"),
                      v.get("stdatamodels", "-"), r.python_version,
                      _size(r.size_bytes) if r.managed else "(registered)")
    console.print(table)
    if not records:
        console.print("no environments: `simval env create jwst==X.Y.Z`")
    return 0


@_guarded
def cmd_env_show(args) -> int:
    record = _registry(args).get(args.name)
    doc = record.as_dict()
    if not args.freeze:
        doc["freeze"] = f"{len(record.freeze)} lines (--freeze to print them)"
    console.print_json(json.dumps(doc))
    return 0


@_guarded
def cmd_env_remove(args) -> int:
    record = remove_env(args.name, registry=_registry(args))
    what = f"deleted {record.path}" if record.managed else "unregistered (files left alone)"
    console.print(f"removed {record.name}: {what}", highlight=False)
    return 0


def _crds_env_from_args(args) -> dict[str, str]:
    path, context = args.crds_path, args.context
    if args.from_run is not None:
        manifest = Path(args.from_run) / "manifest.json"
        if not manifest.is_file():
            raise EnvError(f"--from-run {args.from_run}: no manifest.json there")
        crds = json.loads(manifest.read_text()).get("crds", {})
        path = path or crds.get("path")
        context = context or crds.get("context")
    if not path or not context:
        raise EnvError("give the CRDS cache: --from-run RUN_DIR, or --crds-path and --context")
    env = {"CRDS_PATH": str(path), "CRDS_CONTEXT": str(context),
           "CRDS_SERVER_URL": SERVERLESS_URL, "CRDS_MODE": "local"}
    config = Path(path) / "config" / "jwst"
    if config.is_dir():
        env["CRDS_CONFIG_URI"] = str(config)
    return env


@_guarded
def cmd_env_run(args) -> int:
    params = json.loads(args.params) if args.params else {}
    out_dir = Path(args.out_dir)
    log = Path(args.log) if args.log else out_dir / f"{args.kind}.log"
    result = run_in_env(args.name, args.kind, args.input, out_dir, _crds_env_from_args(args),
                        log, params, registry=_registry(args), check=False)
    doc = {k: v for k, v in result.raw.items()} or {"status": result.status,
                                                   "error": result.error}
    doc["wall_s"] = result.wall_s
    doc["log"] = str(log)
    console.print_json(json.dumps(doc, default=str))
    if not result.ok:
        err_console.print(f"[bold red]failed:[/] {result.error}", highlight=False)
        return 1
    return 0


def add_env_parser(sub) -> argparse.ArgumentParser:
    """Add ``env`` and its subcommands to the ``simval`` subparsers ``sub``."""
    env = sub.add_parser(
        "env", help="isolated pipeline environments (another jwst release)",
        description="Virtual environments holding one jwst release each (with the "
                    "dependencies the package index resolves for it, and simval itself "
                    "without dependencies), to run calibrate stages with that release. "
                    "Kept under --env-dir (default $SIMVAL_ENV_DIR or the user data dir).")
    env_sub = env.add_subparsers(dest="env_command", required=True)

    def common(p):
        p.add_argument("--env-dir", type=Path, default=None,
                       help="environment directory (default: $SIMVAL_ENV_DIR or "
                            "<user data dir>/simval/envs)")

    c = env_sub.add_parser("create", help="make an environment for a jwst release")
    c.add_argument("spec", help="jwst requirement, e.g. jwst==1.20.2")
    c.add_argument("--name", default=None, help="environment name (default jwst-X.Y.Z)")
    c.add_argument("--python", default=None,
                   help="interpreter to base it on (default: the one running simval)")
    c.add_argument("--with", dest="with_", action="append", metavar="REQ",
                   help="another requirement resolved together with jwst (repeatable)")
    c.add_argument("--installer", choices=("uv", "pip"), default=None,
                   help="default: uv when on PATH, else venv + pip")
    c.add_argument("--no-known-pins", action="store_true",
                   help="do not add the pins known to be needed by older releases "
                        "(e.g. photutils<3 for jwst<2.0)")
    c.add_argument("-v", "--verbose", action="store_true", help="print installer output")
    common(c)
    c.set_defaults(func=cmd_env_create)

    r = env_sub.add_parser("register", help="register an existing interpreter as an "
                                            "environment (simval must be importable there)")
    r.add_argument("name")
    r.add_argument("--python", required=True, help="path of the interpreter")
    r.add_argument("--replace", action="store_true", help="replace a record of that name")
    common(r)
    r.set_defaults(func=cmd_env_register)

    ls = env_sub.add_parser("list", help="registered environments")
    ls.add_argument("--json", action="store_true")
    common(ls)
    ls.set_defaults(func=cmd_env_list)

    s = env_sub.add_parser("show", help="one environment's record (JSON)")
    s.add_argument("name")
    s.add_argument("--freeze", action="store_true", help="include the full pip freeze")
    common(s)
    s.set_defaults(func=cmd_env_show)

    rm = env_sub.add_parser("remove", help="unregister (and delete what simval created)")
    rm.add_argument("name")
    common(rm)
    rm.set_defaults(func=cmd_env_remove)

    run = env_sub.add_parser("run", help="run one calibrate call in an environment")
    run.add_argument("name")
    run.add_argument("kind", choices=("detector1", "image2", "image3"))
    run.add_argument("input", type=Path, help="uncal (detector1), rate (image2) or "
                                              "association (image3)")
    run.add_argument("-o", "--out-dir", required=True, type=Path)
    run.add_argument("--from-run", type=Path, default=None, metavar="RUN_DIR",
                     help="take the CRDS cache and context from a run's manifest.json")
    run.add_argument("--crds-path", default=None, help="CRDS_PATH (a kit's crds/ directory)")
    run.add_argument("--context", default=None, help="CRDS context, e.g. jwst_0001.pmap")
    run.add_argument("--params", default=None, help='step parameters as JSON, e.g. '
                                                    '\'{"jump": {"skip": true}}\'')
    run.add_argument("--log", default=None, help="log file (default OUT_DIR/KIND.log)")
    common(run)
    run.set_defaults(func=cmd_env_run)
    return env
