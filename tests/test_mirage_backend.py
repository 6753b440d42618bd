"""MIRAGE backend: yaml content, catalogs, date fixing, failures, and one end-to-end run.

Tests that import MIRAGE do it in a subprocess: importing any MIRAGE module reconfigures the
root logger of the importing process.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import ascii, fits
from astropy.table import Table

from simval.instruments.nircam import mirage_package_dir
from simval.simulate import mirage_backend, mirage_catalogs
from simval.simulate.mirage_yaml import (
    REFFILES_KEYS,
    MirageExposure,
    MirageReferences,
    derive_seeds,
    mirage_parameters,
    read_parameters,
    write_mirage_yaml,
)

# ---------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------


def _exposure(**overrides) -> MirageExposure:
    kw = dict(detector="NRCB1", subarray="SUB400P", filter_name="F115W", readpatt="BRIGHT2",
              ngroups=3, ra_deg=150.1, dec_deg=2.2, pa_v3_deg=120.0, seed=42, program=1234,
              observation=1, visit=1, exposure=1, date_obs="2023-05-01",
              time_obs="12:00:00.000", background_adu_s=0.25)
    kw.update(overrides)
    return MirageExposure(**kw)


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@pytest.fixture
def fake_refs(tmp_path) -> MirageReferences:
    """Empty placeholder files under the names MIRAGE looks for (content is not read)."""
    data = tmp_path / "mirage_data"
    refs = tmp_path / "refs"
    psf = data / "nircam" / "gridded_psf_library"
    _touch(psf / "nircam_nrcb1_f115w_clear_fovp101_samp4_npsf16_predicted_realization0.fits")
    (psf / "psf_wings").mkdir()
    crs = data / "nircam" / "cosmic_ray_library"
    for i in range(10):
        _touch(crs / f"CRs_MCD1.7_SUNMIN_{i:02d}_IPC_NIRCam_B1.fits")
    names = ["linearized_dark", "superbias", "linearity", "saturation", "gain", "pixelflat",
             "ipc", "pixel_area_map", "photom", "badpixmask"]
    files = {n: _touch(refs / f"{n}.fits") for n in names}
    files["astrometric"] = _touch(refs / "distortion.asdf")
    _write_dark(files["linearized_dark"], nints=1, nframes=20)
    return MirageReferences(mirage_data=data, psf_library=psf, psf_wings=psf / "psf_wings",
                            cosmic_ray_library=crs,
                            crds_env={"CRDS_PATH": str(tmp_path / "crds"),
                                      "CRDS_CONTEXT": "jwst_0001.pmap"},
                            **files)


def _write_dark(path: Path, nints: int, nframes: int, readpatt: str = "RAPID",
                detector: str = "NRCB1") -> None:
    """A stand-in linearized dark: header and a tiny SCI of MIRAGE's 4-D layout."""
    primary = fits.PrimaryHDU()
    primary.header["READPATT"] = readpatt
    primary.header["DETECTOR"] = detector
    sci = fits.ImageHDU(np.zeros((nints, nframes, 2, 2), np.float32), name="SCI")
    fits.HDUList([primary, sci]).writeto(path, overwrite=True)


