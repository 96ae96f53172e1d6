-- alembic/versions/20251020_mge_v2_schema.py of 002, as SQL: the seven MGE V2 tables.
CREATE TABLE atomic_units (
    atom_id bigserial PRIMARY KEY,
    task_id bigint NOT NULL REFERENCES masterplan_tasks (task_id),
    name text NOT NULL,
    estimated_loc integer NOT NULL,
    complexity real NOT NULL,
    context_json jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX atomic_units_task_id_idx ON atomic_units (task_id);
CREATE TABLE atom_dependencies (
    atom_id bigint NOT NULL REFERENCES atomic_units (atom_id),
    depends_on bigint NOT NULL REFERENCES atomic_units (atom_id),
    PRIMARY KEY (atom_id, depends_on)
);
CREATE TABLE dependency_graphs (graph_id bigserial PRIMARY KEY, masterplan_id bigint NOT NULL, waves integer NOT NULL);
CREATE TABLE validation_results (result_id bigserial PRIMARY KEY, atom_id bigint NOT NULL, passed boolean NOT NULL);
CREATE TABLE execution_waves (wave_id bigserial PRIMARY KEY, masterplan_id bigint NOT NULL, wave integer NOT NULL);
CREATE INDEX execution_waves_masterplan_idx ON execution_waves (masterplan_id);
CREATE TABLE atom_retry_history (retry_id bigserial PRIMARY KEY, atom_id bigint NOT NULL, attempt integer NOT NULL);
CREATE TABLE human_review_queue (review_id bigserial PRIMARY KEY, atom_id bigint NOT NULL, reason text NOT NULL);
