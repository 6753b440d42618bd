"""A plan: a scenario expanded into concrete exposures and products.

:func:`make_plan` turns a :class:`~simval.scenario.Scenario` into a :class:`Plan`:

* **Exposures**, one per tile x filter setting x dither position x detector, in observing
  order (tile outermost, detectors of one readout innermost, as they are read at once).
* **Products**, one mosaic per passband.

Pointing convention
-------------------
``pointing.aperture`` (default ``<first detector>_<subarray>``, e.g. ``NRCB1_SUB400P``) is the
*pointing aperture*. At zero offset its SIAF reference point (V2Ref, V3Ref) lies on the field
centre (``pointing.ra``, ``pointing.dec``) and the V3 axis has position angle
``pointing.pa_v3`` at V1 (the PA_V3 keyword). Offsets are arcsec in the pointing aperture's
ideal frame (pysiaf ``idl``, default planar approximation). An offset (dx, dy) is a
small-angle manoeuvre that moves the reference point to where ideal (dx, dy) was
(:func:`simval.pointing.offset_attitude`), so sources move by (-dx, -dy) in the ideal
frame. Mosaic tiles are offsets
of the zero-offset pointing (step = tile size x (1 - overlap), tile size = extent of all
detectors' apertures in the pointing aperture's ideal frame), and dithers are offsets of
the tile's pointing.

For every exposure the plan gives the reference point of *that detector's* aperture:
``ra_ref_deg, dec_ref_deg`` and ``roll_ref_deg`` (V3 position angle at the reference point,
``wcsinfo.roll_ref``), plus ``pa_v3_deg`` (V3 position angle at V1). The attitude matrix is
exactly ``pysiaf.utils.rotations.attitude(v2_ref_arcsec, v3_ref_arcsec, ra_ref_deg,
dec_ref_deg, roll_ref_deg)``. MIRAGE's ``Telescope: rotation`` is PA_V3 (it derives the
local roll with jwst's ``compute_local_roll``): give it ``pa_v3_deg``, not ``roll_ref_deg``
(see :mod:`simval.run.graph`).

File names and numbers
----------------------
``jw<ppppp><ooo><vvv>_<gg><s><aa>_<eeeee>_<detector>_uncal.fits`` (JWST DMS naming):
program ``ppppp`` and observation ``ooo`` from the scenario (default 1; the whole scenario
is one observation, as in APT where one observation holds all filters of a field); visit
``vvv`` = mosaic tile (1-based, row-major, a tile is a visit as in APT mosaics); visit group
``gg`` = 01; parallel sequence ``s`` = 1 (prime); activity ``aa`` (base 36) = filter
setting (1-based); exposure ``eeeee`` = dither position within the tile (1-based). Detectors
read simultaneously share the name up to the detector. Mosaic products are named like
calwebb_image3's level-3 products: ``jw<ppppp>-o<ooo>_t001_nircam_<opt_elem>`` with
``opt_elem`` the filter and pupil elements sorted and joined by '-' (``clear-f115w``).

Time: the first exposure starts at ``start_time``; each exposure starts when the previous
one ends (``duration_s``, resets included; no slew overheads). Detectors read together
share their times.
"""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from simval import offline
from simval.instruments import miri
from simval.instruments import nircam as nrc
from simval.instruments.miri_detector import Readout as MiriReadout
from simval.instruments.nircam import exposure_base_name
from simval.kit.coron_jobs import CoronKitSpec
from simval.kit.miri_jobs import MiriKitSpec
from simval.kit.spec import DEFAULT_SEED, DarkNeed, KitSpec
from simval.layout import RunLayout
from simval.plan_coron import coron_exposures
from simval.pointing import attitude_at_pa_v3, offset_attitude, tile_step
from simval.scenario import Scenario, normalised, scenario_hash
from simval.scenario.errors import Problem, ScenarioError

if TYPE_CHECKING:
    from rich.table import Table as RichTable

PLAN_VERSION = 1
#: Target number in product names (``t001``): a scenario observes one field.
TARGET_ID = 1
VISIT_GROUP = 1
PARALLEL_SEQUENCE = 1


