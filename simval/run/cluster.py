"""A batch-system cluster for a run: SLURM through dask-jobqueue's ``SLURMCluster``.

``simval run SCENARIO --cluster slurm`` submits ``jobs`` batch jobs with ``sbatch``; each
job runs ``cores`` single-threaded Dask worker processes (one stage at a time each: a stage
redirects its process's output to its log and measures its process's memory) that
connect back to a scheduler in the ``simval run`` process. Options come from a cluster
YAML (``--cluster-config FILE``, every key below, validated: an error names the file and
the field) and from command-line flags, which win::

    kind: slurm                     # the only kind for now
    queue: compute                  # partition (#SBATCH -p); default: the cluster's default
    account: myproject              # #SBATCH -A
    cores: 2                        # per job = worker processes per job
    memory: 16GB                    # per job (#SBATCH --mem); default: cores x the run's
                                    # largest stage declaration (simval.run.stage_memory)
    walltime: "02:00:00"            # per job (#SBATCH -t)
    jobs: 4                         # number of jobs
    job_extra_directives: ["--qos=normal", "--constraint=skylake"]   # more #SBATCH lines
    python: /shared/simval/.venv/bin/python          # default: this process's python
    job_script_prologue: ["source /shared/simval/.venv/bin/activate"]
    interface: ib0                  # network interface of scheduler and workers
    log_directory: /shared/logs     # job stdout/stderr; default RUN_DIR/logs/slurm
    local_directory: /tmp           # worker scratch
    worker_start_timeout_s: 600     # how long to wait for the first worker

Network: the scheduler and the workers listen on ``interface`` (default ``lo``: loopback,
right for a single-node SLURM; a multi-node cluster needs the interface the nodes share,
e.g. ``ib0`` or ``eth0``), so nothing guesses the machine's address by probing a public
one. Workers have no Dask memory limit (the pipeline's arrays are not Dask data: a limit
would only pause or kill a worker in a big step), no dashboard, run as non-daemonic
processes (MIRAGE's fork server is a child of the worker) and advertise ``MEMORY`` = the
job's memory / cores as a Dask resource, against which each stage's declaration is
scheduled. The run directory and the kit must be on a file system every node sees at the
same path.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from simval.atomic import write_text
from simval.run.graph import RunSetupError

#: Cluster kinds ``--cluster`` accepts.
CLUSTER_KINDS = ("slurm",)
#: The smallest memory a job is given by default (bytes).
MIN_JOB_MEMORY = 2 * 2**30
_WALLTIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$|^\d+-\d+$")
#: Variables Dask's nanny sets (``None``: leaves out) before it starts a worker process
#: (``distributed.nanny.pre-spawn-environ``). Dask sets ``MALLOC_TRIM_THRESHOLD_=65536`` to
#: hand freed memory back to the OS; setting it at all also turns off glibc's adaptive mmap
#: threshold, so every large numpy temporary is mapped and page-faulted afresh. Measured
#: on full-frame stages (``benchmarks/concurrency_ceiling.py --dask-environ``): MIRAGE
#: 4 % and calwebb_detector1 12 % slower. simval's workers set no Dask memory limit (each
#: stage declares its memory instead), so they do without it.
WORKER_PRE_SPAWN_ENVIRON: dict[str, str | None] = {"MALLOC_TRIM_THRESHOLD_": None}
#: Environment of every worker job: workers are non-daemonic processes, so that a stage
#: may start its own (MIRAGE's fork server); the nanny's pre-spawn environment as above
#: (a dict literal: Dask reads ``DASK_*`` values with ``ast.literal_eval``).
WORKER_ENVIRONMENT = {"DASK_DISTRIBUTED__WORKER__DAEMON": "False",
                      "DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON":
                          repr(WORKER_PRE_SPAWN_ENVIRON)}


class ClusterConfigError(RunSetupError):
    """A cluster option is invalid (the message names the file or flag and the field)."""


def parse_memory(value: str | int | float) -> int:
    """Bytes from ``16GB``, ``4 GiB``, ``512MB`` or a number of bytes."""
    from dask.utils import parse_bytes

    if isinstance(value, bool):
        raise ValueError("expected a size such as 16GB")
    if isinstance(value, int | float):
        n = int(value)
    else:
        try:
            n = int(parse_bytes(value.strip()))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError("expected a size such as 16GB") from exc
    if n <= 0:
        raise ValueError("expected a positive size such as 16GB")
    return n


def _sbatch_option(value: str) -> str:
    d = value.strip()
    d = d[len("#SBATCH"):].strip() if d.upper().startswith("#SBATCH") else d
    if not d.startswith("-"):
        raise ValueError("expected an sbatch option such as --qos=normal")
    return d


#: One extra ``#SBATCH`` directive (``--qos=normal``; a leading ``#SBATCH`` is dropped).
SbatchOption = Annotated[str, AfterValidator(_sbatch_option)]


class SlurmOptions(BaseModel):
    """Options of ``--cluster slurm`` (module docstring): per job ``cores`` worker
    processes of one thread each and ``memory`` (bytes or a size string), ``jobs`` jobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["slurm"] = "slurm"
    queue: str | None = None
    account: str | None = None
    cores: int = Field(1, ge=1, le=1024)
    memory: int | None = None
    walltime: str = "01:00:00"
    jobs: int = Field(1, ge=1, le=10000)
    job_extra_directives: list[SbatchOption] = Field(default_factory=list)
    python: str | None = None
    job_script_prologue: list[str] = Field(default_factory=list)
    interface: str = "lo"
    log_directory: str | None = None
    local_directory: str | None = None
    worker_start_timeout_s: float = Field(300.0, gt=0)

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> int | None:
        return None if v is None else parse_memory(v)

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, v: str) -> str:
        if not _WALLTIME.match(v.strip()):
            raise ValueError("expected SLURM's time format (MM, HH:MM:SS, D-HH:MM:SS)")
        return v.strip()

    def job_memory(self, stage_memory: int) -> int:
        """Memory of one job, bytes: ``memory``, or ``cores`` x the run's largest stage
        declaration (at least :data:`MIN_JOB_MEMORY`)."""
        if self.memory is not None:
            return self.memory
        return max(MIN_JOB_MEMORY, self.cores * int(stage_memory))

    def worker_memory(self, stage_memory: int) -> int:
        """Memory each worker process advertises (its ``MEMORY`` resource), bytes."""
        return self.job_memory(stage_memory) // self.cores


