"""report.html: content, order, self-containment, size, and rendering in headless Chromium.

The run directory is fake but has the files a real one holds
(:func:`simval.testing.make_fake_run`): an i2d written like jwst's (SCI with a TAN WCS and
BUNIT/PIXAR_SR, ERR, CON, WHT), a source catalog ECSV with a ``sky_centroid`` column, a
truth ECSV per the truth contract, ``metrics.json`` from the real metric functions,
``plan.json`` with thresholds and ``manifest.json``.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from simval.report import load_run, print_verdicts, report_main, write_report
from simval.report.plots import block_reduce, running_stats, smooth_nan
from simval.testing import PHOTOM_REFERENCE, make_fake_run, product_name

SHAPE = (260, 280)  # ny, nx
SKY = 0.22  # MJy/sr
BANDS = ("F115W", "F150W")
CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = ("headless Chromium is needed to check that report.html renders: install it "
                "with `apt-get update && apt-get install -y chromium` (Debian package; the "
                "CI script .ci/run does this)")
THRESHOLDS = {
    "completeness": {"all": {"min": 0.95}},           # 2/3 of the sources found: fails
    "astrom_rms_mas": {"all": {"max": 10.0}},         # passes
    "phot_bias_star_mag": {"F115W": {"abs_max": 0.02}},  # passes
}


#: A finished, evaluated fake run of two filters (:func:`simval.testing.make_fake_run`): 30
#: stars and 30 galaxies of 19-25.5 mag on 260 x 280 pixels, every third missed
#: (completeness 40/60), three spurious detections, 3 mas and 0.03 mag of noise, F150W's
#: positions 5 mas east.
RUN = {"bands": BANDS, "shift_mas": {"F150W": 5.0}, "thresholds": THRESHOLDS,
       "scenario": ("fakescen", "0123456789abcdef"), "context": "jwst_0002.pmap",
       "shape": SHAPE, "noise_seed": 7,
       "truth_options": {"n_stars": 30, "n_galaxies": 30, "mag_range": (19.0, 25.5),
                         "margin_pix": 20.0},
       "catalog_options": {"missing_every": 3, "mag_limit": None, "n_spurious": 3,
                           "sigma_mas": 3.0, "sigma_mag": 0.03},
       "image_options": {"sky_mjysr": SKY, "noise_mjysr": 0.01}}


def make_run_dir(root: Path, **options) -> Path:
    """The fake run :data:`RUN` in ``root``, with ``options`` of
    :func:`simval.testing.make_fake_run` changed."""
    return make_fake_run(root, **{**RUN, **options})


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A finished, evaluated fake run of two filters."""
    return make_run_dir(tmp_path / "run")


# --- reading the pages back ---------------------------------------------------------------

#: Elements without an end tag.
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "source", "track", "wbr"})