@dataclass(frozen=True)
class Exposure:
    """One detector's exposure (one ``_uncal.fits`` file). Units in the field names.

    Identifiers: ``index`` (0-based, order of the plan), ``base_name`` (file name without
    ``_uncal.fits``), the JWST ``program .. exposure`` numbers.
    Instrument: ``detector`` (DMS), ``aperture`` (SIAF, MIRAGE ``array_name``), ``subarray``,
    its size ``xsize``/``ysize`` (pixels) and read amplifiers ``namps``; ``filter_name``
    (passband, as in the kit), ``filter_wheel``/``pupil`` (meta.instrument.filter/pupil).
    Readout: ``readpatt``, ``nframes``, ``groupgap``, ``ngroups``, ``nints``,
    ``frames_read`` (per integration) and the times of :class:`simval.instruments.nircam.Timing`.
    Time: ``start_utc``, ``mid_utc``, ``end_utc`` (ISO 8601, UTC).
    Dither: tile (``tile_row``, ``tile_col``, 1-based; offset ``tile_x/y_arcsec``), pattern
    names/totals/positions, ``x/y_offset_arcsec`` (dither offset within the tile, ideal
    frame of the pointing aperture).
    Pointing: ``ra_ref_deg``, ``dec_ref_deg``, ``roll_ref_deg`` at ``v2/v3_ref_arcsec``,
    ``pa_v3_deg`` at V1, ``v3_idl_yang_deg`` and ``vparity`` of the aperture.
    Sky: ``background_mjysr``. ``seed``: the scenario seed (simulators derive per-file seeds
    from it and ``base_name``).
    Pointing error (scenario ``alignment``): ``pointing_error_ra_mas`` (RA cos Dec) and
    ``pointing_error_dec_mas``, the true pointing minus the one recorded in the exposure, mas;
    image2 runs on a recorded pointing offset by minus this.
    """

    index: int
    base_name: str
    program: int
    observation: int
    visit: int
    visit_group: int
    sequence: int
    activity: int
    exposure: int
    detector: str
    aperture: str
    subarray: str
    xsize: int
    ysize: int
    namps: int
    filter_name: str
    filter_wheel: str
    pupil: str
    readpatt: str
    nframes: int
    groupgap: int
    ngroups: int
    nints: int
    frames_read: int
    tframe_s: float
    tgroup_s: float
    integration_time_s: float
    measurement_time_s: float
    exposure_time_s: float
    duration_s: float
    start_utc: str
    mid_utc: str
    end_utc: str
    tile_row: int
    tile_col: int
    tile_x_arcsec: float
    tile_y_arcsec: float
    dither_pattern: str
    primary_dither_total: int
    primary_dither_position: int
    subpixel_dither_type: str
    subpixel_dither_total: int
    subpixel_dither_position: int
    dither_position: int
    x_offset_arcsec: float
    y_offset_arcsec: float
    ra_ref_deg: float
    dec_ref_deg: float
    roll_ref_deg: float
    pa_v3_deg: float
    v2_ref_arcsec: float
    v3_ref_arcsec: float
    v3_idl_yang_deg: float
    vparity: int
    background_mjysr: float
    seed: int
    pointing_error_ra_mas: float = 0.0
    pointing_error_dec_mas: float = 0.0

    @property
    def uncal_name(self) -> str:
        return f"{self.base_name}_uncal.fits"

    @property
    def rate_name(self) -> str:
        return f"{self.base_name}_rate.fits"

    @property
    def cal_name(self) -> str:
        return f"{self.base_name}_cal.fits"

    @property
    def date_obs(self) -> str:
        """Start date, ``YYYY-MM-DD`` (UTC)."""
        return self.start_utc[:10]

    @property
    def time_obs(self) -> str:
        """Start time, ``HH:MM:SS.sss`` (UTC)."""
        return self.start_utc[11:]

    def attitude_matrix(self) -> np.ndarray:
        """3x3 attitude matrix (V2/V3 -> RA/Dec unit vectors) of this exposure."""
        rot = offline.siaf_rotations()
        return rot.attitude(self.v2_ref_arcsec, self.v3_ref_arcsec, self.ra_ref_deg,
                            self.dec_ref_deg, self.roll_ref_deg)


@dataclass(frozen=True)
class Tile:
    """A mosaic tile (one visit): the pointing aperture's reference point at zero dither.

    ``x/y_arcsec`` are the tile's offset from the field centre (ideal frame of the pointing
    aperture); ``roll_ref_deg`` is the V3 position angle at the reference point.
    """

    visit: int
    row: int
    col: int
    x_arcsec: float
    y_arcsec: float
    ra_deg: float
    dec_deg: float
    roll_ref_deg: float