def _walk(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    else:
        yield value


def _mirage_source_keys() -> dict[str, set[str]]:
    """Every ``params['Section']['key']`` MIRAGE's imaging path reads (scanned as text)."""
    root = mirage_package_dir()
    files = [root / "imaging_simulator.py"]
    for sub in ("seed_image", "dark", "ramp_generator", "utils", "psf", "reference_files"):
        files += sorted((root / sub).glob("*.py"))
    pattern = re.compile(r"\[['\"](\w+)['\"]\]\[['\"](\w+)['\"]\]")
    sections = {"Inst", "Readout", "Reffiles", "nonlin", "cosmicRay", "simSignals",
                "Telescope", "Output"}
    found: dict[str, set[str]] = {s: set() for s in sections}
    for path in files:
        for sec, key in pattern.findall(path.read_text()):
            if sec in sections:
                found[sec].add(key)
    return found


# MIRAGE sets these itself (readout pattern table) or reads them only in dead code.
_NOT_INPUTS = {("Readout", "nframe"), ("Readout", "nskip"), ("Reffiles", "phot"),
               ("Reffiles", "distortion_coeffs")}


# ---------------------------------------------------------------------------------------
# Exposure names and checks
# ---------------------------------------------------------------------------------------


def test_names_follow_jwst_conventions():
    exp = _exposure()
    assert exp.base_name == "jw01234001001_01101_00001_nrcb1"
    assert exp.uncal_name == "jw01234001001_01101_00001_nrcb1_uncal.fits"
    assert exp.array_name == "NRCB1_SUB400P"
    assert exp.obs_id == "V01234001001P0000000001101"
    lw = _exposure(detector="NRCBLONG", subarray="FULL", filter_name="F444W", activity=36)
    assert lw.array_name == "NRCB5_FULL"
    assert lw.base_name == "jw01234001001_01110_00001_nrcblong"
    assert _exposure(detector="nrcb5", filter_name="F444W").detector == "NRCBLONG"


@pytest.mark.parametrize("overrides, match", [
    (dict(detector="NRCA1"), "no aperture NRCA1_SUB400P"),
    (dict(filter_name="F444W"), "not a short-wave"),
    (dict(readpatt="FAST"), "unknown readout pattern"),
    (dict(ngroups=11), "outside 1..10"),
    (dict(background_adu_s="medium"), "finite number"),
    (dict(title="a: b"), "MIRAGE mangles"),
    (dict(time_obs="12:00"), "HH:MM:SS"),
    (dict(program=123456), "program must be"),
    (dict(seed=-1), "seed"),
])
def test_exposure_rejects_what_mirage_would_mishandle(overrides, match):
    with pytest.raises(ValueError, match=match):
        _exposure(**overrides)


def test_seeds_are_deterministic_distinct_and_in_range():
    a = derive_seeds(7, "jw01234001001_01101_00001_nrcb1")
    assert a == derive_seeds(7, "jw01234001001_01101_00001_nrcb1")
    assert len(set(a.values())) == 3
    assert a != derive_seeds(8, "jw01234001001_01101_00001_nrcb1")
    assert a != derive_seeds(7, "jw01234001001_01101_00002_nrcb1")
    for value in a.values():
        # MIRAGE adds one per frame; numpy.random.seed needs < 2**32.
        assert 1 <= value < 2**31 - 2**20 + 1


# ---------------------------------------------------------------------------------------
# Yaml content
# ---------------------------------------------------------------------------------------


def test_reffiles_keys_match_what_mirage_reads():
    found = _mirage_source_keys()["Reffiles"]
    read = {k for k in found if ("Reffiles", k) not in _NOT_INPUTS}
    assert read <= set(REFFILES_KEYS), read - set(REFFILES_KEYS)
    # full_paths() also fills pixelAreaMap/transmission with 'crds' when missing.
    assert set(REFFILES_KEYS) - read <= {"pixelAreaMap", "transmission", "dark"}


def test_yaml_has_every_key_mirage_reads_and_no_crds(tmp_path, fake_refs):
    exp = _exposure()
    path = write_mirage_yaml(exp, fake_refs, None, None, tmp_path / "out")
    assert path == (tmp_path / "out" / f"{exp.base_name}.yaml")
    params = read_parameters(path)
    for section, keys in _mirage_source_keys().items():
        for key in keys:
            if (section, key) not in _NOT_INPUTS:
                assert key in params[section], f"{section}/{key} missing"
    assert list(params["Reffiles"]) == list(REFFILES_KEYS)
    assert not any(isinstance(v, str) and v.lower() == "crds" for v in _walk(params))
    for key, value in params["Reffiles"].items():
        if isinstance(value, str) and value != "None":
            assert Path(value).is_absolute() and Path(value).is_file(), key


def test_yaml_values(tmp_path, fake_refs):
    exp = _exposure()
    path = write_mirage_yaml(exp, fake_refs, None, None, tmp_path)
    text = path.read_text()
    p = read_parameters(path)
    assert p["Inst"] == {"instrument": "NIRCam", "mode": "imaging", "use_JWST_pipeline": True,
                         "PPS_aperture": "NRCB1_SUB400P"}
    assert p["Readout"]["array_name"] == "NRCB1_SUB400P"
    assert (p["Readout"]["readpatt"], p["Readout"]["ngroup"], p["Readout"]["nint"],
            p["Readout"]["namp"]) == ("BRIGHT2", 3, 1, 1)
    assert p["Telescope"] == {"ra": 150.1, "dec": 2.2, "rotation": 120.0,
                              "tracking": "sidereal"}
    out = p["Output"]
    # Identifiers stay strings with their leading zeros (a bare 01234 would be octal).
    assert out["program_number"] == "01234" and "'01234'" in text
    assert (out["observation_number"], out["visit_number"], out["exposure_number"]) == \
        ("001", "001", "00001")
    assert (out["date_obs"], out["time_obs"]) == ("2023-05-01", "12:00:00.000")
    assert out["file"] == exp.uncal_name and out["directory"] == str(tmp_path)
    assert (out["datatype"], out["format"]) == ("raw", "DMS")
    sig = p["simSignals"]
    assert isinstance(sig["bkgdrate"], float) and sig["bkgdrate"] == 0.25
    assert sig["pointsource"] == "None" and sig["galaxyListFile"] == "None"
    assert sig["psfpath"] == str(fake_refs.psf_library)
    assert sig["poissonseed"] == exp.seeds["poisson"]
    assert p["cosmicRay"]["seed"] == exp.seeds["cosmic_ray"]
    assert p["cosmicRay"]["path"] == str(fake_refs.cosmic_ray_library)
    assert p["cosmicRay"]["suffix"] == "IPC_NIRCam_B1"
    assert p["simval"]["file_date"] == "2023-05-01T12:00:00.000"
    assert p["simval"]["crds_env"]["CRDS_CONTEXT"] == "jwst_0001.pmap"


def test_switches_turn_effects_off(tmp_path, fake_refs):
    exp = _exposure(cosmic_rays=False, ipc=False, flat_field=False, crosstalk=False)
    p = mirage_parameters(exp, fake_refs, None, None, tmp_path)
    # MIRAGE refuses a 'None' library path (file_check) and opens the files at any scale.
    assert p["cosmicRay"]["path"] == str(fake_refs.cosmic_ray_library)
    assert p["cosmicRay"]["scale"] == 0.0
    assert p["Reffiles"]["ipc"] == "None"
    assert p["Reffiles"]["pixelflat"] == "None" and p["Reffiles"]["crosstalk"] == "None"
    on = mirage_parameters(_exposure(crosstalk=True), fake_refs, None, None, tmp_path)
    assert on["Reffiles"]["crosstalk"].endswith("xtalk20150303g0.errorcut.txt")


def test_missing_inputs_are_named(tmp_path, fake_refs):
    fake_refs.linearity.unlink()
    with pytest.raises(FileNotFoundError, match="Reffiles/linearity"):
        write_mirage_yaml(_exposure(), fake_refs, None, None, tmp_path)
    with pytest.raises(FileNotFoundError, match="psfpath: no nircam_nrcb1_f150w"):
        write_mirage_yaml(_exposure(filter_name="F150W"), fake_refs, None, None, tmp_path)


def test_short_dark_is_refused(tmp_path, fake_refs):
    # BRIGHT2 x 3 groups needs 6 RAPID frames; 2 integrations need 2 dark integrations.
    _write_dark(fake_refs.linearized_dark, nints=1, nframes=5)
    with pytest.raises(ValueError, match="needs 1 of 6"):
        write_mirage_yaml(_exposure(), fake_refs, None, None, tmp_path)
    _write_dark(fake_refs.linearized_dark, nints=1, nframes=6)
    write_mirage_yaml(_exposure(), fake_refs, None, None, tmp_path)
    with pytest.raises(ValueError, match="identical read noise"):
        write_mirage_yaml(_exposure(nints=2), fake_refs, None, None, tmp_path)
    _write_dark(fake_refs.linearized_dark, nints=1, nframes=6, readpatt="SHALLOW2")
    with pytest.raises(ValueError, match="RAPID or BRIGHT2"):
        write_mirage_yaml(_exposure(), fake_refs, None, None, tmp_path)
    _write_dark(fake_refs.linearized_dark, nints=1, nframes=6, detector="NRCB5")
    with pytest.raises(ValueError, match="DETECTOR='NRCB5'"):
        write_mirage_yaml(_exposure(), fake_refs, None, None, tmp_path)


def test_references_from_kit_mapping(tmp_path, fake_refs):
    kit_like = {"dark": fake_refs.linearized_dark,
                "linearized_darkfile": fake_refs.linearized_dark,
                "pixelAreaMap": fake_refs.pixel_area_map, "psfpath": fake_refs.psf_library,
                "psf_wings": fake_refs.psf_wings, "superbias": fake_refs.superbias,
                "linearity": fake_refs.linearity, "saturation": fake_refs.saturation,
                "astrometric": fake_refs.astrometric}
    refs = MirageReferences.from_mapping(kit_like, mirage_data=fake_refs.mirage_data,
                                         crds_env={"CRDS_PATH": "/x"})
    assert refs.pixel_area_map == fake_refs.pixel_area_map and refs.ipc is None
    with pytest.raises(ValueError, match="raw dark"):
        MirageReferences.from_mapping({**kit_like, "dark": fake_refs.superbias},
                                      mirage_data=fake_refs.mirage_data)
    with pytest.raises(ValueError, match="unknown MIRAGE reference 'flatt'"):
        MirageReferences.from_mapping({**kit_like, "flatt": "x"},
                                      mirage_data=fake_refs.mirage_data)
    with pytest.raises(ValueError, match="psf_wings"):
        MirageReferences.from_mapping({**kit_like, "psf_wings": tmp_path},
                                      mirage_data=fake_refs.mirage_data)


_FULL_PATHS_SCRIPT = textwrap.dedent("""
    import json, os, sys, yaml
    from simval import offline
    offline.configure(); offline.import_pysiaf()
    os.chdir(sys.argv[2])
    from mirage.reference_files import crds_tools
    from mirage.utils import utils
    from mirage.utils.constants import MODULE_PATH
    calls = []
    def refuse(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("CRDS was asked")
    crds_tools.get_reffiles = refuse
    params = yaml.safe_load(open(sys.argv[1]))
    out = utils.full_paths(params, MODULE_PATH, crds_tools.dict_from_yaml(params), offline=True)
    print("RESULT" + json.dumps({"calls": len(calls), "Reffiles": out["Reffiles"]}))
""")


def test_mirage_resolves_yaml_without_crds(tmp_path, fake_refs):
    """MIRAGE's own path expansion (full_paths) keeps every value and never asks CRDS."""
    path = write_mirage_yaml(_exposure(), fake_refs, None, None, tmp_path)
    proc = subprocess.run([sys.executable, "-c", _FULL_PATHS_SCRIPT, str(path), str(tmp_path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT"))
    result = json.loads(line[len("RESULT"):])
    assert result["calls"] == 0
    written = read_parameters(path)["Reffiles"]
    for key, value in result["Reffiles"].items():
        assert value == written[key], key


# ---------------------------------------------------------------------------------------
# Catalogs
# ---------------------------------------------------------------------------------------


def _stars() -> Table:
    return Table({"ra": [150.10001234567891, 150.0999], "dec": [2.2000123456789, 2.2001],
                  "mag": [20.5, 23.25]})


def _galaxies() -> Table:
    return Table({"ra": [150.1002], "dec": [2.1999], "mag": [22.0], "radius": [0.35],
                  "ellipticity": [0.4], "pos_angle": [33.0], "sersic_index": [1.5]})


def test_catalogs_round_trip_with_disjoint_indices(tmp_path):
    ps, gal = mirage_catalogs.write_catalogs(_stars(), _galaxies(), tmp_path, "jwX",
                                             filter_name="F115W")
    stars = mirage_catalogs.read_mirage_catalog(ps)
    gals = mirage_catalogs.read_mirage_catalog(gal)
    assert list(stars["index"]) == [1, 2] and list(gals["index"]) == [3]
    assert stars.meta["magnitude_column"] == "nircam_f115w_clear_magnitude"
    for name in ("ra", "dec", "mag"):
        np.testing.assert_array_equal(stars[name], _stars()[name])  # exact: repr() floats
    for name in mirage_catalogs.GALAXY_COLUMNS:
        np.testing.assert_array_equal(gals[name], _galaxies()[name])
    comments = ascii.read(gal).meta["comments"]
    assert comments[:3] == ["position_RA_Dec", "abmag", "radius_arcsec"]


def test_catalog_checks(tmp_path):
    assert mirage_catalogs.write_catalogs(None, Table(), tmp_path, "jwX",
                                          filter_name="F115W") == (None, None)
    bad = _stars()
    bad["index"] = [3, 1]
    gals = _galaxies()
    gals["index"] = [2]
    with pytest.raises(ValueError, match="overlap"):
        mirage_catalogs.write_catalogs(bad, gals, tmp_path, "jwX", filter_name="F115W")
    bad["index"] = [0, 1]
    with pytest.raises(ValueError, match=">= 1"):
        mirage_catalogs.write_catalogs(bad, None, tmp_path, "jwX", filter_name="F115W")
    g = _galaxies()
    g["ellipticity"] = [1.0]
    with pytest.raises(ValueError, match="ellipticity"):
        mirage_catalogs.write_galaxy_catalog(g, tmp_path / "g.cat", filter_name="F115W")
    with pytest.raises(ValueError, match="lacks column"):
        mirage_catalogs.write_point_source_catalog(Table({"ra": [1.0]}), tmp_path / "p.cat",
                                                   filter_name="F115W")


_MIRAGE_CATALOG_SCRIPT = textwrap.dedent("""
    import json, os, sys
    from simval import offline
    offline.configure(); offline.import_pysiaf()
    spec = json.loads(sys.argv[1]); os.chdir(sys.argv[2])
    from mirage.catalogs.catalog_generator import GalaxyCatalog, PointSourceCatalog
    s, g = spec["stars"], spec["galaxies"]
    ps = PointSourceCatalog(ra=s["ra"], dec=s["dec"], starting_index=1)
    ps.add_magnitude_column(s["mag"], magnitude_system="abmag", instrument="nircam",
                            filter_name="F115W")
    ps.save("mirage_ps.cat")
    gal = GalaxyCatalog(ra=g["ra"], dec=g["dec"], ellipticity=g["ellipticity"],
                        radius=g["radius"], sersic_index=g["sersic_index"],
                        position_angle=g["pos_angle"], radius_units="arcsec",
                        starting_index=len(s["ra"]) + 1)
    gal.add_magnitude_column(g["mag"], magnitude_system="abmag", instrument="nircam",
                             filter_name="F115W")
    gal.save("mirage_gal.cat")
""")


def test_catalogs_match_mirage_own_writer(tmp_path):
    spec = {"stars": {k: list(_stars()[k]) for k in _stars().colnames},
            "galaxies": {k: list(_galaxies()[k]) for k in _galaxies().colnames}}
    proc = subprocess.run([sys.executable, "-c", _MIRAGE_CATALOG_SCRIPT, json.dumps(spec),
                           str(tmp_path)], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ps, gal = mirage_catalogs.write_catalogs(_stars(), _galaxies(), tmp_path, "ours",
                                             filter_name="F115W")
    for ours, theirs in ((ps, tmp_path / "mirage_ps.cat"), (gal, tmp_path / "mirage_gal.cat")):
        a, b = ascii.read(ours), ascii.read(theirs)
        assert set(a.colnames) == set(b.colnames)
        for name in a.colnames:
            np.testing.assert_array_equal(a[name], b[name])
        assert [c.strip() for c in a.meta["comments"]] == \
            [c.strip() for c in b.meta["comments"]]


# ---------------------------------------------------------------------------------------
# Backend pieces
# ---------------------------------------------------------------------------------------


def test_frozen_save_time_makes_saves_reproducible(tmp_path):
    from stdatamodels.jwst.datamodels import RampModel, model_base

    original = model_base.Time
    digests = []
    for i in range(2):
        path = tmp_path / f"x{i}" / "x_uncal.fits"
        path.parent.mkdir()
        with mirage_backend.frozen_save_time("2023-05-01T12:00:00.000") as stamp:
            model = RampModel(data=np.zeros((1, 2, 4, 4), dtype=np.float32))
            model.meta.exposure.type = "NRC_IMAGE"
            model.save(path)
        assert stamp == "2023-05-01T12:00:00.000"
        mirage_backend.check_file_date(path, stamp)
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
        time.sleep(0.01)
    assert digests[0] == digests[1]
    assert model_base.Time is original
    with pytest.raises(ValueError, match="not the frozen"):
        mirage_backend.check_file_date(path, "2024-01-01T00:00:00.000")


def test_stage_is_named_from_the_traceback():
    def raise_in(filename: str) -> BaseException:
        namespace: dict = {}
        exec(compile("def f():\n    raise ValueError('boom')\n", filename, "exec"), namespace)
        try:
            namespace["f"]()
        except ValueError as exc:
            return exc
        raise AssertionError

    site = "/x/site-packages/mirage"
    assert mirage_backend._mirage_stage(raise_in(f"{site}/dark/dark_prep.py")).startswith(
        "dark preparation")
    assert mirage_backend._mirage_stage(raise_in(f"{site}/psf/psf_selection.py")).startswith(
        "seed image: PSF")
    assert mirage_backend._mirage_stage(raise_in("/elsewhere/x.py")).startswith("MIRAGE ImgSim")


def test_run_mirage_failure_names_yaml_and_stage(tmp_path, fake_refs):
    """Empty reference files make MIRAGE fail; no uncal may be left behind."""
    exp = _exposure()
    out = tmp_path / "out"
    path = write_mirage_yaml(exp, fake_refs, None, None, out)
    stale = out / exp.uncal_name
    stale.write_bytes(b"old product")
    with pytest.raises(mirage_backend.MirageError) as info:
        mirage_backend.run_mirage(path, tmp_path / "work", tmp_path / "mirage.log",
                                  timeout_s=600)
    err = info.value
    assert str(path) in str(err) and err.stage.startswith("seed image")
    assert not stale.exists()
    assert not list(out.glob("*_uncal*"))
    assert "Traceback" in (tmp_path / "mirage.log").read_text()
    assert (tmp_path / "work" / "mirage_latest.log").exists()  # MIRAGE's, kept out of cwd


# ---------------------------------------------------------------------------------------
# End to end with the synthetic instrument kit
# ---------------------------------------------------------------------------------------


def _kit(tmp_root: Path):
    from simval.kit.build import build_kit
    from simval.kit.spec import DarkNeed, KitSpec

    spec = KitSpec(detectors=("NRCB1",), filters=("F115W",), darks=(DarkNeed("SUB400P", 20),))
    parent = os.environ.get("SIMVAL_KIT_DIR") or tmp_root
    return build_kit(spec, parent)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_end_to_end_sub400p(tmp_path_factory):
    from simval import offline

    kit = _kit(tmp_path_factory.mktemp("kits"))
    refs = MirageReferences.from_mapping(
        kit.mirage_references("NRCB1", "F115W", "SUB400P"),
        mirage_data=kit.mirage_data, crds_env=kit.crds_env())
    pysiaf = offline.import_pysiaf()
    from jwst.lib.set_telescope_pointing import compute_local_roll

    aperture = pysiaf.Siaf("NIRCam")["NRCB1_SUB400P"]
    ra0, dec0, pa = 150.1, 2.2, 120.0
    # MIRAGE's 'rotation' is PA_V3 at V1; the attitude needs the roll at the reference point.
    roll = compute_local_roll(pa, ra0, dec0, aperture.V2Ref, aperture.V3Ref)
    att = pysiaf.utils.rotations.attitude(aperture.V2Ref, aperture.V3Ref, ra0, dec0, roll)
    aperture.set_attitude_matrix(att)
    # Sources at known subarray pixels (1-based sci -> sky with SIAF).
    xy_star = [(100.3, 120.7), (250.5, 300.2), (320.9, 80.4)]
    sky = [aperture.sci_to_sky(x + 1, y + 1) for x, y in xy_star]
    stars = Table({"ra": [s[0] for s in sky], "dec": [s[1] for s in sky],
                   "mag": [19.0, 20.5, 22.0]})
    gsky = [aperture.sci_to_sky(x + 1, y + 1) for x, y in [(180.0, 200.0), (60.0, 330.0)]]
    galaxies = Table({"ra": [s[0] for s in gsky], "dec": [s[1] for s in gsky],
                      "mag": [20.0, 21.0], "radius": [0.3, 0.2], "ellipticity": [0.3, 0.1],
                      "pos_angle": [20.0, 100.0], "sersic_index": [1.0, 2.5]})
    exp = _exposure(ra_deg=ra0, dec_deg=dec0, pa_v3_deg=pa, background_adu_s=0.2)
    out = tmp_path_factory.mktemp("sim")
    t0 = time.perf_counter()
    result = mirage_backend.simulate_exposure(exp, refs, stars, galaxies, out, timeout_s=1800)
    wall = time.perf_counter() - t0
    print(f"\nMIRAGE SUB400P BRIGHT2 x3: {wall:.1f} s wall, child {result.seconds:.1f} s, "
          f"peak RSS {result.peak_rss_mb:.0f} MiB, stages {dict(result.stage_seconds)}")

    assert result.network_attempts == ()
    assert not [f.name for f in out.iterdir() if f.name.endswith(
        mirage_backend.DROPPED_SUFFIXES)]  # only the final seed image is kept ...
    sky = json.loads(result.seed_sky.read_text())["seed_sky_adu_s"]  # ... and its sky
    seed_all = fits.getdata(result.seed_image, 1)
    assert 0.0 < sky <= float(np.median(seed_all)) and sky == pytest.approx(0.2, rel=0.1)
    # The laps cover the child's life from the parent's request to the parent seeing it end.
    laps = result.stage_seconds
    assert set(laps) == {"start", "set-up", "import", "mirage", "collect", "exit"}
    assert abs(sum(laps.values()) - result.seconds) < 0.05
    with fits.open(result.uncal) as hdul:
        assert "ASDF" in hdul and hdul["SCI"].data.shape == (1, 3, 400, 400)
        assert hdul[0].header["DATE"] == "2023-05-01T12:00:00.000"
        assert hdul[0].header["SUBARRAY"] == "SUB400P"
        assert (hdul[0].header["SUBSTRT1"], hdul[0].header["SUBSTRT2"]) == (1649, 1649)
        assert hdul["SCI"].header["PA_V3"] == pa
        assert abs(hdul["SCI"].header["ROLL_REF"] - roll) < 1e-9

    truth = mirage_catalogs.read_point_source_list(result.point_sources)
    assert sorted(truth["index"]) == [1, 2, 3]
    import asdf

    with asdf.open(refs.astrometric) as af:
        model = af.tree["model"]
        for row in truth:
            i = int(row["index"]) - 1
            v2, v3 = pysiaf.utils.rotations.getv2v3(att, stars["ra"][i], stars["dec"][i])
            x_full, y_full = model.inverse(v2, v3)
            dx, dy = row["pixel_x"] - (x_full - 1648), row["pixel_y"] - (y_full - 1648)
            sx, sy = row["pixel_x"] - xy_star[i][0], row["pixel_y"] - xy_star[i][1]
            print(f"star {i + 1}: list - distortion model {dx:+.4f} {dy:+.4f} px, "
                  f"list - SIAF {sx:+.4f} {sy:+.4f} px")
            # MIRAGE prints pixel positions to 0.001 px.
            assert abs(dx) < 1e-3 and abs(dy) < 1e-3
            # The kit distortion agrees with SIAF's polynomials.
            assert abs(sx) < 0.05 and abs(sy) < 0.05
    gal_truth = mirage_catalogs.read_galaxy_list(result.galaxies)
    assert sorted(gal_truth["index"]) == [4, 5]

    seed = fits.getdata(result.seed_image, 1)
    for x, y in xy_star[:2]:
        yy, xx = np.unravel_index(np.argmax(seed[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4]),
                                  (7, 7))
        assert abs(xx - 3 + int(x) - round(x)) <= 1 and abs(yy - 3 + int(y) - round(y)) <= 1

    # Same yaml again, in a fresh interpreter instead of a fork -> byte-identical uncal.
    first = _sha256(result.uncal)
    again = mirage_backend.run_mirage(result.yaml, out / f"{exp.base_name}_mirage_work",
                                      result.log, timeout_s=1800, start="spawn")
    assert _sha256(again.uncal) == first
    # The fork server imported MIRAGE before the fork; a spawned child imports it itself.
    print(f"imports in the child: forked {result.stage_seconds['import']:.2f} s, "
          f"spawned {again.stage_seconds['import']:.2f} s")
    assert mirage_backend.start_method() == "forkserver"
    assert result.stage_seconds["import"] < 0.3 < 1.0 < again.stage_seconds["import"]
