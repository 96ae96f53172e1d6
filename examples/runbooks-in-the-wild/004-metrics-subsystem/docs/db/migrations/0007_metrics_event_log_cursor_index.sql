CREATE INDEX metrics_job_run_job_idx ON metrics_job_run (job, id);
