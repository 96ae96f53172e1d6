ALTER TABLE gate DROP COLUMN gate_type;
ALTER TABLE task DROP COLUMN task_class;
