#!/bin/sh
# Start or stop the dashboard from the repository root (000 gate 2: root execution only).
cd "$(dirname "$0")/.." || exit 1
exec python3 app.py "${1:-start}"
