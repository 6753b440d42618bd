"""A coronagraphic rateints on known answers: the noise drawn is the ramp fit's variance,
the file says what calwebb_image2 and calwebb_coron3 read (NRC_CORON, the mask and its
Lyot stop, the subarray corner and axes, PSF reference or science, the pointing), and the
same seed writes the same data."""

from __future__ import annotations

import numpy as np
import pytest

from simval import offline
from simval.instruments.detectors import detector_facts
from simval.instruments.nircam_coron import get_mask
from simval.pointing import attitude_at_pa_v3
from simval.simulate.coron_rateints import CoronReadout, noisy_rateints, write_rateints
from simval.simulate.dms_meta import ExposureIds

MASK = get_mask("MASKA335R")
READOUT = CoronReadout("MEDIUM8", 10, 4)
FACTS = detector_facts(MASK.detector)


def noise(rate, seed=5):
    return noisy_rateints(rate, READOUT, MASK, gain_e_per_dn=FACTS.gain_e_per_dn,
                          readnoise_cds_e=FACTS.readnoise_cds_e, seed=seed)


def test_noise_is_the_ramp_fits_variance():
    rate = np.full((320, 320), 5.0)
    rate[:, 160:] = 0.2  # a bright half and a faint one
    out = noise(rate)
    t = READOUT.timing(MASK)
    assert t.tframe_s == pytest.approx(1.06904)  # (320 + 12) x (320 + 2) x 10 us, 1 output
    for cols in (slice(0, 160), slice(160, 320)):
        resid = (out.data[:, :, cols] - rate[:, cols]).ravel()
        var = (out.var_poisson + out.var_rnoise)[:, :, cols].ravel()
        assert np.std(resid) == pytest.approx(np.sqrt(var.mean()), rel=0.02)
    # Poisson: R / (g (N - 1) tgroup) with MEDIUM8's 10-frame groups
    assert out.var_poisson[0, 0, 0] == pytest.approx(
        5.0 / (FACTS.gain_e_per_dn * 9 * 10 * t.tframe_s), rel=1e-5)


def test_file_carries_what_the_coronagraphy_pipeline_reads(tmp_path):
    from stdatamodels.jwst import datamodels

    ap = offline.nircam_siaf()[MASK.aperture]
    att = attitude_at_pa_v3(ap.V2Ref, ap.V3Ref, 150.0, 2.0, 250.0)
    ids = ExposureIds("F335M", 60000.25, program=1, observation=2, exposure=3,
                      offset_arcsec=(0.02, -0.02))
    path = write_rateints(tmp_path / "jw00001002001_01101_00003_nrcalong_rateints.fits",
                          noise(np.ones((320, 320))), MASK, ids, READOUT, att,
                          psf_reference=True)
    with datamodels.open(path) as m:
        assert isinstance(m, datamodels.CubeModel) and m.data.shape == (4, 320, 320)
        meta = m.meta
        assert (meta.exposure.type, meta.instrument.coronagraph, meta.instrument.pupil,
                meta.instrument.filter) == ("NRC_CORON", "MASKA335R", "MASKRND", "F335M")
        assert meta.instrument.detector == "NRCALONG" and meta.instrument.module == "A"
        assert (meta.subarray.name, meta.subarray.xstart, meta.subarray.ystart) == \
            ("SUB320A335R", 492, 1502)
        assert (meta.subarray.fastaxis, meta.subarray.slowaxis) == (-1, 2)
        assert meta.exposure.psf_reference is True
        assert meta.dither.x_offset == pytest.approx(0.02)
        assert meta.wcsinfo.ra_ref == pytest.approx(150.0, abs=1e-9)
        assert meta.wcsinfo.roll_ref == pytest.approx(
            float(offline.siaf_rotations().posangle(att, ap.V2Ref, ap.V3Ref)) % 360)
        assert meta.aperture.name == "NRCA5_MASK335R"


def test_same_seed_same_data():
    rate = np.full((320, 320), 1.0)
    a, b, c = noise(rate, 7), noise(rate, 7), noise(rate, 8)
    assert np.array_equal(a.data, b.data) and not np.array_equal(a.data, c.data)
