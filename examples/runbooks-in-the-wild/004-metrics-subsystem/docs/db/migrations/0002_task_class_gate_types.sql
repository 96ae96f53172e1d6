ALTER TABLE tasks ADD COLUMN task_class text NOT NULL DEFAULT 'standard';
