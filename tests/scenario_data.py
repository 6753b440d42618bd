"""The shipped scenarios as data for tests that write edited copies elsewhere."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
CATALOG_REL = "../catalogs/quickstart_field.ecsv"


def quickstart_text(path: Path = QUICKSTART) -> str:
    """The scenario's YAML text with its catalog path made absolute (copies can live in any
    directory)."""
    return path.read_text().replace(CATALOG_REL, str((path.parent / CATALOG_REL).resolve()))


def quickstart_data(path: Path = QUICKSTART) -> dict:
    """The scenario as a mapping, catalog path absolute."""
    return yaml.safe_load(quickstart_text(path))
