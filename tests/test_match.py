"""Known-answer tests of simval.match: one-to-one sky matching."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from simval.match import (
    NIRCAM_FWHM_ARCSEC,
    default_match_radius,
    flag_bright_neighbours,
    match_catalogs,
    match_sky,
    sky_offsets_mas,
)

MAS = 1.0 / 3.6e6  # deg


def _field(rng, n, ra0=53.16, dec0=-27.79, half_arcsec=60.0):
    dec = dec0 + rng.uniform(-half_arcsec, half_arcsec, n) / 3600.0
    ra = ra0 + rng.uniform(-half_arcsec, half_arcsec, n) / 3600.0 / np.cos(np.radians(dec0))
    return ra, dec


def _shift(ra, dec, east_mas, north_mas):
    c = SkyCoord(ra * u.deg, dec * u.deg).spherical_offsets_by(east_mas * u.mas,
                                                              north_mas * u.mas)
    return c.ra.deg, c.dec.deg


@pytest.mark.parametrize("dec0", [-27.79, 60.0])
@pytest.mark.parametrize(("east", "north"), [(20.0, 0.0), (0.0, -20.0), (12.0, -16.0)])
def test_shift_of_20_mas_reads_20_mas_with_signs(rng, dec0, east, north):
    ra, dec = _field(rng, 400, dec0=dec0)
    mra, mdec = _shift(ra, dec, east, north)
    res = match_sky(mra, mdec, ra, dec, 100.0)
    assert res.n_pairs == 400
    assert np.all(res.measured_index == res.truth_index)
    np.testing.assert_allclose(res.separation_mas, 20.0, atol=1e-4)
    dx, dy = sky_offsets_mas(mra[res.measured_index], mdec[res.measured_index],
                             ra[res.truth_index], dec[res.truth_index])
    np.testing.assert_allclose(dx, east, atol=1e-4)   # + = measured east of truth
    np.testing.assert_allclose(dy, north, atol=1e-4)  # + = measured north of truth


def test_no_source_matched_twice_and_greedy_order(rng):
    """Dense random catalogs: the vectorised rounds give exactly the sequential greedy."""
    ra, dec = _field(rng, 300, half_arcsec=2.0)
    mra, mdec = _field(rng, 250, half_arcsec=2.0)
    res = match_sky(mra, mdec, ra, dec, 150.0)
    assert len(set(res.measured_index)) == res.n_pairs
    assert len(set(res.truth_index)) == res.n_pairs
    assert np.all(res.separation_mas <= 150.0)
    # brute force: all pairs sorted by separation, take a pair if both are free
    sep = SkyCoord(mra[:, None] * u.deg, mdec[:, None] * u.deg).separation(
        SkyCoord(ra[None, :] * u.deg, dec[None, :] * u.deg)).to_value(u.mas)
    i, j = np.nonzero(sep < 150.0)
    used_i, used_j, pairs = set(), set(), set()
    for k in np.argsort(sep[i, j], kind="stable"):
        if i[k] not in used_i and j[k] not in used_j:
            used_i.add(i[k])
            used_j.add(j[k])
            pairs.add((i[k], j[k]))
    assert pairs == set(zip(res.measured_index.tolist(), res.truth_index.tolist(),
                            strict=True))
    assert res.n_pairs > 100  # conflicts really happened: 300 sources in 4" x 4"


def test_masks_and_index_maps():
    ra = np.array([10.0, 10.0 + 1 / 3600, 10.0 + 2 / 3600])
    dec = np.zeros(3)
    mra = np.array([ra[0] + 10 * MAS, ra[2] - 5 * MAS, 10.0 + 10 / 3600])
    res = match_sky(mra, np.zeros(3), ra, dec, 50.0)
    assert res.matched.tolist() == [True, False, True]
    assert res.missed.tolist() == [False, True, False]
    assert res.spurious.tolist() == [False, False, True]
    assert res.truth_to_measured.tolist() == [0, -1, 1]
    assert res.measured_to_truth.tolist() == [0, 2, -1]
    np.testing.assert_allclose(res.separation_mas, [10.0, 5.0], atol=1e-6)


def test_prefer_magnitude_picks_the_right_counterpart_in_a_crowd():
    # A bright star (20 mag) and a faint galaxy (25 mag) 50 mas apart; the detection of the
    # bright star landed 40 mas from it and 10 mas from the faint one.
    ra = np.array([150.0, 150.0 + 50 * MAS])
    dec = np.array([2.0, 2.0])
    tmag = np.array([20.0, 25.0])
    mra = np.array([150.0 + 40 * MAS / np.cos(np.radians(2.0))])
    mdec = np.array([2.0])
    mmag = np.array([20.05])
    near = match_sky(mra, mdec, ra, dec, 100.0)
    assert near.truth_index.tolist() == [1]  # distance: the faint neighbour
    best = match_sky(mra, mdec, ra, dec, 100.0, prefer="magnitude", measured_mag=mmag,
                     truth_mag=tmag)
    assert best.truth_index.tolist() == [0]
    np.testing.assert_allclose(best.separation_mas, 40.0, atol=0.01)
    # max_dmag removes the wrong-magnitude candidate even when preferring distance
    cut = match_sky(mra, mdec, ra, dec, 100.0, measured_mag=mmag, truth_mag=tmag,
                    max_dmag=1.0)
    assert cut.truth_index.tolist() == [0]


def test_prefer_magnitude_one_to_one_in_a_dense_mock(rng):
    """Two detections near two truths: magnitude preference resolves the swap."""
    ra = np.array([0.0, 20 * MAS])
    dec = np.zeros(2)
    tmag = np.array([22.0, 24.0])
    mra = np.array([18 * MAS, 2 * MAS])  # bright source's detection sits near the faint one
    mmag = np.array([22.02, 23.97])
    res = match_sky(mra, np.zeros(2), ra, dec, 50.0, prefer="magnitude", measured_mag=mmag,
                    truth_mag=tmag)
    assert dict(zip(res.measured_index.tolist(), res.truth_index.tolist(),
                    strict=True)) == {0: 0, 1: 1}
    assert match_sky(mra, np.zeros(2), ra, dec, 50.0).truth_index.tolist() == [0, 1]
    assert match_sky(mra, np.zeros(2), ra, dec, 50.0).measured_index.tolist() == [1, 0]


def test_ra_wraparound_and_pole():
    res = match_sky([0.000001], [10.0], [359.999999], [10.0], 50.0)
    assert res.n_pairs == 1
    assert res.separation_mas[0] == pytest.approx(2e-6 * 3.6e6 * np.cos(np.radians(10)),
                                                  rel=1e-6)
    res = match_sky([90.0], [90.0 - 10 * MAS], [270.0], [90.0 - 10 * MAS], 50.0)
    np.testing.assert_allclose(res.separation_mas, 20.0, atol=1e-3)


def test_empty_catalogs():
    res = match_sky([], [], [1.0], [1.0], 10.0)
    assert res.n_pairs == 0 and res.missed.tolist() == [True]
    assert res.spurious.size == 0


def test_default_radius_is_one_fwhm():
    assert default_match_radius("F115W") == pytest.approx(37.0)
    assert default_match_radius("f444w", factor=2.0) == pytest.approx(280.0)
    assert set(NIRCAM_FWHM_ARCSEC) >= {"F070W", "F150W", "F200W", "F277W", "F444W"}
    with pytest.raises(KeyError, match=r"F999W.*known: F070W"):
        default_match_radius("F999W")


def test_match_catalogs_reads_jwst_ecsv(tmp_path, rng):
    ra, dec = _field(rng, 50)
    truth = Table({"ra": ra, "dec": dec, "mag_true_ab": rng.uniform(20, 25, 50),
                   "type": ["star"] * 50})
    mra, mdec = _shift(ra[::-1], dec[::-1], 5.0, 5.0)
    cat = Table({"label": np.arange(1, 51), "sky_centroid": SkyCoord(mra * u.deg,
                                                                     mdec * u.deg),
                 "aper_total_abmag": truth["mag_true_ab"][::-1]})
    path = tmp_path / "x_cat.ecsv"
    cat.write(path)
    res = match_catalogs(Table.read(path), truth, band="F150W")
    assert res.radius_mas == pytest.approx(49.0)
    assert res.n_pairs == 50
    assert np.all(res.measured_index == 49 - res.truth_index)
    res = match_catalogs(Table.read(path), truth, 30.0, prefer="magnitude")
    assert res.n_pairs == 50
    with pytest.raises(KeyError, match="no sky position"):
        match_catalogs(Table({"x": [1.0]}), truth, 30.0)


def test_flag_bright_neighbours():
    ra = np.array([0.0, 0.3 / 3600, 5 / 3600])
    dec = np.zeros(3)
    mag = np.array([20.0, 22.0, 21.0])
    assert flag_bright_neighbours(ra, dec, mag, 500.0).tolist() == [False, True, False]
    # with a 3 mag margin the bright one is also "blended" by its fainter neighbour
    assert flag_bright_neighbours(ra, dec, mag, 500.0, delta_mag=3.0).tolist() == [
        True, True, False]


def test_an_extended_neighbour_reaches_farther():
    """A star 3" from a brighter galaxy of 3" extent (blend radius 500 mas) is in its light;
    the galaxy's extent does not make the star (a point) reach the galaxy."""
    ra = np.array([0.0, 3.0 / 3600, 20.0 / 3600])
    dec = np.zeros(3)
    mag = np.array([15.0, 19.0, 19.0])          # galaxy, star in its halo, star far away
    extent = np.array([3000.0, 0.0, 0.0])
    assert flag_bright_neighbours(ra, dec, mag, 500.0).tolist() == [False, False, False]
    assert flag_bright_neighbours(ra, dec, mag, 500.0, extent_mas=extent).tolist() == [
        False, True, False]
    ra[1] = 3.6 / 3600  # beyond 0.5" + 3.0"

    assert not flag_bright_neighbours(ra, dec, mag, 500.0, extent_mas=extent)[1]


def test_masked_columns_become_nan_or_false():
    from astropy.table import MaskedColumn

    from simval.match import column

    t = Table({"ok": MaskedColumn([True, True], mask=[False, True]),
               "n": MaskedColumn([3, 4], mask=[True, False]),
               "mag": MaskedColumn([21.0, 22.0], mask=[True, False])})
    assert column(t, "ok", bool).tolist() == [True, False]
    assert column(t, "n", np.int64).tolist() == [0, 4]
    assert np.isnan(column(t, "mag")[0]) and column(t, "mag")[1] == 22.0
    with pytest.raises(KeyError, match="'flux' not in the table"):
        column(t, "flux")