def _messages(exc: ValidationError, where: str) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {field}: {msg} (got {err.get('input')!r})"
                     if err["type"] != "missing" else f"{where}: {field}: {msg}")
    return "\n".join(lines)


def load_cluster_config(path: str | Path) -> dict[str, Any]:
    """The mapping in a cluster YAML file (validated later with the flags)."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise ClusterConfigError(f"{p}: cannot read the cluster config ({exc})") from exc
    except yaml.YAMLError as exc:
        raise ClusterConfigError(f"{p}: not valid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ClusterConfigError(f"{p}: expected a mapping of cluster options (queue, "
                                 f"cores, memory, ...), got {type(data).__name__}")
    return dict(data)


def cluster_options(kind: str | None, config_file: str | Path | None = None,
                    overrides: Mapping[str, Any] | None = None,
                    flag_names: Mapping[str, str] | None = None) -> SlurmOptions | None:
    """The cluster to run on: ``None`` (no cluster asked for) or validated
    :class:`SlurmOptions` from ``config_file`` with ``overrides`` (field -> value from
    flags; ``None`` and empty lists are ignored) on top. Errors name the file and field,
    or the flag (``flag_names``: field -> flag; default ``--field-name``)."""
    flags = {k: v for k, v in (overrides or {}).items() if v is not None and v != []}
    names_of = {k: (flag_names or {}).get(k, "--" + k.replace("_", "-")) for k in flags}
    if kind is None and config_file is None:
        if flags:
            names = ", ".join(sorted(names_of.values()))
            raise ClusterConfigError(f"{names}: cluster options need --cluster slurm or "
                                     "--cluster-config FILE")
        return None
    if kind is not None and kind not in CLUSTER_KINDS:
        raise ClusterConfigError(f"--cluster: {kind!r} is not supported; choose from "
                                 f"{', '.join(CLUSTER_KINDS)}")
    data = load_cluster_config(config_file) if config_file is not None else {}
    if kind is not None and data.get("kind", kind) != kind:
        raise ClusterConfigError(f"{config_file}: kind: {data['kind']!r} but --cluster "
                                 f"{kind}")
    try:
        SlurmOptions.model_validate(data)
    except ValidationError as exc:
        raise ClusterConfigError(_messages(exc, str(config_file))) from None
    try:
        return SlurmOptions.model_validate({**data, **flags})
    except ValidationError as exc:
        msg = _messages(exc, "command line")
        for name, flag in names_of.items():
            msg = msg.replace(f"command line: {name}:", f"{flag}:")
        raise ClusterConfigError(msg) from None


def slurm_kwargs(options: SlurmOptions, *, stage_memory: int,
                 log_directory: str | Path) -> dict[str, Any]:
    """Keyword arguments of ``dask_jobqueue.SLURMCluster`` for ``options`` (module
    docstring): ``cores`` single-threaded worker processes per job, each advertising
    ``MEMORY`` = job memory / cores, no Dask memory limit, no dashboard, non-daemonic."""
    prologue = [f"export {k}={shlex.quote(v)}" for k, v in WORKER_ENVIRONMENT.items()]
    prologue += list(options.job_script_prologue)
    extra_args = ["--resources", f"MEMORY={options.worker_memory(stage_memory)}",
                  "--memory-limit", "0",  # after jobqueue's own --memory-limit: it wins
                  "--no-dashboard"]
    return {
        "queue": options.queue, "account": options.account, "cores": options.cores,
        "processes": options.cores, "memory": str(options.job_memory(stage_memory)),
        "walltime": options.walltime,
        "job_extra_directives": list(options.job_extra_directives),
        "python": options.python or sys.executable, "job_script_prologue": prologue,
        "interface": options.interface,
        "log_directory": str(options.log_directory or log_directory),
        "local_directory": options.local_directory, "worker_extra_args": extra_args,
        # the scheduler's HTTP server (no dashboard) on a free loopback port
        "scheduler_options": {"dashboard_address": "127.0.0.1:0", "dashboard": False},
        "job_name": "simval-worker", "silence_logs": "error",
    }


def slurm_cluster(options: SlurmOptions, *, stage_memory: int, log_directory: str | Path):
    """A ``dask_jobqueue.SLURMCluster`` (:func:`slurm_kwargs`) with ``options.jobs`` jobs
    submitted (workers join when SLURM starts them). ``stage_memory``: the run's largest
    stage declaration, bytes (default job memory); ``log_directory``: job logs unless the
    options name one."""
    from dask_jobqueue import SLURMCluster

    kwargs = slurm_kwargs(options, stage_memory=stage_memory, log_directory=log_directory)
    Path(kwargs["log_directory"]).mkdir(parents=True, exist_ok=True)
    try:
        cluster = SLURMCluster(**kwargs)
    except (ValueError, OSError) as exc:
        raise ClusterConfigError(f"--cluster slurm: cannot start the scheduler ({exc})"
                                 ) from exc
    try:
        check_job_script(cluster.job_script())
        cluster.scale(jobs=options.jobs)
    except BaseException:
        cluster.close()
        raise
    return cluster


def check_job_script(script: str) -> None:
    """Ask ``sbatch --test-only`` whether SLURM would accept the worker job (partition,
    account, memory, time limit, directives) before submitting any; a refusal raises
    :class:`ClusterConfigError` with sbatch's reason."""
    import shutil
    import subprocess
    import tempfile

    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise ClusterConfigError("--cluster slurm: no `sbatch` on PATH (run on a machine "
                                 "that can submit SLURM jobs)")
    with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="simval-worker-") as fh:
        fh.write(script)
        fh.flush()
        proc = subprocess.run([sbatch, "--test-only", fh.name], capture_output=True,
                              text=True, timeout=60)
    if proc.returncode != 0:
        reason = (proc.stderr or proc.stdout).strip()
        raise ClusterConfigError(f"--cluster slurm: sbatch refuses the worker job: {reason}")


def describe(options: SlurmOptions, cluster, *, stage_memory: int,
             log_directory: str | Path) -> dict[str, Any]:
    """What the manifest's ``execution`` records of a SLURM cluster; the job script is
    written beside the job logs (``job-script.sh``) and named by its path."""
    script = Path(options.log_directory or log_directory) / "job-script.sh"
    write_text(script, cluster.job_script())
    return {"scheduler": "SLURMCluster", "workers": options.jobs * options.cores,
            "threads_per_worker": 1, "jobs": options.jobs,
            "cores_per_job": options.cores,
            "job_memory_mb": round(options.job_memory(stage_memory) / 2**20),
            "queue": options.queue, "walltime": options.walltime,
            "job_script": str(script)}
