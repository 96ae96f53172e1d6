"""`file`: paths or globs exist (or not), and contain (or not) a text or pattern."""

from __future__ import annotations

import glob
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tminus.kinds.base import Effect, Observation, StepContext
from tminus.kinds.registry import register
from tminus.runbook import roots
from tminus.runbook.models import FileSpec

CONTENT_LIMIT = 1_000_000  # `content` is offered only for one file smaller than this
MAX_LISTED = 50  # list items kept in evidence
MAX_VALUES = 1000  # list items kept in values
MAX_FAILURE_HITS = 20
MAX_FAILURE_FILES = 10
_LINE_EXCERPT = 200


def describe(c: FileSpec, step: object, nested: object) -> str:
    cond = [f"exists={c.exists}"] if c.exists is not None else []
    cond += [f"contains {c.contains!r}"] if c.contains else []
    cond += [f"not contains {c.not_contains!r}"] if c.not_contains else []
    return f"file {c.path} {' '.join(cond)}".rstrip()


@register("file", config=FileSpec, effect=Effect.NONE, describe=describe,
          queries=("count", "files", "matches", "exists", "content"))
def execute(config: FileSpec, ctx: StepContext) -> Observation:
    pattern = config.path
    try:
        want = _compile(config.contains, config.regex)
        unwanted = _compile(config.not_contains, config.regex)
    except re.error as exc:
        return Observation(error=f"invalid regular expression in contains/not_contains: {exc}")
    deadline = time.monotonic() + ctx.timeout if ctx.timeout is not None else None

    def stop() -> Observation | None:
        if ctx.cancel.is_set():
            return Observation(error="interrupted (the run was cancelled)")
        if deadline is not None and time.monotonic() > deadline:
            return Observation(error=f"timed out after {ctx.timeout:.1f}s searching {pattern}", timed_out=True)
        return None

    places = roots.allowed(ctx.base_dir, ctx.roots)
    try:  # where the glob starts, then every match (a symlink may point out): nothing outside is read
        roots.confine(roots.glob_base(pattern), ctx.base_dir, ctx.roots, what="the file path")
    except roots.OutsideRoots as exc:
        return Observation(error=str(exc), evidence={"pattern": pattern})
    paths: list[str] = []
    for match in glob.iglob(pattern, root_dir=ctx.base_dir, recursive=True):
        if (stopped := stop()) is not None:
            return stopped
        real = Path(os.path.realpath(ctx.base_dir / match))
        if not roots.inside(real, places):
            error = str(roots.OutsideRoots(match, real, places, what=f"{pattern!r} matches"))
            return Observation(error=error, evidence={"pattern": pattern})
        paths.append(_relative(match, ctx.base_dir))
    paths.sort()

    failures: list[str] = []
    exists = config.exists
    if exists is None and config.contains is None and config.not_contains is None:
        exists = True
    if exists is True and not paths:
        failures.append(f"no file matches {pattern}")
    if exists is False and paths:
        failures.append(f"{pattern} should not exist but matches {_listing(paths, MAX_FAILURE_FILES)}")

    hits: list[str] = []
    bad: list[str] = []
    files = [p for p in paths if (ctx.base_dir / p).is_file()]
    only_text: str | None = None
    if config.contains is not None and not files:
        failures.append(f"no file matches {pattern}, so none contains '{config.contains}'")
    if want is not None or unwanted is not None or len(files) == 1:
        for rel in files:
            if (stopped := stop()) is not None:
                return stopped
            text = _read_text(ctx.base_dir / rel)
            if text is None:
                continue  # binary or unreadable: text searches do not apply
            if len(files) == 1 and len(text) < CONTENT_LIMIT:
                only_text = text
            if want is not None:
                found = _hits(rel, text, want, ctx.masker.mask)
                hits.extend(found)
                if not found:
                    failures.append(f"{rel} does not contain '{config.contains}'")
            if unwanted is not None:
                bad.extend(_hits(rel, text, unwanted, ctx.masker.mask))
    if bad:
        hits.extend(bad)
        failures.append(f"found '{config.not_contains}' in {_listing(bad, MAX_FAILURE_HITS, sep='; ')}")

    values: dict[str, Any] = {
        "count": len(paths),
        "files": paths[:MAX_VALUES],
        "matches": hits[:MAX_VALUES],
        "exists": bool(paths),
    }
    if only_text is not None:
        values["content"] = only_text
    evidence: dict[str, Any] = {
        "pattern": pattern,
        "base_dir": str(ctx.base_dir),
        "count": len(paths),
        "files": paths[:MAX_LISTED],
    }
    if hits:
        evidence["matches"] = hits[:MAX_LISTED]
    return Observation(values=values, outputs={"files": values["files"]}, evidence=evidence, failures=failures)


def _compile(needle: str | None, is_regex: bool) -> re.Pattern[str] | None:
    if needle is None:
        return None
    return re.compile(needle if is_regex else re.escape(needle), re.MULTILINE)


def _listing(items: list[str], limit: int, sep: str = ", ") -> str:
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return sep.join(items[:limit]) + more


def _read_text(path: Path) -> str | None:
    """The file as text, or None for binary (a NUL byte) and unreadable files."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data:
        return None
    return data.decode("utf-8", "replace")


def _hits(rel: str, text: str, pattern: re.Pattern[str], mask: Callable[[str], str]) -> list[str]:
    """`path:line: text` for each line with a match (a line is listed once); the line is masked
    before it is cut, so no part of a secret at the cut survives."""
    out: list[str] = []
    line_no, counted_to, last_line = 1, 0, 0
    for m in pattern.finditer(text):
        line_no += text.count("\n", counted_to, m.start())  # incremental: big files stay linear
        counted_to = m.start()
        if line_no == last_line:
            continue
        last_line = line_no
        begin = text.rfind("\n", 0, m.start()) + 1
        end = text.find("\n", m.start())
        line = text[begin : end if end != -1 else len(text)].strip()
        out.append(f"{rel}:{line_no}: {mask(line)[:_LINE_EXCERPT]}")
        if len(out) >= MAX_VALUES:
            break
    return out


def _relative(path: str, base: Path) -> str:
    """Absolute matches inside the runbook's folder are shown relative to it."""
    if not os.path.isabs(path):
        return path
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return path
