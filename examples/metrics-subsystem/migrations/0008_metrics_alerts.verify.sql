SELECT to_regclass('public.metrics_alert') IS NOT NULL;
