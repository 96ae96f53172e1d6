#!/usr/bin/env python3
"""Smoke-test the metrics endpoints from outside tminus (004's scripts/smoke_test_metrics.py).

    smoke.py                      all seven endpoints: 200 and X-API-Version 1.0; exit 1 otherwise
    smoke.py --rolled-back        after a rollback: /health ok, the metrics endpoints 503, and no
                                  metrics_% table left in $TASCADE_DATABASE_URL

--base-url defaults to http://127.0.0.1:$TASCADE_PORT (8780); the Bearer token is $TASCADE_API_KEY.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

ENDPOINTS = ("summary", "trends", "breakdown", "drilldown", "jobs", "alerts", "actions")


def get(url: str, token: str | None) -> tuple[int, dict[str, str], dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, dict(resp.headers), json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"{}")


def metrics_tables(database_url: str) -> list[str]:
    import psycopg

    scheme, _, rest = database_url.partition("://")
    with psycopg.connect(f"{scheme.split('+', 1)[0]}://{rest}", connect_timeout=3) as conn:
        rows = conn.execute(r"SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                            r" AND tablename LIKE 'metrics\_%' ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", default=f"http://127.0.0.1:{os.environ.get('TASCADE_PORT', '8780')}")
    p.add_argument("--project-id", default="demo")
    p.add_argument("--rolled-back", action="store_true", help="expect the state after a rollback")
    args = p.parse_args()
    token = os.environ.get("TASCADE_API_KEY")
    failed = 0

    def report(ok: bool, what: str) -> None:
        nonlocal failed
        failed += not ok
        print(f"  {'PASS' if ok else 'FAIL'}  {what}")

    status, _, body = get(f"{args.base_url}/health", None)
    report(status == 200 and body.get("status") == "ok", f"/health -> {status} {json.dumps(body)}")
    want = 503 if args.rolled_back else 200
    for name in ENDPOINTS:
        status, headers, body = get(f"{args.base_url}/v1/metrics/{name}?project_id={args.project_id}", token)
        version = headers.get("X-API-Version")
        report(status == want and version == "1.0",
               f"/v1/metrics/{name:<9} -> {status}, X-API-Version: {version}"
               + (f" ({body.get('error')})" if "error" in body else ""))
    if args.rolled_back:
        left = metrics_tables(os.environ["TASCADE_DATABASE_URL"])
        report(not left, f"metrics_% tables left: {', '.join(left) or 'none'}")
    print(f"  {'all passed' if not failed else f'{failed} failed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
