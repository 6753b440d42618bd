#!/usr/bin/env bash
# Install Debian's SLURM (slurm-wlm: slurmctld, slurmd, sbatch, ...) and munge, which the
# tests of `simval run --cluster slurm` start on localhost (tests/cluster_fixtures.py).
# Only as root on a machine with apt-get, and only what is missing; nothing is started or
# enabled here (the test fixture starts and stops the daemons itself). Elsewhere it says
# why it did nothing and those tests skip with the same reason.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
if have slurmctld && have slurmd && have sbatch && have munged; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: slurm-wlm and munge are not installed and this is not root with apt-get;" \
       "the SLURM cluster tests will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d 101: the packages' maintainer scripts must not start daemons (no systemd here;
# the tests run their own).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
status=0
apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null || status=$?
[ "$made_policy" = 1 ] && rm -f "$policy"
if [ "$status" != 0 ]; then
  echo "warning: could not install slurm-wlm and munge (apt-get exit $status); the SLURM" \
       "cluster tests will fail in CI" >&2
  exit 0
fi
