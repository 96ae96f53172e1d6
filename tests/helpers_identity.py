"""A real second person: a throwaway OS account, and the real `tminus` command run as it.

tminus takes who someone is from the OS (its effective uid), with no override a test could use and
an attacker could too; so the tests create an account with `useradd` and run `tminus approve` as it
with `runuser`. That needs root (CI and the dev container run as root); elsewhere the tests skip.
"""

from __future__ import annotations

import os
import secrets
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import tminus


@contextmanager
def second_user() -> Iterator[str]:
    """A new OS account for one test, removed afterwards."""
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("runuser"):
        pytest.skip("a second OS user needs root, useradd and runuser")
    name = f"tmx{secrets.token_hex(4)}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True,
                   capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


@contextmanager
def shared_folder() -> Iterator[Path]:
    """A folder both accounts can write (pytest's tmp_path is root's alone), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="tminus-shared-", dir="/tmp"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _python_for(user: str) -> tuple[str, list[str]]:
    """An interpreter `user` may execute, and what it needs on its path to import tminus's dependencies.
    This one if it can (a venv under a folder only root may enter cannot), else the system's of the
    same version with this environment's site-packages."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"]
    for python in candidates:
        if subprocess.run(["runuser", "-u", user, "--", python, "-c", "pass"], capture_output=True).returncode == 0:
            extra = [] if python == sys.executable else [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
            # the tminus under test (an editable install is a .pth hook, which PYTHONPATH does not run)
            return python, [str(Path(tminus.__file__).resolve().parents[1]), *extra]
    pytest.skip(f"no Python interpreter that {user} may execute")


def tminus_as(user: str, *args: str, cwd: Path, env: dict[str, str] | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real `tminus ARGS` run as `user` (a login of its own: uid, gid, no root environment)."""
    python, extra = _python_for(user)
    path = os.pathsep.join([*filter(None, [os.environ.get("PYTHONPATH", "")]), *extra])
    keep = {k: v for k, v in os.environ.items() if k.startswith("TMINUS_") or k in ("PATH", "LANG", "LC_ALL")}
    full_env = {**keep, **(env or {}), "PYTHONPATH": path, "HOME": str(cwd)}
    assignments = [f"{k}={v}" for k, v in full_env.items()]
    # The checkout (and its venv) may sit in a folder other accounts cannot enter: then the second
    # person cannot run this tminus at all, which is a fact of the machine, not a failure of tminus.
    probe = subprocess.run(["runuser", "-u", user, "--", "env", "-i", *assignments, python, "-c",
                            "import tminus.cli.app"],
                           cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if probe.returncode != 0:
        pytest.skip(f"{user} cannot import this checkout's tminus (its folder is not readable by other accounts): "
                    + (probe.stderr.strip().splitlines() or ["?"])[-1])
    return subprocess.run(["runuser", "-u", user, "--", "env", "-i", *assignments, python, "-m", "tminus", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
