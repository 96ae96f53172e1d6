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
