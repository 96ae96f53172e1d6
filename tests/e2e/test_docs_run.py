"""Every fenced block of docs/**/*.md and README.md, checked against the real tool.

- YAML: a whole runbook validates; a fragment validates placed in a runbook (tests/docsyaml.py); a block
  marked `<!-- docs-test: invalid MESSAGE -->` fails validation with MESSAGE.
- Shell: every `tminus` line is parsed by click against the real CLI (a wrong command or option fails);
  other lines' repository paths (scripts/*.sh, examples/..., benchmarks/...) must exist. A block marked
  `<!-- docs-test: run -->` is run, in order, in its page's sandbox (a temp copy, a temp ledger), and
  each line's `exit N` comment is the exit code it must have.
- Synopses (```usage): every option shown exists on its command. JSON samples parse.
- A block with no class is a failure; skips need a reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from tests.docblocks import ROOT, Block, Command, blocks, commands, parse_cli
from tests.docsyaml import contexts, runbook_text, yaml_problem

from tminus.cli.app import cli
from tminus.engine.exitcodes import Exit

CLI_MD = ROOT / "docs" / "cli.md"
BLOCKS = blocks()
CONTEXTS = contexts(BLOCKS)
ANSI = re.compile(r"\x1b\[")
MARKUP = re.compile(r"\[/?(?:bold|red|green|cyan|yellow|magenta|dim|italic)\b[^\]]*\]|\[/\]")


def _ids(block: Block) -> str:
    return block.where


def _of(kind: str) -> list[Block]:
    return [b for b in BLOCKS if b.kind == kind]


# --- classification ---------------------------------------------------------------------------------


def test_every_block_is_classified() -> None:
    unclassified = [f"{b.where} (```{b.info})" for b in BLOCKS if b.kind is None]
    assert not unclassified, (
        "blocks without a class: give them an info string (yaml, console, sh, text, usage, json) or a "
        "<!-- docs-test: ... --> marker:\n  " + "\n  ".join(unclassified))


def test_skips_are_few_and_explained() -> None:
    skips = [b for b in BLOCKS if b.kind == "skip"]
    assert all(b.marker_arg for b in skips), "a <!-- docs-test: skip --> needs its reason"
    assert len(skips) <= 3


def test_markers_are_known_words() -> None:
    words = {"invalid", "fragment", "run", "skip", "shell"}
    bad = [f"{b.where}: {b.marker}" for b in BLOCKS if b.marker and b.marker not in words]
    assert not bad, bad


# --- YAML -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", _of("yaml"), ids=_ids)
def test_yaml_block_validates(block: Block, tmp_path: Path) -> None:
    problem = yaml_problem(block, CONTEXTS.get(block), tmp_path / "runbook.yaml")
    assert problem is None, problem


# --- shell: parsed by the real CLI ------------------------------------------------------------------


_REPO_PATH = re.compile(r"^(?:\./)?((?:scripts|examples|benchmarks|docs|tests|src)/[\w./-]+)$")


@pytest.mark.parametrize("block", _of("shell"), ids=_ids)
def test_shell_block_parses(block: Block) -> None:
    lines = commands(block)
    assert lines, f"{block.where}: a shell block without a command"
    for line in lines:
        args = line.tminus_args
        if args is not None:
            try:
                parse_cli(args)
            except click.exceptions.Exit:
                pass  # --help, --version
            except click.ClickException as exc:
                pytest.fail(f"{block.where}: `{line.text}`: {exc.format_message()}")
            continue
        for word in line.words:
            m = _REPO_PATH.match(word)
            if m and "/tmp/" not in word:
                assert (ROOT / m.group(1)).exists(), f"{block.where}: `{line.text}`: no {m.group(1)} in the repository"


# --- synopses and samples -----------------------------------------------------------------------------


@pytest.mark.parametrize("block", [b for b in _of("shown") if b.lang == "usage"], ids=_ids)
def test_synopsis_options_exist(block: Block) -> None:
    text = " ".join(block.body.split())
    words = text.split()
    assert words[0] == "tminus", f"{block.where}: a synopsis starts with `tminus`"
    path = []
    rest = words[1:]
    while rest and rest[0].startswith("[--") and not path:  # a global option before the command
        while rest and not rest.pop(0).endswith("]"):
            pass
    for w in rest:
        if not re.fullmatch(r"[a-z][a-z-]*", w):
            break
        path.append(w)
    command: click.Command = cli
    known = _visible_options(cli) | {"-V", "--version"}
    for name in path:
        assert isinstance(command, click.Group), f"{block.where}: `{name}` is not a command of {command.name}"
        sub = command.get_command(click.Context(command), name)
        assert sub is not None, f"{block.where}: no command `{' '.join(path)}`"
        command = sub
        known |= _visible_options(command)
    shown = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", text))
    assert shown <= known, f"{block.where}: options that `{' '.join(['tminus', *path])}` lacks: {sorted(shown - known)}"


@pytest.mark.parametrize("block", [b for b in _of("shown") if b.lang == "json"], ids=_ids)
def test_json_sample_parses(block: Block) -> None:
    try:
        json.loads(block.body.replace("...", "0") if "..." in block.body else block.body)
    except json.JSONDecodeError as exc:
        pytest.fail(f"{block.where}: not JSON: {exc}")


# --- shell: run in a sandbox ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sandbox:
    cwd: Path
    env: dict[str, str]
    results: list[tuple[Command, subprocess.CompletedProcess[str]]] = field(default_factory=list)

    last_run: str | None = None

    def run(self, line: Command) -> subprocess.CompletedProcess[str]:
        if "RUN_ID" in line.words and self.last_run is None:
            self.last_run = self._run_id()
        words = [self.last_run or "" if w == "RUN_ID" else w for w in line.words]
        if line.tminus_args and line.tminus_args[0] in ("run", "gate", "resume", "rollback", "monitor"):
            self.last_run = None  # a new run (or a new state of one): look it up again
        env = dict(self.env)
        while words and re.match(r"^[A-Za-z_]\w*=", words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        if line.tminus_args is not None:
            words = [sys.executable, "-m", "tminus", *words[1:]]
        elif words[0] in ("python3", "python", ".venv/bin/python"):
            words[0] = sys.executable
        else:
            pytest.fail(f"a sandbox runs tminus and python lines only, not `{line.text}`")
        proc = subprocess.run(words, cwd=self.cwd, env=env, capture_output=True, text=True, timeout=90)
        self.results.append((line, proc))
        return proc

    def _run_id(self) -> str:
        proc = subprocess.run([sys.executable, "-m", "tminus", "history", "--json", "-n", "1"], cwd=self.cwd,
                              env=self.env, capture_output=True, text=True, timeout=30)
        return str(json.loads(proc.stdout)[0]["id"])


def _sandbox_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMINUS_", "QUICKSTART_"))
           and k not in ("FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    env.update(PYTHONPATH=str(ROOT / "src"), TMINUS_LEDGER=f"sqlite:///{tmp}/ledger.db",
               TMINUS_OPERATOR="docs-test", COLUMNS="200", TERM="xterm-256color")
    return env


def _readme_sandbox(tmp: Path) -> Iterator[Sandbox]:
    """The README's tour runbook in an empty folder; nothing listens on its port, so the gate blocks."""
    body = next(b.body for b in BLOCKS if b.page.name == "README.md" and b.kind == "yaml")
    (tmp / "runbook.yaml").write_text(body.replace("port: 8765", f"port: {_free_port()}"))
    env = _sandbox_env(tmp)
    env["DEPLOY_TOKEN"] = "docs-test-token"
    yield Sandbox(tmp, env)


