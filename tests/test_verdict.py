"""Verdicts (thresholds, baselines) and the metrics.json schema."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simval.metrics_schema import (
    GROUPS,
    INPUTS,
    REGISTRY,
    SCHEMA_VERSION,
    Measurement,
    MetricsDocument,
    MetricsFileError,
    UnknownMetricError,
    group_metrics,
    metrics_json_schema,
    read_metrics,
    registry_markdown,
    write_metrics,
)
from simval.scenario.inputs import Comparison
from simval.verdict import (
    Tolerance,
    all_passed,
    compare_to_baseline,
    evaluate_thresholds,
    verdict_table,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def _doc(bias115=0.011, bias150=-0.025, rms=0.5, name="quickstart", digest="0123abcd0123abcd"):
    doc = MetricsDocument(name, digest, provenance={"jwst": "3.0.0"})
    doc.add("F115W", {
        "phot_bias_bright_star_mag": Measurement.of("phot_bias_bright_star_mag", bias115,
                                                    0.004, 12, {"bins": np.arange(3.0)}),
        "astrom_rms_mas": Measurement.of("astrom_rms_mas", rms, 0.05, 14),
        "completeness_snr20": Measurement.of("completeness_snr20", 0.97, 0.02, 33),
        "depth_5sigma_mag": Measurement.of("depth_5sigma_mag", np.nan, None, 0),
    })
    doc.add("f150w", {
        "phot_bias_bright_star_mag": Measurement.of("phot_bias_bright_star_mag", bias150,
                                                    0.004, 12),
        "astrom_rms_mas": Measurement.of("astrom_rms_mas", 0.6, 0.05, 14),
    })
    return doc


def _comparison(thresholds):
    return Comparison.model_validate({"thresholds": thresholds})


def test_thresholds_pass_and_fail_with_value_limit_and_n():
    comp = _comparison({"phot_bias_bright_star_mag": {"abs_max": 0.02},
                        "astrom_rms_mas": {"F150W": {"max": 0.55}, "all": {"max": 10}},
                        "completeness_snr20": {"F115W": {"min": 0.95}}})
    verdicts = evaluate_thresholds(_doc(), comp)
    by = {(v.metric, v.filter): v for v in verdicts}
    assert len(verdicts) == 5
    ok = by[("phot_bias_bright_star_mag", "F115W")]
    assert ok.passed and ok.value == 0.011 and ok.n == 12 and ok.limit == "|x| <= 0.02"
    bad = by[("phot_bias_bright_star_mag", "F150W")]
    assert not bad.passed and bad.unit == "mag" and bad.uncertainty == 0.004
    assert "phot_bias_bright_star_mag[F150W] = -0.025 +/- 0.004 mag (n=12): FAIL" in \
        bad.message
    assert "|x| <= 0.02" in bad.message
    # the filter-specific bound replaces 'all' for that filter only
    assert by[("astrom_rms_mas", "F115W")].passed
    assert not by[("astrom_rms_mas", "F150W")].passed
    assert by[("astrom_rms_mas", "F150W")].limit == "<= 0.55"
    assert by[("completeness_snr20", "F115W")].passed
    assert not all_passed(verdicts)
    table = verdict_table(verdicts)
    assert table.splitlines()[1].endswith("FAIL")  # failures first
    assert "phot_bias_bright_star_mag" in table and "0.02" in table


def test_min_max_abs_max_combinations():
    comp = _comparison({"astrom_rms_mas": {"min": 0.4, "max": 0.55}})
    v = {x.filter: x for x in evaluate_thresholds(_doc(), comp)}
    assert v["F115W"].passed and not v["F150W"].passed
    assert v["F115W"].limit == "in [0.4, 0.55]"
    comp = _comparison({"phot_bias_bright_star_mag": {"min": -0.03, "abs_max": 0.02}})
    v = {x.filter: x for x in evaluate_thresholds(_doc(), comp)}
    assert v["F115W"].passed and not v["F150W"].passed
    assert "above 0.02" in v["F150W"].message


def test_unmeasured_and_missing_fail():
    comp = _comparison({"depth_5sigma_mag": {"F115W": {"min": 28.0}},
                        "astrom_rms_mas": {"F200W": {"max": 10}},
                        "hole_frac": {"max": 0.01}})
    v = {(x.metric, x.filter): x for x in evaluate_thresholds(_doc(), comp)}
    assert not v[("depth_5sigma_mag", "F115W")].passed
    assert "not measured" in v[("depth_5sigma_mag", "F115W")].message
    assert "no metrics for filter F200W" in v[("astrom_rms_mas", "F200W")].message
    assert "not computed" in v[("hole_frac", "F115W")].message


def test_unknown_metric_name_lists_the_known_ones():
    comp = _comparison({"photometric_bias": {"abs_max": 0.02}})
    with pytest.raises(UnknownMetricError) as err:
        evaluate_thresholds(_doc(), comp)
    text = str(err.value)
    assert "photometric_bias" in text and "comparison.thresholds" in text
    assert "phot_bias_bright_star_mag" in text and "astrom_rms_mas" in text


def test_plain_mapping_thresholds():
    v = evaluate_thresholds(_doc(), {"astrom_rms_mas": {"all": {"max": 1.0}}})
    assert all_passed(v) and len(v) == 2
    # the same bounds as a model and as a mapping give the same verdicts
    tight = {"astrom_rms_mas": {"all": {"max": 0.55}}}
    as_model = evaluate_thresholds(_doc(), Comparison.model_validate({"thresholds": tight}))
    as_dict = evaluate_thresholds(_doc(), tight)
    assert [(x.filter, x.passed) for x in as_model] == [(x.filter, x.passed) for x in as_dict]
    assert {(x.filter, x.passed) for x in as_dict} == {("F115W", True), ("F150W", False)}


def test_baseline_within_and_outside_tolerance():
    base = _doc()
    same = compare_to_baseline(_doc(bias115=0.013), base)
    assert all_passed(same)  # registry default for bright-star bias: 0.005 mag
    v = {(x.metric, x.filter): x for x in compare_to_baseline(_doc(bias115=0.02), base)}
    bad = v[("phot_bias_bright_star_mag", "F115W")]
    assert not bad.passed and bad.baseline == 0.011 and bad.kind == "baseline"
    assert "0.011 +/- 0.005 (baseline)" in bad.limit and "differs by +0.009" in bad.message
    # depth was unmeasured in both: passes
    assert v[("depth_5sigma_mag", "F115W")].passed
    # relative tolerance and 'default'
    tol = {"astrom_rms_mas": Tolerance(rel=0.5), "default": Tolerance(abs=1.0)}
    v = {(x.metric, x.filter): x for x in compare_to_baseline(_doc(rms=0.74), base,
                                                             tolerances=tol)}
    assert v[("astrom_rms_mas", "F115W")].passed  # 0.74 - 0.5 <= 0.5 * 0.5
    v = compare_to_baseline(_doc(rms=0.76), base, tolerances=tol, metrics=["astrom_rms_mas"])
    assert {x.filter: x.passed for x in v} == {"F115W": False, "F150W": True}
    with pytest.raises(UnknownMetricError):
        compare_to_baseline(base, base, tolerances={"rms": Tolerance(1.0)})


def test_baseline_missing_metric_and_other_scenario():
    base = _doc()
    cur = _doc(name="quickstart_defaults", digest="ffff0000ffff0000")
    del cur.filters["F150W"]["astrom_rms_mas"]
    v = {(x.metric, x.filter): x for x in compare_to_baseline(cur, base)}
    assert not v[("astrom_rms_mas", "F150W")].passed
    assert "baseline scenario quickstart (0123abcd0123abcd) differs" in \
        v[("astrom_rms_mas", "F115W")].message


def test_metrics_json_roundtrip(tmp_path):
    doc = _doc()
    path = write_metrics(tmp_path / "metrics.json", doc)
    data = json.loads(path.read_text())
    assert data["schema"] == "simval.metrics" and data["schema_version"] == SCHEMA_VERSION
    assert data["scenario"] == {"name": "quickstart", "hash": "0123abcd0123abcd"}
    entry = data["filters"]["F115W"]["depth_5sigma_mag"]
    assert entry == {"value": None, "uncertainty": None, "n": 0, "unit": "AB mag",
                     "details": {}}
    assert data["filters"]["F115W"]["phot_bias_bright_star_mag"]["details"]["bins"] == \
        [0.0, 1.0, 2.0]
    back = read_metrics(path)
    assert back.scenario_name == "quickstart" and set(back.filters) == {"F115W", "F150W"}
    m = back.get("F115W", "phot_bias_bright_star_mag")
    assert (m.value, m.uncertainty, m.n, m.unit) == (0.011, 0.004, 12, "mag")
    assert back.provenance == {"jwst": "3.0.0"}


@pytest.mark.parametrize(("edit", "field", "text"), [
    (lambda d: d.update(schema_version=99), "schema_version", "unsupported version 99"),
    (lambda d: d["scenario"].pop("hash"), "scenario.hash", "non-empty string"),
    (lambda d: d["filters"]["F115W"]["astrom_rms_mas"].update(unit="arcsec"),
     "filters.F115W.astrom_rms_mas.unit", "expected 'mas'"),
    (lambda d: d["filters"]["F115W"]["astrom_rms_mas"].update(n=-1),
     "filters.F115W.astrom_rms_mas.n", "non-negative integer"),
    (lambda d: d["filters"]["F115W"]["astrom_rms_mas"].pop("value"),
     "filters.F115W.astrom_rms_mas.value", "required key is missing"),
    (lambda d: d["filters"]["F115W"]["astrom_rms_mas"].update(value="0.5"),
     "filters.F115W.astrom_rms_mas.value", "finite number or null"),
    (lambda d: d["filters"]["F115W"].update(rms_mas={}),
     "filters.F115W.rms_mas", "unknown metric name; known: completeness"),
    (lambda d: d["filters"].update(f200w={}), "filters.f200w", "upper case"),
])
def test_metrics_json_reader_names_file_and_field(tmp_path, edit, field, text):
    path = write_metrics(tmp_path / "metrics.json", _doc())
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(MetricsFileError) as err:
        read_metrics(path)
    assert err.value.field == field
    assert str(err.value).startswith(f"{path}: {field}: ")
    assert text in str(err.value)


def test_metrics_json_unreadable(tmp_path):
    bad = tmp_path / "metrics.json"
    bad.write_text("{not json")
    with pytest.raises(MetricsFileError, match="not valid JSON"):
        read_metrics(bad)
    with pytest.raises(MetricsFileError, match="cannot read"):
        read_metrics(tmp_path / "missing.json")


def test_unknown_name_in_document_and_measurement():
    with pytest.raises(UnknownMetricError, match="Known metrics: completeness"):
        Measurement.of("bias", 0.1)
    with pytest.raises(UnknownMetricError, match="filter F115W"):
        MetricsDocument("x", "y").add("F115W", {"bias": Measurement(0.1, None, 1, "mag")})


def test_json_schema_agrees_with_the_registry(tmp_path):
    schema = metrics_json_schema()
    (ref,) = schema["properties"]["filters"]["patternProperties"].values()
    per_filter = schema["$defs"][ref["$ref"].rsplit("/", 1)[-1]]
    assert set(per_filter["properties"]) == set(REGISTRY)
    assert per_filter["additionalProperties"] is False
    jsonschema = pytest.importorskip("jsonschema")
    path = write_metrics(tmp_path / "metrics.json", _doc())
    data = json.loads(path.read_text())
    jsonschema.validate(data, schema)
    data["filters"]["f200w"] = {}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_docs_describe_every_metric_and_the_schema():
    text = DOCS.read_text()
    missing = [name for name in REGISTRY if f"`{name}`" not in text]
    assert not missing, f"docs/metrics.md does not describe {missing}"
    assert "schema_version" in text


def test_docs_registry_table_is_generated_from_the_declarations():
    """docs/metrics.md section 4 is registry_markdown() verbatim (regenerate with
    ``python -c "from simval.metrics_schema import registry_markdown as r; print(r())"``)."""
    assert registry_markdown() in DOCS.read_text()


def test_every_metric_declares_group_inputs_and_reason():
    for name, spec in REGISTRY.items():
        assert spec.group in GROUPS and name in group_metrics(spec.group)
        assert spec.needs and set(spec.needs) <= set(INPUTS), name
        assert spec.empty_reason and spec.description, name
    assert sum(len(group_metrics(g)) for g in GROUPS) == len(REGISTRY)
