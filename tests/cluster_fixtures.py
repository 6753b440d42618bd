"""A real single-node SLURM (Debian's slurm-wlm + munge) and a separately started Dask
scheduler + workers, on localhost, for the cluster tests.

:func:`start_slurm` follows what it took to run SLURM on this machine kind (as root, no
systemd; ``../shared/docs/cluster-facts.md``), everything in one temporary directory and
on loopback: a munge key of 1024 random bytes and ``munged`` run as user ``munge`` with its
own socket, a ``slurm.conf`` naming this host (``hostname -s``, address 127.0.0.1, its CPUs,
90% of its memory as RealMemory, free ports), ``slurmctld`` and ``slurmd`` in the
foreground, up when ``sinfo`` says ``idle``. :func:`stop_slurm` cancels what is queued
and stops the three daemons by their process ids: nothing is left running.

``scripts/install_slurm.sh`` (called by ``scripts/install.sh``) installs the packages as
root; without root the SLURM tests skip, saying so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Daemons and commands the SLURM tests need.
SLURM_PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "squeue", "scancel")
PARTITION = "simval"
#: How long the daemons get to come up / the queue to empty, s.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def slurm_unavailable() -> str | None:
    """Why the SLURM tests cannot run here (``None``: they can). Not root, or the
    packages missing on a machine that cannot install them: a reason to skip. Root with
    apt-get and no SLURM is an installation error, raised; with ``SIMVAL_REQUIRE_SLURM=1``
    (``.ci/run``) any reason is raised: CI must run these tests."""
    missing = [p for p in SLURM_PROGRAMS if _which(p) is None]
    reason = None
    if os.geteuid() != 0:
        reason = ("a SLURM test cluster needs root (munged runs as user munge, slurmd as "
                  "root); run the suite as root after `bash scripts/install_slurm.sh`")
    elif missing and shutil.which("apt-get") is None:
        reason = f"SLURM is not installed ({', '.join(missing)}) and there is no apt-get"
    elif missing:
        raise RuntimeError(f"SLURM programs missing: {', '.join(missing)}; "
                           "`bash scripts/install.sh` (as root) installs slurm-wlm and munge")
    if reason and os.environ.get("SIMVAL_REQUIRE_SLURM") == "1":
        raise RuntimeError(f"SIMVAL_REQUIRE_SLURM=1 but {reason}")
    return reason


@dataclass
class Slurm:
    """A running single-node SLURM: its directory, ``slurm.conf``, node name, partition and
    the daemons' processes (``munged``, ``slurmctld``, ``slurmd``)."""

    root: Path
    conf: Path
    node: str
    partition: str
    cpus: int
    real_memory_mb: int
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """Environment for SLURM's commands (``SLURM_CONF``)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a SLURM command against this cluster."""
        return subprocess.run(list(cmd), env=self.env, capture_output=True, text=True,
                              timeout=30, check=check)

    def node_state(self) -> str:
        out = self.run("sinfo", "-h", "-n", self.node, "-o", "%T", check=False)
        return out.stdout.strip().lower()

    def queued(self) -> list[str]:
        """Ids of the jobs SLURM still knows (pending, running, completing)."""
        out = self.run("squeue", "-h", "-o", "%i", check=False)
        return out.stdout.split()

    def log_tail(self, n: int = 30) -> str:
        parts = []
        for name in ("slurmctld.log", "slurmctld.stderr", "slurmd.log", "slurmd.stderr",
                     "munged.stderr"):
            p = self.root / name
            if p.is_file():
                parts.append(f"--- {name}\n" + "\n".join(p.read_text().splitlines()[-n:]))
        return "\n".join(parts)


