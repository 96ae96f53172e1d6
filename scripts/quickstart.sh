#!/usr/bin/env bash
# The README's first command: set up .venv and run the quickstart cutover (v2 completes, v3 rolls back).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
exec bash "$root/examples/quickstart/demo.sh" "$@"