def _quickstart_sandbox(tmp: Path) -> Iterator[Sandbox]:
    """A copy of examples/quickstart on a free port; the service is stopped at the end."""
    target = tmp / "examples" / "quickstart"
    shutil.copytree(ROOT / "examples" / "quickstart", target,
                    ignore=shutil.ignore_patterns("state", "__pycache__", "backups"))
    port = _free_port()
    runbook = target / "runbook.yaml"
    text = runbook.read_text()
    assert "port: 8765" in text and "python: python3" in text
    runbook.write_text(text.replace("port: 8765", f"port: {port}").replace("python: python3",
                                                                               f"python: {sys.executable}"))
    env = _sandbox_env(tmp)
    env.update(QUICKSTART_PORT=str(port), QUICKSTART_STATE=str(target / "state"), QUICKSTART_WARMUP="0.2")
    try:
        yield Sandbox(tmp, env)
    finally:
        subprocess.run([sys.executable, str(target / "service" / "svc.py"), "stop"], env=env,
                       capture_output=True, timeout=30)
        pid = target / "state" / "svc.pid"
        if pid.exists():  # a stop that failed must not leave the server behind
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid.read_text().split()[0]), signal.SIGKILL)


def _blue_green_sandbox(tmp: Path) -> Iterator[Sandbox]:
    """A copy of examples/blue-green: nginx, gunicorn slots and its own schema on free ports (stack.py
    reads BG_*), brought down at the end."""
    if not os.access("/usr/sbin/nginx", os.X_OK):
        pytest.skip("/usr/sbin/nginx is not installed (.ci/run installs it)")
    target = tmp / "examples" / "blue-green"
    shutil.copytree(ROOT / "examples" / "blue-green", target, ignore=shutil.ignore_patterns("state", "__pycache__"))
    env = _sandbox_env(tmp)
    env.update(BG_PORT=str(_free_port()), BG_PREVIEW_PORT=str(_free_port()), BG_BLUE_PORT=str(_free_port()),
               BG_GREEN_PORT=str(_free_port()), BG_SCHEMA=f"bg_docs_{os.getpid()}_{_free_port()}")
    try:
        yield Sandbox(tmp, env)
    finally:
        subprocess.run([sys.executable, str(target / "stack.py"), "down"], env=env, capture_output=True, timeout=90)


