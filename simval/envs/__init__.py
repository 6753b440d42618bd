"""Isolated pipeline environments: another jwst release beside the one simval runs with.

An *environment* is a virtual environment holding one jwst release (with the dependencies
the package index resolves for it) and simval itself installed without its dependencies, so
that :mod:`simval.envs.worker` can run a calibrate call there with the current simval code.

- :mod:`simval.envs.registry`: where environments live and the JSON registry of them.
- :mod:`simval.envs.create`: make (``simval env create jwst==X.Y.Z``), register, remove.
- :mod:`simval.envs.worker`: ``python -m simval.envs.worker SPEC.json`` inside an
  environment: one detector1 / image2 / image3 call, result as JSON. Light imports only.
- :mod:`simval.envs.runner`: :func:`~simval.envs.runner.run_in_env` from the calling
  process, and the hook run stages use when their params carry ``env: NAME``.

See docs/environments.md.
"""
