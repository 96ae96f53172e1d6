// Shared field contracts: the columns of each export, used by the tables and the CSV download.
// The backend's export headers must match these exactly (gate "CSV header contracts").
export const EXPORT_FIELDS = {
  "resource-history": "resource_id,line,day,planned_min,run_min,ideal_cycle_s,output_units,good_units",
  "job-query": "job_id,resource_id,started_at,finished_at,status,operator",
};
