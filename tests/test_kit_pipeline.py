"""A MIRAGE exposure simulated on the kit goes through the pipeline on the kit's CRDS context.

Detector1 -> Image2 on one SUB400P exposure; the products name the kit's references and
context; and a derived context whose flat is scaled by 1.02 gives a mosaic 1/1.02 as bright.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from simval import calibrate
from simval.kit.derive import Changes, derive_context
from simval.kit.registry import Registry

pytestmark = pytest.mark.slow  # MIRAGE and calwebb_detector1/image2/image3


@pytest.fixture(scope="module")
def simulated(small_exposure):
    """One NRCB1 SUB400P F115W exposure (BRIGHT2 x 3 groups) of 6 stars, no cosmic rays."""
    return small_exposure


@pytest.fixture(scope="module")
def calibrated(simulated):
    kit, sim, out = simulated
    crds = calibrate.CrdsSetup.from_kit(kit)
    rate = calibrate.detector1(sim.uncal, out / "det1", crds, out / "det1.log")
    cal = calibrate.image2(rate, out / "img2", crds, out / "img2.log")
    return kit, rate, cal, out


def test_products_name_kit_references_and_context(calibrated):
    kit, rate, cal, _ = calibrated
    used = {**calibrate.ref_files_used(rate), **calibrate.ref_files_used(cal)}
    assert used["crds_context"] == kit.context
    kit_files = {p.name for p in kit.layout.references.iterdir()}
    for reftype in ("mask", "saturation", "superbias", "linearity", "dark", "gain",
                    "readnoise", "ipc", "distortion", "filteroffset", "flat", "photom", "area"):
        assert used[reftype] in kit_files, reftype
    assert "f115w" in used["flat"] and "sub400p" in used["dark"]
    status = calibrate.cal_step_status(cal)
    for step in ("dq_init", "saturation", "superbias", "refpix", "linearity", "dark_sub",
                 "jump", "ramp_fit", "assign_wcs", "flat_field", "photom"):
        assert status.get(step) == "COMPLETE", (step, status.get(step))


def test_calibrated_stars_land_where_mirage_put_them(simulated, calibrated):
    """The kit's distortion serves both: WCS of the cal file vs MIRAGE's truth list."""
    from stdatamodels.jwst.datamodels import ImageModel

    from simval.simulate import read_point_source_list

    _, sim, _ = simulated
    _, _, cal, _ = calibrated
    truth = read_point_source_list(sim.point_sources)
    with ImageModel(str(cal)) as model:
        x, y = model.meta.wcs.invert(np.asarray(truth["ra"]), np.asarray(truth["dec"]))
    # MIRAGE prints pixels to 0.001 px and RA/Dec to ~1e-7 deg (0.4 mas ~ 0.012 px).
    assert np.max(np.hypot(x - truth["pixel_x"], y - truth["pixel_y"])) < 0.03


def test_flat_scaled_by_1_02_gives_mosaic_1_over_1_02(calibrated):
    kit, rate, _, out = calibrated
    derived = derive_context(kit.layout, kit.context, Changes(flat_scale=1.02))
    assert Registry.load(kit.layout).contexts[derived]["base"] == kit.context
    params = {"tweakreg": {"skip": True}, "outlier_detection": {"skip": True},
              "source_catalog": {"skip": True}, "skymatch": {"skip": True}}
    mosaics = {}
    for label, context in (("base", kit.context), ("derived", derived)):
        crds = calibrate.CrdsSetup.from_kit(kit, context)
        d = out / label
        cal_i = calibrate.image2(rate, d, crds, d / "img2.log")
        asn = calibrate.make_association([cal_i], f"jw00001-o001_t001_nircam_clear-f115w_{label}",
                                         d / "asn.json")
        products = calibrate.image3(asn, d, crds, d / "img3.log", params)
        assert products.catalog is None
        mosaics[label] = fits.getdata(products.i2d, "SCI")
        assert calibrate.ref_files_used(products.i2d).get("crds_context", context) == context
    a, b = mosaics["base"], mosaics["derived"]
    good = np.isfinite(a) & np.isfinite(b) & (np.abs(a) > 0.05)
    ratio = np.median(b[good] / a[good])
    print(f"\ni2d ratio derived/base = {ratio:.6f} (1/1.02 = {1 / 1.02:.6f}), "
          f"{good.sum()} pixels")
    assert ratio == pytest.approx(1 / 1.02, rel=1e-3)
