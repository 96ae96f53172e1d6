CREATE TABLE metrics_summary (project_id text PRIMARY KEY, tasks_total integer NOT NULL, tasks_done integer NOT NULL);
CREATE TABLE metrics_trend_point (project_id text NOT NULL, metric text NOT NULL, day date NOT NULL, value real NOT NULL);
CREATE TABLE metrics_breakdown_point (project_id text NOT NULL, dimension text NOT NULL, value real NOT NULL);
CREATE TABLE metrics_drilldown (project_id text NOT NULL, task_id bigint NOT NULL);
INSERT INTO metrics_summary SELECT project_id, count(*), count(*) FILTER (WHERE state = 'done') FROM tasks GROUP BY project_id;
