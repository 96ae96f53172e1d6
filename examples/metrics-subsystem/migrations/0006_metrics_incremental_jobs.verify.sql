SELECT to_regclass('public.metrics_job_checkpoint') IS NOT NULL
   AND to_regclass('public.metrics_state_transition_counter') IS NOT NULL
   AND to_regclass('public.metrics_job_run') IS NOT NULL;
