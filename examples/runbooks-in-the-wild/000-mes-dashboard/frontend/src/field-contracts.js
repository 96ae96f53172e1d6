// Shared field contracts: the CSV export headers the backend must keep (000 gate 3).
export const exportHeaders = {
  "resource-history": "resource_id,planned_min,run_min,ideal_cycle_s,output_units,good_units",
  "job-query": "job_id,resource_id,started_at,finished_at,status,operator",
};
