"""What a derived CRDS context changes: one reference per knob, by a stated amount.

:class:`Changes` names the knobs (each field's default is neutral); :data:`KNOBS` says which
reference type each one rewrites and how. Writing the derived files and context is
:func:`simval.kit.derive.derive_context`. Light to import (the scenario schema validates
its ``crds.kit.derive`` block with it): stdatamodels is imported when a file is rewritten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simval.atomic import save_model

__all__ = ["KNOBS", "Changes", "Knob"]


@dataclass(frozen=True)
class Changes:
    """What a derived context changes with respect to its base (each field's neutral value
    is its default; :data:`KNOBS` says which reference each one changes and how).

    flat_scale : multiply the FLAT data (calibrated fluxes are divided by it).
    photom_scale : multiply PHOTMJSR (calibrated fluxes are multiplied by it).
    distortion_shift_mas : (dV2, dV3) added to the distortion's output, mas.
    dark_scale : multiply the DARK data (the dark current subtracted, DN).
    gain_uniform : replace each GAIN map by its mean over the science pixels: the single
        value per detector MIRAGE simulates with (``MEAN_GAIN_VALUES``).
    gain_map : ``((detector, path, sha256), ...)``: calibrate that detector with the user's
        gain map (a FITS file, e-/DN, the shape of the kit's map; the digest keys the
        derived file to the content); detectors not named keep the kit's map.
    gain_scale : multiply the GAIN (e-/DN) that ramp fitting's Poisson noise and jump
        detection use (applied after ``gain_uniform`` / ``gain_map``).
    readnoise_scale : multiply the READNOISE (DN) of ramp fitting's weights and ERR.
    superbias_offset_dn : add to the SUPERBIAS data, DN.
    linearity_scale : multiply the LINEARITY correction's non-linear coefficients
        (orders >= 2).
    mask_hot_unflagged : clear HOT and DO_NOT_USE in the MASK for every hot pixel (the dark
        still holds their current).
    ipc_scale : multiply the IPC kernel's off-centre terms (the centre keeps the sum).
    area_scale : multiply the pixel AREA map.
    apcorr_scale : multiply the APCORR table's aperture corrections.
    """

    flat_scale: float = 1.0
    photom_scale: float = 1.0
    distortion_shift_mas: tuple[float, float] = (0.0, 0.0)
    dark_scale: float = 1.0
    gain_uniform: bool = False
    gain_map: tuple[tuple[str, str, str], ...] = ()
    gain_scale: float = 1.0
    readnoise_scale: float = 1.0
    superbias_offset_dn: float = 0.0
    linearity_scale: float = 1.0
    mask_hot_unflagged: bool = False
    ipc_scale: float = 1.0
    area_scale: float = 1.0
    apcorr_scale: float = 1.0

    def __post_init__(self) -> None:
        for name, knob in KNOBS.items():
            value = getattr(self, name)
            if knob.positive and not (value > 0 and value == value and value != float("inf")):
                raise ValueError(f"{name} must be a positive finite number, got {value}")
        object.__setattr__(self, "distortion_shift_mas",
                           tuple(float(x) for x in self.distortion_shift_mas))
        object.__setattr__(self, "mask_hot_unflagged", bool(self.mask_hot_unflagged))
        object.__setattr__(self, "gain_uniform", bool(self.gain_uniform))
        object.__setattr__(self, "gain_map", tuple(sorted(
            (str(d).upper(), str(p), str(h)) for d, p, h in self.gain_map)))

    def active(self) -> list[str]:
        """Names of the fields that differ from their neutral value, in :data:`KNOBS` order."""
        return [name for name, knob in KNOBS.items() if knob.changes(getattr(self, name))]

    @property
    def reftypes(self) -> list[str]:
        return [KNOBS[name].reftype for name in self.active()]

    def label(self) -> str:
        return ", ".join(KNOBS[name].describe(getattr(self, name)) for name in self.active())


def _scaled_flat(src: Path, dst: Path, scale: float) -> None:
    from stdatamodels.jwst.datamodels import FlatModel

    with FlatModel(str(src)) as model:
        model.data = (model.data * scale).astype(model.data.dtype)
        model.meta.description = f"{model.meta.description} (x{scale:g})"[:200]
        model.add_history_entry(f"simval derived: data x{scale:g} of {src.name}")
        save_model(model, dst)


def _scaled_photom(src: Path, dst: Path, scale: float) -> None:
    _scaled_column(src, dst, "phot_table", "photmjsr", scale)


def _scaled_column(src: Path, dst: Path, table: str, column: str, scale: float) -> None:
    from stdatamodels.jwst.datamodels import open as dm_open

    with dm_open(str(src)) as model:
        rows = getattr(model, table).copy()
        rows[column] = rows[column] * scale
        setattr(model, table, rows)
        model.add_history_entry(f"simval derived: {column.upper()} x{scale:g} of {src.name}")
        save_model(model, dst)


def _changed_array(src: Path, dst: Path, attribute: str, change, what: str) -> None:
    """``model.<attribute> = change(model.<attribute>)`` (dtype kept), history ``what``."""
    from stdatamodels.jwst.datamodels import open as dm_open

    with dm_open(str(src)) as model:
        old = getattr(model, attribute)
        setattr(model, attribute, change(old).astype(old.dtype))
        model.add_history_entry(f"simval derived: {what} of {src.name}")
        save_model(model, dst)


def _shifted_distortion(src: Path, dst: Path, shift_mas: tuple[float, float]) -> None:
    from astropy.modeling.models import Shift
    from stdatamodels.jwst.datamodels import DistortionModel

    dv2, dv3 = (s / 1000.0 for s in shift_mas)  # arcsec: the model's V2/V3 output unit
    with DistortionModel(str(src)) as model:
        model.model = model.model | (Shift(dv2) & Shift(dv3))
        model.add_history_entry(f"simval derived: V2/V3 shifted by "
                                f"({shift_mas[0]:g}, {shift_mas[1]:g}) mas")
        save_model(model, dst)


def _scaled_linearity(coeffs: np.ndarray, scale: float) -> np.ndarray:
    out = coeffs.copy()
    out[2:] *= scale
    return out


def _unflagged_hot(dq: np.ndarray) -> np.ndarray:
    from stdatamodels.jwst.datamodels import dqflags

    flag = dqflags.pixel
    hot = (dq & flag["HOT"]) != 0
    return np.where(hot, dq & ~np.uint32(flag["HOT"] | flag["DO_NOT_USE"]), dq)


def _scaled_ipc(kernel: np.ndarray, scale: float) -> np.ndarray:
    """Off-centre terms x ``scale``, the centre set so that the kernel keeps its sum."""
    out = kernel.astype(float) * scale
    cy, cx = kernel.shape[-2] // 2, kernel.shape[-1] // 2
    out[..., cy, cx] = 0.0
    out[..., cy, cx] = kernel.sum(axis=(-2, -1)) - out.sum(axis=(-2, -1))
    return out


def _science_mean(gain: np.ndarray) -> float:
    """Mean of the finite, positive gain values inside the 4-pixel reference border."""
    inner = gain[..., 4:-4, 4:-4]
    good = inner[np.isfinite(inner) & (inner > 0)]
    return float(good.mean())


def _uniform_gain(gain: np.ndarray) -> np.ndarray:
    return np.full_like(gain, _science_mean(gain))


def read_gain_map(path: str | Path) -> np.ndarray:
    """A user's gain map, e-/DN: the SCI extension of a FITS file, else its primary array."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        hdu = hdul["SCI"] if "SCI" in hdul else hdul[0]
        if hdu.data is None or np.ndim(hdu.data) != 2:
            raise ValueError(f"{path}: expected a 2-D gain map (e-/DN) in SCI or the primary "
                             "HDU")
        return np.asarray(hdu.data, dtype=np.float32)


