SELECT count(*) = 2 FROM information_schema.columns
 WHERE table_schema = 'public'
   AND ((table_name = 'task' AND column_name = 'task_class') OR (table_name = 'gate' AND column_name = 'gate_type'));
