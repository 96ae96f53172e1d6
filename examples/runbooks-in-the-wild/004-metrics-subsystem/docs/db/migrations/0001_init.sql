CREATE TABLE projects (id text PRIMARY KEY, name text NOT NULL);
CREATE TABLE tasks (id bigserial PRIMARY KEY, project_id text NOT NULL REFERENCES projects (id), state text NOT NULL);
INSERT INTO projects VALUES ('demo', 'Demo project');
INSERT INTO tasks (project_id, state) VALUES ('demo', 'done'), ('demo', 'done'), ('demo', 'in_progress');
