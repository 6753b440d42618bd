"""NIRCam coronagraphy facts: the round band-limited masks, their subarrays and apertures.

One home for what the coronagraphic simulator, its kit and its scenarios need to agree on:
the mask (DMS ``CORONMSK``), its band-limited size parameter, the pupil wheel element that
carries its Lyot stop, the detector, the SIAF aperture whose reference point is the mask
centre, and the subarray read around it (DMS corner, 1-based, with the detector's readout
axes).

Sources: ``../shared/docs/coron-facts.md`` (measured with jwst 3.0 offline: NRCA5,
F335M + MASKRND + MASKA335R, SUB320A335R, aperture NRCA5_MASK335R, FASTAXIS -1, SLOWAXIS 2,
SUBSTRT (492, 1502)); the size parameter sigma of the circular band-limited masks is
Krist et al. 2009 (SPIE 7440) as poppy's ``BandLimitedCoronagraph`` takes it (arcsec^-1).

Units: arcsec, microns, 1-based DMS pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LW_SCALE_ARCSEC", "MASKS", "CoronMask", "get_mask"]

#: NIRCam long-wave pixel scale of the coronagraphic PSFs and the scene, arcsec (SIAF
#: NRCA5_MASK335R: 0.0620 x 0.0628).
LW_SCALE_ARCSEC = 0.063


@dataclass(frozen=True)
class CoronMask:
    """A round band-limited coronagraph of NIRCam's long-wave channel.

    name : DMS CORONMSK (``MASKA335R``).
    sigma : band-limited size parameter, arcsec^-1: amplitude transmission
        ``1 - (2 J1(sigma r) / (sigma r))^2`` at radius r (arcsec).
    pupil : pupil wheel element with its Lyot stop (DMS PUPIL).
    detector : DMS detector.
    aperture : SIAF aperture of the subarray; its reference point is the mask centre.
    subarray : DMS SUBARRAY name.
    substrt : DMS SUBSTRT1, SUBSTRT2 (1-based, in the DMS frame of the detector).
    fastaxis, slowaxis : DMS FASTAXIS, SLOWAXIS of the detector.
    filters : filters the scenario and the kit take with this mask.
    """

    name: str
    sigma: float
    pupil: str
    detector: str
    aperture: str
    subarray: str
    substrt: tuple[int, int]
    size: int
    fastaxis: int
    slowaxis: int
    filters: tuple[str, ...]

    @property
    def full_aperture(self) -> str:
        """The full-frame SIAF aperture with the mask's distortion (``NRCA5_FULL_MASK335R``)."""
        det, _, rest = self.aperture.partition("_")
        return f"{det}_FULL_{rest}"

    def intensity(self, r_arcsec):
        """Intensity transmission at radius ``r_arcsec`` (the amplitude's square)."""
        import numpy as np
        from scipy.special import j1

        x = np.maximum(self.sigma * np.asarray(r_arcsec, float), 1e-12)
        return (1.0 - (2.0 * j1(x) / x) ** 2) ** 2

    @property
    def inner_working_angle_arcsec(self) -> float:
        """Radius where the mask's intensity transmission reaches 50 %, arcsec."""
        from scipy.optimize import brentq

        def half(r: float) -> float:
            return float(self.intensity(r)) - 0.5

        return float(brentq(half, 0.05, 3.0 / self.sigma))


MASKS: dict[str, CoronMask] = {m.name: m for m in (
    CoronMask("MASKA335R", 3.2927866, "MASKRND", "NRCALONG", "NRCA5_MASK335R", "SUB320A335R",
              (492, 1502), 320, -1, 2, ("F335M",)),
)}


def get_mask(name: str) -> CoronMask:
    """The mask ``name`` (``ValueError`` naming the known ones otherwise)."""
    key = str(name).strip().upper()
    if key not in MASKS:
        raise ValueError(f"unknown coronagraph mask {name!r}; known: {', '.join(MASKS)}")
    return MASKS[key]
