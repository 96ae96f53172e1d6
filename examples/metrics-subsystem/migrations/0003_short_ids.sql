-- Short ids (e.g. DEMO-12) for tasks; unique per project once backfilled.
-- 004 section 3 also applies these files with psql, which sets no lock_timeout of its own.
SET LOCAL lock_timeout = '5s';
ALTER TABLE task ADD COLUMN short_id text;
UPDATE task SET short_id = upper(project_id) || '-' || id WHERE short_id IS NULL;
