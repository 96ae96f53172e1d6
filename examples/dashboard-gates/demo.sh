#!/usr/bin/env bash
# The dashboard-gates example end to end (runbooks-in-the-wild 000/001):
#   1. validate and plan the runbook; run its eight readiness gates against the stand-in service,
#      then once more with a renamed CSV column: BLOCKED (exit 10)
#   2. the rollback rehearsal of 000 (tminus rehearse --roll-forward): a failure injected after each
#      phase and rolled back, then a whole cutover with its watch rolled back; 1.9.0 must serve
#      again after every cycle, each recovery timed (exit 0)
#   3. cut over; a few seconds into the watch the new frontend exhausts the database pool: the
#      pool-saturation rule fires and tminus rolls back by itself (exit 11); tminus why
#   4. the cause fixed, cut over again and watch it: COMPLETED (exit 0), 2.0.0 serves
#
#   bash examples/dashboard-gates/demo.sh        (from anywhere; after scripts/quickstart.sh)
#
# Runs on a drill copy of the example in a temporary directory (drill.py: a 12 s watch with a
# probe every second instead of 30 min every 15 s; every gate, step and threshold unchanged), on
# free loopback ports (DASHBOARD_PORT, DASHBOARD_CHAT_PORT to choose). Stops what it started and
# removes the copy at the end. The ledger is .tminus/ledger.db at the repository root.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TMINUS="$REPO/.venv/bin/tminus"
PY="$REPO/.venv/bin/python"
RUNBOOK="examples/dashboard-gates/runbook.yaml"

if [[ -t 1 ]]; then BOLD=$'\033[1m' RED=$'\033[31m' OFF=$'\033[0m'; else BOLD="" RED="" OFF=""; fi
say() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$OFF"; }
die() { printf '\n%sdemo failed: %s%s\n' "$RED" "$*" "$OFF" >&2; exit 1; }
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
latest_run() { "$TMINUS" history --json -n 1 | "$PY" -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])'; }
control() { "$PY" - "$DASHBOARD_PORT" "$1" <<'EOF'
import sys
import urllib.request

request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/control", data=sys.argv[2].encode(), method="POST")
urllib.request.urlopen(request, timeout=5).read()
EOF
}
health() {  # prints the frontend release and the pool saturation /health reports
    "$PY" - "$DASHBOARD_PORT" <<'EOF'
import json
import sys
import urllib.request

with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=5) as resp:
    h = json.load(resp)
print(f"  /health: frontend {h['version']}, status {h['status']}, pool saturation {h['database_pool']['state']['saturation']}")
EOF
}
wait_started() {  # until the stand-in with pid $1 logs "listening on" in $2, at most 10 s
    for _ in $(seq 100); do
        grep -q "listening on" "$2" 2>/dev/null && return 0
        kill -0 "$1" 2>/dev/null || die "it exited at once (port taken?): $(cat "$2")"
        sleep 0.1
    done
    die "no start within 10 s: $(cat "$2")"
}
go_bad_in_the_window() {  # once the newest run has decided go: the 2.0.0 bundle exhausts the pool
    "$PY" - "$TMINUS" "$DASHBOARD_PORT" <<'EOF'
import json
import subprocess
import sys
import time
import urllib.request

tminus, port = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 60
while time.monotonic() < deadline:  # the decision is the moment the monitor window opens
    runs = json.loads(subprocess.run([tminus, "status", "--json"], capture_output=True, text=True).stdout or "[]")
    if runs:
        shown = subprocess.run([tminus, "show", runs[0]["run_id"], "--json"], capture_output=True, text=True)
        if any(e["type"] == "decision" for e in json.loads(shown.stdout)["events"]):
            break
    time.sleep(0.3)
else:
    sys.exit("no run reached its go decision within 60 s")
time.sleep(2)  # a couple of healthy probes first
print("  [demo] the 2.0.0 bundle's polling exhausts the database pool; clients start retrying", flush=True)
for change in ({"fault": "pool_exhausted", "version": "2.0.0"}, {"client_retries": 12}):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/control", data=json.dumps(change).encode(), method="POST")
    urllib.request.urlopen(request, timeout=5).read()
EOF
}

