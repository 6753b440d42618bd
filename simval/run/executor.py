"""Execute a run's stages with dask.distributed futures.

Cluster
-------
By default a ``LocalCluster`` of worker *processes* with one thread each; the number of
workers is ``--workers`` or what CPUs and memory allow (:func:`worker_shares`: the
machine's memory less :data:`CLIENT_RESERVE_BYTES`, shared so that the run's largest
stage fits one worker and its bulk stages as many as possible). Workers are started
with the ``spawn`` method (a fresh interpreter: nothing of the client's imported state,
CRDS caches or logging configuration is inherited), as non-daemonic processes (MIRAGE's
fork server is a child of the worker; a jwst step asked to use several cores may start
its own), without a Dask memory limit (the pipeline's arrays are not Dask-managed memory;
a limit would only make the nanny pause or kill a big step) and without a dashboard.
``--scheduler ADDRESS`` connects to an existing cluster instead, and ``--cluster slurm``
starts one through SLURM (:mod:`simval.run.cluster`): their workers must run the same
environment and see the run directory and the kit at the same paths (a shared file
system), since stages read and write files there.

Memory
------
Every worker advertises its memory as the Dask resource ``MEMORY`` (bytes: its share of
the machine on a LocalCluster, the shares adding up to the budget; the job's memory /
cores on SLURM; ``--resources MEMORY=...`` on an external worker) and every stage is
submitted with ``resources={"MEMORY": declared}`` (:mod:`simval.run.stage_memory`), so a
worker never runs stages whose declarations add up to more than it has, and the local
workers together never more than the machine has. A declaration larger than every worker's
memory is lowered to the largest worker's (the stage runs alone there instead of waiting
forever). Workers that advertise no ``MEMORY`` (an external cluster started without it)
get stages without resource restrictions.

A worker that dies mid-stage (killed, out of memory, node lost): its stage is run once
more on another worker (``distributed.scheduler.allowed-failures`` = 1 on the clusters
simval starts); if that worker dies too, Dask gives up with ``KilledWorker`` and the stage
gets a ``failed`` record. Stages write their files atomically and their ``complete``
record last, so a stage interrupted mid-write never leaves a file that a record vouches
for: the next run does it again.

Graph
-----
One ``client.submit(execute_stage, spec, *upstream_futures)`` per stage, in dependency
order: catalog -> per exposure simulate -> detector1 -> image2 -> per filter image3 (after
that filter's image2s). Dask runs independent exposures in parallel, among the stages
ready on a worker the one with the longest expected chain to the end of the run first
(``priority``: :func:`~simval.run.stage_time.critical_path_priorities`), so the largest
mosaic's inputs are calibrated first and its calwebb_image3 overlaps the rest; each task returns a
:class:`~simval.run.records.StageOutcome` (a failure inside a stage is an outcome, not an
exception; stages downstream of it return ``blocked``). Exceptions Dask itself raises (a
worker killed mid-stage, say) are turned into the same outcomes here, with a ``failed``
record written by the client.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simval.atomic import write_text
from simval.layout import RunLayout
from simval.run.cluster import (
    WORKER_PRE_SPAWN_ENVIRON,
    SlurmOptions,
    describe,
    slurm_cluster,
)
from simval.run.graph import RunSetupError
from simval.run.manifest import software_versions
from simval.run.records import (
    BLOCKED,
    FAILED,
    STATUS_COMPLETE,
    StageOutcome,
    StageSpec,
    execute_stage,
    read_record,
    record_failure,
)
from simval.run.stage_memory import MemoryProfile, declared_memory
from simval.run.stage_time import critical_path_priorities
from simval.simulate.mirage_backend import start_in_background

log = logging.getLogger(__name__)

#: Memory a worker needs when nothing else is known (bytes; a SUB400P simulation's peak).
BYTES_PER_WORKER = 2.5 * 2**30
#: Memory kept for the ``simval run`` process itself and the scheduler (bytes).
CLIENT_RESERVE_BYTES = 2**30
POLL_INTERVAL_S = 0.5
#: Times a stage is started again after the worker running it died.
WORKER_DEATH_RETRIES = 1
#: How long to wait for the first worker of an external scheduler, s.
EXTERNAL_WORKER_TIMEOUT_S = 60.0
#: The Dask resource workers advertise and stages request (bytes).
MEMORY = "MEMORY"


def memory_budget() -> int:
    """Memory the workers of a LocalCluster may use together, bytes: the machine's total
    less :data:`CLIENT_RESERVE_BYTES`."""
    import psutil

    return max(int(psutil.virtual_memory().total) - CLIENT_RESERVE_BYTES, 2**30)


def worker_shares(profile: MemoryProfile, *, workers: int | None = None,
                  budget: int | None = None, cpus: int | None = None) -> list[int]:
    """``MEMORY`` of each local worker, bytes. The shares add up to at most ``budget``
    (default :func:`memory_budget`), so the workers together never overcommit the machine
    while each keeps within its own.

    Equal shares for ``cpus`` workers when each can hold the largest declaration.
    Otherwise one worker gets the largest (at most the budget) and the rest is shared
    equally by as many more workers (up to ``cpus - 1``) as can each hold the bulk
    declaration (a COSMOS-Web-like run on 2 cores and 23.5 GiB: 17.1 GiB for the mosaics,
    5.5 GiB for the 5.1 GiB simulations), or, if none can, by one more worker for
    whatever fits there. ``workers`` given: that many, equal shares if they can hold the
    largest declaration, else the largest on the first and the rest shared.
    """
    budget = int(budget or memory_budget())
    cpus = int(cpus or os.cpu_count() or 1)
    big = max(1, min(profile.largest, budget))
    n = workers if workers is not None else cpus
    if budget // n >= big or n == 1:
        return [budget // n] * n
    rest = budget - big
    if workers is not None:
        return [big] + [rest // (n - 1)] * (n - 1)
    bulk = max(1, min(profile.bulk, big))
    more = min(cpus - 1, rest // bulk)
    if more > 0:
        return [big] + [rest // more] * more
    if rest >= max(profile.smallest, 1):
        return [big, rest]
    return [budget]


def default_workers(profile: MemoryProfile | None = None) -> int:
    """Local workers for a run of this memory :class:`~simval.run.stage_memory.MemoryProfile`
    (:func:`worker_shares`; default: every stage :data:`BYTES_PER_WORKER`): as many as
    the CPUs, fewer when memory cannot hold that many of the run's stages."""
    return len(worker_shares(profile or MemoryProfile.uniform(BYTES_PER_WORKER)))


