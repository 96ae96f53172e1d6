"""A guarded phase killed with kill -9 mid-step and resumed: the guard starts again for the rest of
the phase (recorded as resumed), and still stops the phase when the bind is lost after the resume."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.guard_helpers import events, guarded, listening
from tests.helpers import lines, run_json, spawn, wait_for, write_runbook

# each execution of the restart waits for its own release file: started1/release1, started2/release2
RESTART = ("n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; touch started$n; "
           "while [ ! -f release$n ]; do sleep 0.05; done")


def test_a_killed_guarded_phase_resumes_with_its_guard(tmp_path: Path) -> None:
    with listening() as bind:
        text = guarded(bind.port, step=RESTART)
        text = text.replace('        run: "n=', '        idempotent: true\n        run: "n=')
        write_runbook(tmp_path, text)
        proc = spawn("run", "runbook.yaml", cwd=tmp_path)
        wait_for(lambda: (tmp_path / "started1").exists())
        time.sleep(0.3)  # the guard has sampled the bind
        _code, runs = run_json("history", cwd=tmp_path)
        run_id = str(runs[0]["id"])
        [effect] = [e.data for e in events(tmp_path, run_id, "step.effect") if e.data.get("pgid")]
        os.kill(proc.pid, signal.SIGKILL)  # tminus and the restart's process group: a host that went down
        os.killpg(int(effect["pgid"]), signal.SIGKILL)
        proc.wait(timeout=10)
        assert runs[0]["status"] == "running"
        before = events(tmp_path, run_id, "guard.sample")
        assert before and not events(tmp_path, run_id, "guard.finished")  # killed while it watched

        resumed = spawn("resume", run_id, "--no-input", "--json", cwd=tmp_path)
        try:
            wait_for(lambda: (tmp_path / "started2").exists())
            time.sleep(0.3)
            bind.stop()
            out, err = resumed.communicate(timeout=30)
        finally:
            (tmp_path / "release2").touch()
            if resumed.poll() is None:
                resumed.kill()
    assert resumed.returncode == 11, out + err
    assert lines(tmp_path / "undone") == ["undone"]
    starts = [e.data for e in events(tmp_path, run_id, "guard.started")]
    assert [s["resumed"] for s in starts] == [False, True]
    resumed_at = events(tmp_path, run_id, "run.resumed")[0].seq
    firing = [e for e in events(tmp_path, run_id, "guard.transition") if e.data["to"] == "firing"]
    assert len(firing) == 1 and firing[0].seq > resumed_at
    after = [e.data["values"]["open"] for e in events(tmp_path, run_id, "guard.sample") if e.seq > resumed_at]
    assert after[0] is True and after[-1] is False  # watched with the bind up, then saw it lost
    assert lines(tmp_path / "count") == ["2"]  # the restart ran again once, as an idempotent step does