def _user_gain(src: Path, dst: Path, entries: tuple[tuple[str, str, str], ...]) -> None:
    """The kit's gain reference with its data replaced by the user's map for its detector."""
    from stdatamodels.jwst.datamodels import GainModel

    by_detector = {d: (p, h) for d, p, h in entries}
    with GainModel(str(src)) as model:
        detector = str(model.meta.instrument.detector).upper()
        if detector in by_detector:
            path, digest = by_detector[detector]
            data = read_gain_map(path)
            if data.shape != model.data.shape:
                raise ValueError(f"{path}: gain map for {detector} is {data.shape[1]} x "
                                 f"{data.shape[0]} pixels; the kit's is "
                                 f"{model.data.shape[1]} x {model.data.shape[0]}")
            model.data = data.astype(model.data.dtype)
            model.add_history_entry(f"simval derived: data from {Path(path).name} "
                                    f"(sha256 {digest[:12]}) replacing {src.name}")
        else:
            model.add_history_entry(f"simval derived: no user gain map for {detector}; "
                                    f"data of {src.name} kept")
        save_model(model, dst)


def _describe_gain_map(entries: tuple[tuple[str, str, str], ...]) -> str:
    return "user gain map for " + ", ".join(
        f"{d} ({Path(p).name})" for d, p, _ in entries)


