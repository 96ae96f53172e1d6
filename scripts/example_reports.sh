#!/usr/bin/env bash
# Render the reports the example pages link to: each example's demo runs against a ledger of its
# own, then every run it made (not its rehearsal records) is rendered with `tminus report` as
# Markdown and HTML into docs/examples/reports/<example>/, numbered in the order the demo ran them.
#
#   bash scripts/example_reports.sh                 (every example with a demo)
#   bash scripts/example_reports.sh quickstart      (one)
#   bash scripts/example_reports.sh wild            (the five runbooks in the wild, which have no demo:
#                                                    their end-to-end tests make the runs)
#
# Needs what the demos need (nginx, PostgreSQL on 127.0.0.1:5432); run after scripts/bootstrap.sh.
# The reports show this machine's paths, host name and times: they are samples of what a report
# holds, regenerated when the report's layout changes, not a test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMINUS="$root/.venv/bin/tminus"
examples=("$@")
[[ ${#examples[@]} -gt 0 ]] || examples=(quickstart blue-green dashboard-gates metrics-subsystem wild)

# render OUT LEDGER_URL...: every run of the ledgers (not a rehearsal's), each ledger's oldest first, as
# OUT/N-STATUS.{md,html} (N-KIND-STATUS for a gate, kill switch or monitor run)
render() {
  local out="$1" n=0
  shift
  rm -rf "$out" && mkdir -p "$out"
  while read -r ledger run_id status; do
    n=$((n + 1))
    base="$out/$n-$status"
    "$TMINUS" report "$run_id" --ledger "$ledger" -o "$base.md"
    "$TMINUS" report "$run_id" --ledger "$ledger" -o "$base.html"
    echo "    ${base#"$root"/}.{md,html}"
  done < <("$root/.venv/bin/python" - "$@" <<'PY'
import sys
from tminus.ledger import open_reader
from tminus.projection import project

for url in sys.argv[1:]:
    with open_reader(url) as reader:
        runs = list(reversed(reader.list_runs(limit=200)))
        views = {run.id: project(reader.events(run.id)) for run in runs}
        rehearsed = set()  # a rehearsal's runs (its cycles, a kill switch one pulled): `tminus show REHEARSAL_ID`
        for view in views.values():
            for cycle in view.rehearsal.cycles if view.rehearsal else []:
                rehearsed |= {cycle.run_id, (cycle.data.get("kill_switch") or {}).get("run_id")}
        for run in runs:
            if run.kind == "rehearsal" or run.id in rehearsed:
                continue
            label = run.status if run.kind == "run" else f"{run.kind}-{run.status}"
            print(url, run.id, label.replace("_", "-"))
PY
)
}

for name in "${examples[@]}"; do
  work="$(mktemp -d)"
  if [[ "$name" == wild ]]; then
    echo "==> runbooks in the wild: their end-to-end tests (log: $work/pytest.log)"
    (cd "$root" && .venv/bin/python -m pytest -q -n 0 tests/e2e/test_examples_wild.py \
       --basetemp="$work/pt" >"$work/pytest.log" 2>&1) || {
      tail -20 "$work/pytest.log" >&2; echo "the wild examples' tests failed" >&2; exit 1; }
    for seed in 000-mes-dashboard 001-migration-gates-spec 002-mge-v2-migration 003-recall-api-cutover \
                004-metrics-subsystem; do
      # each test copies the example into its folder, beside the ledger.db its runs wrote
      mapfile -t dbs < <(find "$work/pt" -name ledger.db -path "*/*" | while read -r db; do
                           [[ -d "$(dirname "$db")/$seed" ]] && echo "$db"; done | sort)
      render "$root/docs/examples/reports/wild-${seed%%-*}" "${dbs[@]/#/sqlite:///}"
    done
  else
    demo="$root/examples/$name/demo.sh"
    [[ -f "$demo" ]] || { echo "no demo for $name ($demo)" >&2; exit 2; }
    ledger="sqlite:///$work/ledger.db"
    echo "==> $name: running its demo (log: $work/demo.log)"
    TMINUS_LEDGER="$ledger" bash "$demo" >"$work/demo.log" 2>&1 || {
      tail -20 "$work/demo.log" >&2; echo "the $name demo failed" >&2; exit 1; }
    render "$root/docs/examples/reports/$name" "$ledger"
  fi
  rm -rf "$work"
done
"$root/.venv/bin/python" "$root/scripts/link_example_reports.py"
