"""A step whose tminus was SIGKILLed survives (it leads its own session) and writes its output to a
spool file, not a pipe: resume waits for it and adopts its result, or kills it first (--retry,
--rollback), or leaves it running (--skip). Real processes and signals throughout."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

from tests.helpers import lines, run_json, spawn, tminus, wait_for, write_runbook

SECRET = "s3cr3t-Tok3n-42"

# A chatty, non-idempotent step: it counts its executions, and says so when a copy of it still ran as
# it began (a second copy beside the first; a killed one not yet reaped is a zombie, and does not
# count). ${LOOPS} lets a retry be quick without editing the runbook; while a file `hold` exists it
# goes on looping, so a test decides when it ends however slow the machine is.
CHATTY = """
    name: chatty
    secrets: [API_TOKEN]
    phases:
      - name: one
        steps:
          - name: migrate
            run: >-
              s=$(cat /proc/$(cat pid 2>/dev/null || echo none)/stat 2>/dev/null | sed 's/.*) //' | cut -c1);
              if [ -n "$s" ] && [ "$s" != Z ]; then echo OVERLAP >> execs; fi;
              echo $$ > pid; echo run >> execs;
              i=0; while [ $i -lt ${LOOPS:-40} ] || [ -e hold ]; do echo "line $i token=$API_TOKEN"; echo $i >> marker;
              i=$((i+1)); sleep 0.1; done; echo done
            expect: ['stdout contains "done"']
          - run: "echo after >> execs"
        undo:
          - run: "echo undone >> execs"