SANDBOXES: dict[str, Callable[[Path], Iterator[Sandbox]]] = {
    "README.md": _readme_sandbox,
    "docs/examples/quickstart.md": _quickstart_sandbox,
    "docs/examples/blue-green.md": _blue_green_sandbox,
}
RUN_BLOCKS = [b for b in BLOCKS if b.marker == "run"]


def test_every_run_block_has_a_sandbox() -> None:
    pages = {str(b.page.relative_to(ROOT)) for b in RUN_BLOCKS}
    assert pages <= set(SANDBOXES), f"run blocks on pages without a sandbox: {pages - set(SANDBOXES)}"
    assert set(SANDBOXES) <= pages, "a sandbox whose page has no run block"


def _run_page(page: str, tmp_path: Path) -> Sandbox:
    sandbox_of = SANDBOXES[page]
    gen = sandbox_of(tmp_path)
    box = next(gen)
    try:
        for block in (b for b in RUN_BLOCKS if str(b.page.relative_to(ROOT)) == page):
            for line in commands(block):
                proc = box.run(line)
                out = proc.stdout + proc.stderr
                where = f"{block.where}: `{line.text}` exited {proc.returncode}:\n{out[-3000:]}"
                assert "Traceback" not in out, where
                expected = line.expected_exit
                if expected is not None:
                    assert proc.returncode == expected, where
                else:
                    assert proc.returncode in {int(e) for e in Exit} - {int(Exit.FAILED)}, where
                    if line.tminus_args is None:
                        assert proc.returncode == 0, where
                # Run in a pipe, as in CI: plain text, no Rich markup, no colours.
                assert not ANSI.search(out), f"{where}\nANSI escapes in a pipe"
                assert not MARKUP.search(out), f"{where}\nRich markup printed literally"
    finally:
        gen.close()
    return box


