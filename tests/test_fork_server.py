"""The MIRAGE fork server imports the parent's main once, so its children do not run it again.

multiprocessing prepares every forked child by running the parent's main script, unless the
fork server imported it; on Python 3.11 the server's own ``"__main__"`` preload never gets
the script's path (CPython gh-126631), and each MIRAGE child re-ran ``simval``'s console
script (0.5-1.6 s per exposure). :func:`start_fork_server` hands the path over itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import os
    with open(os.environ["MAIN_RUNS"], "a") as log:
        log.write(__name__ + "\\n")


    def child():
        with open(os.environ["MAIN_RUNS"], "a") as log:
            log.write("child\\n")


    if __name__ == "__main__":
        import multiprocessing
        import sys

        from simval.simulate import mirage_backend

        mirage_backend.start_fork_server()
        ctx = multiprocessing.get_context("forkserver")
        for _ in range(int(sys.argv[1])):
            p = ctx.Process(target=child)
            p.start()
            p.join()
            assert p.exitcode == 0, p.exitcode
        assert mirage_backend.MAIN_ENV not in os.environ  # set for the server's start only
''')


@pytest.mark.slow
def test_children_do_not_run_the_main_script_again(tmp_path):
    script = tmp_path / "main_script.py"
    script.write_text(SCRIPT)
    runs = tmp_path / "runs.txt"
    subprocess.run([sys.executable, str(script), "3"], check=True, cwd=tmp_path,
                   env={**os.environ, "MAIN_RUNS": str(runs)}, timeout=600)
    lines = runs.read_text().split()
    # The parent ran it as __main__, the fork server once as __mp_main__, three children
    # ran the target without re-running the script (without the hand-over: 3 x __mp_main__
    # more).
    assert lines.count("__main__") == 1
    assert lines.count("child") == 3
    assert lines.count("__mp_main__") == 1
