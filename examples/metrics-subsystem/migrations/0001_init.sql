-- Base schema of the Tascade stand-in: projects, tasks, gates and the event log the metrics jobs read.
CREATE TABLE project (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE task (
    id          bigserial PRIMARY KEY,
    project_id  text NOT NULL REFERENCES project (id),
    title       text NOT NULL,
    state       text NOT NULL DEFAULT 'ready',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gate (
    id          bigserial PRIMARY KEY,
    project_id  text NOT NULL REFERENCES project (id),
    name        text NOT NULL
);

CREATE TABLE event_log (
    id          bigserial PRIMARY KEY,
    project_id  text NOT NULL REFERENCES project (id),
    entity_type text NOT NULL,
    entity_id   bigint NOT NULL,
    event_type  text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The staging project the smoke checks ask about (004 section 5: --project-id <staging-project-id>).
INSERT INTO project (id, name) VALUES ('demo', 'Demo project');
INSERT INTO task (project_id, title, state) VALUES
    ('demo', 'Write the metrics read model', 'done'),
    ('demo', 'Backfill the job checkpoints', 'in_progress'),
    ('demo', 'Wire the alert thresholds', 'ready');
INSERT INTO event_log (project_id, entity_type, entity_id, event_type) VALUES
    ('demo', 'task', 1, 'state_changed'),
    ('demo', 'task', 2, 'state_changed');
