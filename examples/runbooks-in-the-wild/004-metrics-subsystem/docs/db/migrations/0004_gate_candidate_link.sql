CREATE TABLE gate_candidate_link (gate_id bigint NOT NULL, task_id bigint NOT NULL REFERENCES tasks (id));
