CREATE TABLE metrics_job_checkpoint (job text PRIMARY KEY, cursor bigint NOT NULL);
CREATE TABLE metrics_state_transition_counter (project_id text NOT NULL, transition text NOT NULL, n integer NOT NULL);
CREATE TABLE metrics_job_run (id bigserial PRIMARY KEY, job text NOT NULL, finished_at timestamptz);
