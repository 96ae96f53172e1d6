// mes-dashboard 2.0.0 bundle (built from src/frontend)
// Shared field contracts: the columns of each export, used by the tables and the CSV download.
// The backend's export headers must match these exactly (gate "CSV header contracts").
export const EXPORT_FIELDS = {
  "resource-history": "resource_id,line,day,planned_min,run_min,ideal_cycle_s,output_units,good_units",
  "job-query": "job_id,resource_id,started_at,finished_at,status,operator",
};
// Shared-core KPI compute, moved from the backend to the frontend in 2.0.0.
// Per-resource factors weighted by planned time, full precision, rounded once at the end;
// the legacy backend rounded each factor to 3 places, so the two agree within 0.001.
const round = (x, places) => Math.round(x * 10 ** places) / 10 ** places;
const sum = (rows, f) => rows.reduce((acc, r) => acc + f(r), 0);

export function kpis(rows) {
  const planned = sum(rows, (r) => r.planned_min);
  const run = sum(rows, (r) => r.run_min);
  const output = sum(rows, (r) => r.output_units);
  const a = sum(rows, (r) => (r.run_min / r.planned_min) * r.planned_min) / planned;
  const p = sum(rows, (r) => ((r.ideal_cycle_s * r.output_units) / 60 / r.run_min) * r.run_min) / run;
  const q = sum(rows, (r) => (r.good_units / r.output_units) * r.output_units) / output;
  return { availability: round(a, 4), performance: round(p, 4), quality: round(q, 4), oee: round(a * p * q, 4) };
}
// The API client of the SPA shell. On 503 DB_POOL_EXHAUSTED or CIRCUIT_BREAKER_OPEN it waits
// for Retry-After and tries once more at most: a degraded pool must not see a retry storm.
export const retryPolicy = { respectRetryAfter: true, maxRetries: 1 };

export async function getJSON(path, attempt = 0) {
  const resp = await fetch(path, { headers: attempt ? { "X-Retry-Attempt": String(attempt) } : {} });
  if (resp.status === 503 && attempt < retryPolicy.maxRetries) {
    const wait = Number(resp.headers.get("Retry-After") || "5") * 1000;
    await new Promise((resolve) => setTimeout(resolve, wait));
    return getJSON(path, attempt + 1);
  }
  if (!resp.ok) throw new Error(`${path}: ${resp.status}`);
  return resp.json();
}
// The SPA shell: one origin, one port; modules are routes, not iframes.

export async function showResourceHistory(el) {
  const { rows } = await getJSON("/api/resource-history");
  const k = kpis(rows);
  el.textContent = `OEE ${(k.oee * 100).toFixed(1)}%`;
}
