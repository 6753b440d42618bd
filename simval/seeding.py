"""Seeded random streams: one independent ``numpy.random.Generator`` per named component."""

from __future__ import annotations

import hashlib
import json

import numpy as np

__all__ = ["component_rng"]


def component_rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator for one component (a kit reference, a simulator effect, a metric's
    random apertures), independent of the order things are made in.

    ``parts`` name the component (e.g. ``"flat", "NRCB1", "F115W"``); the same seed and
    parts always give the same stream, and different parts give independent streams.
    """
    digest = hashlib.sha256(json.dumps([int(seed), *map(str, parts)]).encode()).digest()
    return np.random.default_rng([int.from_bytes(digest[i:i + 4], "little") for i in (0, 4, 8, 12)])
