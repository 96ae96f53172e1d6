SELECT count(*) = 7 FROM pg_tables WHERE schemaname = 'public' AND tablename IN (
    'atomic_units', 'atom_dependencies', 'dependency_graphs', 'validation_results',
    'execution_waves', 'atom_retry_history', 'human_review_queue');
