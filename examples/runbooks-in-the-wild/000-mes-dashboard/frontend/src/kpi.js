// Shared-core KPI compute, moved from the backend: rounded once, at the end.
export function oee(rows) {
  const sum = (f) => rows.reduce((s, r) => s + f(r), 0);
  const a = sum((r) => r.run_min) / sum((r) => r.planned_min);
  const p = sum((r) => (r.ideal_cycle_s * r.output_units) / 60) / sum((r) => r.run_min);
  const q = sum((r) => r.good_units) / sum((r) => r.output_units);
  return { availability: a, performance: p, quality: q, oee: a * p * q };
}
