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
