#!/usr/bin/env bash
# Install simval and its pinned dependencies into ./.venv (Python 3.11). As root on a
# Debian machine without Chromium, also install Debian's chromium: the report test renders
# report.html in headless Chromium; and Debian's slurm-wlm and munge (scripts/install_slurm.sh):
# the cluster tests start a single-node SLURM on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "simval needs Python 3.11"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the report render test will fail" >&2
fi
bash scripts/install_slurm.sh
