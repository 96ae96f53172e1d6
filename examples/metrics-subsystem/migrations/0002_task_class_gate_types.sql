-- Task classes and gate types: nullable columns with defaults, no table rewrite.
-- 004 section 3 also applies these files with psql, which sets no lock_timeout of its own.
SET LOCAL lock_timeout = '5s';
ALTER TABLE task ADD COLUMN task_class text DEFAULT 'standard';
ALTER TABLE gate ADD COLUMN gate_type text DEFAULT 'review';
