"""Keep third-party libraries off the network unless the user configured a real service.

Known traps (see docs/offline.md):

- ``import pysiaf`` runs ``requests.get(<github PRD page>)`` with no timeout to compare PRD
  versions (pysiaf/__init__.py, pysiaf 0.29). Offline it fails fast, but where DNS hangs it
  hangs. :func:`import_pysiaf` imports it with ``requests.get`` refusing for the duration of
  the import; pysiaf catches the error and logs a warning.
- astropy downloads IERS tables and cached data on demand; :func:`configure` turns that off.
"""

from __future__ import annotations

import functools
import sys
import types


def configure() -> None:
    """Turn off astropy's on-demand downloads (IERS tables, remote data)."""
    from astropy.utils import data, iers

    iers.conf.auto_download = False
    iers.conf.auto_max_age = None
    data.conf.allow_internet = False


def import_pysiaf() -> types.ModuleType:
    """Import pysiaf without its PRD-version check reaching the network."""
    if "pysiaf" in sys.modules:
        return sys.modules["pysiaf"]
    import logging

    import requests

    def _refuse(*args, **kwargs):
        raise requests.ConnectionError("simval: pysiaf PRD version check skipped (offline)")

    original = requests.get
    requests.get = _refuse
    level = logging.getLogger("pysiaf").level
    logging.getLogger("pysiaf").setLevel(logging.ERROR)
    try:
        import pysiaf
    finally:
        requests.get = original
        logging.getLogger("pysiaf").setLevel(level)
    return pysiaf


@functools.cache
def nircam_siaf():
    """pysiaf's NIRCam SIAF (loaded once per process, imported offline)."""
    return import_pysiaf().Siaf("NIRCam")


@functools.cache
def miri_siaf():
    """pysiaf's MIRI SIAF (loaded once per process, imported offline)."""
    return import_pysiaf().Siaf("MIRI")


def siaf_aperture(name: str):
    """A NIRCam or MIRI SIAF aperture by name (``NRCB1_SUB400P``, ``MIRIM_SUB256``)."""
    return (miri_siaf() if name.upper().startswith("MIR") else nircam_siaf())[name]


def siaf_rotations() -> types.ModuleType:
    """``pysiaf.utils.rotations`` (attitude matrices), imported offline."""
    import_pysiaf()
    from pysiaf.utils import rotations

    return rotations
