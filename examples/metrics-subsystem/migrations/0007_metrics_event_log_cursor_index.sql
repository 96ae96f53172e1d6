-- tminus: no-transaction
-- P5.M3: the jobs read the event log by (project_id, id) from their checkpoint. event_log is
-- written constantly, so the index builds CONCURRENTLY (no write lock), outside a transaction:
-- tminus runs each statement on its own and resumes at the next one after an interruption.
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_event_log_project_cursor ON event_log (project_id, id);
