#!/usr/bin/env bash
# Start the dashboard from the repository root: no path into any other subtree is needed.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python3 service.py --port "${DASHBOARD_PORT:-8790}"
