"""Catalog files as streams of column chunks: Parquet, FITS tables, and anything astropy reads.

:func:`open_table` gives a :class:`TableStream` of a file: Parquet in record batches and
FITS binary tables in row blocks of ``chunk_rows`` rows (bounded memory for 10^7-row
files), any other format astropy reads as one chunk. Chunks are ``{column: ndarray}`` of the
requested columns, in native byte order, masked values as NaN. Unreadable files raise
:class:`~simval.catalogs.CatalogError` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simval.catalogs.model import CatalogError

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["DEFAULT_CHUNK_ROWS", "MemoryTableStream", "TableStream", "open_table"]

DEFAULT_CHUNK_ROWS = 500_000


class TableStream:
    """A table file read in chunks of ``chunk_rows`` rows (only the requested columns)."""

    def __init__(self, path: Path, what: str, chunk_rows: int = DEFAULT_CHUNK_ROWS):
        self.path = path
        self.what = what
        self.chunk_rows = chunk_rows
        self.n_rows = 0

    @property
    def columns(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def chunks(self, columns: list[str]) -> Iterator[dict[str, np.ndarray]]:
        raise NotImplementedError  # pragma: no cover


class MemoryTableStream(TableStream):
    """An astropy Table already in memory: one chunk."""

    def __init__(self, table: Table, path: Path, what: str):
        super().__init__(path, what)
        self.table = table
        self.n_rows = len(table)

    @property
    def columns(self) -> list[str]:
        return list(self.table.colnames)

    def chunks(self, columns: list[str]) -> Iterator[dict[str, np.ndarray]]:
        yield {c: _plain(self.table[c]) for c in columns}


class _ParquetStream(TableStream):
    def __init__(self, path: Path, what: str, chunk_rows: int = DEFAULT_CHUNK_ROWS):
        super().__init__(path, what, chunk_rows)
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
            raise CatalogError(f"{path}: reading Parquet needs pyarrow, which is not "
                               "installed (pip install pyarrow), or convert the file to FITS "
                               "or ECSV") from exc
        try:
            # No pre-buffering and no reader threads: with them pyarrow keeps several row
            # groups in memory at once (measured: +740 MB instead of +210 MB for 10^7 rows).
            self._file = pq.ParquetFile(path, pre_buffer=False)
        except Exception as exc:
            raise CatalogError(f"{path}: not a readable Parquet table ({exc})") from exc
        self.n_rows = self._file.metadata.num_rows

    @property
    def columns(self):
        return list(self._file.schema_arrow.names)

    def chunks(self, columns):
        for batch in self._file.iter_batches(batch_size=self.chunk_rows, columns=columns,
                                             use_threads=False):
            yield {c: _arrow_numpy(batch.column(i)) for i, c in enumerate(columns)}


class _FitsStream(TableStream):
    def __init__(self, path: Path, what: str, chunk_rows: int = DEFAULT_CHUNK_ROWS):
        super().__init__(path, what, chunk_rows)
        from astropy.io import fits

        try:
            self._hdul = fits.open(path, memmap=True)
        except Exception as exc:
            raise CatalogError(f"{path}: not a readable FITS file ({exc})") from exc
        tables = [h for h in self._hdul if isinstance(h, fits.BinTableHDU | fits.TableHDU)]
        if not tables:
            raise CatalogError(f"{path}: no table extension (a catalog needs a FITS binary table)")
        self._hdu = tables[0]
        self.n_rows = int(self._hdu.header.get("NAXIS2", 0))

    @property
    def columns(self):
        return list(self._hdu.columns.names)

    def _raw_dtype(self) -> np.dtype | None:
        """Big-endian record dtype when the rows can be read as plain bytes (no scaling,
        null values or variable-length arrays), else None."""
        cols = self._hdu.columns
        if any(c.bscale not in (None, 1) or c.bzero not in (None, 0) or c.null is not None
               or "P" in str(c.format).upper() or "Q" in str(c.format).upper() for c in cols):
            return None
        dtype = np.dtype(cols.dtype).newbyteorder(">")
        return dtype if dtype.itemsize == int(self._hdu.header.get("NAXIS1", -1)) else None

    def chunks(self, columns):
        chunk_rows = self.chunk_rows
        dtype = self._raw_dtype()
        if dtype is None:   # scaled or special columns: astropy's memory-mapped FITS_rec
            data = self._hdu.data
            for start in range(0, self.n_rows, chunk_rows):
                part = data[start:start + chunk_rows]
                yield {c: _plain(part[c]) for c in columns}
            return
        # Plain binary table: read row blocks from the file (bounded memory; a memory map
        # would keep every touched page resident: +670 MB for a 640 MB file).
        offset = int(self._hdu.fileinfo()["datLoc"])
        with open(self.path, "rb") as f:
            for start in range(0, self.n_rows, chunk_rows):
                n = min(chunk_rows, self.n_rows - start)
                f.seek(offset + start * dtype.itemsize)
                rec = np.fromfile(f, dtype=dtype, count=n)
                yield {c: _plain(rec[c]) for c in columns}


def _plain(values) -> np.ndarray:
    arr = np.asarray(values)
    if np.ma.isMaskedArray(values):
        m = np.ma.getmaskarray(values)
        if arr.dtype.kind == "f":
            arr = np.where(m, np.nan, arr)
        elif m.any() and arr.dtype.kind in "iub":
            arr = np.where(m, np.nan, arr.astype(float))
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _arrow_numpy(col) -> np.ndarray:
    import pyarrow as pa

    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        if col.null_count:
            return np.asarray(col.to_numpy(zero_copy_only=False), dtype=float)
        return col.to_numpy(zero_copy_only=False)
    return np.asarray(col.to_pylist(), dtype=object)


def open_table(path: str | os.PathLike, what: str = "catalog",
               chunk_rows: int = DEFAULT_CHUNK_ROWS) -> TableStream:
    """A streamed view of ``path`` (Parquet and FITS in chunks of ``chunk_rows`` rows, or
    anything astropy reads whole)."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{what}: file not found: {path}")
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return _ParquetStream(path, what, chunk_rows)
    if name.endswith((".fits", ".fit")):
        return _FitsStream(path, what, chunk_rows)
    from astropy.table import Table

    try:
        table = Table.read(path)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CatalogError(f"{what}: cannot read {path} as a table ({type(exc).__name__}: "
                           f"{first}); expected ECSV, FITS, Parquet or another format astropy "
                           "reads") from exc
    return MemoryTableStream(table, path, what)
