// API client: on 503 DB_POOL_EXHAUSTED / CIRCUIT_BREAKER_OPEN honour Retry-After, retry once at most.
export const retryPolicy = { respectRetryAfter: true, maxRetries: 1 };
