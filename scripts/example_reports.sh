#!/usr/bin/env bash
# Render the reports the example pages link to: each example's demo runs against a ledger of its
# own, then every run it made (not its rehearsal records) is rendered with `tminus report` as
# Markdown and HTML into docs/examples/reports/<example>/, numbered in the order the demo ran them.
#
#   bash scripts/example_reports.sh                 (every example with a demo)
#   bash scripts/example_reports.sh quickstart      (one)
#
# Needs what the demos need (nginx, PostgreSQL on 127.0.0.1:5432); run after scripts/bootstrap.sh.
# The reports show this machine's paths, host name and times: they are samples of what a report
# holds, regenerated when the report's layout changes, not a test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMINUS="$root/.venv/bin/tminus"
examples=("$@")
[[ ${#examples[@]} -gt 0 ]] || examples=(quickstart blue-green dashboard-gates metrics-subsystem)

for name in "${examples[@]}"; do
  demo="$root/examples/$name/demo.sh"
  [[ -f "$demo" ]] || { echo "no demo for $name ($demo)" >&2; exit 2; }
  work="$(mktemp -d)"
  ledger="sqlite:///$work/ledger.db"
  echo "==> $name: running its demo (log: $work/demo.log)"
  TMINUS_LEDGER="$ledger" bash "$demo" >"$work/demo.log" 2>&1 || {
    tail -20 "$work/demo.log" >&2; echo "the $name demo failed" >&2; exit 1; }
  out="$root/docs/examples/reports/$name"
  rm -rf "$out" && mkdir -p "$out"
  n=0
  # oldest first: the order the demo tells its story in
  while read -r run_id status; do
    n=$((n + 1))
    base="$out/$n-$status"
    "$TMINUS" report "$run_id" --ledger "$ledger" -o "$base.md"
    "$TMINUS" report "$run_id" --ledger "$ledger" -o "$base.html"
    echo "    $base.{md,html}"
  done < <("$root/.venv/bin/python" - "$ledger" <<'PY'
import sys
from tminus.ledger import open_reader
from tminus.projection import project

with open_reader(sys.argv[1]) as reader:
    for run in reversed(reader.list_runs(limit=100)):
        started = project(reader.events(run.id)).started
        if run.kind == "rehearsal" or (started and "rehearsal" in started.data):
            continue  # a rehearsal's cycles have a report of their own: `tminus show REHEARSAL_ID`
        print(run.id, run.status)
PY
)
  rm -rf "$work"
done