@dataclass(frozen=True)
class Product:
    """One mosaic (calwebb_image3 product) per passband, from every exposure in it."""

    name: str
    filter_name: str
    filter_wheel: str
    pupil: str
    members: tuple[str, ...]

    @property
    def i2d_name(self) -> str:
        return f"{self.name}_i2d.fits"

    @property
    def catalog_name(self) -> str:
        return f"{self.name}_cat.ecsv"

    @property
    def asn_name(self) -> str:
        return f"{self.name}_asn.json"


@dataclass(frozen=True)
class Plan:
    """A scenario's exposures and products. Serialise with :meth:`to_json`.

    ``scenario`` is the normalised scenario content (:func:`simval.scenario.normalised`),
    so a plan file is self-contained; ``scenario_hash`` identifies it.
    ``pointing_aperture``, ``ra_deg``, ``dec_deg``, ``pa_v3_deg``: the zero-offset pointing.
    ``kit_seed``: seed of the synthetic kit; ``uses_kit``: whether CRDS or MIRAGE_DATA come
    from the kit (false only when the scenario names a real CRDS cache and MIRAGE_DATA).
    """

    scenario_name: str
    scenario_hash: str
    scenario_source: str
    scenario: dict[str, Any]
    pointing_aperture: str
    ra_deg: float
    dec_deg: float
    pa_v3_deg: float
    kit_seed: int
    uses_kit: bool
    tiles: tuple[Tile, ...]
    exposures: tuple[Exposure, ...]
    products: tuple[Product, ...]
    version: int = PLAN_VERSION

    @property
    def instrument(self) -> str:
        """``NIRCAM`` or ``MIRI`` (from the scenario; a plan cut to one product has none and
        reads ``NIRCAM``)."""
        return str(self.scenario.get("instrument") or "NIRCAM").upper()

    @property
    def coronagraphy(self) -> dict[str, Any] | None:
        """The scenario's ``coronagraphy`` block (normalised), or None for imaging."""
        return self.scenario.get("coronagraphy")

    def kit_spec(self) -> KitSpec | MiriKitSpec | CoronKitSpec:
        """What the synthetic kit must hold: detectors, filters, and per subarray a dark with
        the most frames any exposure reads (``ngroups * (nframes + groupgap)``), in as many
        noise realizations as :meth:`dark_realizations` hands out in that subarray. For
        MIRI: the filters and every exposure's readout (DARK and RESET are cut to it).
        Coronagraphy: the mask and the filter (:mod:`simval.kit.coron_jobs`)."""
        if self.coronagraphy is not None:
            return CoronKitSpec(masks=(self.coronagraphy["mask"],),
                                filters=tuple(dict.fromkeys(e.filter_name
                                                            for e in self.exposures)),
                                seed=self.kit_seed)
        if self.instrument == "MIRI":
            return MiriKitSpec(
                filters=tuple(dict.fromkeys(e.filter_name for e in self.exposures)),
                readouts=tuple({MiriReadout(e.subarray, e.readpatt, e.ngroups, e.nints)
                                for e in self.exposures}),
                seed=self.kit_seed)
        darks: dict[str, int] = {}
        for e in self.exposures:
            darks[e.subarray] = max(darks.get(e.subarray, 0), e.frames_read)
        ranks = self.dark_realizations()
        per_window = {s: 1 + max(ranks[e.base_name] for e in self.exposures if e.subarray == s)
                      for s in darks}
        return KitSpec(
            detectors=tuple(dict.fromkeys(e.detector for e in self.exposures)),
            filters=tuple(dict.fromkeys(e.filter_name for e in self.exposures)),
            darks=tuple(DarkNeed(s, n, self.correlated_noise, per_window[s])
                        for s, n in sorted(darks.items())),
            seed=self.kit_seed,
        )

    def dark_realizations(self) -> dict[str, int]:
        """Exposure base name -> index of the kit's dark noise realization it uses: its rank
        among the plan's exposures of the same detector, subarray, filter and tile, so no
        two exposures that go into one mosaic at one pointing share their read noise.

        Exposures of other filters (other mosaics) or other tiles (the same detector pixels
        see sky a tile away) reuse the realizations: a full-frame dark of 25 frames is
        ~420 MB, and one per exposure of a 4-visit, 2-filter, 4-dither survey would be
        32 per detector."""
        seen: Counter[tuple] = Counter()
        out = {}
        for e in self.exposures:
            key = (e.detector, e.subarray, e.filter_name, e.tile_row, e.tile_col)
            out[e.base_name] = seen[key]
            seen[key] += 1
        return out

    def dark_realization(self, exposure: Exposure) -> int:
        """The realization :meth:`dark_realizations` gives ``exposure``."""
        return self.dark_realizations()[exposure.base_name]

    @property
    def correlated_noise(self) -> bool:
        """Whether the darks carry 1/f noise and frame offsets (``effects.one_over_f``)."""
        return bool(self.scenario.get("effects", {}).get("one_over_f", True))

    def exposures_in(self, product: Product) -> list[Exposure]:
        names = set(product.members)
        return [e for e in self.exposures if e.base_name in names]

    @property
    def total_duration_s(self) -> float:
        seen: dict[str, float] = {}
        for e in self.exposures:
            seen[e.start_utc] = e.duration_s
        return sum(seen.values())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["exposures"] = [asdict(e) for e in self.exposures]
        d["tiles"] = [asdict(t) for t in self.tiles]
        d["products"] = [{**asdict(p), "members": list(p.members)} for p in self.products]
        return d

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys; floats round-trip exactly)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=1, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        """A plan from its JSON form (``ValueError`` naming the version, or the first
        field that is not what :class:`Plan` declares)."""
        if d.get("version") != PLAN_VERSION:
            raise ValueError(f"plan version {d.get('version')!r} is not {PLAN_VERSION}; "
                             "re-make the plan from its scenario")
        try:
            return plan_adapter().validate_python(d)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            raise ValueError(f"plan: {where}: {err['msg']}") from None

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.from_dict(json.loads(text))


