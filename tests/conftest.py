"""Test configuration: no test may open a network connection."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

_ALLOWED_FAMILIES = {getattr(socket, "AF_UNIX", None)}


#: The kit directory this session made (removed when the session ends), if any.
_SESSION_KIT_DIR: list[str | None] = [None]


class NetworkAccessError(RuntimeError):
    """Raised when a test tries to reach the network."""


def _is_loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    return isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost"))


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self, address):
    if self.family in _ALLOWED_FAMILIES or _is_loopback(address):
        return _real_connect(self, address)
    raise NetworkAccessError(f"test tried to open a network connection to {address!r}")


def _guarded_connect_ex(self, address):
    if self.family in _ALLOWED_FAMILIES or _is_loopback(address):
        return _real_connect_ex(self, address)
    raise NetworkAccessError(f"test tried to open a network connection to {address!r}")


def _guarded_getaddrinfo(host, *args, **kwargs):
    if host is None or _is_loopback((host,)) or host in ("", "0.0.0.0"):
        return _real_getaddrinfo(host, *args, **kwargs)
    raise NetworkAccessError(f"test tried to resolve the host name {host!r}")


def pytest_configure(config):
    """Install the socket guard for the whole session (loopback stays allowed for Dask), and
    give the session one kit directory so that tests share what they build."""
    import os
    import tempfile

    simval_mode = config.getoption("simval", None) or config.getoption("simval_run", None)
    if not os.environ.get("SIMVAL_KIT_DIR") and not simval_mode:
        os.environ["SIMVAL_KIT_DIR"] = _SESSION_KIT_DIR[0] = tempfile.mkdtemp(
            prefix="simval-test-kits-")
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    socket.getaddrinfo = _guarded_getaddrinfo
    from simval import offline

    offline.configure()


def pytest_unconfigure(config):
    import os
    import shutil

    if _SESSION_KIT_DIR[0]:
        shutil.rmtree(_SESSION_KIT_DIR[0], ignore_errors=True)
        os.environ.pop("SIMVAL_KIT_DIR", None)
        _SESSION_KIT_DIR[0] = None
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex
    socket.getaddrinfo = _real_getaddrinfo


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def quickstart_kit():
    """The quickstart kit (NRCB1, F115W + F150W, SUB400P darks of 12 frames), built once in
    the session's kit directory."""
    from simval.kit.build import build_kit
    from simval.kit.spec import DarkNeed, KitSpec

    spec = KitSpec(detectors=("NRCB1",), filters=("F115W", "F150W"),
                   darks=(DarkNeed("SUB400P", 12),))
    return build_kit(spec)


#: The session's MIRI kit: filters, readout (SUB256, 40 groups, 2 integrations) and seed.
MIRI_FILTERS = ("F770W", "F1500W")
MIRI_KIT_SEED = 11


@pytest.fixture(scope="session")
def miri_kit():
    """A MIRI kit (F770W + F1500W; DARK/RESET for SUB256 FASTR1 x 40 groups x 2 ints),
    built once in the session's kit directory (~15 s)."""
    from simval.instruments.miri_detector import Readout
    from simval.kit.build import build_kit
    from simval.kit.miri_jobs import MiriKitSpec

    return build_kit(MiriKitSpec(filters=MIRI_FILTERS,
                                 readouts=(Readout("SUB256", "FASTR1", 40, 2),),
                                 seed=MIRI_KIT_SEED))


#: Derived kit contexts of the shared sweep (:func:`derived_sweep`), in variant order.
DERIVES = [None, {"flat_scale": 1.03}, {"distortion_shift_mas": [50.0, 0.0]},
           {"photom_scale": 1.05}]
#: Thresholds of the shared sweep's scenario.
SWEEP_THRESHOLDS = {"phot_bias_bright_star_mag": {"abs_max": 0.02},
                    "astrom_offset_mas": {"max": 10.0}}


@pytest.fixture(scope="session")
def derived_sweep(tmp_path_factory):
    """One reduced quickstart (F150W, 2 dithers, 6 groups) simulated once and calibrated
    with the kit's base context and three derived ones (flat x1.03, distortion +50 mas in
    V2, photom x1.05): a ``simval sweep`` over ``crds.kit.derive``. Returns
    ``{"base"|"flat"|"distortion"|"photom": run dir, "summary": sweep.json}``; every run is
    evaluated (metrics.json). Shared by the sensitivity and compare tests."""
    import json

    import yaml

    from simval.sweep import run_sweep
    from tests.scenario_data import quickstart_data

    tmp = tmp_path_factory.mktemp("derived_sweep")
    data = quickstart_data()
    data.update(name="sens", filters=["F150W"], background_mjysr=0.25,
                dither={"offsets": [[0.0, 0.0], [1.03, 0.97]]},
                comparison={"match_radius_mas": 100, "thresholds": SWEEP_THRESHOLDS},
                sweep={"crds.kit.derive": DERIVES})
    data["readout"]["ngroups"] = 6
    path = tmp / "sens.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    # its own kit: derived contexts must not join the session kit other tests inspect
    result = run_sweep(path, tmp / "sweep", workers=2, kit_dir=tmp / "kits")
    assert result.ok, result.failed
    runs = list(result.runs.values())
    assert len(runs) == len(DERIVES)
    return {"base": runs[0], "flat": runs[1], "distortion": runs[2], "photom": runs[3],
            "summary": json.loads(result.summary.read_text())}


