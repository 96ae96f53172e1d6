#!/usr/bin/env bash
# The rollback rehearsal of runbook 000 (and 001's kill switch), timed from the ledger: roll a
# completed cutover back with `tminus rollback`, check the old frontend serves and the pages and
# exports work, and compare the recovery time with the rollback target.
#
#   bash examples/dashboard-gates/rehearse.sh RUN_ID
#
# RUN_ID: a completed run of the runbook (demo.sh passes its cutover). Reads what the runbook
# reads, DASHBOARD_PORT (8790) and DASHBOARD_STATE, and TMINUS_LEDGER; ROLLBACK_TARGET is the
# recovery target in seconds (60). Runs tminus from the current directory, so the ledger is
# ./.tminus/ledger.db unless TMINUS_LEDGER says otherwise. Exit 0 when every check holds.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TMINUS="${TMINUS:-$REPO/.venv/bin/tminus}"
PY="${PY:-$REPO/.venv/bin/python}"
PORT="${DASHBOARD_PORT:-8790}"
TARGET="${ROLLBACK_TARGET:-60}"

if [[ -t 1 ]]; then BOLD=$'\033[1m' RED=$'\033[31m' OFF=$'\033[0m'; else BOLD="" RED="" OFF=""; fi
say() { printf '\n%s--> %s%s\n' "$BOLD" "$*" "$OFF"; }
die() { printf '\n%srehearsal failed: %s%s\n' "$RED" "$*" "$OFF" >&2; exit 1; }
smoke() {  # the page, the KPIs and both exports of the frontend release $1
    "$PY" - "$PORT" "$1" <<'EOF'
import json
import sys
import urllib.request

base, release = f"http://127.0.0.1:{sys.argv[1]}", sys.argv[2]


def get(path: str) -> tuple[int, str]:
    with urllib.request.urlopen(base + path, timeout=5) as resp:
        return resp.status, resp.read().decode()


health = json.loads(get("/health")[1])
page = get("/")[1]
checks = {
    f"/health ok, frontend {release}, no maintenance": (health["status"], health["version"], health["maintenance"])
    == ("ok", release, False),
    f"/ renders release {release}": f'data-release="{release}"' in page,
    "/api/kpis answers": "oee" in json.loads(get("/api/kpis")[1]),
    "resource-history CSV header": get("/export/resource-history.csv")[1].startswith("resource_id,line,day,"),
    "job-query CSV header": get("/export/job-query.csv")[1].startswith("job_id,resource_id,"),
}
for name, ok in checks.items():
    print(f"  {'ok  ' if ok else 'FAIL'} {name}")
sys.exit(0 if all(checks.values()) else 1)
EOF
}

[[ $# -eq 1 ]] || die "usage: $0 RUN_ID (a completed run: tminus history)"
RUN_ID="$1"
# What the run replaced and what it shipped, from its own ledger entries.
read -r PREVIOUS SHIPPED < <("$TMINUS" show "$RUN_ID" --json | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
assert d["run"]["status"] == "completed", "run " + d["run"]["id"] + " is " + d["run"]["status"] + ", not completed"
out = {e["data"]["name"]: e["data"].get("outputs", {}) for e in d["events"] if e["type"] == "step.finished"}
print(out["Record the release being replaced"]["stdout"], out["Controlled worker reload (same port, no downtime)"]["json"]["version"])
') || die "cannot rehearse on run $RUN_ID"

say "1. Run $RUN_ID replaced $PREVIOUS with $SHIPPED; smoke checks on $SHIPPED"
smoke "$SHIPPED" || die "the cutover is not serving $SHIPPED; nothing to roll back from"

say "2. Kill switch: tminus rollback $RUN_ID --reason 'rollback rehearsal'"
rc=0; "$TMINUS" rollback "$RUN_ID" --reason "rollback rehearsal" || rc=$?
[[ $rc -eq 11 ]] || die "the rollback exited $rc, expected 11 (rolled back)"

say "3. Smoke checks on $PREVIOUS, the release it replaced"
smoke "$PREVIOUS" || die "the old frontend does not serve correctly after the rollback"

say "4. Timings (from the ledger: tminus show $RUN_ID --json), target ${TARGET}s"
# The run's events come in as a file (its monitor samples are too big for an environment variable).
"$PY" - "$TARGET" <("$TMINUS" show "$RUN_ID" --json) <<'EOF' || die "the rollback missed its target or did not finish cleanly"
import json
import sys
from datetime import datetime

with open(sys.argv[2]) as shown:
    events = json.load(shown)["events"]


def at(event: dict) -> datetime:
    return datetime.fromisoformat(event["at"])


started = [e for e in events if e["type"] == "rollback.started"][-1]
finished = [e for e in events if e["type"] == "rollback.finished"][-1]
took = (at(finished) - at(started)).total_seconds()
print(f"  rollback started   {started['at']}")
print(f"  rollback finished  {finished['at']}  ok={finished['data']['ok']}")
for e in events:
    if e["type"] == "step.finished" and at(e) >= at(started):
        print(f"    {e['data']['duration_ms']:7.0f} ms  {e['data']['name']}")
print(f"  recovery time      {took:.2f} s (target {float(sys.argv[1]):g} s); manual interventions: none")
sys.exit(0 if finished["data"]["ok"] and took <= float(sys.argv[1]) else 1)
EOF

printf '\n%sRehearsal passed.%s %s rolled back to %s and checked; tminus why %s tells the story.\n' \
    "$BOLD" "$OFF" "$RUN_ID" "$PREVIOUS" "$RUN_ID"
