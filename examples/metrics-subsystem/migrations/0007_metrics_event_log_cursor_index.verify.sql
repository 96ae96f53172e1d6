SELECT to_regclass('public.ix_event_log_project_cursor') IS NOT NULL;
