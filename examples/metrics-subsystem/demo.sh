#!/usr/bin/env bash
# The metrics-subsystem example end to end, against the local PostgreSQL, on two databases that
# hold what Tascade runs today (the base schema, 0001-0004):
#   1. the rollback rehearsal of section 9 in staging (tminus rehearse --roll-forward): a failure
#      injected after each phase, the rollback, the database fingerprinted before and after, timed;
#      then the full deploy rolled back. Every cycle must pass (exit 0)
#   2. cut staging over (backup, 0005-0008, restart, /health, smoke all seven endpoints)
#   3. production with TASCADE_AUTH_DISABLED=1: BLOCKED by the environment manifest (exit 10),
#      nothing touched; then without it: completed
#
#   bash examples/metrics-subsystem/demo.sh        (from anywhere; after scripts/quickstart.sh)
#
# Needs PostgreSQL on 127.0.0.1:5432 that user postgres can reach without a password (PGADMIN_URL
# to change that). Creates the databases tminus_metrics_demo (staging) and tminus_metrics_demo_prod
# (production) and drops both at the end. TASCADE_PORT picks another port than 8780. The ledger
# is .tminus/ledger.db at the repository root.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TMINUS="$REPO/.venv/bin/tminus"
PY="$REPO/.venv/bin/python"
RUNBOOK="examples/metrics-subsystem/runbook.yaml"
PGADMIN_URL="${PGADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
PG_BASE="postgresql+psycopg://${PGADMIN_URL#*://}"
PG_BASE="${PG_BASE%/*}"
STAGING_DB=tminus_metrics_demo
PROD_DB=tminus_metrics_demo_prod

# What the runbook and service read (see runbook.yaml): where the service runs and with what.
export TASCADE_PORT="${TASCADE_PORT:-8780}" TASCADE_STATE="$HERE/state" TASCADE_PYTHON="$PY"
unset TASCADE_AUTH_DISABLED

if [[ -t 1 ]]; then BOLD=$'\033[1m' RED=$'\033[31m' OFF=$'\033[0m'; else BOLD="" RED="" OFF=""; fi
say() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$OFF"; }
die() { printf '\n%sdemo failed: %s%s\n' "$RED" "$*" "$OFF" >&2; exit 1; }
svc() { "$PY" "$HERE/service/svc.py" "$@"; }
admin() {  # run SQL as the PostgreSQL admin, outside a transaction (CREATE/DROP DATABASE)
    "$PY" - "$PGADMIN_URL" "$1" <<'EOF'
import sys

import psycopg

with psycopg.connect(sys.argv[1], autocommit=True, connect_timeout=3) as conn:
    conn.execute(sys.argv[2])
EOF
}
cleanup() {
    svc stop >/dev/null 2>&1 || true
    admin "DROP DATABASE IF EXISTS $STAGING_DB WITH (FORCE)" >/dev/null 2>&1 || true
    admin "DROP DATABASE IF EXISTS $PROD_DB WITH (FORCE)" >/dev/null 2>&1 || true
}
latest_run() { "$TMINUS" history --json -n 1 | "$PY" -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])'; }

[[ -x "$TMINUS" ]] || die "$TMINUS not found: run 'bash scripts/quickstart.sh' first"
cd "$REPO"  # the ledger goes to ./.tminus/ledger.db: the repository root, wherever we started

say "Fresh databases $STAGING_DB and $PROD_DB on ${PGADMIN_URL%/*}; service state in $TASCADE_STATE"
svc stop >/dev/null 2>&1 || true
rm -rf "$TASCADE_STATE"
trap cleanup EXIT  # never leave the service or the databases behind
for db in "$STAGING_DB" "$PROD_DB"; do
    admin "DROP DATABASE IF EXISTS $db WITH (FORCE)" || die "PostgreSQL at $PGADMIN_URL is not reachable"
    admin "CREATE DATABASE $db"
    # Tascade as it runs today: the base schema. The rehearsal proves a rollback brings exactly this back.
    "$TMINUS" db migrate examples/metrics-subsystem/migrations --url "$PG_BASE/$db" --to 0004 >/dev/null 2>&1 \
        || die "could not apply 0001-0004 to $db"
