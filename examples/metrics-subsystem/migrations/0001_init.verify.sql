SELECT to_regclass('public.project') IS NOT NULL AND to_regclass('public.task') IS NOT NULL
   AND to_regclass('public.gate') IS NOT NULL AND to_regclass('public.event_log') IS NOT NULL;