"""

ENV = {"API_TOKEN": SECRET}


def _start_and_kill(tmp_path: Path, loops: int = 40, runbook: str = CHATTY) -> tuple[str, int]:
    """Run, SIGKILL tminus (only tminus) while the step loops; the run id and the step's group id."""
    write_runbook(tmp_path, runbook)
    proc = spawn("run", "runbook.yaml", cwd=tmp_path, env={**ENV, "LOOPS": str(loops)})
    wait_for(lambda: len(lines(tmp_path / "marker")) >= 3, timeout=60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    pgid = os.getpgid(int((tmp_path / "pid").read_text()))
    spool = tmp_path / ".tminus" / "spool"
    (run_id,) = [p.name for p in spool.iterdir()]
    return run_id, pgid


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    out = subprocess.run(["ps", "-o", "stat=", "-g", str(pgid)], capture_output=True, text=True).stdout
    return any(s and not s.startswith("Z") for s in out.split())


def _kill(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _events(tmp_path: Path, run_id: str) -> list[dict]:
    code, shown = run_json("show", run_id, cwd=tmp_path)
    assert code == 0
    return shown["events"]


def test_survivor_keeps_writing_and_resume_waits_and_adopts_it(tmp_path: Path) -> None:
    (tmp_path / "hold").touch()  # it loops until the resume below is waiting for it
    run_id, pgid = _start_and_kill(tmp_path, loops=100)
    try:
        at_kill = len(lines(tmp_path / "marker"))
        # (a) past the point where a write to the dead tminus's pipe would have killed it
        wait_for(lambda: len(lines(tmp_path / "marker")) > at_kill + 3, timeout=20)
        assert _group_alive(pgid)
        # the spool: 0600 files in a 0700 folder, the unmasked output in them
        folder = tmp_path / ".tminus" / "spool" / run_id
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        files = sorted(folder.iterdir())
        assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
        assert SECRET in next(f for f in files if f.name.endswith(".out")).read_text()
        # status names the surviving group
        code, rows = run_json("status", cwd=tmp_path)
        assert code == 0 and rows[0]["survivors"][0]["pgid"] == pgid, rows
        text = tminus("status", cwd=tmp_path).stdout
        assert f"process group {pgid}" in text
        # (b) --no-input waits for it, then adopts it: not run a second time
        waiting = spawn("resume", run_id, "--no-input", cwd=tmp_path, env=ENV)
        wait_for(lambda: waiting.poll() is not None or _lease_taken(tmp_path, run_id), timeout=60)
        assert waiting.poll() is None, waiting.communicate()
        (tmp_path / "hold").unlink()  # now let the survivor end
        _out, err = waiting.communicate(timeout=120)
        assert waiting.returncode == 0, err
        assert "--wait" in err and f"process group {pgid}" in err
    finally:
        _kill(pgid)
    assert lines(tmp_path / "execs") == ["run", "after"]
    ran = len(lines(tmp_path / "marker"))
    assert ran >= 100  # it ran to its end
    events = _events(tmp_path, run_id)
    resumed = next(e for e in events if e["type"] == "run.resumed")
    assert resumed["data"]["interrupted"] == {"phases[0].steps[0]": "wait"}
    assert resumed["data"]["survivors"]["phases[0].steps[0]"]["pgid"] == pgid
    finished = [e for e in events if e["type"] == "step.finished" and e["step_key"] == "phases[0].steps[0]"]
    assert len(finished) == 1 and finished[0]["data"]["status"] == "ok"
    assert finished[0]["data"]["execution"] == 1 and finished[0]["data"]["evidence"]["adopted"] is True
    assert f"line {ran - 1}" in finished[0]["data"]["evidence"]["stdout"]  # its output, from the spool
    assert any(e["type"] == "note" and e["data"].get("action") == "survivor-adopted" for e in events)
    shown = tminus("show", run_id, cwd=tmp_path).stdout
    assert f"line {ran - 1}" in shown and "adopted" in shown
    # (g) the secret never lands unmasked; the spool is gone once the outcome is recorded
    assert SECRET not in json.dumps(events) and SECRET not in shown
    assert "token=***" in shown
    assert not (tmp_path / ".tminus" / "spool" / run_id).exists()


def test_retry_kills_the_survivor_before_running_the_step_again(tmp_path: Path) -> None:
    run_id, pgid = _start_and_kill(tmp_path, loops=300)
    try:
        first = int((tmp_path / "pid").read_text())
        proc = tminus("resume", run_id, "--retry", "--no-input", cwd=tmp_path, env={**ENV, "LOOPS": "2"},
                      timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert not _group_alive(pgid)
    finally:
        _kill(pgid)
    # two executions, never two copies at once (the second saw no live first copy)
    assert lines(tmp_path / "execs") == ["run", "run", "after"]
    assert int((tmp_path / "pid").read_text()) != first
    notes = [e for e in _events(tmp_path, run_id) if e["type"] == "note"]
    assert any(n["data"].get("action") == "interrupted-execution-ended" for n in notes)


def test_skip_leaves_the_survivor_running_and_rollback_kills_it(tmp_path: Path) -> None:
    run_id, pgid = _start_and_kill(tmp_path, loops=300)
    try:
        code, result = run_json("resume", run_id, "--skip", "--reason", "it finishes by itself", "--no-input",
                                cwd=tmp_path, env=ENV)
        assert code == 0, result
        assert _group_alive(pgid)  # left running, as the operator chose
        notes = [e for e in _events(tmp_path, run_id) if e["type"] == "note"]
        left = [n for n in notes if n["data"].get("action") == "survivor-left-running"]
        assert left and left[0]["data"]["pgid"] == pgid
        assert lines(tmp_path / "execs") == ["run", "after"]
    finally:
        _kill(pgid)

    other = tmp_path / "other"
    other.mkdir()
    run_id, pgid = _start_and_kill(other, loops=300)
    try:
        code, result = run_json("resume", run_id, "--rollback", "--no-input", cwd=other, env=ENV)
        assert code == 11, result
        assert not _group_alive(pgid)
        assert lines(other / "execs") == ["run", "undone"]
    finally:
        _kill(pgid)


def test_a_killed_survivor_falls_back_to_the_usual_choice(tmp_path: Path) -> None:
    run_id, pgid = _start_and_kill(tmp_path, loops=300)
    try:
        waiting = spawn("resume", run_id, "--wait", "--no-input", cwd=tmp_path, env=ENV)
        wait_for(lambda: waiting.poll() is not None or _lease_taken(tmp_path, run_id), timeout=60)
        assert waiting.poll() is None, waiting.communicate()
        _kill(pgid)  # killed while resume waits: it leaves no exit status
        _out, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 15, err
        assert "without recording an exit status" in err and "--retry" in err
    finally:
        _kill(pgid)
    assert lines(tmp_path / "execs") == ["run"]  # nothing ran a second time
    assert not any(e["type"] == "run.resumed" for e in _events(tmp_path, run_id))  # nothing recorded
    # the normal choice, as for any interrupted step without a survivor
    proc = tminus("resume", run_id, "--no-input", cwd=tmp_path, env=ENV)
    assert proc.returncode == 15 and "--skip" in proc.stderr


def _lease_taken(tmp_path: Path, run_id: str) -> bool:
    """The resume holds the run's lease: it is waiting for the survivor. (The killed run's lease is
    still recorded, held by a dead process: only a live holder makes the run "running" again.)"""
    code, rows = run_json("status", cwd=tmp_path)
    return code == 0 and any(r["run_id"] == run_id and r["state"] == "running" for r in rows)


def test_waiting_ends_at_the_steps_timeout_counted_from_its_start(tmp_path: Path) -> None:
    runbook = CHATTY.replace("            expect:", "            timeout: 6s\n            expect:")
    run_id, pgid = _start_and_kill(tmp_path, loops=300, runbook=runbook)
    try:
        start = time.monotonic()
        code, result = run_json("resume", run_id, "--no-input", cwd=tmp_path, env=ENV)
        assert code == 11, result  # the step timed out: the run rolled back
        assert time.monotonic() - start < 30
        assert not _group_alive(pgid)
    finally:
        _kill(pgid)
    assert lines(tmp_path / "execs") == ["run", "undone"]
    finished = [e for e in _events(tmp_path, run_id)
                if e["type"] == "step.finished" and e["step_key"] == "phases[0].steps[0]"]
    assert len(finished) == 1 and "timed out" in finished[0]["data"]["message"]
    assert finished[0]["data"]["evidence"]["adopted"] is True


def test_a_step_that_ran_to_its_end_unwatched_is_adopted_not_run_again(tmp_path: Path) -> None:
    # Its exit status and output are known: nothing needs an operator, and a second run would repeat it.
    run_id, pgid = _start_and_kill(tmp_path, loops=8)
    try:
        wait_for(lambda: not _group_alive(pgid), timeout=30)
    finally:
        _kill(pgid)
    code, result = run_json("resume", run_id, "--no-input", cwd=tmp_path, env=ENV)
    assert code == 0, result
    assert lines(tmp_path / "execs") == ["run", "after"]  # adopted, not run again
    shown = tminus("show", run_id, "--json", cwd=tmp_path, env=ENV).stdout
    assert "survivor-adopted" in shown


def test_going_back_adopts_a_step_that_ran_to_its_end_unwatched(tmp_path: Path) -> None:
    # --rollback does not re-run it either: it is adopted (touched), then undone.
    run_id, pgid = _start_and_kill(tmp_path, loops=8)
    try:
        wait_for(lambda: not _group_alive(pgid), timeout=30)
    finally:
        _kill(pgid)
    code, result = run_json("resume", run_id, "--rollback", "--no-input", cwd=tmp_path, env=ENV)
    assert code == 11, result
    assert lines(tmp_path / "execs").count("run") == 1


def test_on_a_terminal_resume_shows_the_survivor_and_asks(tmp_path: Path) -> None:
    import pty
    import select
    import sys

    run_id, pgid = _start_and_kill(tmp_path, loops=300)
    child, fd = pty.fork()
    if child == 0:  # the resume, on a terminal of its own
        os.chdir(tmp_path)
        os.execve(sys.executable, [sys.executable, "-m", "tminus", "resume", run_id],
                  {**os.environ, **ENV, "LOOPS": "2", "TMINUS_OPERATOR": "tester"})
    seen, answered = b"", False
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], 0.5)[0]:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            seen += data
            if b"what now" in seen and not answered:
                os.write(fd, b"retry\n")
                answered = True
        _pid, status = os.waitpid(child, 0)
    finally:
        _kill(pgid)
        os.close(fd)
    text = seen.decode(errors="replace")
    assert f"process group {pgid}" in text and "kill it, then run the step again" in text, text[-2000:]
    assert os.waitstatus_to_exitcode(status) == 0, text[-2000:]
    assert lines(tmp_path / "execs") == ["run", "run", "after"]  # killed first: no OVERLAP line


def test_a_command_ended_by_a_signal_after_the_kill_is_not_adopted(tmp_path: Path) -> None:
    # Someone killed the command but not its wrapper: the status says 137 (128 + SIGKILL). It did not
    # run to its end, so it is not judged from what it left: the operator chooses, as for any other.
    from tminus.kinds.transport import group_members

    run_id, pgid = _start_and_kill(tmp_path, loops=300)
    try:
        for pid in group_members(pgid):
            if pid != pgid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not _group_alive(pgid), timeout=30)
    finally:
        _kill(pgid)
    statuses = list((tmp_path / ".tminus" / "spool").rglob("*.status"))
    assert [p.read_text().strip() for p in statuses] == ["137"]
    proc = tminus("resume", run_id, "--no-input", cwd=tmp_path, env=ENV)
    assert proc.returncode == 15 and "--retry" in proc.stderr, proc.stderr
    assert lines(tmp_path / "execs") == ["run"]
