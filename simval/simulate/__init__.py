"""Simulator backends: each turns an exposure description into raw ramps plus truth.

:mod:`~simval.simulate.mirage_inputs`
    :class:`MirageExposure`, :class:`MirageReferences` and the checks of MIRAGE's inputs.
:mod:`~simval.simulate.mirage_yaml`
    :func:`write_mirage_yaml`: the MIRAGE input yaml of one exposure.
:mod:`~simval.simulate.mirage_catalogs`
    MIRAGE point-source and galaxy catalogs from astropy Tables; truth-list readers.
:mod:`~simval.simulate.mirage_backend`
    :func:`run_mirage` (isolated child process, atomic outputs, fixed file date),
    :func:`simulate_exposure`.

Nothing here imports MIRAGE in the calling process (importing MIRAGE reconfigures the root
logger); MIRAGE runs only in the child started by :func:`run_mirage`. The names below are
imported lazily so that ``python -m simval.simulate.mirage_backend`` (the child) does not
find its own module already imported by this package.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "MirageError": "mirage_backend",
    "MirageOutputs": "mirage_backend",
    "run_mirage": "mirage_backend",
    "simulate_exposure": "mirage_backend",
    "read_galaxy_list": "mirage_catalogs",
    "read_mirage_catalog": "mirage_catalogs",
    "read_point_source_list": "mirage_catalogs",
    "write_catalogs": "mirage_catalogs",
    "REFFILES_KEYS": "mirage_inputs",
    "MirageExposure": "mirage_inputs",
    "MirageReferences": "mirage_inputs",
    "write_mirage_yaml": "mirage_yaml",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
