DROP TABLE human_review_queue;
DROP TABLE atom_retry_history;
DROP TABLE execution_waves;
DROP TABLE validation_results;
DROP TABLE dependency_graphs;
DROP TABLE atom_dependencies;
DROP TABLE atomic_units;
