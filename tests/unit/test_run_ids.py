"""Run ids: unique under rapid creation (issue 9, item 8), and still sorted by when the run began."""

from __future__ import annotations

import re
import time

from tminus.engine.session import new_run_id


def test_a_thousand_rapid_ids_never_collide() -> None:
    # 16 random bits per second collided about once in 1,001 rapid runs; repeat to make a weak
    # generator fail reliably (50,000 ids in well under a few seconds)
    ids = [new_run_id() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)


def test_ids_carry_enough_randomness() -> None:
    suffix = new_run_id().rsplit("-", 1)[1]
    assert re.fullmatch(r"[0-9a-f]+", suffix) and len(suffix) * 4 >= 40


def test_ids_sort_by_time() -> None:
    ids = []
    for _ in range(3):
        ids.append(new_run_id())
        time.sleep(0.01)
    assert ids == sorted(ids)
    earlier = new_run_id()
    time.sleep(1.05)
    assert new_run_id() > earlier
    assert re.fullmatch(r"\d{8}-\d{6}-\d{3}-[0-9a-f]+", earlier)
