"""Readers of mock-galaxy catalogs: DREaM-style and JAGUAR files into a SourceCatalog.

The readers live in :mod:`~simval.catalogs.readers.dream` and
:mod:`~simval.catalogs.readers.jaguar`, what they share in
:mod:`~simval.catalogs.readers.options` (:class:`ReadOptions`, :class:`Field`) and
:mod:`~simval.catalogs.readers.pipeline`; the streamed file access in :mod:`simval.catalogs.io`,
the cosmology in :mod:`simval.catalogs.cosmology`. The names below are importable from here.

Both readers stream the file (Parquet in record batches, FITS through a memory map, in
chunks of ``chunk_rows``), keep only the rows near the field and brighter than the
magnitude limit, and convert only those: a 10^7-row file costs one pass over the position
and magnitude columns (``benchmarks/catalog_read.py``). Everything is vectorised numpy.

Conventions of the result (:class:`simval.catalogs.SourceCatalog`): RA/Dec in deg (ICRS),
AB magnitudes ``mag_<band>``, ``radius`` = half-light radius along the major axis in arcsec,
``axis_ratio`` = b/a, ``ellipticity`` = 1 - b/a, ``pos_angle`` = position angle of the major
axis in deg East of North, folded into [0, 180), ``sersic_index``, ``redshift`` (galaxies) and
``source_id`` (the file's own id). ``index`` numbers stars 1..N and galaxies N+1..N+M (MIRAGE's
rule). A magnitude of NaN means "not in this band" (see :meth:`SourceCatalog.for_band`).

Positions. ``positions: offsets`` (the DREaM default) means the file's RA/Dec are angular
coordinates about ``origin`` (default (0, 0) deg) and are moved onto the scenario's pointing by
the rigid rotation of the sphere that takes ``origin`` to the pointing with North kept up
there. It is computed as a gnomonic projection about ``origin`` followed by the inverse
projection about the pointing (the two compose to exactly that rotation: distances and
position angles between sources are preserved); it equals astropy's
``SkyCoord(origin).spherical_offsets_by``-style ``SkyOffsetFrame`` transformation to 1e-9 deg
(``tests/test_catalog_readers.py``). Position angles need no change. ``positions: absolute``
(JAGUAR, generic) uses RA/Dec as they are.

Bad input is never silently changed: a missing column, an unreadable file, a NaN position,
an absurd magnitude (outside [0, 45] AB and not a |m| >= 90 "no data" marker), a non-positive
size or redshift, an axis ratio outside (0, 1], a Sersic index outside (0, 10] or duplicate
ids raise :class:`~simval.catalogs.CatalogError` naming the file, the column and what was
expected; rows removed on purpose (off the field, fainter than the limit, no magnitude in a
band) are counted in ``meta['drops']`` and logged on the ``simval.catalogs`` logger.
"""

from __future__ import annotations

from simval.catalogs.cosmology import (
    DEFAULT_COSMOLOGY,
    angular_diameter_distance_mpc,
    get_cosmology,
    kpc_to_arcsec,
)
from simval.catalogs.io import DEFAULT_CHUNK_ROWS, open_table
from simval.catalogs.readers.dream import DREAM_COLUMNS, dream_columns, read_dream
from simval.catalogs.readers.jaguar import JAGUAR_COLUMNS, jaguar_columns, read_jaguar
from simval.catalogs.readers.options import Field, ReadOptions
from simval.catalogs.readers.pipeline import MAG_RANGE, MAG_SENTINEL, SERSIC_MAX, checked_magnitudes
from simval.constants import AB_ZEROPOINT_NJY as AB_NJY_ZEROPOINT
from simval.sky import angular_distance_deg, move_offsets

__all__ = ["AB_NJY_ZEROPOINT", "DEFAULT_CHUNK_ROWS", "DEFAULT_COSMOLOGY", "DREAM_COLUMNS",
           "JAGUAR_COLUMNS", "MAG_RANGE", "MAG_SENTINEL", "SERSIC_MAX", "Field", "ReadOptions",
           "angular_diameter_distance_mpc", "angular_distance_deg", "checked_magnitudes",
           "dream_columns", "get_cosmology", "jaguar_columns", "kpc_to_arcsec", "move_offsets",
           "open_table", "read_dream", "read_jaguar"]
