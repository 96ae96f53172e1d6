// api.js
// API client: on 503 DB_POOL_EXHAUSTED / CIRCUIT_BREAKER_OPEN honour Retry-After, retry once at most.
export const retryPolicy = { respectRetryAfter: true, maxRetries: 1 };
// field-contracts.js
// Shared field contracts: the CSV export headers the backend must keep (000 gate 3).
export const exportHeaders = {
  "resource-history": "resource_id,planned_min,run_min,ideal_cycle_s,output_units,good_units",
  "job-query": "job_id,resource_id,started_at,finished_at,status,operator",
};
// kpi.js
// Shared-core KPI compute, moved from the backend: rounded once, at the end.
export function oee(rows) {
  const sum = (f) => rows.reduce((s, r) => s + f(r), 0);
  const a = sum((r) => r.run_min) / sum((r) => r.planned_min);
  const p = sum((r) => (r.ideal_cycle_s * r.output_units) / 60) / sum((r) => r.run_min);
  const q = sum((r) => r.good_units) / sum((r) => r.output_units);
  return { availability: a, performance: p, quality: q, oee: a * p * q };
}