def test_readme_tour_runs(tmp_path: Path) -> None:
    box = _run_page("README.md", tmp_path)
    codes = {" ".join(c.words[1:3]): p.returncode for c, p in box.results}
    assert codes["validate runbook.yaml"] == 0 and codes["plan runbook.yaml"] == 0
    assert codes["run runbook.yaml"] == Exit.BLOCKED  # "any failing gate means nothing changes (exit 10)"
    assert codes["ledger verify"] == 0


def test_blue_green_page_runs(short_path: Path) -> None:
    box = _run_page("docs/examples/blue-green.md", short_path)  # nginx's socket path: short (conftest.py)
    codes = [(c.words[1:3], p.returncode) for c, p in box.results if c.tminus_args is not None]
    assert [code for words, code in codes if words[0] in ("run", "kill-switch")] == [0, Exit.ROLLED_BACK, 0], codes
    # The page's sample of v3's failure: the position and the proof's words are what tminus prints.
    v3 = next(p.stdout + p.stderr for c, p in box.results if "release=v3" in c.words)
    sample = next(b.body for b in BLOCKS if b.page.name == "blue-green.md" and b.lang == "text" and "✗" in b.body)
    shown = re.search(r"(examples/blue-green/runbook\.yaml:\d+:\d+: 20 of 20 requests to )http", sample)
    assert shown and shown.group(1) in v3, f"docs/examples/blue-green.md: tminus prints\n{v3[-3000:]}"
    assert "expected 200, got 500" in v3


def test_quickstart_page_runs_and_its_samples_match(tmp_path: Path) -> None:
    box = _run_page("docs/examples/quickstart.md", tmp_path)
    show = next(p for c, p in box.results if c.words[1:2] == ["show"])
    printed = show.stdout
    # The verdict lines the docs show are the ones the tool prints (paths as in the docs: the
    # sandbox runs from a copy of the repository's layout).
    samples = [b for b in BLOCKS if b.lang == "text" and "runbook.yaml:18" in b.body
               and b.page.name in ("quickstart.md", "concepts.md")]
    assert len(samples) >= 2
    for block in samples:
        for shown in re.findall(r"^\s*(examples/quickstart/runbook\.yaml:\d+:\d+: .*)$", block.body, re.M):
            assert shown in printed, f"{block.where}: the docs show\n  {shown}\nbut tminus prints:\n{printed}"
    # Every line of the `tminus show` sample is a line tminus prints, up to times, ids and durations.
    show_sample = next(b for b in samples if b.body.startswith("Run "))
    actual = {_normal(line) for line in printed.splitlines()}
    for shown in show_sample.body.splitlines():
        if shown.strip() not in ("", "...") and not shown.startswith(("operator ", "started ")):
            assert _normal(shown) in actual, f"{show_sample.where}: tminus prints no line like\n  {shown}"
    # The sections summary: the same sections, in the same order, with the same status.
    sample = next(b for b in samples if "Sections:" in b.body)
    assert _sections(sample.body) == _sections(printed), f"{sample.where}: sections differ:\n{printed}"


def _normal(line: str) -> str:
    """A line without what differs between two runs: clock offsets, durations, run ids, the runbook's
    digest, a backup's name."""
    line = re.sub(r"\b\d{8}-\d{6}-\d{3}-[0-9a-f]{10}\b", "RUN", line)
    line = re.sub(r"T\+\d+:\d\d \+\s+\d+\.\d\ds", "T+", line)
    line = re.sub(r"\d+(?:\.\d+)?(?:ms|s)\b", "D", line)
    line = re.sub(r"\bT\+\d+s\b", "T+D", line)
    line = re.sub(r"\bby [\w.-]+@[\w.-]+", "by OPERATOR", line)
    return re.sub(r"\s+", " ", line).strip()