def _popen(cmd: list[str], log: Path, **kwargs) -> subprocess.Popen:
    """Start ``cmd`` with its stdout and stderr in ``log`` (the child keeps the file)."""
    with open(log, "w") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True, **kwargs)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _total_memory_mb() -> int:
    import psutil

    return int(psutil.virtual_memory().total // 2**20)


def slurm_conf(root: Path, node: str, cpus: int, real_memory_mb: int, munge_socket: Path,
               ctld_port: int, slurmd_port: int) -> str:
    """The ``slurm.conf`` of the single-node test cluster (cluster-facts.md settings)."""
    return "\n".join([
        "ClusterName=simval-test",
        f"SlurmctldHost={node}(127.0.0.1)",
        f"SlurmctldPort={ctld_port}",
        f"SlurmdPort={slurmd_port}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={munge_socket}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "SchedulerType=sched/backfill",
        "MpiDefault=none",
        "ReturnToService=2",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=30",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'slurmd.log'}",
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={real_memory_mb} "
        "State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


def _start_munge(root: Path) -> tuple[subprocess.Popen, Path]:
    import pwd

    munge = pwd.getpwnam("munge")
    d = root / "munge"
    d.mkdir()
    d.chmod(0o711)  # munged wants its socket's directory searchable by all
    key = d / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    for p in (d, key):
        os.chown(p, munge.pw_uid, munge.pw_gid)
    sock = d / "munge.socket.2"
    proc = _popen(
        ["munged", "--foreground", "--origin=127.0.0.1", f"--key-file={key}",
         f"--socket={sock}", f"--pid-file={d / 'munged.pid'}",
         f"--log-file={d / 'munged.log'}", f"--seed-file={d / 'munged.seed'}"],
        root / "munged.stderr", user=munge.pw_uid, group=munge.pw_gid)
    return proc, sock


def _wait(what: str, ok, timeout: float, slurm: Slurm | None = None) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if ok():
            return
        time.sleep(0.5)
    detail = f"\n{slurm.log_tail()}" if slurm is not None else ""
    raise RuntimeError(f"{what} not reached within {timeout:.0f} s{detail}")


def start_slurm(root: Path) -> Slurm:
    """Start munged, slurmctld and slurmd on this host with everything under ``root``."""
    node = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    real = int(_total_memory_mb() * 0.9)
    for sub in ("state", "spool"):
        (root / sub).mkdir()
    slurm = Slurm(root, root / "slurm.conf", node, PARTITION, cpus, real)
    try:
        munged, sock = _start_munge(root)
        slurm.procs["munged"] = munged
        _wait("munged's socket", sock.exists, START_TIMEOUT_S, slurm)
        slurm.conf.write_text(slurm_conf(root, node, cpus, real, sock, _free_port(),
                                         _free_port()))
        for daemon in ("slurmctld", "slurmd"):
            cmd = [daemon, "-D", "-f", str(slurm.conf)]
            if daemon == "slurmctld":
                cmd.append("-i")  # ignore state from an earlier start (there is none)
            slurm.procs[daemon] = _popen(cmd, root / f"{daemon}.stderr", env=slurm.env)
            if daemon == "slurmctld":
                _wait("slurmctld answering", lambda: slurm.run(
                    "sinfo", "-h", check=False).returncode == 0, START_TIMEOUT_S, slurm)
        _wait(f"node {node} idle", lambda: slurm.node_state() == "idle", START_TIMEOUT_S,
              slurm)
    except BaseException:
        stop_slurm(slurm)
        raise
    return slurm


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def stop_slurm(slurm: Slurm) -> None:
    """Cancel every job, wait for the queue to empty, then stop slurmd, slurmctld and
    munged by their process ids."""
    if "slurmd" in slurm.procs and "slurmctld" in slurm.procs:
        with contextlib.suppress(Exception):
            slurm.run("scancel", "--partition", slurm.partition, check=False)
            _wait("empty queue", lambda: not slurm.queued(), STOP_TIMEOUT_S)
    for name in ("slurmd", "slurmctld", "munged"):
        if name in slurm.procs:
            _stop(slurm.procs[name])


@contextlib.contextmanager
def slurm_on_localhost() -> Iterator[Slurm]:
    """A running SLURM (:func:`start_slurm`) with ``SLURM_CONF`` set in this process for
    the duration (dask-jobqueue calls ``sbatch``/``scancel`` from here); skips the test
    when SLURM cannot run here (:func:`slurm_unavailable`)."""
    reason = slurm_unavailable()
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="simval-slurm-"))
    old = os.environ.get("SLURM_CONF")
    try:
        root.chmod(0o755)
        slurm = start_slurm(root)  # stops what it started if it fails
        os.environ["SLURM_CONF"] = str(slurm.conf)
        try:
            yield slurm
        finally:
            stop_slurm(slurm)
    finally:
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        shutil.rmtree(root, ignore_errors=True)


# --- a separately started Dask scheduler and workers ---------------------------------------

@dataclass
class ExternalDask:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1: ``address`` of the
    scheduler, the processes, and each worker's ``MEMORY`` (bytes)."""

    address: str
    procs: list[subprocess.Popen]
    worker_memory: int


#: Environment of the external workers: non-daemonic (MIRAGE's fork server is a child).
WORKER_ENV = {"DASK_DISTRIBUTED__WORKER__DAEMON": "False"}


@contextlib.contextmanager
def external_dask(n_workers: int, worker_memory: int, logs: Path) -> Iterator[ExternalDask]:
    """Start ``dask scheduler`` and ``n_workers`` ``dask worker`` processes (one thread,
    ``--resources MEMORY=worker_memory``, no memory limit, no dashboard) on 127.0.0.1 and
    wait until every worker has joined; stop them by their process ids at the end."""
    logs.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, **WORKER_ENV, "PYTHONPATH": str(ROOT),
           "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}
    py = sys.executable
    procs: list[subprocess.Popen] = []
    try:
        procs.append(_popen(
            [py, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
             str(port), "--no-dashboard"], logs / "scheduler.log", cwd=ROOT, env=env))
        for i in range(n_workers):
            procs.append(_popen(
                [py, "-m", "distributed.cli.dask_worker", address, "--host", "127.0.0.1",
                 "--nthreads", "1", "--memory-limit", "0", "--no-dashboard",
                 "--resources", f"MEMORY={worker_memory}", "--name", f"external-{i}"],
                logs / f"worker-{i}.log", cwd=ROOT, env=env))
        from distributed import Client

        with Client(address, timeout="30s", set_as_default=False) as client:
            client.wait_for_workers(n_workers, timeout=START_TIMEOUT_S)
        yield ExternalDask(address, procs, worker_memory)
    finally:
        for p in reversed(procs):
            _stop(p)
