"""Instrument facts, one module per instrument (:mod:`simval.instruments.nircam`).

Nothing here depends on the rest of simval: the scenario, the plan, the kit and the
simulator all read detectors, filters, readout tables and naming rules from here.
"""
