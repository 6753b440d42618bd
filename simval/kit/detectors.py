"""NIRCam detector facts used by the synthetic instrument kit.

Names follow the DMS convention used in jwst products (``NRCB1`` ... ``NRCBLONG``);
the SIAF/MIRAGE name of a long-wave detector is ``NRCB5``. Values are means of the
flight detectors, with their source:

- gain (e-/DN): MIRAGE's ``MEAN_GAIN_VALUES`` (``mirage.utils.constants``), which MIRAGE
  uses for Poisson noise and cosmic rays. The kit's gain maps are centred on these values so
  that the pipeline's noise model agrees with the simulator's.
- read noise: JWST User Documentation (JDox), "NIRCam Detector Performance": CDS noise
  15.77 e- (SW) and 13.25 e- (LW); the reference holds the single-read noise, CDS/sqrt(2),
  converted to DN with the gain.
- dark current: JDox, same page: 0.0019 e-/s (SW), 0.027 e-/s (LW) median.
- bias: ~12 000 DN per amplifier, saturation (hard) ~ 58 000 DN including bias,
  as in the flight SUPERBIAS and SATURATION references (CRDS jwst_nircam_superbias_*,
  jwst_nircam_saturation_*).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Full-frame size of every NIRCam SCA, pixels.
FULL_SIZE = 2048
#: Width of the reference-pixel border on every side of a full frame, pixels.
REFPIX_BORDER = 4
#: Number of output amplifiers on a full-frame NIRCam read, each 512 columns wide.
N_AMPLIFIERS = 4

SW_FILTERS = (
    "F070W", "F090W", "F115W", "F140M", "F150W", "F150W2", "F162M", "F164N",
    "F182M", "F187N", "F200W", "F210M", "F212N",
)
LW_FILTERS = (
    "F250M", "F277W", "F300M", "F322W2", "F323N", "F335M", "F356W", "F360M",
    "F405N", "F410M", "F430M", "F444W", "F460M", "F466N", "F470N", "F480M",
)


@dataclass(frozen=True)
class Detector:
    """One NIRCam sensor chip assembly (SCA).

    Attributes
    ----------
    name : DMS detector name as written in ``meta.instrument.detector`` (e.g. ``NRCBLONG``).
    siaf_name : SIAF/MIRAGE name (``NRCB5`` for ``NRCBLONG``).
    sca_id : SCA number (481-490).
    channel : ``SHORT`` or ``LONG`` (``meta.instrument.channel``).
    module : ``A`` or ``B``.
    gain_e_per_dn : mean gain, e-/DN.
    readnoise_cds_e : correlated-double-sample read noise, e-.
    dark_e_per_s : median dark current, e-/s.
    """

    name: str
    siaf_name: str
    sca_id: int
    channel: str
    module: str
    gain_e_per_dn: float
    readnoise_cds_e: float
    dark_e_per_s: float

    @property
    def is_long(self) -> bool:
        return self.channel == "LONG"

    @property
    def filters(self) -> tuple[str, ...]:
        """Filters that this detector's channel can observe through."""
        return LW_FILTERS if self.is_long else SW_FILTERS

    @property
    def readnoise_dn(self) -> float:
        """Single-read noise in DN (CDS noise / sqrt(2) / gain)."""
        return self.readnoise_cds_e / 2**0.5 / self.gain_e_per_dn

    @property
    def full_aperture(self) -> str:
        """SIAF name of the full-frame aperture, e.g. ``NRCB1_FULL``."""
        return f"{self.siaf_name}_FULL"


def _make(name: str, siaf: str, sca: int) -> Detector:
    long = siaf.endswith("5")
    return Detector(
        name=name,
        siaf_name=siaf,
        sca_id=sca,
        channel="LONG" if long else "SHORT",
        module=siaf[3],
        gain_e_per_dn=1.82 if long else 2.05,
        readnoise_cds_e=13.25 if long else 15.77,
        dark_e_per_s=0.027 if long else 0.0019,
    )


DETECTORS: dict[str, Detector] = {
    d.name: d
    for d in (
        _make("NRCA1", "NRCA1", 481), _make("NRCA2", "NRCA2", 482),
        _make("NRCA3", "NRCA3", 483), _make("NRCA4", "NRCA4", 484),
        _make("NRCALONG", "NRCA5", 485),
        _make("NRCB1", "NRCB1", 486), _make("NRCB2", "NRCB2", 487),
        _make("NRCB3", "NRCB3", 488), _make("NRCB4", "NRCB4", 489),
        _make("NRCBLONG", "NRCB5", 490),
    )
}
_ALIASES = {d.siaf_name: d.name for d in DETECTORS.values()}


def get_detector(name: str) -> Detector:
    """Look up a detector by DMS (``NRCBLONG``) or SIAF (``NRCB5``) name, case-insensitive.

    Raises ``ValueError`` naming the allowed detectors for anything else.
    """
    key = str(name).strip().upper()
    key = _ALIASES.get(key, key)
    if key not in DETECTORS:
        allowed = ", ".join(DETECTORS)
        raise ValueError(f"unknown NIRCam detector {name!r}; expected one of: {allowed} "
                         "(NRCA5/NRCB5 are accepted for NRCALONG/NRCBLONG)")
    return DETECTORS[key]


def check_filter(detector: Detector, filter_name: str) -> str:
    """Return the upper-cased filter if ``detector``'s channel has it, else raise ``ValueError``."""
    f = str(filter_name).strip().upper()
    if f not in detector.filters:
        chan = "long-wave" if detector.is_long else "short-wave"
        raise ValueError(
            f"filter {filter_name!r} is not a {chan} NIRCam filter, so {detector.name} cannot "
            f"observe through it; {chan} filters are: {', '.join(detector.filters)}"
        )
    return f
