"""The closure grid: bright isolated stars on a known grid, added to any catalog."""

from __future__ import annotations

import numpy as np
import pytest

from simval.catalogs import make_catalog
from simval.catalogs.closure_grid import EDGE_ARCSEC
from simval.plan import make_plan
from simval.scenario import validate_scenario
from simval.sky import Footprint, to_tangent
from tests.scenario_data import QUICKSTART, quickstart_data


def _scenario(grid: dict | None):
    data = quickstart_data()
    data["catalog"] = {"generator": {"kind": "simple", "n_stars": 40, "n_galaxies": 60,
                                     "mag_range": [18, 26]}}
    if grid is not None:
        data["catalog"]["closure_grid"] = grid
    return validate_scenario(data, base_dir=QUICKSTART.parent)


def test_grid_is_regular_isolated_inside_and_numbered_after_the_catalog():
    spacing, clear = 2.5, 1.0
    s = _scenario({"spacing_arcsec": spacing, "mag": 19.5, "clear_radius_arcsec": clear})
    plan = make_plan(s)
    base = make_catalog(_scenario(None), plan)
    cat = make_catalog(s, plan)
    grid = cat.stars[cat.stars["closure_grid"]]
    meta = cat.meta["closure_grid"]
    assert meta["n_stars"] == len(grid) > 10

    fp = Footprint.of_plan(plan, 0.0)
    x, y = to_tangent(np.asarray(grid["ra"]), np.asarray(grid["dec"]), fp.ra0_deg, fp.dec0_deg)
    # on the grid: multiples of the spacing on the field centre's tangent plane
    assert np.allclose(x / spacing, np.round(x / spacing), atol=1e-6)
    assert np.allclose(y / spacing, np.round(y / spacing), atol=1e-6)
    # inside every aperture edge by EDGE_ARCSEC, and nothing of the grid missing there
    inner = Footprint(fp.pointings, fp.ra0_deg, fp.dec0_deg, -EDGE_ARCSEC)
    assert inner.contains(grid["ra"], grid["dec"]).all()
    for band in ("F115W", "F150W"):
        assert np.all(grid[f"mag_{band.lower()}"] == 19.5)

    # isolation: no other source within the clear radius of a grid star, and exactly the
    # base catalog's sources that were that close were removed
    def near(table) -> np.ndarray:
        tx, ty = to_tangent(np.asarray(table["ra"]), np.asarray(table["dec"]),
                            fp.ra0_deg, fp.dec0_deg)
        d = np.hypot(tx[:, None] - x[None, :], ty[:, None] - y[None, :])
        return (d < clear).any(axis=1)

    others = cat.stars[~cat.stars["closure_grid"]]
    assert not near(others).any() and not near(cat.galaxies).any()
    assert meta["removed_stars"] == int(near(base.stars).sum())
    assert meta["removed_galaxies"] == int(near(base.galaxies).sum())
    assert len(others) == len(base.stars) - meta["removed_stars"]
    assert meta["removed_stars"] + meta["removed_galaxies"] > 0  # the case tests something

    # MIRAGE's indices: unique, stars (catalog then grid) before galaxies
    s_idx, g_idx = np.asarray(cat.stars["index"]), np.asarray(cat.galaxies["index"])
    assert len(np.unique(np.concatenate([s_idx, g_idx]))) == len(s_idx) + len(g_idx)
    assert s_idx.max() < g_idx.min()
    assert np.all(np.asarray(grid["index"]) > np.asarray(others["index"]).max())


def test_grid_spacing_must_be_positive():
    with pytest.raises(Exception, match="spacing_arcsec"):
        _scenario({"spacing_arcsec": 0.0})
