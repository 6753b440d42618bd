"""Execute a run's stages with dask.distributed futures.

Cluster
-------
By default a ``LocalCluster`` of worker *processes* with one thread each; the number of
workers is ``--workers`` or ``min(cpu count, memory / 1.5 GB)`` (a SUB400P exposure needs
~1 GB in MIRAGE's child plus the worker). Workers are started with the ``spawn`` method
(a fresh interpreter: nothing of the client's imported state, CRDS caches or logging
configuration is inherited), as non-daemonic processes (so a jwst step asked to use
several cores may start its own), without a memory limit (the pipeline's arrays are not
Dask-managed memory; a limit would only make the nanny kill a big step) and without a
dashboard. ``--scheduler ADDRESS`` connects to an existing cluster instead: its workers
must run the same environment and see the run directory and the kit at the same paths (a
shared file system), since stages read and write files there.

Graph
-----
One ``client.submit(execute_stage, spec, *upstream_futures)`` per stage, in dependency
order: catalog -> per exposure simulate -> detector1 -> image2 -> per filter image3 (after
that filter's image2s). Dask runs independent exposures in parallel; each task returns a
:class:`~simval.run.records.StageOutcome` (a failure inside a stage is an outcome, not an
exception; stages downstream of it return ``blocked``). Exceptions Dask itself raises (a
worker killed mid-stage, say) are turned into the same outcomes here, with a ``failed``
record written by the client.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simval.atomic import write_text
from simval.layout import RunLayout
from simval.run.graph import RunSetupError
from simval.run.manifest import software_versions
from simval.run.records import (
    BLOCKED,
    FAILED,
    StageOutcome,
    StageSpec,
    execute_stage,
    record_failure,
)

BYTES_PER_WORKER = 1.5e9
POLL_INTERVAL_S = 0.5


def default_workers() -> int:
    """``min(cpu count, total memory / 1.5 GB)``, at least 1."""
    cpus = os.cpu_count() or 1
    try:
        import psutil

        by_memory = int(psutil.virtual_memory().total // BYTES_PER_WORKER)
    except ImportError:  # pragma: no cover
        by_memory = cpus
    return max(1, min(cpus, by_memory))


@dataclass(frozen=True)
class Execution:
    """How a run was executed (for the manifest)."""

    scheduler: str
    workers: int
    threads_per_worker: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler, "workers": self.workers,
                "threads_per_worker": self.threads_per_worker}


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None,
                processes: bool = True) -> Iterator[tuple[Any, Execution]]:
    """A ``distributed.Client``: to ``scheduler`` if given, else to a new LocalCluster
    (module docstring). ``processes=False`` (threads in this process) is for tests."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s", set_as_default=False)
        except OSError as exc:
            raise RunSetupError(f"--scheduler {scheduler}: cannot connect ({exc})") from exc
        try:
            info = client.scheduler_info()
            workers_info = info.get("workers", {})
            threads = {w.get("nthreads") for w in workers_info.values()}
            yield client, Execution(scheduler, len(workers_info),
                                    threads.pop() if len(threads) == 1 else None)
        finally:
            client.close()
        return
    n = workers or default_workers()
    config = {"distributed.worker.multiprocessing-method": "spawn",
              "distributed.worker.daemon": False,
              "distributed.scheduler.work-stealing": True}
    with dask.config.set(config):
        # host 127.0.0.1: listen on loopback only (and never let distributed guess the
        # machine's address, which it does by "connecting" a UDP socket to 8.8.8.8).
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                               protocol="tcp://", host="127.0.0.1", memory_limit=0,
                               dashboard_address=None,
                               silence_logs=logging.ERROR)
        client = Client(cluster, set_as_default=False)
        try:
            yield client, Execution("LocalCluster", n, 1)
        finally:
            client.close()
            cluster.close()


def worker_versions(client) -> dict[str, Any]:
    """Software versions of every worker (``{address: versions}``)."""

    try:
        return client.run(software_versions)
    except Exception as exc:  # a dying worker must not fail the run's bookkeeping
        return {"error": f"{type(exc).__name__}: {exc}"}


def run_graph(client, specs: Sequence[StageSpec], layout: RunLayout,
              on_done: Callable[[StageOutcome], None] | None = None,
              on_poll: Callable[[list[str]], None] | None = None,
              finished: Mapping[str, StageOutcome] | None = None) -> dict[str, StageOutcome]:
    """Submit every stage (dependencies as futures) and collect the outcomes;
    ``finished``: outcomes of upstream stages that are not part of ``specs`` (an
    evaluation of a run whose calibration ended earlier)."""
    from distributed import as_completed

    done = dict(finished or {})
    futures: dict[str, Any] = {}
    by_key: dict[str, StageSpec] = {}
    token = uuid.uuid4().hex[:8]  # a key Dask has seen before would return the old result
    for spec in specs:
        missing = [s for s in spec.upstream if s not in futures and s not in done]
        if missing:
            raise ValueError(f"stage {spec.stage_id} submitted before {missing}")
        args = [futures[s] if s in futures else done[s] for s in spec.upstream]
        fut = client.submit(execute_stage, spec, *args,
                            key=f"{spec.kind}-{spec.stage_id}-{token}", retries=0)
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
