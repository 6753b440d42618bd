"""The NIRCam coronagraphy kit: its own directory and CRDS cache, every reference and
mapping certified by CRDS, and for a coronagraphic rateints CRDS selects exactly the
mask's references (calwebb_image2's and calwebb_coron3's other types N/A); photom and
psfmask hold what the simulator assumes."""

from __future__ import annotations

import numpy as np
import pytest

from simval.instruments.nircam_coron import get_mask
from simval.kit.coron_jobs import CORON_KIT_VERSION, CoronKitSpec
from simval.kit.coron_psf import lyot_throughput

MASK = get_mask("MASKA335R")


@pytest.fixture(scope="module")
def coron_kit(tmp_path_factory):
    from simval.kit.build import build_kit

    return build_kit(CoronKitSpec(seed=5), tmp_path_factory.mktemp("kits"))


def test_kit_is_certified_and_selects_the_masks_references(coron_kit, tmp_path):
    from stdatamodels.jwst import datamodels

    from simval import offline
    from simval.kit import crds_cache as cc
    from simval.kit.certify import certify_context
    from simval.pointing import attitude_at_pa_v3
    from simval.simulate.coron_rateints import CoronReadout, noisy_rateints, write_rateints
    from simval.simulate.dms_meta import ExposureIds

    assert coron_kit.layout.root.name == f"nircam_coron-seed5-v{CORON_KIT_VERSION}"
    result = certify_context(coron_kit.layout, coron_kit.context)
    assert result.ok, result.messages()
    ap = offline.nircam_siaf()[MASK.aperture]
    att = attitude_at_pa_v3(ap.V2Ref, ap.V3Ref, 150.0, 2.0, 250.0)
    readout = CoronReadout("MEDIUM8", 4, 2)
    noise = noisy_rateints(np.ones((320, 320)), readout, MASK, gain_e_per_dn=1.8,
                           readnoise_cds_e=13.0, seed=1)
    path = write_rateints(tmp_path / "jw00001001001_01101_00001_nrcalong_rateints.fits",
                          noise, MASK, ExposureIds("F335M", 60000.0), readout, att,
                          psf_reference=False)
    with datamodels.open(path) as m:
        header = m.get_crds_parameters()
    wanted = cc.required_reftypes(("image2", "coron3"))
    refs = cc.best_references(coron_kit.layout, coron_kit.context, header, wanted)
    ours = {k: v for k, v in refs.items() if v != "N/A"}
    assert set(ours) == {"distortion", "area", "filteroffset", "flat", "photom", "psfmask"}
    assert all(v.startswith("simval_coron_") for v in ours.values()), ours


def test_photom_undoes_the_lyot_stop_and_psfmask_is_the_mask(coron_kit):
    from stdatamodels.jwst import datamodels

    from simval.kit.distortion import SR_PER_ARCSEC2
    from simval.kit.photometry import zeropoint_row

    (photom,) = coron_kit.outputs(f"photom/{MASK.name}")
    with datamodels.open(photom) as pm:
        row = pm.phot_table[0]
        pixar = pm.meta.photometry.pixelarea_steradians
        assert (row["filter"], row["pupil"]) == ("F335M", "MASKRND")
        clear = zeropoint_row("NRCA5", "F335M", "CLEAR").photfnu * 1e23 / 1e6 / pixar
        assert row["photmjsr"] == pytest.approx(clear / lyot_throughput(), rel=1e-6)
        assert pixar == pytest.approx(0.0620165 * 0.06283187 * SR_PER_ARCSEC2, rel=0.01)
    (psfmask,) = coron_kit.outputs(f"psfmask/{MASK.name}/F335M")
    with datamodels.open(psfmask) as mm:
        data = mm.data
        assert data.shape == (320, 320)
        iy, ix = np.unravel_index(np.argmin(data), data.shape)
        assert (ix + 1, iy + 1) == pytest.approx((150.2, 174.6), abs=0.6)  # XSciRef, YSciRef
        assert data.min() < 1e-3 and data[0, 0] == pytest.approx(1.0, abs=1e-3)


def test_the_same_spec_builds_the_same_bytes(coron_kit, tmp_path):
    """Same seed, same files: every reference's sha256 (DATE cards pinned) and the context."""
    from simval.kit.build import build_kit

    again = build_kit(CoronKitSpec(seed=5), tmp_path)
    assert again.content_sha256() == coron_kit.content_sha256()