@dataclass(frozen=True)
class Execution:
    """How a run was executed (for the manifest): ``worker_memory_mb`` is each worker's
    ``MEMORY`` resource (None: not advertised); ``details`` more facts of the cluster."""

    scheduler: str
    workers: int
    threads_per_worker: int | None
    worker_memory_mb: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler, "workers": self.workers,
                "threads_per_worker": self.threads_per_worker,
                "worker_memory_mb": self.worker_memory_mb, **self.details}


def _cluster_config() -> dict[str, Any]:
    return {"distributed.worker.multiprocessing-method": "spawn",
            "distributed.worker.daemon": False,
            **{f"distributed.nanny.pre-spawn-environ.{k}": v
               for k, v in WORKER_PRE_SPAWN_ENVIRON.items()},
            "distributed.scheduler.work-stealing": True,
            "distributed.scheduler.allowed-failures": WORKER_DEATH_RETRIES}


def worker_memory(client) -> dict[str, int]:
    """``{worker address: MEMORY resource, bytes}`` of the workers that advertise one."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    return {addr: int(w["resources"][MEMORY]) for addr, w in workers.items()
            if MEMORY in (w.get("resources") or {})}


def _execution(client, scheduler: str, details: Mapping[str, Any] | None = None
               ) -> Execution:
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    threads = {w.get("nthreads") for w in workers.values()}
    memory = worker_memory(client)
    return Execution(scheduler, len(workers), threads.pop() if len(threads) == 1 else None,
                     round(max(memory.values()) / 2**20) if memory else None,
                     dict(details or {}))


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None,
                processes: bool = True, *, cluster: SlurmOptions | None = None,
                memory: MemoryProfile | None = None, budget_bytes: int | None = None,
                threads_per_worker: int = 1,
                log_directory: str | os.PathLike | None = None
                ) -> Iterator[tuple[Any, Execution]]:
    """A ``distributed.Client`` (module docstring): to ``scheduler`` if given, else to a new
    SLURM cluster if ``cluster`` is given, else to a new LocalCluster.

    memory : the run's declarations (local worker count and shares, SLURM job memory;
        default: every stage :data:`BYTES_PER_WORKER`). budget_bytes : what the local
        workers share (default :func:`memory_budget`). log_directory : SLURM job logs.
        ``processes=False`` (threads in this process) and ``threads_per_worker`` > 1 are
        for tests: stages in threads of one process would share its output redirection
        and memory measure.
    """
    import dask
    from distributed import Client, LocalCluster

    profile = memory or MemoryProfile.uniform(BYTES_PER_WORKER)
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s", set_as_default=False)
        except OSError as exc:
            raise RunSetupError(f"--scheduler {scheduler}: cannot connect ({exc})") from exc
        try:
            try:
                client.wait_for_workers(1, timeout=EXTERNAL_WORKER_TIMEOUT_S)
            except TimeoutError as exc:
                raise RunSetupError(f"--scheduler {scheduler}: no worker connected within "
                                    f"{EXTERNAL_WORKER_TIMEOUT_S:.0f} s") from exc
            yield client, _execution(client, scheduler)
        finally:
            client.close()
        return
    with dask.config.set(_cluster_config()):
        if cluster is not None:
            with _slurm_client(cluster, profile.largest, log_directory) as found:
                yield found
            return
        shares = worker_shares(profile, workers=workers, budget=budget_bytes)
        # host 127.0.0.1: listen on loopback only (and never let distributed guess the
        # machine's address, which it does by "connecting" a UDP socket to 8.8.8.8).
        local = LocalCluster(n_workers=0, threads_per_worker=threads_per_worker,
                             processes=processes, protocol="tcp://", host="127.0.0.1",
                             memory_limit=0, dashboard_address=None,
                             # no dashboard; the scheduler's HTTP server on a free port
                             scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                             silence_logs=logging.ERROR)
        try:
            for share in shares:  # one spec per worker: each its own MEMORY
                ((name, spec),) = local.new_worker_spec().items()
                spec = copy.deepcopy(spec)
                spec["options"] = {**spec["options"], "resources": {MEMORY: share}}
                local.worker_spec[name] = spec
            local.scale(len(shares))
            client = Client(local, set_as_default=False)
        except BaseException:
            local.close()
            raise
        try:
            client.wait_for_workers(len(shares))
            yield client, Execution(
                "LocalCluster", len(shares), threads_per_worker,
                round(max(shares) / 2**20),
                {} if len(set(shares)) == 1 else
                {"worker_shares_mb": [round(x / 2**20) for x in shares]})
        finally:
            client.close()
            local.close()


@contextlib.contextmanager
def _slurm_client(options: SlurmOptions, largest: int,
                  log_directory: str | os.PathLike | None
                  ) -> Iterator[tuple[Any, Execution]]:
    """A client of a new SLURM cluster (:mod:`simval.run.cluster`) once a worker joined."""
    from distributed import Client

    logs = log_directory or os.path.join(os.getcwd(), "slurm-logs")
    slurm = slurm_cluster(options, stage_memory=largest, log_directory=logs)
    try:
        client = Client(slurm, set_as_default=False)
        try:
            try:
                client.wait_for_workers(1, timeout=options.worker_start_timeout_s)
            except TimeoutError as exc:
                raise RunSetupError(
                    f"--cluster slurm: no worker joined within "
                    f"{options.worker_start_timeout_s:.0f} s: see `squeue` (jobs still "
                    f"pending?) and the job logs in {options.log_directory or logs} (a "
                    f"worker that cannot reach the scheduler on interface "
                    f"{options.interface!r} exits: set interface)") from exc
            yield client, _execution(client, "SLURMCluster", describe(
                options, slurm, stage_memory=largest, log_directory=logs))
        finally:
            client.close()
    finally:
        slurm.close()


def _identity() -> dict[str, Any]:
    """Where a worker runs (executed on the worker)."""
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID")}


def worker_processes(client) -> dict[str, Any]:
    """``{worker address: {host, pid, slurm_job_id, memory_mb}}`` of the live workers
    (a stage record's ``host`` and ``pid`` name the worker that ran it)."""
    try:
        found = client.run(_identity)
        memory = worker_memory(client)
    except Exception as exc:  # a dying worker must not fail the run's bookkeeping
        return {"error": f"{type(exc).__name__}: {exc}"}
    for addr, info in found.items():
        info["memory_mb"] = round(memory[addr] / 2**20) if addr in memory else None
    return found


def worker_versions(client) -> dict[str, Any]:
    """Software versions of every worker (``{address: versions}``)."""

    try:
        return client.run(software_versions)
    except Exception as exc:  # a dying worker must not fail the run's bookkeeping
        return {"error": f"{type(exc).__name__}: {exc}"}


def memory_requests(client, specs: Sequence[StageSpec],
                    memory: Mapping[str, int] | None = None) -> dict[str, int]:
    """``MEMORY`` each stage asks of its worker, bytes: its declaration, lowered to the
    largest worker's ``MEMORY`` (else it would wait forever); empty when no worker
    advertises ``MEMORY`` (stages then run unrestricted)."""
    declared = dict(memory) if memory is not None else declared_memory(specs)
    sizes = worker_memory(client)
    if not sizes:
        return {}
    largest = max(sizes.values())
    out = {}
    for spec in specs:
        need = int(declared.get(spec.stage_id, 0))
        if need > largest:
            log.warning("stage %s declares %.0f MiB, more than any worker has (%.0f MiB): "
                        "it runs alone on the largest worker", spec.stage_id, need / 2**20,
                        largest / 2**20)
            need = largest
        out[spec.stage_id] = need
    return out


def warm_up_simulators(client, specs: Sequence[StageSpec], layout: RunLayout) -> bool:
    """Have every worker start its MIRAGE fork server now
    (:func:`~simval.simulate.mirage_backend.start_in_background`) when some MIRAGE simulate
    stage has no complete record (a resumed run whose exposures are all done starts none). ``True``
    if asked."""
    if not any(s.kind == "simulate" and "mirage_exposure" in s.params
               and not _recorded_complete(layout, s.stage_id) for s in specs):
        return False
    client.run(start_in_background)
    return True


def _recorded_complete(layout: RunLayout, stage_id: str) -> bool:
    record = read_record(layout, stage_id)
    return record is not None and record.status == STATUS_COMPLETE


def run_graph(client, specs: Sequence[StageSpec], layout: RunLayout,
              on_done: Callable[[StageOutcome], None] | None = None,
              on_poll: Callable[[list[str]], None] | None = None,
              finished: Mapping[str, StageOutcome] | None = None,
              memory: Mapping[str, int] | None = None,
              seconds: Mapping[str, float] | None = None) -> dict[str, StageOutcome]:
    """Submit every stage (dependencies as futures, memory as a resource, the longest
    chain first: module docstring) and collect the outcomes; ``finished``: outcomes of
    upstream stages that are not part of ``specs`` (an evaluation of a run whose
    calibration ended earlier); ``memory``: declarations, bytes (default
    :func:`~simval.run.stage_memory.declared_memory`); ``seconds``: expected stage times
    (default :func:`~simval.run.stage_time.declared_seconds`)."""
    from distributed import as_completed

    done = dict(finished or {})
    warm_up_simulators(client, specs, layout)
    futures: dict[str, Any] = {}
    by_key: dict[str, StageSpec] = {}
    token = uuid.uuid4().hex[:8]  # a key Dask has seen before would return the old result
    requests = memory_requests(client, specs, memory)
    priorities = critical_path_priorities(specs, seconds)
    for spec in specs:
        missing = [s for s in spec.upstream if s not in futures and s not in done]
        if missing:
            raise ValueError(f"stage {spec.stage_id} submitted before {missing}")
        args = [futures[s] if s in futures else done[s] for s in spec.upstream]
        need = requests.get(spec.stage_id)
        fut = client.submit(execute_stage, spec, *args,
                            key=f"{spec.kind}-{spec.stage_id}-{token}", retries=0,
                            priority=priorities[spec.stage_id],
                            resources=None if need is None else {MEMORY: need})
        futures[spec.stage_id] = fut
        by_key[fut.key] = spec
    outcomes: dict[str, StageOutcome] = {}
    erred: dict[str, BaseException] = {}
    pending = set(futures)
    done_iter = as_completed(list(futures.values()), loop=client.loop)
    try:
        while not done_iter.is_empty():
            for fut in done_iter.next_batch(block=False):
                spec = by_key[fut.key]
                pending.discard(spec.stage_id)
                if fut.status == "finished":
                    outcomes[spec.stage_id] = fut.result()
                    if on_done:
                        on_done(outcomes[spec.stage_id])
                else:
                    erred[spec.stage_id] = fut.exception()
            if on_poll:
                on_poll(sorted(pending))
            time.sleep(POLL_INTERVAL_S)
    except BaseException:
        client.cancel(list(futures.values()), force=True)
        raise
    for spec in specs:  # exceptions Dask raised: failed at the source, blocked below it
        if spec.stage_id not in erred:
            continue
        bad = [s for s in spec.upstream if s in outcomes and not outcomes[s].ok]
        if bad:
            up = outcomes.get(bad[0])
            culprit = up.blocked_by if up is not None and up.status == BLOCKED else bad[0]
            outcome = StageOutcome(spec.stage_id, spec.kind, BLOCKED, blocked_by=culprit)
        else:
            exc = erred[spec.stage_id]
            error = f"{type(exc).__name__}: {exc}"
            tb = layout.traceback(spec.stage_id)
            write_text(tb, "".join(traceback.format_exception(exc)))
            record_failure(spec, layout, error, tb)
            outcome = StageOutcome(spec.stage_id, spec.kind, FAILED, error=error)
        outcomes[spec.stage_id] = outcome
        if on_done:
            on_done(outcome)
    return {s.stage_id: outcomes[s.stage_id] for s in specs}
