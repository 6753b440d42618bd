"""MIRAGE 2.5.0 input yaml for one NIRCam imaging exposure, with every input explicit.

:func:`write_mirage_yaml` checks the inputs (:func:`~simval.simulate.mirage_inputs.check_inputs`)
and writes the complete parameter dictionary (:func:`mirage_parameters`) of a
:class:`~simval.simulate.mirage_inputs.MirageExposure` and its
:class:`~simval.simulate.mirage_inputs.MirageReferences`: every ``Reffiles`` key MIRAGE reads
is a path or ``None`` (a missing key would become a CRDS query; see
:mod:`simval.simulate.mirage_inputs`), and the random seeds derive from the exposure's one
seed. Those names are importable from here too.

Pointing: MIRAGE's ``Telescope: ra, dec`` are the sky coordinates of the *reference point of
the aperture* named by ``Readout: array_name`` (SIAF ``V2Ref, V3Ref``, e.g. the centre of
``NRCB1_SUB400P``), and ``rotation`` is PA_V3, the position angle (deg East of North) of the
V3 axis at V1, i.e. at (V2, V3) = (0, 0). MIRAGE converts it to the local roll at the
reference point (``compute_local_roll``, as jwst's ``set_telescope_pointing`` does) and builds
``pysiaf.utils.rotations.attitude(V2Ref, V3Ref, ra, dec, local_roll)``; the uncal records
``PA_V3 = rotation`` and ``ROLL_REF = local_roll``. Treating ``rotation`` as the local roll
instead shifts sources by ~0.004 px at 130 px from the reference point (Dec 2 deg).

A ``simval:`` top-level section carries what the runner needs and MIRAGE ignores
(``MIRAGE_DATA``, the CRDS environment, the numpy seed, the fixed file date).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from simval.atomic import write_text
from simval.instruments import nircam
from simval.instruments.nircam import mirage_config_file
from simval.simulate.mirage_inputs import (
    REFFILES_KEYS,
    MirageExposure,
    MirageReferences,
    PathLike,
    absolute_path,
    check_dark,
    check_inputs,
    cosmic_ray_files,
    cosmic_ray_suffix,
    derive_seeds,
    path_or_none,
    psf_library_pattern,
    reffiles_section,
    required_reference,
)

__all__ = [
    "INSTRUMENT",
    "REFFILES_KEYS",
    "MirageExposure",
    "MirageReferences",
    "check_dark",
    "check_inputs",
    "cosmic_ray_files",
    "cosmic_ray_suffix",
    "derive_seeds",
    "dump_parameters",
    "mirage_parameters",
    "psf_library_pattern",
    "read_parameters",
    "reffiles_section",
    "write_mirage_yaml",
]

#: MIRAGE's instrument name.
INSTRUMENT = "NIRCam"


def mirage_parameters(
    exposure: MirageExposure,
    refs: MirageReferences,
    point_source_cat: PathLike | None,
    galaxy_cat: PathLike | None,
    out_dir: PathLike,
) -> dict[str, Any]:
    """The complete MIRAGE parameter dictionary (what :func:`write_mirage_yaml` writes)."""
    out = Path(out_dir).absolute()
    subarrays = nircam.subarray_amplifiers(refs.subarray_defs)
    namp = subarrays.get(exposure.array_name, 4) or 4
    seeds = exposure.seeds
    cr_on = exposure.cosmic_rays and exposure.cosmic_ray_scale > 0
    wings_on = exposure.psf_wings
    if wings_on:
        required_reference(refs.psf_wings, "psf_wings", "PSF wings")
    return {
        # obs_generator.save_DMS reads Inst/PPS_aperture (MIRAGE's own yaml generator writes
        # it under Readout, where nothing reads it, so its files lack APERNAME/PPS_APER).
        "Inst": {"instrument": INSTRUMENT, "mode": "imaging", "use_JWST_pipeline": True,
                 "PPS_aperture": exposure.array_name},
        "Readout": {
            "readpatt": exposure.readpatt, "ngroup": int(exposure.ngroups),
            "nint": int(exposure.nints), "namp": int(namp), "resets_bet_ints": 1,
            "array_name": exposure.array_name, "intermediate_aperture": "None",
            "filter": exposure.filter_name, "pupil": exposure.pupil,
        },
        "Reffiles": reffiles_section(exposure, refs),
        "nonlin": {"limit": 60000.0, "accuracy": 1e-6, "maxiter": 10, "robberto": False},
        "cosmicRay": {
            # MIRAGE needs an existing library even with cosmic rays off: obs_generator's
            # file_check refuses a 'None' path, and any path makes it open all ten files.
            # Off therefore means scale 0 (Poisson mean 0 hits per frame).
            "path": str(required_reference(
                refs.cosmic_ray_library, "cosmicRay/path",
                "every run (MIRAGE opens the library even at scale 0)")),
            "library": exposure.cosmic_ray_library,
            "scale": float(exposure.cosmic_ray_scale) if cr_on else 0.0,
            "suffix": cosmic_ray_suffix(exposure, refs),
            "seed": seeds["cosmic_ray"],
        },
        "simSignals": _sim_signals(exposure, refs, point_source_cat, galaxy_cat, seeds,
                                   wings_on),
        "Telescope": {"ra": float(exposure.ra_deg), "dec": float(exposure.dec_deg),
                      "rotation": float(exposure.pa_v3_deg), "tracking": "sidereal"},
        "Output": _output_section(exposure, out),
        "simval": {
            "base_name": exposure.base_name,
            "mirage_data": str(refs.mirage_data),
            "crds_env": dict(refs.crds_env),
            "numpy_seed": seeds["numpy"],
            "exposure_seed": int(exposure.seed),
            "file_date": exposure.start_isot,
        },
    }


def _sim_signals(exposure: MirageExposure, refs: MirageReferences,
                 point_source_cat: PathLike | None, galaxy_cat: PathLike | None,
                 seeds: dict[str, int], wings_on: bool) -> dict[str, Any]:
    threshold = refs.psf_wing_threshold or mirage_config_file(
        "nircam_psf_wing_rate_thresholds.txt")
    return {
        "pointsource": path_or_none(absolute_path(point_source_cat)),
        "gridded_psf_library_row_padding": 4,
        "psf_wing_threshold_file": str(threshold),
        "add_psf_wings": bool(wings_on),
        "psfpath": str(refs.psf_library),
        "psfwfe": refs.psf_wfe,
        "psfwfegroup": int(refs.psf_wfe_group),
        "galaxyListFile": path_or_none(absolute_path(galaxy_cat)),
        "extended": "None",
        "extendedscale": 1.0,
        "extendedCenter": "1024,1024",
        "PSFConvolveExtended": True,
        "movingTargetList": "None",
        "movingTargetSersic": "None",
        "movingTargetExtended": "None",
        "movingTargetConvolveExtended": True,
        "movingTargetToTrack": "None",
        "tso_imaging_catalog": "None",
        "tso_grism_catalog": "None",
        "zodiacal": "None",
        "zodiscale": 1.0,
        "scattered": "None",
        "scatteredscale": 1.0,
        "bkgdrate": float(exposure.background_adu_s),
        "poissonseed": seeds["poisson"],
        "photonyield": True,
        "pymethod": True,
        "expand_catalog_for_segments": False,
        "use_dateobs_for_background": False,
        # ADU/s: MIRAGE 2.5 compares units with '== [list]' for e/s and MJy/sr, so only the
        # ADU/s (and erg) units are honoured.
        "signal_low_limit_for_segmap": 0.031,
        "signal_low_limit_for_segmap_units": "ADU/sec",
        "add_ghosts": False,
        "PSFConvolveGhosts": False,
    }


def _output_section(exposure: MirageExposure, out: Path) -> dict[str, Any]:
    return {
        "directory": str(out),
        "file": exposure.uncal_name,
        "datatype": "raw",
        "format": "DMS",
        "save_intermediates": False,
        "grism_source_image": False,
        "unsigned": True,
        "dmsOrient": True,
        "program_number": f"{exposure.program:05d}",
        "title": exposure.title,
        "PI_Name": exposure.pi_name,
        "Proposal_category": "GO",
        "Science_category": "Simulation",
        "target_name": exposure.target_name,
        "target_ra": float(exposure.ra_deg),
        "target_dec": float(exposure.dec_deg),
        "observation_number": f"{exposure.observation:03d}",
        "observation_label": exposure.observation_label,
        "visit_number": f"{exposure.visit:03d}",
        "visit_group": f"{exposure.visit_group:02d}",
        "visit_id": exposure.visit_id,
        "sequence_id": str(exposure.sequence),
        "activity_id": exposure.activity_id,
        "exposure_number": f"{exposure.exposure:05d}",
        "obs_id": exposure.obs_id,
        "date_obs": exposure.date_obs,
        "time_obs": exposure.time_obs,
        "primary_dither_type": exposure.primary_dither_type,
        "total_primary_dither_positions": int(exposure.primary_dither_total),
        "primary_dither_position": int(exposure.primary_dither_position),
        "subpix_dither_type": exposure.subpixel_dither_type,
        "total_subpix_dither_positions": int(exposure.subpixel_dither_total),
        "subpix_dither_position": int(exposure.subpixel_dither_position),
        "xoffset": float(exposure.x_offset_arcsec),
        "yoffset": float(exposure.y_offset_arcsec),
    }


_HEADER = """\
# MIRAGE {version} input for {base}, written by simval.simulate.mirage_yaml.
# Every Reffiles key is explicit: a path, or None to skip that effect. A key missing here
# would silently become 'crds' (a CRDS query). The 'simval' section is ignored by MIRAGE.
"""


def dump_parameters(params: Mapping[str, Any]) -> str:
    """YAML text for MIRAGE parameters (strings that look like numbers or dates are quoted)."""
    from importlib.metadata import version

    head = _HEADER.format(version=version("mirage"), base=params["simval"]["base_name"])
    return head + yaml.safe_dump(dict(params), sort_keys=False, default_flow_style=False,
                                 width=1000)


def write_mirage_yaml(
    exposure: MirageExposure,
    refs: MirageReferences,
    point_source_cat: PathLike | None,
    galaxy_cat: PathLike | None,
    out_dir: PathLike,
) -> Path:
    """Write ``<out_dir>/<base_name>.yaml`` for MIRAGE and return its path.

    Parameters
    ----------
    exposure, refs : what to simulate and with which files.
    point_source_cat, galaxy_cat : MIRAGE catalogs (:mod:`simval.simulate.mirage_catalogs`)
        or ``None`` for no such sources.
    out_dir : where the yaml goes and where MIRAGE's outputs will be collected
        (``Output: directory``).

    Raises ``FileNotFoundError`` if an input file is missing (see :func:`check_inputs`).
    """
    catalogs = (absolute_path(point_source_cat), absolute_path(galaxy_cat))
    check_inputs(exposure, refs, catalogs)
    params = mirage_parameters(exposure, refs, point_source_cat, galaxy_cat, out_dir)
    path = Path(out_dir).absolute() / f"{exposure.base_name}.yaml"
    return write_text(path, dump_parameters(params))


def read_parameters(yaml_path: PathLike) -> dict[str, Any]:
    """Load a MIRAGE yaml written by :func:`write_mirage_yaml`."""
    with open(yaml_path) as fh:
        return yaml.safe_load(fh)
