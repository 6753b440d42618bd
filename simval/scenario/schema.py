"""The scenario schema: one pydantic model, strict types, no unknown keys anywhere.

A scenario says what to observe (instrument, detectors, subarray, filters, readout,
pointing, dither, mosaic, sky background, detector effects, source catalog), how to simulate
and calibrate it (simulator, CRDS, MIRAGE_DATA, jwst step parameters, background recipe)
and how to judge the result (comparison). Units are in the field names or descriptions:
angles in degrees (``ra``, ``dec``, ``pa_v3``) or arcsec (dither offsets), the background in
MJy/sr, match radius in milliarcsec. ``simval scenario schema`` prints the JSON schema
(:func:`scenario_json_schema`) with every field's description.

Cross-field rules (a detector's channel must see every filter, a subarray must exist on every
detector, ngroups within the pattern's maximum) are checked here so that every invalid
scenario fails at load time with the dotted path of the field to fix.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from simval.instruments import miri, nircam
from simval.instruments.nircam import DETECTORS, LW_FILTERS, SW_FILTERS, Detector, get_detector
from simval.instruments.nircam_coron import get_mask
from simval.scenario.alignment import Alignment
from simval.scenario.base import StrictModel, base_dir, instrument_of, or_shorthand, resolve
from simval.scenario.coronagraphy import Coronagraphy
from simval.scenario.errors import FieldError
from simval.scenario.inputs import (
    Catalog,
    Comparison,
    Crds,
    Effects,
    ExtendedEmission,
    Simulator,
)
from simval.scenario.observation import (
    ChannelFilters,
    Dither,
    FiltersField,
    FilterSpec,
    Mosaic,
    Pointing,
    Readout,
)
from simval.scenario.pipeline_params import validate_pipeline
from simval.scenario.sweep import check_fault_keys, check_sweep_keys

#: JWST's launch: no observation (and no kit reference USEAFTER) precedes it.
EARLIEST_START = datetime(2021, 12, 25)
DEFAULT_START = "2023-01-01T00:00:00.000"

__all__ = ["ChannelFilters", "Dither", "FilterSpec", "Mosaic", "Pointing", "Readout",
           "Scenario"]


# --- the scenario ---------------------------------------------------------------------------

class Fault(StrictModel):
    """One fault of a panel: a named calibration change and the metrics that must flag it."""

    name: str = Field(..., min_length=1, description="what is wrong and by how much, e.g. "
                                                     "'gain x1.05'")
    set: dict[str, Any] = Field(..., description="dotted scenario key -> value, as in a "
                                                 "sweep (pipeline.* may be left out)")
    expect: list[str] = Field(default_factory=list, description="metrics expected to flag "
                              "the fault (fail their threshold)")
    benign: str | None = Field(None, min_length=1, description="instead of expect: why the "
                               "fault is harmless at this size; the panel then checks that "
                               "no threshold flags it")

    @model_validator(mode="after")
    def _expect_or_benign(self) -> Fault:
        if bool(self.expect) == bool(self.benign):
            raise FieldError("a fault names either the metrics expected to flag it (expect) "
                             "or why it is harmless at its size (benign)",
                             value=self.name, subpath=("expect",),
                             allowed="expect: [metric, ...] or benign: 'reason'")
        return self

    @field_validator("set")
    @classmethod
    def _keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        check_fault_keys(v)
        return v


class Scenario(StrictModel):
    """A validated simval scenario. Load one with :func:`simval.scenario.load_scenario`.

    Fields (YAML keys; every mapping refuses unknown keys; names are case-insensitive and
    stored upper-case)::

        name: quickstart                  # letters, digits, _ . -
        description: free text
        seed: 20240611                    # every random draw of a run derives from it
        instrument: NIRCAM                # or MIRI (the imager; simval's own simulator)
        program: 1                        # JWST ids used in file names (1..99999, 1..999)
        observation: 1
        start_time: 2023-01-01T00:00:00   # UTC, first exposure; the rest follow back to back
        detectors: [NRCB1]                # DMS names; NRCA5/NRCB5 accepted for *LONG
        subarray: SUB400P                 # must exist on every detector (MIRAGE/SIAF)
        filters: [F115W, {name: F150W, pupil: CLEAR}]   # every detector sees every filter
        #   or {short: [F115W, F150W], long: [F277W, F444W]}  (pairs read simultaneously)
        readout: {pattern: BRIGHT2, ngroups: 6, nints: 1}  # ngroups <= pattern maxgroups
        #   MIRI: by_filter: {F1500W: {ngroups: 80, nints: 2}}  (per-filter groups, ints)
        pointing: {ra: 53.16, dec: -27.79, pa_v3: 0.0, aperture: NRCB1_SUB400P}  # deg
        dither: {pattern: INTRAMODULEBOX, points: 4, subpixel: STANDARD, subpixel_points: 2}
        #   or {offsets: [[dx, dy], ...]}   arcsec, ideal frame of the pointing aperture
        mosaic: {rows: 1, cols: 1, overlap: 0.1}
        background_mjysr: 0.25            # or {F115W: 0.22, F150W: 0.25, all: ...}, MJy/sr
        effects: {poisson: true, cosmic_rays: {library: SUNMIN, scale: 1.0}, ipc: true,
                  crosstalk: true}
        catalog: {generator: {kind: simple, n_stars: 30, n_galaxies: 30, mag_range: [18, 26]}}
        extended_emission: {file: dust.fits, scale: {F770W: 1.0, F1500W: 3.0}}   # MIRI
        coronagraphy: {mask: MASKA335R, star_abmag: 8, rolls_deg: [0, 10],       # no catalog
                       companions: [{separation_arcsec: 1, pa_deg: 60, contrast: 1e-4}],
                       reference: {dither: 5-POINT-BOX, wavefront_drift: 0.05}}
        #   or {file: catalogs/field.ecsv, format: dream|jaguar|mirage|generic,
        #       column_map: {simval_name: file_column}}   (path relative to the YAML file)
        simulator: {backend: mirage}
        crds: {kit: {seed: 20221, context: jwst_0001.pmap}}   # default: kit, newest context
        #   or {path: /real/crds_cache, context: jwst_1413.pmap}
        mirage_data: null                 # a real MIRAGE_DATA; default: the kit's
        pipeline:                         # jwst names, validated against the installed jwst
          image3: {tweakreg: {skip: true}, skymatch: {skystat: median}}
        background_recipe: skymatch       # or median_masked
        comparison: {match_radius_mas: 100,
                     thresholds: {metric: {F115W: {min: .., max: .., abs_max: ..}}}}
        environment: jwst-1.20.2          # calibrate with another jwst (simval env create)
        alignment: {pointing_error_mas: 20, abs_refcat: {max_mag: 22}}   # tweakreg studies
        sweep: {image3.skymatch.skymethod: [local, global, match]}   # simval sweep

    Derived views: :meth:`filter_settings`, :meth:`bands`, :meth:`background_for`,
    :meth:`detector_objects`, :meth:`resolve_path`; ``dither.positions()``.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64,
                      description="scenario name (letters, digits, _ . -); names run dirs")
    description: str = Field("", description="free text")
    seed: int = Field(ge=0, lt=2**32, description="seed of every random draw of a run")
    instrument: Literal["NIRCAM", "MIRI"] = Field(
        "NIRCAM", description="NIRCAM (simulated with MIRAGE) or MIRI (the imager, simulated "
                              "with simval's own ramp simulator)")
    program: int = Field(1, ge=1, le=99999, description="JWST program id in file names")
    observation: int = Field(1, ge=1, le=999, description="observation number in file names")
    coronagraphy: Coronagraphy | None = Field(
        None, description="a NIRCam coronagraphic observation (target behind a mask at "
                          "rolls, companions, a PSF reference on a small-grid dither), "
                          "simulated by simval and calibrated by calwebb_coron3; detectors, "
                          "subarray and filters then default to the mask's and there is no "
                          "catalog")
    start_time: str = Field(DEFAULT_START, description="UTC start of the first exposure "
                                                       "(ISO 8601); later ones follow back "
                                                       "to back")
    detectors: list[str] = Field(min_length=1, description="NIRCam detectors, DMS names "
                                 "(NRCA1..NRCA4, NRCALONG, NRCB1..NRCB4, NRCBLONG; NRCA5/NRCB5 "
                                 "accepted); MIRI: [MIRIMAGE]")
    subarray: str = Field(description="subarray read on every detector (NIRCam FULL, SUB400P, "
                                      "...; MIRI FULL, BRIGHTSKY, SUB256, SUB128, SUB64)")
    filters: FiltersField = Field(description="list of filters every detector observes, or "
                                              "{short: [...], long: [...]} paired by index")
    readout: Readout
    pointing: Pointing
    dither: Dither = Field(default_factory=Dither)
    mosaic: Mosaic = Field(default_factory=Mosaic)
    background_mjysr: dict[str, float] = Field(
        default_factory=lambda: {"all": 0.0},
        description="uniform sky background in MJy/sr: a number, or filter -> number "
                    "('all' for the rest); the simulator converts it with the photometric "
                    "calibration (MIRAGE's bkgdrate is ADU/s/pixel)",
        json_schema_extra=or_shorthand({"type": "number", "minimum": 0}))
    background_detector_scale: dict[str, float] = Field(
        default_factory=dict,
        description="detector -> factor on its sky (default 1): a sky that differs between "
                    "the detectors of one exposure (scattered light, wisps), which skymatch "
                    "cannot follow (it fits one sky per exposure across its detectors)")
    effects: Effects = Field(default_factory=Effects)
    catalog: Catalog | None = Field(None, description="the input catalog (required, except "
                                    "for coronagraphy, whose scene is its star and companions)")
    extended_emission: ExtendedEmission | None = Field(
        None, description="MIRI, and NIRCam coronagraphy (a disk around the target): an "
                          "extended-emission image (FITS, celestial WCS, MJy/sr) added to "
                          "the scene, PSF-convolved; NIRCam imaging's MIRAGE takes extended "
                          "sources through its own catalogs")
    simulator: Simulator = Field(default_factory=Simulator)
    crds: Crds = Field(default_factory=Crds)
    mirage_data: str | None = Field(None, description="a real MIRAGE_DATA directory; default: "
                                                      "the kit's")
    pipeline: dict[str, Any] = Field(
        default_factory=dict,
        description="jwst parameters: detector1|image2|image3|coron3 -> step -> parameter -> "
                    "value, names exactly as in jwst (validated against the installed jwst)")
    background_recipe: Literal["skymatch", "median_masked"] = Field(
        "skymatch",
        description="skymatch: the pipeline's skymatch as configured; median_masked: skymatch "
                    "with subtract false, then a per-exposure sigma-clipped median of the "
                    "source-masked data is subtracted")
    comparison: Comparison = Field(default_factory=Comparison)
    environment: str | None = Field(
        None, description="a pipeline environment made by `simval env create` (e.g. "
                          "jwst-1.20.2): the calibration stages run in it, in a subprocess "
                          "with the same CRDS cache; default: simval's own jwst")
    alignment: Alignment | None = Field(
        None, description="errors in each exposure's recorded pointing (mas, seeded) and "
                          "tweakreg's abs_refcat made from the truth's stars; calibration-"
                          "side, so sweepable")
    sweep: dict[str, list[Any]] | list[dict[str, Any]] = Field(
        default_factory=dict,
        description="calibrations of the same simulated data (`simval sweep`): a grid, dotted "
                    "scenario key -> list of values (every combination), e.g. "
                    "image3.skymatch.skymethod: [local, global, match] (pipeline.* may be "
                    "left out), crds.kit.derive.photom_scale: [1.0, 1.05], crds.context: "
                    "[jwst_1100.pmap, ...]; or a list of variants, each {dotted key: value} "
                    "({} = as written); a step key (image3.outlier_detection) takes "
                    "{parameter: value} mappings merged over the step's; only keys under "
                    "pipeline, crds, background_recipe, comparison, environment and alignment")

    faults: list[Fault] = Field(
        default_factory=list,
        description="a fault panel (`simval panel`): each fault is the same simulated data "
                    "calibrated with keys changed (crds.kit.derive.gain_scale: 1.05, "
                    "image3.skymatch.skystat: mode, ...) and names the metrics expected to "
                    "flag it; the metrics need thresholds in comparison.thresholds")

    _source: str = PrivateAttr(default="<scenario>")
    _base_dir: Path | None = PrivateAttr(default=None)

    # field validators run in field order, so later ones see earlier values in info.data

    @field_validator("instrument", mode="before")
    @classmethod
    def _instrument(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().upper() not in ("NIRCAM", "MIRI"):
            raise FieldError("not a supported instrument: NIRCam imaging (MIRAGE) and the "
                             "MIRI imager (simval's simulator)", allowed="NIRCAM, MIRI")
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("start_time", mode="before")
    @classmethod
    def _start(cls, v: Any) -> Any:
        if isinstance(v, datetime):
            t = v
        elif isinstance(v, date):
            t = datetime(v.year, v.month, v.day)
        elif isinstance(v, str):
            try:
                t = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
            except ValueError:
                raise FieldError("not an ISO 8601 date/time",
                                 allowed="YYYY-MM-DDTHH:MM:SS[.sss] (UTC)") from None
        else:
            return v
        if t.tzinfo is not None:
            t = t.astimezone(UTC).replace(tzinfo=None)
        if t < EARLIEST_START:
            raise FieldError("before JWST's launch", allowed="UTC on or after 2021-12-25")
        return t.isoformat(timespec="milliseconds")

    @field_validator("detectors")
    @classmethod
    def _detectors(cls, v: list[str], info: ValidationInfo) -> list[str]:
        coron = info.data.get("coronagraphy")
        if coron is not None:
            det = get_mask(coron.mask).detector
            try:
                names = [get_detector(str(d)).name for d in v]
            except ValueError:
                names = []
            if names != [det]:
                raise FieldError(f"{coron.mask} is read by {det} alone", allowed=f"[{det}] "
                                 "(or omit detectors)")
            return [det]
        if info.data.get("instrument") == "MIRI":
            names = [str(d).strip().upper() for d in v]
            if names != [miri.DETECTOR.name]:
                raise FieldError("the MIRI imager has one detector", allowed="[MIRIMAGE]")
            return names
        out: list[str] = []
        items = []
        for i, name in enumerate(v):
            try:
                det = get_detector(name).name
            except ValueError:
                items.append(((i,), name, "unknown NIRCam detector",
                              ", ".join(DETECTORS) + " (NRCA5/NRCB5 = NRCALONG/NRCBLONG)"))
                continue
            if det in out:
                items.append(((i,), name, "detector listed twice", "each detector once"))
            out.append(det)
        if items:
            raise FieldError("invalid detectors", items=items)
        return out

    @field_validator("subarray")
    @classmethod
    def _subarray(cls, v: str, info: ValidationInfo) -> str:
        v = v.strip().upper()
        coron = info.data.get("coronagraphy")
        if coron is not None:
            mask = get_mask(coron.mask)
            if v != mask.subarray:
                raise FieldError(f"{mask.name} is simulated in its own subarray",
                                 allowed=f"{mask.subarray} (or omit subarray)")
            return v
        if info.data.get("instrument") == "MIRI":
            if v not in miri.SUBARRAYS:
                raise FieldError("not a MIRI imaging subarray",
                                 allowed=", ".join(miri.SUBARRAYS))
            return v
        table = nircam.imaging_subarrays()
        dets = [get_detector(d) for d in info.data.get("detectors", [])]
        for det in dets:
            have = table.get(det.siaf_name, {})
            if v not in have:
                common = [s for s in have if all(s in table.get(d.siaf_name, {})
                                                 for d in dets)]
                raise FieldError(
                    f"no imaging subarray {v} on {det.name} (no aperture {det.siaf_name}_{v} "
                    "in MIRAGE's NIRCam_subarray_definitions.list)",
                    allowed=f"for {', '.join(d.name for d in dets)}: " + ", ".join(common))
        return v

    @field_validator("filters")
    @classmethod
    def _observable(cls, v: list[FilterSpec] | ChannelFilters,
                    info: ValidationInfo) -> list[FilterSpec] | ChannelFilters:
        if instrument_of(info) == "MIRI":
            return _check_miri_filters(v)
        coron = info.data.get("coronagraphy")
        if coron is not None:
            return _check_coron_filters(v, get_mask(coron.mask))
        dets = [get_detector(d) for d in info.data.get("detectors", [])]
        if isinstance(v, list):
            return _check_filter_list(v, dets)
        return _check_channel_filters(v, dets)

    @field_validator("background_mjysr", mode="before")
    @classmethod
    def _background(cls, v: Any) -> Any:
        if isinstance(v, str):
            raise FieldError("must be a number (named levels call an online service)",
                             allowed="a number >= 0 in MJy/sr, or filter -> number")
        if isinstance(v, int | float) and not isinstance(v, bool):
            return {"all": float(v)}
        if isinstance(v, dict):
            return {(k.strip().upper() if isinstance(k, str) and k.lower() != "all" else k): x
                    for k, x in v.items()}
        return v

    @field_validator("background_mjysr")
    @classmethod
    def _background_values(cls, v: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        for key, x in v.items():
            if x < 0 or x > 1000:
                raise FieldError("sky background out of range", value=x, subpath=(key,),
                                 allowed="0 <= MJy/sr <= 1000 (zodi ~0.1-1 at 1-5 µm)")
        filters = info.data.get("filters")
        if filters is None:
            return v
        bands = _bands(filters)
        for key in v:
            if key != "all" and key not in bands:
                raise FieldError("not one of the scenario's filters", value=key,
                                 subpath=(key,), allowed=", ".join(["all", *bands]))
        missing = [b for b in bands if b not in v]
        if missing and "all" not in v:
            raise FieldError(f"no background for {', '.join(missing)}",
                             allowed="a value for every filter, or an 'all' entry")
        return v

    @field_validator("background_detector_scale")
    @classmethod
    def _detector_sky(cls, v: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        if v and info.data.get("instrument") == "MIRI":
            raise FieldError("one detector: give its sky in background_mjysr",
                             allowed="{} (omit it) for MIRI")
        names = [get_detector(d).name for d in info.data.get("detectors", [])]
        out = {}
        for key, x in v.items():
            try:
                name = get_detector(str(key)).name
            except ValueError:
                name = None
            if name not in names:
                raise FieldError("not one of the scenario's detectors", value=key,
                                 subpath=(key,), allowed=", ".join(names))
            if not 0.0 < x <= 10.0:
                raise FieldError("sky factor out of range", value=x, subpath=(key,),
                                 allowed="0 < factor <= 10")
            out[name] = float(x)
        return out

    @field_validator("mirage_data")
    @classmethod
    def _mirage_data(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and not resolve(v, base_dir(info)).is_dir():
            raise FieldError(f"MIRAGE_DATA directory not found: "
                             f"{resolve(v, base_dir(info))}", allowed="an existing directory")
        return v

    @field_validator("pipeline")
    @classmethod
    def _pipeline(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return validate_pipeline(v, base_dir(info))

    @field_validator("sweep")
    @classmethod
    def _sweep(cls, v: dict[str, list[Any]] | list[dict[str, Any]]
               ) -> dict[str, list[Any]] | list[dict[str, Any]]:
        check_sweep_keys(v)
        return v

    @model_serializer(mode="wrap")
    def _serialize(self, handler: Any) -> dict[str, Any]:
        # unset alignment and detector sky factors are absent, so adding them left existing
        # scenario hashes alone
        data = handler(self)
        if isinstance(data, dict) and data.get("alignment") is None:
            data.pop("alignment", None)
        if isinstance(data, dict) and not data.get("background_detector_scale"):
            data.pop("background_detector_scale", None)
        for key in ("coronagraphy", "catalog"):  # absent when unset, as above
            if isinstance(data, dict) and data.get(key) is None:
                data.pop(key, None)
        return data

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        self._catalog_or_coronagraphy()
        if self.instrument == "MIRI":
            self._miri_checks()
        elif self.coronagraphy is not None:
            self._coron_checks()
        elif self.simulator.backend != "mirage":
            raise FieldError("NIRCam imaging is simulated with MIRAGE",
                             value=self.simulator.backend, absolute=True,
                             subpath=("simulator", "backend"), allowed="mirage")
        self._readout_by_filter()
        self._extended_emission()
        skymatch = self.pipeline.get("image3", {}).get("skymatch", {})
        if self.background_recipe == "median_masked" and skymatch.get("subtract") is True:
            raise FieldError("background_recipe median_masked subtracts its own sky, so "
                             "skymatch must not", value=True, absolute=True,
                             subpath=("pipeline", "image3", "skymatch", "subtract"),
                             allowed="false (or omit it)")
        for i, fault in enumerate(self.faults):
            for j, metric in enumerate(fault.expect):
                if metric not in self.comparison.thresholds:
                    raise FieldError("a fault's expected metric needs a threshold to be "
                                     "flagged by", value=metric, absolute=True,
                                     subpath=("faults", i, "expect", j),
                                     allowed=", ".join(self.comparison.thresholds) or
                                     "a metric of comparison.thresholds")
        bands = self.bands()
        for metric, per_filter in self.comparison.thresholds.items():
            for key in per_filter:
                if key != "all" and key not in bands:
                    raise FieldError("not one of the scenario's filters", value=key,
                                     absolute=True,
                                     subpath=("comparison", "thresholds", metric, key),
                                     allowed=", ".join(["all", *bands]))
        return self

    def _catalog_or_coronagraphy(self) -> None:
        if self.coronagraphy is None and self.catalog is None:
            raise FieldError("missing: the input catalog", value=None, absolute=True,
                             subpath=("catalog",),
                             allowed="{generator: {...}} or {file: ..., format: ...}")
        if self.coronagraphy is not None and self.catalog is not None:
            raise FieldError("a coronagraphy scene is its star and companions "
                             "(coronagraphy.star_abmag, coronagraphy.companions)",
                             value="catalog", absolute=True, subpath=("catalog",),
                             allowed="no catalog")

    def _coron_checks(self) -> None:
        if self.instrument != "NIRCAM":
            raise FieldError("coronagraphy is simulated for NIRCam", value=self.instrument,
                             absolute=True, subpath=("instrument",), allowed="NIRCAM")
        for key, default in (("dither", Dither()), ("mosaic", Mosaic())):
            if getattr(self, key) != default:
                raise FieldError("a coronagraphic observation has no imaging dither or "
                                 "mosaic: its rolls and the reference's small grid are in "
                                 "coronagraphy", value=key, absolute=True, subpath=(key,),
                                 allowed="omit it")
        if self.simulator.backend == "mirage":
            if "backend" in self.simulator.model_fields_set:
                raise FieldError("MIRAGE does not simulate coronagraphy", value="mirage",
                                 absolute=True, subpath=("simulator", "backend"),
                                 allowed="simval-coron")
            object.__setattr__(self, "simulator", self.simulator.model_copy(
                update={"backend": "simval-coron"}))
        elif self.simulator.backend != "simval-coron":
            raise FieldError("coronagraphy is simulated by simval's coronagraphic simulator",
                             value=self.simulator.backend, absolute=True,
                             subpath=("simulator", "backend"), allowed="simval-coron")
        if self.crds.kit is not None and self.crds.kit.derive is not None:
            raise FieldError("derived contexts are made from the imaging kits", absolute=True,
                             value="derive", subpath=("crds", "kit", "derive"),
                             allowed="no derive for coronagraphy")

    def _extended_emission(self) -> None:
        ext = self.extended_emission
        if ext is None:
            return
        if self.instrument != "MIRI" and self.coronagraphy is None:
            raise FieldError("an extended-emission image is simulated for MIRI imaging and "
                             "NIRCam coronagraphy (a disk around the target)",
                             value=ext.file, absolute=True,
                             subpath=("extended_emission", "file"),
                             allowed="instrument: MIRI or a coronagraphy block (or remove "
                                     "extended_emission)")
        bands = self.bands()
        for key in ext.scale:
            if key != "all" and key not in bands:
                raise FieldError("not one of the scenario's filters", value=key,
                                 absolute=True, subpath=("extended_emission", "scale", key),
                                 allowed=", ".join(["all", *bands]))

    def _readout_by_filter(self) -> None:
        bands = self.bands()
        for band, length in self.readout.by_filter.items():
            where = ("readout", "by_filter", band)
            if self.instrument != "MIRI":
                raise FieldError("NIRCam's channels read together: a scenario has one "
                                 "readout", value=band, absolute=True, subpath=where,
                                 allowed="no by_filter (make one scenario per readout)")
            if band not in bands:
                raise FieldError("not one of the scenario's filters", value=band,
                                 absolute=True, subpath=where, allowed=", ".join(bands))
            if length.ngroups < miri.MIN_GROUPS:
                raise FieldError("too few groups for a MIRI ramp", value=length.ngroups,
                                 absolute=True, subpath=(*where, "ngroups"),
                                 allowed=f">= {miri.MIN_GROUPS}")

    def _miri_checks(self) -> None:
        try:
            miri.check_readout(self.readout.pattern, self.subarray)
        except ValueError as exc:
            raise FieldError(str(exc), value=self.readout.pattern, absolute=True,
                             subpath=("readout", "pattern"),
                             allowed="FASTR1 (SLOWR1 reads FULL only)") from None
        if self.simulator.backend == "mirage":
            if "backend" in self.simulator.model_fields_set:
                raise FieldError("MIRAGE does not simulate MIRI", value="mirage",
                                 absolute=True, subpath=("simulator", "backend"),
                                 allowed="simval-miri")
            object.__setattr__(self, "simulator", self.simulator.model_copy(
                update={"backend": "simval-miri"}))

    # --- derived views ------------------------------------------------------------------

    @property
    def source(self) -> str:
        """The YAML file this scenario came from (or ``<scenario>``)."""
        return self._source

    @property
    def base_dir(self) -> Path | None:
        """Directory relative paths in the scenario start from."""
        return self._base_dir

    def resolve_path(self, path: str) -> Path:
        """A path written in the scenario, made absolute (relative to the scenario file)."""
        return resolve(path, self._base_dir)

    def detector_objects(self) -> list[Detector]:
        """The NIRCam detectors (``ValueError`` for a MIRI scenario)."""
        if self.instrument != "NIRCAM":
            raise ValueError(f"{self.source}: a {self.instrument} scenario has no NIRCam "
                             "detectors")
        return [get_detector(d) for d in self.detectors]

    def filter_settings(self) -> list[dict[str, FilterSpec]]:
        """Filter settings in observing order, each ``{channel: FilterSpec}`` observed at once.

        A plain list gives one setting per filter; the per-channel form pairs ``short[i]``
        with ``long[i]`` (a shorter list simply ends earlier).
        """
        if isinstance(self.filters, list):
            if self.instrument == "MIRI":
                return [{"MIRIMAGE": f} for f in self.filters]
            return [{("LONG" if f.name in LW_FILTERS else "SHORT"): f} for f in self.filters]
        n = max(len(self.filters.short), len(self.filters.long))
        out = []
        for i in range(n):
            setting = {}
            if i < len(self.filters.short):
                setting["SHORT"] = self.filters.short[i]
            if i < len(self.filters.long):
                setting["LONG"] = self.filters.long[i]
            out.append(setting)
        return out

    def bands(self) -> list[str]:
        """Distinct passband names in observing order."""
        return _bands(self.filters)

    def background_for(self, band: str, detector: str | None = None) -> float:
        """Sky background of ``band`` in MJy/sr (on ``detector``: times its
        ``background_detector_scale``)."""
        sky = self.background_mjysr.get(band, self.background_mjysr.get("all", 0.0))
        return sky * self.background_detector_scale.get(str(detector), 1.0)


def _bands(filters: list[FilterSpec] | ChannelFilters) -> list[str]:
    specs = filters if isinstance(filters, list) else [*filters.short, *filters.long]
    out: list[str] = []
    for f in specs:
        if f.name not in out:
            out.append(f.name)
    return out


def _check_coron_filters(v: list[FilterSpec] | ChannelFilters, mask: Any) -> list[FilterSpec]:
    names = [f.name for f in v] if isinstance(v, list) else None
    if names is None or len(names) != 1 or names[0] not in mask.filters:
        raise FieldError(f"a coronagraphy scenario observes one filter {mask.name} is used "
                         "with", value=names, allowed=", ".join(mask.filters))
    return v


def _check_miri_filters(v: list[FilterSpec] | ChannelFilters) -> list[FilterSpec]:
    if not isinstance(v, list):
        raise FieldError("the MIRI imager has one channel", allowed="a list of filters")
    items = []
    seen: set[str] = set()
    for i, f in enumerate(v):
        if f.name in seen:
            items.append(((i,), f.name, "filter listed twice", "each filter once"))
        seen.add(f.name)
        try:
            miri.calibrated_filter(f.name)
        except ValueError as exc:
            items.append(((i, "name"), f.name, str(exc).split("; ")[0],
                          str(exc).split("; ")[1].removeprefix("it calibrates: ")))
    if not v:
        items.append(((), [], "at least one filter is needed", ", ".join(miri.FILTERS)))
    if items:
        raise FieldError("filters not usable", items=items)
    return v


def _check_filter_list(v: list[FilterSpec], dets: list[Detector]) -> list[FilterSpec]:
    items = []
    seen: set[tuple[str, str | None]] = set()
    for i, f in enumerate(v):
        if (f.name, f.pupil) in seen:
            items.append(((i,), f.name, "filter listed twice", "each filter once"))
        seen.add((f.name, f.pupil))
        blind = [d.name for d in dets if f.name not in d.filters]
        if blind:
            chan = "long-wave" if f.name in LW_FILTERS else "short-wave"
            items.append(((i, "name"), f.name,
                          f"{', '.join(blind)} cannot observe the {chan} filter {f.name}",
                          _channel_hint(dets)))
    if not v:
        items.append(((), [], "at least one filter is needed", _channel_hint(dets)))
    if items:
        raise FieldError("filters not observable", items=items)
    return v


def _check_channel_filters(v: ChannelFilters, dets: list[Detector]) -> ChannelFilters:
    items = []
    for chan, specs, names in (("short", v.short, SW_FILTERS), ("long", v.long, LW_FILTERS)):
        for i, f in enumerate(specs):
            if f.name not in names:
                items.append(((chan, i, "name"), f.name, f"not a {chan}-wave filter",
                              ", ".join(names)))
        has_dets = any((d.is_long if chan == "long" else not d.is_long) for d in dets)
        if has_dets and not specs:
            items.append(((chan,), specs, f"the {chan}-wave detectors need filters",
                          ", ".join(names)))
        if specs and dets and not has_dets:
            items.append(((chan,), [f.name for f in specs], f"no {chan}-wave detector in "
                          "`detectors` observes these", "omit this list or add a detector"))
    if items:
        raise FieldError("filters not observable", items=items)
    return v


def _channel_hint(dets: list[Detector]) -> str:
    sw = [d.name for d in dets if not d.is_long]
    lw = [d.name for d in dets if d.is_long]
    if sw and lw:
        return ("filters every detector observes - none, as both channels are used; give "
                "{short: [...], long: [...]} instead")
    names = LW_FILTERS if lw else SW_FILTERS
    return ("long-wave" if lw else "short-wave") + " filters: " + ", ".join(names)