[[ -x "$TMINUS" ]] || die "$TMINUS not found: run 'bash scripts/quickstart.sh' first"
cd "$REPO"  # the ledger goes to ./.tminus/ledger.db: the repository root, wherever we started

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dashboard-gates.XXXXXX")"
DRILL="$WORK/dashboard-gates"
export DASHBOARD_PORT="${DASHBOARD_PORT:-$(free_port)}" DASHBOARD_CHAT_PORT="${DASHBOARD_CHAT_PORT:-$(free_port)}"
export DASHBOARD_STATE="$WORK/state"
PIDS=()
cleanup() {  # only what this script started, by pid
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

say "A drill copy of the example in $DRILL; the stand-in on port $DASHBOARD_PORT, the chat on $DASHBOARD_CHAT_PORT"
"$PY" "$HERE/drill.py" "$DRILL" --duration 12s --interval 1s --baseline 3s
"$PY" "$DRILL/service.py" --quiet 2>"$WORK/service.log" &
PIDS+=($!)
wait_started $! "$WORK/service.log"
"$PY" "$DRILL/chat.py" 2>"$WORK/chat.log" &  # what it is told goes to stdout, into the demo's output
PIDS+=($!)
wait_started $! "$WORK/chat.log"
health

say "tminus validate: the runbook as it ships (30 min watch, a probe every 15 s)"
"$TMINUS" validate "$RUNBOOK"

say "tminus plan: the T+ timeline (the gates above it are elided here)"
"$TMINUS" plan "$RUNBOOK" | sed -n '/^Timeline/,$p'

say "tminus gate: the eight readiness gates, read-only. Expected: exit 0"
rc=0; "$TMINUS" gate "$RUNBOOK" || rc=$?
[[ $rc -eq 0 ]] || die "the gates exited $rc; expected 0"

say "The backend renames two export columns: the CSV contract gate blocks. Expected: exit 10"
control '{"fault": "export_header_drift"}'
rc=0; "$TMINUS" gate "$RUNBOOK" >"$WORK/gate.out" 2>&1 || rc=$?
grep -v '✓' "$WORK/gate.out" || true  # the failures only
[[ $rc -eq 10 ]] || die "the gates exited $rc; expected 10 (blocked)"
control '{"clear": "export_header_drift"}'

say "The rollback rehearsal of 000: fail after each phase, roll back; then a whole cutover rolled back. Expected: exit 0"
rc=0; "$TMINUS" rehearse "$DRILL/runbook.yaml" --yes --roll-forward 2>&1 | tee "$WORK/rehearsal.out" || rc=${PIPESTATUS[0]}
[[ $rc -eq 0 ]] || die "the rehearsal exited $rc; expected 0 (every cycle rolled back to 1.9.0)"
grep -q '^Verdict: PASSED' "$WORK/rehearsal.out" || die "the rehearsal's report does not say PASSED"
REHEARSAL="$(sed -n 's/^rehearsal \([0-9][0-9a-f-]*\) .*/\1/p' "$WORK/rehearsal.out")"
health

say "Run 1: cutover to 2.0.0; 2 s into the watch the pool runs dry. Expected: ROLLED BACK by the monitor, exit 11"
go_bad_in_the_window &
PIDS+=($!)
rc=0; "$TMINUS" run "$DRILL/runbook.yaml" --yes || rc=$?
[[ $rc -eq 11 ]] || die "run 1 exited $rc; expected 11 (rolled back)"
BAD_RUN="$(latest_run)"
health

say "tminus why $BAD_RUN"
"$TMINUS" why "$BAD_RUN"

say "Run 2: the pool fixed, cutover to 2.0.0 and a 12 s watch. Expected: COMPLETED, exit 0"
control '{"reset": true}'
rc=0; "$TMINUS" run "$DRILL/runbook.yaml" --yes || rc=$?
[[ $rc -eq 0 ]] || die "run 2 exited $rc; expected 0"
CUTOVER_RUN="$(latest_run)"
health

say "Stop the stand-ins, remove the drill copy"
cleanup
trap - EXIT

cat <<EOF

${BOLD}Done.${OFF} The ledger is $REPO/.tminus/ledger.db
From $REPO:
  .venv/bin/tminus show $REHEARSAL     # the rehearsal: each cycle, its recovery time
  .venv/bin/tminus why $BAD_RUN      # the monitor's rollback, in sentences
  .venv/bin/tminus show $CUTOVER_RUN     # the cutover that completed, and its watch
  .venv/bin/tminus plan $RUNBOOK      # the timeline, runs nothing
The runbook: $HERE/runbook.yaml
EOF
