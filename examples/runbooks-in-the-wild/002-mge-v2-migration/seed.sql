-- The MVP database the migration starts from (what production holds on the day).
CREATE TABLE IF NOT EXISTS masterplans (masterplan_id bigserial PRIMARY KEY, user_request text NOT NULL, user_id text NOT NULL);
CREATE TABLE IF NOT EXISTS masterplan_tasks (
    task_id bigserial PRIMARY KEY,
    masterplan_id bigint NOT NULL REFERENCES masterplans (masterplan_id),
    description text NOT NULL DEFAULT ''
);
INSERT INTO masterplans (user_request, user_id) VALUES ('Inventory service', 'u1'), ('Billing export', 'u2');
INSERT INTO masterplan_tasks (masterplan_id, description)
SELECT 1 + g % 2, 'task ' || g FROM generate_series(1, 25) g;
