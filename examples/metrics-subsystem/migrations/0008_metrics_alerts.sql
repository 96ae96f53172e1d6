-- P5.M3: alerts raised by the metrics jobs; /v1/metrics/alerts and /v1/metrics/actions read them.
CREATE TABLE metrics_alert (
    id          bigserial PRIMARY KEY,
    project_id  text NOT NULL REFERENCES project (id),
    metric      text NOT NULL,
    severity    text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message     text NOT NULL,
    action      text,
    raised_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
