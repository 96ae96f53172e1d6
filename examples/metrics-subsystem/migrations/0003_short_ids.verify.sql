SELECT count(*) = 1 FROM information_schema.columns
 WHERE table_schema = 'public' AND table_name = 'task' AND column_name = 'short_id';
