"""The kit's local CRDS cache: mappings CRDS accepts and serves offline.

A small kit (gain, readnoise, two flats for NRCB1; every other type N/A) is built once per
module; CRDS itself checks checksums, selects references and certifies. The socket guard
of conftest.py makes any network attempt fail.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from simval.atomic import save_model
from simval.kit import certify as kit_certify
from simval.kit import crds_cache as cc
from simval.kit import crds_mappings as cm
from simval.kit import refmeta
from simval.kit.detectors import get_detector
from simval.kit.layout import KitLayout

FULL = (2048, 2048)
GAIN = "simval_gain_nrcb1.fits"
READNOISE = "simval_readnoise_nrcb1.fits"
FLATS = {"F115W": "simval_flat_nrcb1_f115w.fits", "F150W": "simval_flat_nrcb1_f150w.fits"}


def _stamp(model, reftype: str, description: str):
    refmeta.stamp(model, get_detector("NRCB1"), reftype, description, seed=1)
    return model


def _write_references(layout: KitLayout) -> None:
    from stdatamodels.jwst import datamodels as dm

    gain = dm.GainModel(data=np.full(FULL, 2.05, np.float32))
    save_model(_stamp(gain, "gain", "test gain"), layout.references / GAIN)
    noise = dm.ReadnoiseModel(data=np.full(FULL, 5.4, np.float32))
    save_model(_stamp(noise, "readnoise", "test read noise"), layout.references / READNOISE)
    for filt, name in FLATS.items():
        flat = dm.FlatModel(data=np.ones(FULL, np.float32), err=np.zeros(FULL, np.float32),
                            dq=np.zeros(FULL, np.uint32))
        flat.meta.instrument.filter = filt
        flat.meta.instrument.pupil = "CLEAR"
        save_model(_stamp(flat, "flat", f"test flat {filt}"), layout.references / name)


def _entries() -> dict[str, list[cc.RefEntry]]:
    det = {cm.DETECTOR: "NRCB1"}
    return {
        "gain": [cc.RefEntry(GAIN, det)],
        "readnoise": [cc.RefEntry(READNOISE, det)],
        "flat": [cc.RefEntry(name, {**det, cm.FILTER: filt, cm.PUPIL: "CLEAR"})
                 for filt, name in FLATS.items()],
    }


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> tuple[KitLayout, str]:
    layout = KitLayout(tmp_path_factory.mktemp("kit") / "nircam-seed1-v1")
    _write_references(layout)
    context = cc.write_context(layout, cc.next_context_number(layout), _entries())
    return layout, context


def _header(filt: str = "F115W", detector: str = "NRCB1") -> dict:
    """What the pipeline passes to CRDS for an NRC_IMAGE SUB400P exposure."""
    from stdatamodels.jwst.datamodels import ImageModel

    with ImageModel((4, 4)) as model:
        inst = model.meta.instrument
        inst.name, inst.detector, inst.channel, inst.module = "NIRCAM", detector, "SHORT", "B"
        inst.filter, inst.pupil = filt, "CLEAR"
        model.meta.exposure.type = "NRC_IMAGE"
        model.meta.exposure.readpatt = "BRIGHT2"
        model.meta.subarray.name = "SUB400P"
        model.meta.observation.date = "2023-01-01"
        model.meta.observation.time = "00:00:00"
        return model.get_crds_parameters()


# ----------------------------------------------------------------------------- rules


def test_parkeys_are_subsets_of_crds_nircam_specs():
    from crds.core import reftypes

    specs = reftypes.get_types_object("jwst").unified_defs["nircam"]
    for reftype, keys in cm.PARKEYS.items():
        spec_match = specs[reftype]["parkey"][0]
        assert set(keys) <= set(spec_match), (reftype, keys, spec_match)
        assert len(set(keys)) == len(keys)
    assert cm.PARKEYS["flat"] == (cm.DETECTOR, cm.FILTER, cm.PUPIL)
    assert set(cm.PARKEYS["dark"]) == set(cm.PARKEYS["superbias"]) == {cm.DETECTOR, cm.SUBARRAY}


def test_required_reftypes_come_from_jwst():
    from jwst.pipeline import Detector1Pipeline, Image3Pipeline

    types3 = cc.required_reftypes(("detector1", "image2", "image3"))
    assert set(Detector1Pipeline().reference_file_types) <= types3
    assert set(Image3Pipeline().reference_file_types) == {"apcorr", "abvegaoffset"} <= types3
    assert {"pars-detector1pipeline", "pars-image2pipeline", "pars-image3pipeline",
            "pars-jumpstep", "pars-sourcecatalogstep"} <= types3
    assert {"refpix", "fflat", "wavelengthrange", "sirskernel"} <= types3  # NRC_IMAGE asks
    assert "psfmask" not in types3
    assert "psfmask" in cc.required_reftypes(("coron3",))
    prefetch = cc.required_reftypes(("detector1",), include_skipped=False)
    assert "emicorr" in cc.required_reftypes(("detector1",)) - prefetch  # skipped by default
    # older releases' persistence step asks for these; the kit declares them N/A
    assert {"persat", "trapdensity", "trappars"} <= types3
    assert not {"persat", "trapdensity", "trappars"} & prefetch
    with pytest.raises(ValueError, match="unknown pipeline"):
        cc.required_reftypes(("spec9",))


def test_rmap_text_rejects_wrong_keys_and_duplicates():
    entry = cc.RefEntry("g.fits", {cm.DETECTOR: "NRCB1", cm.FILTER: "F115W"})
    with pytest.raises(ValueError, match="selects on"):
        cm.rmap_text("gain", 1, [entry])
    twins = [cc.RefEntry(n, {cm.DETECTOR: "NRCB1"}) for n in ("a.fits", "b.fits")]
    with pytest.raises(ValueError, match="same match"):
        cm.rmap_text("gain", 1, twins)
    with pytest.raises(ValueError, match="bare file name"):
        cc.RefEntry("refs/g.fits", {cm.DETECTOR: "NRCB1"})
    assert cc.RefEntry("g.fits", {}, "2022-01-01T10:00:00").useafter == "2022-01-01 10:00:00"


# ----------------------------------------------------------------------------- the cache


def test_layout_and_checksums_verified_by_crds(kit, tmp_path):
    from crds.core.exceptions import ChecksumError

    layout, context = kit
    assert context == "jwst_0001.pmap" and cc.list_contexts(layout) == [context]
    assert (layout.crds_config / "ref_cache_subdir_mode").read_text() == "instrument"
    config = eval((layout.crds_config / "server_config").read_text())  # a repr() by design
    assert config["latest_context"] == context and config["bad_files_list"] == []
    names = cc.verify_mapping_checksums(layout, context)
    assert names[:2] == [context, "jwst_nircam_0001.imap"] and len(names) == 5
    # A hand edit is caught by CRDS's checker.
    copy = KitLayout(tmp_path / "copy")
    shutil.copytree(layout.crds_path, copy.crds_path)
    rmap = copy.mappings / "jwst_nircam_flat_0001.rmap"
    rmap.write_text(rmap.read_text().replace(FLATS["F115W"], FLATS["F150W"], 1))
    with pytest.raises(ChecksumError):
        cc.verify_mapping_checksums(copy, context)


def test_imap_declares_every_required_type(kit):
    layout, context = kit
    selections = cc.context_mappings(layout, context)
    assert set(selections) == cc.required_reftypes(cc.DEFAULT_PIPELINES) | set(_entries())
    assert selections["gain"] == "jwst_nircam_gain_0001.rmap"
    assert selections["refpix"] == "N/A" and selections["pars-image3pipeline"] == "N/A"


def test_bestrefs_for_nrc_image_offline(kit):
    layout, context = kit
    wanted = cc.required_reftypes(("detector1", "image2", "image3"))
    refs = cc.best_references(layout, context, _header("F115W"), wanted)
    assert set(refs) == wanted
    assert refs["gain"] == GAIN and refs["readnoise"] == READNOISE
    assert refs["flat"] == FLATS["F115W"]
    assert refs["dark"] == refs["refpix"] == refs["pars-jumpstep"] == "N/A"
    assert {v for k, v in refs.items() if k not in _entries()} == {"N/A"}
    assert cc.best_references(layout, context, _header("F150W"), ["flat"]) == {
        "flat": FLATS["F150W"]}


def test_bestrefs_reports_unmatched_dataset(kit):
    layout, context = kit
    with pytest.raises(cc.BestrefsError) as info:
        cc.best_references(layout, context, _header(detector="NRCB2"), ["gain", "refpix"])
    assert set(info.value.failures) == {"gain"} and info.value.found == {"refpix": "N/A"}


def test_pipeline_client_gets_kit_paths_and_environment_is_restored(kit, monkeypatch):
    from stpipe import crds_client

    layout, context = kit
    monkeypatch.setenv("CRDS_PATH", "/nonexistent/crds")
    monkeypatch.setenv("CRDS_REFPATH", "/nonexistent/refs")
    with cc.using_crds(layout, context) as env:
        assert "serverless" in env["CRDS_SERVER_URL"] and "CRDS_REFPATH" not in os.environ
        paths = crds_client.get_multiple_reference_paths(
            _header(), ["gain", "flat", "refpix"], "jwst")
        assert crds_client.get_context_used("jwst") == context
    assert paths == {"gain": str(layout.references / GAIN),
                     "flat": str(layout.references / FLATS["F115W"]), "refpix": "N/A"}
    assert os.environ["CRDS_PATH"] == "/nonexistent/crds"
    assert os.environ["CRDS_REFPATH"] == "/nonexistent/refs"
    assert "CRDS_CONTEXT" not in os.environ or os.environ["CRDS_CONTEXT"] != context


def test_two_kits_with_the_same_context_name_in_one_process(tmp_path):
    header = {"META.INSTRUMENT.NAME": "NIRCAM", "META.INSTRUMENT.DETECTOR": "NRCB1",
              "META.OBSERVATION.DATE": "2023-01-01", "META.OBSERVATION.TIME": "00:00:00"}
    found = []
    for i in (1, 2):
        layout = KitLayout(tmp_path / f"kit{i}")
        entry = cc.RefEntry(f"gain_kit{i}.fits", {cm.DETECTOR: "NRCB1"})
        assert cc.write_context(layout, 1, {"gain": [entry]}, na_reftypes=[]) == "jwst_0001.pmap"
        found.append(cc.best_references(layout, 1, header, ["gain"])["gain"])
    assert found == ["gain_kit1.fits", "gain_kit2.fits"]


def test_literal_subarray_beats_na_and_pars_types_are_selectable(tmp_path):
    layout = KitLayout(tmp_path / "kit")
    entries = {
        "superbias": [cc.RefEntry("bias_full.fits", {cm.DETECTOR: "NRCB1", cm.SUBARRAY: "N/A"}),
                      cc.RefEntry("bias_400.fits", {cm.DETECTOR: "NRCB1", cm.SUBARRAY: "SUB400P"})],
        "pars-jumpstep": [cc.RefEntry("pars_jump.asdf", {})],
    }
    context = cc.write_context(layout, 3, entries, na_reftypes=["dark"])
    header = _header()
    assert cc.best_references(layout, context, header, entries) == {
        "superbias": "bias_400.fits", "pars-jumpstep": "pars_jump.asdf"}
    header["meta.subarray.name"] = "FULL"
    assert cc.best_references(layout, context, header, ["superbias", "dark"]) == {
        "superbias": "bias_full.fits", "dark": "N/A"}
    assert cc.next_context_number(layout) == 4
    assert cc.missing_references(layout, context) == sorted(
        ["bias_400.fits", "bias_full.fits", "pars_jump.asdf"])


def test_crds_environment(kit):
    layout, context = kit
    env = cc.crds_environment(layout, 1)
    assert env == {"CRDS_PATH": str(layout.crds_path), "CRDS_CONTEXT": context,
                   "CRDS_SERVER_URL": cc.SERVERLESS_URL, "CRDS_MODE": "local",
                   "CRDS_CONFIG_URI": str(layout.crds_config)}
    with pytest.raises(FileNotFoundError, match=r"jwst_0099\.pmap"):
        cc.crds_environment(layout, 99)
    sub = cc.crds_subprocess_env(layout, context, base={"CRDS_MAPPATH": "/x", "HOME": "/h"})
    assert "CRDS_MAPPATH" not in sub and sub["HOME"] == "/h" and sub["CRDS_CONTEXT"] == context


# ----------------------------------------------------------------------------- contexts


def test_write_context_is_idempotent_and_never_overwrites(kit):
    layout, context = kit
    before = sorted(p.name for p in layout.mappings.iterdir())
    assert cc.write_context(layout, context, _entries()) == context
    assert sorted(p.name for p in layout.mappings.iterdir()) == before
    changed = {**_entries(), "gain": [cc.RefEntry("other.fits", {cm.DETECTOR: "NRCB1"})]}
    with pytest.raises(FileExistsError):
        cc.write_context(layout, context, changed)
    assert cc.list_contexts(layout)[0] == context


def test_derived_context_differs_only_in_the_replaced_reference(kit):
    layout, base = kit
    new_flat = "simval_flat_nrcb1_f115w_x1.02.fits"
    shutil.copy(layout.references / FLATS["F115W"], layout.references / new_flat)
    derived = cc.derive_context(layout, base, {FLATS["F115W"]: new_flat}, "flat x1.02")
    assert cm.mapping_number(derived) > cm.mapping_number(base)
    old, new = cc.context_mappings(layout, base), cc.context_mappings(layout, derived)
    assert {k for k in old if old[k] != new[k]} == {"flat"}
    assert new["flat"] == cm.rmap_name("flat", cm.mapping_number(derived))
    header = _header("F115W")
    types_ = ["gain", "readnoise", "flat", "dark"]
    before = cc.best_references(layout, base, header, types_)
    after = cc.best_references(layout, derived, header, types_)
    assert {k for k in types_ if before[k] != after[k]} == {"flat"}
    assert after["flat"] == new_flat and before["flat"] == FLATS["F115W"]
    assert cc.best_references(layout, derived, _header("F150W"), ["flat"]) == {
        "flat": FLATS["F150W"]}
    assert cc.verify_mapping_checksums(layout, derived)
    assert cc.missing_references(layout, derived) == []
    # The pipeline's own client follows a context switch in the same process.
    from stpipe import crds_client

    for context, flat in ((base, FLATS["F115W"]), (derived, new_flat), (base, FLATS["F115W"])):
        with cc.using_crds(layout, context):
            path = crds_client.get_multiple_reference_paths(header, ["flat"], "jwst")["flat"]
            assert (Path(path).name, crds_client.get_context_used("jwst")) == (flat, context)
    with pytest.raises(KeyError, match=r"not_in_kit\.fits"):
        cc.derive_context(layout, base, {"not_in_kit.fits": "x.fits"}, "bad")


def test_missing_references_are_reported(kit, tmp_path):
    layout, base = kit
    assert cc.missing_references(layout, base) == []
    derived = cc.derive_context(layout, base, {GAIN: "simval_gain_absent.fits"}, "absent")
    assert cc.missing_references(layout, derived) == ["simval_gain_absent.fits"]
    copy = KitLayout(tmp_path / "copy")
    shutil.copytree(layout.crds_path, copy.crds_path)
    (copy.mappings / "jwst_nircam_readnoise_0001.rmap").unlink()
    (copy.references / FLATS["F150W"]).unlink()
    assert cc.missing_references(copy, base) == ["jwst_nircam_readnoise_0001.rmap",
                                                 FLATS["F150W"]]
    assert cc.missing_references(copy, 42) == ["jwst_0042.pmap"]


# ----------------------------------------------------------------------------- certify


def test_certify_accepts_the_kit(kit):
    layout, context = kit
    result = kit_certify.certify_context(layout, context)
    assert result.ok, result.messages()
    assert "Certifying" in result.log_text and result.n_warnings >= 1  # readnoise BUNIT
    assert not (Path("/tmp") / "jwst_nircam_flat_0001.rmap").exists()


def test_certify_rejects_a_reference_without_its_match_keys(kit, tmp_path):
    from stdatamodels.jwst import datamodels as dm

    layout, context = kit
    flat = dm.FlatModel(data=np.ones(FULL, np.float32))
    _stamp(flat, "flat", "flat without FILTER and PUPIL")
    path = save_model(flat, tmp_path / "bad_flat.fits")
    result = kit_certify.certify([path], layout, context, check_rmap_updates=False)
    assert result.n_errors >= 2
    assert any("FILTER" in m for m in result.messages())
    assert any("PUPIL" in m for m in result.messages())


def test_parse_summary():
    text = "CRDS - INFO -  3 errors\nCRDS - INFO -  2 warnings\nCRDS - INFO -  9 infos\n"
    assert kit_certify.parse_summary(text) == (3, 2)
    with pytest.raises(kit_certify.CertifyError, match="no error summary"):
        kit_certify.parse_summary("Traceback ...\nKeyError: 'x'\n")