done

# --- staging -----------------------------------------------------------------------------------
export TASCADE_DATABASE_URL="$PG_BASE/$STAGING_DB" TASCADE_API_KEY="sk-tascade-staging-demo"

say "Staging: the rollback rehearsal (section 9): fail after each phase, roll back, compare. Expected: exit 0"
REPORT="$(mktemp)"
rc=0; "$TMINUS" rehearse "$RUNBOOK" -e staging --yes --roll-forward 2>&1 | tee "$REPORT" || rc=${PIPESTATUS[0]}
[[ $rc -eq 0 ]] || die "the rehearsal exited $rc; expected 0 (every cycle rolled back, the database as before)"
grep -q '^Verdict: PASSED' "$REPORT" || die "the rehearsal's report does not say PASSED"
REHEARSAL="$(sed -n 's/^rehearsal \([0-9][0-9a-f-]*\) .*/\1/p' "$REPORT")"
rm -f "$REPORT"
"$PY" "$HERE/smoke.py" --rolled-back || die "after the rehearsal the metrics subsystem should be absent"

say "Staging: the cutover (sections 4, 5 and 7). Expected: COMPLETED, exit 0"
rc=0; "$TMINUS" run "$RUNBOOK" -e staging --yes || rc=$?
[[ $rc -eq 0 ]] || die "the staging cutover exited $rc; expected 0"
CUTOVER_RUN="$(latest_run)"
"$PY" "$HERE/smoke.py" || die "staging smoke tests failed"

# --- production --------------------------------------------------------------------------------
export TASCADE_DATABASE_URL="$PG_BASE/$PROD_DB" TASCADE_API_KEY="sk-tascade-production-demo"

say "Production with TASCADE_AUTH_DISABLED=1 left over from testing. Expected: BLOCKED, exit 10"
rc=0; TASCADE_AUTH_DISABLED=1 "$TMINUS" run "$RUNBOOK" -e production --yes || rc=$?
[[ $rc -eq 10 ]] || die "the production run exited $rc; expected 10 (blocked by a gate)"
BLOCKED_RUN="$(latest_run)"
"$PY" - "$TASCADE_DATABASE_URL" <<'EOF' || die "the blocked run changed the production database"
import sys

import psycopg

scheme, _, rest = sys.argv[1].partition("://")
with psycopg.connect(f"{scheme.split('+', 1)[0]}://{rest}") as conn:
    n = conn.execute(r"SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'metrics\_%'")
    n = n.fetchone()[0]
    top = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
print(f"  production database untouched: at {top}, {n} metrics tables")
sys.exit(n != 0 or top != "0004")
EOF

say "Production, fixed: TASCADE_AUTH_DISABLED unset. Expected: COMPLETED, exit 0"
rc=0; "$TMINUS" run "$RUNBOOK" -e production --yes || rc=$?
[[ $rc -eq 0 ]] || die "the production run exited $rc; expected 0"
PROD_RUN="$(latest_run)"
"$PY" "$HERE/smoke.py" || die "production smoke tests failed"

say "The ledger: every step, its evidence and the decisions, hash-chained"
"$TMINUS" history -n 6
"$TMINUS" ledger verify

say "Stop the service, drop the demo databases"
cleanup
trap - EXIT

cat <<EOF

${BOLD}Done.${OFF} The ledger is $REPO/.tminus/ledger.db
From $REPO:
  .venv/bin/tminus show $REHEARSAL        # the staging rehearsal: each cycle, its RTO and fingerprints
  .venv/bin/tminus show $CUTOVER_RUN        # the staging cutover, step by step
  .venv/bin/tminus show $BLOCKED_RUN        # production blocked: which variable, never its value
  .venv/bin/tminus show $PROD_RUN        # the production cutover
  .venv/bin/tminus plan $RUNBOOK -e production   # the T+ timeline, runs nothing
The runbook: $HERE/runbook.yaml
EOF
