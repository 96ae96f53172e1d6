"""Where a `run` step's output and exit status go: files, not pipes.

A pipe dies with the tminus process reading it, and a command writing to it then dies of SIGPIPE
at an arbitrary point; a file outlives tminus, so a step whose tminus was killed keeps running to
its end, and a resumed run can judge it from what it wrote (see survivor.py). The files hold
unmasked output: 0600 in a 0700 folder, removed once the step's outcome is recorded.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# The group leader: runs the command, then writes its exit status. Killed (timeout, cancel, a kill of
# the group), it writes nothing: a missing status file means the command did not run to its end.
WRAPPER_SHELL = "/bin/sh"
WRAPPER = 's=$1; shift; "$@"; c=$?; printf "%s\\n" "$c" > "$s"; exit "$c"'
# The same for a command whose shell is /bin/sh: run in a subshell of the wrapper (a fork, no second
# exec of a shell); `exit` and `exec` in the command end only the subshell.
WRAPPER_INLINE = ('__tminus_status=$1; __tminus_command=$2; shift 2; (eval "$__tminus_command"); c=$?; '
                  'printf "%s\\n" "$c" > "$__tminus_status"; exit "$c"')


# Before either, gated: wait for tminus's "go" line on stdin (a pipe), sent once the group's pid is in
# the ledger. Killed between the spawn and that record, tminus leaves the pipe unwritten, and the
# command never starts: no group runs that resume could not find (it would run the step a second
# time beside it). `read` takes one line from a pipe, byte by byte: the command gets the rest.
GATE = 'read -r __tminus_go && [ "$__tminus_go" = go ] || exit 125; '


def wrapped(shell: str, command: str, status: Path | str, gated: bool = False) -> list[str]:
    """The argv that runs `shell -c command` and records its exit status in `status`; `gated`: only
    once tminus writes "go" as the first line of its stdin."""
    first = GATE if gated else ""
    if shell == WRAPPER_SHELL:
        return [WRAPPER_SHELL, "-c", first + WRAPPER_INLINE, shell, str(status), command]
    return [WRAPPER_SHELL, "-c", first + WRAPPER, "tminus-run", str(status), shell, "-c", command]
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# The fields of a `process` effect that name an execution's spool files: every file a spool leaves
# behind is named by one (a kind that never records its process removes its files itself).
SPOOL_FIELDS = ("stdout", "stderr", "status")


@dataclass(frozen=True)
class Spool:
    """One execution attempt's files: `<prefix>.out`, `.err`, `.status`. `scratch`: in this process's
    private temporary folder (no spool folder given: a probe, a nested check, a kind used outside a
    run), removed once read. The names are kept as text: a step opens, records and removes them
    once each, and pathlib's joins cost more than the syscalls."""

    prefix: Path
    scratch: bool = False
    out: str = field(init=False, repr=False)
    err: str = field(init=False, repr=False)
    status: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        base = os.fspath(self.prefix)
        for suffix in ("out", "err", "status"):
            object.__setattr__(self, suffix, f"{base}.{suffix}")

    def paths(self) -> dict[str, str]:
        """What the `process` effect records: where a resumed run finds the output and the status
        (the fields are SPOOL_FIELDS)."""
        return {"stdout": self.out, "stderr": self.err, "status": self.status}

    def open_output(self) -> tuple[int, int]:
        """Fresh stdout and stderr files (0600, not following a planted symlink); the caller closes
        them. Opened for reading too, so the output is read back through the same descriptors
        (`read_fd`) instead of opening the files again. A spool folder removed since this process made
        it is made again."""
        try:
            return self._open()
        except FileNotFoundError:
            if self.scratch:
                raise
            make_private_dir(self.prefix.parent, again=True)
            return self._open()

    def _open(self) -> tuple[int, int]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.status)  # a status left by an earlier attempt must not be read as this one's
        out = os.open(self.out, _OUTPUT_FLAGS, 0o600)
        try:
            err = os.open(self.err, _OUTPUT_FLAGS, 0o600)
        except OSError:
            os.close(out)
            os.unlink(self.out)
            raise
        return out, err

    def remove(self) -> None:
        """The attempt's files (its outcome is recorded, or it was scratch). A process still writing
        keeps its (now nameless) file."""
        for path in (self.out, self.err, self.status):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def discard(self) -> None:
        if self.scratch:
            self.remove()


# Read and write: the output is read back through the descriptor the command wrote to (pread).
_OUTPUT_FLAGS = (os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))


def spool_for(prefix: Path | None) -> Spool:
    """The spool at `prefix` (its folder created 0700), or one in a private temporary folder (no
    prefix, or its folder cannot be made: a read-only runbook folder; then nothing outlives tminus)."""
    if prefix is not None:
        try:
            make_private_dir(prefix.parent)
            return Spool(prefix)
        except OSError:
            pass
    return Spool(_scratch_dir() / f"step-{next(_COUNTER)}", scratch=True)


_COUNTER = itertools.count()
_SCRATCH: list[Path] = []  # one private folder per process: a probe every few seconds makes no folders


def _scratch_dir() -> Path:
    if not _SCRATCH or not _SCRATCH[0].is_dir():
        _SCRATCH[:] = [Path(tempfile.mkdtemp(prefix="tminus-run-"))]  # mkdtemp: 0700
        atexit.register(shutil.rmtree, _SCRATCH[0], True)
    return _SCRATCH[0]


_MADE: set[Path] = set()  # folders this process made private already: once per run, not once per step


def make_private_dir(path: Path, *, again: bool = False) -> None:
    """`path` made (with its parents) and set 0700, once per process: a folder removed since is made
    again when a file cannot be created in it (`again`)."""
    if path in _MADE and not again:
        return
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)  # mkdir's mode passes through the umask, and an existing folder keeps its own
    _MADE.add(path)


def spool_name(key: str, execution: int, attempt: int) -> str:
    """A file-name-safe prefix for one attempt of one execution of a step."""
    return f"{_UNSAFE.sub('_', key)}.{execution}.{attempt}"


def remove_execution(folder: Path, key: str, execution: int) -> None:
    """Every attempt's files of one execution (its outcome is recorded: nothing will read them). A
    process still writing keeps its (now nameless) file."""
    stem = f"{_UNSAFE.sub('_', key)}.{execution}."
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.startswith(stem):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / name)


def read_fd(fd: int) -> str:
    """All that a file holds, read through `fd` from its start (pread: the offset the command's own
    descriptor shares is left alone); one syscall for the usual empty output."""
    size = os.fstat(fd).st_size
    if size == 0:
        return ""
    chunks: list[bytes] = []
    offset = 0
    while chunk := os.pread(fd, max(size - offset, 65536), offset):  # a background writer may add more
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def read_text(path: Path | str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def read_status(path: Path | str) -> int | None:
    """The exit status the wrapper wrote, or None if it wrote none (the group was killed)."""
    text = read_text(path).strip()
    return int(text) if text.lstrip("-").isdigit() else None


def holders(pids: list[int], paths: tuple[Path | str, ...]) -> list[int]:
    """Which of `pids` hold one of `paths` open (a background child still writing the output)."""
    wanted = {str(p) for p in paths}
    found = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target in wanted:
                found.append(pid)
                break
    return found

