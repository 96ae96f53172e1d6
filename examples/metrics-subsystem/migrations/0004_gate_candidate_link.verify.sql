SELECT to_regclass('public.gate_candidate_link') IS NOT NULL;
