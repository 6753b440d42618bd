"""What calwebb_coron3's align_refs did, measured from its products.

align_refs shifts every PSF-reference integration onto each science integration (a
Fourier least-squares fit of the shift, weighted by the PSFMASK) and writes the shifted
references as ``_psfalign`` next to the unshifted ``_psfstack``. The shift it applied to a
reference frame is found here by fitting, in double precision, the sub-pixel shift that
turns the stacked frame into the aligned one (:func:`fitted_shift`); the shift it should
have applied is the science star's position minus the reference star's, both from the
simulation's truth. Their difference is the alignment error per reference frame.

With numpy 2, jwst 3.0's align_refs fits zero shifts (its FFTs keep float32 data in
complex64 and the finite-difference Jacobian never sees the step;
``../shared/docs/coron-facts.md``): the applied shifts then read ~0 and the error equals
the dither offsets.

Units: pixels (the detector's), mas through the pixel scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["REALIGN_HOOK", "AlignmentShifts", "applied_shifts", "fitted_shift",
           "realign_references", "shift_image"]

#: The workaround for align_refs' zero shifts, as a jwst step parameter:
#: ``pipeline: {coron3: {klip: {pre_hooks: [REALIGN_HOOK]}}}``.
REALIGN_HOOK = "simval.metrics.coron_alignment.realign_references"
#: Half-size of the box around the star that :func:`realign_references` fits in, px.
REALIGN_HALF_BOX = 40


def shift_image(image: ArrayLike, dx: float, dy: float) -> np.ndarray:
    """``image`` moved by (dx, dy) pixels (Fourier shift, double precision)."""
    from scipy.ndimage import fourier_shift

    a = np.nan_to_num(np.asarray(image, np.float64))
    return np.fft.ifft2(fourier_shift(np.fft.fft2(a), (dy, dx))).real


def fitted_shift(image: ArrayLike, reference: ArrayLike, weight: ArrayLike | None = None
                 ) -> tuple[float, float]:
    """The (dx, dy) pixels and the scale that make ``scale * shift_image(reference, dx,
    dy)`` closest to ``image`` in weighted least squares; returns (dx, dy)."""
    from scipy.optimize import least_squares

    img = np.nan_to_num(np.asarray(image, np.float64))
    ref = np.nan_to_num(np.asarray(reference, np.float64))
    w = np.ones_like(img) if weight is None else np.nan_to_num(np.asarray(weight, float))
    good = np.isfinite(np.asarray(image, float)) & np.isfinite(np.asarray(reference, float))
    w = np.sqrt(np.clip(w, 0.0, None)) * good

    def residual(p):
        return (w * (img - p[2] * shift_image(ref, p[0], p[1]))).ravel()

    scale0 = float(np.sum(w**2 * img * ref) / max(np.sum(w**2 * ref * ref), 1e-300))
    fit = least_squares(residual, x0=[0.0, 0.0, scale0], diff_step=1e-4,
                        x_scale=[0.1, 0.1, abs(scale0) or 1.0])
    return float(fit.x[0]), float(fit.x[1])


@dataclass(frozen=True)
class AlignmentShifts:
    """Per reference frame: the shift align_refs applied and the one it should have, px."""

    applied: np.ndarray  # (n, 2)
    expected: np.ndarray  # (n, 2)

    @property
    def error(self) -> np.ndarray:
        """Applied minus expected, (n, 2) px."""
        return self.applied - self.expected

    def rms_px(self) -> float:
        """RMS of the error's length, px."""
        return float(np.sqrt(np.mean(np.sum(self.error**2, axis=1))))


def applied_shifts(psfstack: ArrayLike, psfalign: ArrayLike, weight: ArrayLike | None = None,
                   expected: ArrayLike | None = None) -> AlignmentShifts:
    """Shifts align_refs applied to each frame of ``psfstack`` (nref, ny, nx) to make
    ``psfalign`` (nref, ny, nx: the references aligned to one science integration), and the
    ``expected`` ones (nref, 2; zeros if not given)."""
    stack = np.asarray(psfstack, float)
    align = np.asarray(psfalign, float)
    if stack.shape != align.shape:
        raise ValueError(f"psfstack {stack.shape} and psfalign {align.shape} differ")
    applied = np.array([fitted_shift(align[k], stack[k], weight) for k in range(len(stack))])
    exp = np.zeros_like(applied) if expected is None else np.asarray(expected, float)
    return AlignmentShifts(applied, exp)


def realign_references(target, psf_aligned) -> None:
    """A pre-hook of calwebb_coron3's klip step (stpipe's documented ``pre_hooks``
    parameter; :data:`REALIGN_HOOK`): align every reference frame of ``psf_aligned`` onto
    the science data of ``target`` (CubeModel) with :func:`fitted_shift` in double
    precision, in place, and return None so klip runs on (target, the realigned
    references). ``psf_aligned`` is what align_refs made: a CubeModel of the reference
    frames aligned to the first science integration (jwst 3.0), or a QuadModel with one
    such cube per integration. Fits a box of 2 x :data:`REALIGN_HALF_BOX` px around the
    mask centre (the reference pixel CRPIX).

    The ``_psfalign`` file coron3 saved before klip keeps align_refs' own shifts, so the
    alignment metrics still measure align_refs; the psfsub shows the workaround."""
    sci = np.asarray(target.data, np.float64)
    sci = sci[None] if sci.ndim == 2 else sci
    refs = np.asarray(psf_aligned.data, np.float64)
    cubes = refs if refs.ndim == 4 else refs[None]
    try:  # the mask centre: the aperture's reference pixel (1-based)
        cx = round(float(target.meta.wcsinfo.crpix1) - 1.0)
        cy = round(float(target.meta.wcsinfo.crpix2) - 1.0)
    except (AttributeError, TypeError):
        first = np.nan_to_num(sci[0])
        cy, cx = np.unravel_index(np.argmax(first), first.shape)
    h = REALIGN_HALF_BOX
    box = (slice(max(cy - h, 0), cy + h), slice(max(cx - h, 0), cx + h))
    out = np.empty_like(cubes)
    for i in range(cubes.shape[0]):
        for k in range(cubes.shape[1]):
            dx, dy = fitted_shift(sci[min(i, len(sci) - 1)][box], cubes[i, k][box])
            out[i, k] = shift_image(cubes[i, k], dx, dy)
    psf_aligned.data = (out if refs.ndim == 4 else out[0]).astype(psf_aligned.data.dtype)
