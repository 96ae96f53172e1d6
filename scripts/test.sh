#!/usr/bin/env bash
# The README's second command: set up .venv and run the whole test suite against real local services.
# Extra arguments go to pytest (`bash scripts/test.sh tests/unit/test_x.py -k name`).
#
# Tests run in parallel with pytest-xdist: most of them wait on real servers, subprocesses and
# monitor windows, so more workers than cores pay off. TMINUS_TEST_WORKERS sets the number (default
# below, measured in docs/architecture.md "Tests"; 0 runs in this process). `--dist loadgroup` sends
# the tests of an `xdist_group` to one worker. Arguments that choose for themselves win: a later
# `-n N` overrides ours, and with `-p no:xdist`, `--pdb` or `--trace` no -n is added at all.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
# Compiled once here: the many `tminus` processes the tests spawn then read bytecode instead of each
# compiling the package again (this machine sets PYTHONDONTWRITEBYTECODE, so nothing else writes it).
.venv/bin/python -m compileall -q -j 0 src >/dev/null
parallel=(-n "${TMINUS_TEST_WORKERS:-3}" --dist loadgroup)
for arg in "$@"; do
  case "$arg" in
    no:xdist|-pno:xdist|--pdb|--trace) parallel=() ;;
  esac
done
exec .venv/bin/python -m pytest ${parallel[@]+"${parallel[@]}"} "$@"
