"""Atomic file writes: a file appears under its final name complete, or not at all."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path with ``path``'s file name; move it to ``path`` on success.

    The temporary file lives in a hidden directory beside ``path`` (same file system, so the
    final move is an atomic rename) and has the final file name, because libraries record
    it (stdatamodels writes FILENAME). On any exception nothing appears at ``path``.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    try:
        tmp = tmpdir / final.name
        yield tmp
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


@functools.cache
def _pinned_date_class(cls: type, date: str) -> type:
    # stdatamodels' documented hook for "modify the model just before saving" is on_save in
    # a subclass; the jwst models' on_save stamps meta.date with the wall clock.
    def on_save(self, init=None):
        cls.on_save(self, init)
        self.meta.date = date

    return type(cls.__name__, (cls,), {"on_save": on_save, "__qualname__": cls.__qualname__})


_PINNED_DATE: contextvars.ContextVar[str | None] = contextvars.ContextVar("pinned", default=None)


@contextlib.contextmanager
def reproducible(date: str) -> Iterator[None]:
    """Within this block, files saved by :func:`save_model` carry ``date`` (ISO) as their
    creation date and asdf history entries carry it as their time (``SOURCE_DATE_EPOCH``,
    which asdf honours), so the same content gives the same bytes."""
    from astropy.time import Time

    token = _PINNED_DATE.set(date)
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(int(Time(date).unix))
    try:
        yield
    finally:
        _PINNED_DATE.reset(token)
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old


def save_model(model, path: str | os.PathLike, *, date: str | None = None) -> Path:
    """Save a stdatamodels model (FITS or ASDF by suffix) atomically; return the path.

    ``date`` (ISO time; default: the one set by :func:`reproducible`, else the library
    stamps the wall clock) pins ``meta.date`` so that the same content gives the same bytes.
    """
    date = date or _PINNED_DATE.get()
    if date is not None:
        pinned = _pinned_date_class(type(model), date)(model)
        model = pinned
    with atomic_path(path) as tmp:
        model.save(str(tmp))
    return Path(path)