def _sections(text: str) -> list[tuple[str, str]]:
    part = text.split("Sections:", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^  (\S.*?)\s{2,}(ok|failed|stopped|running|interrupted|skipped)\b", part, re.M)
    return [(name.strip(), status) for name, status in rows]


# --- counts -----------------------------------------------------------------------------------------------


def test_report_counts(capsys: pytest.CaptureFixture[str]) -> None:
    tminus_lines = sum(1 for b in _of("shell") for c in commands(b) if c.tminus_args is not None)
    other_lines = sum(1 for b in _of("shell") for c in commands(b) if c.tminus_args is None)
    run_lines = sum(len(commands(b)) for b in RUN_BLOCKS)
    yaml = _of("yaml")
    invalid = sum(1 for b in yaml if b.marker == "invalid")
    whole = sum(1 for b in yaml if b.marker != "invalid" and runbook_text(b, None)[0] == "whole")
    counts = {
        "blocks": len(BLOCKS), "yaml whole runbooks": whole, "yaml fragments": len(yaml) - whole - invalid,
        "yaml invalid as shown": invalid, "shell blocks": len(_of("shell")),
        "tminus lines parsed": tminus_lines, "other shell lines path-checked": other_lines,
        "lines run": run_lines, "shown (text/usage/json)": len(_of("shown")), "skipped": len(_of("skip")),
    }
    with capsys.disabled():
        print("\ndocs blocks: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    assert counts["blocks"] == sum(1 for b in BLOCKS if b.kind is not None)
    assert run_lines >= 10


# --- JSON samples: the keys the tool prints -----------------------------------------------------------------


def _tminus_json(*args: str, cwd: Path) -> tuple[int, object]:
    env = _sandbox_env(cwd)
    proc = subprocess.run([sys.executable, "-m", "tminus", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)
    return proc.returncode, json.loads(proc.stdout)


def test_json_samples_have_the_tools_keys(tmp_path: Path) -> None:
    samples = [json.loads(b.body) for b in BLOCKS if b.lang == "json" and b.page.name == "cli.md"]
    valid = next(s for s in samples if s.get("valid") is True)
    invalid = next(s for s in samples if s.get("valid") is False)
    result = next(s for s in samples if "run_id" in s)
    # the valid sample is the quickstart runbook's own summary
    code, out = _tminus_json("validate", "--json", str(ROOT / "examples" / "quickstart" / "runbook.yaml"), cwd=tmp_path)
    assert code == 0 and out == valid
    (tmp_path / "runbook.yaml").write_text("name: v\nphases:\n  - name: p\n    nme: x\n    steps: [{run: 'true'}]\n")
    code, out = _tminus_json("validate", "--json", "runbook.yaml", cwd=tmp_path)
    assert code == Exit.INVALID_RUNBOOK and isinstance(out, dict)
    assert set(out) == set(invalid) and set(out["problems"][0]) == set(invalid["problems"][0])
    assert out["problems"][0]["message"] == invalid["problems"][0]["message"]
    (tmp_path / "runbook.yaml").write_text("name: v\nphases:\n  - name: p\n    steps: [{run: 'true'}]\n")
    code, out = _tminus_json("run", "runbook.yaml", "--json", cwd=tmp_path)
    assert code == 0 and isinstance(out, dict) and set(out) == set(result)
    # history --json: the record's keys, as cli.md lists them
    code, out = _tminus_json("history", "--json", "-n", "1", cwd=tmp_path)
    section = CLI_MD.read_text().split("## `tminus history`", 1)[1].split("\n## ", 1)[0]
    listed = re.search(r"\| `--json` \| A list of run records: (.*?)\. \|", section)
    assert listed and isinstance(out, list)
    assert set(out[0]) == set(re.findall(r"`(\w+)`", listed.group(1)))


# --- inline `tminus ...` in the prose ------------------------------------------------------------------------

_FENCED = re.compile(r"^[ \t]*```.*?^[ \t]*```", re.S | re.M)


def _inline_commands() -> list[tuple[str, str]]:
    out = []
    for block_page in sorted({b.page for b in BLOCKS}):
        prose = _FENCED.sub("", block_page.read_text(encoding="utf-8"))
        for span in re.findall(r"``?((?:\.venv/bin/)?tminus [^`]+)``?", prose.replace("\n", " ")):
            out.append((str(block_page.relative_to(ROOT)), span))
    return out


INLINE = _inline_commands()


def _visible_options(command: click.Command) -> set[str]:
    """Options a command takes (a hidden one, such as `resume --var`, only exists to be refused)."""
    return {o for p in command.params if not getattr(p, "hidden", False)
            for o in (*p.opts, *p.secondary_opts)} | {"-h", "--help"}


def _mention_problem(args: list[str]) -> str | None:
    """A command named in prose (`tminus rollback RUN_ID`, `tminus unlock --reason`) is a mention, not a
    whole command line: its command must exist and every option it names must be one of that command's."""
    command: click.Command = cli
    words = list(args)
    while isinstance(command, click.Group) and words and re.fullmatch(r"[a-z][a-z-]*", words[0]):
        sub = command.get_command(click.Context(command), words[0])
        if sub is None:
            return f"no command `{words[0]}` in `{command.name}`"
        command = sub
        words.pop(0)
    known = _visible_options(command)
    if command is cli:
        known |= {"-V", "--version"}
    named = {w.split("=", 1)[0] for w in words if re.fullmatch(r"--?[a-zA-Z][\w-]*(=.*)?", w)}
    return f"no option {sorted(named - known)}" if named - known else None


def test_inline_tminus_commands_exist() -> None:
    bad = []
    for page, span in INLINE:
        line = commands(Block(ROOT / page, 0, "sh", span + "\n"))[0]
        problem = _mention_problem(line.tminus_args or [])
        if problem:
            bad.append(f"{page}: `{span}`: {problem}")
    assert not bad, "\n".join(bad)
    assert len(INLINE) > 50


def test_plan_json_keys_are_the_documented_ones(tmp_path: Path) -> None:
    code, out = _tminus_json("plan", str(ROOT / "examples" / "quickstart" / "runbook.yaml"), "-e", "local", "--json",
                             cwd=tmp_path)
    assert code == 0 and isinstance(out, dict)
    section = CLI_MD.read_text().split("## `tminus plan`", 1)[1].split("\n## ", 1)[0]
    said = " ".join(section.split("`--json` gives one object:", 1)[1].split("Exit 0")[0].split())
    named = set(re.findall(r"`(\w+)`", said))
    keys = set(out) | set(out["decision"]) | set(out["phases"][0]) | set(out["phases"][0]["steps"][0])
    assert keys <= named, f"docs/cli.md (plan --json) does not name {sorted(keys - named)}"


def test_show_json_keys_are_the_documented_ones(tmp_path: Path) -> None:
    (tmp_path / "runbook.yaml").write_text("name: v\nphases:\n  - name: p\n    steps: [{run: 'true'}]\n")
    code, result = _tminus_json("run", "runbook.yaml", "--json", cwd=tmp_path)
    assert code == 0 and isinstance(result, dict)
    code, out = _tminus_json("show", result["run_id"], "--json", cwd=tmp_path)
    assert code == 0 and isinstance(out, dict)
    section = CLI_MD.read_text().split("## `tminus show`", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in section.splitlines() if line.startswith("| `--json` |"))
    assert set(out) == set(re.findall(r'"(\w+)": ', row)), f"docs/cli.md (show --json): {sorted(out)}"
    named = set(re.findall(r"`(\w+)`", row))
    assert set(out["events"][0]) <= named and set(out["sections"][0]) <= named


@pytest.mark.parametrize("block", [b for b in _of("shown") if b.lang == "toml"], ids=_ids)
def test_toml_sample_is_a_config_tminus_reads(block: Block, tmp_path: Path) -> None:
    (tmp_path / "tminus.toml").write_text(block.body)
    code, out = _tminus_json("config", "--json", cwd=tmp_path)
    assert code == 0 and isinstance(out, dict), f"{block.where}: tminus config refuses it"
    assert out["config"]["path"] == str(tmp_path / "tminus.toml")