@dataclass(eq=False)
class Node:
    """An element of a parsed page: tag, attributes, children (elements and text)."""

    tag: str
    attrs: dict[str, str]
    children: list = field(default_factory=list)

    def iter(self):
        """This element and every element inside it, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str
                 ) -> list[Node]:
        """Elements inside (and including) this one with ``tag``, CSS class ``cls`` and
        the given attribute values."""
        return [n for n in self.iter()
                if (tag is None or n.tag == tag)
                and (cls is None or cls in n.attrs.get("class", "").split())
                and all(n.attrs.get(k) == v for k, v in attrs.items())]

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag or '*'}> with class {cls} and {attrs}"
        return found[0]

    @property
    def text(self) -> str:
        """The text content (entities decoded)."""
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def index(self, node: Node) -> int:
        """Position of ``node`` in document order."""
        return next(i for i, n in enumerate(self.iter()) if n is node)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if any(n.tag == tag for n in self.stack[1:]):
            while self.stack.pop().tag != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Node:
    """The element tree of an HTML page (:mod:`html.parser`)."""
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def images(text: str) -> list[Node]:
    return parse_html(text).find_all("img")


def verdict_rows(text: str) -> list[tuple[str, str]]:
    """(row class, metric) of the verdict table, in page order."""
    table = parse_html(text).find("table", cls="verdicts")
    return [(tr.attrs["class"], tr.find("td").find("code").text)
            for tr in table.find("tbody").find_all("tr")]


# --- content ------------------------------------------------------------------------------

def test_report_verdicts_first_failures_first_and_self_contained(run_dir: Path):
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    text = path.read_text()
    page = parse_html(text)

    # the verdict table comes before the first plot
    assert page.index(page.find("table", cls="verdicts")) < page.index(page.find("img"))
    rows = verdict_rows(text)
    # completeness x 2 filters + astrometry x 2 + phot bias F115W
    assert len(rows) == 5
    classes = [c for c, _ in rows]
    assert classes == sorted(classes, key=lambda c: c != "fail"), "failures must come first"
    assert [m for c, m in rows if c == "fail"] == ["completeness", "completeness"]
    assert "FAIL" in text and "PASS" in text
    assert "≥" not in text  # limits in the verdict's own words
    assert "&gt;= 0.95" in text
    limits = [tr.find_all("td")[3].text for tr in page.find("table", cls="verdicts")
              .find("tbody").find_all("tr")]
    assert limits[:2] == [">= 0.95", ">= 0.95"]
    assert re.search(r"0\.667 ± 0\.0\d\d fraction", text)  # the completeness is 40/60

    # every plot is an embedded PNG: 6 per filter
    imgs = images(text)
    assert len(imgs) == 6 * len(BANDS)
    for img in imgs:
        src = img.attrs["src"]
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        w, h = (int(img.attrs[k]) for k in ("width", "height"))
        assert w > 100 and h > 100
    for kind in ("completeness", "photometry", "astrometry", "background", "mosaic",
                 "counts"):
        figures = page.find_all("figure", cls=f"plot-{kind}")
        assert len(figures) == len(BANDS)
        assert all(f.find("figcaption").text and f.find("img").attrs["alt"] for f in figures)

    # nothing from the network, no script
    assert not re.search(r"https?://", text)
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert not page.find_all("script") and not page.find_all("link")
    assert "url(" not in text
    assert path.stat().st_size < 3_000_000

    # provenance from the manifest
    provenance = page.find("section", id="provenance")
    for needle in ("jwst_0002.pmap", "3.0.0", "simval_nircam_flat_nrcb1_f115w.fits",
                   'skystat = "median"', f"image3.{product_name('F115W')}", "12.1"):
        assert needle in provenance.text, needle
    assert 'skystat = "median"' not in text  # the quotes are escaped in the markup
    # the steps that use each reference type: from the manifest's record, every pipeline
    refs = [t for t in provenance.find_all("table")
            if [th.text for th in t.find_all("th")] == ["reference type", "file",
                                                       "used by step"]]
    assert len(refs) == 3  # image2: the exposures of each filter; image3: both products
    assert [[td.text for td in tr.find_all("td")] for tr in refs[0].find("tbody").find_all("tr")
            ] == [["flat", "simval_nircam_flat_nrcb1_f115w.fits",
                   "detector1.clean_flicker_noise, image2.flat_field"],
                  ["photom", PHOTOM_REFERENCE, "image2.photom"]]
    assert "predates" not in text
    sections = [page.index(page.find("section", id=i)) for i in
                ("verdicts", "filter-F115W", "filter-F150W", "provenance")]
    assert sections == sorted(sections)
    assert "N/A" not in re.sub(r"data:image/png;base64,[^\"]+", "", text)  # unused reftypes


def test_report_given_verdicts_replace_the_recomputed_ones(run_dir: Path):
    from simval.verdict import Verdict

    v = Verdict("astrom_rms_mas", "F115W", "baseline", False, 12.0, 0.5, "mas", 20,
                "3 +/- 1 (baseline)", "astrom_rms_mas[F115W] = 12 mas: FAIL")
    text = write_report(run_dir, verdicts=[v]).read_text()
    assert verdict_rows(text) == [("fail", "astrom_rms_mas")]
    assert "(baseline)" in text


def test_report_of_an_unevaluated_failed_run_is_notes_not_a_crash(tmp_path: Path):
    root = tmp_path / "run"
    root.mkdir()
    make_run_dir(root, status="failed")
    text = write_report(root).read_text()
    assert "no metrics.json" in text
    page = parse_html(text)
    error = page.find("div", cls="error")  # the failed stage's error, up front
    assert "resample found no valid pixels" in error.text
    assert page.index(error) < page.index(page.find("section", id="verdicts"))
    assert not page.find_all("img")
    assert "truth table" in text and "source catalog" in text and "no mosaic" in text
    for band in BANDS:
        assert page.find("section", id=f"filter-{band}")


def test_report_of_a_run_without_the_reftype_record(run_dir: Path):
    """A manifest written before ``reftype_steps`` was recorded: the reference files are
    listed without the step column, with a note, and jwst is not imported to guess."""
    doc = json.loads((run_dir / "manifest.json").read_text())
    del doc["reftype_steps"]
    write_json(run_dir / "manifest.json", doc)
    code = ("import sys; from simval.report import write_report; "
            f"write_report({str(run_dir)!r}); print('jwst' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["False"]  # no jwst import at render time
    provenance = parse_html((run_dir / "report.html").read_text()).find("section",
                                                                        id="provenance")
    heads = [[th.text for th in t.find_all("th")] for t in provenance.find_all("table")]
    assert ["reference type", "file"] in heads
    assert not any("used by step" in h for h in heads)
    assert any("predates the record" in n.text for n in provenance.find_all("div", cls="note"))
    assert "simval_nircam_flat_nrcb1_f115w.fits" in provenance.text


def test_values_from_the_run_are_escaped(tmp_path: Path):
    """A scenario name, an error and a note holding markup show as text, never as markup."""
    evil = '<script>alert("x")</script>'
    root = tmp_path / "run"
    root.mkdir()
    make_run_dir(root, status="failed", scenario=(evil, "0123456789abcdef"),
                 error=f"ValueError: {evil}")
    doc = read_json(root / "manifest.json")
    doc["worker_versions"] = {"jwst": evil}
    write_json(root / "manifest.json", doc)
    text = write_report(root).read_text()
    assert "<script" not in text.lower()
    page = parse_html(text)
    assert not page.find_all("script")
    assert page.find("title").text == f"simval report: {evil}"
    assert page.find("h1").text == f"simval report: {evil}"
    assert evil in page.find("div", cls="meta").find("b").text
    assert f"ValueError: {evil}" in page.find("div", cls="error").text
    assert any("Dask workers" in n.text and "<script>" in n.text
               for n in page.find_all("div", cls="note"))
    assert json.loads((root / "report.json").read_text())["title"] == evil


def test_report_of_an_empty_directory(tmp_path: Path):
    text = write_report(tmp_path).read_text()
    assert "No filter to show" in text and "no manifest.json" in text
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "absent")


def test_report_with_a_broken_mosaic_keeps_the_catalog_plots(run_dir: Path):
    (run_dir / "image3" / product_name("F150W") / f"{product_name('F150W')}_i2d.fits"
     ).write_text("x")
    text = write_report(run_dir).read_text()
    assert len(images(text)) == 6 + 3  # F150W: the three catalog plots only
    assert "the mosaic cannot be read" in text


def test_load_run_and_rich_table(run_dir: Path):
    from rich.console import Console

    run = load_run(run_dir)
    assert run.filters == list(BANDS)
    assert run.scenario_name == "fakescen" and run.status == "complete"
    assert len(run.verdicts) == 5 and sum(not v.passed for v in run.verdicts) == 2
    out = io.StringIO()
    print_verdicts(run.verdicts, Console(file=out, width=140, color_system=None))
    table = out.getvalue()
    assert table.index("FAIL") < table.index("PASS")
    assert "2 of 5 checks FAILED" in table
    assert re.search(r"0\.667 ± 0\.0\d\d fraction", table), table


def test_report_main_exit_codes(run_dir: Path, tmp_path: Path):
    from rich.console import Console

    out = io.StringIO()
    assert report_main(run_dir, console=Console(file=out, width=140)) == 1  # a failure
    assert "report:" in out.getvalue() and (run_dir / "report.html").is_file()
    assert report_main(tmp_path / "absent", console=Console(file=io.StringIO())) == 2
    plan_ok = read_json(run_dir / "plan.json")
    plan_ok["scenario"]["comparison"]["thresholds"] = {"astrom_rms_mas": {"max": 10.0}}
    write_json(run_dir / "plan.json", plan_ok)
    assert report_main(run_dir, console=Console(file=io.StringIO())) == 0


# --- plot helpers -------------------------------------------------------------------------

def test_block_reduce_smooth_and_running_stats():
    img = np.arange(36.0).reshape(6, 6)
    img[0, 0] = np.nan
    red, f = block_reduce(img, 3)
    assert f == 2 and red.shape == (3, 3)
    assert red[0, 0] == pytest.approx((1 + 6 + 7) / 3)  # NaN ignored
    flat = np.full((20, 20), 2.0)
    flat[5:8, 5:8] = np.nan
    sm = smooth_nan(flat, 1.5)
    assert np.allclose(sm[np.isfinite(sm)], 2.0) and np.isfinite(sm[6, 6])
    x = np.arange(100.0)
    y = np.where(x < 50, 0.1, -0.1)
    cx, med, spread = running_stats(x, y, per_bin=10)
    assert cx.size == 10 and np.all(np.diff(cx) > 0)
    assert med[0] == pytest.approx(0.1) and med[-1] == pytest.approx(-0.1)
    assert np.allclose(spread, 0.0)
    assert running_stats([1.0], [2.0])[0].size == 0


# --- rendering in a browser ---------------------------------------------------------------

def chromium(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    if not CHROMIUM.is_file() and shutil.which("chromium") is None:
        pytest.fail(INSTALL_HINT)
    exe = str(CHROMIUM) if CHROMIUM.is_file() else shutil.which("chromium")
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-extensions", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def test_report_renders_in_headless_chromium(run_dir: Path, tmp_path: Path):
    from PIL import Image

    text = write_report(run_dir).read_text()
    # 1. the DOM Chromium builds holds the verdict table and the decoded images: a probe
    #    copy of the page (the report itself has no script) records each image's natural
    #    size once the page has loaded.
    probe = tmp_path / "probe.html"
    script = ("<script>window.addEventListener('load',()=>{document.body.setAttribute("
              "'data-sizes',JSON.stringify([...document.images].map(i=>[i.naturalWidth,"
              "i.naturalHeight])));});</script>")
    probe.write_text(text.replace("</body>", script + "</body>"))
    dom = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert parse_html(html).find("table", cls="verdicts")
    assert len(verdict_rows(html)) == 5
    sizes = json.loads(parse_html(html).find("body").attrs["data-sizes"])
    assert len(sizes) == 6 * len(BANDS)
    assert all(w > 100 and h > 100 for w, h in sizes), sizes

    # 2. a screenshot of the report itself is not blank and shows the colour-coded table
    shot = tmp_path / "shot.png"
    res = chromium(tmp_path, "--window-size=1280,2400", "--hide-scrollbars",
                   f"--screenshot={shot}", (run_dir / "report.html").as_uri())
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (2400, 1280)
    assert pixels.std() > 20  # not a blank page
    fail_row = np.all(np.abs(pixels.astype(int) - (0xFD, 0xE2, 0xE1)) <= 2, axis=-1)
    pass_row = np.all(np.abs(pixels.astype(int) - (0xE6, 0xF4, 0xE6)) <= 2, axis=-1)
    assert fail_row.sum() > 1000 and pass_row.sum() > 1000
    assert len(np.unique(pixels.reshape(-1, 3)[::7], axis=0)) > 200  # the plots are drawn
