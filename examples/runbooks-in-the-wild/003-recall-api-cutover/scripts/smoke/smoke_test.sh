#!/bin/sh
# The team's smoke test (003 section 5): ./scripts/smoke/smoke_test.sh BASE_URL [--expect-version TAG]
set -u
base=$1; expect=""
[ "${2:-}" = "--expect-version" ] && expect=$3
log() { echo "[$(date -u +%Y-%m-%dT%H:%M:%SZ)] $*"; }
log "=== Smoke test: $base ==="
curl -fsS "$base/readyz" | grep -q '"ready": true' || { log "Ready endpoint failed"; exit 1; }
log "Ready endpoint returned success"
log "Checking $base/healthz"
curl -fsS -o /dev/null "$base/healthz" || { log "healthz failed"; exit 1; }
log "Checking $base/version"
version=$(curl -fsS "$base/version") || { log "version failed"; exit 1; }
if [ -n "$expect" ]; then
  echo "$version" | grep -q "\"version\": \"$expect\"" || { log "expected version $expect, got $version"; exit 1; }
fi
log "Smoke test completed successfully"
