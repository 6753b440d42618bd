"""Imported once by the MIRAGE fork server: MIRAGE, jwst's datamodels and pysiaf, offline.

:func:`simval.simulate.mirage_backend.run_mirage` starts MIRAGE children from a
``multiprocessing`` fork server whose preload list is this module. The fork server imports
it once per worker process; every exposure's child is then a ``fork`` of that server and
starts with these modules already imported (~4-8 s of imports saved per exposure).

Importing MIRAGE configures the root logger (``logging.config.dictConfig``) and opens
``mirage_latest.log`` in the current directory. That happens here in a private scratch
directory, which is removed again once the handlers are closed; each child points MIRAGE's
log at its own work directory (:func:`simval.simulate.mirage_backend.run_in_this_process`).
Nothing here runs in the parent: the module is only ever imported by the fork server.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import shutil
import tempfile

from simval import offline
from simval.simulate.mirage_backend import MAIN_ENV


def _preload() -> None:
    scratch = tempfile.mkdtemp(prefix="simval-mirage-preload-")
    home = os.getcwd()
    os.chdir(scratch)
    try:  # MIRAGE's console handler would print import-time records on the worker's stdout
        with contextlib.redirect_stdout(io.StringIO()):
            offline.configure()
            offline.import_pysiaf()
            from mirage import imaging_simulator  # noqa: F401
            from mirage.reference_files import crds_tools  # noqa: F401
            from stdatamodels.jwst.datamodels import model_base  # noqa: F401
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        with contextlib.suppress(OSError):
            os.chdir(home)
        shutil.rmtree(scratch, ignore_errors=True)
    _import_parent_main()
    gc.collect()
    gc.freeze()  # children share these pages copy-on-write; the collector leaves them alone


def _import_parent_main() -> None:
    """Import the parent's main script (as ``__mp_main__``, as a fixed fork server does for
    its ``"__main__"`` preload) or main module
    (:func:`simval.simulate.mirage_backend.start_fork_server`), so that children do not pay
    its imports. A main that fails here is left to the children, as before."""
    import importlib
    import json
    from multiprocessing import process, spawn

    main = json.loads(os.environ.get(MAIN_ENV) or "{}")
    process.current_process()._inheriting = True
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            if os.path.isfile(main.get("init_main_from_path") or ""):
                spawn.import_main_path(main["init_main_from_path"])
            elif main.get("init_main_from_name"):
                importlib.import_module(main["init_main_from_name"])
    except Exception:  # the server must start; the children then run the main again
        logging.getLogger(__name__).debug("fork server: %s not preloaded", main,
                                          exc_info=True)
    finally:
        del process.current_process()._inheriting


_preload()
