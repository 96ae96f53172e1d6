SELECT to_regclass('public.metrics_summary') IS NOT NULL
   AND to_regclass('public.metrics_trend_point') IS NOT NULL
   AND to_regclass('public.metrics_breakdown_point') IS NOT NULL
   AND to_regclass('public.metrics_drilldown') IS NOT NULL;
