"""The kit as a whole: build, cache, reproducibility, certify, bestrefs, derived contexts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from simval.kit import crds_cache
from simval.kit.build import build_kit
from simval.kit.certify import certify
from simval.kit.derive import Changes, derive_context
from simval.kit.registry import Registry
from simval.kit.spec import DarkNeed, KitSpec

SPEC = KitSpec(detectors=("NRCB1",), filters=("F115W", "F150W"),
               darks=(DarkNeed("SUB400P", 12),))


@pytest.fixture
def kit(quickstart_kit):
    return quickstart_kit


def _nrc_image_header(detector="NRCB1", filt="F115W", pupil="CLEAR", subarray="SUB400P"):
    channel = "LONG" if detector.endswith("LONG") else "SHORT"
    return {
        "META.INSTRUMENT.NAME": "NIRCAM", "META.INSTRUMENT.DETECTOR": detector,
        "META.INSTRUMENT.CHANNEL": channel, "META.INSTRUMENT.MODULE": detector[3],
        "META.INSTRUMENT.FILTER": filt, "META.INSTRUMENT.PUPIL": pupil,
        "META.EXPOSURE.TYPE": "NRC_IMAGE", "META.EXPOSURE.READPATT": "BRIGHT2",
        "META.SUBARRAY.NAME": subarray, "META.OBSERVATION.DATE": "2023-01-01",
        "META.OBSERVATION.TIME": "00:00:00", "META.TELESCOPE": "JWST",
        "META.INSTRUMENT.CORONAGRAPH": "N/A", "META.EXPOSURE.NOUTPUTS": 1,
    }


def test_every_prefetched_reftype_resolves_offline(kit):
    wanted = crds_cache.required_reftypes(("detector1", "image2", "image3"))
    for filt in ("F115W", "F150W"):
        best = crds_cache.best_references(kit.layout, kit.context, _nrc_image_header(filt=filt),
                                          sorted(wanted))
        assert set(best) == wanted
        delivered = {k: v for k, v in best.items() if v != "N/A"}
        expected = {"mask", "saturation", "superbias", "linearity", "dark", "gain",
                    "readnoise", "ipc", "flat", "photom", "area", "distortion",
                    "filteroffset", "apcorr", "abvegaoffset"}
        assert set(delivered) == expected
        for name in delivered.values():
            assert (kit.layout.references / name).is_file()
        assert filt.lower() in best["flat"]
        assert "sub400p" in best["dark"]
    assert crds_cache.missing_references(kit.layout, kit.context) == []


def test_crds_certify_accepts_every_reference_and_mapping(kit):
    # the base kit's references: derived ones (other tests' contexts, several per match)
    # are certified against their own derived context where they are made
    refs = sorted(p for p in kit.layout.references.iterdir() if "_derived" not in p.name)
    maps = sorted(kit.layout.mappings.glob("*map"))
    result = certify([*refs, *maps], kit.layout, kit.context)
    assert result.n_errors == 0, result.log_text[-3000:]
    assert len(refs) >= 16


def test_second_build_reuses_everything(kit):
    again = build_kit(SPEC, kit.layout.root.parent)
    assert again.context == kit.context
    assert again.timings == {}  # no job ran


def test_same_seed_same_bytes_other_seed_differs(kit, tmp_path):
    small = KitSpec(detectors=("NRCB1",), filters=("F115W",), darks=(DarkNeed("SUB400P", 4),),
                    seed=SPEC.seed)
    other = build_kit(small, tmp_path / "a")
    reg_a, reg_b = Registry.load(kit.layout), Registry.load(other.layout)
    shared = set(reg_a.jobs) & set(reg_b.jobs)
    assert {"gain/NRCB1", "flat/NRCB1/F115W", "psf_library/NRCB1/F115W",
            "distortion/NRCB1"} <= shared
    for job_id in ("gain/NRCB1", "mask/NRCB1", "flat/NRCB1/F115W", "psf_library/NRCB1/F115W",
                   "linearity/NRCB1", "cosmic_rays/NRCB1"):
        for rel_a, rel_b in zip(reg_a.jobs[job_id]["outputs"], reg_b.jobs[job_id]["outputs"],
                                strict=True):
            assert reg_a.files[rel_a]["sha256"] == reg_b.files[rel_b]["sha256"], job_id
    reseeded = build_kit(KitSpec(detectors=("NRCB1",), filters=("F115W",),
                                 darks=(DarkNeed("SUB400P", 4),), seed=SPEC.seed + 1),
                         tmp_path / "b")
    reg_c = Registry.load(reseeded.layout)
    for job_id in ("gain/NRCB1", "flat/NRCB1/F115W", "mask/NRCB1"):
        (rel_a,) = reg_a.jobs[job_id]["outputs"]
        (rel_c,) = reg_c.jobs[job_id]["outputs"]
        assert reg_a.files[rel_a]["sha256"] != reg_c.files[rel_c]["sha256"], job_id


def test_interrupted_build_is_rebuilt_not_used(tmp_path):
    spec = KitSpec(detectors=("NRCB1",), filters=("F115W",), darks=(DarkNeed("SUB400P", 4),))
    kit = build_kit(spec, tmp_path)
    gain = kit.output("gain/NRCB1")
    good = hashlib.sha256(gain.read_bytes()).hexdigest()
    # An interrupted write: a truncated file under the final name, and a stray temp dir.
    gain.write_bytes(gain.read_bytes()[:1000])
    (gain.parent / f".{gain.name}.xyz.part").mkdir()
    rebuilt = build_kit(spec, tmp_path)
    assert set(rebuilt.timings) == {"gain/NRCB1"}
    assert hashlib.sha256(gain.read_bytes()).hexdigest() == good
    # A job whose file vanished is redone as well.
    flat = kit.output("flat/NRCB1/F115W")
    flat.unlink()
    assert set(build_kit(spec, tmp_path).timings) == {"flat/NRCB1/F115W"}
    assert Registry.load(kit.layout).verify(kit.layout) == []


def test_bad_input_gives_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unknown NIRCam detector 'NRCC1'.*NRCB1"):
        KitSpec(detectors=("NRCC1",))
    with pytest.raises(ValueError, match=r"F444W.*not a short-wave NIRCam filter.*F115W"):
        KitSpec(detectors=("NRCB1",), filters=("F444W",))


def test_unwritable_kit_dir_is_reported(tmp_path):
    """A kit directory that is a file (the case root cannot bypass) names the path."""
    blocker = tmp_path / "kits"
    blocker.write_text("not a directory")
    with pytest.raises(PermissionError, match=r"cannot write to the kit directory .*kits"):
        build_kit(SPEC, blocker)


def test_psf_library_loads_and_matches_apcorr(kit):
    from stdatamodels.jwst.datamodels import NrcImgApcorrModel

    from simval.kit import apcorr
    from simval.kit.psf import read_psf_library

    (lib,) = kit.outputs("psf_library/NRCB1/F115W")
    model = read_psf_library(lib)
    assert model.oversampling[0] >= 2
    with NrcImgApcorrModel(str(kit.output("apcorr"))) as ref:
        rows = [r for r in ref.apcorr_table if r["filter"].strip() == "F115W"]
    drz = apcorr.drizzled_psf(model, np.random.default_rng(1))
    radii = [float(r["radius"]) for r in rows]
    measured = apcorr.mean_encircled_energy(drz, radii)
    for row, ee in zip(rows, measured, strict=True):
        assert abs(ee - row["eefraction"]) < 0.01, (row["eefraction"], ee)


def test_derived_context_changes_only_named_references(kit):
    derived = derive_context(kit.layout, kit.context, Changes(flat_scale=1.02))
    assert derived != kit.context
    wanted = crds_cache.required_reftypes(("detector1", "image2", "image3"))
    base = crds_cache.best_references(kit.layout, kit.context, _nrc_image_header(),
                                      sorted(wanted))
    new = crds_cache.best_references(kit.layout, derived, _nrc_image_header(), sorted(wanted))
    changed = {k for k in wanted if base[k] != new[k]}
    assert changed == {"flat"}
    from stdatamodels.jwst.datamodels import FlatModel

    with FlatModel(str(kit.layout.references / base["flat"])) as a, \
            FlatModel(str(kit.layout.references / new["flat"])) as b:
        good = a.data != 0
        ratio = np.median(b.data[good] / a.data[good])
    assert ratio == pytest.approx(1.02, abs=1e-6)
    # Asking again reuses the same derived context.
    assert derive_context(kit.layout, kit.context, Changes(flat_scale=1.02)) == derived


FAULTS = Changes(dark_scale=1.2, gain_scale=1.05, readnoise_scale=2.0,
                 superbias_offset_dn=25.0, linearity_scale=1.5, mask_hot_unflagged=True,
                 ipc_scale=0.0, area_scale=1.1, apcorr_scale=0.95)


def test_every_fault_knob_changes_its_reference_by_its_stated_size(kit):
    from stdatamodels.jwst.datamodels import dqflags
    from stdatamodels.jwst.datamodels import open as dm_open

    derived = derive_context(kit.layout, kit.context, FAULTS)
    wanted = crds_cache.required_reftypes(("detector1", "image2", "image3"))
    header = _nrc_image_header()
    base = crds_cache.best_references(kit.layout, kit.context, header, sorted(wanted))
    new = crds_cache.best_references(kit.layout, derived, header, sorted(wanted))
    assert {k for k in wanted if base[k] != new[k]} == set(FAULTS.reftypes) == {
        "dark", "gain", "readnoise", "superbias", "linearity", "mask", "ipc", "area", "apcorr"}

    def pair(reftype, attribute):
        with dm_open(str(kit.layout.references / base[reftype])) as a, \
                dm_open(str(kit.layout.references / new[reftype])) as b:
            return np.array(getattr(a, attribute)), np.array(getattr(b, attribute))

    for reftype, scale in (("dark", 1.2), ("gain", 1.05), ("readnoise", 2.0), ("area", 1.1)):
        a, b = pair(reftype, "data")
        good = np.isfinite(a) & (a != 0)
        assert np.allclose(b[good] / a[good], scale, rtol=1e-6), reftype
    a, b = pair("superbias", "data")
    assert np.allclose(b - a, 25.0, atol=1e-3)
    a, b = pair("linearity", "coeffs")
    assert np.array_equal(a[:2], b[:2]) and np.allclose(b[2:], 1.5 * a[2:], rtol=1e-6)
    a, b = pair("mask", "dq")
    flag = dqflags.pixel
    hot = (a & flag["HOT"]) != 0
    assert hot.sum() > 100 and not (b[hot] & (flag["HOT"] | flag["DO_NOT_USE"])).any()
    assert np.array_equal(a[~hot], b[~hot])  # dead pixels keep DO_NOT_USE
    a, b = pair("ipc", "data")
    assert b.sum() == pytest.approx(a.sum(), abs=1e-6) and b[1, 1] == pytest.approx(b.sum())
    a, b = pair("apcorr", "apcorr_table")
    assert np.allclose(b["apcorr"], 0.95 * a["apcorr"]) and np.array_equal(a["radius"],
                                                                            b["radius"])
    changed = [kit.layout.references / new[k] for k in FAULTS.reftypes]
    result = certify(changed, kit.layout, derived)
    assert result.n_errors == 0, result.log_text[-3000:]
    assert FAULTS.label().count(",") == 8  # one phrase per knob


def test_kit_paths_for_mirage(kit):
    refs = kit.mirage_references("NRCB1", "F150W", "SUB400P")
    for key, path in refs.items():
        assert Path(path).exists(), key
    assert "f150w" in refs["pixelflat"].name
