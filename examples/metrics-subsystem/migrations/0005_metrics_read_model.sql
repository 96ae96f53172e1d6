-- P5.M3: the metrics read model behind /v1/metrics/{summary,trends,breakdown,drilldown}.
CREATE TABLE metrics_summary (
    project_id      text PRIMARY KEY REFERENCES project (id),
    tasks_total     integer NOT NULL DEFAULT 0,
    tasks_done      integer NOT NULL DEFAULT 0,
    cycle_time_p50  interval,
    computed_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE metrics_trend_point (
    project_id  text NOT NULL REFERENCES project (id),
    metric      text NOT NULL,
    bucket      date NOT NULL,
    value       double precision NOT NULL,
    PRIMARY KEY (project_id, metric, bucket)
);

CREATE TABLE metrics_breakdown_point (
    project_id  text NOT NULL REFERENCES project (id),
    dimension   text NOT NULL,
    key         text NOT NULL,
    value       double precision NOT NULL,
    PRIMARY KEY (project_id, dimension, key)
);

CREATE TABLE metrics_drilldown (
    project_id  text NOT NULL REFERENCES project (id),
    metric      text NOT NULL,
    task_id     bigint NOT NULL,
    value       double precision NOT NULL,
    PRIMARY KEY (project_id, metric, task_id)
);

-- A first snapshot for every project, so the read model is never empty after the deploy.
INSERT INTO metrics_summary (project_id, tasks_total, tasks_done)
SELECT p.id, count(t.id), count(t.id) FILTER (WHERE t.state = 'done')
  FROM project p LEFT JOIN task t ON t.project_id = p.id
 GROUP BY p.id;
