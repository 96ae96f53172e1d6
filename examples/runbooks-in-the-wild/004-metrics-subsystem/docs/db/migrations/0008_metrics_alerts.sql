CREATE TABLE metrics_alert (id bigserial PRIMARY KEY, project_id text NOT NULL, message text NOT NULL);
