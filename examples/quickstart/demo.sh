#!/usr/bin/env bash
# The tminus quickstart: a rehearsal of the rollback (v1 to v2, failed on purpose after each phase
# and rolled back, the database fingerprinted before and after), a real cutover of a small notes
# service to v2, then a cutover to a broken v3 that tminus rolls back by itself, leaving v2 serving
# with its data intact.
#
#   bash examples/quickstart/demo.sh        (from anywhere; after scripts/quickstart.sh)
#
# QUICKSTART_PORT picks another port than 8765. The service runs from examples/quickstart/state/
# and is stopped at the end; the ledger is .tminus/ledger.db at the repository root.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TMINUS="$REPO/.venv/bin/tminus"
PY="$REPO/.venv/bin/python"
RUNBOOK="examples/quickstart/runbook.yaml"
PORT="${QUICKSTART_PORT:-8765}"
# svc.py reads these; the runbook's own `state` var (state/, next to it) is the same directory.
export QUICKSTART_STATE="$HERE/state" QUICKSTART_PORT="$PORT"

if [[ -t 1 ]]; then BOLD=$'\033[1m' RED=$'\033[31m' OFF=$'\033[0m'; else BOLD="" RED="" OFF=""; fi
say() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$OFF"; }
die() { printf '\n%sdemo failed: %s%s\n' "$RED" "$*" "$OFF" >&2; exit 1; }
svc() { "$PY" "$HERE/service/svc.py" "$@"; }

[[ -x "$TMINUS" ]] || die "$TMINUS not found: run 'bash scripts/quickstart.sh' first"
cd "$REPO"  # the ledger goes to ./.tminus/ledger.db: the repository root, wherever we started

say "Reset the sample service (examples/quickstart/state/) and start release v1 on port $PORT"
svc stop >/dev/null 2>&1 || true
rm -rf "$QUICKSTART_STATE"
svc init
trap 'svc stop >/dev/null 2>&1 || true' EXIT  # never leave the service behind on failure
svc start || die "the service did not start; another port: QUICKSTART_PORT=8799 bash $0"

VARS=(--var "python=$PY" --var "port=$PORT")

say "Rehearsal: fail after each phase on purpose, roll back, compare the database. Expected: exit 0, v1 serves"
REPORT="$(mktemp)"
rc=0
"$TMINUS" rehearse "$RUNBOOK" -e local --yes "${VARS[@]}" 2>&1 | tee "$REPORT" || rc=${PIPESTATUS[0]}
[[ $rc -eq 0 ]] || die "the rehearsal exited $rc; expected 0 (every cycle rolled back, the database as before)"
grep -q '^Verdict: PASSED' "$REPORT" || die "the rehearsal's report does not say PASSED"
rm -f "$REPORT"

say "Run 1: cut over to v2 (backup, migrate, deploy, wait, verify). Expected: COMPLETED, exit 0"
rc=0
"$TMINUS" run "$RUNBOOK" -e local --yes "${VARS[@]}" || rc=$?
[[ $rc -eq 0 ]] || die "run 1 exited $rc; expected 0 (completed)"

say "Run 2: cut over to v3, which is broken. Expected: verify fails, automatic rollback, exit 11"
rc=0
"$TMINUS" run "$RUNBOOK" -e local --yes "${VARS[@]}" --var release=v3 || rc=$?
[[ $rc -eq 11 ]] || die "run 2 exited $rc; expected 11 (rolled back)"

say "After the rollback: v2 serves again, every note is there"
"$PY" - "$PORT" <<'EOF'
import json
import sys
import urllib.request

base = f"http://127.0.0.1:{sys.argv[1]}"


def get(path: str) -> dict:
    with urllib.request.urlopen(base + path, timeout=5) as resp:
        return json.load(resp)


version, health, notes = get("/version")["version"], get("/health")["status"], get("/api/notes")
print(f"  /version   {version}\n  /health    {health}\n  /api/notes {notes['count']} notes")
for note in notes["notes"]:
    print(f"    #{note['id']} {note['body']!r} by {note['author']}")
if (version, health, notes["count"]) != ("v2", "ok", 3):
    sys.exit("the service is not back on v2 with its 3 notes")
EOF

say "The ledger: every step, its evidence and the decisions, hash-chained"
"$TMINUS" history -n 5
# the ids of the two runs above, oldest first (no mapfile: macOS still ships bash 3.2)
RUNS=($("$TMINUS" history --json -n 2 | "$PY" -c \
    'import json, sys; print(" ".join(r["id"] for r in reversed(json.load(sys.stdin))))'))

say "Stop the sample service"
svc stop
trap - EXIT

cat <<EOF

${BOLD}Done.${OFF} The ledger is $REPO/.tminus/ledger.db
From $REPO:
  .venv/bin/tminus show ${RUNS[0]:-RUN_ID}        # the v2 cutover, step by step
  .venv/bin/tminus show ${RUNS[1]:-RUN_ID}        # the v3 attempt: why verify failed, what was undone
  .venv/bin/tminus ledger verify          # recompute the hash chains
  .venv/bin/tminus plan $RUNBOOK -e local --var release=v3   # the T+ timeline, runs nothing
The runbook: $HERE/runbook.yaml
EOF
