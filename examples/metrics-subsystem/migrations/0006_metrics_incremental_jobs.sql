-- P5.M3: incremental metrics jobs: where each job stopped in the event log, counters, run history.
CREATE TABLE metrics_job_checkpoint (
    job_name        text PRIMARY KEY,
    last_event_id   bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE metrics_state_transition_counter (
    project_id  text NOT NULL REFERENCES project (id),
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    count       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, from_state, to_state)
);

CREATE TABLE metrics_job_run (
    id          bigserial PRIMARY KEY,
    job_name    text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status      text NOT NULL DEFAULT 'running',
    events_read integer NOT NULL DEFAULT 0
);

INSERT INTO metrics_job_checkpoint (job_name) VALUES ('summary'), ('trends'), ('transitions');