@pytest.fixture(scope="session")
def small_exposure(quickstart_kit, tmp_path_factory):
    """One NRCB1 SUB400P F115W MIRAGE exposure (BRIGHT2 x 3 groups) of 6 stars of AB 19-21.5
    at known pixels, no cosmic rays, on the session kit: ``(kit, SimulationResult, dir)``."""
    from astropy.table import Table
    from jwst.lib.set_telescope_pointing import compute_local_roll

    from simval import offline
    from simval.simulate import MirageExposure, MirageReferences, simulate_exposure

    kit = quickstart_kit
    pysiaf = offline.import_pysiaf()
    ap = pysiaf.Siaf("NIRCam")["NRCB1_SUB400P"]
    ra0, dec0, pa = 53.1625, -27.7914, 0.0
    roll = compute_local_roll(pa, ra0, dec0, ap.V2Ref, ap.V3Ref)
    ap.set_attitude_matrix(pysiaf.utils.rotations.attitude(ap.V2Ref, ap.V3Ref, ra0, dec0, roll))
    xy = [(80.2, 90.7), (200.5, 310.1), (330.8, 60.4), (120.1, 250.6), (300.3, 200.9),
          (60.6, 340.2)]
    sky = [ap.sci_to_sky(x + 1, y + 1) for x, y in xy]
    stars = Table({"ra": [c[0] for c in sky], "dec": [c[1] for c in sky],
                   "mag": [19.0, 19.5, 20.0, 20.5, 21.0, 21.5]})
    refs = MirageReferences.from_mapping(kit.mirage_references("NRCB1", "F115W", "SUB400P"),
                                         mirage_data=kit.mirage_data, crds_env=kit.crds_env())
    exp = MirageExposure(detector="NRCB1", subarray="SUB400P", filter_name="F115W",
                         readpatt="BRIGHT2", ngroups=3, ra_deg=ra0, dec_deg=dec0,
                         pa_v3_deg=pa, seed=7, background_adu_s=0.5, cosmic_rays=False)
    out = tmp_path_factory.mktemp("sim")
    return kit, simulate_exposure(exp, refs, stars, None, out, timeout_s=900), out


def mini_scenario(tmp: Path, name: str = "mini", recipe: str = "skymatch") -> Path:
    """A reduced quickstart: F115W, 2 dithers, 6 groups, 25 simple sources, skymatch with
    skystat median (so skymatch levels are recorded), one threshold."""
    import yaml

    from tests.scenario_data import quickstart_data

    data = quickstart_data()
    data.update(name=name, filters=["F115W"], background_mjysr=0.22,
                background_recipe=recipe, dither={"offsets": [[0.0, 0.0], [1.03, 0.97]]})
    data["readout"]["ngroups"] = 6
    data["pipeline"]["image3"]["skymatch"] = {"skystat": "median"}  # exercise skymatch
    data["catalog"] = {"generator": {"kind": "simple", "n_stars": 15, "n_galaxies": 10,
                                     "mag_range": [18, 26]}}
    data["comparison"] = {"match_radius_mas": 100,
                          "thresholds": {"astrom_offset_mas": {"max": 5.0}}}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def mini_run(tmp_path_factory):
    """One reduced quickstart (:func:`mini_scenario`) simulated, calibrated and evaluated
    on 2 workers with its own kit, shared by the end-to-end tests of the run and the
    evaluation: ``{"tmp", "scenario", "kit_dir", "result"}``. Tests that change it leave
    it complete again (they re-run it)."""
    from simval.run import run_scenario

    tmp = tmp_path_factory.mktemp("mini_run")
    scenario = mini_scenario(tmp)
    result = run_scenario(scenario, tmp / "run", workers=2, kit_dir=tmp / "kits")
    assert result.ok, [(o.stage_id, o.error) for o in result.failed]
    return {"tmp": tmp, "scenario": scenario, "kit_dir": tmp / "kits", "result": result}


@pytest.fixture(scope="session")
def slurm():
    """A single-node SLURM (slurm-wlm + munge) started on localhost for the session and
    stopped by process id at its end (tests/cluster_fixtures.py); skips, saying why, where
    SLURM cannot run (not root)."""
    from tests.cluster_fixtures import slurm_on_localhost

    with slurm_on_localhost() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def mirage(tmp_path_factory):
    """MIRAGE modules, imported with the cwd in a temporary directory (MIRAGE writes a log
    file into the cwd at import) and pysiaf imported offline first."""
    import os
    import types

    from simval.offline import import_pysiaf

    import_pysiaf()
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("mirage_cwd"))
    try:
        from mirage.dark import dark_prep
        from mirage.ramp_generator import obs_generator, unlinearize
        from mirage.utils import read_fits, siaf_interface, utils
        from mirage.utils.constants import MEAN_GAIN_VALUES
    finally:
        os.chdir(here)
    return types.SimpleNamespace(unlinearize=unlinearize, utils=utils, read_fits=read_fits,
                                 siaf_interface=siaf_interface, obs_generator=obs_generator,
                                 MEAN_GAIN_VALUES=MEAN_GAIN_VALUES,
                                 dark_prep=dark_prep)
