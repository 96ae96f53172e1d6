ALTER TABLE tasks ADD COLUMN short_id text;
