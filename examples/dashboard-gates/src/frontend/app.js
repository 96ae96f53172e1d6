// The SPA shell: one origin, one port; modules are routes, not iframes.
import { getJSON } from "./api.js";
import { kpis } from "./kpi.js";

export async function showResourceHistory(el) {
  const { rows } = await getJSON("/api/resource-history");
  const k = kpis(rows);
  el.textContent = `OEE ${(k.oee * 100).toFixed(1)}%`;
}
