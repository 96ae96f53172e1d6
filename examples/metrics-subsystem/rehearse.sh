#!/usr/bin/env bash
# The rollback rehearsal of the metrics runbook (its section 9), in staging, timed from the ledger:
# deploy, smoke, roll back, check the metrics tables are gone, roll forward again, smoke again.
#
#   TASCADE_DATABASE_URL=postgresql+psycopg://... TASCADE_API_KEY=... bash examples/metrics-subsystem/rehearse.sh [RUN_ID]
#
# RUN_ID: a completed staging run that applied 0005-0008, to rehearse on (demo.sh passes its
# cutover). Without it, step 1 deploys with `tminus run` first. tminus rolls back what a run did,
# nothing more: a run that found 0005-0008 already applied reverts none of them, so the script
# refuses to rehearse on such a run and names the one to use instead.
#
# Optional: TASCADE_PORT, TASCADE_STATE, TASCADE_PYTHON (see runbook.yaml), TMINUS_LEDGER.
# Runs tminus from the current directory, so the ledger is ./.tminus/ledger.db unless
# TMINUS_LEDGER says otherwise. Exit 0 when every success criterion of section 9 holds.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TMINUS="${TMINUS:-$REPO/.venv/bin/tminus}"
PY="${TASCADE_PYTHON:-$REPO/.venv/bin/python}"
export TASCADE_PYTHON="$PY"
RUNBOOK="$HERE/runbook.yaml"

if [[ -t 1 ]]; then BOLD=$'\033[1m' RED=$'\033[31m' OFF=$'\033[0m'; else BOLD="" RED="" OFF=""; fi
say() { printf '\n%s--> %s%s\n' "$BOLD" "$*" "$OFF"; }
die() { printf '\n%srehearsal failed: %s%s\n' "$RED" "$*" "$OFF" >&2; exit 1; }
latest_run() {  # id of the newest run of this runbook
    "$TMINUS" history --json -n 1 | "$PY" -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])'
}

[[ -n "${TASCADE_DATABASE_URL:-}" ]] || die "set TASCADE_DATABASE_URL (a postgresql+psycopg:// URL)"

if [[ $# -ge 1 ]]; then
    DEPLOY_RUN="$1"
    say "1. Deployed by run $DEPLOY_RUN"
else
    say "1. Deploy the metrics release to staging (tminus run)"
    rc=0; "$TMINUS" run "$RUNBOOK" -e staging --yes || rc=$?
    [[ $rc -eq 0 ]] || die "the deploy exited $rc, expected 0"
    DEPLOY_RUN="$(latest_run)"
fi
# What the run's metrics migration applied: that, and only that, is what its rollback reverts.
APPLIED="$("$TMINUS" show "$DEPLOY_RUN" --json | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
assert d["run"]["status"] == "completed", "run " + d["run"]["id"] + " is " + d["run"]["status"] + ", not completed"
done = [e for e in d["events"] if e["type"] == "step.finished" and e["data"]["name"].startswith("Apply 0005-0008")]
print(" ".join(done[-1]["data"]["outputs"]["applied"]) if done else "")
')" || die "cannot rehearse on run $DEPLOY_RUN"
echo "  run $DEPLOY_RUN applied: ${APPLIED:-nothing (0005-0008 were already there)}"
[[ "$APPLIED" == *0005* ]] || die "run $DEPLOY_RUN applied no metrics migration, so rolling it back would remove
nothing; rehearse on the run that applied them: $0 RUN_ID (tminus history), or start from a database without them"

say "2. Smoke tests: every endpoint 200 with X-API-Version 1.0"
"$PY" "$HERE/smoke.py" || die "smoke tests failed after the deploy"

say "3. Roll back: tminus rollback $DEPLOY_RUN --reason rehearsal"
rc=0; "$TMINUS" rollback "$DEPLOY_RUN" --reason rehearsal || rc=$?
[[ $rc -eq 11 ]] || die "the rollback exited $rc, expected 11 (rolled back)"

say "4./5. The metrics tables are gone; the service restarted and /health is ok"
"$PY" "$HERE/smoke.py" --rolled-back || die "the state after the rollback is not what section 8 promises"

say "6. Roll forward again (tminus run) and re-run the smoke tests"
rc=0; "$TMINUS" run "$RUNBOOK" -e staging --yes || rc=$?
[[ $rc -eq 0 ]] || die "the roll forward exited $rc, expected 0"
FORWARD_RUN="$(latest_run)"
"$PY" "$HERE/smoke.py" || die "smoke tests failed after rolling forward"

say "Measured recovery time (from the ledger: tminus show $DEPLOY_RUN --json)"
LEDGER_JSON="$("$TMINUS" show "$DEPLOY_RUN" --json)" "$PY" - <<'EOF'
import json
import os
from datetime import datetime

events = json.loads(os.environ["LEDGER_JSON"])["events"]


def at(event: dict) -> datetime:
    return datetime.fromisoformat(event["at"])


def last(kind: str) -> dict:
    return [e for e in events if e["type"] == kind][-1]


started, finished = last("rollback.started"), last("rollback.finished")
resumed, ended = last("run.resumed"), last("run.finished")
steps = [e for e in events if e["type"] == "step.finished" and at(e) >= at(started)]
print(f"  rollback started   {started['at']}")
print(f"  rollback finished  {finished['at']}  ok={finished['data']['ok']}")
print(f"  recovery time      {(at(finished) - at(started)).total_seconds():.2f} s: undo, rollback steps, verify ({len(steps)} steps)"
      f" (the whole `tminus rollback` command: {(at(ended) - at(resumed)).total_seconds():.2f} s)")
for e in steps:
    print(f"    {e['data']['duration_ms']:7.0f} ms  {e['data']['name']}")
EOF

LEDGER="${TMINUS_LEDGER:-sqlite:///$PWD/.tminus/ledger.db}"
cat <<EOF

${BOLD}Rehearsal passed.${OFF} Success criteria of section 9: rollback without errors, every
metrics table removed, the service healthy after the rollback, forward migration clean afterwards.
  deploy + rollback run: $DEPLOY_RUN   (tminus show $DEPLOY_RUN)
  roll-forward run:      $FORWARD_RUN
  ledger:                $LEDGER
EOF
