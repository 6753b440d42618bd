"""Where everything lives inside a kit directory.

::

    <kit root>/                         one kit = one seed and kit version
      kit.json                          registry: files with sha256, contexts
      crds/                             CRDS_PATH
        config/jwst/server_config
        config/jwst/ref_cache_subdir_mode
        mappings/jwst/*.pmap *.imap *.rmap
        references/jwst/nircam/*.fits *.asdf
      mirage_data/                      MIRAGE_DATA
        nircam/gridded_psf_library/*.fits
        nircam/gridded_psf_library/psf_wings/*.fits
        nircam/darks/linearized/<DET>/<SUBARRAY>/*.fits
        nircam/cosmic_ray_library/*.fits

The default parent is the user's cache directory (``platformdirs``), overridden by the
``SIMVAL_KIT_DIR`` environment variable or an explicit argument.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

ENV_KIT_DIR = "SIMVAL_KIT_DIR"


def default_kit_parent() -> Path:
    """Directory holding kits: ``$SIMVAL_KIT_DIR`` or the user cache dir."""
    env = os.environ.get(ENV_KIT_DIR)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("simval")) / "kits"


@dataclass(frozen=True)
class KitLayout:
    """Paths inside one kit directory (see module docstring)."""

    root: Path
    #: The instrument whose references the kit holds (``nircam``, ``miri``): one kit, one
    #: instrument, one CRDS cache whose contexts select that instrument only. Default: the
    #: prefix of the kit directory's name (``miri-seed1-v1``), else ``nircam``.
    instrument: str = ""

    def __post_init__(self) -> None:
        if not self.instrument:
            prefix = Path(self.root).name.partition("-seed")[0]
            object.__setattr__(self, "instrument", prefix if prefix in ("nircam", "miri")
                               else "nircam")

    @classmethod
    def for_seed(cls, seed: int, version: int, parent: str | os.PathLike | None = None,
                 instrument: str = "nircam", prefix: str | None = None):
        """``<parent>/<prefix>-seed<seed>-v<version>``; the prefix defaults to the
        instrument (a NIRCam coronagraphy kit is ``nircam_coron``)."""
        base = Path(parent).expanduser() if parent is not None else default_kit_parent()
        base = base.resolve()
        return cls(base / f"{prefix or instrument}-seed{seed}-v{version}", instrument)

    @property
    def registry(self) -> Path:
        return self.root / "kit.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def crds_path(self) -> Path:
        return self.root / "crds"

    @property
    def crds_config(self) -> Path:
        return self.crds_path / "config" / "jwst"

    @property
    def mappings(self) -> Path:
        return self.crds_path / "mappings" / "jwst"

    @property
    def references(self) -> Path:
        return self.crds_path / "references" / "jwst" / self.instrument

    @property
    def mirage_data(self) -> Path:
        return self.root / "mirage_data"

    @property
    def psf_library(self) -> Path:
        return self.mirage_data / "nircam" / "gridded_psf_library"

    @property
    def psf_wings(self) -> Path:
        return self.psf_library / "psf_wings"

    def darks(self, detector: str, subarray: str) -> Path:
        """One directory per detector and readout window: with NINTS > 1 MIRAGE draws its
        darks at random from every file in the dark's directory."""
        return (self.mirage_data / "nircam" / "darks" / "linearized" / detector.upper()
                / subarray.upper())

    @property
    def cosmic_rays(self) -> Path:
        return self.mirage_data / "nircam" / "cosmic_ray_library"
