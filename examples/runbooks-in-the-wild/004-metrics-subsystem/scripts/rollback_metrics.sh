#!/usr/bin/env bash
# Revert the metrics subsystem (004 section 8): drop the 8 metrics tables, remove the 0005-0008
# rows from schema_migrations, verify no metrics table remains. --dry-run shows, --confirm skips the prompt.
set -euo pipefail
: "${TASCADE_DATABASE_URL:?TASCADE_DATABASE_URL is not set}"
CONNINFO="${TASCADE_DATABASE_URL/postgresql+psycopg:/postgresql:}"
mode=interactive
case "${1:-}" in --dry-run) mode=dry ;; --confirm) mode=confirm ;; "") ;; *) echo "usage: $0 [--dry-run|--confirm]" >&2; exit 2 ;; esac
SQL="DROP TABLE IF EXISTS metrics_alert CASCADE;
DROP TABLE IF EXISTS metrics_job_run CASCADE;
DROP TABLE IF EXISTS metrics_state_transition_counter CASCADE;
DROP TABLE IF EXISTS metrics_job_checkpoint CASCADE;
DROP TABLE IF EXISTS metrics_drilldown CASCADE;
DROP TABLE IF EXISTS metrics_breakdown_point CASCADE;
DROP TABLE IF EXISTS metrics_trend_point CASCADE;
DROP TABLE IF EXISTS metrics_summary CASCADE;
DELETE FROM schema_migrations WHERE version IN ('0005_metrics_read_model.sql', '0006_metrics_incremental_jobs.sql',
  '0007_metrics_event_log_cursor_index.sql', '0008_metrics_alerts.sql');"
if [ "$mode" = dry ]; then echo "[dry-run] would run:"; echo "$SQL"; exit 0; fi
if [ "$mode" = interactive ]; then read -r -p "Drop all metrics tables? [y/N] " answer; [ "$answer" = y ] || exit 1; fi
psql "$CONNINFO" -v ON_ERROR_STOP=1 -q -1 -c "$SQL"
left=$(psql "$CONNINFO" -qAt -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'metrics\_%'")
[ "$left" = 0 ] || { echo "rollback incomplete: $left metrics tables remain" >&2; exit 1; }
echo "rollback complete: metrics tables removed"
