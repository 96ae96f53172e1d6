#!/usr/bin/env bash
# The blue-green example end to end, under a steady load through nginx:
#   1. stack.py up: PostgreSQL schema, nginx (its own conf, pid and logs in state/), v1 in the blue slot
#   1b. tminus rehearse for v2 under load: a failure injected after each phase and rolled back, then
#      the kill switch pulled mid-cutover; the app's table fingerprinted before and after each
#      cycle. Expected: exit 0, 0 failed requests, v1 still serving from blue
#   2. run the runbook for v2 (green): start, preview, 10% canary + watch, switch, drain, verify,
#      monitor, retire blue. Expected: COMPLETED (exit 0), 0 failed requests
#   3. run it for the broken v3 (blue): it starts and is healthy, but its preview answers 500, so
#      tminus stops it and restores the routing: ROLLED BACK (exit 11), 0 failed requests, v3 never
#      served a user
#   4. tminus kill-switch: v1 again in blue, all traffic to it, timed against the 30 s target
#   5. tminus releases; then everything is stopped and the schema dropped
#
#   bash examples/blue-green/demo.sh        (from anywhere; after scripts/bootstrap.sh)
#
# Needs /usr/sbin/nginx and PostgreSQL on 127.0.0.1:5432 (database `test`, user postgres, trust).
# Free loopback ports are chosen (BG_PORT, BG_PREVIEW_PORT, BG_BLUE_PORT, BG_GREEN_PORT to fix them);
# DATABASE_URL and BG_SCHEMA pick the database. The ledger is .tminus/ledger.db at the repository root.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TMINUS="$REPO/.venv/bin/tminus"
PY="$REPO/.venv/bin/python"
RUNBOOK="examples/blue-green/runbook.yaml"
STATE="$HERE/state"
LOAD_RATE="${BG_LOAD_RATE:-100}"   # requests per second through nginx while tminus works

if [[ -t 1 ]]; then BOLD=$'\033[1m' RED=$'\033[31m' OFF=$'\033[0m'; else BOLD="" RED="" OFF=""; fi
say() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$OFF"; }
die() { printf '\n%sdemo failed: %s%s\n' "$RED" "$*" "$OFF" >&2; exit 1; }
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
stack() { "$PY" "$HERE/stack.py" --state "$STATE" "$@"; }

[[ -x "$TMINUS" ]] || die "$TMINUS not found: run 'bash scripts/bootstrap.sh' first"
[[ -x "$REPO/.venv/bin/gunicorn" ]] || die "no gunicorn in .venv: run 'bash scripts/bootstrap.sh' (dev extras)"
[[ -x /usr/sbin/nginx ]] || die "/usr/sbin/nginx not found: apt-get install nginx"
cd "$REPO"  # the ledger goes to ./.tminus/ledger.db: the repository root, wherever we started

PORT="${BG_PORT:-$(free_port)}"
PREVIEW_PORT="${BG_PREVIEW_PORT:-$(free_port)}"
BLUE_PORT="${BG_BLUE_PORT:-$(free_port)}"
GREEN_PORT="${BG_GREEN_PORT:-$(free_port)}"

LOAD_PID=""
cleanup() {
    if [[ -n "$LOAD_PID" ]]; then kill "$LOAD_PID" 2>/dev/null || true; wait "$LOAD_PID" 2>/dev/null || true; fi
    stack down || true
}

say "Reset examples/blue-green/state/, bring the stack up: nginx on 127.0.0.1:$PORT, v1 in the blue slot"
stack down >/dev/null 2>&1 || true
rm -rf "$STATE"
trap cleanup EXIT  # never leave nginx, gunicorn or the schema behind
stack up --port "$PORT" --preview-port "$PREVIEW_PORT" --blue-port "$BLUE_PORT" --green-port "$GREEN_PORT" \
    --release v1 --gunicorn "$REPO/.venv/bin/gunicorn"
VARS=(--var-file "$STATE/vars.json")

