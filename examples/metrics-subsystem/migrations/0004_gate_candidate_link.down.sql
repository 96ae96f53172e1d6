DROP TABLE gate_candidate_link;
