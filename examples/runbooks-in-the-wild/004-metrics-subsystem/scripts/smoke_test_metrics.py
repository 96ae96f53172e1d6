#!/usr/bin/env python3
"""Smoke test of the seven metrics endpoints (004 section 5): 200, X-API-Version: 1.0, body shape.
python scripts/smoke_test_metrics.py --base-url URL --project-id ID   (Bearer $TASCADE_API_KEY). Exit 0 = all PASS."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

ENDPOINTS = ("summary", "trends", "breakdown", "drilldown", "jobs", "alerts", "actions")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--project-id", required=True)
    args = parser.parse_args()
    failed = 0
    for name in ENDPOINTS:
        request = urllib.request.Request(f"{args.base_url}/v1/metrics/{name}?project_id={args.project_id}",
                                         headers={"Authorization": f"Bearer {os.environ.get('TASCADE_API_KEY', '')}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                body = json.load(resp)
                ok = resp.headers.get("X-API-Version") == "1.0" and body.get("project_id") == args.project_id
                status = resp.status
        except urllib.error.HTTPError as exc:
            ok, status = False, exc.code
        print(f"{'PASS' if ok else 'FAIL'} {name} ({status})")
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
