-- tminus: no-transaction
DROP INDEX CONCURRENTLY IF EXISTS ix_event_log_project_cursor;
