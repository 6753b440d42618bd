"""A MIRI uncal file: the pipeline's datamodel reads back every field the steps use, and the
WCS keywords put the SIAF reference point where the attitude says."""

from __future__ import annotations

import numpy as np
import pytest

from simval.instruments import miri
from simval.instruments.miri_detector import MiriDetectorModel, MiriEffects, Readout
from simval.pointing import attitude_at_pa_v3
from simval.simulate.miri_ramps import miri_ramps
from simval.simulate.miri_uncal import MiriExposure, miri_aperture, write_miri_uncal


def test_uncal_round_trip_and_wcs_keywords(tmp_path):
    from stdatamodels.jwst import datamodels

    readout = Readout("SUB64", "FASTR1", ngroups=6, nints=2)
    ramps = miri_ramps(np.full(readout.shape, 20.0), readout, MiriEffects(), seed=11,
                       detector=MiriDetectorModel(1))
    ap = miri_aperture("SUB64")
    att = attitude_at_pa_v3(ap.V2Ref, ap.V3Ref, 339.0, 33.96, 45.0)
    exp = MiriExposure("F770W", 60000.25, program=2732, observation=2, exposure=3,
                       pattern_type="CYCLING", pattern_number=3, pattern_points=8,
                       offset_arcsec=(1.5, -2.0))
    path = write_miri_uncal(tmp_path / "jw02732002001_01101_00003_mirimage_uncal.fits",
                            ramps, readout, exp, att)
    with datamodels.RampModel(str(path)) as m:
        assert m.data.shape == (2, 6, 64, 72)
        np.testing.assert_array_equal(m.data, ramps.astype(np.float32))
        assert (m.meta.instrument.name, m.meta.instrument.detector,
                m.meta.instrument.filter) == ("MIRI", "MIRIMAGE", "F770W")
        e = m.meta.exposure
        assert (e.type, e.readpatt, e.nsamples, e.nframes, e.groupgap) == \
            ("MIR_IMAGE", "FASTR1", 1, 1, 0)
        assert e.frame_time == e.group_time == pytest.approx(miri.frame_time("SUB64"))
        assert e.duration == pytest.approx(2 * 7 * miri.frame_time("SUB64"))
        assert e.end_time - e.start_time == pytest.approx(e.duration / 86400.0)
        s = m.meta.subarray
        assert (s.name, s.xstart, s.ystart, s.xsize, s.ysize) == ("SUB64", 1, 779, 72, 64)
        w = m.meta.wcsinfo
        assert (w.v2_ref, w.v3_ref) == pytest.approx((ap.V2Ref, ap.V3Ref))
        assert (w.ra_ref, w.dec_ref) == pytest.approx((339.0, 33.96), abs=1e-9)
        assert m.meta.pointing.pa_v3 == pytest.approx(45.0, abs=1e-6)
        assert m.meta.observation.program_number == "02732"
        assert (m.meta.dither.x_offset, m.meta.dither.y_offset) == (1.5, -2.0)
        assert m.meta.date_obs == "2023-02-25"


def test_ramps_of_the_wrong_shape_are_refused(tmp_path):
    readout = Readout("SUB64", "FASTR1", ngroups=6, nints=1)
    ap = miri_aperture("SUB64")
    att = attitude_at_pa_v3(ap.V2Ref, ap.V3Ref, 10.0, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"ramps are \(1, 5, 64, 72\)"):
        write_miri_uncal(tmp_path / "x_uncal.fits", np.zeros((1, 5, 64, 72), np.uint16),
                         readout, MiriExposure("F770W", 60000.0), att)
    assert not (tmp_path / "x_uncal.fits").exists()
