"""Wall time and peak memory of one stage, measured in the process that runs it.

Peak memory is the peak resident set size (RSS) of the stage's process, in MiB:

- on Linux the kernel's high-water mark ``VmHWM`` is reset at the start of the stage
  (``/proc/self/clear_refs`` <- ``5``) and read at the end, so short spikes count and the
  peaks of earlier stages in the same (Dask worker) process do not;
- elsewhere, a thread samples the RSS every 50 ms (``psutil``).

Child processes (MIRAGE runs in one) are sampled by the same thread (their RSS summed with
the parent's); a stage can also report a child's own peak (:meth:`Usage.add_child_peak`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
SAMPLE_INTERVAL_S = 0.05


def _vm_hwm_mb() -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Usage:
    """What :func:`measure` found: ``wall_s`` (s), ``peak_rss_mb`` (MiB, the stage's process
    or process tree, whichever is larger) and ``method``."""

    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    method: str = ""
    _children_mb: list[float] = field(default_factory=list)

    def add_child_peak(self, mb: float | None) -> None:
        """Report the peak RSS (MiB) a child process measured itself."""
        if mb is not None:
            self._children_mb.append(float(mb))


class _Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="simval-rss-sampler", daemon=True)
        self.stop = threading.Event()
        self.peak_self = 0.0
        self.peak_tree = 0.0

    def run(self) -> None:
        try:
            import psutil
        except ImportError:  # pragma: no cover - psutil comes with distributed
            return
        proc = psutil.Process()
        while True:
            try:
                own = proc.memory_info().rss
                kids = 0
                for child in proc.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        kids += child.memory_info().rss
                self.peak_self = max(self.peak_self, own / 2**20)
                self.peak_tree = max(self.peak_tree, (own + kids) / 2**20)
            except psutil.Error:
                pass
            if self.stop.wait(SAMPLE_INTERVAL_S):
                return


@contextlib.contextmanager
def measure() -> Iterator[Usage]:
    """Measure the wall time and peak memory of the enclosed block (see module docstring)."""
    usage = Usage()
    hwm = _reset_hwm() and _vm_hwm_mb() is not None
    sampler = _Sampler()
    sampler.start()
    t0 = time.perf_counter()
    try:
        yield usage
    finally:
        usage.wall_s = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join(timeout=1.0)
        own = (_vm_hwm_mb() or 0.0) if hwm else sampler.peak_self
        usage.method = "VmHWM" if hwm else "sampled"
        usage.peak_rss_mb = max([own, sampler.peak_tree, *usage._children_mb])