@dataclass(frozen=True)
class Knob:
    """One kind of change: the reference type it rewrites, its neutral value, whether it
    must be positive, how it is described, and ``apply(src, dst, value)``."""

    reftype: str
    neutral: Any
    describe: Callable[[Any], str]
    apply: Callable[[Path, Path, Any], None]
    positive: bool = False

    def changes(self, value: Any) -> bool:
        if isinstance(self.neutral, tuple) and not self.neutral:
            return bool(value)
        if isinstance(self.neutral, tuple):
            return any(float(v) != n for v, n in zip(value, self.neutral, strict=True))
        return value != self.neutral


def _scale(reftype: str, attribute: str, what: str) -> Knob:
    return Knob(reftype, 1.0, lambda v: f"{what} x{v:g}",
                lambda src, dst, v: _changed_array(src, dst, attribute, lambda a: a * v,
                                                   f"{attribute} x{v:g}"),
                positive=True)


#: The changes a derived context can make, by :class:`Changes` field (one reference type
#: each; knobs of the same type apply in this order, each on the previous one's result).
KNOBS: dict[str, Knob] = {
    "flat_scale": Knob("flat", 1.0, lambda v: f"flat x{v:g}", _scaled_flat, positive=True),
    "photom_scale": Knob("photom", 1.0, lambda v: f"photom x{v:g}", _scaled_photom,
                         positive=True),
    "distortion_shift_mas": Knob(
        "distortion", (0.0, 0.0),
        lambda v: f"distortion shifted by ({v[0]:g}, {v[1]:g}) mas in (V2, V3)",
        _shifted_distortion),
    "dark_scale": _scale("dark", "data", "dark"),
    "gain_uniform": Knob(
        "gain", False, lambda v: "gain map replaced by its mean",
        lambda src, dst, v: _changed_array(src, dst, "data", _uniform_gain,
                                           "data replaced by its science-pixel mean")),
    "gain_map": Knob("gain", (), _describe_gain_map, _user_gain),
    "gain_scale": _scale("gain", "data", "gain"),
    "readnoise_scale": _scale("readnoise", "data", "read noise"),
    "superbias_offset_dn": Knob(
        "superbias", 0.0, lambda v: f"superbias {v:+g} DN",
        lambda src, dst, v: _changed_array(src, dst, "data", lambda a: a + v,
                                           f"data {v:+g} DN")),
    "linearity_scale": Knob(
        "linearity", 1.0, lambda v: f"linearity non-linear terms x{v:g}",
        lambda src, dst, v: _changed_array(src, dst, "coeffs",
                                           lambda a: _scaled_linearity(a, v),
                                           f"coefficients of order >= 2 x{v:g}")),
    "mask_hot_unflagged": Knob(
        "mask", False, lambda v: "hot pixels unflagged in the mask",
        lambda src, dst, v: _changed_array(src, dst, "dq", _unflagged_hot,
                                           "HOT and DO_NOT_USE cleared on hot pixels")),
    "ipc_scale": Knob(
        "ipc", 1.0, lambda v: f"IPC off-centre terms x{v:g}",
        lambda src, dst, v: _changed_array(src, dst, "data", lambda a: _scaled_ipc(a, v),
                                           f"off-centre terms x{v:g}")),
    "area_scale": _scale("area", "data", "pixel area"),
    "apcorr_scale": Knob("apcorr", 1.0, lambda v: f"apcorr x{v:g}",
                         lambda src, dst, v: _scaled_column(src, dst, "apcorr_table",
                                                            "apcorr", v),
                         positive=True),
}