@functools.cache
def plan_adapter() -> TypeAdapter[Plan]:
    """pydantic's validator (and JSON Schema: ``simval schema plan``) of :class:`Plan`."""
    return TypeAdapter(Plan)


# --- naming -------------------------------------------------------------------------------

def product_name(program: int, observation: int, filter_wheel: str, pupil: str,
                 instrument: str = "NIRCAM") -> str:
    """Level-3 product name, e.g. ``jw00001-o001_t001_nircam_clear-f115w`` or, for the MIRI
    imager (no pupil wheel), ``jw00001-o001_t001_miri_f770w``."""
    if instrument.upper() == "MIRI":
        return f"jw{program:05d}-o{observation:03d}_t{TARGET_ID:03d}_miri_{filter_wheel.lower()}"
    elems = sorted({filter_wheel.lower(), pupil.lower()} - {"", "n/a"}, key=str.lower)
    opt = "-".join(elems) or "clear"
    return f"jw{program:05d}-o{observation:03d}_t{TARGET_ID:03d}_nircam_{opt}"


def _isot(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


# --- the plan -----------------------------------------------------------------------------

def _plan_error(scenario: Scenario, path: str, value: Any, message: str, allowed: str):
    return ScenarioError(scenario.source, [Problem(path, value, message, allowed)])


@dataclass(frozen=True)
class _Arm:
    """One detector as the plan sees it: DMS name, SIAF aperture, the key of its filter in
    a filter setting (:meth:`Scenario.filter_settings`), read amplifiers and timing."""

    name: str
    aperture: Any
    channel: str
    namps: int
    timing: Any
    readpatt: str
    nframes: int
    groupgap: int

    def timing_of(self, scenario: Scenario, band: str) -> Any:
        """Exposure timing of ``band`` (MIRI's ``readout.by_filter`` may lengthen it)."""
        if band not in scenario.readout.by_filter:
            return self.timing
        r = scenario.readout.for_filter(band)
        return miri.exposure_timing(r.pattern, scenario.subarray, r.ngroups, r.nints)


def _arms(scenario: Scenario) -> tuple[Any, list[_Arm]]:
    """The instrument's SIAF and the scenario's detectors (NIRCam or the MIRI imager)."""
    readout = scenario.readout
    if scenario.instrument == "MIRI":
        siaf = offline.miri_siaf()
        ap = siaf[f"MIRIM_{scenario.subarray}"]
        timing = miri.exposure_timing(readout.pattern, scenario.subarray, readout.ngroups,
                                      readout.nints)
        return siaf, [_Arm(miri.DETECTOR.name, ap, miri.DETECTOR.name, 4, timing,
                           readout.pattern, 1, 0)]
    siaf = offline.nircam_siaf()
    pattern = readout.read_pattern
    amps = nrc.imaging_subarrays()
    arms = []
    for d in scenario.detector_objects():
        name = f"{d.siaf_name}_{scenario.subarray}"
        if name not in siaf.apertures:
            raise _plan_error(scenario, "subarray", scenario.subarray,
                              f"pysiaf has no aperture {name}", "a subarray pysiaf knows")
        ap = siaf[name]
        namps = amps[d.siaf_name][scenario.subarray]
        timing = nrc.exposure_timing(pattern, readout.ngroups, readout.nints,
                                     int(ap.XSciSize), int(ap.YSciSize), namps)
        arms.append(_Arm(d.name, ap, "LONG" if d.is_long else "SHORT", namps, timing,
                         pattern.name, pattern.nframes, pattern.groupgap))
    return siaf, arms


def make_plan(scenario: Scenario) -> Plan:
    """Expand ``scenario`` into exposures, tiles and products (see the module docstring;
    a coronagraphy scenario: :func:`simval.plan_coron.make_coron_plan`)."""
    if scenario.coronagraphy is not None:
        return _coron_plan(scenario)
    rot = offline.siaf_rotations()
    siaf, arms = _arms(scenario)
    det_aps = {a.name: a.aperture for a in arms}
    pointing_name = scenario.pointing.aperture or arms[0].aperture.AperName
    pointing_ap = siaf[pointing_name]
    if pointing_ap.V2Ref is None or pointing_ap.V3Ref is None:
        raise _plan_error(scenario, "pointing.aperture", pointing_name,
                          "aperture has no reference point", "an aperture with V2Ref/V3Ref")

    att0 = attitude_at_pa_v3(pointing_ap.V2Ref, pointing_ap.V3Ref, scenario.pointing.ra,
                             scenario.pointing.dec, scenario.pointing.pa_v3)
    mosaic = scenario.mosaic
    step_x, step_y = (0.0, 0.0)
    if mosaic.rows > 1 or mosaic.cols > 1:
        step_x, step_y = tile_step(pointing_ap, list(det_aps.values()), mosaic.overlap)

    tiles: list[tuple[Tile, np.ndarray]] = []
    for row in range(mosaic.rows):
        for col in range(mosaic.cols):
            tx = round(float((col - (mosaic.cols - 1) / 2.0) * step_x), 6)
            ty = round(float((row - (mosaic.rows - 1) / 2.0) * step_y), 6)
            att = offset_attitude(att0, pointing_ap, tx, ty)
            ra, dec = rot.pointing(att, pointing_ap.V2Ref, pointing_ap.V3Ref)
            tiles.append((Tile(len(tiles) + 1, row + 1, col + 1, tx, ty, float(ra), float(dec),
                               float(rot.posangle(att, pointing_ap.V2Ref, pointing_ap.V3Ref))),
                          att))

    readout = scenario.readout
    positions = scenario.dither.positions()
    dither = scenario.dither
    pattern_name = "EXPLICIT" if dither.offsets is not None else dither.pattern
    settings = scenario.filter_settings()
    start0 = datetime.fromisoformat(scenario.start_time)
    elapsed = 0.0
    exposures: list[Exposure] = []

    for tile, tile_att in tiles:
        for activity, setting in enumerate(settings, start=1):
            for n, pos in enumerate(positions, start=1):
                att = offset_attitude(tile_att, pointing_ap, pos.x_arcsec, pos.y_arcsec)
                pa_v3 = float(rot.posangle(att, 0.0, 0.0)) % 360.0
                readout_duration = 0.0
                start = start0 + timedelta(seconds=elapsed)
                for det in arms:
                    spec = setting.get(det.channel)
                    if spec is None:
                        continue  # this channel has no filter in this setting
                    ap = det.aperture
                    xsize, ysize = int(ap.XSciSize), int(ap.YSciSize)
                    namps, timing = det.namps, det.timing_of(scenario, spec.name)
                    length = readout.for_filter(spec.name)
                    readout_duration = max(readout_duration, timing.duration_s)
                    ra, dec = rot.pointing(att, ap.V2Ref, ap.V3Ref)
                    roll = float(rot.posangle(att, ap.V2Ref, ap.V3Ref)) % 360.0
                    base = exposure_base_name(scenario.program, scenario.observation,
                                              tile.visit, VISIT_GROUP, PARALLEL_SEQUENCE,
                                              activity, n, det.name)
                    exposures.append(Exposure(
                        index=len(exposures), base_name=base, program=scenario.program,
                        observation=scenario.observation, visit=tile.visit,
                        visit_group=VISIT_GROUP, sequence=PARALLEL_SEQUENCE,
                        activity=activity, exposure=n, detector=det.name,
                        aperture=ap.AperName, subarray=scenario.subarray, xsize=xsize,
                        ysize=ysize, namps=namps, filter_name=spec.name,
                        filter_wheel=spec.filter_wheel, pupil=spec.pupil_wheel,
                        readpatt=det.readpatt, nframes=det.nframes,
                        groupgap=det.groupgap, ngroups=length.ngroups,
                        nints=length.nints, frames_read=timing.frames_read,
                        tframe_s=timing.tframe_s, tgroup_s=timing.tgroup_s,
                        integration_time_s=timing.integration_time_s,
                        measurement_time_s=timing.measurement_time_s,
                        exposure_time_s=timing.exposure_time_s,
                        duration_s=timing.duration_s,
                        start_utc=_isot(start),
                        mid_utc=_isot(start + timedelta(seconds=timing.duration_s / 2.0)),
                        end_utc=_isot(start + timedelta(seconds=timing.duration_s)),
                        tile_row=tile.row, tile_col=tile.col, tile_x_arcsec=tile.x_arcsec,
                        tile_y_arcsec=tile.y_arcsec, dither_pattern=pattern_name,
                        primary_dither_total=max(p.primary_position for p in positions),
                        primary_dither_position=pos.primary_position,
                        subpixel_dither_type=dither.subpixel,
                        subpixel_dither_total=max(p.subpixel_position for p in positions),
                        subpixel_dither_position=pos.subpixel_position,
                        dither_position=n, x_offset_arcsec=pos.x_arcsec,
                        y_offset_arcsec=pos.y_arcsec, ra_ref_deg=float(ra),
                        dec_ref_deg=float(dec), roll_ref_deg=roll, pa_v3_deg=pa_v3,
                        v2_ref_arcsec=float(ap.V2Ref), v3_ref_arcsec=float(ap.V3Ref),
                        v3_idl_yang_deg=float(ap.V3IdlYAngle), vparity=int(ap.VIdlParity),
                        background_mjysr=scenario.background_for(spec.name, det.name),
                        seed=scenario.seed,
                    ))
                elapsed += readout_duration
    exposures = _with_pointing_errors(exposures, scenario)

    products = []
    for band in scenario.bands():
        members = tuple(e.base_name for e in exposures if e.filter_name == band)
        first = next(e for e in exposures if e.filter_name == band)
        products.append(Product(product_name(scenario.program, scenario.observation,
                                             first.filter_wheel, first.pupil,
                                             scenario.instrument),
                                band, first.filter_wheel, first.pupil, members))

    return _assemble(scenario, pointing_ap.AperName, tuple(t for t, _ in tiles),
                     tuple(exposures), tuple(products),
                     uses_kit=scenario.crds.kit is not None or scenario.mirage_data is None)


def _assemble(scenario: Scenario, pointing_aperture: str, tiles: tuple[Tile, ...],
              exposures: tuple[Exposure, ...], products: tuple[Product, ...], *,
              uses_kit: bool) -> Plan:
    """The plan of ``scenario`` with these exposures and products (the scenario's own
    fields, hash and kit seed filled in)."""
    kit = scenario.crds.kit
    return Plan(
        scenario_name=scenario.name, scenario_hash=scenario_hash(scenario),
        scenario_source=scenario.source, scenario=normalised(scenario),
        pointing_aperture=pointing_aperture, ra_deg=scenario.pointing.ra,
        dec_deg=scenario.pointing.dec, pa_v3_deg=scenario.pointing.pa_v3,
        kit_seed=kit.seed if kit is not None else DEFAULT_SEED, uses_kit=uses_kit,
        tiles=tiles, exposures=exposures, products=products)


def _coron_plan(scenario: Scenario) -> Plan:
    """The plan of a coronagraphy scenario (:mod:`simval.plan_coron`): its exposures and
    one coron3 product of all of them, named like coron3's (``..._<filter>-<pupil>-
    <subarray>``)."""
    exposures = tuple(Exposure(**d) for d in coron_exposures(scenario))
    first = exposures[0]
    name = (product_name(scenario.program, scenario.observation, first.filter_wheel,
                         first.pupil) + f"-{first.subarray.lower()}")
    product = Product(name, first.filter_name, first.filter_wheel, first.pupil,
                      tuple(e.base_name for e in exposures))
    tile = Tile(1, 1, 1, 0.0, 0.0, first.ra_ref_deg, first.dec_ref_deg, first.roll_ref_deg)
    return _assemble(scenario, first.aperture, (tile,), exposures, (product,),
                     uses_kit=scenario.crds.path is None)


#: Salt of the pointing errors' random draws (with the scenario seed).
POINTING_ERROR_SALT = 0x7EA1


def _with_pointing_errors(exposures: list[Exposure], scenario: Scenario) -> list[Exposure]:
    """The exposures with their pointing errors (scenario ``alignment``): unit normal
    pairs drawn in plan order, one per exposure number of a visit (shared by the detectors
    that observed together) or one per visit, times ``pointing_error_mas``; the same draws
    for every size, so a sweep over sizes scales one pattern."""
    align = scenario.alignment
    if align is None or align.pointing_error_mas == 0.0:
        return exposures
    rng = np.random.default_rng([scenario.seed, POINTING_ERROR_SALT])
    draws: dict[tuple[int, ...], tuple[float, float]] = {}
    out = []
    for e in exposures:
        key = (e.visit,) if align.pointing_error_per == "visit" else \
            (e.visit, e.activity, e.exposure)
        if key not in draws:
            dx, dy = rng.standard_normal(2)
            draws[key] = (round(float(dx) * align.pointing_error_mas, 6),
                          round(float(dy) * align.pointing_error_mas, 6))
        out.append(replace(e, pointing_error_ra_mas=draws[key][0],
                           pointing_error_dec_mas=draws[key][1]))
    return out


# --- a run directory's plan --------------------------------------------------------------

def load_plan(run: str | os.PathLike | RunLayout) -> Plan:
    """The run's plan (``plan.json``); ``FileNotFoundError`` naming the file if absent."""

    layout = run if isinstance(run, RunLayout) else RunLayout(Path(run))
    if not layout.plan.is_file():
        raise FileNotFoundError(f"{layout.plan}: no plan.json in the run directory")
    return Plan.from_json(layout.plan.read_text())


def product_for(plan: Plan, band: str) -> Product:
    """The plan's mosaic of ``band`` (case-insensitive); ``KeyError`` lists the bands."""
    wanted = band.strip().upper()
    for p in plan.products:
        if p.filter_name.upper() == wanted:
            return p
    raise KeyError(f"the plan has no product for filter {band!r}; filters: "
                   f"{', '.join(p.filter_name for p in plan.products)}")


def plan_table(plan: Plan) -> RichTable:
    """A ``rich.table.Table`` of the plan's exposures (for ``simval plan SCENARIO``)."""
    from rich.table import Table

    n_files = len(plan.exposures)
    table = Table(title=f"{plan.scenario_name}  ({plan.scenario_hash})  {n_files} exposures, "
                        f"{len(plan.products)} mosaics, {plan.total_duration_s:.0f} s",
                  caption="mosaics: " + ", ".join(p.name for p in plan.products))
    for col, justify in (("#", "right"), ("file", "left"), ("filter", "left"),
                         ("tile", "right"), ("dither", "right"), ('dx "', "right"),
                         ('dy "', "right"), ("RA ref", "right"), ("Dec ref", "right"),
                         ("start (UTC)", "left"), ("t_exp s", "right")):
        table.add_column(col, justify=justify)
    for e in plan.exposures:
        table.add_row(str(e.index), e.uncal_name, e.filter_name, str(e.visit),
                      str(e.dither_position), f"{e.x_offset_arcsec:+.3f}",
                      f"{e.y_offset_arcsec:+.3f}", f"{e.ra_ref_deg:.6f}",
                      f"{e.dec_ref_deg:+.6f}", e.start_utc, f"{e.exposure_time_s:.1f}")
    return table


__all__ = ["Exposure", "Plan", "Product", "Tile", "attitude_at_pa_v3", "exposure_base_name",
           "load_plan", "make_plan", "offset_attitude", "plan_table", "product_for",
           "product_name"]