load_start() {  # a steady load through nginx until load_stop; $1 names the summary
    rm -f "$STATE/load.stop" "$STATE/load.started"
    "$PY" "$HERE/loadgen.py" "http://127.0.0.1:$PORT/" --connections 4 --rate "$LOAD_RATE" --duration 300 \
        --stop-file "$STATE/load.stop" --started-file "$STATE/load.started" --summary "$STATE/load-$1.json" >/dev/null &
    LOAD_PID=$!
    for _ in $(seq 300); do [[ -e "$STATE/load.started" ]] && return 0; kill -0 "$LOAD_PID" 2>/dev/null || break; sleep 0.1; done
    die "the load generator got no answer from nginx on port $PORT"
}
load_stop() {  # prints the summary's key numbers; $1 names it
    touch "$STATE/load.stop"
    wait "$LOAD_PID" || die "the load generator failed"
    LOAD_PID=""
    "$PY" - "$STATE/load-$1.json" <<'EOF'
import json
import sys

s = json.load(open(sys.argv[1]))
served = ", ".join(f"{release} {n}" for release, n in sorted(s["served"].items()))
print(f"  load generator: {s['total']} requests in {s['duration_s']:.1f}s, FAILED {s['failed']} "
      f"(connection errors {s['errors']}, 5xx {s['server_errors']}); served: {served}; "
      f"stale keep-alive retried {s['retried_stale']}")
for failure in s["first_failures"]:
    print(f"    failed: {failure}")
EOF
}

say "Rehearsal of v2 under load: fail after each phase, roll back; the kill switch mid-cutover. Expected: exit 0"
load_start rehearsal
REPORT="$STATE/rehearsal.out"
rc=0
"$TMINUS" rehearse "$RUNBOOK" -e local --yes "${VARS[@]}" \
    --var release=v2 --var previous=v1 --var color=green --var live=blue 2>&1 | tee "$REPORT" || rc=${PIPESTATUS[0]}
load_stop rehearsal
[[ $rc -eq 0 ]] || die "the rehearsal exited $rc; expected 0 (every cycle rolled back, the kill switch within target)"
grep -q '^Verdict: PASSED' "$REPORT" || die "the rehearsal's report does not say PASSED"
stack status

say "Run 1: v2 into the green slot under load. Expected: COMPLETED, exit 0, no failed request"
load_start v2
rc=0
"$TMINUS" run "$RUNBOOK" -e local --yes "${VARS[@]}" \
    --var release=v2 --var previous=v1 --var color=green --var live=blue || rc=$?
load_stop v2
[[ $rc -eq 0 ]] || die "run 1 exited $rc; expected 0 (completed)"
stack status

say "Run 2: the broken v3 into the blue slot under load. Expected: fails at preview, ROLLED BACK, exit 11"
load_start v3
rc=0
"$TMINUS" run "$RUNBOOK" -e local --yes "${VARS[@]}" \
    --var release=v3 --var previous=v2 --var color=blue --var live=green || rc=$?
load_stop v3
[[ $rc -eq 11 ]] || die "run 2 exited $rc; expected 11 (rolled back)"
stack status

say "Kill switch: v1 back in the blue slot, all traffic to it, against its 30 s target"
load_start kill-switch
rc=0
"$TMINUS" kill-switch "$RUNBOOK" -e local "${VARS[@]}" --reason "demo: back to v1" \
    --var release=v2 --var previous=v1 --var color=green --var live=blue || rc=$?
load_stop kill-switch
[[ $rc -eq 0 ]] || die "the kill switch exited $rc; expected 0 (done within its target)"
stack status

say "The release ledger"
"$TMINUS" releases "$RUNBOOK" -e local

say "Failed requests seen by the load generator (connection errors and 5xx)"
"$PY" - "$STATE" <<'EOF'
import json
import sys
from pathlib import Path

for name, what in (("rehearsal", "the rehearsal of v2"), ("v2", "v2 goes live"), ("v3", "v3 stopped at preview"),
                   ("kill-switch", "kill switch to v1")):
    s = json.loads((Path(sys.argv[1]) / f"load-{name}.json").read_text())
    print(f"  {what:22} failed {s['failed']} of {s['total']}")
EOF

say "Done. Stopping nginx and both slots, dropping the schema. The runs: tminus history --runbook blue-green"
