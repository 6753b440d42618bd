"""Where a run keeps its files (the run directory is the interface between stages).

::

    RUN_DIR/
      scenario.yaml              the scenario as given (byte copy of the file)
      plan.json                  the plan (simval.plan.Plan.to_json)
      manifest.json              provenance of the whole run (written last)
      catalog/                   stars.ecsv, galaxies.ecsv: the input truth
      exposures/<base>/          MIRAGE: yaml, catalogs, uncal, seed image, truth lists
      detector1/<base>_rate.fits
      image2/<base>_cal.fits     (+ <base>_i2d.fits when image2's resample runs)
      image3/<product>/          asn, members (<base>_cal.fits), _i2d.fits, _cat.ecsv,
                                 _background.json (sky levels skymatch found / the recipe took)
      truth/<product>_truth.ecsv         truth table of the mosaic
      truth/<product>_truth_i2d.fits     noiseless truth mosaic on the _i2d grid
      truth/<product>_backgrounds.ecsv   injected and recovered sky per exposure
      evaluation/<product>_match.ecsv    truth row, measured row, separation, sample flags
      evaluation/<product>_metrics.json  the product's metrics (metrics.json for one filter)
      evaluation/<product>_defects.ecsv  every hole / black line: where, along which edge, why
      evaluation/<product>_{holes,seams,sources}.reg   DS9 region files (ICRS)
      metrics.json               every product's metrics (the join), report.html
      logs/<stage_id>.log        pipeline / MIRAGE log of one stage
      logs/<stage_id>.traceback.txt   on failure
      stages/<stage_id>.json     stage record (simval.run.records)

Stage ids: ``kit``, ``catalog``, ``simulate.<base>``, ``detector1.<base>``,
``image2.<base>``, ``image3.<product>``, ``truth.<product>``, ``evaluate.<product>``,
``metrics``. Scratch directories (``.work-*``) hold a stage's
files until they are complete, then the files are renamed into place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunLayout:
    """Paths inside one run directory (see module docstring)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).expanduser().absolute())

    @property
    def scenario(self) -> Path:
        return self.root / "scenario.yaml"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def catalog(self) -> Path:
        return self.root / "catalog"

    @property
    def exposures(self) -> Path:
        return self.root / "exposures"

    @property
    def detector1(self) -> Path:
        return self.root / "detector1"

    @property
    def image2(self) -> Path:
        return self.root / "image2"

    @property
    def image3(self) -> Path:
        return self.root / "image3"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def stages(self) -> Path:
        return self.root / "stages"

    @property
    def truth(self) -> Path:
        return self.root / "truth"

    @property
    def evaluation(self) -> Path:
        return self.root / "evaluation"

    @property
    def metrics(self) -> Path:
        """``metrics.json``: the join of every product's evaluation."""
        return self.root / "metrics.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def truth_table(self, product_name: str) -> Path:
        return self.truth / f"{product_name}_truth.ecsv"

    def truth_mosaic(self, product_name: str) -> Path:
        return self.truth / f"{product_name}_truth_i2d.fits"

    def backgrounds(self, product_name: str) -> Path:
        return self.truth / f"{product_name}_backgrounds.ecsv"

    def match_table(self, product_name: str) -> Path:
        return self.evaluation / f"{product_name}_match.ecsv"

    def product_metrics(self, product_name: str) -> Path:
        return self.evaluation / f"{product_name}_metrics.json"

    def evaluation_table(self, product_name: str, kind: str) -> Path:
        """``evaluation/<product>_<kind>.ecsv`` (coronagraphy: ``companions``,
        ``contrast``, ``alignment``)."""
        return self.evaluation / f"{product_name}_{kind}.ecsv"

    def defects_table(self, product_name: str) -> Path:
        """``evaluation/<product>_defects.ecsv``: the mosaic's holes explained."""
        return self.evaluation / f"{product_name}_defects.ecsv"

    def regions_file(self, product_name: str, kind: str) -> Path:
        """``evaluation/<product>_<kind>.reg`` (kind ``holes``, ``seams``, ``sources``)."""
        return self.evaluation / f"{product_name}_{kind}.reg"

    def product_file(self, product_name: str, suffix: str) -> Path:
        """``image3/<product>/<product><suffix>`` (``_i2d.fits``, ``_cat.ecsv``, ...)."""
        return self.image3 / product_name / f"{product_name}{suffix}"

    def exposure_dir(self, base_name: str) -> Path:
        return self.exposures / base_name

    def product_dir(self, product_name: str) -> Path:
        return self.image3 / product_name

    def record(self, stage_id: str) -> Path:
        return self.stages / f"{stage_id}.json"

    def log(self, stage_id: str) -> Path:
        return self.logs / f"{stage_id}.log"

    def traceback(self, stage_id: str) -> Path:
        return self.logs / f"{stage_id}.traceback.txt"

    def scratch(self, parent: Path, name: str) -> Path:
        """A scratch directory beside ``parent``'s final files (same file system)."""
        return parent / f".work-{name}"

    def rel(self, path: str | os.PathLike) -> str:
        """``path`` relative to the run directory if inside it, else absolute."""
        p = Path(path).absolute()
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            return str(p)

    def abs(self, path: str) -> Path:
        """Inverse of :meth:`rel`."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    def make(self) -> None:
        for d in (self.root, self.catalog, self.exposures, self.detector1, self.image2,
                  self.image3, self.truth, self.evaluation, self.logs, self.stages):
            d.mkdir(parents=True, exist_ok=True)
