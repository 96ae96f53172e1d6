-- Which tasks are candidates for which gate.
CREATE TABLE gate_candidate_link (
    gate_id     bigint NOT NULL REFERENCES gate (id),
    task_id     bigint NOT NULL REFERENCES task (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gate_id, task_id)
);
